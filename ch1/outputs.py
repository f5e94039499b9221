"""What a run leaves behind: the model diagram, the history plot and a results JSON.

Every file is written to a temporary name first and renamed into place, so an interrupted run
never leaves a half-written output; files get the usual permissions (0644 under the common umask
022). Importing this module selects matplotlib's file-only backend (Agg) and loads no Keras;
:func:`plot_model` imports Keras when it is called.
"""

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


class OutputError(Exception):
    """An output folder or file that cannot be written (one line)."""


MIN_FREE_BYTES = 64 * 2**20  # room a run needs for what it writes (the largest listing's model is ~3.3 MB)


def prepare_output_dir(path, flag="--output-dir", names=()):
    """Create the folder ``path`` if needed and prove that files can be written there: each of
    ``names`` under the temporary name :func:`atomic_path` will give it (so a name too long for the
    file system fails now, not after training) and with no folder in its place, with
    :data:`MIN_FREE_BYTES` free. Raises OutputError, in one line, if not."""
    try:
        os.makedirs(path, exist_ok=True)
        _probe(path)
        free = shutil.disk_usage(path).free
    except OSError as exc:
        raise OutputError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None
    for name in names:
        if os.path.isdir(os.path.join(path, name)):
            raise OutputError(f"{flag} {path}: {name} there is a folder; a run replaces it with a file")
        try:
            _probe(path, _temporary_name(name))
        except OSError as exc:
            raise OutputError(f"{flag} {path}: cannot write {name} there ({exc.strerror or exc})") from None
    if free < MIN_FREE_BYTES:
        raise OutputError(f"{flag} {path}: only {free / 2**20:.1f} MB free there; a run needs "
                          f"{MIN_FREE_BYTES // 2**20} MB")
    return path


def check_output_file(path, flag):
    """Prove that the file ``path`` can be written (its folder exists and is writable, it is
    not a folder), without creating it; raise OutputError if not."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise OutputError(f"{flag} {path}: a folder, not a file")
    if not os.path.isdir(folder):
        raise OutputError(f"{flag} {path}: no folder {folder}")
    try:
        _probe(folder)
    except OSError as exc:
        raise OutputError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None
    return path


def _probe(folder, name=None):
    """Create and remove a file in ``folder`` (raises OSError where that is not possible)."""
    probe = os.path.join(folder, name or f".write-test.{secrets.token_hex(4)}")
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.remove(probe)


_temporary = set()  # temporary files being written now (removed if Ctrl-C or SIGTERM ends the command)


def temporary_files():
    return list(_temporary)


def _temporary_name(name):
    """``.<stem>.<8 hex digits><ext>``: where ``name`` is written before it is renamed into place."""
    stem, ext = os.path.splitext(name)
    return f".{stem}.{secrets.token_hex(4)}{ext}"


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path`` (same extension), created with the mode the umask gives a
    new file (0644 under 022); rename it into place on success. On any exception the temporary file is
    removed; on Ctrl-C or SIGTERM too (ch1.cli.handle_signals)."""
    folder, name = os.path.split(path)  # as given, as prepare_output_dir probed it: a relative path
    tmp = os.path.join(folder, _temporary_name(name))  # stays short in a folder deeper than PATH_MAX
    _temporary.add(tmp)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        _temporary.discard(tmp)


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
