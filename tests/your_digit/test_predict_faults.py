"""predict.py against hostile input: model files refused in one line and bounded memory, a signal
mid-load leaving nothing in $TMPDIR, broken models' NaN outputs, file names that would forge lines,
and --show writing each PNG as its image is classified."""

import contextlib
import os
import signal
import subprocess
import sys
import weakref
import zipfile

import keras
import numpy as np
import pytest

import predict
from ch1.data import prepare_images
from tests import background
from tests.support import ROOT, ended, first_test_digit, untrained_mlp
from tests.your_digit.test_model_file import HOSTILE, hdf5, hostile_file, layer, members, rezip, sequential
from tests.your_digit.test_predict import run, save
from your_digit import model_file
from your_digit.digits import read_image, to_mnist

LIMIT_MB = 1500  # the bound on memory for bad input


@pytest.fixture()
def digit(mnist_arrays, tmp_path):
    return save(mnist_arrays["x_test"][0], tmp_path / "digit.png")


# --- hostile model files ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_models_one_line_exit_2_before_any_image(case, digit, tmp_path, capsys, monkeypatch):
    path = hostile_file(tmp_path, case)
    monkeypatch.setattr(predict, "read_image", lambda *args: pytest.fail("an image was read despite a bad model"))
    _, code, out, err = run([digit, "--model", path], capsys)
    assert code == 2 and out == []
    assert len(err) == 1 and f"error: --model {path}: " in err[0] and HOSTILE[case][1] in err[0], err


def at_the_bound(folder):
    """The largest hostile file the checks let through: 9,937,510 parameters declared (just under the
    bound) and weights as large as they may be, one dataset of 160 MB of zeros that Keras reads whole
    before it finds that it fits no variable."""
    config = sequential(layer("Dense", [None, 784], units=12500), layer("Dense", [None, 12500], units=10))
    size = model_file.WEIGHT_BYTES_PER_PARAMETER * 9_937_510 + model_file.WEIGHT_FILE_OVERHEAD
    values = np.zeros((size - model_file.WEIGHT_FILE_OVERHEAD) // 4, np.float32)
    weights = hdf5(lambda w: w.create_dataset("layers/dense/vars/0", data=values))
    path = os.path.join(folder, "at-the-bound.keras")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for member in members(config, weights):
            archive.writestr(member.name, member.payload)
    assert model_file.check(path) == 9_937_510
    return path


PEAK = """
import sys
sys.path.insert(0, {root!r})
sys.argv[0] = "predict.py"
import predict


def peak():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) // 1024


print("started", peak(), flush=True)
for model in sys.argv[2:]:
    try:
        predict.main([sys.argv[1], "--model", model])
        print("classified", peak(), flush=True)
    except SystemExit as exit_:
        print("exit", exit_.code, peak(), flush=True)
"""


def hostile_models_in_one_process(folder, npz):
    """The attacker's files given to one predict.py process in turn (a case, tests/background.py):
    ``(the files, the process)``."""
    cases = ["dense-500000", "config-bomb", "assets", "weights-bomb", "weights-h5-bomb", "directory", "total"]
    paths = [hostile_file(folder, case) for case in cases] + [at_the_bound(folder)]
    done = subprocess.run([sys.executable, "-c", PEAK.format(root=ROOT), background.result(first_test_digit), *paths],
                          capture_output=True, text=True, timeout=300)
    return cases, paths, done


@background.fresh(hostile_models_in_one_process)
def test_hostile_models_are_refused_in_bounded_memory():
    """The attacker's files, one after another in one predict.py process: each one line, exit 2, and the
    process's peak memory (TensorFlow's own ~0.7 GB included) stays under 1.5 GB."""
    cases, paths, done = background.result(hostile_models_in_one_process)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) == len(paths) + 1, done.stderr
    errors = done.stderr.splitlines()
    assert len(errors) == len(paths), done.stderr
    for path, error in zip(paths, errors):
        assert error.startswith(f"predict.py: error: --model {path}: ")
    assert "not a Keras model file (A total of 2 objects could not be loaded" in errors[-1]  # as Keras says
    peaks = [int(line.split()[-1]) for line in lines]
    for name, line in zip(["(TensorFlow started)"] + cases + ["at-the-bound"], lines):
        print(f"{name}: {line}; peak so far {line.split()[-1]} MB")
    assert all(line.startswith("exit 2 ") for line in lines[1:])
    assert max(peaks) < LIMIT_MB, peaks


MID_LOAD = """
import sys, time
sys.path.insert(0, {root!r})
sys.argv[0] = "predict.py"
import predict
from keras.src.saving import saving_lib

if {short_of_memory}:
    saving_lib.is_memory_sufficient = lambda model: False  # Keras extracts the weights beside the file


def stalled(*args, **kwargs):  # Keras has extracted what it extracts when it comes to the weights
    print("loading", flush=True)
    time.sleep(120)


saving_lib._load_state = stalled
predict.main(sys.argv[1:])
"""


def signals_mid_load(folder, npz):
    """SIGTERM while Keras reads the weights, and Ctrl-C where Keras, short of memory, has extracted them
    beside the file, side by side (each starts TensorFlow; a case, tests/background.py): for each,
    ``(what it printed first, the files extracted then, returncode, stderr, what is left in its
    $TMPDIR, what is left beside the model)``."""
    digit, untrained = background.result(first_test_digit), background.result(untrained_mlp)
    runs, seen = [], {}
    with contextlib.ExitStack() as stack:
        for name, short_of_memory in (("SIGTERM", False), ("SIGINT", True)):
            model_folder, tmpdir = folder / name / "model", folder / name / "tmp"
            model_folder.mkdir(parents=True)
            tmpdir.mkdir()
            model = rezip(untrained, model_folder / "mlp.keras",
                          [("assets/note.txt", b"an asset: Keras extracts the archive")])
            loading = stack.enter_context(ended(subprocess.Popen(
                [sys.executable, "-c", MID_LOAD.format(root=ROOT, short_of_memory=short_of_memory), digit, "--model",
                 model], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, "TMPDIR": str(tmpdir)})))
            runs.append((name, model_folder, tmpdir, loading))
        for name, model_folder, tmpdir, loading in runs:
            first = loading.stdout.readline()
            extracted = [os.path.join(top, f) for top, _, files in os.walk(tmpdir) for f in files]
            loading.send_signal(getattr(signal, name))
            _, err = loading.communicate(timeout=60)
            seen[name] = (first, extracted, loading.returncode, err, os.listdir(tmpdir), os.listdir(model_folder))
    return seen


@background.fresh(signals_mid_load)
def test_a_signal_mid_load_leaves_no_extraction_folder():
    """SIGTERM while Keras reads the weights, and Ctrl-C where Keras, short of memory, has extracted
    them beside the file: nothing of the extraction is left."""
    for name, (first, extracted, returncode, err, tmp_left, beside) in background.result(signals_mid_load).items():
        assert first == "loading\n", name
        assert [p for p in extracted if p.endswith("model.weights.h5")], (name, extracted)  # mid-load: it is there
        assert returncode == -getattr(signal, name), (name, err)
        assert err == "predict.py: interrupted\n", name
        assert tmp_left == [] and beside == ["mlp.keras"], name


# --- the model file's name ---------------------------------------------------------------------------


def test_an_upper_case_suffix_is_a_keras_model(tiny_model, digit, tmp_path, capsys):
    upper = tmp_path / "UP.KERAS"
    upper.write_bytes(open(tiny_model, "rb").read())
    lower, code, _, _ = run([digit, "--model", tiny_model], capsys)
    results, code_upper, out, err = run([digit, "--model", str(upper)], capsys)
    assert code == code_upper == 0 and err == [] and len(out) == 1
    assert results[0]["probabilities"] == lower[0]["probabilities"]


# --- broken models: NaN or infinite outputs ------------------------------------------------------------


def saved_dense(path, kernel, activation="softmax"):
    """A one-layer model on 784 inputs with the given kernel (784, 10) and no bias, saved."""
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation=activation)])
    model.layers[0].set_weights([np.broadcast_to(np.float32(kernel), (784, 10)), np.zeros(10, np.float32)])
    model.save(path)
    return str(path)


@pytest.mark.parametrize("weight", [np.nan, np.inf])
def test_nan_or_infinite_outputs_are_an_error_not_nan_percent(weight, mnist_arrays, tmp_path, capsys):
    model = saved_dense(tmp_path / "broken.keras", weight)
    images = [save(mnist_arrays["x_test"][i], tmp_path / f"{i}.png") for i in range(3)]
    _, code, out, err = run(images + ["--model", model], capsys)
    assert code == 2 and out == [] and len(err) == 3
    for image, line in zip(images, err):
        assert line.endswith(f"error: {image}: --model {model} gave NaN or infinite outputs for it (a broken model)")
    assert not any("%" in line for line in err)  # no probabilities, NaN or other


def test_an_overflow_for_one_image_leaves_the_others_as_they_are(mnist_arrays, tmp_path, capsys):
    """Logits overflow to infinity for the image with the most ink only: that image gets an error line,
    the other its softmax output unchanged (not put through a second softmax with the broken row)."""
    images = [save(x, tmp_path / f"{i}.png") for i, x in enumerate(mnist_arrays["x_test"][:20])]
    ink = np.array([prepare_images(to_mnist(read_image(p)[0]), (784,)).sum() for p in images])
    light, heavy = int(ink.argmin()), int(ink.argmax())
    scale = 2 * float(np.finfo(np.float32).max) / float(ink[light] + ink[heavy])  # finite for one image only
    kernel = np.zeros((784, 10), np.float32)
    kernel[:, 0] = scale
    model = saved_dense(tmp_path / "overflow.keras", kernel)
    results, code, out, err = run([images[light], images[heavy], "--model", model], capsys)
    assert code == 2 and len(out) == 1 and len(err) == 1
    assert out[0] == f"{images[light]}: 0  (0 100.0%, 1 0.0%, 2 0.0%)"
    assert f"{images[heavy]}: --model {model} gave NaN or infinite outputs" in err[0]


# --- file names cannot forge lines ---------------------------------------------------------------------


def test_printable_escapes_control_and_invisible_characters():
    assert predict.printable("a\nb\r\tc\x1b[2J\x85\u2028\u202e\x00.png") == \
        "a\\nb\\r\\tc\\x1b[2J\\x85\\u2028\\u202e\\x00.png"
    assert predict.printable("chiffre 7 — été.png") == "chiffre 7 — été.png"
    assert predict.printable(os.fsdecode(b"caf\xe9.png")) == "caf\\xe9.png"


def test_file_names_with_newlines_cannot_forge_result_lines(tiny_model, digit, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = ["two\nlines.png", "cr\rreturn.png", "esc\x1b[1Aape.png", "line\u2028separator.png"]
    for name in names:
        os.link(digit, name)
    forged = "gone.png: 7  (7 99.0%, 1 0.5%, 9 0.2%)\nreal.png"
    _, code, out, err = run(names + [forged, "--model", tiny_model], capsys)
    assert code == 2 and len(out) == len(names) and len(err) == 1
    for name, line in zip(names, out):
        assert line.startswith(predict.printable(name) + ": ") and "\\" in line
    assert err[0].endswith("error: gone.png: 7  (7 99.0%, 1 0.5%, 9 0.2%)\\nreal.png: no such file")
    _, code, out, err = run([names[0], "--model", "no\nmodel.keras"], capsys)
    assert code == 2 and out == [] and len(err) == 1 and "--model no\\nmodel.keras: no such file" in err[0]


# --- --show: each PNG written as its image is classified ------------------------------------------------


def test_show_writes_each_png_as_it_goes_and_drops_the_image(tiny_model, mnist_arrays, tmp_path, capsys,
                                                             monkeypatch):
    """With 8 images 3 at a time, the first PNG is written once 3 images are read, and no more than 3
    images are ever held: memory does not grow with the number of images."""
    monkeypatch.setattr(predict, "BATCH", 3)
    images = [save(x, tmp_path / f"{i}.png") for i, x in enumerate(mnist_arrays["x_test"][:8])]
    reads, held, writes = [], set(), []
    save_seen = predict.save_seen

    def counted_read(path, name=None):
        grey, shown = read_image(path, name)
        reads.append(path)
        held.add(len(reads))
        weakref.finalize(shown, held.discard, len(reads))  # the shown image, once dropped
        return grey, shown

    def counted_save(*args):
        writes.append((len(reads), len(held)))
        return save_seen(*args)

    monkeypatch.setattr(predict, "read_image", counted_read)
    monkeypatch.setattr(predict, "save_seen", counted_save)
    results, code, out, _ = run(images + ["--model", tiny_model, "--show", "--output-dir", str(tmp_path / "shown")],
                                capsys)
    assert code == 0 and len(results) == len(images) and len(out) == 2 * len(images)
    assert writes[0] == (3, 3)  # the first PNG: after the first batch's 3 reads, not all 8
    assert max(h for _, h in writes) <= 3 and [r for r, _ in writes] == [3, 3, 3, 6, 6, 6, 8, 8]
    assert sorted(os.listdir(tmp_path / "shown")) == sorted(f"{i}-seen.png" for i in range(8))
    assert not held  # every image dropped once its line and PNG are out
