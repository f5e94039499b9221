"""What a run leaves behind (the model diagram, the history plot), each written by
:func:`ch1.files.atomic_path`: an interrupted run leaves no half-written file. Importing this selects
matplotlib's file-only backend (Agg); only :func:`plot_model` imports Keras."""

import os
import shutil

import matplotlib

matplotlib.use("Agg")  # headless: files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ch1.files import atomic_path  # noqa: E402

GRAPHVIZ_HINT = "install Graphviz for the PNG (apt-get install graphviz | brew install graphviz | conda install graphviz)"


def save_figure(fig, path, **kwargs):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)
    plt.close(fig)
    return path


def graphviz_available():
    return shutil.which("dot") is not None


def plot_model(model, path):
    """Draw ``model`` like the book (``plot_model(..., show_shapes=True)``).

    Without Graphviz's ``dot`` program, say what to install, write the DOT source
    as ``<name>.dot`` instead, and return its path: training goes on either way.
    """
    import keras

    if graphviz_available():
        with atomic_path(path) as tmp:
            keras.utils.plot_model(model, to_file=tmp, show_shapes=True)
        return path
    dot_path = os.path.splitext(path)[0] + ".dot"
    dot = keras.utils.model_to_dot(model, show_shapes=True)
    with atomic_path(dot_path) as tmp:
        with open(tmp, "w") as f:
            f.write(dot.to_string())
    print(f"Graphviz 'dot' not found: wrote {dot_path} instead of {os.path.basename(path)}; {GRAPHVIZ_HINT}")
    return dot_path


def plot_history(history, path, title):
    """Loss and accuracy per epoch, from a Keras ``History.history`` dict."""
    epochs = range(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, history["loss"], "o-", label="train")
    ax_acc.plot(epochs, [100 * a for a in history["accuracy"]], "o-", label="train")
    for ax, label in ((ax_loss, "loss"), (ax_acc, "accuracy (%)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
        whole_epochs(ax)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def whole_epochs(ax):
    """Tick an epoch axis at whole numbers only (a one-epoch run is not ticked 0.96 .. 1.04)."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
