"""predict.py against bad input, in-process: unusable images (one line each, the others still classified),
a broken model's NaN or infinite outputs, and file names that would forge lines."""

import os

import keras
import numpy as np
import pytest
from PIL import Image

import predict
from ch1.data import prepare_images
from tests.your_digit.test_predict import run, save
from your_digit.digits import read_image, to_mnist


def bad_images(folder):
    """Each unusable image: (its file, what its one line says)."""
    (folder / "notes.png").write_text("not an image\n")
    white = save(np.full((60, 40), 255), folder / "white.png")
    cut = folder / "cut.png"
    cut.write_bytes(open(white, "rb").read()[:60])
    Image.new("L", (3000, 3000), 255).save(folder / "bomb.png")
    Image.fromarray(np.full((20, 20), np.nan, np.float32), mode="F").save(folder / "nan.tif")
    os.mkfifo(folder / "pipe.png")
    return [(str(folder / "nope.png"), "nope.png: no such file"),
            (str(folder / "notes.png"), "notes.png: not an image file"),
            (white, "white.png: blank, no digit stands out of the background"),
            (str(cut), "cut.png: corrupt or truncated image"),
            (str(folder / "bomb.png"), "bomb.png: too many pixels to be a digit image (Image size (9000000 pixels)"),
            (str(folder / "nan.tif"), "nan.tif: no finite pixels"),
            (str(folder), f"{folder}: a folder, not an image file"),
            (str(folder / "pipe.png"), "pipe.png: not a regular file (a FIFO), not an image file")]


def test_each_bad_image_is_one_line_and_the_others_are_classified(untrained_mlp, first_test_digit, tmp_path, capsys,
                                                                   monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4_000_000)  # Pillow's own limit, lowered: a 9-megapixel bomb
    cases = bad_images(tmp_path)
    argv = [first_test_digit] + [bad for bad, _ in cases] + [first_test_digit, "--model", untrained_mlp]
    _, code, out, err = run(argv, capsys)
    assert code == 2 and [line.split(":")[0] for line in out] == [first_test_digit] * 2
    assert len(err) == len(cases)
    for line, (_, expected) in zip(err, cases):
        assert "error: " in line and expected in line, (line, expected)


def saved_dense(path, kernel):
    """A one-layer softmax model on 784 inputs with the given kernel (784, 10) and no bias, saved."""
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    model.layers[0].set_weights([np.broadcast_to(np.float32(kernel), (784, 10)), np.zeros(10, np.float32)])
    model.save(path)
    return str(path)


@pytest.mark.parametrize("weight", [np.nan, np.inf])
def test_nan_or_infinite_outputs_are_an_error_not_nan_percent(weight, mnist_arrays, tmp_path, capsys):
    model = saved_dense(tmp_path / "broken.keras", weight)
    images = [save(mnist_arrays["x_test"][i], tmp_path / f"{i}.png") for i in range(3)]
    _, code, out, err = run(images + ["--model", model], capsys)
    assert code == 2 and out == [] and len(err) == 3
    for image, line in zip(images, err):
        assert line.endswith(f"error: {image}: --model {model} gave NaN or infinite outputs for it (a broken model)")


def test_an_overflow_for_one_image_leaves_the_others_as_they_are(mnist_arrays, tmp_path, capsys):
    """Logits overflow to infinity for the image with the most ink only: that image gets an error line,
    the other its softmax output unchanged (not put through a second softmax with the broken row)."""
    images = [save(x, tmp_path / f"{i}.png") for i, x in enumerate(mnist_arrays["x_test"][:20])]
    ink = np.array([prepare_images(to_mnist(read_image(p)[0]), (784,)).sum() for p in images])
    light, heavy = int(ink.argmin()), int(ink.argmax())
    kernel = np.zeros((784, 10), np.float32)
    kernel[:, 0] = 2 * float(np.finfo(np.float32).max) / float(ink[light] + ink[heavy])  # finite for one image
    model = saved_dense(tmp_path / "overflow.keras", kernel)
    _, code, out, err = run([images[light], images[heavy], "--model", model], capsys)
    assert code == 2 and out == [f"{images[light]}: 0  (0 100.0%, 1 0.0%, 2 0.0%)"] and len(err) == 1
    assert f"{images[heavy]}: --model {model} gave NaN or infinite outputs" in err[0]


def test_file_names_with_newlines_cannot_forge_result_lines(untrained_mlp, first_test_digit, tmp_path, capsys,
                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = ["two\nlines.png", "cr\rreturn.png", "esc\x1b[1Aape.png", "line\u2028separator.png"]
    for name in names:
        os.link(first_test_digit, name)
    forged = "gone.png: 7  (7 99.0%, 1 0.5%, 9 0.2%)\nreal.png"
    _, code, out, err = run(names + [forged, "--model", untrained_mlp], capsys)
    assert code == 2 and len(out) == len(names) and len(err) == 1
    for name, line in zip(["two\\nlines.png", "cr\\rreturn.png", "esc\\x1b[1Aape.png", "line\\u2028separator.png"], out):
        assert line.startswith(name + ": ")
    assert err[0].endswith("error: gone.png: 7  (7 99.0%, 1 0.5%, 9 0.2%)\\nreal.png: no such file")
    _, code, out, err = run([names[0], "--model", "no\nmodel.keras"], capsys)
    assert code == 2 and out == [] and len(err) == 1 and "--model no\\nmodel.keras: no such file" in err[0]
