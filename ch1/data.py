"""MNIST loading and validation.

Sources, in order of precedence: ``--data PATH``, the ``MNIST_DATA`` environment
variable, then ``keras.datasets.mnist.load_data()`` (which downloads). A path may be a
Keras-layout ``mnist.npz`` or a directory holding the four MNIST IDX files, gzipped or raw.
Every problem raises :class:`DataError` with a one-line message naming the file.
"""

import gzip
import os
import struct
import zipfile

import numpy as np

IMAGE_SIZE = 28
NUM_LABELS = 10
TRAIN_SIZE = 60000
TEST_SIZE = 10000
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# The four IDX files, by the names LeCun's site uses (a '.' instead of the last '-' is also seen).
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IDX_UBYTE = 0x08
ZIP_MAGIC = b"PK\x03\x04"
GZIP_MAGIC = b"\x1f\x8b"
HOW_TO_POINT = "pass --data PATH or set MNIST_DATA to a Keras mnist.npz or a folder of the four MNIST IDX files"


class DataError(Exception):
    """A data source that is missing, unreadable or not MNIST (message is one line)."""


def load_mnist(path=None, full=True):
    """Return ``((x_train, y_train), (x_test, y_test))`` as validated uint8 arrays.

    ``path`` is a Keras-layout npz file or a directory of IDX files; ``None`` means
    ``$MNIST_DATA`` and, failing that, ``keras.datasets.mnist.load_data()``.
    ``full`` requires the genuine sizes (60,000 training and 10,000 test images).
    """
    source = resolve_source(path)
    if source is None:
        arrays = _download()
        source = "keras.datasets.mnist"
    elif os.path.isdir(source):
        arrays = read_idx_dir(source)
    else:
        arrays = read_npz(source)
    validate(arrays, source, full=full)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def resolve_source(path=None):
    """The path to read (``--data``, then ``$MNIST_DATA``), or None for the Keras download."""
    name = "--data"
    if path is None:
        path, name = os.environ.get("MNIST_DATA") or None, "MNIST_DATA"
    if path is None:
        return None
    path = os.path.expanduser(str(path))
    if not os.path.exists(path):
        raise DataError(f"{name}: {path}: no such file or directory")
    return path


def _download():
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:  # noqa: BLE001 - any failure here means "no download"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"could not download MNIST ({reason}); {HOW_TO_POINT}") from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def read_npz(path):
    """Read a Keras-layout ``mnist.npz`` (keys x_train, y_train, x_test, y_test)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if head != ZIP_MAGIC:
        if head[:2] == GZIP_MAGIC:
            try:
                with gzip.open(path) as f:
                    head = f.read(4)
            except (OSError, EOFError):
                pass
        if _idx_magic(head) is not None:
            raise DataError(f"{path}: a single IDX file; pass the folder that holds all four IDX files")
        raise DataError(f"{path}: neither an npz file nor a folder of MNIST IDX files")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise DataError(f"{path}: npz lacks {', '.join(missing)} (expected keys {', '.join(NPZ_KEYS)})")
            return {k: npz[k] for k in NPZ_KEYS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise DataError(f"{path}: corrupt or truncated npz ({one_line(exc)})") from None


def read_idx_dir(folder):
    """Read the four MNIST IDX files (``name`` or ``name.gz``) from ``folder``."""
    return {key: read_idx(_find_idx(folder, stem)) for key, stem in IDX_FILES.items()}


def _find_idx(folder, stem):
    dotted = stem[::-1].replace("-", ".", 1)[::-1]  # train-images.idx3-ubyte
    for name in (stem + ".gz", stem, dotted + ".gz", dotted):
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return candidate
    raise DataError(f"{folder}: no {stem}[.gz] here; expected the four MNIST IDX files or use an mnist.npz")


def read_idx(path):
    """Read one IDX file of unsigned bytes (gzipped or raw) into a numpy array."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip ({one_line(exc)})") from None
    ndim = _idx_magic(raw[:4])
    if ndim is None:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX header says {'x'.join(map(str, shape))} = {expected:,} bytes, "
            f"file holds {len(raw) - header:,} (truncated or corrupt)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _idx_magic(head):
    """Number of dimensions for an unsigned-byte IDX magic number, else None."""
    if len(head) == 4 and head[:3] == b"\x00\x00" + bytes([IDX_UBYTE]) and 1 <= head[3] <= 4:
        return head[3]
    return None


def validate(arrays, source, full=True):
    """Check shapes, dtypes, sizes and labels; raise DataError naming ``source``."""
    for split, size in (("train", TRAIN_SIZE), ("test", TEST_SIZE)):
        x, y = arrays["x_" + split], arrays["y_" + split]
        if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(f"{source}: x_{split} has shape {x.shape}, expected (N, 28, 28)")
        if x.dtype != np.uint8:
            raise DataError(f"{source}: x_{split} has dtype {x.dtype}, expected uint8 pixels")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{source}: y_{split} has shape {y.shape}, expected ({len(x)},) to match x_{split}")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{source}: y_{split} has dtype {y.dtype}, expected integer labels")
        if len(y) and (y.min() < 0 or y.max() >= NUM_LABELS):
            raise DataError(f"{source}: y_{split} has labels {y.min()}..{y.max()}, expected 0..9")
        if full and len(x) != size:
            raise DataError(f"{source}: {len(x):,} {split} images, expected {size:,} (the full MNIST)")
        if len(x) == 0:
            raise DataError(f"{source}: no {split} images")


def one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def prepare_images(x, input_shape):
    """uint8 images -> float32 in [0, 1], reshaped to a model's input shape (as the listings do)."""
    return np.reshape(x, (-1,) + tuple(input_shape)).astype("float32") / 255
