"""your_digit.digits without a model: an image prepared as MNIST holds a digit, the parts of a digit,
and image files refused in one line naming them (no warning, no traceback). No Keras here."""

import warnings

import numpy as np
import pytest
from PIL import Image

from benchmarks import photos
from your_digit import digits


@pytest.fixture(scope="module")
def seven(mnist_arrays):
    """The first MNIST test digit (a 7 whose brightest pixel is 255: it comes back unchanged)."""
    digit = mnist_arrays["x_test"][0]
    assert digit.max() == 255
    return digit


def one_line_error(read, match):
    """The ImageError ``read()`` raises: one line, matching ``match``, with no warning on the way."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(digits.ImageError, match=match) as caught:
            read()
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and "\n" not in message and "\r" not in message, message
    return message


# --- as MNIST was made ----------------------------------------------------------------------------


def test_an_mnist_digit_comes_back_unchanged(mnist_arrays):
    images = mnist_arrays["x_test"][:50]
    unchanged = [np.array_equal(digits.to_mnist(x.astype(float)), x) for x in images]
    assert unchanged == [np.array_equal(digits.to_mnist(255 - x.astype(float)), x) for x in images]  # inverted
    assert sum(unchanged) >= 40  # all but those whose brightest pixel is under 255
    for x, same in zip(images, unchanged):
        if not same:
            assert x.max() < 255 and np.abs(digits.to_mnist(x.astype(float)).astype(int) - x).max() <= 1


def test_the_digit_is_20_pixels_and_centred_by_mass(seven):
    big = np.zeros((400, 300))
    big[50:250, 20:120] = np.asarray(Image.fromarray(seven).resize((100, 200), Image.Resampling.BICUBIC))
    x = digits.to_mnist(big).astype(float)
    rows, cols = np.flatnonzero(x.any(axis=1)), np.flatnonzero(x.any(axis=0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20 and x.max() == 255
    r, c = np.indices(x.shape)
    assert 13.5 <= (r * x).sum() / x.sum() < 14.5 and 13.5 <= (c * x).sum() / x.sum() < 14.5


def test_otsu_splits_two_levels():
    assert 30 <= digits.otsu_threshold(np.concatenate([np.full(500, 30.0), np.full(100, 200.0)])) < 200


def test_robust_spread_is_the_standard_deviation_of_normal_noise_that_ink_barely_moves():
    noise = np.random.default_rng(0).normal(100, 5, 20000)
    assert digits.robust_spread(noise) == pytest.approx(5, rel=0.03)
    noise[:1000] = 255  # 5% of the pixels are ink
    assert digits.robust_spread(noise) == pytest.approx(5, rel=0.1) and np.std(noise) > 25


def test_find_digit_keeps_its_strokes_and_drops_what_is_not_the_digit():
    support = np.zeros((100, 100), bool)
    core = np.zeros_like(support)
    support[20:50, 20:40] = core[25:45, 25:35] = True  # the digit's main part: most ink
    expected = support.copy()
    for i in range(3):  # touching the main part at a corner only: 8-connected, so one part with it
        support[50 + i, 40 + i] = expected[50 + i, 40 + i] = True
    support[52:58, 25:31] = expected[52:58, 25:31] = core[54, 27] = True  # a stroke beside it: kept
    support[20:26, 42:48] = True  # beside it but without a core pixel: a smudge, dropped
    support[15, 30] = core[15, 30] = True  # beside it, cored, but under 3% of its ink: a speck, dropped
    support[90:96, 90:96] = core[92, 92] = True  # cored and inked, but far from it: another mark, dropped
    np.testing.assert_array_equal(digits.find_digit(support * 100.0, core, support, gap=0), expected)
    support[20:41, 42:44] = True  # 2 pixels right of the main part, no core: its own part unless bridged
    assert not digits.find_digit(support * 100.0, core, support, gap=0)[20:41, 42:44].any()
    joined = digits.find_digit(support * 100.0, core, support, gap=1)  # grown by 1: a 2-pixel gap closes
    assert joined[20:41, 42:44].all() and joined[20:26, 44:48].all() and not joined[90:96, 90:96].any()
    empty = np.zeros((30, 30), bool)
    assert not digits.find_digit(np.zeros((30, 30)), empty, empty, gap=1).any()


def test_photos_of_every_kind_come_out_as_the_digit(mnist_arrays):
    """Photographed on any paper (benchmarks/photos.py), the prepared digit is the MNIST one."""
    for k, kind in enumerate(photos.KINDS):
        rng = np.random.default_rng([0, k])
        for digit in mnist_arrays["x_test"][:3]:
            body = photos.png_bytes(photos.photo(digit, kind, rng), format="JPEG", quality=90)
            seen = digits.to_mnist(digits.decode_image(body)[0])
            similar = np.corrcoef(seen.ravel(), digits.to_mnist(digit.astype(float)).ravel())[0, 1]
            assert similar > 0.6, (kind, similar)


# --- image files refused in one line --------------------------------------------------------------


@pytest.mark.parametrize("pixels", [1600, 10000])  # over Pillow's limit (its warning), over twice it (its error)
def test_more_pixels_than_pillows_limit_is_one_line(pixels, tmp_path, monkeypatch):
    side = int(pixels ** 0.5)
    path = tmp_path / "bomb.png"
    Image.new("L", (side, side), 255).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    message = one_line_error(lambda: digits.read_image(str(path), "bomb.png"), "^bomb.png: too many pixels")
    assert f"Image size ({pixels} pixels) exceeds limit of" in message


def test_a_constant_image_is_blank(tmp_path):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:200, 0:200] / 200
    for blank in (np.full((50, 80), 255.0), np.zeros((28, 28)), 200 + 40 * x - 30 * y + rng.normal(0, 6, x.shape)):
        one_line_error(lambda: digits.to_mnist(blank, "blank.png"), "^blank.png: blank, no digit")
    for value, mode in [(7.5, "F"), (1e6, "F"), (np.float32(-1e30), "F"), (-5, "I")]:
        path = tmp_path / "flat.tiff"
        Image.fromarray(np.full((200, 200), value, np.float32 if mode == "F" else np.int32), mode=mode).save(path)
        one_line_error(lambda: digits.to_mnist(digits.read_image(str(path))[0], "flat.tiff"), "^flat.tiff: blank, ")


def test_modes_pillow_converts_to_no_grey(seven, tmp_path):
    """A LAB TIFF is read by its lightness; a float image of NaN only is one line."""
    lightness, neutral = Image.fromarray(255 - seven), Image.new("L", seven.shape, 128)
    Image.merge("LAB", (lightness, neutral, neutral)).save(tmp_path / "lab.tif")
    grey, shown = digits.read_image(str(tmp_path / "lab.tif"))
    np.testing.assert_array_equal(digits.to_mnist(grey), seven)
    Image.fromarray(np.full((20, 20), np.nan, np.float32), mode="F").save(tmp_path / "nan.tif")
    one_line_error(lambda: digits.read_image(str(tmp_path / "nan.tif"), "nan.tif"), "^nan.tif: no finite pixels")


@pytest.mark.parametrize("name", ["forged\nseven.png: 7  (7 99.9%)", "carriage\rreturn.png", "separator\u2028line.png"])
def test_a_file_name_with_line_breaks_gives_one_line(name, tmp_path):
    text = tmp_path / name
    text.write_text("not an image")
    message = one_line_error(lambda: digits.read_image(str(text)), "not an image file")
    assert message.startswith(str(tmp_path)) and repr(name)[1:-1] in message, message
    one_line_error(lambda: digits.read_image(str(tmp_path / ("gone " + name))), "no such file")
    cut = photos.png_bytes(np.full((50, 50), 255))[:60]  # a PNG cut short after its header
    one_line_error(lambda: digits.decode_image(cut, name), "corrupt or truncated")
