"""Shared fixtures: the genuine MNIST, found the way a user has it, and places to run scripts.

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


def pytest_collection_modifyitems(items):
    """The tests marked ``fresh`` last, in their order: their cases run meanwhile (tests/background.py)."""
    items.sort(key=lambda item: item.get_closest_marker("fresh") is not None)


@pytest.fixture(scope="session", autouse=True)
def fresh_cases(request, tmp_path_factory):
    """The cases of the selected ``fresh`` tests, started beside the suite (tests/background.py)."""
    from tests import background

    cases = []
    for item in request.session.items:
        for marker in item.iter_markers("fresh"):
            cases += [case for case in marker.args if case not in cases]
    npz = request.getfixturevalue("mnist_npz") if cases else None
    background.SESSION.start(cases, str(tmp_path_factory.mktemp("fresh")), npz)
    yield
    background.SESSION.stop()


@pytest.fixture(scope="session")
def mnist_source():
    """What the tests use for ``--data``: the npz, or a folder of IDX files, as found."""
    return _mnist()[0]


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
def tiny_model(tmp_path_factory):
    """An untrained MLP, saved: enough to reach the images (refusals happen before it is used)."""
    import keras

    import mlp_mnist

    keras.utils.set_random_seed(0)
    path = str(tmp_path_factory.mktemp("tiny") / "mlp.keras")
    mlp_mnist.build_model().save(path)
    return path


@pytest.fixture()
def run_dir(tmp_path, monkeypatch):
    """A fresh working directory for a script run (its outputs land here)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
