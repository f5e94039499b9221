"""Shared fixtures: the genuine MNIST, found the way a user has it; the listings' smoke runs; an untrained
model and a digit's PNG.

The tests train and check on real MNIST. They look for it, in this order:
1. ``$MNIST_DATA``: a Keras-layout ``mnist.npz`` (enough on its own) or a folder holding one
   or the four IDX files;
2. Keras' own cache, ``~/.keras/datasets/mnist.npz`` (``$KERAS_HOME`` if set), where
   ``python cnn_mnist.py`` put it when it downloaded MNIST (checked, never re-downloaded).
With neither, the run stops at once with one message saying how to get the data. The IDX
tests write the IDX files they need from the npz into a temporary folder.
"""

import contextlib
import importlib
import io
import os
import sys
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# The tests hold in any shell: TensorFlow's log at fatal errors only, UTF-8 streams, the project importable;
# the commands the tests start get the same (they are given os.environ).
os.environ.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONIOENCODING="utf-8", PYTHONPATH=ROOT)
os.environ.pop("PYTHONWARNINGS", None)  # a shell's warning filters would add lines to the commands' stderr

from ch1 import quiet_startup  # noqa: E402

NO_DATA = (
    "no MNIST found for the tests. Point MNIST_DATA at a Keras mnist.npz (or a folder with it or the four "
    "MNIST IDX files), or run `python cnn_mnist.py` once with internet so that Keras caches "
    "~/.keras/datasets/mnist.npz."
)


def keras_cache():
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets", "mnist.npz")


def find_mnist():
    """``(path, arrays)`` of the first usable source (see the module docstring), or a reason why none."""
    from ch1.data import DataError, load_mnist, resolve_source

    candidates, problems = [], []
    if os.environ.get("MNIST_DATA"):
        try:
            candidates.append(("MNIST_DATA", resolve_source().path))  # the scripts' own rule
        except DataError as exc:
            problems.append(str(exc))
    candidates.append(("Keras' cache", keras_cache()))
    for name, path in candidates:
        if not os.path.exists(path):
            problems.append(f"{name}: {path} does not exist")
            continue
        try:
            (x_train, y_train), (x_test, y_test) = load_mnist(path)
        except DataError as exc:
            problems.append(f"{name}: {exc}")
            continue
        return os.path.abspath(path), {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return None, "; ".join(problems)


_FOUND = {}


def _mnist():
    if "found" not in _FOUND:
        _FOUND["found"] = find_mnist()
    return _FOUND["found"]


def pytest_sessionstart(session):
    """Stop the whole run at once, with one message, when no test can find MNIST: before the test
    files are collected, so before they import Keras (and TensorFlow, seconds of start-up)."""
    path, arrays = _mnist()
    if path is None:
        raise pytest.UsageError(f"{NO_DATA} ({arrays})")  # one line, "ERROR: ...", exit status 4
    quiet_startup()  # as the scripts do: TensorFlow's start-up notices stay off the test output


@pytest.fixture(scope="session")
def mnist_arrays():
    """The genuine arrays (x_train, y_train, x_test, y_test), checked."""
    return _mnist()[1]


@pytest.fixture(scope="session")
def mnist_npz(tmp_path_factory, mnist_arrays):
    """A path to a Keras-layout mnist.npz: the one found, or one written from the IDX files found."""
    path = _mnist()[0]
    if os.path.isfile(path):
        return path
    import numpy as np

    written = tmp_path_factory.mktemp("npz") / "mnist.npz"
    np.savez_compressed(written, **mnist_arrays)
    return str(written)


@pytest.fixture(scope="session")
def mnist_idx_dir(tmp_path_factory, mnist_arrays):
    """A folder with the four genuine MNIST IDX files (.gz), written from the arrays found."""
    from tests.support import write_idx_folder

    return write_idx_folder(tmp_path_factory.mktemp("idx"), mnist_arrays, compresslevel=1)


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory, mnist_npz):
    """``smoke_runs("cnn_mnist")``: that listing run once per test session as a reader runs it,
    ``python cnn_mnist.py --smoke`` (umask 022): its ``folder`` of outputs, ``results`` and
    ``stdout``. Each listing is trained at most once however many tests use it."""
    runs = {}

    def run(module_name):
        if module_name not in runs:
            module = importlib.import_module(module_name)
            root = tmp_path_factory.mktemp(module_name)
            out, umask = io.StringIO(), os.umask(0o022)
            try:
                with contextlib.redirect_stdout(out):
                    results = module.main(["--smoke", "--data", mnist_npz, "--output-dir", str(root)])
            finally:
                os.umask(umask)
            runs[module_name] = types.SimpleNamespace(folder=root / "smoke", results=results, stdout=out.getvalue())
        return runs[module_name]

    return run


@pytest.fixture(scope="session")
def smoke_cnn(smoke_runs):
    """``(model, path)``: the book's CNN after its smoke run (one epoch on 6,000 real training
    images, about 94% on the test set), saved as cnn-mnist.keras."""
    import keras

    path = str(smoke_runs("cnn_mnist").folder / "cnn-mnist.keras")
    return keras.saving.load_model(path), path


@pytest.fixture(scope="session")
def untrained_mlp(tmp_path_factory):
    """The listing's MLP, untrained (seed 0), saved as .keras: enough where its weights do not matter."""
    import keras

    import mlp_mnist

    keras.utils.set_random_seed(0)
    path = str(tmp_path_factory.mktemp("untrained") / "mlp.keras")
    mlp_mnist.build_model().save(path)
    return path


@pytest.fixture(scope="session")
def first_test_digit(tmp_path_factory, mnist_arrays):
    """The test set's first digit (a 7) as a PNG: its path."""
    from PIL import Image

    path = str(tmp_path_factory.mktemp("digit") / "digit.png")
    Image.fromarray(mnist_arrays["x_test"][0]).save(path)
    return path
