"""Digit images as MNIST was made: reading any image file or upload, and preparing it as 28x28.

One code path for ``predict.py`` (files on the command line) and ``your_digit.serve`` (images posted
from the page): :func:`read_image` or :func:`decode_image` give float greys, and
:func:`to_mnist` makes of them the uint8 28x28 image MNIST would hold. Nothing here imports
Keras.

Reading trusts no file. Anything but a regular file (a FIFO would block, /dev/zero never
ends) is refused before it is opened; Pillow's decompression-bomb limit is an error, not a
warning; a JPEG is decoded at a reduced scale and any other large image is reduced in Pillow
before it becomes a float array, so memory stays bounded by the pixels the file declares
(at most Pillow's limit of about 89 million); non-finite pixels of a float image are
treated as background; a LAB image is read by its lightness.

The image processing is scipy's (``scipy.ndimage``: Gaussian smoothing, growing a mask,
connected parts and their boxes; ``scipy.stats``: the robust spread of the paper's noise);
only Otsu's threshold, which neither scipy nor Pillow has, is written out here. The connected
pieces of a mask are its "parts" (scipy's "labels"), so that a label keeps the meaning it has in
the listings: a digit's class.
"""

import io
import math
import re
import struct
import warnings

import numpy as np
from PIL import Image
from scipy import ndimage, stats

from ch1.data import IMAGE_SIZE, one_line
from ch1.files import regular_file

DIGIT_BOX = 20  # MNIST: the digit's longest side is 20 pixels, centred by mass in 28x28
CENTRE = IMAGE_SIZE / 2  # where the centre of mass lands (pixel 14, as in MNIST: 13.5 <= c < 14.5)
MAX_SIDE = 1024  # larger images are first scaled down to this (plenty for a 20-pixel digit)
MIN_CONTRAST = 12  # a digit must stand this far (of 255) above the background, else "blank"
NOISE_CONTRAST = 8  # and this many times the paper's noise (after smoothing)
NOISE_SIGMAS = 3  # paper noise: up to 3 robust standard deviations about the fitted background
SMOOTH_PER = 300  # a photo is smoothed by a Gaussian of 1/300 of its longer side to find the digit
LOW_SHARE = 0.4  # a photo's digit grows from its seeds down to 40% of their threshold
GAP_PER = 250  # masks grow by 1/250 of the longer side: gaps in a stroke up to twice that are bridged
LINE_SPAN = 0.6  # a paper line is ink-like over more than 60% of the photo's width (or height)
LINE_FLOOR = 4  # and stands at least this far above the paper's noise level
LOCAL_MIN = 128  # images at least this large a side get a block-wise background too
LOCAL_BLOCKS = 8  # 8x8 blocks
STROKE_MARGIN = 0.25  # other parts count as strokes of the digit within 1/4 of its size around it
STROKE_SHARE = 0.03  # and with at least 3% of its ink
EIGHT = np.ones((3, 3), bool)  # parts are 8-connected: pixels touching at a corner are one part
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, as PIL's convert("L")
# EXIF orientation -> the transpose that turns the image upright (as ImageOps.exif_transpose).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
REDUCIBLE = ("L", "RGB", "RGBA", "LA", "I", "F")  # modes Pillow's reduce() handles, as we need them


class ImageError(Exception):
    """An image that cannot be read or holds no digit (message is one line naming the file).

    A line break or other control character in the message (a file name may hold one) is
    written escaped, as ``\\n``, so that no file name can forge a line of output.
    """

    def __init__(self, message):
        super().__init__(re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", lambda m: repr(m[0])[1:-1], message))


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
    regular_file(path, "an image file", ImageError, name)
    return _read(path, name)


def decode_image(data, name="image"):
    """:func:`read_image` for an image held in memory (``bytes``), as a page uploads it."""
    return _read(io.BytesIO(data), name)


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
    if im.format in ("JPEG", "MPO") and longest > MAX_SIDE:  # MPO: a phone's multi-picture JPEG
        scale = MAX_SIDE / longest
        im.draft(None, (math.ceil(im.width * scale), math.ceil(im.height * scale)))
    im.load()
    if im.mode == "LAB":
        im = im.getchannel("L")  # its lightness (L* as 0..255): Pillow converts LAB to no other mode
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
        if low == high:
            return np.zeros_like(grey)  # one value out of range: all black, so blank
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
    """Otsu's threshold of greys 0..255: the level (an integer) that best splits them in two.

    Written out in numpy: neither scipy nor Pillow has it (scikit-image does, but is no
    dependency of this project).
    """
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


def robust_spread(values):
    """The robust standard deviation of ``values``: their median absolute deviation scaled to a
    normal distribution's (x 1.4826), which the digit's few pixels among the paper's barely move."""
    return float(stats.median_abs_deviation(values, axis=None, scale="normal"))


def border(image):
    """The pixels of an image's four edges, each once."""
    return np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])


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
        keep = np.abs(residual) <= max(NOISE_SIGMAS * robust_spread(residual), 1.0)
        coef = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
        fitted = design @ coef
    noise = robust_spread((values - fitted)[keep])
    y, x = np.arange(height, dtype=float)[:, None], np.arange(width, dtype=float)[None, :]
    surface = sum(c * t for c, t in zip(coef, terms(y, x)))
    return np.broadcast_to(surface, image.shape), noise


def remove_lines(flat, level):
    """Ruled or squared paper's printed lines wiped from ``flat`` (paper about 0, ink above).

    A line of the paper is a thin band of rows (or columns) that is ink-like across most of
    the photo, from edge to edge; a digit is not. Each band is replaced by the straight
    blend of the rows just above and below it, so a stroke that crosses a line stays whole.
    """
    for axis in (0, 1):
        image = flat if axis == 0 else flat.T
        on = image > level
        length = image.shape[1]
        edge = max(1, length // 20)
        line = (on.mean(axis=1) > LINE_SPAN) & on[:, :edge].any(axis=1) & on[:, -edge:].any(axis=1)
        rows = np.flatnonzero(line)
        if not len(rows) or len(rows) > image.shape[0] // 3:
            continue  # no lines, or too many to be lines: leave it
        image = image.copy()
        thick = max(2, image.shape[0] // 40)
        for band in np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1):
            if len(band) > thick:
                continue  # too thick for a printed line
            top, bottom = max(band[0] - 1, 0), min(band[-1] + 1, image.shape[0] - 1)
            above = image[top - 1] if top > 0 else image[bottom + 1 if bottom + 1 < image.shape[0] else bottom]
            below = image[bottom + 1] if bottom + 1 < image.shape[0] else above
            steps = np.linspace(0, 1, bottom - top + 3)[1:-1, None]
            image[top:bottom + 1] = above * (1 - steps) + below * steps
        flat = image if axis == 0 else image.T
    return flat


def local_background(flat):
    """What is left of the paper's light after the fitted surface (a shadow, a fold), as a smooth surface.

    The median of the paper in each of 8x8 blocks (the ink, above Otsu's threshold and a
    little around it, left out; a block of almost all ink counts as paper at 0), interpolated
    over the image. Small images (under ``LOCAL_MIN`` pixels a side, MNIST's own 28x28 among
    them) have none.
    """
    height, width = flat.shape
    if min(height, width) < LOCAL_MIN:
        return 0.0
    ink = _grow(np.rint(flat) > otsu_threshold(flat), max(1, max(height, width) // GAP_PER))
    paper = np.where(ink, np.nan, flat)
    n = LOCAL_BLOCKS
    bh, bw = -(-height // n), -(-width // n)
    padded = np.pad(paper, ((0, n * bh - height), (0, n * bw - width)), mode="edge")
    blocks = padded.reshape(n, bh, n, bw).transpose(0, 2, 1, 3).reshape(n, n, -1)
    enough = np.isfinite(blocks).mean(axis=-1) >= 0.1
    grid = np.zeros((n, n), np.float32)
    if enough.any():
        grid[enough] = np.nanmedian(blocks[enough], axis=-1)
    surface = Image.fromarray(grid, mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(surface, dtype=np.float64)


def _grow(mask, radius):
    """``mask`` grown by ``radius`` pixels every way (a square): gaps up to twice that are bridged."""
    return ndimage.maximum_filter(mask, size=2 * radius + 1)


def find_digit(smooth, core, support, gap):
    """The digit's pixels: of the parts of ``support`` (grown by ``gap`` pixels, so gaps up to twice
    that are bridged) that hold ``core`` pixels, the one of most ink and those others that reach
    within a quarter of its size of its box with some ink of their own (at least 3% of its)."""
    parts, count = ndimage.label(_grow(support, gap), structure=EIGHT)
    if count == 0:
        return np.zeros_like(support)
    each = np.arange(1, count + 1)  # part k is pixels == k; index k - 1 below
    cored = ndimage.sum_labels(core, parts, each) > 0
    ink = np.where(cored, ndimage.sum_labels(np.where(support, smooth, 0.0), parts, each), 0.0)
    main = int(np.argmax(ink))
    if ink[main] <= 0:
        return np.zeros_like(support)
    top, bottom, left, right = np.array([(r.start, r.stop - 1, c.start, c.stop - 1)
                                         for r, c in ndimage.find_objects(parts)]).T
    margin = STROKE_MARGIN * max(bottom[main] - top[main], right[main] - left[main])
    beside = ((bottom >= top[main] - margin) & (top <= bottom[main] + margin)
              & (right >= left[main] - margin) & (left <= right[main] + margin))  # boxes overlap
    keep = beside & cored & (ink >= STROKE_SHARE * ink[main])
    return np.concatenate([[False], keep])[parts] & support


def to_mnist(grey, name="image"):
    """Float greys (any size) -> the uint8 28x28 image MNIST would hold: light digit on black.

    1. If the border (the paper) is light, invert: the digit becomes the light part.
    2. Suppress the background: subtract the paper's light (a smooth surface fitted to the
       border, so uneven light goes too, and what remains of a shadow block by block),
       and wipe the printed lines of ruled or squared paper (thin bands from edge to edge).
    3. Find the digit by hysteresis: the pixels above Otsu's threshold are its seeds, and
       it grows from them over everything above the paper's noise (3 robust standard
       deviations, at most Otsu's threshold), so a faint stroke stays whole. A large photo
       is smoothed for this (its grain averaged out) and gaps of a few pixels are bridged.
       Of the parts so found, the digit is the one of most ink and those beside it with some
       ink of their own; specks and other marks fall away.
    4. Crop to the digit, scale its longest side to 20 pixels (keeping the aspect ratio),
       stretch its brightest pixel to 255, and paste it into 28x28 with its centre of
       mass at the centre (as MNIST: 13.5 <= centre < 14.5 on both axes).

    An MNIST digit written out unchanged (or inverted) comes back unchanged, unless its
    brightest pixel is below 255. Raises :class:`ImageError` (naming ``name``) when no
    digit stands out of the background.
    """
    grey = np.asarray(grey, dtype=np.float64)
    if np.median(border(grey)) > (grey.min() + grey.max()) / 2:  # light paper
        grey = 255 - grey
    surface, noise = fit_background(grey)
    flat = grey - surface  # the paper is now about 0 everywhere, the digit well above
    flat = flat - local_background(flat)
    flat = remove_lines(flat, max(NOISE_SIGMAS * noise, 1.0) + LINE_FLOOR)
    side = max(flat.shape)
    photo = side / SMOOTH_PER >= 0.5  # 150 pixels a side or more: its grain is smoothed out
    smooth, smooth_noise = flat, noise  # for finding the digit; its pixels come from flat
    if photo:
        smooth = ndimage.gaussian_filter(flat, side / SMOOTH_PER, truncate=3.0)
        smooth_noise = robust_spread(border(smooth))
    need = max(MIN_CONTRAST, NOISE_CONTRAST * smooth_noise)
    core, contrast, threshold = None, smooth.max(), 0
    if contrast >= need:  # then how far the digit proper (above Otsu's threshold) stands out
        threshold = otsu_threshold(smooth)
        core = np.rint(smooth) > threshold
        contrast = smooth[core].mean() if core.any() else 0.0
    if contrast < need:
        raise ImageError(f"{name}: blank, no digit stands out of the background "
                         f"(contrast {int(max(contrast, 0))} of 255, need {int(math.ceil(need))})")
    level = min(NOISE_SIGMAS * noise, threshold)  # the paper's noise, taken off the digit's pixels
    low = level
    if photo:  # its digit grows down to a share of the seeds' threshold
        low = min(max(NOISE_SIGMAS * smooth_noise, LOW_SHARE * threshold), threshold)
    digit = find_digit(smooth, core, smooth > low, int(round(side / GAP_PER)))
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    if not len(rows):
        raise ImageError(f"{name}: blank, no digit found")
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    patch = np.where(digit[box], np.clip(flat[box] - level, 0, None), 0.0)

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

    patch = np.clip(np.rint(patch), 0, 255)  # the pixels as stored, so the centre is the stored one
    mass = patch.sum()
    rows, cols = np.indices(patch.shape)
    centre_row, centre_col = (rows * patch).sum() / mass, (cols * patch).sum() / mass
    top = min(max(int(np.ceil(CENTRE - 0.5 - centre_row)), 0), IMAGE_SIZE - height)
    left = min(max(int(np.ceil(CENTRE - 0.5 - centre_col)), 0), IMAGE_SIZE - width)
    seen = np.zeros((IMAGE_SIZE, IMAGE_SIZE))
    seen[top:top + height, left:left + width] = patch
    return seen.astype(np.uint8)


