"""your_digit/model_file.py: a model file that is not a listing's model is refused in one line naming it
(predict.py turns that line into exit 2: tests/your_digit/test_predict.py)."""

import os
import zipfile

import keras
import pytest

import cnn_mnist
import mlp_mnist
import rnn_mnist
from your_digit import model_file
from your_digit.model_file import ModelFileError


def rezip(source, target, replace):
    """A copy of the .keras archive ``source`` with members replaced (name -> bytes)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, replace.get(info.filename, old.read(info)))
    return str(target)


def bad_model_files(folder, untrained, npz):
    """Each fault: (its file, what the one line says after the file's name)."""
    data = open(untrained, "rb").read()
    (folder / "text.keras").write_text("not a model\n")
    (folder / "cut.keras").write_bytes(data[:len(data) // 2])
    (folder / "mnist.keras").write_bytes(open(npz, "rb").read())  # a zip archive, but not of a model
    (folder / "UP.KERAS").write_bytes(data)
    keras.saving.load_model(untrained).save(folder / "legacy.h5")
    os.link(folder / "legacy.h5", folder / "legacy.keras")
    with open(folder / "huge.keras", "wb") as f:
        f.truncate(model_file.MAX_BYTES + 1)  # sparse: nothing written
    (folder / "folder.keras").mkdir()
    os.mkfifo(folder / "pipe.keras")
    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(5)]).save(
        folder / "cifar.keras")
    inputs = keras.Input((784,))
    keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Lambda(lambda x: 2 * x)(inputs))).save(
        folder / "lambda.keras")
    weights = rezip(untrained, folder / "bad-weights.keras", {"model.weights.h5": b"\x89HDF\r\n\x1a\n" + bytes(99)})
    zip_note = "not a Keras model file (a .keras file is a zip archive; this is not)"
    return {
        "corrupt": (weights, "not a Keras model file ("),
        "text": (folder / "text.keras", zip_note),
        "truncated": (folder / "cut.keras", zip_note),
        "zip of no model": (folder / "mnist.keras", "not a Keras model file (KeyError: "),
        "HDF5 as .keras": (folder / "legacy.keras", zip_note),
        ".h5": (folder / "legacy.h5", "not a Keras model file (expected a .keras file, as the listings save)"),
        "upper case": (folder / "UP.KERAS", "Keras reads only names ending in .keras in lower case: rename it"),
        "far too large": (folder / "huge.keras", f"{model_file.MAX_BYTES + 1:,} bytes, more than a model of the"),
        "folder": (folder / "folder.keras", "a folder, not a Keras model file"),
        "FIFO": (folder / "pipe.keras", "not a regular file (a FIFO), not a Keras model file"),
        "missing": (folder / "none.keras", "no such file"),
        "wrong shape": (folder / "cifar.keras", "takes (None, 32, 32, 3) and gives (None, 5); expected an MNIST"),
        "code (safe_mode)": (folder / "lambda.keras", "Requested the deserialization of a `Lambda` layer"),
    }


CASES = ["corrupt", "text", "truncated", "zip of no model", "HDF5 as .keras", ".h5", "upper case", "far too large",
         "folder", "FIFO", "missing", "wrong shape", "code (safe_mode)"]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, untrained_mlp, mnist_npz):
    return bad_model_files(tmp_path_factory.mktemp("bad-models"), untrained_mlp, mnist_npz)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES)
def test_a_bad_model_file_is_one_line_naming_it(case, bad_files):
    path, expected = bad_files[case]
    with pytest.raises(ModelFileError) as refused:
        model_file.load_classifier(str(path), "--model m")
    message = str(refused.value)
    assert message.startswith("--model m: ") and expected in message and "\n" not in message, message


def test_the_listings_models_are_mnist_classifiers(untrained_mlp):
    assert model_file.load_classifier(untrained_mlp).input_shape == (None, 784)
    for listing in (cnn_mnist, rnn_mnist, mlp_mnist):
        model = listing.build_model()
        assert model_file.check_classifier(model, "m") is model


def test_other_models_are_not_mnist_classifiers():
    inputs = keras.Input((784,))
    for model, shapes in [
        (keras.Sequential([keras.Input(batch_shape=(1, 784)), keras.layers.Dense(10)]), "(1, 784) and gives (1, 10)"),
        (keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10),
                           keras.layers.Reshape((10, 1))]), "(None, 28, 28, 1) and gives (None, 10, 1)"),
        (keras.Model(inputs, [keras.layers.Dense(10)(inputs), keras.layers.Dense(10)(inputs)]), "(None, 784) and gives"),
        (keras.Sequential([keras.layers.Dense(10)]), "None and gives None"),
    ]:
        with pytest.raises(ModelFileError, match=r"^m\.keras: takes ") as refused:
            model_file.check_classifier(model, "m.keras")
        assert shapes in str(refused.value) and "expected an MNIST classifier" in str(refused.value)
