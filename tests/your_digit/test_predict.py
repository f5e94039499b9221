"""predict.py: own images through a saved model, prepared as MNIST was; bad input, --show, other models."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import cnn_mnist
import mlp_mnist
import predict
import rnn_mnist
from benchmarks import photos
from your_digit import digits as prep
from ch1.data import prepare_images
from tests.support import ROOT

N_DIGITS = 50


@pytest.fixture(scope="module")
def trained(smoke_cnn):
    """The book's CNN after one epoch on 6,000 real training images (~94% on the test set), saved."""
    return smoke_cnn


@pytest.fixture(scope="module")
def digits(mnist_arrays):
    return mnist_arrays["x_test"][:N_DIGITS], mnist_arrays["y_test"][:N_DIGITS]


def save(array, path):
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return str(path)


def scaled(image, size):
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))


def run(argv, capsys):
    """predict.main in-process: (results or None, exit code, stdout lines, stderr lines), the stdout
    lines without the first line naming the model's run (its tests: tests/study/test_predict_run.py)."""
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


# --- the model file ------------------------------------------------------------------------------


def test_save_load_round_trip_same_predictions(trained, digits):
    model, path = trained
    x = prepare_images(digits[0], cnn_mnist.input_shape)
    expected = model.predict(x, verbose=0)
    for loaded in (keras.models.load_model(path), predict.load_classifier(path)):
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    assert (expected.argmax(axis=1) == digits[1]).mean() > 0.8  # a real classifier, not chance


# --- preparing images as MNIST was made ----------------------------------------------------------


def test_an_mnist_digit_comes_back_unchanged(digits):
    unchanged = [np.array_equal(prep.to_mnist(x.astype(float)), x) for x in digits[0]]
    inverted = [np.array_equal(prep.to_mnist(255 - x.astype(float)), x) for x in digits[0]]
    assert unchanged == inverted
    assert sum(unchanged) >= 0.8 * N_DIGITS  # all but those whose brightest pixel is under 255
    for x, same in zip(digits[0], unchanged):
        if not same:
            assert x.max() < 255 and np.abs(prep.to_mnist(x.astype(float)).astype(int) - x).max() <= 1


def test_digit_is_20_pixels_and_centred_by_mass(digits):
    big = np.zeros((400, 300))
    big[50:250, 20:120] = scaled(digits[0][0], (100, 200))  # tall, off-centre, on a large canvas
    x = prep.to_mnist(big).astype(float)
    rows, cols = np.flatnonzero(x.any(axis=1)), np.flatnonzero(x.any(axis=0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20
    mass = x.sum()
    r, c = np.indices(x.shape)
    assert 13.5 <= (r * x).sum() / mass < 14.5 and 13.5 <= (c * x).sum() / mass < 14.5
    assert x.max() == 255


def test_blank_images_are_refused():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:200, 0:200] / 200
    for blank in (np.full((50, 80), 255.0), np.zeros((28, 28)), 200 + 40 * x - 30 * y + rng.normal(0, 6, x.shape)):
        with pytest.raises(prep.ImageError, match="blank.png: blank, no digit"):
            prep.to_mnist(blank, "blank.png")


def test_otsu_splits_two_levels():
    values = np.concatenate([np.full(500, 30.0), np.full(100, 200.0)])
    assert 30 <= prep.otsu_threshold(values) < 200


# --- own images classified as the model classifies the arrays -----------------------------------


def test_pngs_of_other_sizes_and_inverted_agree_with_the_arrays(trained, digits, tmp_path, capsys):
    model, model_path = trained
    images, _ = digits
    expected = model.predict(prepare_images(images, cnn_mnist.input_shape), verbose=0)
    variants = {
        "same": lambda x: x,
        "inverted": lambda x: 255 - x,
        "140x140": lambda x: scaled(x, (140, 140)),
        "140x140-inverted": lambda x: 255 - scaled(x, (140, 140)),
        "56x100-padded-inverted": lambda x: 255 - np.pad(scaled(x, (56, 56)), ((30, 14), (0, 0))),
    }
    files = {name: [save(make(x), tmp_path / f"{i}-{name}.png") for i, x in enumerate(images)]
             for name, make in variants.items()}
    results, code, out, err = run([f for fs in files.values() for f in fs] + ["--model", model_path], capsys)
    assert code == 0 and err == [] and len(results) == len(out) == len(variants) * N_DIGITS
    by_file = {r["file"]: r for r in results}
    for name, paths in files.items():
        labels = np.array([by_file[p]["digit"] for p in paths])
        agree = (labels == expected.argmax(axis=1)).mean()
        assert agree >= 0.9, f"{name}: {agree:.0%} agree with the predictions on the arrays"
    identical = 0
    for i, path in enumerate(files["same"] + files["inverted"]):
        if np.array_equal(seen(path), images[i % N_DIGITS]):  # preparation is the identity here
            identical += 1
            result = by_file[path]
            assert result["digit"] == expected[i % N_DIGITS].argmax()
            np.testing.assert_allclose(result["probabilities"], expected[i % N_DIGITS], atol=1e-5)
    assert identical >= 1.6 * N_DIGITS
    line = out[0]
    top3 = by_file[files["same"][0]]["top3"]
    assert line.startswith(f"{files['same'][0]}: {top3[0][0]}  ({top3[0][0]} ")
    assert line.count("%") == 3 and len(top3) == 3 and top3[0][1] >= top3[1][1] >= top3[2][1]


def test_colour_photos_work(trained, digits, tmp_path, capsys):
    model, model_path = trained
    images, _ = digits
    expected = model.predict(prepare_images(images[:20], cnn_mnist.input_shape), verbose=0).argmax(axis=1)
    rng = np.random.default_rng(0)
    paths = []
    for i, x in enumerate(images[:20]):  # each kind of paper and ink the photo benchmark uses, in turn
        path = str(tmp_path / f"photo-{i}.jpg")
        Image.fromarray(photos.photo(x, photos.KINDS[i % len(photos.KINDS)], rng, size=300)).save(path, quality=85)
        paths.append(path)
    # A transparent PNG: black ink whose opacity is the digit (as drawing programs save it).
    rgba = np.zeros((84, 84, 4), np.uint8)
    rgba[..., 3] = scaled(images[0], (84, 84))
    paths.append(save(rgba, tmp_path / "transparent.png"))
    results, code, out, err = run(paths + ["--model", model_path], capsys)
    assert code == 0 and err == []
    labels = np.array([r["digit"] for r in results])
    assert (labels[:20] == expected).mean() >= 0.9
    assert labels[20] == expected[0]


def test_photo_orientation_and_large_photos(trained, digits, tmp_path, capsys):
    model, model_path = trained
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
    expected = model.predict(prepare_images(images[:2], cnn_mnist.input_shape), verbose=0).argmax(axis=1)
    results, code, _, _ = run([turned, large, "--model", model_path], capsys)
    assert code == 0 and [r["digit"] for r in results] == list(expected)


# --- other models: the input shape comes from the model ------------------------------------------


@pytest.mark.parametrize("listing", [mlp_mnist, rnn_mnist])
def test_mlp_and_rnn_models_work(listing, digits, tmp_path, capsys):
    keras.utils.set_random_seed(0)
    model = listing.build_model()
    path = str(tmp_path / "model.keras")
    model.save(path)
    images, _ = digits
    paths = [save(x, tmp_path / f"{i}.png") for i, x in enumerate(images[:5])]
    results, code, _, err = run(paths + ["--model", path], capsys)
    assert code == 0 and err == []
    for path, result in zip(paths, results):
        x = prepare_images(seen(path), model.input_shape[1:])
        np.testing.assert_allclose(result["probabilities"], model.predict(x, verbose=0)[0], atol=1e-5)


# --- --show ---------------------------------------------------------------------------------------


def test_show_writes_the_seen_png(trained, digits, tmp_path, capsys):
    _, model_path = trained
    first = save(255 - scaled(digits[0][0], (90, 90)), tmp_path / "seven.png")
    os.makedirs(tmp_path / "other")
    second = save(digits[0][1], tmp_path / "other" / "seven.png")  # same stem: must not overwrite
    out_dir = tmp_path / "shown"
    results, code, out, _ = run([first, second, "--model", model_path, "--show", "--output-dir", str(out_dir)],
                                capsys)
    assert code == 0
    assert [r["seen"] for r in results] == [str(out_dir / "seven-seen.png"), str(out_dir / "seven-2-seen.png")]
    for result in results:
        with Image.open(result["seen"]) as png:
            assert png.format == "PNG" and png.width > png.height > 100
        assert any(result["seen"] in line for line in out)
    assert sorted(os.listdir(out_dir)) == ["seven-2-seen.png", "seven-seen.png"]  # nothing half-written


def test_without_show_nothing_is_written(trained, digits, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results, code, _, _ = run([save(digits[0][0], tmp_path / "a.png"), "--model", trained[1]], capsys)
    assert code == 0 and results[0]["seen"] is None and not (tmp_path / "outputs").exists()


# --- bad input: one line each, exit 2, the good files still classified ---------------------------


def bad_images(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image\n")
    white = save(np.full((60, 40), 255), tmp_path / "white.png")
    truncated = tmp_path / "cut.png"
    save(np.full((60, 40), 255), truncated)
    truncated.write_bytes(truncated.read_bytes()[:60])
    return {
        "missing": (str(tmp_path / "nope.png"), "nope.png: no such file"),
        "text": (str(text), "notes.png: not an image file"),
        "blank": (white, "white.png: blank, no digit stands out of the background"),
        "truncated": (str(truncated), "cut.png: corrupt or truncated image"),
        "folder": (str(tmp_path), f"{tmp_path}: a folder, not an image file"),
    }


@pytest.mark.parametrize("case", ["missing", "text", "blank", "truncated", "folder"])
def test_bad_image_one_line_others_still_classified(case, trained, digits, tmp_path, capsys):
    model, model_path = trained
    good = [save(digits[0][0], tmp_path / "good-0.png"), save(255 - digits[0][1], tmp_path / "good-1.png")]
    bad, expected = bad_images(tmp_path)[case]
    _, code, out, err = run([good[0], bad, good[1], "--model", model_path], capsys)
    assert code == 2
    assert len(err) == 1 and "error: " in err[0] and expected in err[0], err
    assert [line.split(":")[0] for line in out] == good


def test_all_bad_images_in_one_call(trained, digits, tmp_path, capsys):
    cases = bad_images(tmp_path)
    good = save(digits[0][0], tmp_path / "good.png")
    _, code, out, err = run([good] + [bad for bad, _ in cases.values()] + ["--model", trained[1]], capsys)
    assert code == 2 and len(out) == 1 and out[0].startswith(f"{good}: ")
    assert len(err) == len(cases)
    for line, (_, expected) in zip(err, cases.values()):
        assert expected in line


def bad_models(tmp_path, mnist_npz):
    text = tmp_path / "text.keras"
    text.write_text("not a model\n")
    npz = tmp_path / "mnist.keras"  # a zip archive, but not of a Keras model
    npz.write_bytes(open(mnist_npz, "rb").read())
    other = tmp_path / "weights.txt"
    other.write_text("1 2 3\n")
    wrong = tmp_path / "wrong.keras"
    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(5)]).save(str(wrong))
    fifo = tmp_path / "pipe.keras"
    os.mkfifo(fifo)
    return {
        "fifo": (str(fifo), "pipe.keras: not a regular file (a FIFO)"),
        "device": ("/dev/zero", "/dev/zero: not a regular file (a character device)"),
        "missing": (str(tmp_path / "none.keras"), "none.keras: no such file; train one first"),
        "text": (str(text), "text.keras: not a Keras model file"),
        "zip": (str(npz), "mnist.keras: not a Keras model file"),
        "suffix": (str(other), "weights.txt: not a Keras model file"),
        "folder": (str(tmp_path), "a folder, not a Keras model file"),
        "shape": (str(wrong), "expected an MNIST classifier"),
    }


@pytest.mark.parametrize("case", ["missing", "text", "zip", "suffix", "folder", "shape", "fifo", "device"])
def test_bad_model_one_line_exit_2_before_any_image(case, digits, tmp_path, capsys, mnist_npz, monkeypatch):
    model, expected = bad_models(tmp_path, mnist_npz)[case]
    monkeypatch.setattr(predict, "read_image", lambda path: pytest.fail("an image was read despite a bad model"))
    _, code, out, err = run([save(digits[0][0], tmp_path / "good.png"), "--model", model], capsys)
    assert code == 2 and out == []
    assert len(err) == 1 and f"error: --model {model}" in err[0] and expected in err[0], err


def test_bad_flags_and_output_dir(trained, digits, tmp_path, capsys):
    good = save(digits[0][0], tmp_path / "good.png")
    _, code, _, err = run(["--model", trained[1]], capsys)
    assert code == 2 and len(err) == 1 and "the following arguments are required: IMAGE" in err[0]
    taken = tmp_path / "file"
    taken.write_text("")
    _, code, out, err = run([good, "--model", trained[1], "--show", "--output-dir", str(taken)], capsys)
    assert code == 2 and out == [] and len(err) == 1 and f"--output-dir {taken}: cannot write there" in err[0]


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        predict.main(["--help"])
    assert exit_.value.code == 0
    text = "".join(capsys.readouterr().out.split())  # without spaces: argparse wraps lines at hyphens too
    for expected in ("[IMAGE ...]", "--serve", "(default: 8000)", "--show", "(default: outputs)",
                     "(default: outputs/cnn-mnist.keras in the current folder or, where it has none, the project's "
                     "own outputs/cnn-mnist.keras beside predict.py)"):
        assert "".join(expected.split()) in text


# --- hostile images: refused in one line, in bounded memory, without hanging ----------------------


def float_tiff(array, path):
    Image.fromarray(np.asarray(array, dtype=np.float32), mode="F").save(path)
    return str(path)


def test_hostile_images_one_line_each(tiny_model, digits, tmp_path, capsys):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10000, 10000)).save(bomb)  # 100 megapixels in a small file: over Pillow's warning limit
    huge = tmp_path / "huge.png"
    Image.new("1", (15000, 15000)).save(huge)  # over twice the limit: Pillow's own error
    nan = float_tiff(np.full((40, 40), np.nan), tmp_path / "nan.tiff")
    good = save(digits[0][0], tmp_path / "good.png")
    cases = [(str(fifo), "pipe.png: not a regular file (a FIFO)"),
             ("/dev/zero", "/dev/zero: not a regular file (a character device)"),
             (str(bomb), "bomb.png: too many pixels to be a digit image (Image size (100000000 pixels) exceeds"),
             (str(huge), "huge.png: too many pixels to be a digit image (Image size (225000000 pixels) exceeds"),
             (nan, "nan.tiff: no finite pixels")]
    _, code, out, err = run([good] + [path for path, _ in cases] + ["--model", tiny_model], capsys)
    assert code == 2 and len(out) == 1 and out[0].startswith(f"{good}: ")
    assert len(err) == len(cases), err
    for line, (_, expected) in zip(err, cases):
        assert expected in line


def test_non_finite_pixels_are_background(digits, tmp_path):
    grey = digits[0][0].astype(np.float64)
    holes = grey.copy()
    holes[:3] = np.nan
    holes[-2:, :5] = np.inf
    holes[5, :2] = -np.inf
    path = float_tiff(holes, tmp_path / "holes.tiff")
    np.testing.assert_array_equal(seen(path), digits[0][0])
    np.testing.assert_array_equal(seen(float_tiff(grey / 255, tmp_path / "unit.tiff")), digits[0][0])  # 0..1 floats


# The peak resident memory, in MB, after reading each image in turn in one fresh process. Linux keeps
# ru_maxrss across fork and exec (a child of this large test process would report this process's
# size), so the peak of the process's own memory (VmHWM) is read where there is one. A peak only
# grows: the images go from the smallest limit to the largest, and each peak bounds the reads so far.
PEAKS = """
import resource, sys
sys.path.insert(0, sys.argv[1])
from your_digit.digits import ImageError, read_image, to_mnist
for path in sys.argv[2:]:
    try:
        seen = to_mnist(read_image(path)[0])
        outcome = f"read {seen.shape}"
    except ImageError as exc:
        outcome = f"refused {exc}"
    try:
        with open("/proc/self/status") as f:
            peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) // 1024
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(peak, outcome, flush=True)
"""


def peaks_mb(*paths):
    """``[(outcome, peak MB so far)]``, one for each image read in turn in one fresh process."""
    done = subprocess.run([sys.executable, "-c", PEAKS, ROOT, *map(str, paths)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return [(outcome, int(peak)) for peak, outcome in (line.split(" ", 1) for line in done.stdout.splitlines())]


def test_large_images_are_read_in_bounded_memory(digits, tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("L", (10000, 10000), 255).save(bomb)  # 100 megapixels
    big = Image.new("RGB", (8000, 6000), (235, 235, 230))  # 48 megapixels, under the limit: read
    big.paste(Image.fromarray(255 - scaled(digits[0][0], (3000, 3000))).convert("RGB"), (2500, 1500))
    big.save(tmp_path / "big.png")
    big.save(tmp_path / "big.jpg", quality=90)
    del big
    (bomb_outcome, bomb_peak), *reads = peaks_mb(bomb, tmp_path / "big.jpg", tmp_path / "big.png")
    assert bomb_outcome.startswith("refused") and "too many pixels" in bomb_outcome and bomb_peak < 200, bomb_outcome
    print(f"bomb.png: peak {bomb_peak} MB")
    for name, limit, (outcome, peak) in zip(("big.jpg", "big.png"), (200, 400), reads):
        assert outcome == "read (28, 28)" and peak < limit, (name, outcome, peak)
        print(f"{name}: peak {peak} MB (with the reads before it)")
