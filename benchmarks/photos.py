"""Digits as people draw and photograph them: MNIST digits as the drawing page sends them, and synthetic
photos of MNIST test digits on paper in each of ``KINDS``, deterministic per seed (for the benchmarks
and the tests)."""

import io

import numpy as np
from PIL import Image, ImageFilter

KINDS = ("plain", "ruled", "squared", "pencil", "thin-pen", "blue-ink", "red-ink", "rotated", "shadow")
PHOTO_SIZE = 480  # pixels a side: a digit photographed from close by, after cropping to the paper

def png_bytes(image, **kwargs):
    """A uint8 array (grey or RGB) as PNG (or another format given by ``format=``) bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, **{"format": "PNG", **kwargs})
    return buffer.getvalue()


def as_drawn(digit, size=280):
    """An MNIST digit as the page's pad holds it: black ink on white, ``size`` pixels a side."""
    return 255 - np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC))


# --- photos of digits on paper ------------------------------------------------------------------


def _ink_mask(digit, rng, size, kind):
    """The digit's ink coverage (0..1) at ``size`` pixels, placed as a person writes it on a page."""
    box = int(size * rng.uniform(0.38, 0.5))  # the digit's 28x28 box; MNIST's digit fills 20/28 of it
    ink = Image.fromarray(digit).resize((box, box), Image.Resampling.BICUBIC)
    if kind == "rotated":
        ink = ink.rotate(rng.uniform(-10, 10) or 10, resample=Image.Resampling.BICUBIC)
    ink = np.asarray(ink, dtype=np.float64) / 255
    if kind == "thin-pen":  # a fine pen: only the middle of MNIST's strokes
        ink = np.clip((ink - 0.6) / 0.25, 0, 1)
    else:
        ink = np.clip((ink - 0.15) / 0.5, 0, 1)  # a marker's solid stroke, soft at its edges
    page = np.zeros((size, size))
    top = int(rng.integers(size // 8, size - box - size // 8))
    left = int(rng.integers(size // 8, size - box - size // 8))
    page[top:top + box, left:left + box] = ink
    return page


def _paper_lines(kind, size, rng):
    """Printed lines on the paper (0..1): ruled (horizontal) or squared (both ways); none otherwise."""
    lines = np.zeros((size, size))
    if kind not in ("ruled", "squared"):
        return lines
    pitch = int(size * rng.uniform(0.09, 0.13)) if kind == "ruled" else int(size * rng.uniform(0.06, 0.08))
    width = max(2, size // 200)
    start = int(rng.integers(0, pitch))
    for y in range(start, size, pitch):
        lines[y:y + width, :] = 1
    if kind == "squared":
        for x in range(int(rng.integers(0, pitch)), size, pitch):
            lines[:, x:x + width] = 1
    return np.asarray(Image.fromarray((lines * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.7)),
                      dtype=np.float64) / 255


def photo(digit, kind, rng, size=PHOTO_SIZE):
    """An RGB uint8 photo of an MNIST digit (28x28 uint8, light on black) written on paper as ``kind``."""
    ink = _ink_mask(digit, rng, size, kind)
    y, x = np.mgrid[0:size, 0:size] / size
    paper = np.array([238.0, 236, 228]) * (1 + rng.uniform(-0.03, 0.03))  # off-white
    light = 1 + 0.05 * (x - 0.5) - 0.05 * (y - 0.5)  # light falls off a little across any photo
    if kind == "shadow":  # a hand's or phone's shadow over part of the page, and a strong gradient
        light = (0.55 + 0.45 * x) * (1 - 0.3 * np.exp(-((x - 0.2) ** 2 + (y - 0.8) ** 2) / 0.08))
    colour = np.array({"blue-ink": (35, 55, 150), "red-ink": (185, 35, 40)}.get(kind, (30, 30, 35)), np.float64)
    strength = 1.0
    if kind == "pencil":  # faint and grainy: graphite leaves paper showing through its stroke
        colour = np.array([110.0, 110, 118])
        grain = np.clip(rng.normal(0.6, 0.35, (size, size)), 0, 1)
        strength = grain * rng.uniform(0.25, 0.45)
    lines = _paper_lines(kind, size, rng)
    line_colour = np.array([150.0, 185, 225]) if kind == "ruled" else np.array([165.0, 200, 175])
    image = paper * np.ones((size, size, 3))
    image = image * (1 - 0.8 * lines[..., None]) + line_colour * 0.8 * lines[..., None]
    cover = (ink * strength)[..., None]
    image = image * (1 - cover) + colour * cover
    image = image * light[..., None] + rng.normal(0, 3.5, (size, size, 1))  # light, then sensor noise
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def photo_set(images, labels, kinds=KINDS, seed=0):
    """``[(kind, label, JPEG bytes), ...]``: every image photographed in every kind, deterministically."""
    out = []
    for k, kind in enumerate(kinds):
        rng = np.random.default_rng([seed, k])
        for image, label in zip(images, labels):
            out.append((kind, int(label), png_bytes(photo(image, kind, rng), format="JPEG", quality=90)))
    return out
