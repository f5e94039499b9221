"""A saved model of the listings, checked before Keras reads it and loaded leaving nothing behind.

A ``.keras`` file is a zip archive: ``config.json`` (the layers and their sizes),
``metadata.json``, ``model.weights.h5`` and perhaps ``assets/``. Keras trusts it: it reads
config.json whole however far it inflates, allocates every layer as declared (a 24 kB file
declaring Dense(500000) takes 5 GB before Keras finds anything wrong), reads each weight
dataset whole whatever size it declares, and extracts assets into a temporary folder that
Ctrl-C or SIGTERM leaves behind. So :func:`check` reads the archive's directory,
config.json and the weights' HDF5 structure itself, within bounds, and works out from the
declared layers how many parameters Keras would allocate, refusing anything larger than a
model of the chapter could be; then :func:`load` hands the file to Keras inside a private temporary
folder that is removed on every exit (return, exception, Ctrl-C, SIGTERM).
:func:`check_classifier` says whether a loaded model is an MNIST classifier.

Every refusal is a :class:`ModelFileError` whose message is one line naming the file. The
bounds cover the chapter's models many times over: the largest, Table 1.3.2's MLP with
1024-unit hidden layers, has 1.9 million parameters, a 5 kB config.json and no assets.

    model = load_classifier("outputs/cnn-mnist.keras")   # or load(), check(), check_classifier()

:func:`check` imports nothing of Keras (only h5py, the HDF5 reader installed with it); :func:`load` does.
"""

import io
import json
import math
import os
import shutil
import struct
import tempfile
import zipfile
import zlib

from ch1.cli import at_interrupt, forget
from ch1.data import IMAGE_SIZE, NUM_LABELS, one_line
from ch1.files import regular_file

SUFFIX = ".keras"  # in any case: UP.KERAS is a Keras model file too
CONFIG = "config.json"
WEIGHTS = "model.weights.h5"
METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # what Keras (stored) or a re-zip (deflated) write

LARGEST = 1_863_690  # parameters of the chapter's largest model: Table 1.3.2's MLP with 1024-unit layers
MAX_PARAMETERS = 10_000_000  # five times that: a model file at the bound, weights or junk, stays under 1.5 GB
MAX_LAYERS = 200  # the listings' models have at most 15
MAX_RANK = 8  # dimensions of a declared shape (the listings' have at most 4)
MAX_DIM = 2**31 - 1  # one dimension of a declared shape
MAX_MEMBERS = 32  # members of the archive (the listings' have 3)
MAX_DIRECTORY_BYTES = 65536  # the archive's central directory, read before zipfile parses it
MAX_CONFIG_BYTES = 4 * 2**20  # config.json (the listings' are 4 to 11 kB)
MAX_OTHER_BYTES = 2**20  # metadata.json (64 bytes), assets/ (the listings have none) and any other member
WEIGHT_BYTES_PER_PARAMETER = 16  # a float32 value and up to three optimizer slots (Adam with amsgrad)
WEIGHT_FILE_OVERHEAD = 2**20  # model.weights.h5's own structure (about 30 kB for the listings')
MAX_WEIGHT_OBJECTS = 10_000  # groups and datasets in model.weights.h5 (about 40 for the listings')

END_RECORD = struct.Struct("<4s4H2LH")  # the zip's end of central directory record
END_SIGNATURE = b"PK\x05\x06"
ZIP64_LOCATOR = b"PK\x06\x07"  # 20 bytes before the end record in a zip64 archive


class ModelFileError(Exception):
    """A model file refused or not loadable (the message is one line and names the file)."""


# --- the API ------------------------------------------------------------------------------------


def check(path, name=None):
    """Check the model file ``path`` as far as can be done without Keras; return the number of
    parameters its layers declare. What is read is bounded: the archive's directory, config.json
    (4 MB at most) and model.weights.h5 (what the declared parameters may need).

    Refused (:class:`ModelFileError`): anything but a regular file, a name not ending in
    .keras, anything but a zip archive, an archive of more than ``MAX_MEMBERS`` members or
    with a name twice, members larger than their bounds (declared or actual), a config.json
    that is not a Sequential model of layers this module can size, layers that would
    allocate more than ``MAX_PARAMETERS``, or weights whose datasets declare more bytes
    than the file holds. ``name`` (default ``path``) is how messages name the file.
    """
    name = path if name is None else name
    regular_file(path, "a Keras model file (.keras)", ModelFileError, name)
    if not os.fspath(path).lower().endswith(SUFFIX):
        _refuse(name, "not a Keras model file (expected a .keras file, as the listings save)")
    try:
        with open(path, "rb") as f:
            return _check_archive(f, name)
    except OSError as exc:
        raise ModelFileError(f"{name}: cannot read ({exc.strerror or one_line(exc)})") from None


def load(path, name=None):
    """:func:`check` the model file ``path``, then load it with Keras, uncompiled (for predictions).

    Keras is handed a link named model.keras (it wants the suffix in lower case) inside a
    private temporary folder, which also holds whatever Keras extracts while loading (its
    ``tempfile`` folder is pointed there); the folder is removed however the load ends,
    Ctrl-C and SIGTERM included (ch1.cli.at_interrupt). Raises :class:`ModelFileError`.
    """
    name = path if name is None else name
    check(path, name)
    import keras

    try:
        folder = tempfile.mkdtemp(prefix="model-file-")
    except OSError as exc:
        raise ModelFileError(f"{name}: cannot load: no temporary folder ({exc.strerror or one_line(exc)})") \
            from None
    cleanup = at_interrupt(lambda: shutil.rmtree(folder, ignore_errors=True))
    default_tempdir = tempfile.tempdir
    link = os.path.join(folder, "model.keras")
    try:
        tempfile.tempdir = folder
        os.symlink(os.path.abspath(path), link)
        return keras.saving.load_model(link, compile=False)
    except Exception as exc:  # noqa: BLE001 - whatever Keras trips on, the file is no model for us
        reason = one_line(exc).replace(link, str(name))[:160]  # Keras names the link
        raise ModelFileError(f"{name}: not a Keras model file ({reason})") from None
    finally:
        tempfile.tempdir = default_tempdir
        shutil.rmtree(folder, ignore_errors=True)
        forget(cleanup)


def check_classifier(model, name):
    """``model`` if it is an MNIST classifier: 28x28 = 784 input values in any shape (the MLP's
    (784,), the CNN's (28, 28, 1), the RNN's (28, 28)), any batch size, and 10 outputs;
    else :class:`ModelFileError` naming the model file ``name``."""
    shape_in, shape_out = _shape(model, "input_shape"), _shape(model, "output_shape")
    if not _mnist_shapes(shape_in, shape_out):
        fixed = f" in batches of exactly {shape_in[0]}" if shape_in and shape_in[0] is not None else ""
        shape_in, shape_out = (None if shape is None else shape[1:] for shape in (shape_in, shape_out))
        _refuse(name, f"takes {shape_in}{fixed} and gives {shape_out}; expected an MNIST classifier "
                      f"({IMAGE_SIZE}x{IMAGE_SIZE} = {IMAGE_SIZE * IMAGE_SIZE} input values, {NUM_LABELS} outputs)")
    return model


def _mnist_shapes(shape_in, shape_out):
    """Whether a model of these shapes (batch first) takes any number of 28x28 images, gives 10 values each."""
    return (shape_in is not None and shape_out is not None and shape_in[0] is None and None not in shape_in[1:]
            and math.prod(shape_in[1:]) == IMAGE_SIZE * IMAGE_SIZE and shape_out[1:] == (NUM_LABELS,))


def load_classifier(path, name=None):
    """:func:`load` the model file ``path`` and :func:`check_classifier` it."""
    name = path if name is None else name
    return check_classifier(load(path, name), name)


def _shape(model, attribute):
    """A model's input or output shape, batch dimension first; None for several or none."""
    try:
        shape = getattr(model, attribute)
    except (AttributeError, ValueError):
        return None
    if not isinstance(shape, tuple) or not shape or not all(d is None or isinstance(d, int) for d in shape):
        return None  # several inputs or outputs (a list or a tuple of tuples)
    return shape


def _refuse(name, why):
    raise ModelFileError(f"{name}: {why}")


# --- the archive --------------------------------------------------------------------------------


def _check_archive(f, name):
    """The checks of :func:`check` on the open file ``f``: the archive, then config.json."""
    entries, directory = _directory(f, name)
    if entries > MAX_MEMBERS or directory > MAX_DIRECTORY_BYTES:
        _refuse(name, f"not a model of the listings (its archive lists {entries:,} members in {directory:,} "
                      f"bytes; a .keras file of the listings has 3, at most {MAX_MEMBERS} are read)")
    f.seek(0)
    try:
        with zipfile.ZipFile(f) as archive:
            _check_members(archive, name)
            parameters = _declared_parameters(_read_config(archive, name), name)
            _check_weights(archive, parameters, name)
    except (ValueError, EOFError, RuntimeError, NotImplementedError, struct.error, zlib.error,
            zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        _refuse(name, f"not a Keras model file (a corrupt zip archive: {one_line(exc)[:120]})")
    return parameters


def _directory(f, name):
    """``(members, bytes)`` of the archive's central directory, from its end record, found as
    zipfile finds it (the last end signature in the file's final 64 kB) but read before zipfile
    parses the directory: a few MB of directory would make millions of objects."""
    size = f.seek(0, os.SEEK_END)
    start = max(size - (1 << 16) - END_RECORD.size, 0)
    f.seek(start)
    tail = f.read()
    at = tail.rfind(END_SIGNATURE)
    if at < 0 or len(tail) - at < END_RECORD.size:
        _refuse(name, "not a Keras model file (a .keras file is a zip archive; this is not)")
    if start + at >= 20:
        f.seek(start + at - 20)
        if f.read(4) == ZIP64_LOCATOR:  # zipfile would take the counts from the zip64 record instead
            _refuse(name, "not a model of the listings (a zip64 archive, for 4 GB or 65,535 members and more)")
    _, _, _, _, entries, directory, _, _ = END_RECORD.unpack_from(tail, at)
    return entries, directory


def _check_members(archive, name):
    """Bound the members: how many, how stored, their declared sizes (config.json's, and the others'
    besides the weights, which :func:`_check_weights` bounds by the declared parameters)."""
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        _refuse(name, f"not a model of the listings (its archive has {len(members):,} members; "
                      f"at most {MAX_MEMBERS} are read)")
    for member in members:
        if member.flag_bits & 0x1:
            _refuse(name, f"not a model of the listings ({member.filename} is encrypted)")
        if member.compress_type not in METHODS:
            _refuse(name, f"not a model of the listings ({member.filename} uses zip compression method "
                          f"{member.compress_type}; Keras stores members (0), a re-zip deflates them (8))")
    names = archive.namelist()
    if len(set(names)) < len(names):  # zipfile and Keras read the last of a name; extraction writes them all
        twice = next(n for n in names if names.count(n) > 1)
        _refuse(name, f"not a model of the listings (its archive holds {twice[:60]!r} twice)")
    for needed in (CONFIG, WEIGHTS):
        if needed not in names:
            _refuse(name, f"not a Keras model file (no {needed} in its archive)")
    config = archive.getinfo(CONFIG)
    if config.file_size > MAX_CONFIG_BYTES:
        _refuse(name, f"{CONFIG} declares {config.file_size:,} bytes uncompressed, more than a model of the "
                      f"listings needs ({MAX_CONFIG_BYTES:,} at most; theirs are about 10 kB)")
    others = [m for m in members if m.filename not in (CONFIG, WEIGHTS)]
    other_bytes = sum(m.file_size for m in others)
    if other_bytes > MAX_OTHER_BYTES:
        biggest = max(others, key=lambda m: m.file_size).filename
        _refuse(name, f"its {len(others)} members besides {CONFIG} and the weights ({biggest}, ...) declare "
                      f"{other_bytes:,} bytes uncompressed; a model of the listings has only metadata.json "
                      f"and no assets ({MAX_OTHER_BYTES:,} bytes at most)")


def _read_config(archive, name):
    """config.json parsed, read no further than its bound whatever its header says."""
    with archive.open(CONFIG) as member:
        data = member.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        _refuse(name, f"{CONFIG} inflates to more than {MAX_CONFIG_BYTES:,} bytes")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        _refuse(name, f"not a Keras model file ({CONFIG} is not JSON: {one_line(exc)[:120]})")


def _check_weights(archive, parameters, name):
    """model.weights.h5: no larger than ``parameters`` can need, and holding the bytes its datasets
    declare. Keras reads each dataset whole, and one compressed or never written declares what
    it likes in a few kB (1 MB declaring 3.6 GB takes Keras to 15 GB; its own guard starts at 4 GB)."""
    size = archive.getinfo(WEIGHTS).file_size
    limit = WEIGHT_BYTES_PER_PARAMETER * parameters + WEIGHT_FILE_OVERHEAD
    if size > limit:
        _refuse(name, f"{WEIGHTS} declares {size:,} bytes uncompressed, more than its {parameters:,} "
                      f"parameters can need ({limit:,} at most)")
    with archive.open(WEIGHTS) as member:
        data = member.read()  # no more than it declares
    declared = _declared_weight_bytes(data, name)
    if declared > len(data):
        _refuse(name, f"{WEIGHTS}'s datasets declare {declared:,} bytes, more than the file's {len(data):,} "
                      "(Keras stores weights uncompressed)")


def _declared_weight_bytes(data, name):
    """The bytes the datasets of the HDF5 file ``data`` declare (their shapes times their item sizes)."""
    import h5py  # the HDF5 library Keras reads weights with (installed with Keras)

    objects, declared = 0, 0

    def visit(_, item):
        nonlocal objects, declared
        objects += 1
        if isinstance(item, h5py.Dataset):
            if item.dtype.kind == "O":
                raise ValueError("variable-length data, not weights")
            declared += math.prod(item.shape or ()) * item.dtype.itemsize
        return True if objects > MAX_WEIGHT_OBJECTS else None  # True stops the visit

    try:
        with h5py.File(io.BytesIO(data), "r") as weights:
            weights.visititems(visit)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        _refuse(name, f"not a Keras model file ({WEIGHTS} is not an HDF5 file of weights: {one_line(exc)[:100]})")
    if objects > MAX_WEIGHT_OBJECTS:
        _refuse(name, f"not a model of the listings ({WEIGHTS} holds more than {MAX_WEIGHT_OBJECTS:,} "
                      "groups and datasets)")
    return declared


# --- the layers: what Keras would allocate ------------------------------------------------------


def _declared_parameters(config, name):
    """The parameters Keras would allocate building the Sequential model of ``config``.

    Keras builds each layer from the input shape its ``build_config`` declares, or else from
    the shape the layers before it give; both are sized (the larger counts), from each input
    shape the model declares (its input layer, ``build_input_shape``, ``build_config``).
    """
    if not isinstance(config, dict):
        _refuse(name, f"not a Keras model file ({CONFIG} holds a JSON {type(config).__name__}, not a model)")
    model, kind = config.get("config"), config.get("class_name")
    if not isinstance(model, dict) or kind != "Sequential" or config.get("module", "keras") != "keras":
        _refuse(name, f"not a model of the listings (a {str(kind)[:40]!r} model; theirs are Sequential)")
    layers = model.get("layers")
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        _refuse(name, f"not a Keras model file ({CONFIG} has no list of layers)")
    if len(layers) > MAX_LAYERS:
        _refuse(name, f"not a model of the listings ({len(layers):,} layers; at most {MAX_LAYERS} are read)")
    starts = {_input_shape(start, name) for start in _declared_inputs(config, model, layers)}
    return max(_walk(layers, start, name) for start in starts or {None})


def _declared_inputs(config, model, layers):
    """Every input shape the config declares for the model (as JSON values)."""
    first = layers[0].get("config") if layers else None
    first = first if isinstance(first, dict) else {}
    if layers and layers[0].get("class_name") == "InputLayer":
        batch_shape = first.get("batch_shape", first.get("batch_input_shape"))
        shape = first.get("shape", first.get("input_shape"))
        if batch_shape is None and isinstance(shape, list):
            batch_shape = [first.get("batch_size")] + shape
        yield batch_shape
    elif first.get("input_dim") is not None:
        yield [None, first["input_dim"]]
    elif isinstance(first.get("input_shape"), list):
        yield [None] + first["input_shape"]
    if model.get("build_input_shape") is not None:
        yield model["build_input_shape"]
    build = config.get("build_config")
    if isinstance(build, dict) and build.get("input_shape") is not None:
        yield build["input_shape"]


def _walk(layers, shape, name):
    """The parameters of ``layers`` built in turn from the input shape ``shape`` (None: unknown)."""
    total = 0
    for index, layer in enumerate(layers):
        kind, settings = layer.get("class_name"), layer.get("config")
        if kind == "InputLayer":
            continue
        label = f"layer {index} ({str(kind)[:40]!r})"
        keras_layer = kind in LAYERS and layer.get("module", "keras.layers") == "keras.layers"
        if not keras_layer or not isinstance(settings, dict):
            _refuse(name, f"not a model of the listings ({label}; their layers are {', '.join(sorted(LAYERS))})")
        size = LAYERS[kind]
        built = _build_shape(layer, label, name)
        parameters, out = size(settings, shape, label, name) if shape is not None else (0, None)
        if built is not None:
            parameters = max(parameters, size(settings, built, label, name)[0])
        if parameters > MAX_PARAMETERS:
            _refuse(name, f"{label} would allocate {parameters:,} parameters; a model file may declare "
                          f"{MAX_PARAMETERS:,} at most (the chapter's largest model has {LARGEST:,})")
        total += parameters
        shape = out
    if total > MAX_PARAMETERS:
        _refuse(name, f"its layers would allocate {total:,} parameters; a model file may declare "
                      f"{MAX_PARAMETERS:,} at most (the chapter's largest model has {LARGEST:,})")
    return total


def _build_shape(layer, label, name):
    build = layer.get("build_config")
    if build is None or build == {}:
        return None
    if not isinstance(build, dict) or set(build) != {"input_shape"}:
        _refuse(name, f"not a model of the listings ({label} has a build_config other than an input shape)")
    return _input_shape(build["input_shape"], name, label)


def _input_shape(value, name, label="the input"):
    """A declared shape as a tuple of whole numbers or None (unknown), within bounds; else refused."""
    if (not isinstance(value, list) or not 1 <= len(value) <= MAX_RANK
            or not all(d is None or (type(d) is int and 0 <= d <= MAX_DIM) for d in value)):
        _refuse(name, f"not a model of the listings ({label} declares the shape {str(value)[:60]})")
    return tuple(value)


def _whole(settings, key, label, name, default=None):
    """A layer setting that must be a positive whole number."""
    value = settings.get(key, default)
    if type(value) is not int or not 1 <= value <= MAX_DIM:
        _refuse(name, f"not a model of the listings ({label}: {key} = {str(value)[:40]}, not a positive whole number)")
    return value


def _pair(settings, key, label, name, default=None):
    """A 2-D layer setting (kernel_size, strides, ...): one positive whole number or two."""
    value = settings.get(key, default)
    value = [value, value] if type(value) is int else value
    if not isinstance(value, list) or len(value) != 2:
        _refuse(name, f"not a model of the listings ({label}: {key} = {str(value)[:40]}, "
                      "not two positive whole numbers)")
    return tuple(_whole({key: v}, key, label, name) for v in value)


def _times(*dims):
    """The product of dimensions; 0 where one is unknown (Keras cannot allocate that, and stops)."""
    return 0 if None in dims else math.prod(dims)


def _dim(shape, axis):
    return shape[axis] if -len(shape) <= axis < len(shape) else None


def _channels_first(settings, label, name):
    """A 2-D layer's data_format; Keras saves it spelled out (None would be keras.json's choice)."""
    data_format = settings.get("data_format")
    if data_format not in ("channels_last", "channels_first"):
        _refuse(name, f"not a model of the listings ({label}: data_format {repr(data_format)[:40]})")
    return data_format == "channels_first"


def _spatial(settings, shape, label, name, kernel, strides, dilation=(1, 1)):
    """A 2-D layer's output rows and columns (None: unknown), as Keras computes them; None for
    an input that is not 4-D (Keras cannot call the layer on it)."""
    padding = settings.get("padding", "valid")
    if padding not in ("valid", "same"):
        _refuse(name, f"not a model of the listings ({label}: padding {repr(padding)[:40]})")
    first = _channels_first(settings, label, name)
    if len(shape) != 4:
        return None
    out = []
    for n, k, s, d in zip(shape[2:] if first else shape[1:3], kernel, strides, dilation):
        if n is None:
            out.append(None)
        elif padding == "same":
            out.append(-(-n // s))
        else:
            out.append(max((n - d * (k - 1) - 1) // s + 1, 0))
    return out


def _dense(settings, shape, label, name):
    units = _whole(settings, "units", label, name)
    inputs = _dim(shape, -1)
    parameters = _times(inputs, units) + (units if settings.get("use_bias", True) else 0)
    if settings.get("lora_rank") is not None:  # LoRA adds kernels of (inputs, rank) and (rank, units)
        rank = _whole(settings, "lora_rank", label, name)
        parameters += _times(inputs, rank) + rank * units
    return parameters, shape[:-1] + (units,)


def _conv2d(settings, shape, label, name):
    filters = _whole(settings, "filters", label, name)
    kernel = _pair(settings, "kernel_size", label, name)
    strides = _pair(settings, "strides", label, name, 1)
    dilation = _pair(settings, "dilation_rate", label, name, 1)
    groups = _whole(settings, "groups", label, name, 1)
    first = _channels_first(settings, label, name)
    channels = _dim(shape, 1 if first else -1)
    parameters = _times(kernel[0], kernel[1], None if channels is None else channels // groups, filters)
    parameters += filters if settings.get("use_bias", True) else 0
    rows_cols = _spatial(settings, shape, label, name, kernel, strides, dilation)
    if rows_cols is None:
        return parameters, None
    return parameters, (shape[0], filters, *rows_cols) if first else (shape[0], *rows_cols, filters)


def _pooling2d(settings, shape, label, name):
    pool = _pair(settings, "pool_size", label, name, 2)
    strides = pool if settings.get("strides") is None else _pair(settings, "strides", label, name)
    rows_cols = _spatial(settings, shape, label, name, pool, strides)
    if rows_cols is None:
        return 0, None
    first = _channels_first(settings, label, name)
    return 0, (shape[0], shape[1], *rows_cols) if first else (shape[0], *rows_cols, shape[3])


def _flatten(settings, shape, label, name):
    rest = shape[1:]
    return 0, (shape[0], None if None in rest else math.prod(rest))


def _batch_normalization(settings, shape, label, name):
    axis = settings.get("axis", -1)
    if type(axis) is not int:
        _refuse(name, f"not a model of the listings ({label}: axis = {str(axis)[:40]})")
    copies = 2 + bool(settings.get("scale", True)) + bool(settings.get("center", True))
    copies += 3 if settings.get("renorm") else 0  # the moving stddev and renormalization's mean and stddev
    return _times(_dim(shape, axis), copies), shape


def _simple_rnn(settings, shape, label, name):
    units = _whole(settings, "units", label, name)
    if settings.get("stateful"):
        _refuse(name, f"not a model of the listings ({label} is stateful: its state takes the batch size)")
    features = _dim(shape, -1)
    parameters = _times(features, units) + units * units + (units if settings.get("use_bias", True) else 0)
    if settings.get("return_state") or len(shape) != 3:
        return parameters, None  # several outputs, or no sequence: nothing after it can be built
    return parameters, (shape[0], shape[1], units) if settings.get("return_sequences") else (shape[0], units)


def _same_shape(settings, shape, label, name):
    return 0, shape


# The layers the listings and their variants (study/variants.py) use, each sized from its settings
# and input shape: (parameters, output shape).
LAYERS = {
    "Dense": _dense,
    "Conv2D": _conv2d,
    "MaxPooling2D": _pooling2d,
    "AveragePooling2D": _pooling2d,
    "Flatten": _flatten,
    "BatchNormalization": _batch_normalization,
    "SimpleRNN": _simple_rnn,
    "Activation": _same_shape,
    "Dropout": _same_shape,
}
