"""The MNIST loader (ch1/data.py): the data rule, every layout on the genuine MNIST, and each fault a
user's file may have: one DataError, one line naming the file, memory bounded."""

import gzip
import os
import shutil
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

from ch1.data import IDX_FILES, DataError, load_mnist
from tests.support import idx_header, small_arrays, write_idx, write_idx_folder

MB = 2**20


def check_genuine(data):
    (x_train, y_train), (x_test, y_test) = data
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert x_train.dtype == np.uint8 and list(y_train[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert abs(x_train.mean() / 255 - 0.1306604762738429) < 1e-9


def test_npz_and_the_folders_holding_it_or_the_idx_files(mnist_npz, mnist_idx_dir, tmp_path, monkeypatch):
    check_genuine(load_mnist(mnist_npz))
    check_genuine(load_mnist(mnist_idx_dir))
    os.symlink(mnist_npz, tmp_path / "mnist.npz")
    check_genuine(load_mnist(str(tmp_path)))  # a folder holding mnist.npz
    monkeypatch.setenv("MNIST_DATA", str(tmp_path))  # MNIST_DATA follows the same rule
    check_genuine(load_mnist())


@pytest.mark.parametrize("dotted", [False, True])
def test_raw_idx_files_also_under_dotted_names(mnist_idx_dir, tmp_path, dotted):
    """Raw IDX files, also under the names with a '.' before 'idx' (train-images.idx3-ubyte)."""
    for stem in IDX_FILES.values():
        name = stem.replace("-idx", ".idx") if dotted else stem
        with gzip.open(os.path.join(mnist_idx_dir, stem + ".gz")) as src, open(tmp_path / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    check_genuine(load_mnist(str(tmp_path)))


def test_the_tests_find_keras_cache(mnist_npz, tmp_path, monkeypatch):
    """With no MNIST_DATA, the tests use Keras' own cache, $KERAS_HOME/datasets/mnist.npz, if it is MNIST."""
    from tests import conftest

    (tmp_path / "datasets").mkdir()
    os.symlink(mnist_npz, tmp_path / "datasets" / "mnist.npz")
    monkeypatch.delenv("MNIST_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert conftest.find_mnist()[0] == str(tmp_path / "datasets" / "mnist.npz")
    os.remove(tmp_path / "datasets" / "mnist.npz")
    (tmp_path / "datasets" / "mnist.npz").write_bytes(b"PK\x03\x04 half a download")
    path, reason = conftest.find_mnist()
    assert path is None and "Keras' cache" in reason and "corrupt or truncated npz" in reason


def test_download_failure_says_how_to_point_at_files(monkeypatch):
    import keras

    def offline():
        raise OSError("URL fetch failure: no network")

    monkeypatch.delenv("MNIST_DATA", raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataError, match="could not download MNIST.*--data PATH or set MNIST_DATA"):
        load_mnist()


def test_small_files_load_when_the_full_size_is_not_required(tmp_path):
    arrays = small_arrays()
    (x_train, _), (_, y_test) = load_mnist(write_idx_folder(tmp_path / "idx", arrays), full=False)
    assert np.array_equal(x_train, arrays["x_train"]) and np.array_equal(y_test, arrays["y_test"])
    np.savez(tmp_path / "small.npz", **arrays)
    assert np.array_equal(load_mnist(str(tmp_path / "small.npz"), full=False)[0][0], arrays["x_train"])
    with pytest.raises(DataError, match="small.npz: 60 train images, expected 60,000"):
        load_mnist(str(tmp_path / "small.npz"))


# --- faults: one line naming the file ------------------------------------------------------------


def refused(path, name=None):
    """The loader's one-line DataError message on ``path``, which names the file (``name``)."""
    with pytest.raises(DataError) as info:
        load_mnist(str(path), full=False)
    message = str(info.value)
    assert "\n" not in message and (name or os.path.basename(str(path))) in message, message
    return message


def peak_bytes(action):
    """The most memory Python and numpy held at once while ``action`` ran."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_missing_paths_say_where_they_came_from(tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"^--data .*nowhere: no such file or folder; pass --data PATH"):
        load_mnist(str(tmp_path / "nowhere"))
    monkeypatch.setenv("MNIST_DATA", str(tmp_path / "gone.npz"))
    with pytest.raises(DataError, match="^MNIST_DATA .*gone.npz: no such file or folder"):
        load_mnist()
    (tmp_path / "notes.txt").write_text("no data here\n")
    monkeypatch.setenv("MNIST_DATA", str(tmp_path))  # a folder with neither mnist.npz nor IDX files
    with pytest.raises(DataError, match=f"^MNIST_DATA={tmp_path}: no train-images-idx3-ubyte\\[.gz\\] here"):
        load_mnist()


def test_a_loop_of_symbolic_links(tmp_path):
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    assert refused(tmp_path / "a").endswith("a: cannot read (a loop of symbolic links)")


@pytest.mark.parametrize("make, kind", [
    (os.mkfifo, "not a regular file (a FIFO)"),  # opened, it would wait for a writer forever
    (lambda path: os.symlink("/dev/zero", path), "not a regular file (a character device)"),
    (os.mkdir, "a folder"),
], ids=["fifo", "dev-zero", "folder"])
def test_what_is_not_a_regular_file_is_refused_unopened(make, kind, tmp_path):
    if kind != "a folder":  # (a folder named by --data is read as a folder of IDX files)
        make(tmp_path / "mnist.npz")
        assert refused(tmp_path / "mnist.npz").endswith(f"mnist.npz: {kind}, not an MNIST file")
    folder = write_idx_folder(tmp_path / "idx", small_arrays())
    name = IDX_FILES["y_test"] + ".gz"
    os.remove(os.path.join(folder, name))
    make(os.path.join(folder, name))
    assert refused(folder, name).endswith(f"{name}: {kind}, not an MNIST IDX file")


def test_files_of_the_wrong_kind(tmp_path, mnist_idx_dir):
    (tmp_path / "notes.txt").write_text("hello\n")
    assert "neither an npz file nor a folder of MNIST IDX files" in refused(tmp_path / "notes.txt")
    labels = os.path.join(mnist_idx_dir, IDX_FILES["y_test"] + ".gz")
    assert "a single IDX file; pass the folder that holds all four" in refused(labels)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    assert "npz lacks x_train, y_train, x_test, y_test" in refused(tmp_path / "other.npz")
    folder = write_idx_folder(tmp_path / "idx", small_arrays(), gz=False)
    (tmp_path / "idx" / IDX_FILES["y_train"]).write_bytes(b"\x12\x34\x56\x78" + bytes(60))
    assert "not an IDX file of unsigned bytes (bad magic number)" in refused(folder, IDX_FILES["y_train"])
    write_idx(tmp_path / "idx" / IDX_FILES["y_train"], np.zeros(60), magic_type=0x0D)  # floats
    assert "not an IDX file of unsigned bytes" in refused(folder, IDX_FILES["y_train"])


def test_truncated_and_corrupt_npz(mnist_npz, tmp_path):
    (tmp_path / "cut.npz").write_bytes(open(mnist_npz, "rb").read()[:100_000])
    assert "cut.npz: corrupt or truncated npz" in refused(tmp_path / "cut.npz")
    with zipfile.ZipFile(tmp_path / "crc.npz", "w") as zf:  # stored: a pixel can be flipped in place
        for key, array in small_arrays().items():
            with zf.open(key + ".npy", "w") as member:
                np.save(member, array)
    data = bytearray((tmp_path / "crc.npz").read_bytes())
    data[data.find(b"\n", data.find(b"NUMPY")) + 50] ^= 0xFF  # a pixel of x_train
    (tmp_path / "crc.npz").write_bytes(bytes(data))
    assert "corrupt or truncated npz (Bad CRC-32" in refused(tmp_path / "crc.npz")


def test_truncated_and_corrupt_idx(mnist_idx_dir, tmp_path):
    write_idx_folder(tmp_path / "gz", small_arrays())
    name = IDX_FILES["x_train"] + ".gz"
    whole = open(os.path.join(mnist_idx_dir, name), "rb").read()
    (tmp_path / "gz" / name).write_bytes(whole[: len(whole) // 2])
    assert "corrupt or truncated gzip" in refused(tmp_path / "gz", name)
    data = bytearray(whole)
    data[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    (tmp_path / "gz" / name).write_bytes(bytes(data))
    assert "corrupt or truncated gzip (CRC check failed" in refused(tmp_path / "gz", name)
    folder = write_idx_folder(tmp_path / "raw", small_arrays(), gz=False)
    path = tmp_path / "raw" / IDX_FILES["x_test"]
    path.write_bytes(path.read_bytes()[:-5])
    assert "IDX header says 10x28x28 = 7,840 bytes, file holds 7,835 (truncated)" in refused(folder, path.name)
    path.write_bytes(idx_header(10, 28, 28)[:9])
    assert "truncated IDX header" in refused(folder, path.name)


@pytest.mark.parametrize("change, fault", [
    ({"x_train": np.zeros((60, 32, 32), np.uint8)}, r"x_train has shape (60, 32, 32), expected (N, 28, 28)"),
    ({"x_test": np.zeros((10, 28, 28), np.float32)}, "x_test has dtype float32, expected uint8 pixels"),
    ({"y_train": np.zeros((60, 1), np.uint8)}, "y_train has shape (60, 1), expected (N,)"),
    ({"y_train": np.zeros(60, np.float32)}, "y_train has dtype float32, expected integer labels"),
    ({"y_train": np.full(60, 10, np.uint8)}, "y_train has labels 10..10, expected 0..9"),
    ({"y_test": np.zeros(5, np.uint8)}, "y_test has shape (5,), expected (10,) to match x_test"),
    ({"x_train": np.empty((60, 28, 28), object)}, "x_train has dtype object, expected uint8"),  # a pickle: unread
])
def test_arrays_that_are_not_mnist(change, fault, tmp_path):
    np.savez(tmp_path / "bad.npz", **{**small_arrays(), **change})
    assert fault in refused(tmp_path / "bad.npz")


# --- far too large: refused from a size or a header, in bounded memory ----------------------------


def npy_header(shape, descr="|u1"):
    """A version 1.0 .npy header declaring ``shape`` and ``descr``, written by hand."""
    text = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, tuple(shape))
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def write_npz(path, **members):
    """An npz of small good arrays, with the members given (raw .npy bytes) in their place."""
    with zipfile.ZipFile(path, "w") as zf:
        for key, array in small_arrays().items():
            zf.writestr(key + ".npy", members.get(key) or npy_header(array.shape) + array.tobytes())
    return path


def test_a_gzip_bomb_is_inflated_no_further_than_its_header_declares(tmp_path):
    folder = write_idx_folder(tmp_path, small_arrays())
    name = IDX_FILES["x_train"] + ".gz"
    with open(tmp_path / name, "wb") as f:  # a header for 100 images, then 1 GB of zeros in about 1 MB
        f.write(gzip.compress(idx_header(100, 28, 28)) + gzip.compress(bytes(16 * MB), 9) * 64)
    assert os.path.getsize(tmp_path / name) < 2 * MB
    assert peak_bytes(lambda: refused(folder, name)) < 10 * MB
    assert "IDX header says 100x28x28 = 78,400 bytes, file holds more (trailing bytes)" in refused(folder, name)


@pytest.mark.parametrize("shape", [(10_000_000, 28, 28), (2**31, 2**31, 2**31), (2**32 - 1,)])
def test_an_idx_header_declaring_more_than_mnist(shape, tmp_path):
    folder = write_idx_folder(tmp_path, small_arrays(), gz=False)
    name = IDX_FILES["x_train" if len(shape) == 3 else "y_test"]
    (tmp_path / name).write_bytes(idx_header(*shape) + bytes(16))
    assert f"IDX header declares a {'x'.join(map(str, shape))} array" in refused(folder, name)


def test_an_npz_header_declaring_more_than_mnist(tmp_path):
    path = write_npz(tmp_path / "huge.npz", x_train=npy_header((10**9, 28, 28)) + bytes(100))
    assert peak_bytes(lambda: refused(path)) < 5 * MB
    assert "x_train declares 1,000,000,000 images, more than MNIST's 60,000" in refused(path)
    path = write_npz(tmp_path / "labels.npz", y_test=npy_header((2**70,), "<i8"))
    assert "y_test declares 1,180,591,620,717,411,303,424 labels" in refused(path)


def test_an_npz_member_declaring_more_bytes_than_mnist(tmp_path):
    """The zip entry's declared size (a deflate bomb's, or a lie) is checked before a byte is inflated."""
    path = write_npz(tmp_path / "bomb.npz")
    with zipfile.ZipFile(path) as zf:
        offset = zf.getinfo("y_train.npy").header_offset
    data = bytearray(path.read_bytes())
    directory = int.from_bytes(data[data.rfind(b"PK\x05\x06") + 16:][:4], "little")
    central = data.find(b"PK\x01\x02", directory + 1)  # the second entry of the central directory: y_train's
    for start in (offset + 22, central + 24):  # the uncompressed size, in both headers
        data[start:start + 4] = (0xF0000000).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert peak_bytes(lambda: refused(path)) < 5 * MB
    assert "y_train.npy declares 4,026,531,840 bytes uncompressed, more than any MNIST array" in refused(path)


def test_an_npz_larger_than_any_mnist_npz(tmp_path):
    with open(tmp_path / "large.npz", "wb") as f:
        f.write(b"PK\x03\x04")
        f.truncate(300 * MB)  # sparse: takes no disk space
    assert "large.npz: 314,572,800 bytes, larger than any MNIST npz can be" in refused(tmp_path / "large.npz")
