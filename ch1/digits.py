"""Digit images as MNIST was made: reading any image file or upload, and preparing it as 28x28.

One code path for ``predict.py`` (files on the command line) and ``ch1.serve`` (images posted
from the page): :func:`read_image` or :func:`decode_image` give float greys, and
:func:`to_mnist` makes of them the uint8 28x28 image MNIST would hold. Nothing here imports
Keras.

Reading trusts no file. Anything but a regular file (a FIFO would block, /dev/zero never
ends) is refused before it is opened; Pillow's decompression-bomb limit is an error, not a
warning; a JPEG is decoded at a reduced scale and any other large image is reduced in Pillow
before it becomes a float array, so memory stays bounded by the pixels the file declares
(at most Pillow's limit of about 89 million); non-finite pixels of a float image are
treated as background.
"""

import io
import math
import os
import stat
import struct
import warnings

import numpy as np
from PIL import Image

from ch1.data import IMAGE_SIZE, one_line

DIGIT_BOX = 20  # MNIST: the digit's longest side is 20 pixels, centred by mass in 28x28
CENTRE = IMAGE_SIZE / 2  # where the centre of mass lands (pixel 14, as in MNIST: 13.5 <= c < 14.5)
MAX_SIDE = 1024  # larger images are first scaled down to this (plenty for a 20-pixel digit)
MIN_CONTRAST = 24  # a digit must stand this far (of 255) above the background, else "blank"
NOISE_SIGMAS = 3  # paper noise: up to 3 robust standard deviations about the fitted background
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, as PIL's convert("L")
# EXIF orientation -> the transpose that turns the image upright (as ImageOps.exif_transpose).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
REDUCIBLE = ("L", "RGB", "RGBA", "LA", "I", "F")  # modes Pillow's reduce() handles, as we need them


class ImageError(Exception):
    """An image that cannot be read or holds no digit (message is one line naming the file)."""


# --- reading ------------------------------------------------------------------------------------


def read_image(path, name=None):
    """Return ``(grey, shown)`` for an image file: float greys (0 black .. 255 white) and the
    image as shown to a person (uint8, grey or RGB(A)), both at most ``MAX_SIDE`` on a side.

    Photos are turned upright (EXIF orientation); transparent pixels are laid on black or
    white, whichever the painted pixels stand out from. ``name`` (default ``path``) names
    the file in errors. Raises :class:`ImageError` for anything unreadable, before opening
    anything that is not a regular file.
    """
    name = path if name is None else name
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{name}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{name}: a folder, not an image file")
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(f"{name}: not a regular file ({file_kind(info.st_mode)}), not an image file")
    return _read(path, name)


def decode_image(data, name="image"):
    """:func:`read_image` for an image held in memory (``bytes``), as a page uploads it."""
    return _read(io.BytesIO(data), name)


def file_kind(mode):
    """A file's kind in words, from its ``os.stat`` mode."""
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((kind for test, kind in kinds if test(mode)), "not a file")


def _read(source, name):
    try:
        with warnings.catch_warnings():
            # Pillow warns (and still decodes) between its pixel limit and twice it: an error here.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                im = _load_reduced(im, name)
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: a folder, not an image file") from None
    except PermissionError as exc:
        raise ImageError(f"{name}: cannot read ({exc.strerror})") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file (PNG, JPEG, ... that Pillow can read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        detail = str(exc).split(",")[0]  # "Image size (N pixels) exceeds limit of M pixels"
        raise ImageError(f"{name}: too many pixels to be a digit image ({detail})") from None
    except MemoryError:
        raise ImageError(f"{name}: too large to decode") from None
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, KeyError, IndexError, ZeroDivisionError,
            struct.error) as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({one_line(exc)})") from None
    grey = _grey(im, name)
    if max(grey.shape) > MAX_SIDE:
        scale = MAX_SIDE / max(grey.shape)
        size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
        grey = _resize(grey, size)
        im = im.resize(size, Image.Resampling.BILINEAR) if im.mode in ("RGB", "RGBA", "L") else im
    shown = np.asarray(im) if im.mode in ("RGB", "RGBA", "L") else np.clip(grey, 0, 255).astype(np.uint8)
    return grey, shown


def _load_reduced(im, name):
    """Decode ``im`` (just opened), upright, reduced in Pillow to less than ``2 * MAX_SIDE`` a side.

    A JPEG is decoded at the smallest DCT scale that keeps ``MAX_SIDE`` pixels on its longer
    side; other formats are decoded whole (Pillow's pixel limit bounds them) and reduced by
    an integer factor before anything becomes a float array.
    """
    if im.width == 0 or im.height == 0:
        raise ImageError(f"{name}: an image of no pixels")
    longest = max(im.size)
    if im.format == "JPEG" and longest > MAX_SIDE:
        scale = MAX_SIDE / longest
        im.draft(None, (math.ceil(im.width * scale), math.ceil(im.height * scale)))
    im.load()
    orientation = im.getexif().get(0x0112, 1)
    longest = max(im.size)
    if longest >= 2 * MAX_SIDE:
        if im.mode not in REDUCIBLE:
            im = im.convert(_reducible_mode(im))
        im = im.reduce(longest // MAX_SIDE)
    else:
        im = im.copy()  # independent of the file, which closes
    if orientation in UPRIGHT:
        im = im.transpose(UPRIGHT[orientation])
    return im


def _reducible_mode(im):
    if im.mode.startswith("I;16") or im.mode.startswith("I"):
        return "I"
    if im.mode == "F":
        return "F"
    if im.mode in ("PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info):
        return "RGBA"
    if im.mode in ("1", "L"):
        return "L"
    return "RGB"


def _grey(im, name):
    """Greys as float64, 0..255; alpha laid on the background that contrasts with the painted pixels."""
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        grey = np.asarray(im, dtype=np.float64)
        finite = np.isfinite(grey)
        if not finite.any():
            raise ImageError(f"{name}: no finite pixels (a float image of NaN or infinity only)")
        if not finite.all():
            grey = np.where(finite, grey, np.median(grey[finite]))  # NaN or infinity: background
        low, high = grey.min(), grey.max()
        if low >= 0 and high <= 255:
            return grey * 255 if im.mode == "F" and high <= 1 else grey  # 0..1 floats: 1 is white
        if low >= 0 and high <= 65535:
            return grey * 255 / 65535  # 16-bit grey
        return (grey - low) * (255 / (high - low))  # any other range: its own black and white
    if (im.mode == "P" and "transparency" in im.info) or im.mode in ("LA", "La", "PA", "RGBa"):
        im = im.convert("RGBA")
    if im.mode != "RGBA":
        return np.asarray(im.convert("L"), dtype=np.float64)
    rgba = np.asarray(im, dtype=np.float64)
    luma, alpha = rgba[..., :3] @ LUMA, rgba[..., 3] / 255
    if alpha.min() == 1:
        return luma
    painted = (luma * alpha).sum() / max(alpha.sum(), 1e-9)
    back = 0.0 if painted > 127.5 else 255.0
    return luma * alpha + back * (1 - alpha)


def _resize(array, size):
    """Resample a float image to ``size`` (width, height) with Lanczos (anti-aliased when shrinking)."""
    resized = Image.fromarray(array.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.float64)


def probabilities(outputs):
    """A model's outputs (N, 10) as probabilities: a softmax output (the listings') as is, even
    at bfloat16; anything else (logits) through a softmax."""
    probs = np.asarray(outputs, dtype=np.float64)
    if (probs < 0).any() or not np.allclose(probs.sum(axis=1), 1, atol=0.05):
        probs = np.exp(probs - probs.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
    return probs


# --- the MNIST way ------------------------------------------------------------------------------


def otsu_threshold(values):
    """Otsu's threshold of greys 0..255: the level (an integer) that best splits them in two."""
    hist = np.bincount(np.clip(np.rint(values), 0, 255).astype(np.int64).ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256)
    weight0 = np.cumsum(hist)
    weight1 = weight0[-1] - weight0
    mass0 = np.cumsum(hist * levels)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean0 = mass0 / weight0
        mean1 = (mass0[-1] - mass0) / weight1
        between = weight0 * weight1 * (mean0 - mean1) ** 2
    between[~np.isfinite(between)] = -1  # an empty class: no split there
    return int(np.argmax(between))


def _grow(seed, support):
    """The pixels of ``support`` connected (8 neighbours) to ``seed``."""
    mask = seed & support
    while True:
        padded = np.pad(mask, 1)
        rows = padded[:-2] | padded[1:-1] | padded[2:]
        grown = (rows[:, :-2] | rows[:, 1:-1] | rows[:, 2:]) & support
        if np.array_equal(grown, mask):
            return mask
        mask = grown


def fit_background(image):
    """The paper as a smooth surface: a quadratic in x and y fitted to the border, robustly.

    Returns ``(surface, noise)``: the surface over the whole image (uneven light, a
    gradient or darker corners, included) and the robust standard deviation of the border
    about it. Border pixels far off the fit (a digit touching the edge) are left out.
    """
    height, width = image.shape
    inner = np.arange(1, height - 1)
    rows = np.concatenate([np.zeros(width, int), np.full(width, height - 1), inner, inner])
    cols = np.concatenate([np.arange(width), np.arange(width), np.zeros(len(inner), int),
                           np.full(len(inner), width - 1)])
    values = image[rows, cols]

    def terms(y, x):
        y, x = 2 * y / max(height - 1, 1) - 1, 2 * x / max(width - 1, 1) - 1
        return [np.ones_like(x * y), x, y, x * x, y * y, x * y]

    design = np.stack(terms(rows.astype(float), cols.astype(float)), axis=-1)
    fitted = np.full(values.shape, np.median(values))
    for _ in range(4):
        residual = values - fitted
        noise = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
        keep = np.abs(residual) <= max(NOISE_SIGMAS * noise, 1.0)
        coef = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
        fitted = design @ coef
    residual = (values - fitted)[keep]
    noise = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    y, x = np.arange(height, dtype=float)[:, None], np.arange(width, dtype=float)[None, :]
    surface = sum(c * t for c, t in zip(coef, terms(y, x)))
    return np.broadcast_to(surface, image.shape), noise


def to_mnist(grey, name="image"):
    """Float greys (any size) -> the uint8 28x28 image MNIST would hold: light digit on black.

    1. If the border (the paper) is light, invert: the digit becomes the light part.
    2. Suppress the background: subtract the paper's light (a smooth surface fitted to the
       border, so uneven light goes too), then its noise (3 robust standard deviations,
       at most Otsu's threshold), and keep only what is connected to the digit proper
       (the pixels above Otsu's threshold): paper texture and specks fall away.
    3. Crop to the digit, scale its longest side to 20 pixels (keeping the aspect ratio),
       stretch its brightest pixel to 255, and paste it into 28x28 with its centre of
       mass at the centre (as MNIST: 13.5 <= centre < 14.5 on both axes).

    An MNIST digit written out unchanged (or inverted) comes back unchanged, unless its
    brightest pixel is below 255. Raises :class:`ImageError` (naming ``name``) when no
    digit stands out of the background.
    """
    grey = np.asarray(grey, dtype=np.float64)
    border = np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])
    if np.median(border) > (grey.min() + grey.max()) / 2:  # light paper
        grey = 255 - grey
    surface, noise = fit_background(grey)
    flat = grey - surface  # the paper is now about 0 everywhere, the digit well above
    core, contrast = None, flat.max()
    if contrast >= MIN_CONTRAST:  # then how far the digit proper (above Otsu's threshold) stands out
        threshold = otsu_threshold(flat)
        core = np.rint(flat) > threshold
        contrast = flat[core].mean() if core.any() else 0.0
    if contrast < MIN_CONTRAST:
        raise ImageError(f"{name}: blank, no digit stands out of the background "
                         f"(contrast {int(max(contrast, 0))} of 255, need {MIN_CONTRAST})")
    level = min(NOISE_SIGMAS * noise, threshold)
    digit = _grow(core, flat > level)
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    if not len(rows):
        raise ImageError(f"{name}: blank, no digit found")
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    patch = np.where(digit[box], flat[box] - level, 0.0)

    height, width = patch.shape
    if max(height, width) != DIGIT_BOX:
        scale = DIGIT_BOX / max(height, width)
        height, width = max(1, round(height * scale)), max(1, round(width * scale))
        patch = np.clip(_resize(patch, (width, height)), 0, None)
    peak = patch.max()
    if peak <= 0:
        raise ImageError(f"{name}: blank, no digit found")
    if peak != 255:
        patch = patch * (255 / peak)

    mass = patch.sum()
    rows, cols = np.indices(patch.shape)
    centre_row, centre_col = (rows * patch).sum() / mass, (cols * patch).sum() / mass
    top = min(max(int(np.ceil(CENTRE - 0.5 - centre_row)), 0), IMAGE_SIZE - height)
    left = min(max(int(np.ceil(CENTRE - 0.5 - centre_col)), 0), IMAGE_SIZE - width)
    seen = np.zeros((IMAGE_SIZE, IMAGE_SIZE))
    seen[top:top + height, left:left + width] = patch
    return np.clip(np.rint(seen), 0, 255).astype(np.uint8)


