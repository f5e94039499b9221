"""What several test files share: the project's root and the one writer of IDX files."""

import gzip
import os
import struct

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def idx_header(*shape, magic_type=0x08):
    """An IDX header: the magic number (unsigned bytes by default), then each dimension."""
    return struct.pack(">BBBB", 0, 0, magic_type, len(shape)) + struct.pack(">" + "I" * len(shape), *shape)


def write_idx(path, array, magic_type=0x08, compresslevel=9):
    """``array`` as an IDX file at ``path`` (gzipped where the name ends in .gz)."""
    data = idx_header(*array.shape, magic_type=magic_type) + np.asarray(array).astype(np.uint8).tobytes()
    with (gzip.open(path, "wb", compresslevel=compresslevel) if str(path).endswith(".gz") else open(path, "wb")) as f:
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
