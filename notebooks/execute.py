"""Runs the notebooks here, saving them with their outputs (a reader never needs this):
    MNIST_DATA=/path/to/mnist.npz python notebooks/execute.py notebooks/*.ipynb
With MNIST_DATA set, mnist.load_data() reads that file, not the internet (Keras' cache takes only the bytes it
downloaded), by a cell run before the data cell and left out of what is saved."""

import os
import sys
import tempfile

import nbclient
import nbformat

OFFLINE = """from keras.datasets import mnist as _mnist
_npz = __import__("numpy").load(__import__("os").environ["MNIST_DATA"], allow_pickle=False)
_mnist.load_data = lambda path="mnist.npz": ((_npz["x_train"], _npz["y_train"]), (_npz["x_test"], _npz["y_test"]))"""


def execute(path, timeout=None):
    """The notebook at ``path``, run in a fresh kernel in a temporary folder (its PNGs are written there)."""
    notebook = nbformat.read(path, as_version=4)
    cells = notebook.cells  # what is saved: the cells run in place
    if os.environ.get("MNIST_DATA"):
        at = next(i for i, cell in enumerate(cells) if "mnist.load_data()" in cell.source)
        notebook.cells = cells[:at] + [nbformat.v4.new_code_cell(OFFLINE)] + cells[at:]
    with tempfile.TemporaryDirectory() as folder:
        nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                                coalesce_streams=True, resources={"metadata": {"path": folder}}).execute()
    notebook.cells = cells
    return notebook


if __name__ == "__main__":
    for path in sys.argv[1:]:
        nbformat.write(execute(path), path)
