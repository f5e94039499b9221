"""Shared fixtures: the genuine MNIST files and small hand-made bad ones."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import ch1  # noqa: E402,F401  (quiet keras start-up before anything imports keras)


def _mnist_dir():
    for candidate in (os.environ.get("MNIST_DATA"), os.path.join(ROOT, "..", "shared", "mnist")):
        if candidate and os.path.exists(candidate):
            return os.path.abspath(candidate)
    pytest.fail("MNIST not found: set MNIST_DATA to a folder with mnist.npz and the IDX files (see README)")


@pytest.fixture(scope="session")
def mnist_dir():
    """The folder with the genuine files (four IDX .gz and mnist.npz)."""
    folder = _mnist_dir()
    if os.path.isfile(folder):  # MNIST_DATA may name the npz itself
        folder = os.path.dirname(folder)
    return folder


@pytest.fixture(scope="session")
def mnist_npz(mnist_dir):
    return os.path.join(mnist_dir, "mnist.npz")


@pytest.fixture(scope="session")
def mnist_arrays(mnist_npz):
    from ch1.data import read_npz

    return read_npz(mnist_npz)


@pytest.fixture()
def run_dir(tmp_path, monkeypatch):
    """A fresh working directory for a script run (its outputs land here)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
