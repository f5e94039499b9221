"""Classify your own digit images with a trained Chapter 1 model.

Reads ordinary image files (PNG, JPEG, ...; any size; a dark digit on light paper or a
light digit on dark; colour or grey), prepares each the way MNIST itself was made, and
prints the predicted digit with the top-3 probabilities. Preparation: grey, invert if
the background is light, suppress the background (paper texture, uneven light), crop to
the digit, scale its longest side to 20 pixels keeping the aspect ratio, and paste it
into a 28x28 image with its centre of mass at the centre. Any of the three listings'
saved models works (MLP, CNN, RNN): the input shape is read from the model.

    python cnn_mnist.py                                 # train; saves outputs/cnn-mnist.keras
    python predict.py digit.png photo.jpg               # e.g. `photo.jpg: 7  (7 98.1%, 1 1.2%, 9 0.4%)`
    python predict.py photo.jpg --show                  # also writes outputs/photo-seen.png
    python predict.py digit.png --model outputs/mlp-mnist.keras
"""

import ch1  # noqa: F401  (plumbing: command line, outputs; imported before keras to quiet start-up)

import os
import sys
import zipfile

import keras
import numpy as np
from PIL import Image, ImageOps

from ch1 import outputs
from ch1.data import IMAGE_SIZE, NUM_LABELS, one_line, prepare_images
from ch1.run import Parser, error, fail

import matplotlib.pyplot as plt  # after ch1.outputs, which selects the headless Agg backend

DEFAULT_MODEL = os.path.join("outputs", "cnn-mnist.keras")
DIGIT_BOX = 20  # MNIST: the digit's longest side is 20 pixels, centred by mass in 28x28
CENTRE = IMAGE_SIZE / 2  # where the centre of mass lands (pixel 14, as in MNIST: 13.5 <= c < 14.5)
MAX_SIDE = 1024  # larger photos are first scaled down to this (plenty for a 20-pixel digit)
MIN_CONTRAST = 24  # a digit must stand this far (of 255) above the background, else "blank"
NOISE_SIGMAS = 3  # paper noise: up to 3 robust standard deviations about the fitted background
TOP = 3
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, as PIL's convert("L")


class ImageError(Exception):
    """An image that cannot be read or holds no digit (message is one line naming the file)."""


# --- reading ------------------------------------------------------------------------------------


def read_image(path):
    """Return ``(grey, shown)``: the image as float greys (0 black .. 255 white) and as shown to a person.

    Photos are turned upright (EXIF orientation); transparent pixels are laid on black or
    white, whichever the painted pixels stand out from; images larger than ``MAX_SIDE``
    are scaled down. Raises :class:`ImageError` for anything unreadable.
    """
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: a folder, not an image file") from None
    except PermissionError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror})") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (PNG, JPEG, ... that Pillow can read)") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{path}: too many pixels to be a digit image") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{path}: corrupt or truncated image ({one_line(exc)})") from None
    if im.width == 0 or im.height == 0:
        raise ImageError(f"{path}: an image of no pixels")
    grey = _grey(im)
    if max(grey.shape) > MAX_SIDE:
        scale = MAX_SIDE / max(grey.shape)
        size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
        grey = _resize(grey, size)
        im = im.resize(size, Image.Resampling.BILINEAR) if im.mode in ("RGB", "RGBA", "L") else im
    shown = np.asarray(im) if im.mode in ("RGB", "RGBA", "L") else np.clip(grey, 0, 255).astype(np.uint8)
    return grey, shown


def _grey(im):
    """Greys as float64, 0..255; alpha laid on the background that contrasts with the painted pixels."""
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        grey = np.asarray(im, dtype=np.float64)
        return grey * 255 / 65535 if grey.max() > 255 else grey  # 16-bit grey
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


# --- the model ----------------------------------------------------------------------------------


def load_classifier(path):
    """Load a saved MNIST classifier; anything else exits with one line and status 2."""
    flag = f"--model {path}"
    if not os.path.exists(path):
        fail(f"{flag}: no such file; train one first (python cnn_mnist.py saves {DEFAULT_MODEL})")
    if os.path.isdir(path):
        fail(f"{flag}: a folder, not a Keras model file (.keras)")
    if not path.lower().endswith(MODEL_SUFFIXES):
        fail(f"{flag}: not a Keras model file (expected a .keras file, as the listings save)")
    if path.lower().endswith(".keras") and not zipfile.is_zipfile(path):
        fail(f"{flag}: not a Keras model file (a .keras file is a zip archive; this is not)")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - whatever Keras trips on, the file is no model for us
        fail(f"{flag}: not a Keras model file ({one_line(exc)[:160]})")
    shape_in, shape_out = _shape(model, "input_shape"), _shape(model, "output_shape")
    if (shape_in is None or None in shape_in or int(np.prod(shape_in)) != IMAGE_SIZE * IMAGE_SIZE
            or shape_out != (NUM_LABELS,)):
        fail(f"{flag}: takes {shape_in} and gives {shape_out}; expected an MNIST classifier "
             f"({IMAGE_SIZE}x{IMAGE_SIZE} = {IMAGE_SIZE * IMAGE_SIZE} input values, {NUM_LABELS} outputs)")
    return model


def _shape(model, attribute):
    try:
        shape = getattr(model, attribute)
    except (AttributeError, ValueError):
        return None
    if isinstance(shape, list) or not isinstance(shape, tuple) or not shape:
        return None  # several inputs or outputs
    return tuple(shape[1:])


def classify(model, images):
    """Probabilities (N, 10) for uint8 28x28 images, shaped for the model (MLP, CNN or RNN)."""
    x = prepare_images(np.asarray(images), model.input_shape[1:])
    probs = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    # A softmax output (the listings') is used as is, even at bfloat16; logits are made probabilities.
    if (probs < 0).any() or not np.allclose(probs.sum(axis=1), 1, atol=0.05):
        probs = np.exp(probs - probs.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
    return probs


def top(probs, k=TOP):
    order = np.argsort(-probs, kind="stable")[:k]
    return [(int(d), float(probs[d])) for d in order]


# --- output -------------------------------------------------------------------------------------


def seen_path(output_dir, path, taken):
    """``<output-dir>/<image-stem>-seen.png``; a second image of the same stem gets ``-2``, ..."""
    stem = os.path.splitext(os.path.basename(path))[0] or "image"
    name, n = f"{stem}-seen.png", 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}-seen.png"
    taken.add(name)
    return os.path.join(output_dir, name)


def save_seen(out, shown, seen, title):
    """The input beside the 28x28 the model saw, as one PNG."""
    fig, (ax_in, ax_seen) = plt.subplots(1, 2, figsize=(7, 3.6))
    ax_in.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=255)
    ax_in.set_title("input")
    ax_seen.imshow(seen, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax_seen.set_title("seen by the model (28x28)")
    for ax in (ax_in, ax_seen):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return outputs.save_figure(fig, out, dpi=100)


def describe(path, digit, top3):
    return f"{path}: {digit}  ({', '.join(f'{d} {100 * p:.1f}%' for d, p in top3)})"


def parse_args(argv):
    parser = Parser(__doc__)
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files of one digit each (PNG, JPEG, ...)")
    parser.add_argument("--model", metavar="PATH", default=DEFAULT_MODEL,
                        help="a saved model of the listings (.keras): CNN, MLP or RNN")
    parser.add_argument("--show", action="store_true",
                        help="also write <output-dir>/<image-stem>-seen.png: the input beside the 28x28 the model saw")
    parser.add_argument("--output-dir", metavar="DIR", default="outputs", help="where --show writes")
    return parser.parse_args(argv)


def main(argv=None):
    """Classify each image; return a list of results (file, digit, top3, probabilities, seen).

    Unusable images get one error line each while the others are still classified; the
    exit status is then 2. A bad model or output folder exits at once with status 2.
    """
    args = parse_args(argv)
    model = load_classifier(args.model)
    if args.show:
        try:
            outputs.prepare_output_dir(args.output_dir)
        except outputs.OutputError as exc:
            fail(str(exc))

    prepared = []  # (file, 28x28 uint8 or None, shown image or error message)
    for path in args.images:
        try:
            grey, shown = read_image(path)
            prepared.append((path, to_mnist(grey, path), shown if args.show else None))
        except ImageError as exc:
            prepared.append((path, None, str(exc)))
    good = [seen for _, seen, _ in prepared if seen is not None]
    probs = iter(classify(model, np.stack(good)) if good else [])

    results, failed, taken = [], 0, set()
    for path, seen, extra in prepared:
        if seen is None:
            error(extra)
            failed += 1
            continue
        p = next(probs)
        top3 = top(p)
        digit = top3[0][0]
        result = {"file": path, "digit": digit, "top3": top3, "probabilities": [float(v) for v in p], "seen": None}
        print(describe(path, digit, top3))
        if args.show:
            result["seen"] = save_seen(seen_path(args.output_dir, path, taken), extra, seen,
                                       f"{os.path.basename(path)}: {digit} ({100 * top3[0][1]:.1f}%)")
            print(f"  wrote {result['seen']}")
        results.append(result)
    sys.stdout.flush()
    if failed:
        raise SystemExit(2)
    return results


if __name__ == "__main__":
    main()
