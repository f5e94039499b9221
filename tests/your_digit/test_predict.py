"""predict.py in-process: own images through a saved model, prepared as MNIST was; other listings' models;
--show; a bad model, flag or output folder in one line and exit 2."""

import os

import keras
import numpy as np
import pytest
from PIL import Image

import cnn_mnist
import mlp_mnist
import predict
import rnn_mnist
from benchmarks import photos
from ch1.data import prepare_images
from your_digit import digits as prep

N_DIGITS = 20


@pytest.fixture(scope="module")
def digits(mnist_arrays):
    return mnist_arrays["x_test"][:N_DIGITS], mnist_arrays["y_test"][:N_DIGITS]


def save(array, path):
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return str(path)


def scaled(image, size):
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))


def run(argv, capsys):
    """predict.main in-process: (results or None, exit code, stdout lines without the first, which names the
    model's run (tests/your_digit/test_predict_run.py), stderr lines)."""
    try:
        results, code = predict.main(argv), 0
    except SystemExit as exit_:
        results, code = None, exit_.code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    out = captured.out.strip().splitlines()
    return results, code, out[1:] if out and out[0].startswith("Model: ") else out, captured.err.strip().splitlines()


def seen(path):
    return prep.to_mnist(prep.read_image(path)[0], path)


def expected_digits(smoke_cnn, images):
    return smoke_cnn[0].predict(prepare_images(images, cnn_mnist.input_shape), verbose=0)


# --- own images classified as the model classifies the arrays -----------------------------------


def test_pngs_of_other_sizes_and_inverted_agree_with_the_arrays(smoke_cnn, digits, tmp_path, capsys):
    images, _ = digits
    expected = expected_digits(smoke_cnn, images)
    variants = {
        "same": lambda x: x,
        "inverted": lambda x: 255 - x,
        "140x140": lambda x: scaled(x, (140, 140)),
        "56x100-padded-inverted": lambda x: 255 - np.pad(scaled(x, (56, 56)), ((30, 14), (0, 0))),
    }
    files = {name: [save(make(x), tmp_path / f"{i}-{name}.png") for i, x in enumerate(images)]
             for name, make in variants.items()}
    results, code, out, err = run([f for fs in files.values() for f in fs] + ["--model", smoke_cnn[1]], capsys)
    assert code == 0 and err == [] and len(results) == len(out) == len(variants) * N_DIGITS
    by_file = {r["file"]: r for r in results}
    for name, paths in files.items():
        agree = (np.array([by_file[p]["digit"] for p in paths]) == expected.argmax(axis=1)).mean()
        assert agree >= 0.9, f"{name}: {agree:.0%} agree with the predictions on the arrays"
    identical = 0
    for i, path in enumerate(files["same"] + files["inverted"]):
        if np.array_equal(seen(path), images[i % N_DIGITS]):  # preparation is the identity here
            identical += 1
            np.testing.assert_allclose(by_file[path]["probabilities"], expected[i % N_DIGITS], atol=1e-5)
    assert identical >= 1.6 * N_DIGITS
    top3 = by_file[files["same"][0]]["top3"]
    assert out[0].startswith(f"{files['same'][0]}: {top3[0][0]}  ({top3[0][0]} ")
    assert out[0].count("%") == 3 and len(top3) == 3 and top3[0][1] >= top3[1][1] >= top3[2][1]


def test_colour_photos_and_transparency(smoke_cnn, digits, tmp_path, capsys):
    images, _ = digits
    expected = expected_digits(smoke_cnn, images).argmax(axis=1)
    rng = np.random.default_rng(0)
    paths = []
    for i, x in enumerate(images):  # each kind of paper and ink the photo benchmark uses, in turn
        paths.append(str(tmp_path / f"photo-{i}.jpg"))
        Image.fromarray(photos.photo(x, photos.KINDS[i % len(photos.KINDS)], rng, size=300)).save(paths[-1])
    rgba = np.zeros((84, 84, 4), np.uint8)  # black ink whose opacity is the digit, as drawing programs save it
    rgba[..., 3] = scaled(images[0], (84, 84))
    results, code, out, err = run(paths + [save(rgba, tmp_path / "transparent.png"), "--model", smoke_cnn[1]], capsys)
    labels = np.array([r["digit"] for r in results])
    assert code == 0 and err == [] and (labels[:-1] == expected).mean() >= 0.9 and labels[-1] == expected[0]


def test_photo_orientation_and_large_photos(smoke_cnn, digits, tmp_path, capsys):
    images, _ = digits
    upright = 255 - scaled(images[0], (100, 100))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as a phone held sideways writes
    turned = str(tmp_path / "turned.png")
    Image.fromarray(upright).rotate(90, expand=True).save(turned, exif=exif)
    np.testing.assert_array_equal(seen(turned), seen(save(upright, tmp_path / "upright.png")))
    big = np.full((1200, 1600), 255.0)
    big[300:900, 500:1100] = 255 - scaled(images[1], (600, 600))
    large = str(tmp_path / "large.jpg")
    Image.fromarray(big.astype(np.uint8)).convert("RGB").save(large, quality=90)
    grey, shown = prep.read_image(large)
    assert grey.shape == (768, 1024) and shown.shape == (768, 1024, 3)
    results, code, _, _ = run([turned, large, "--model", smoke_cnn[1]], capsys)
    assert code == 0 and [r["digit"] for r in results] == list(expected_digits(smoke_cnn, images[:2]).argmax(axis=1))


@pytest.mark.parametrize("listing", [mlp_mnist, rnn_mnist])
def test_mlp_and_rnn_models_work(listing, digits, tmp_path, capsys):
    """The input shape comes from the model."""
    keras.utils.set_random_seed(0)
    model = listing.build_model()
    path = str(tmp_path / "model.keras")
    model.save(path)
    paths = [save(x, tmp_path / f"{i}.png") for i, x in enumerate(digits[0][:3])]
    results, code, _, err = run(paths + ["--model", path], capsys)
    assert code == 0 and err == []
    for path, result in zip(paths, results):
        x = prepare_images(seen(path), model.input_shape[1:])
        np.testing.assert_allclose(result["probabilities"], model.predict(x, verbose=0)[0], atol=1e-5)


# --- --show ---------------------------------------------------------------------------------------


def test_show_writes_the_seen_png(untrained_mlp, digits, tmp_path, capsys, monkeypatch):
    first = save(255 - scaled(digits[0][0], (90, 90)), tmp_path / "seven.png")
    os.makedirs(tmp_path / "other")
    second = save(digits[0][1], tmp_path / "other" / "seven.png")  # same stem: must not overwrite
    monkeypatch.chdir(tmp_path)
    results, code, _, _ = run([first, "--model", untrained_mlp], capsys)  # without --show: nothing written
    assert code == 0 and results[0]["seen"] is None and not (tmp_path / "outputs").exists()
    results, code, out, _ = run([first, second, "--model", untrained_mlp, "--show", "--output-dir", "shown"], capsys)
    assert code == 0 and [r["seen"] for r in results] == ["shown/seven-seen.png", "shown/seven-2-seen.png"]
    for result in results:
        with Image.open(result["seen"]) as png:
            assert png.format == "PNG" and png.width > png.height > 100
        assert f"  wrote {result['seen']}" in out
    assert sorted(os.listdir("shown")) == ["seven-2-seen.png", "seven-seen.png"]


def test_show_on_a_full_disk_leaves_nothing_half_written(untrained_mlp, first_test_digit, tmp_path, capsys,
                                                         monkeypatch):
    def full(fig, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("matplotlib.figure.Figure.savefig", full)
    out_dir = tmp_path / "shown"
    _, code, _, err = run([first_test_digit, "--model", untrained_mlp, "--show", "--output-dir", str(out_dir)], capsys)
    assert code == 2 and len(err) == 1 and err[0].endswith(f"error: --output-dir {out_dir}: cannot write (No space left "
                                                           "on device)")
    assert os.listdir(out_dir) == []


# --- a bad model, flag or output folder: one line, exit 2, before any image --------------------------


@pytest.mark.parametrize("case", ["missing", "text", "shape"])
def test_a_bad_model_is_one_line_exit_2_before_any_image(case, first_test_digit, tmp_path, capsys, monkeypatch):
    """Each fault of a model file: tests/your_digit/test_model_file.py."""
    model = tmp_path / f"{case}.keras"
    if case == "text":
        model.write_text("not a model\n")
    if case == "shape":
        keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)]).save(model)
    monkeypatch.setattr(predict, "read_image", lambda path: pytest.fail("an image was read despite a bad model"))
    _, code, out, err = run([first_test_digit, "--model", str(model)], capsys)
    expected = {"missing": "no such file; train one first (python cnn_mnist.py saves outputs/cnn-mnist.keras; "
                           "python mlp_mnist.py, a minute, saves outputs/mlp-mnist.keras: give it with --model)",
                "text": "not a Keras model file", "shape": "expected an MNIST classifier"}[case]
    assert code == 2 and out == [] and len(err) == 1
    assert f"error: --model {model}: " in err[0] and expected in err[0], err


def test_bad_flags_and_output_dir(untrained_mlp, first_test_digit, tmp_path, capsys):
    _, code, _, err = run(["--model", untrained_mlp], capsys)
    assert code == 2 and len(err) == 1 and "the following arguments are required: IMAGE" in err[0]
    _, code, _, err = run([first_test_digit, "--model", untrained_mlp, "--shwo"], capsys)
    assert code == 2 and len(err) == 1 and err[0].endswith("unrecognized arguments: --shwo (did you mean --show?)")
    taken = tmp_path / "file"
    taken.write_text("")
    _, code, out, err = run([first_test_digit, "--model", untrained_mlp, "--show", "--output-dir", str(taken)], capsys)
    assert code == 2 and out == [] and len(err) == 1 and f"--output-dir {taken}: cannot write there" in err[0]


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        predict.main(["--help"])
    assert exit_.value.code == 0
    text = "".join(capsys.readouterr().out.split())  # without spaces: argparse wraps lines at hyphens too
    for expected in ("[IMAGE ...]", "--serve", "(default: 8000)", "--show", "(default: outputs)", "--host",
                     "(default: outputs/cnn-mnist.keras here or, where there is none, the project's own beside "
                     "predict.py)"):
        assert "".join(expected.split()) in text
