"""A saved model of the listings, loaded with one-line errors (:func:`load_classifier`): a regular file
named .keras of at most ``MAX_BYTES`` (os.stat), loaded by Keras with ``safe_mode=True`` (no code in the
file runs) and uncompiled, an MNIST classifier of the listings' shapes. Files crafted to cost Keras memory
within the size limit are out of scope (docs/reliability.md)."""

import os
import zipfile

from ch1.data import IMAGE_SIZE, NUM_LABELS, one_line
from ch1.files import reason, regular_file

SUFFIX = ".keras"
# The chapter's largest model file, Table 1.3.2's MLP with 1024-unit layers (1.9 million parameters
# and Adam's two slots each), is about 22 MB: a file ten times that is no model of the listings.
MAX_BYTES = 256 * 2**20
# What the listings take, batch first: the MLP's 784 values, the CNN's 28x28x1, the RNN's 28 rows of 28.
INPUT_SHAPES = ((None, IMAGE_SIZE * IMAGE_SIZE), (None, IMAGE_SIZE, IMAGE_SIZE, 1), (None, IMAGE_SIZE, IMAGE_SIZE))
OUTPUT_SHAPE = (None, NUM_LABELS)


class ModelFileError(Exception):
    """A model file refused or not loadable (the message is one line and names the file)."""


def load(path, name=None):
    """The Keras model saved at ``path``; else :class:`ModelFileError` naming it ``name`` (default ``path``)."""
    name = path if name is None else name
    info = regular_file(path, "a Keras model file (.keras)", ModelFileError, name)
    text = os.fsdecode(path)
    if not text.endswith(SUFFIX):
        if text.lower().endswith(SUFFIX):
            raise ModelFileError(f"{name}: Keras reads only names ending in {SUFFIX} in lower case: rename it")
        raise ModelFileError(f"{name}: not a Keras model file (expected a {SUFFIX} file, as the listings save)")
    if info.st_size > MAX_BYTES:
        raise ModelFileError(f"{name}: {info.st_size:,} bytes, more than a model of the listings "
                             f"({MAX_BYTES:,} at most; the chapter's largest is about 22 MB)")
    try:
        with open(path, "rb") as f:
            is_zip = zipfile.is_zipfile(f)
    except OSError as exc:
        raise ModelFileError(f"{name}: cannot read ({reason(exc)})") from None
    if not is_zip:  # Keras would say "File not found"
        raise ModelFileError(f"{name}: not a Keras model file (a {SUFFIX} file is a zip archive; this is not)")
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 - whatever Keras trips on, the file is no model for us
        raise ModelFileError(f"{name}: not a Keras model file ({type(exc).__name__}: {one_line(exc)[:160]})") \
            from None


def check_classifier(model, name):
    """``model`` if it takes any number of MNIST images shaped as one of the listings' and gives 10
    values each; else :class:`ModelFileError` naming the model file ``name``."""
    try:
        shapes = model.input_shape, model.output_shape
    except (AttributeError, ValueError):  # a model never built
        shapes = None, None
    if shapes[0] not in INPUT_SHAPES or shapes[1] != OUTPUT_SHAPE:
        raise ModelFileError(f"{name}: takes {shapes[0]} and gives {shapes[1]}; expected an MNIST classifier "
                             f"of the listings (input {' or '.join(map(str, INPUT_SHAPES))}, output {OUTPUT_SHAPE})")
    return model


def load_classifier(path, name=None):
    """:func:`load` the model file ``path`` and :func:`check_classifier` it."""
    name = path if name is None else name
    return check_classifier(load(path, name), name)
