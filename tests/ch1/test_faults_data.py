"""The MNIST loader on hostile files: bombs, lying headers, odd zips and files that are not files.

Each bad file is small and made by hand here. Every case must end in one DataError whose
message is a single line naming the file, quickly and without a large allocation.
"""

import gzip
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest
from tests.support import idx_header, small_arrays, write_idx, write_idx_folder

import ch1.data
from ch1.data import IDX_FILES, MAX_IMAGE_BYTES, DataError, load_mnist, read_idx

MB = 2**20
ZEROS = gzip.compress(bytes(16 * MB), compresslevel=9)  # 16 MB of zeros in about 16 kB


def refused(path, name=None, loader=load_mnist):
    """Run the loader on ``path``; return its one-line DataError message, which names the file."""
    previous = signal.signal(signal.SIGALRM, _hung) if hasattr(signal, "SIGALRM") else None
    if previous is not None:
        signal.alarm(10)  # a loader that opens a FIFO would wait here forever
    try:
        with pytest.raises(DataError) as info:
            if loader is load_mnist:
                load_mnist(str(path), full=False)
            else:
                loader(str(path))
    finally:
        if previous is not None:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    assert (name or os.path.basename(str(path))) in message, message
    return message


def _hung(signum, frame):
    raise TimeoutError("the loader hung")


def peak_bytes(action):
    """Run ``action`` and return the most memory Python and numpy held at once meanwhile."""
    tracemalloc.start()
    try:
        action()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


# --- gzip bombs and lying IDX headers ------------------------------------------------------------


def write_bomb(path, header, gigabytes=1):
    """An IDX .gz whose header is followed by ``gigabytes`` of zeros, as concatenated gzip members."""
    with open(path, "wb") as f:
        f.write(gzip.compress(header))
        f.write(ZEROS * (gigabytes * 1024 // 16))
    return path


def bomb_folder(tmp_path, header):
    folder = write_idx_folder(tmp_path / "idx", small_arrays())
    bomb = write_bomb(os.path.join(folder, IDX_FILES["x_train"] + ".gz"), header)
    assert os.path.getsize(bomb) < 2 * MB
    return folder, IDX_FILES["x_train"] + ".gz"


def test_gzip_bomb_with_a_small_header_is_not_inflated(tmp_path):
    folder, name = bomb_folder(tmp_path, idx_header(100, 28, 28))
    peak = peak_bytes(lambda: refused(folder, name))
    assert peak < 10 * MB, f"{peak:,} bytes"
    assert "IDX header says 100x28x28 = 78,400 bytes, file holds more (trailing bytes" in refused(folder, name)


def test_gzip_bomb_with_the_largest_legal_header_stays_bounded(tmp_path):
    folder, name = bomb_folder(tmp_path, idx_header(60000, 28, 28))
    peak = peak_bytes(lambda: refused(folder, name))
    assert peak < MAX_IMAGE_BYTES + 20 * MB, f"{peak:,} bytes"


def test_gzip_bomb_declaring_more_than_mnist_is_refused_from_its_header(tmp_path):
    folder, name = bomb_folder(tmp_path, idx_header(10_000_000, 28, 28))
    peak = peak_bytes(lambda: refused(folder, name))
    assert peak < 5 * MB, f"{peak:,} bytes"
    assert "IDX header declares a 10000000x28x28 array" in refused(folder, name)


@pytest.mark.skipif(sys.platform == "win32", reason="no resource module")
def test_gzip_bomb_in_a_fresh_process_keeps_its_resident_memory(tmp_path):
    """ru_maxrss in a process that has only numpy and the loader (no Keras) barely moves."""
    folder, _ = bomb_folder(tmp_path, idx_header(60000, 28, 28))
    npz = tmp_path / "huge.npz"
    write_npz(npz, x_train=npy_header((10**9, 28, 28)) + bytes(100))
    script = (
        "import importlib.util, resource, sys\n"
        "spec = importlib.util.spec_from_file_location('data', sys.argv[1])\n"
        "data = importlib.util.module_from_spec(spec); spec.loader.exec_module(data)\n"
        "for path in sys.argv[2:]:\n"
        "    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    try: data.load_mnist(path, full=False)\n"
        "    except data.DataError: pass\n"
        "    print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, ch1.data.__file__, folder, str(npz)],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    limit = 100 * MB if sys.platform == "darwin" else 100 * 1024  # ru_maxrss is in bytes on macOS, else kB
    for line in out.splitlines():
        before, after = map(int, line.split())
        assert after - before < limit, out


def test_idx_dimensions_whose_product_overflows_int64(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_header(2**31, 2**31, 2**31) + bytes(16))
    message = refused(path, loader=read_idx)
    assert "IDX header declares a 2147483648x2147483648x2147483648 array" in message


def test_idx_of_four_dimensions_is_not_mnist(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(idx_header(2**32 - 1, 2**32 - 1, 28, 28))
    assert "IDX header declares a 4294967295x4294967295x28x28 array" in refused(path, loader=read_idx)


def test_label_file_declaring_billions_of_labels(tmp_path):
    folder = write_idx_folder(tmp_path, small_arrays(), gz=False)
    name = IDX_FILES["y_test"]
    (tmp_path / name).write_bytes(idx_header(2**32 - 1) + bytes(10))
    assert "IDX header declares a 4294967295 array" in refused(folder, name)


def test_raw_idx_with_trailing_bytes(tmp_path):
    folder = write_idx_folder(tmp_path, small_arrays(), gz=False)
    path = tmp_path / IDX_FILES["y_train"]
    path.write_bytes(path.read_bytes() + b"extra")
    message = refused(folder, IDX_FILES["y_train"])
    assert "IDX header says 60 = 60 bytes, file holds more (trailing bytes after the data)" in message


def test_truncated_idx_header(tmp_path):
    folder = write_idx_folder(tmp_path, small_arrays())
    name = IDX_FILES["x_test"] + ".gz"
    (tmp_path / name).write_bytes(gzip.compress(idx_header(10, 28, 28)[:9]))
    assert "truncated IDX header" in refused(folder, name)


def test_gzip_with_a_bad_crc(tmp_path):
    folder = write_idx_folder(tmp_path, small_arrays())
    path = tmp_path / (IDX_FILES["y_train"] + ".gz")
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    path.write_bytes(bytes(data))
    assert "corrupt or truncated gzip (CRC check failed" in refused(folder, path.name)


# --- npz files that lie in their headers ---------------------------------------------------------


def npy_header(shape, descr="|u1"):
    """A version 1.0 .npy header declaring ``shape`` and ``descr``, written by hand."""
    text = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, tuple(shape))
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def npy_bytes(array):
    return npy_header(array.shape, array.dtype.str) + array.tobytes()


def write_npz(path, compress_type=zipfile.ZIP_STORED, **members):
    """An npz of small good arrays, with the members given (raw .npy bytes) in their place."""
    arrays = small_arrays()
    with zipfile.ZipFile(path, "w", compress_type) as zf:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            zf.writestr(key + ".npy", members.get(key) or npy_bytes(arrays[key]))
    return path


def patch_zip_entry(path, member, **fields):
    """Overwrite fields of ``member``'s local header and central directory entry in place."""
    local = {"flags": 6, "method": 8, "size": 22}  # offsets in the local file header
    central = {"flags": 8, "method": 10, "size": 24}  # offsets in the central directory entry
    with zipfile.ZipFile(path) as zf:
        offset = zf.getinfo(member).header_offset
    data = bytearray(open(path, "rb").read())
    name = member.encode()
    starts = [offset] + [i for i in _find_all(data, b"PK\x01\x02") if data[i + 46:i + 46 + len(name)] == name]
    assert len(starts) == 2
    for start, layout in zip(starts, (local, central)):
        for field, value in fields.items():
            width = 4 if field == "size" else 2
            data[start + layout[field]:start + layout[field] + width] = value.to_bytes(width, "little")
    open(path, "wb").write(bytes(data))


def _find_all(data, pattern):
    i = data.find(pattern)
    while i >= 0:
        yield i
        i = data.find(pattern, i + 1)


def test_npz_declaring_a_huge_shape_is_refused_from_its_header(tmp_path):
    path = write_npz(tmp_path / "huge.npz", x_train=npy_header((10**9, 28, 28)) + bytes(100))
    peak = peak_bytes(lambda: refused(path))
    assert peak < 5 * MB, f"{peak:,} bytes"
    assert "x_train declares 1,000,000,000 images, more than MNIST's 60,000" in refused(path)


def test_npz_labels_whose_size_overflows_int64(tmp_path):
    path = write_npz(tmp_path / "labels.npz", y_test=npy_header((2**70,), "<i8"))
    assert "y_test declares 1,180,591,620,717,411,303,424 labels" in refused(path)


def test_npz_images_of_absurd_shape(tmp_path):
    path = write_npz(tmp_path / "wide.npz", x_test=npy_header((1, 2**40, 2**40)))
    assert "x_test has shape (1, 1099511627776, 1099511627776), expected (N, 28, 28)" in refused(path)


def test_npz_of_full_size_float_images_is_refused_before_loading(tmp_path):
    path = write_npz(tmp_path / "floats.npz", x_train=npy_header((60000, 28, 28), "<f8") + bytes(10))
    peak = peak_bytes(lambda: refused(path))
    assert peak < 5 * MB, f"{peak:,} bytes"
    assert "x_train has dtype float64, expected uint8 pixels" in refused(path)


def test_npz_deflate_bomb_is_not_inflated_past_its_header(tmp_path):
    path = tmp_path / "bomb.npz"
    arrays = small_arrays()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            with zf.open(key + ".npy", "w") as member:
                member.write(npy_bytes(arrays[key]))
                for _ in range(4 if key == "x_train" else 0):  # 64 MB of zeros after the array
                    member.write(bytes(16 * MB))
    assert os.path.getsize(path) < 2 * MB
    peak = peak_bytes(lambda: refused(path))
    assert peak < 10 * MB, f"{peak:,} bytes"
    message = refused(path)
    assert "x_train.npy declares 67,156,032 bytes uncompressed, more than any MNIST array" in message


def test_npz_member_that_runs_on_past_its_array(tmp_path):
    array = small_arrays()["x_test"]
    path = write_npz(tmp_path / "long.npz", x_test=npy_bytes(array) + bytes(1000))
    assert "corrupt npz (x_test.npy holds more bytes than its header declares)" in refused(path)


@pytest.mark.parametrize("member, patch, fault", [
    ("y_train.npy", {"size": 0xF0000000}, "y_train.npy declares 4,026,531,840 bytes uncompressed"),  # huge
    ("x_train.npy", {"flags": 0x1}, "x_train.npy is encrypted"),
    ("x_test.npy", {"method": 99}, "x_test.npy uses zip compression method 99"),
])
def test_npz_member_whose_zip_entry_lies_or_locks(member, patch, fault, tmp_path):
    path = write_npz(tmp_path / "patched.npz")
    patch_zip_entry(path, member, **patch)
    assert fault in refused(path)


def test_npz_member_compressed_with_bzip2(tmp_path):
    path = write_npz(tmp_path / "bz2.npz", compress_type=zipfile.ZIP_BZIP2)
    assert "x_train.npy uses zip compression method 12; an npz member is stored (0) or deflated (8)" in refused(path)


def test_npz_with_a_bad_crc(tmp_path):
    path = write_npz(tmp_path / "crc.npz")
    data = bytearray(path.read_bytes())
    data[data.find(b"\n", data.find(b"NUMPY")) + 50] ^= 0xFF  # a pixel of x_train
    path.write_bytes(bytes(data))
    assert "corrupt or truncated npz (x_train.npy: Bad CRC-32" in refused(path)


def test_npz_of_pickled_objects_is_refused(tmp_path):
    arrays = dict(small_arrays(), x_train=np.array([{"a": 1}, None], dtype=object))
    np.savez(tmp_path / "pickle.npz", **arrays)  # np.savez pickles object arrays
    message = refused(tmp_path / "pickle.npz")
    assert "x_train is an array of Python objects (a pickle); refusing to load it" in message


def test_npz_larger_than_any_mnist_npz(tmp_path):
    path = tmp_path / "large.npz"
    with open(path, "wb") as f:
        f.write(b"PK\x03\x04")
        f.truncate(300 * MB)  # sparse: takes no disk space
    assert "large.npz: 314,572,800 bytes, larger than any MNIST npz can be" in refused(path)


# --- things that are not regular files -----------------------------------------------------------

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


@needs_fifo
def test_fifo_as_data_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "mnist.npz"
    os.mkfifo(fifo)
    assert refused(fifo).endswith("mnist.npz: not a regular file (a FIFO), not an MNIST file")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_as_data():
    assert refused("/dev/zero") == "/dev/zero: not a regular file (a character device), not an MNIST file"


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_socket_as_data(tmp_path):
    path = tmp_path / "s.npz"
    with socket.socket(socket.AF_UNIX) as server:
        try:
            server.bind(str(path))
        except OSError as exc:  # e.g. a temporary folder whose path is too long for a socket
            pytest.skip(f"cannot bind a Unix socket here ({exc})")
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        assert refused(path).endswith("s.npz: not a regular file (a socket), not an MNIST file")


@pytest.mark.parametrize("key, suffix, make, kind", [
    pytest.param("y_test", ".gz", os.mkfifo, "not a regular file (a FIFO)", marks=needs_fifo),
    pytest.param("x_train", "", lambda path: os.symlink("/dev/zero", path), "not a regular file (a character device)",
                 marks=pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")),
    ("x_test", ".gz", os.mkdir, "a folder"),
], ids=["fifo", "dev-zero", "folder"])
def test_an_idx_file_that_is_not_a_regular_file(key, suffix, make, kind, tmp_path):
    folder = write_idx_folder(tmp_path, small_arrays(), gz=bool(suffix))
    name = IDX_FILES[key] + suffix
    os.remove(tmp_path / name)
    make(tmp_path / name)
    assert refused(folder, name).endswith(f"{name}: {kind}, not an MNIST IDX file")


# --- the dotted IDX names ------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_dotted_idx_names_load(tmp_path, gz):
    arrays = small_arrays()
    for key, stem in IDX_FILES.items():
        dotted = stem.replace("-idx", ".idx")  # train-images.idx3-ubyte
        write_idx(tmp_path / (dotted + (".gz" if gz else "")), arrays[key])
    assert sorted(os.listdir(tmp_path))[0].startswith("t10k-images.idx3-ubyte")
    (x_train, y_train), (x_test, y_test) = load_mnist(str(tmp_path), full=False)
    for got, key in ((x_train, "x_train"), (y_train, "y_train"), (x_test, "x_test"), (y_test, "y_test")):
        assert np.array_equal(got, arrays[key])
