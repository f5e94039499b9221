"""A listing's run (ch1/run.py, ch1/cli.py, ch1/outputs.py) in this process: bad input and output folders
refused in one line before any long work, a full disk at the save keeps the trained model, the model
diagram without Graphviz, and a quiet start."""

import errno
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

import keras
import numpy as np
import pytest

import cnn_mnist
import mlp_mnist
from ch1 import cli, outputs
from ch1.cli import ListingParser
from ch1.run import Run


def run_on_64_images(argv, monkeypatch):
    """mlp-mnist's Run (``argv`` its flags) trained on 64 blank images, without Graphviz (a .dot): the
    model, and the run's finish (which writes its outputs)."""
    monkeypatch.setattr(outputs, "graphviz_available", lambda: False)
    run = Run("mlp-mnist", "1.3.2", ListingParser("", epochs=1, batch_size=32).parse_args(argv))
    model = mlp_mnist.build_model()
    run.plot_model(model)
    model.compile(loss="categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    model.fit(np.zeros((64, 784), "float32"), np.eye(10)[np.arange(64) % 10], epochs=1, batch_size=32,
              callbacks=run.callbacks, verbose=0)
    return model, lambda: run.finish(model, 0.5)


def test_without_graphviz_the_diagram_is_a_dot_file_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    _, finish = run_on_64_images(["--output-dir", str(tmp_path)], monkeypatch)
    finish()
    lines = capsys.readouterr().out.strip().splitlines()
    assert "digraph" in (tmp_path / "mlp-mnist.dot").read_text() and not (tmp_path / "mlp-mnist.png").exists()
    assert lines[0].startswith(f"Graphviz 'dot' not found: wrote {tmp_path}/mlp-mnist.dot instead of mlp-mnist.png")
    assert "apt-get install graphviz" in lines[0]
    assert lines[-1] == (f"Wrote {tmp_path}/mlp-mnist.dot, {tmp_path}/mlp-mnist.keras, "
                         f"{tmp_path}/mlp-mnist-history.png, {tmp_path}/mlp-mnist.json")
    assert sorted(os.listdir(tmp_path)) == ["mlp-mnist-history.png", "mlp-mnist.dot", "mlp-mnist.json",
                                            "mlp-mnist.keras"]  # and no temporary file


def test_the_history_plot_ticks_whole_epochs(tmp_path, monkeypatch):
    ticks, real = [], outputs.save_figure

    def save_figure(fig, path, **kwargs):
        ticks.extend(t for ax in fig.axes for t in ax.get_xticks())
        return real(fig, path, **kwargs)

    monkeypatch.setattr(outputs, "save_figure", save_figure)
    outputs.plot_history({"loss": [0.5], "accuracy": [0.9]}, str(tmp_path / "h.png"), "one epoch")
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


# --- refused in one line, exit status 2, before any long work ------------------------------------


@pytest.fixture()
def no_long_work(monkeypatch):
    """Training and loading MNIST fail the test: what is refused must be refused before either."""
    import ch1.run

    def long_work(*args, **kwargs):
        raise AssertionError("training or data loading started despite bad input")

    monkeypatch.setattr(keras.Model, "fit", long_work)
    monkeypatch.setattr(ch1.run, "load_mnist", long_work)


def refused(main, argv, capsys):
    """``main(argv)``'s one stderr line, after ``error: ``; exit status 2, no traceback."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    captured = capsys.readouterr()
    assert exit_.value.code == 2 and len(captured.err.splitlines()) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    return captured.err.split(": error: ", 1)[1].rstrip("\n")


@pytest.mark.backend
@pytest.mark.parametrize("argv, expected", [
    (["--data", "{p}/missing.npz"], "--data {p}/missing.npz: no such file or folder"),
    (["--data", "{p}/digits.txt"], "{p}/digits.txt: neither an npz file nor a folder of MNIST IDX files"),
    (["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    (["--batch-size", "big"], "argument --batch-size: expected a whole number, got 'big'"),
    (["--seed", str(2**32)], "argument --seed: must be from 0 to 4294967295, got 4294967296"),
    (["--batch-size", "60001"], "argument --batch-size: at most the 60,000 training images, got 60,001"),
    (["--smoke", "--batch-size", "6001"], "argument --batch-size: at most the 6,000 training images of --smoke, "
                                          "got 6,001"),
    (["--output-dir", "{p}/digits.txt"], "--output-dir {p}/digits.txt: cannot write there (File exists)"),
    (["--output-dir", "{p}/digits.txt/sub"], "--output-dir {p}/digits.txt/sub: cannot write there (Not a directory)"),
])
def test_bad_input_is_one_line(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(keras.Model, "fit", lambda *a, **k: pytest.fail("training started despite bad input"))
    (tmp_path / "digits.txt").write_text("not mnist\n")
    message = refused(cnn_mnist.main, [a.format(p=tmp_path) for a in argv], capsys)
    assert message == expected.format(p=tmp_path) or message.startswith(expected.format(p=tmp_path) + ";")
    assert not os.path.exists(tmp_path / "outputs" / "cnn-mnist.json")


def test_bad_output_folders_are_refused_before_training(tmp_path, monkeypatch, capsys, no_long_work):
    out = tmp_path / "out"
    (out / "mlp-mnist.keras").mkdir(parents=True)
    assert refused(mlp_mnist.main, ["--output-dir", str(out)], capsys) == \
        f"--output-dir {out}: mlp-mnist.keras there is a folder; a run replaces it with a file"
    os.rmdir(out / "mlp-mnist.keras")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=10 * 2**20))
    assert refused(mlp_mnist.main, ["--output-dir", str(out)], capsys) == \
        f"--output-dir {out}: only 10.0 MB free there; a run needs {cli.MIN_FREE_BYTES // 2**20} MB"
    assert os.listdir(out) == []  # the probes leave nothing behind


@pytest.mark.parametrize("argv, hint", [
    (["--eopchs", "2"], " (did you mean --epochs?)"),
    (["--batch_size=64"], " (did you mean --batch-size?)"),
    (["--smoek"], " (did you mean --smoke?)"),
    (["--zzzzzz"], ""),  # nothing near: no guess
])
def test_a_mistyped_flag_suggests_the_nearest(argv, hint, capsys):
    with pytest.raises(SystemExit) as exit_:
        ListingParser("", epochs=20, batch_size=128).parse_args(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.endswith(f": error: unrecognized arguments: {' '.join(argv)}{hint}\n")


def test_help_shows_no_default_where_there_is_none(capsys):
    parser = cli.Parser("A tool.")
    parser.add_argument("--given", default=3, help="with a default")
    parser.add_argument("--optional", help="without one")
    parser.print_help()
    text = " ".join(capsys.readouterr().out.split())
    assert "with a default (default: 3)" in text and "without one" in text and "None" not in text


@pytest.mark.parametrize("stdout", [None, "broken"], ids=["closed", "broken-pipe"])
def test_an_error_is_one_line_whatever_became_of_stdout(stdout, monkeypatch, capsys):
    """ch1.cli.error flushes stdout first (the two streams keep their order): a stdout closed (None) or
    whose reader left is no obstacle."""
    class Broken:
        def write(self, *text):
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

        flush = write

    monkeypatch.setattr(sys, "argv", ["tool.py"])
    monkeypatch.setattr(sys, "stdout", stdout and Broken())
    cli.error("--data x\n: no such file")
    assert capsys.readouterr().err == "tool.py: error: --data x\\n: no such file\n"


# --- a full disk at the save keeps the trained model ---------------------------------------------


def test_disk_full_at_the_save_keeps_the_trained_model(tmp_path, monkeypatch, capsys):
    """ENOSPC at model.save, after training: one line, exit 2, nothing half-written in --output-dir, and the
    trained model kept, whole, in the system's temporary folder (where it cannot be: one line too)."""
    out, system_tmp = tmp_path / "out", tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    real_save = keras.Model.save

    def save(model, path, *args, **kwargs):
        if os.path.dirname(os.path.abspath(path)) != str(out):
            return real_save(model, path, *args, **kwargs)
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 half a model")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(keras.Model, "save", save)
    model, finish = run_on_64_images(["--output-dir", str(out)], monkeypatch)
    capsys.readouterr()
    message = refused(lambda argv: finish(), [], capsys)
    stem = f"{out}/mlp-mnist.keras: cannot save the trained model ({os.strerror(errno.ENOSPC)}); it is kept as "
    assert message.startswith(stem), message
    kept = message[len(stem):]
    assert os.path.dirname(kept) == str(system_tmp) and re.fullmatch(r"mlp-mnist-[0-9a-f]{8}\.keras",
                                                                   os.path.basename(kept))
    assert os.listdir(system_tmp) == [os.path.basename(kept)] and zipfile.is_zipfile(kept)
    loaded = keras.saving.load_model(kept)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), model.get_weights()))
    assert os.listdir(out) == ["mlp-mnist.dot"]  # the diagram, written before training; no model, no JSON
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    assert refused(lambda argv: finish(), [], capsys).endswith(
        f"cannot save the trained model ({os.strerror(errno.ENOSPC)}), nor keep it in {tmp_path / 'gone'}")


# --- a quiet start --------------------------------------------------------------------------------


def test_tensorflows_startup_notices_are_known_and_nothing_else_is():
    from ch1.startup import is_noise

    for line in ("I0000 00:00:1795914787.648777    4458 port.cc:153] oneDNN custom operations are on.",
                 "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
                 "E0000 00:00:1 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
                 "I0000 00:00:1 cpu_feature_guard.cc:227] This TensorFlow binary is optimized"):
        assert is_noise(line)
    assert not is_noise("mlp_mnist.py: error: --data x: no such file or folder")
    assert not is_noise("Traceback (most recent call last):")


def test_importing_ch1_loads_no_keras(tmp_path):
    code = ("import sys, ch1, ch1.cli, ch1.data, ch1.device, ch1.files, ch1.outputs, ch1.startup; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and done.stdout == "[]\n" and done.stderr == ""
