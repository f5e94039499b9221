"""Means and spreads over seeds, and how the reports write and draw them. Nothing here imports Keras, nor
matplotlib before a curve is drawn (reproduce.py reads its flags before either loads)."""

import statistics


def mean(values):
    return statistics.fmean(values) if values else None


def std(values):
    """The sample standard deviation; with one run there is none to report (not a spread of zero)."""
    return statistics.stdev(values) if len(values) > 1 else None


def mean_std(mean, std, digits=2):
    """'98.11 ± 0.09' for a mean over runs; a single run (std None) has no spread and shows alone."""
    if mean is None:
        return "—"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def plot_curves(ax, histories, train, test):
    """Train and test accuracy (%) against epochs of each history, drawn with the ``ax.plot`` keywords
    ``train`` and ``test`` (their labels on the first history's lines only), on a grid of whole epochs."""
    from ch1.outputs import whole_epochs

    for i, history in enumerate(histories):
        for key, style in (("accuracy", train), ("val_accuracy", test)):
            ax.plot(range(1, len(history[key]) + 1), [100 * a for a in history[key]],
                    **{**style, "label": style["label"] if i == 0 else None})
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    whole_epochs(ax)


def markdown(head, rows):
    """A Markdown table of ``head`` (column names) and ``rows`` (lists of cells)."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])
