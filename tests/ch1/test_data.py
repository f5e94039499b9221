"""The MNIST loader on good files in every layout and on each kind of bad input."""

import gzip
import os
import shutil

import numpy as np
import pytest

from ch1.data import IDX_FILES, DataError, load_mnist, read_idx, validate
from tests.support import ROOT, small_arrays, write_idx, write_idx_folder


def check_genuine(data):
    (x_train, y_train), (x_test, y_test) = data
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.shape == (60000,) and y_test.shape == (10000,)
    assert list(y_train[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # ../shared/mnist/README.md
    assert abs(x_train.mean() / 255 - 0.1306604762738429) < 1e-9
    return data


def test_npz(mnist_npz):
    check_genuine(load_mnist(mnist_npz))


def test_idx_gz_folder(mnist_idx_dir, mnist_npz):
    a = check_genuine(load_mnist(mnist_idx_dir))
    b = load_mnist(mnist_npz)
    assert all(np.array_equal(u, v) for u, v in zip(a[0] + a[1], b[0] + b[1]))


@pytest.mark.parametrize("dotted", [False, True])
def test_idx_raw_folder(mnist_idx_dir, tmp_path, dotted):
    """Raw IDX files, also under the names with a '.' before 'idx' (train-images.idx3-ubyte)."""
    for stem in IDX_FILES.values():
        name = stem.replace("-idx", ".idx") if dotted else stem
        with gzip.open(os.path.join(mnist_idx_dir, stem + ".gz")) as src, open(tmp_path / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    check_genuine(load_mnist(str(tmp_path)))


def test_tests_find_keras_cache(mnist_npz, tmp_path, monkeypatch):
    """With no MNIST_DATA, the tests use Keras' own cache, ~/.keras/datasets/mnist.npz ($KERAS_HOME)."""
    from tests import conftest

    (tmp_path / "datasets").mkdir()
    os.symlink(mnist_npz, tmp_path / "datasets" / "mnist.npz")
    monkeypatch.delenv("MNIST_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    path, arrays = conftest.find_mnist()
    assert path == str(tmp_path / "datasets" / "mnist.npz") and arrays["x_train"].shape == (60000, 28, 28)
    # A cache that is not MNIST is not used: the tests then say why and how to get the data.
    os.remove(tmp_path / "datasets" / "mnist.npz")
    (tmp_path / "datasets" / "mnist.npz").write_bytes(b"PK\x03\x04 half a download")
    path, reason = conftest.find_mnist()
    assert path is None and "Keras' cache" in reason and "corrupt or truncated npz" in reason


def test_without_data_the_tests_stop_at_once_with_one_message(tmp_path):
    """No MNIST_DATA, no Keras cache: pytest stops before any test with one message of a few lines."""
    import subprocess
    import sys

    root = ROOT
    env = {**os.environ, "MNIST_DATA": "", "KERAS_HOME": str(tmp_path / "keras"), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           os.path.join(root, "tests", "chapter", "test_models.py")],
                          capture_output=True, text=True, cwd=root, env=env, timeout=300)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode != 0 and output.count("no MNIST found") == 1, output
    assert "MNIST_DATA" in output and len(output.splitlines()) <= 6 and "passed" not in output


def test_mnist_data_environment_variable(mnist_npz, monkeypatch):
    monkeypatch.setenv("MNIST_DATA", mnist_npz)
    check_genuine(load_mnist())


def test_download_failure_says_how_to_point_at_files(monkeypatch):
    import keras

    monkeypatch.delenv("MNIST_DATA", raising=False)

    def offline():
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataError, match="could not download MNIST.*--data PATH or set MNIST_DATA"):
        load_mnist()


# --- bad inputs ------------------------------------------------------------------------------


def test_small_files_load_when_the_full_size_is_not_required(tmp_path):
    arrays = small_arrays()
    (x_train, _), (x_test, y_test) = load_mnist(write_idx_folder(tmp_path / "idx", arrays), full=False)
    assert np.array_equal(x_train, arrays["x_train"]) and np.array_equal(y_test, arrays["y_test"])
    np.savez(tmp_path / "small.npz", **arrays)
    (x_train, _), _ = load_mnist(str(tmp_path / "small.npz"), full=False)
    assert np.array_equal(x_train, arrays["x_train"])


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match=r"^--data .*nowhere: no such file or folder"):
        load_mnist(str(tmp_path / "nowhere"))


def test_missing_mnist_data_path(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_DATA", str(tmp_path / "gone.npz"))
    with pytest.raises(DataError, match="^MNIST_DATA .*gone.npz: no such file or folder"):
        load_mnist()


def test_mnist_data_may_name_the_folder_holding_mnist_npz(mnist_npz, tmp_path, monkeypatch):
    """One rule for every script, tool and the tests: a folder holding mnist.npz is as good as the npz."""
    os.symlink(mnist_npz, tmp_path / "mnist.npz")
    monkeypatch.setenv("MNIST_DATA", str(tmp_path))
    check_genuine(load_mnist())
    check_genuine(load_mnist(str(tmp_path)))  # and --data likewise


def test_a_bad_mnist_data_folder_says_the_path_came_from_mnist_data(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("no data here\n")
    monkeypatch.setenv("MNIST_DATA", str(tmp_path))
    with pytest.raises(DataError) as raised:
        load_mnist()
    assert str(raised.value).startswith(f"MNIST_DATA={tmp_path}: no train-images-idx3-ubyte[.gz] here")
    with pytest.raises(DataError) as raised:
        load_mnist(str(tmp_path))  # named by --data, the message names the folder alone
    assert str(raised.value).startswith(f"{tmp_path}: no train-images")


def test_file_that_is_neither_npz_nor_idx(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(DataError, match="notes.txt: neither an npz file nor a folder of MNIST IDX files"):
        load_mnist(str(path))


def test_single_idx_file_instead_of_folder(mnist_idx_dir):
    with pytest.raises(DataError, match="a single IDX file; pass the folder"):
        load_mnist(os.path.join(mnist_idx_dir, "t10k-labels-idx1-ubyte.gz"))


def test_truncated_npz(mnist_npz, tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_bytes(open(mnist_npz, "rb").read()[:100_000])
    with pytest.raises(DataError, match="mnist.npz: corrupt or truncated npz"):
        load_mnist(str(path))


def test_npz_without_mnist_keys(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(DataError, match="other.npz: npz lacks x_train, y_train, x_test, y_test"):
        load_mnist(str(tmp_path / "other.npz"))


def test_folder_without_idx_files(tmp_path):
    with pytest.raises(DataError, match="no train-images-idx3-ubyte"):
        load_mnist(str(tmp_path))


def test_truncated_gzip(mnist_idx_dir, tmp_path):
    write_idx_folder(tmp_path, small_arrays())
    name = "train-images-idx3-ubyte.gz"
    whole = open(os.path.join(mnist_idx_dir, name), "rb").read()
    (tmp_path / name).write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        load_mnist(str(tmp_path), full=False)


def test_truncated_raw_idx(tmp_path):
    write_idx_folder(tmp_path, small_arrays(), gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte: IDX header says 10x28x28 = 7,840 bytes, file holds 7,835"):
        load_mnist(str(tmp_path), full=False)


def test_idx_with_bad_magic(tmp_path):
    write_idx_folder(tmp_path, small_arrays(), gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x12\x34\x56\x78" + bytes(60))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: not an IDX file"):
        load_mnist(str(tmp_path), full=False)


def test_idx_of_floats_is_refused(tmp_path):
    path = tmp_path / "floats-idx1"
    write_idx(path, np.zeros(4), magic_type=0x0D)
    with pytest.raises(DataError, match="not an IDX file of unsigned bytes"):
        read_idx(str(path))


def test_wrong_image_shape(tmp_path):
    arrays = small_arrays()
    arrays["x_train"] = np.zeros((60, 32, 32), np.uint8)
    np.savez(tmp_path / "big.npz", **arrays)
    with pytest.raises(DataError, match=r"big.npz: x_train has shape \(60, 32, 32\), expected \(N, 28, 28\)"):
        load_mnist(str(tmp_path / "big.npz"), full=False)


def test_wrong_pixel_dtype(tmp_path):
    arrays = small_arrays()
    arrays["x_test"] = arrays["x_test"].astype(np.float32) / 255
    np.savez(tmp_path / "floats.npz", **arrays)
    with pytest.raises(DataError, match="x_test has dtype float32, expected uint8"):
        load_mnist(str(tmp_path / "floats.npz"), full=False)


def test_labels_outside_0_to_9(tmp_path):
    arrays = small_arrays()
    arrays["y_train"][7] = 10
    folder = write_idx_folder(tmp_path, arrays)
    with pytest.raises(DataError, match="y_train has labels 0..10, expected 0..9"):
        load_mnist(folder, full=False)


def test_label_count_must_match_images(tmp_path):
    arrays = small_arrays()
    arrays["y_test"] = arrays["y_test"][:5]
    with pytest.raises(DataError, match=r"y_test has shape \(5,\), expected \(10,\)"):
        validate(arrays, "x.npz", full=False)


def test_full_size_is_required_by_default(tmp_path):
    np.savez(tmp_path / "small.npz", **small_arrays())
    with pytest.raises(DataError, match="small.npz: 60 train images, expected 60,000"):
        load_mnist(str(tmp_path / "small.npz"))
