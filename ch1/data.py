"""MNIST loading and validation.

Sources, in order of precedence: ``--data PATH``, the ``MNIST_DATA`` environment
variable, then ``keras.datasets.mnist.load_data()`` (which downloads, or reads Keras' cache). A
path may be a Keras-layout ``mnist.npz``, a folder holding ``mnist.npz``, or a folder holding the
four MNIST IDX files, gzipped or raw (:func:`resolve_source`). Every problem raises
:class:`DataError` with a one-line message naming the file, and ``MNIST_DATA`` where the path
came from it.

The loader trusts no file. It refuses anything that is not a regular file before
opening it (a FIFO would block), reads each array's header before its body, and
refuses any shape that MNIST cannot have, so a small hostile file (a gzip or zip
"bomb", a header declaring terabytes) costs no more memory than the real MNIST.
"""

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
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IDX_UBYTE = 0x08
ZIP_MAGIC = b"PK\x03\x04"
GZIP_MAGIC = b"\x1f\x8b"
HOW_TO_POINT = ("pass --data PATH or set MNIST_DATA to a Keras mnist.npz, a folder holding one, or a folder of "
                "the four MNIST IDX files")

# The largest arrays any MNIST file can hold: no split has more than the 60,000 training
# images. Every size a header declares is checked against these before anything is read.
MAX_IMAGES = TRAIN_SIZE
MAX_IMAGE_BYTES = MAX_IMAGES * IMAGE_SIZE * IMAGE_SIZE  # 47,040,000 bytes of uint8 pixels
MAX_LABEL_BYTES = MAX_IMAGES * 8  # labels may be stored as int64 in an npz
MAX_NPY_HEADER = 65536  # room for a .npy file's magic string and header
# An npz holding the four arrays at their largest, uncompressed, plus headers.
MAX_NPZ_BYTES = 2 * (MAX_IMAGE_BYTES + MAX_LABEL_BYTES + MAX_NPY_HEADER) + 2**20
NPZ_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # what np.savez and savez_compressed write
CHUNK = 2**20  # IDX bodies are read a megabyte at a time


class DataError(Exception):
    """A data source that is missing, unreadable or not MNIST (message is one line)."""


def load_mnist(path=None, full=True):
    """Return ``((x_train, y_train), (x_test, y_test))`` as validated uint8 arrays.

    ``path`` (``--data``) is found by :func:`resolve_source`; ``None`` means ``$MNIST_DATA`` and,
    failing that, ``keras.datasets.mnist.load_data()``. ``full`` requires the genuine sizes
    (60,000 training and 10,000 test images).
    """
    source = resolve_source(path)
    if source is None:
        arrays = _download()
        name = "keras.datasets.mnist"
    else:
        name = source.name
        try:
            arrays = read_idx_dir(source.path) if source.is_idx_dir else read_npz(source.path)
        except DataError as exc:
            raise DataError(source.blame(str(exc))) from None
    validate(arrays, name, full=full)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


class Source:
    """Where MNIST is read from: ``path`` (an npz, or a folder of the four IDX files), and ``origin``,
    what named it: ``--data`` or ``MNIST_DATA``."""

    def __init__(self, path, origin, is_idx_dir):
        self.path, self.origin, self.is_idx_dir = path, origin, is_idx_dir

    @property
    def name(self):
        return self.path

    def blame(self, message):
        """A message about the data, saying where its path came from (``MNIST_DATA``: users forget)."""
        if self.origin == "--data":
            return message
        return "MNIST_DATA=" + message if message.startswith(self.path) else f"MNIST_DATA={self.path}: {message}"


def resolve_source(path=None):
    """The one rule, for every script, tool and the tests: ``--data PATH``, else ``$MNIST_DATA``, may
    name a Keras ``mnist.npz``, a folder holding ``mnist.npz``, or a folder of the four IDX files.
    Returns a :class:`Source`, or None (neither given: Keras' download and cache). A path that does
    not exist raises DataError saying where it came from."""
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
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"could not download MNIST ({reason}); {HOW_TO_POINT}") from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


# --- npz ---------------------------------------------------------------------------------------


def read_npz(path):
    """Read a Keras-layout ``mnist.npz`` (keys x_train, y_train, x_test, y_test).

    Each member's ``.npy`` header is read and checked first; its body is read only when
    the header declares an array that MNIST could hold.
    """
    size = regular_file(path, "an MNIST file", DataError).st_size
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if head != ZIP_MAGIC:
        _not_an_npz(path, head)
    if size > MAX_NPZ_BYTES:
        raise DataError(f"{path}: {size:,} bytes, larger than any MNIST npz can be ({MAX_NPZ_BYTES:,} at most)")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            missing = [k for k in NPZ_KEYS if k + ".npy" not in names]
            if missing:
                raise DataError(f"{path}: npz lacks {', '.join(missing)} (expected keys {', '.join(NPZ_KEYS)})")
            return {key: _read_npz_member(path, zf, key) for key in NPZ_KEYS}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise DataError(f"{path}: corrupt or truncated npz ({one_line(exc)})") from None


def _not_an_npz(path, head):
    """Say what a file that does not start like a zip is (a lone IDX file, or something else)."""
    if head[:2] == GZIP_MAGIC:
        try:
            with gzip.open(path) as f:
                head = f.read(4)  # only the first four inflated bytes
        except (OSError, EOFError, zlib.error):
            pass
    if _idx_magic(head) is not None:
        raise DataError(f"{path}: a single IDX file; pass the folder that holds all four IDX files")
    raise DataError(f"{path}: neither an npz file nor a folder of MNIST IDX files")


def _read_npz_member(path, zf, key):
    """Read one array from the npz, checking the zip entry and the .npy header before the body."""
    member = key + ".npy"
    info = zf.getinfo(member)
    _check_zip_entry(path, info)
    try:
        with zf.open(info) as f:
            shape, dtype = _read_npy_header(f)
        _check_npy_header(path, key, shape, dtype)
        limit = _max_array_bytes(key) + MAX_NPY_HEADER
        if info.file_size > limit:
            raise DataError(f"{path}: {member} declares {info.file_size:,} bytes uncompressed, "
                            f"more than any MNIST array ({limit:,} at most)")
        with zf.open(info) as f:  # the header passed: now numpy reads the whole member
            array = np.lib.format.read_array(f, allow_pickle=False)
            extra = f.read(1)  # reading to the end also makes zipfile check the CRC
    except (OSError, ValueError, EOFError, RuntimeError, NotImplementedError, zlib.error, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: corrupt or truncated npz ({member}: {one_line(exc)})") from None
    if extra:
        raise DataError(f"{path}: corrupt npz ({member} holds more bytes than its header declares)")
    return array


def _check_zip_entry(path, info):
    """Refuse an encrypted member or one compressed in a way np.savez never uses."""
    if info.flag_bits & 0x1:
        raise DataError(f"{path}: {info.filename} is encrypted (an MNIST npz never is)")
    if info.compress_type not in NPZ_METHODS:
        raise DataError(f"{path}: {info.filename} uses zip compression method {info.compress_type}; "
                        "an npz member is stored (0) or deflated (8)")


def _read_npy_header(f):
    """The shape and dtype a .npy stream declares (its magic string and header only)."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    else:  # 2.0 (and 3.0, which differs only in the header's text encoding)
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    return shape, dtype


def _check_npy_header(path, key, shape, dtype):
    """Refuse, from the .npy header alone, an array that MNIST could not hold.

    A wrong shape or dtype gets the message validate() would give; small arrays with other
    faults are left for validate() to report once they are loaded.
    """
    if dtype.hasobject:
        raise DataError(f"{path}: {key} is an array of Python objects (a pickle); refusing to load it")
    fault = _image_fault(key, shape, dtype) if key.startswith("x_") else _label_fault(key, shape, dtype)
    if fault:
        raise DataError(f"{path}: {fault}")
    what = "images" if key.startswith("x_") else "labels"
    if not 0 <= shape[0] <= MAX_IMAGES:
        raise DataError(f"{path}: {key} declares {shape[0]:,} {what}, more than MNIST's {MAX_IMAGES:,}")


def _max_array_bytes(key):
    return MAX_IMAGE_BYTES if key.startswith("x_") else MAX_LABEL_BYTES


# --- IDX ---------------------------------------------------------------------------------------


def read_idx_dir(folder):
    """Read the four MNIST IDX files (``name`` or ``name.gz``) from ``folder``."""
    return {key: read_idx(_find_idx(folder, stem)) for key, stem in IDX_FILES.items()}


def _find_idx(folder, stem):
    """The path of one IDX file, under its usual name or the dotted variant, gzipped or raw."""
    dotted = stem.replace("-idx", ".idx")  # train-images.idx3-ubyte
    for name in (stem + ".gz", stem, dotted + ".gz", dotted):
        candidate = os.path.join(folder, name)
        if os.path.lexists(candidate):  # read_idx refuses what is not a regular file
            return candidate
    raise DataError(f"{folder}: no {stem}[.gz] here; expected a folder holding mnist.npz or the four MNIST IDX files")


def read_idx(path):
    """Read one IDX file of unsigned bytes (gzipped or raw) into a numpy array.

    A gzipped file is inflated as a stream: the header first, then exactly the number of
    bytes it declares, so a file that inflates to gigabytes is never inflated whole.
    """
    regular_file(path, "an MNIST IDX file", DataError)
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if gzipped else raw
            return _read_idx_stream(path, stream)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip ({one_line(exc)})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or one_line(exc)})") from None


def _read_idx_stream(path, f):
    """Header, check, body: the IDX format is a magic number, the dimensions, then the bytes."""
    ndim = _idx_magic(f.read(4))
    if ndim is None:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(">" + "I" * ndim, dims)
    _check_idx_shape(path, shape)
    expected = _product(shape)
    body, got = _read_at_most(f, expected)
    declared = f"IDX header says {'x'.join(map(str, shape))} = {expected:,} bytes"
    if got < expected:
        raise DataError(f"{path}: {declared}, file holds {got:,} (truncated)")
    if f.read(1):
        raise DataError(f"{path}: {declared}, file holds more (trailing bytes after the data)")
    return body.reshape(shape)


def _check_idx_shape(path, shape):
    """Refuse dimensions no MNIST file has: only N×28×28 images or N labels, N up to 60,000."""
    images = len(shape) == 3 and shape[1:] == (IMAGE_SIZE, IMAGE_SIZE)
    labels = len(shape) == 1
    if not (images or labels) or shape[0] > MAX_IMAGES:
        raise DataError(f"{path}: IDX header declares a {'x'.join(map(str, shape))} array; an MNIST file "
                        f"holds Nx28x28 images or N labels, N at most {MAX_IMAGES:,}")


def _product(shape):
    """The number of elements, in Python integers (which cannot overflow as int64 can)."""
    count = 1
    for dim in shape:
        count *= int(dim)
    return count


def _read_at_most(f, size):
    """Read up to ``size`` bytes into a new uint8 array, a chunk at a time; return it and the count."""
    body = np.empty(size, dtype=np.uint8)
    view = memoryview(body)
    got = 0
    while got < size:
        n = f.readinto(view[got:got + CHUNK])
        if not n:
            break
        got += n
    return body, got


def _idx_magic(head):
    """Number of dimensions for an unsigned-byte IDX magic number, else None."""
    if len(head) == 4 and head[:3] == b"\x00\x00" + bytes([IDX_UBYTE]) and 1 <= head[3] <= 4:
        return head[3]
    return None


# --- validation --------------------------------------------------------------------------------


def _image_fault(name, shape, dtype):
    """What is wrong with an image array of this shape and dtype, or None."""
    if len(shape) != 3 or tuple(shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE):
        return f"{name} has shape {tuple(shape)}, expected (N, 28, 28)"
    if dtype != np.uint8:
        return f"{name} has dtype {dtype}, expected uint8 pixels"
    return None


def _label_fault(name, shape, dtype):
    """What is wrong with a label array of this shape and dtype (its length aside), or None."""
    if len(shape) != 1:
        return f"{name} has shape {tuple(shape)}, expected (N,)"
    if not np.issubdtype(dtype, np.integer):
        return f"{name} has dtype {dtype}, expected integer labels"
    return None


def validate(arrays, source, full=True):
    """Check shapes, dtypes, sizes and labels; raise DataError naming ``source``."""
    for split, size in (("train", TRAIN_SIZE), ("test", TEST_SIZE)):
        x, y = arrays["x_" + split], arrays["y_" + split]
        fault = _image_fault("x_" + split, x.shape, x.dtype)
        if fault:
            raise DataError(f"{source}: {fault}")
        fault = _label_fault("y_" + split, y.shape, y.dtype)
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
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def prepare_images(x, input_shape):
    """uint8 images -> float32 in [0, 1], reshaped to a model's input shape (as the listings do)."""
    return np.reshape(x, (-1,) + tuple(input_shape)).astype("float32") / 255
