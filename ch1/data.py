"""MNIST found (:func:`resolve_source`), loaded and checked; each problem is one :class:`DataError` line
naming the file. Memory stays bounded: what is not a regular file is refused unopened, an npz by its size
and each member's declared size and .npy header, an IDX file read no further than its header allows."""

import gzip
import os
import struct
import zipfile
import zlib

import numpy as np

from ch1.files import reason, regular_file

IMAGE_SIZE = 28
NUM_LABELS = 10
TRAIN_SIZE = 60000
TEST_SIZE = 10000
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# The four IDX files, by the names LeCun's site uses (a '.' instead of the '-' before 'idx' is also seen).
IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
HOW_TO_POINT = ("pass --data PATH or set MNIST_DATA to a Keras mnist.npz, a folder holding one, or a folder of "
                "the four MNIST IDX files")

# The largest arrays any MNIST file holds: no split has more than the 60,000 training images.
MAX_IMAGES = TRAIN_SIZE
MAX_NPY_HEADER = 65536  # numpy's own max_header_size is 10,000; room for a hand-made header
MAX_MEMBER_BYTES = {"x": MAX_IMAGES * IMAGE_SIZE**2 + MAX_NPY_HEADER, "y": MAX_IMAGES * 8 + MAX_NPY_HEADER}
MAX_NPZ_BYTES = 2 * sum(MAX_MEMBER_BYTES.values()) + 2**20  # the four arrays at their largest, stored


class DataError(Exception):
    """A data source that is missing, unreadable or not MNIST (one line)."""


def load_mnist(path=None, full=True):
    """``((x_train, y_train), (x_test, y_test))``, validated uint8 arrays, from ``path`` (``--data``, by
    :func:`resolve_source`); ``full`` requires the genuine 60,000 training and 10,000 test images."""
    source = resolve_source(path)
    if source is None:
        arrays, name = _download(), "keras.datasets.mnist"
    else:
        name = source.path
        try:
            arrays = read_idx_dir(source.path) if source.is_idx_dir else read_npz(source.path)
        except DataError as exc:
            raise DataError(source.blame(str(exc))) from None
    validate(arrays, name, full=full)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


class Source:
    """Where MNIST is read from: ``path`` (an npz, or a folder of IDX files) and ``origin``, what named it."""

    def __init__(self, path, origin, is_idx_dir):
        self.path, self.origin, self.is_idx_dir = path, origin, is_idx_dir

    def blame(self, message):
        """``message`` saying where the path came from where that was ``MNIST_DATA`` (users forget)."""
        if self.origin == "--data":
            return message
        return "MNIST_DATA=" + message if message.startswith(self.path) else f"MNIST_DATA={self.path}: {message}"


def resolve_source(path=None):
    """The one rule: ``--data PATH``, else ``$MNIST_DATA``, names a Keras ``mnist.npz``, a folder holding one,
    or a folder of the four IDX files: a :class:`Source`; None without either (Keras' download and cache)."""
    origin = "--data"
    if path is None:
        path, origin = os.environ.get("MNIST_DATA") or None, "MNIST_DATA"
    if path is None:
        return None
    path = os.path.expanduser(str(path))
    try:
        os.lstat(path)  # a link, even a loop or one to nothing, is there: the reader says what it is
    except (FileNotFoundError, NotADirectoryError):
        raise DataError(f"{origin} {path}: no such file or folder; {HOW_TO_POINT}") from None
    except OSError as exc:  # e.g. `loop/`: the trailing slash follows the link
        raise DataError(f"{origin} {path}: cannot read ({reason(exc)})") from None
    if os.path.isdir(path):
        npz = os.path.join(path, "mnist.npz")
        has_idx = any(os.path.lexists(os.path.join(path, stem + ext)) for stem in IDX_FILES.values()
                      for ext in ("", ".gz"))
        if os.path.lexists(npz) and not has_idx:
            return Source(npz, origin, is_idx_dir=False)
        return Source(path, origin, is_idx_dir=True)
    return Source(path, origin, is_idx_dir=False)


def _download():
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:  # noqa: BLE001 - any failure here means "no download"
        raise DataError(f"could not download MNIST ({one_line(exc)}); {HOW_TO_POINT}") from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def read_npz(path):
    """Read a Keras-layout ``mnist.npz``: its size, then each member's declared size and .npy header are
    checked before any array is read."""
    size = regular_file(path, "an MNIST file", DataError).st_size
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({reason(exc)})") from None
    if head != b"PK\x03\x04":
        _not_an_npz(path, head)
    if size > MAX_NPZ_BYTES:
        raise DataError(f"{path}: {size:,} bytes, larger than any MNIST npz can be ({MAX_NPZ_BYTES:,} at most)")
    try:
        with zipfile.ZipFile(path) as zf:
            missing = [k for k in NPZ_KEYS if k + ".npy" not in zf.namelist()]
            if missing:
                raise DataError(f"{path}: npz lacks {', '.join(missing)} (expected keys {', '.join(NPZ_KEYS)})")
            for key in NPZ_KEYS:
                _check_member(path, zf, key)
        with np.load(path, allow_pickle=False, max_header_size=MAX_NPY_HEADER) as npz:
            return {key: npz[key] for key in NPZ_KEYS}
    except (OSError, ValueError, EOFError, RuntimeError, NotImplementedError, zlib.error, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: corrupt or truncated npz ({one_line(exc)})") from None


def _check_member(path, zf, key):
    """Refuse, from its zip entry and .npy header alone, a member larger than MNIST's arrays can be."""
    info = zf.getinfo(key + ".npy")
    if info.file_size > MAX_MEMBER_BYTES[key[0]]:
        raise DataError(f"{path}: {info.filename} declares {info.file_size:,} bytes uncompressed, "
                        f"more than any MNIST array ({MAX_MEMBER_BYTES[key[0]]:,} at most)")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f, max_header_size=MAX_NPY_HEADER)
    fault = _fault(key, shape, dtype) or (shape[0] > MAX_IMAGES and f"{key} declares {shape[0]:,} "
                                          f"{'images' if key[0] == 'x' else 'labels'}, more than MNIST's {MAX_IMAGES:,}")
    if fault:
        raise DataError(f"{path}: {fault}")


def _not_an_npz(path, head):
    """Say what a file that is not a zip is: a lone IDX file, or not MNIST."""
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path) as f:
                head = f.read(4)  # only the first four inflated bytes
        except (OSError, EOFError, zlib.error):
            pass
    if _idx_dims(head) is not None:
        raise DataError(f"{path}: a single IDX file; pass the folder that holds all four IDX files")
    raise DataError(f"{path}: neither an npz file nor a folder of MNIST IDX files")


def read_idx_dir(folder):
    """Read the four MNIST IDX files (``name`` or ``name.gz``, also named with ``.idx``) from ``folder``."""
    arrays = {}
    for key, stem in IDX_FILES.items():
        dotted = stem.replace("-idx", ".idx")  # train-images.idx3-ubyte
        found = [c for n in (stem + ".gz", stem, dotted + ".gz", dotted)
                 if os.path.lexists(c := os.path.join(folder, n))]  # read_idx refuses what is not a file
        if not found:
            raise DataError(f"{folder}: no {stem}[.gz] here; expected a folder holding mnist.npz or the four "
                            "MNIST IDX files")
        arrays[key] = read_idx(found[0])
    return arrays


def read_idx(path):
    """One IDX file of unsigned bytes (gzipped or raw): the header, then no more than the bytes it declares
    and one (a file that inflates to gigabytes is never inflated whole)."""
    regular_file(path, "an MNIST IDX file", DataError)
    try:
        with open(path, "rb") as raw:
            f = gzip.GzipFile(fileobj=raw) if raw.read(2) == b"\x1f\x8b" else raw
            raw.seek(0)
            ndim = _idx_dims(f.read(4))
            if ndim is None:
                raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX header")
            shape = struct.unpack(f">{ndim}I", dims)
            if not (ndim == 1 or shape[1:] == (IMAGE_SIZE, IMAGE_SIZE)) or shape[0] > MAX_IMAGES:
                raise DataError(f"{path}: IDX header declares a {'x'.join(map(str, shape))} array; an MNIST file "
                                f"holds Nx28x28 images or N labels, N at most {MAX_IMAGES:,}")
            expected = int(np.prod(shape, dtype=np.int64))
            body = f.read(expected + 1)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip ({one_line(exc)})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({reason(exc)})") from None
    if len(body) != expected:
        raise DataError(f"{path}: IDX header says {'x'.join(map(str, shape))} = {expected:,} bytes, file holds "
                        + (f"{len(body):,} (truncated)" if len(body) < expected else "more (trailing bytes)"))
    return np.frombuffer(body, np.uint8).reshape(shape).copy()


def _idx_dims(head):
    """The number of dimensions an unsigned-byte IDX magic number declares (1 to 4), else None."""
    return head[3] if len(head) == 4 and head[:3] == b"\x00\x00\x08" and 1 <= head[3] <= 4 else None


def _fault(name, shape, dtype):
    """What is wrong with an image (x_...) or label (y_...) array of this shape and dtype, or None."""
    if name[0] == "x":
        if len(shape) != 3 or tuple(shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE):
            return f"{name} has shape {tuple(shape)}, expected (N, 28, 28)"
        return None if dtype == np.uint8 else f"{name} has dtype {dtype}, expected uint8 pixels"
    if len(shape) != 1:
        return f"{name} has shape {tuple(shape)}, expected (N,)"
    return None if np.issubdtype(dtype, np.integer) else f"{name} has dtype {dtype}, expected integer labels"


def validate(arrays, source, full=True):
    """Check shapes, dtypes, sizes and labels; raise DataError naming ``source``."""
    for split, size in (("train", TRAIN_SIZE), ("test", TEST_SIZE)):
        x, y = arrays["x_" + split], arrays["y_" + split]
        fault = _fault("x_" + split, x.shape, x.dtype) or _fault("y_" + split, y.shape, y.dtype)
        if fault:
            raise DataError(f"{source}: {fault}")
        if len(y) != len(x):
            raise DataError(f"{source}: y_{split} has shape {y.shape}, expected ({len(x)},) to match x_{split}")
        if len(y) and (y.min() < 0 or y.max() >= NUM_LABELS):
            raise DataError(f"{source}: y_{split} has labels {y.min()}..{y.max()}, expected 0..9")
        if full and len(x) != size:
            raise DataError(f"{source}: {len(x):,} {split} images, expected {size:,} (the full MNIST)")
        if len(x) == 0:
            raise DataError(f"{source}: no {split} images")


def one_line(exc):
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


def prepare_images(x, input_shape):
    """uint8 images -> float32 in [0, 1], reshaped to a model's input shape (as the listings do)."""
    return np.reshape(x, (-1,) + tuple(input_shape)).astype("float32") / 255
