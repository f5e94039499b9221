"""What several test files share: the project's root, the one writer of IDX files, and what the
fresh-process cases need: an untrained model, a digit's PNG, a process ended however a case ends."""

import contextlib
import gzip
import os
import struct
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def idx_header(*shape, magic_type=0x08):
    """An IDX header: the magic number (unsigned bytes by default), then each dimension."""
    return struct.pack(">BBBB", 0, 0, magic_type, len(shape)) + struct.pack(">" + "I" * len(shape), *shape)


def write_idx(path, array, magic_type=0x08, compresslevel=9):
    """``array`` as an IDX file at ``path`` (gzipped where the name ends in .gz)."""
    data = idx_header(*array.shape, magic_type=magic_type) + np.asarray(array).astype(np.uint8).tobytes()
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb", compresslevel=compresslevel) as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)
    return str(path)


def write_idx_folder(folder, arrays, gz=True, compresslevel=9):
    """The four MNIST IDX files of ``arrays`` (x_train, y_train, x_test, y_test) in ``folder``."""
    from ch1.data import IDX_FILES

    os.makedirs(folder, exist_ok=True)
    for key, stem in IDX_FILES.items():
        write_idx(os.path.join(folder, stem + (".gz" if gz else "")), arrays[key], compresslevel=compresslevel)
    return str(folder)


def small_arrays(n_train=60, n_test=10):
    """Random MNIST-shaped arrays, too few to be the full MNIST (for the loader's own tests)."""
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }


def run_on_64_images(argv, monkeypatch):
    """A listing's Run (mlp-mnist, ``argv`` its flags) trained on 64 blank images, no real training, and
    without Graphviz (a .dot); returns the model and the run's finish (what writes its outputs)."""
    import numpy as np

    import mlp_mnist
    from ch1.run import Run, parse_args

    monkeypatch.setattr("ch1.outputs.graphviz_available", lambda: False)  # a .dot: no Graphviz needed
    args = parse_args("", argv, epochs=1, batch_size=32)
    run = Run("mlp-mnist", "1.3.2", args)
    model = mlp_mnist.build_model()
    run.plot_model(model)
    model.compile(loss="categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    model.fit(np.zeros((64, 784), "float32"), np.eye(10)[np.arange(64) % 10], epochs=1, batch_size=32,
              callbacks=run.callbacks, verbose=0)
    return model, lambda: run.finish(model, 0.5)


@contextlib.contextmanager
def ended(process):
    """``with ended(subprocess.Popen(...)) as run:`` for a process a test interrupts: on leaving, however,
    it is killed if it still runs, and reaped."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def first_test_digit(folder, npz):
    """The test set's first digit (a 7) as a PNG (a case, tests/background.py, for the cases that give
    a command an image: written once): its path."""
    from PIL import Image

    with np.load(npz) as data:
        path = os.path.join(folder, "digit.png")
        Image.fromarray(data["x_test"][0]).save(path)
    return path


UNTRAINED_MLP = """
import sys
from ch1 import quiet_startup
quiet_startup()
import keras
import mlp_mnist
keras.utils.set_random_seed(0)
mlp_mnist.build_model().save(sys.argv[1])
"""


def untrained_mlp(folder, npz):
    """The listing's MLP, untrained, saved by a fresh process (a case, tests/background.py, for the cases
    that need a model file): its path. Refusals and signals happen before its weights matter."""
    path = os.path.join(folder, "mlp.keras")
    done = subprocess.run([sys.executable, "-c", UNTRAINED_MLP, path], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT}, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return path
