"""What a run leaves behind (the model diagram, the history plot, a results JSON), each written to a
temporary name and renamed into place: an interrupted run leaves no half-written file. Importing this
selects matplotlib's file-only backend (Agg); only :func:`plot_model` imports Keras."""

import contextlib
import json
import os
import secrets
import shutil

import matplotlib

matplotlib.use("Agg")  # headless: files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

GRAPHVIZ_HINT = "install Graphviz for the PNG (apt-get install graphviz | brew install graphviz | conda install graphviz)"


temporary = set()  # temporary files being written now (removed if Ctrl-C or SIGTERM ends the command)


def temporary_name(name):
    """``.<stem>.<8 hex digits><ext>``: where ``name`` is written before it is renamed into place."""
    stem, ext = os.path.splitext(name)
    return f".{stem}.{secrets.token_hex(4)}{ext}"


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path`` (same extension), created with the mode the umask gives a
    new file (0644 under 022); rename it into place on success. On any exception the temporary file is
    removed; on Ctrl-C or SIGTERM too (ch1.cli.handle_signals)."""
    folder, name = os.path.split(path)  # as given, as ch1.cli.ensure_output_dir probed it: a relative path
    tmp = os.path.join(folder, temporary_name(name))  # stays short in a folder deeper than PATH_MAX
    temporary.add(tmp)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        temporary.discard(tmp)


def write_json(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")
    return path


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
