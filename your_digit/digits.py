"""Digit images as MNIST was made: any image file or upload read (:func:`read_image`,
:func:`decode_image`: float greys) and prepared as the uint8 28x28 MNIST would hold (:func:`to_mnist`),
for ``predict.py`` and ``your_digit.serve`` alike. No Keras here.

Reading: what is not a regular file is refused unopened (ch1.files); Pillow decodes within its pixel
limit (``Image.MAX_IMAGE_PIXELS``, an error here) and shrinks an image to ``MAX_SIDE`` a side; each fault
is one :class:`ImageError` line. scipy smooths, grows masks, finds connected pieces ("parts": scipy's
"labels", since a label here is a digit's class) and measures the paper's noise; written out here:
Otsu's threshold, the paper's fitted surface and block-wise light, ruled lines wiped, MNIST's crop,
scale and centring by mass.
"""

import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage, stats

from ch1.cli import printable
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


class ImageError(Exception):
    """An image unreadable or without a digit: one line naming the file, escaped by ch1.cli.printable."""

    def __init__(self, message):
        super().__init__(printable(message))


def read_image(path, name=None):
    """``(grey, shown)`` of an image file: float greys (0 black .. 255 white) and the image as a person sees
    it (uint8, grey or RGB(A)), upright (EXIF), at most ``MAX_SIDE`` a side; else :class:`ImageError`
    naming the file ``name`` (default ``path``)."""
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
                im.thumbnail((MAX_SIDE, MAX_SIDE))  # a JPEG decoded at a reduced scale (Pillow's draft)
                im = ImageOps.exif_transpose(im)  # upright, and a copy independent of the file
            if im.mode == "LAB":
                im = im.getchannel("L")  # its lightness (L* as 0..255): Pillow converts LAB to no other mode
            grey = _grey(im, name)
    except ImageError:
        raise
    except (FileNotFoundError, PermissionError) as exc:  # gone, or unreadable, since read_image's stat
        raise ImageError(f"{name}: cannot read ({exc.strerror})") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file (PNG, JPEG, ... that Pillow can read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name}: too many pixels to be a digit image ({str(exc).split(',')[0]})") from None
    except Exception as exc:  # noqa: BLE001 - whatever a decoder or a mode trips on (OSError, SyntaxError, ...)
        raise ImageError(f"{name}: corrupt or truncated image, or of a mode not read ({one_line(exc)})") from None
    shown = np.asarray(im) if im.mode in ("RGB", "RGBA", "L") else np.clip(grey, 0, 255).astype(np.uint8)
    return grey, shown


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
        # Any other range: its own black and white (one value out of range: all black, so blank).
        return (grey - low) * (255 / (high - low)) if high > low else np.zeros_like(grey)
    if (im.mode == "P" and "transparency" in im.info) or im.mode in ("LA", "PA", "RGBa"):
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


def probabilities(outputs):
    """Outputs (N, 10) as probabilities: a softmax's (the listings', even bfloat16) as is, logits softmaxed."""
    probs = np.asarray(outputs, dtype=np.float64)
    if (probs < 0).any() or not np.allclose(probs.sum(axis=1), 1, atol=0.05):
        probs = np.exp(probs - probs.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
    return probs


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


def robust_spread(values):
    """The robust standard deviation of ``values`` (MAD x 1.4826): the digit's few pixels barely move it."""
    return float(stats.median_abs_deviation(values, axis=None, scale="normal"))


def border(image):
    """The pixels of an image's four edges, each once."""
    return np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])


def fit_background(image):
    """``(surface, noise)``: the paper as a quadratic in x and y fitted robustly to the border (a digit
    touching the edge left out), over the whole image, and the border's robust spread about it."""
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
    """Ruled or squared paper's printed lines (thin bands of rows or columns ink-like from edge to edge)
    wiped from ``flat`` (paper about 0): each band becomes the blend of the rows around it."""
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
    """What is left of the paper's light after the fitted surface (a shadow, a fold): the median paper
    (ink left out) of each of 8x8 blocks, interpolated; none under ``LOCAL_MIN`` pixels a side."""
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
    """The digit's pixels: of the parts of ``support`` grown by ``gap`` that hold ``core`` pixels, the one
    of most ink and those within a quarter of its size of its box with 3% of its ink or more."""
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

    1. Invert if the border (the paper) is light. 2. Subtract the paper's light (the fitted
    surface, then block by block) and wipe ruled or squared paper's lines. 3. Find the digit by
    hysteresis: seeds above Otsu's threshold, grown over what stands above the paper's noise (a
    large photo smoothed first, small gaps bridged); of the parts found, the one of most ink and
    its strokes beside it. 4. Crop, scale the longest side to 20 pixels, stretch the brightest
    pixel to 255, and centre by mass in 28x28 (13.5 <= centre < 14.5, as MNIST).

    An MNIST digit comes back unchanged unless its brightest pixel is below 255. Raises
    :class:`ImageError` (naming ``name``) when no digit stands out of the background.
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
        resized = Image.fromarray(patch.astype(np.float32)).resize((width, height), Image.Resampling.LANCZOS)
        patch = np.clip(np.asarray(resized, dtype=np.float64), 0, None)  # Lanczos: anti-aliased
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


