"""your_digit/model_file.py: a model file checked before Keras reads it (hostile archives refused in one line,
without Keras) and loaded leaving no temporary folder behind, however the load ends.

The hostile archives are written by hand (:func:`write_zip`): members stored, deflated to any size
("bombs" of a few kB per 16 MB), or declaring sizes they do not hold. tests/study/test_predict_faults.py
runs them through predict.py and measures its memory.
"""

import collections
import io
import itertools
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

import h5py
import numpy as np
import pytest

from tests import background
from tests.support import ROOT
from your_digit import model_file
from your_digit.model_file import ModelFileError

# --- archives written by hand --------------------------------------------------------------------

Member = collections.namedtuple("Member", "name payload crc size method flags", defaults=(zipfile.ZIP_STORED, 0))
CHUNK = 1 << 24  # a bomb inflates 16 MB per repeated deflate block
METADATA = b'{"keras_version": "3.15.1", "date_saved": "2026-01-01@00:00:00"}'
_blocks = {}  # fill byte: a 16 MB block of it, deflated


def hdf5(make=lambda weights: None):
    """An HDF5 file (bytes), as ``make`` fills it."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as weights:
        make(weights)
    return buffer.getvalue()


WEIGHTS_MEMBER = ("model.weights.h5", hdf5())  # an empty one: enough for the checks


def stored(name, data):
    return Member(name, data, zlib.crc32(data), len(data))


def bomb(name, chunks, head=b"", fill=b" "):
    """A deflated member that inflates to ``head`` then ``chunks`` times 16 MB of ``fill`` (its CRC true)."""
    if fill not in _blocks:  # one 16 MB block compressed on its own: the stream repeats it
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        _blocks[fill] = deflate.compress(fill * CHUNK) + deflate.flush(zlib.Z_FULL_FLUSH)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc, block = zlib.crc32(head), fill * CHUNK
    for _ in range(chunks):
        crc = zlib.crc32(block, crc)
    payload = start + _blocks[fill] * chunks + b"\x03\x00"  # an empty final block ends the stream
    return Member(name, payload, crc, len(head) + chunks * CHUNK, zipfile.ZIP_DEFLATED)


def write_zip(path, members, zip64=False):
    """A zip archive of ``members`` as they are, whatever they declare. The end record counts the
    members modulo 65,536 as a 16-bit field does; ``zip64`` adds zip64 end records before it."""
    body, directory = bytearray(), bytearray()
    for m in members:
        name = m.name.encode()
        header = (m.flags, m.method, 0, 0x21, m.crc, len(m.payload), m.size, len(name))
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, *header, 0, 0, 0, 0, 0, len(body)) + name
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, *header, 0) + name + m.payload
    count = len(members)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count % 65536, count % 65536, len(directory), len(body), 0)
    if zip64:
        at = len(body) + len(directory)
        end = (struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(directory), len(body))
               + struct.pack("<4sLQL", b"PK\x06\x07", 0, at, 1) + end)
    with open(path, "wb") as f:
        f.write(body + directory + end)
    return str(path)


_names = itertools.count()


def layer(kind, build=None, module="keras.layers", **settings):
    """One layer of a config.json as Keras writes it (only what loading reads)."""
    entry = {"module": module, "class_name": kind, "config": {"name": f"{kind.lower()}_{next(_names)}", **settings},
             "registered_name": None}
    if build is not None:
        entry["build_config"] = {"input_shape": list(build)}
    return entry


def sequential(*layers, input_shape=(None, 784)):
    """A Sequential model's config.json as Keras writes it."""
    shape = list(input_shape)
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": {"name": "sequential", "trainable": True,
                       "layers": [{"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                                   "config": {"batch_shape": shape, "dtype": "float32", "name": "input_layer"}},
                                  *layers],
                       "build_input_shape": shape},
            "build_config": {"input_shape": shape}}


SMALL = sequential(layer("Dense", [None, 784], units=10, activation="softmax"))  # 7,850 parameters


def members(config=SMALL, weights=WEIGHTS_MEMBER[1]):
    """metadata.json, config.json and model.weights.h5, as Keras orders them."""
    data = config if isinstance(config, bytes) else json.dumps(config).encode()
    return [stored("metadata.json", METADATA), stored("config.json", data), stored("model.weights.h5", weights)]


def conv(filters, build=None, **settings):
    defaults = {"kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "data_format": "channels_last"}
    return layer("Conv2D", build, filters=filters, **{**defaults, **settings})


def dense_chain(*widths, start=1000):
    return sequential(*(layer("Dense", units=w) for w in widths), input_shape=(None, start))


def replaced(index, **fields):
    """The small model's members with member ``index`` changed (its flags, its compression method)."""
    parts = members()
    parts[index] = parts[index]._replace(**fields)
    return parts


SMALL_JSON = json.dumps(SMALL).encode()

# Each hostile file: (what makes its content: members, bytes or "zip64"; what its one-line refusal says
# after the file's name). Made when a test asks: the bombs take a second to make.
HOSTILE = {
    "dense-500000": (
        lambda: members(sequential(layer("Dense", [None, 784], units=500000),
                                   layer("Dense", [None, 500000], units=10))),
        "layer 1 ('Dense') would allocate 392,500,000 parameters; a model file may declare 10,000,000"),
    "no-build-config": (
        lambda: members(sequential(conv(64, padding="same"), layer("Flatten"), layer("Dense", units=1000),
                                   input_shape=(None, 28, 28, 1))),
        "layer 3 ('Dense') would allocate 50,177,000 parameters"),
    "build-config": (
        lambda: members(sequential(layer("Dense", [None, 10**8], units=10))),
        "layer 1 ('Dense') would allocate 1,000,000,010 parameters"),
    "conv": (
        lambda: members(sequential(conv(10000), conv(10000), input_shape=(None, 28, 28, 1))),
        "layer 2 ('Conv2D') would allocate 900,010,000 parameters"),
    "total": (
        lambda: members(dense_chain(2500, 1000, 2500, 1000, 10)),
        "its layers would allocate 10,017,010 parameters; a model file may declare 10,000,000 at most"),
    "config-bomb": (
        lambda: [stored("metadata.json", METADATA), bomb("config.json", 96, SMALL_JSON), stored(*WEIGHTS_MEMBER)],
        "config.json declares 1,610,613,308 bytes uncompressed, more than a model of the listings needs"),
    "config-lies": (  # its header declares the JSON's size; the stream inflates to 64 MB more
        lambda: [stored("metadata.json", METADATA), bomb("config.json", 4, SMALL_JSON)._replace(size=len(SMALL_JSON)),
                 stored(*WEIGHTS_MEMBER)],
        "not a Keras model file (a corrupt zip archive: Bad CRC-32 for file 'config.json')"),
    "assets": (
        lambda: members() + [bomb(f"assets/blob-{i}.bin", 15, fill=b"\0") for i in range(8)],
        "its 9 members besides config.json and the weights (assets/blob-0.bin, ...) declare 2,013,265,984 bytes"),
    "weights-bomb": (
        lambda: [stored("metadata.json", METADATA), stored("config.json", SMALL_JSON),
                 bomb("model.weights.h5", 96, fill=b"\0")],
        "model.weights.h5 declares 1,610,612,736 bytes uncompressed, more than its 7,850 parameters can need"),
    "weights-h5-bomb": (  # a dataset of 3.6 GB never written: HDF5 stores nothing, Keras reads it all
        lambda: members(weights=hdf5(lambda w: w.create_dataset("layers/dense/vars/0", (900_000_000,), "float32",
                                                               chunks=(2**20,), compression="gzip"))),
        "model.weights.h5's datasets declare 3,600,000,000 bytes, more than the file's"),
    "weights-not-hdf5": (lambda: members(weights=b"\x89HDF\r\n\x1a\n" + bytes(100)),
                         "(model.weights.h5 is not an HDF5 file of weights:"),
    "weights-objects": (  # 10,001 empty groups (8 MB) for 785,000 parameters (12.6 MB of weights allowed)
        lambda: members(sequential(layer("Dense", [None, 784], units=1000)),
                        hdf5(lambda w: [w.create_group(str(i)) for i in range(10_001)])),
        "(model.weights.h5 holds more than 10,000 groups and datasets)"),
    "weights-strings": (lambda: members(weights=hdf5(lambda w: w.create_dataset("s", data=["a"],
                                                                                 dtype=h5py.string_dtype()))),
                        "variable-length data, not weights"),
    "no-weights": (lambda: members()[:2], "not a Keras model file (no model.weights.h5 in its archive)"),
    "twice": (lambda: [bomb("model.weights.h5", 96, fill=b"\0")] + members(),
              "its archive holds 'model.weights.h5' twice"),
    "members": (
        lambda: members() + [stored(f"assets/{i}", b"") for i in range(1000)],
        "its archive lists 1,003 members in"),
    "directory": (  # 100,003 members: the end record's 16-bit count says 34,467
        lambda: members() + [stored(f"assets/{i}", b"") for i in range(100_000)],
        "its archive lists 34,467 members in 5,789,068 bytes"),
    "zip64": (lambda: "zip64", "a zip64 archive"),
    "not-zip": (lambda: b"not a model\n", "not a Keras model file (a .keras file is a zip archive; this is not)"),
    "no-config": (lambda: [stored("x_train.npy", b"\x93NUMPY")], "not a Keras model file (no config.json in"),
    "not-json": (lambda: members(b"{not json"), "not a Keras model file (config.json is not JSON"),
    "deep-json": (lambda: members(b"[" * 100_000 + b"]" * 100_000), "(config.json is not JSON"),
    "json-list": (lambda: members(b"[]"), "config.json holds a JSON list, not a model"),
    "functional": (lambda: members({**SMALL, "class_name": "Functional"}), "(a 'Functional' model; theirs are"),
    "unknown-layer": (lambda: members(sequential(layer("LSTM", units=10))), "(layer 1 ('LSTM'); their layers are"),
    "other-module": (lambda: members(sequential(layer("Dense", module="keras_hub.layers", units=10))),
                     "(layer 1 ('Dense'); their layers are"),
    "nested-model": (lambda: members(sequential(SMALL)), "(layer 1 ('Sequential'); their layers are"),
    "negative-shape": (
        lambda: members(sequential(layer("Dense", units=10), input_shape=(None, -1))),
        "(the input declares the shape [None, -1])"),
    "rank": (lambda: members(sequential(layer("Flatten"), input_shape=(None,) + (1000,) * 20)), "declares the shape"),
    "units": (lambda: members(sequential(layer("Dense", units="many"))), "units = many, not a positive whole number"),
    "layers": (lambda: members(sequential(*(layer("Dropout", rate=0.1) for _ in range(201)))),
               "(202 layers; at most 200"),
    "stateful": (
        lambda: members(sequential(layer("SimpleRNN", units=8, stateful=True), input_shape=(5, 28, 28))),
        "is stateful"),
    "data-format": (
        lambda: members(sequential(conv(8, data_format=None), input_shape=(None, 28, 28, 1))),
        "data_format None"),
    "encrypted": (lambda: replaced(1, flags=1), "config.json is encrypted"),
    "bzip2": (lambda: replaced(1, method=zipfile.ZIP_BZIP2), "config.json uses zip compression method 12"),
}


def hostile_file(folder, case):
    """Write the hostile file ``case`` into ``folder``; return its path."""
    content = HOSTILE[case][0]()
    path = os.path.join(folder, f"{case}.keras")
    if content == "zip64":
        return write_zip(path, members(), zip64=True)
    if isinstance(content, bytes):
        with open(path, "wb") as f:
            f.write(content)
        return path
    return write_zip(path, content)


# --- check: refused before Keras ------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_files_refused_in_one_line(case, tmp_path):
    path = hostile_file(tmp_path, case)
    with pytest.raises(ModelFileError) as refused:
        model_file.check(path, "--model evil.keras")
    message = str(refused.value)
    assert message.startswith("--model evil.keras: ") and "\n" not in message and len(message) < 300, message
    assert HOSTILE[case][1] in message


def test_the_hand_written_archives_are_well_formed(tmp_path):
    """What the hostile files are made of: zipfile reads them, a bomb inflates to what it declares, and
    the small model's archive passes the checks."""
    path = write_zip(tmp_path / "big.keras", members() + [bomb("assets/big.bin", 1, head=b"{}")])
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert json.loads(archive.read("config.json")) == SMALL
        assert archive.getinfo("assets/big.bin").file_size == CHUNK + 2
        assert len(archive.read("assets/big.bin")) == CHUNK + 2
    assert model_file.check(write_zip(tmp_path / "small.keras", members())) == 784 * 10 + 10


CHECK_ALL = """
import sys
sys.path.insert(0, {root!r})
from your_digit import model_file
for path in sys.argv[1:]:
    try:
        print("passed", model_file.check(path))
    except model_file.ModelFileError as exc:
        print("refused", exc)
print("keras" in sys.modules, "tensorflow" in sys.modules)
with open("/proc/self/status") as f:
    print(next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) // 1024)
"""


def checks_in_a_fresh_process(folder, npz):
    """Every hostile file checked in one fresh process (a case, tests/background.py: the files take
    seconds to write)."""
    paths = [hostile_file(folder, case) for case in sorted(HOSTILE)]
    return subprocess.run([sys.executable, "-c", CHECK_ALL.format(root=ROOT), *paths],
                          capture_output=True, text=True, timeout=120)


@background.fresh(checks_in_a_fresh_process)
def test_the_checks_import_no_keras_and_take_little_memory():
    done = background.result(checks_in_a_fresh_process)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-2]] == ["refused"] * len(HOSTILE)
    assert lines[-2] == "False False"  # neither Keras nor TensorFlow was imported
    peak = int(lines[-1])
    print(f"peak memory of check() over the {len(HOSTILE)} hostile files: {peak} MB")
    assert peak < 150


# --- check: the listings' models pass, sized as Keras sizes them ---------------------------------


@pytest.fixture(scope="module")
def listings(tmp_path_factory):
    """The listings' models and their variants, saved (untrained): {name: (model, path)}."""
    import keras

    import cnn_mnist
    import mlp_mnist
    import rnn_mnist
    from study import variants

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("listings")
    models = {"mlp": mlp_mnist.build_model(), "cnn": cnn_mnist.build_model(), "rnn": rnn_mnist.build_model(),
              "mlp-1024": mlp_mnist.build_model(hidden_units=1024, second_units=1024)}
    models.update({f"cnn-{v}": variants.build(cnn_mnist.build_model, v) for v in variants.CHANGES})
    saved = {}
    for name, model in models.items():
        path = str(folder / f"{name}.keras")
        model.save(path)
        saved[name] = model, path
    return saved


def test_the_listings_models_pass_with_keras_parameter_counts(listings):
    for name, (model, path) in listings.items():
        assert model_file.check(path) == model.count_params(), name
    assert max(model.count_params() for model, _ in listings.values()) == model_file.LARGEST


# Configs the listings do not have, scaled down from the hostile ones: sized as Keras builds them.
OTHER_SHAPES = [
    sequential(conv(8, padding="same"), layer("Flatten"), layer("Dense", units=10), input_shape=(None, 28, 28, 1)),
    sequential(conv(6, kernel_size=[5, 3], strides=[2, 1], groups=2), conv(4, dilation_rate=[2, 3]),
               layer("Flatten"), layer("Dense", units=10), input_shape=(None, 28, 28, 4)),
    sequential(conv(6, data_format="channels_first"), layer("MaxPooling2D", pool_size=[3, 3], strides=[1, 1],
                                                            padding="same", data_format="channels_first"),
               layer("AveragePooling2D", pool_size=[2, 2], strides=None, padding="valid",
                     data_format="channels_first"),
               layer("BatchNormalization", axis=1), layer("Flatten"), layer("Dense", units=10),
               input_shape=(None, 3, 28, 28)),
    sequential(layer("SimpleRNN", units=16, return_sequences=True), layer("SimpleRNN", units=8),
               layer("Dense", units=10, lora_rank=4), input_shape=(None, 28, 28)),
    sequential(layer("Dense", units=5), layer("Flatten"), layer("BatchNormalization", center=False),
               layer("Dense", units=10, use_bias=False), input_shape=(None, 28, 28)),
]


@pytest.mark.parametrize("index", range(len(OTHER_SHAPES)))
def test_other_shapes_are_sized_as_keras_builds_them(index, tmp_path):
    import keras

    config = OTHER_SHAPES[index]
    model = keras.models.model_from_json(json.dumps(config))
    assert model_file.check(write_zip(tmp_path / "m.keras", members(config))) == model.count_params()


# --- load: Keras reads the checked file and leaves nothing behind ---------------------------------


def rezip(source, target, extra=(), replace=None):
    """A copy of the .keras archive ``source`` with ``extra`` members (name, bytes) and members replaced."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, (replace or {}).get(info.filename, old.read(info)))
        for name, data in extra:
            new.writestr(name, data)
    return str(target)


@pytest.fixture()
def private_tmp(tmp_path, monkeypatch):
    """A fresh temporary folder for tempfile (as $TMPDIR would be): where load() makes its own."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_an_upper_case_suffix_loads(listings, tmp_path, private_tmp):
    model, path = listings["cnn"]
    upper = tmp_path / "UP.KERAS"
    upper.write_bytes(open(path, "rb").read())
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_array_equal(model_file.load(str(upper)).predict(x, verbose=0), model.predict(x, verbose=0))
    assert os.listdir(private_tmp) == [] and sorted(os.listdir(tmp_path)) == ["UP.KERAS", "tmp"]


@pytest.fixture()
def keras_folders(monkeypatch):
    """Every folder Keras makes while loading: where it extracts assets (get_temp_dir) and, short
    of memory, the weights (a TemporaryDirectory beside the file it opened)."""
    from keras.src.saving import saving_lib

    made = []
    get_temp_dir, temporary_directory = saving_lib.get_temp_dir, tempfile.TemporaryDirectory

    def recorded_temp_dir():
        made.append(get_temp_dir())
        return made[-1]

    def recorded_temporary_directory(*args, **kwargs):
        folder = temporary_directory(*args, **kwargs)
        made.append(folder.name)
        return folder

    monkeypatch.setattr(saving_lib, "get_temp_dir", recorded_temp_dir)
    monkeypatch.setattr(tempfile, "TemporaryDirectory", recorded_temporary_directory)
    return made


def with_asset(listings, tmp_path, replace=None):
    """The MLP's file with an asset (so that Keras extracts the archive), in a folder of its own."""
    folder = tmp_path / "model"
    folder.mkdir()
    return rezip(listings["mlp"][1], folder / "mlp.keras", [("assets/note.txt", b"an asset")], replace)


def test_assets_are_extracted_inside_the_private_folder_then_removed(listings, tmp_path, private_tmp, keras_folders):
    path = with_asset(listings, tmp_path)
    model = model_file.load(path)
    assert model.count_params() == listings["mlp"][0].count_params()
    assert len(keras_folders) == 1 and keras_folders[0].startswith(str(private_tmp / "model-file-"))
    assert os.listdir(private_tmp) == [] and os.listdir(tmp_path / "model") == ["mlp.keras"]


def test_short_of_memory_the_weights_are_extracted_inside_the_private_folder(listings, tmp_path, private_tmp,
                                                                              keras_folders, monkeypatch):
    from keras.src.saving import saving_lib

    monkeypatch.setattr(saving_lib, "is_memory_sufficient", lambda model: False)
    model_file.load(with_asset(listings, tmp_path))
    assert len(keras_folders) == 2 and all(f.startswith(str(private_tmp / "model-file-")) for f in keras_folders)
    assert os.listdir(private_tmp) == [] and os.listdir(tmp_path / "model") == ["mlp.keras"]


def test_a_failing_load_is_one_line_and_leaves_nothing(listings, tmp_path, private_tmp, keras_folders):
    with zipfile.ZipFile(listings["cnn"][1]) as archive:
        other = archive.read("model.weights.h5")  # another model's weights: Keras fails after extracting
    path = with_asset(listings, tmp_path, {"model.weights.h5": other})
    with pytest.raises(ModelFileError, match=r"^--model m: not a Keras model file \(.+\)$"):
        model_file.load(path, "--model m")
    assert keras_folders and os.listdir(private_tmp) == [] and os.listdir(tmp_path / "model") == ["mlp.keras"]


# --- check_classifier ----------------------------------------------------------------------------


def test_the_listings_models_are_mnist_classifiers(listings):
    for name, (model, path) in listings.items():
        assert model_file.check_classifier(model, path) is model


def test_other_models_are_not_mnist_classifiers():
    import keras

    inputs = keras.Input((784,))
    cases = [
        (keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(5)]),
         "takes (32, 32, 3) and gives (5,)"),
        (keras.Sequential([keras.Input(batch_shape=(1, 784)), keras.layers.Dense(10)]),
         "takes (784,) in batches of exactly 1 and gives (10,)"),
        (keras.Model(inputs, [keras.layers.Dense(10)(inputs), keras.layers.Dense(10)(inputs)]),
         "takes (784,) and gives None"),
        (keras.Sequential([keras.layers.Dense(10)]), "takes None and gives None"),
    ]
    for model, expected in cases:
        with pytest.raises(ModelFileError) as refused:
            model_file.check_classifier(model, "m.keras")
        assert str(refused.value) == (f"m.keras: {expected}; expected an MNIST classifier "
                                      "(28x28 = 784 input values, 10 outputs)")
