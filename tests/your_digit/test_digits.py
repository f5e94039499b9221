"""your_digit.digits without a model: the parts of a digit, the paper's noise, and image files that
once gave a traceback, warnings or a forged line (issue 19). No Keras here."""

import os
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


# --- the parts of a digit -------------------------------------------------------------------------


def test_robust_spread_is_the_standard_deviation_of_normal_noise_that_ink_barely_moves():
    rng = np.random.default_rng(0)
    noise = rng.normal(100, 5, 20000)
    assert digits.robust_spread(noise) == pytest.approx(5, rel=0.03)
    inked = noise.copy()
    inked[:1000] = 255  # 5% of the pixels are ink
    assert digits.robust_spread(inked) == pytest.approx(5, rel=0.1)
    assert np.std(inked) > 5 * 5  # where the plain standard deviation is thrown far off
    assert digits.robust_spread(np.full(50, 7.5)) == 0


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
    smooth = support * 100.0
    np.testing.assert_array_equal(digits.find_digit(smooth, core, support, gap=0), expected)

    bridged = support.copy()
    bridged[20:41, 42:44] = True  # 2 pixels right of the main part, no core: its own part unless bridged
    alone = digits.find_digit(bridged * 100.0, core, bridged, gap=0)
    assert not alone[20:41, 42:44].any()
    joined = digits.find_digit(bridged * 100.0, core, bridged, gap=1)  # grown by 1: a 2-pixel gap closes
    assert joined[20:41, 42:44].all() and joined[20:26, 44:48].all()  # the smudge is reached through it
    assert not joined[90:96, 90:96].any()


def test_find_digit_of_nothing_is_nothing():
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


# --- image files of issue 19 -----------------------------------------------------------------------


def test_a_lab_tiff_is_read_by_its_lightness(seven, tmp_path):
    lightness = Image.fromarray(255 - seven)  # dark ink on light paper
    neutral = Image.new("L", lightness.size, 128)  # a and b at 128: no colour
    path = tmp_path / "lab.tif"
    Image.merge("LAB", (lightness, neutral, neutral)).save(path)
    assert Image.open(path).mode == "LAB"
    grey, shown = digits.read_image(str(path))
    np.testing.assert_array_equal(grey, 255 - seven)
    np.testing.assert_array_equal(shown, 255 - seven)
    np.testing.assert_array_equal(digits.to_mnist(grey), seven)
    np.testing.assert_array_equal(digits.decode_image(path.read_bytes())[0], grey)  # as the page uploads it


def test_a_large_lab_image_is_reduced_and_read(seven, tmp_path):
    lightness = Image.fromarray(255 - seven).resize((2100, 2100), Image.Resampling.BICUBIC)
    neutral = Image.new("L", lightness.size, 128)
    path = tmp_path / "big-lab.tif"
    Image.merge("LAB", (lightness, neutral, neutral)).save(path)
    lightness.save(tmp_path / "big-grey.tif")
    grey, _ = digits.read_image(str(path))
    assert max(grey.shape) <= digits.MAX_SIDE
    np.testing.assert_array_equal(grey, digits.read_image(str(tmp_path / "big-grey.tif"))[0])  # as its lightness


@pytest.mark.parametrize("value", [0.0, 7.5, 1.0, 255.0, 300.0, -3.0, 1e6, np.float32(-1e30)])
def test_a_constant_float_tiff_is_blank_without_warnings(value, tmp_path):
    path = tmp_path / "flat.tiff"
    Image.fromarray(np.full((200, 200), value, np.float32), mode="F").save(path)
    one_line_error(lambda: digits.to_mnist(digits.read_image(str(path))[0], "flat.tiff"), "^flat.tiff: blank, ")
    one_line_error(lambda: digits.to_mnist(digits.decode_image(path.read_bytes())[0], "flat.tiff"), "blank")


def test_a_constant_integer_image_out_of_range_is_blank_without_warnings(tmp_path):
    path = tmp_path / "flat.tiff"
    Image.fromarray(np.full((40, 40), -5, np.int32), mode="I").save(path)
    one_line_error(lambda: digits.to_mnist(digits.read_image(str(path))[0], "flat.tiff"), "^flat.tiff: blank, ")


@pytest.mark.parametrize("name", ["forged\nseven.png: 7  (7 99.9%)", "carriage\rreturn.png", "tab\tand\x0bvt.png",
                                  "separator\u2028line.png"])
def test_a_file_name_with_line_breaks_gives_one_line(name, tmp_path):
    text = tmp_path / name
    text.write_text("not an image")
    message = one_line_error(lambda: digits.read_image(str(text)), "not an image file")
    assert message.startswith(str(tmp_path)) and repr(name)[1:-1] in message, message
    blank = tmp_path / ("blank " + name)
    Image.new("L", (40, 40), 255).save(blank, format="PNG")
    one_line_error(lambda: digits.to_mnist(digits.read_image(str(blank))[0], str(blank)), "blank")
    one_line_error(lambda: digits.read_image(str(tmp_path / ("gone " + name))), "no such file")
    cut = photos.png_bytes(np.full((50, 50), 255))[:60]  # a PNG cut short after its header
    one_line_error(lambda: digits.decode_image(cut, name), "corrupt or truncated")


def test_a_loop_of_symbolic_links_is_one_line(tmp_path):
    os.symlink(tmp_path / "b.png", tmp_path / "a.png")
    os.symlink(tmp_path / "a.png", tmp_path / "b.png")
    message = one_line_error(lambda: digits.read_image(str(tmp_path / "a.png"), "a.png"), "loop")
    assert message == "a.png: cannot read (a loop of symbolic links)"


def test_image_error_escapes_only_control_characters():
    assert str(digits.ImageError("caf\\xe9 \u00e9t\u00e9.png: no such file")) == "caf\\xe9 \u00e9t\u00e9.png: no such file"
    assert str(digits.ImageError("a\nb.png: blank")) == "a\\nb.png: blank"
