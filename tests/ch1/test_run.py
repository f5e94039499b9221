"""A listing's run (ch1/run.py): its outputs, the model diagram, bad input in one line, a quiet start."""

import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

import cnn_mnist
import rnn_mnist
from ch1 import outputs
from tests.support import ROOT, run_on_64_images


def tiny_run(tmp_path, capsys, monkeypatch):
    """A Run through its whole life on 64 images (no real training): what it prints as it finishes."""
    _, finish = run_on_64_images(["--output-dir", str(tmp_path)], monkeypatch)
    capsys.readouterr()
    finish()
    return capsys.readouterr().out.strip().splitlines()


def test_graphviz_missing_writes_dot_goes_on_and_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(outputs, "graphviz_available", lambda: False)
    lines = tiny_run(tmp_path, capsys, monkeypatch)
    assert (tmp_path / "mlp-mnist.dot").exists() and not (tmp_path / "mlp-mnist.png").exists()
    assert "digraph" in (tmp_path / "mlp-mnist.dot").read_text()
    assert lines[-1] == (f"Wrote {tmp_path}/mlp-mnist.dot, {tmp_path}/mlp-mnist.keras, "
                         f"{tmp_path}/mlp-mnist-history.png, {tmp_path}/mlp-mnist.json")


def test_graphviz_missing_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(outputs, "graphviz_available", lambda: False)
    written = outputs.plot_model(cnn_mnist.build_model(), str(tmp_path / "cnn-mnist.png"))
    assert written.endswith("cnn-mnist.dot")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "Graphviz" in lines[0] and "apt-get install graphviz" in lines[0]


def test_history_plot_ticks_whole_epochs(tmp_path):
    import matplotlib.pyplot as plt

    captured = {}
    real = outputs.save_figure

    def keep(fig, path, **kwargs):
        captured["ticks"] = [list(ax.get_xticks()) for ax in fig.axes]
        return real(fig, path, **kwargs)

    outputs.save_figure, old = keep, outputs.save_figure
    try:
        outputs.plot_history({"loss": [0.5], "accuracy": [0.9]}, str(tmp_path / "h.png"), "one epoch")
    finally:
        outputs.save_figure = old
    plt.close("all")
    for ticks in captured["ticks"]:
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


# --- bad input: one line naming the flag or file, exit code 2, no traceback, before training ----


@pytest.fixture()
def no_training(monkeypatch):
    def fit(*args, **kwargs):
        raise AssertionError("training started despite bad input")

    monkeypatch.setattr(keras.Model, "fit", fit)


def _labels_npz(tmp_path, arrays):
    y_test = arrays["y_test"].copy()
    y_test[0] = 12
    np.savez(tmp_path / "labels.npz", **{**arrays, "y_test": y_test})
    return ["--data", str(tmp_path / "labels.npz")]


def _shape_npz(tmp_path, arrays):
    np.savez(tmp_path / "shape.npz", **{**arrays, "x_train": arrays["x_train"].reshape(60000, 784)})
    return ["--data", str(tmp_path / "shape.npz")]


def _cut_npz(tmp_path, npz):
    with open(npz, "rb") as f:
        (tmp_path / "cut.npz").write_bytes(f.read(50_000))
    return ["--data", str(tmp_path / "cut.npz")]


def _text(tmp_path):
    path = tmp_path / "digits.txt"
    path.write_text("not mnist\n")
    return path


# Each case builds only the bad input it needs: (argv maker, expected part of the error line).
CASES = {
    "missing": (lambda p, a, n: ["--data", str(p / "missing.npz")], "missing.npz: no such file"),
    "neither": (lambda p, a, n: ["--data", str(_text(p))], "digits.txt: neither an npz file nor"),
    "truncated": (lambda p, a, n: _cut_npz(p, n), "cut.npz: corrupt or truncated npz"),
    "labels": (lambda p, a, n: _labels_npz(p, a), "labels.npz: y_test has labels 0..12, expected 0..9"),
    "shape": (lambda p, a, n: _shape_npz(p, a), "shape.npz: x_train has shape (60000, 784)"),
    "epochs": (lambda p, a, n: ["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    "batch": (lambda p, a, n: ["--batch-size", "-5"], "argument --batch-size: must be at least 1, got -5"),
    "batch-word": (lambda p, a, n: ["--batch-size", "big"], "argument --batch-size: expected a whole number"),
    "seed-negative": (lambda p, a, n: ["--seed", "-5"], "argument --seed: must be from 0 to 4294967295, got -5"),
    "seed-huge": (lambda p, a, n: ["--seed", str(2**32)], "argument --seed: must be from 0 to 4294967295"),
    "output-dir": (lambda p, a, n: ["--output-dir", str(_text(p))], "--output-dir {p}/digits.txt: cannot write"),
    "output-subdir": (lambda p, a, n: ["--output-dir", str(_text(p) / "sub")], "--output-dir"),
}


@pytest.mark.backend
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_one_line_exit_2(case, tmp_path, mnist_npz, mnist_arrays, monkeypatch, capsys, no_training):
    monkeypatch.chdir(tmp_path)
    make, expected = CASES[case]
    argv = make(tmp_path, mnist_arrays, mnist_npz)
    with pytest.raises(SystemExit) as exit_:
        cnn_mnist.main(argv)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "error: " in lines[0] and expected.format(p=tmp_path) in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not os.path.exists(tmp_path / "outputs" / "cnn-mnist.json")
    if case.startswith("seed"):
        assert not os.path.exists(tmp_path / "outputs")  # refused before the output folder is made


def test_bad_data_from_the_environment(tmp_path, monkeypatch, capsys, no_training):
    monkeypatch.setenv("MNIST_DATA", str(tmp_path / "nope"))
    with pytest.raises(SystemExit) as exit_:
        rnn_mnist.main(["--output-dir", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert f"error: MNIST_DATA {tmp_path / 'nope'}: no such file or folder" in capsys.readouterr().err


def run_script(args, cwd, **kwargs):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=300, **kwargs)


def test_help_writes_nothing_to_stderr(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["cnn_mnist.py"])
    with pytest.raises(SystemExit) as exit_:
        cnn_mnist.main(["--help"])
    captured = capsys.readouterr()
    assert exit_.value.code == 0 and captured.err == "" and "usage: cnn_mnist.py" in captured.out


def test_startup_notices_are_filtered_and_other_lines_kept():
    from ch1.startup import is_noise

    for line in ("I0000 00:00:1795914787.648777    4458 port.cc:153] oneDNN custom operations are on. You may see",
                 "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
                 "E0000 00:00:1 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
                 "I0000 00:00:1 cpu_feature_guard.cc:227] This TensorFlow binary is optimized"):
        assert is_noise(line)
    assert not is_noise("mlp_mnist.py: error: --data x: no such file or folder")
    assert not is_noise("Traceback (most recent call last):")


NODE_DEF = ("E0000 00:00:1796171917.156656   18847 node_def_util.cc:682] NodeDef mentions attribute "
            "use_unbounded_threadpool which is not in the op definition: Op<name=MapDataset; ...>")
FILTERED = """
import os, signal, sys
sys.argv[0] = "train.py"
from ch1 import cli, startup
cli.Parser("").parse_args([])  # installs the signal handlers, as every command does
startup._filter = startup._StderrFilter()  # as quiet_startup does where TF_CPP_MIN_LOG_LEVEL is below 3
noise = sys.argv[1].encode()
os.write(2, b"kept 1\\n" + noise + b"\\nkept 2\\n")
os.write(2, noise + b"\\n")
print("from Python", file=sys.stderr)
os.write(2, b"no newline")
if sys.argv[2] == "signal":
    os.kill(os.getpid(), signal.SIGTERM)
"""


@pytest.mark.parametrize("end", ["exit", "signal"])
def test_the_spurious_training_line_is_filtered_for_the_whole_run(end, tmp_path):
    """ch1.startup._StderrFilter: TensorFlow's node_def_util line is dropped wherever it comes; every
    other byte passes, in order, by the end of the run, whether it exits or a signal ends it."""
    done = run_script(["-c", FILTERED, NODE_DEF, end], tmp_path, env={**os.environ, "PYTHONPATH": ROOT})
    expected = "kept 1\nkept 2\nfrom Python\nno newline"
    if end == "signal":
        assert done.returncode == -signal.SIGTERM and done.stderr == expected + "train.py: interrupted\n"
    else:
        assert done.returncode == 0 and done.stderr == expected


RELEASED_MID_WAIT = """
import os, select, sys, threading
from ch1 import startup
waited, real_select = threading.Event(), select.select


def select_then_pause(*args):
    # The filter's wait ends with the pipe empty, and the thread is paused there (as a busy CPU may
    # pause it) while the command prints its last line and exits, which releases the filter.
    found = real_select(*args)
    if not found[0] and not waited.is_set():
        waited.set()
        while not startup._filter._closing:
            pass
    return found


select.select = select_then_pause
startup._filter = startup._StderrFilter()
waited.wait(10)
print("mlp_mnist.py: error: the last line", file=sys.stderr)
"""


def test_the_last_line_passes_when_the_exit_comes_as_the_filter_waits(tmp_path):
    """ch1.startup._StderrFilter: a line written just before the exit, while the filter's thread has found
    the pipe empty and not yet looked again, still reaches stderr (it was lost once, on a busy CPU)."""
    done = run_script(["-c", RELEASED_MID_WAIT], tmp_path, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0 and done.stderr == "mlp_mnist.py: error: the last line\n"


def test_importing_ch1_has_no_side_effects(tmp_path):
    """`import ch1.outputs` (and the other modules that need no model: ch1.cli, ch1.files, study.records,
    the reports and studies) loads neither Keras nor TensorFlow, and leaves stderr alone."""
    code = ("import sys, ch1, ch1.outputs, study.tables, ch1.cli, study.records, study.report, ch1.device, ch1.startup, "
            "study.results; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    done = run_script(["-c", code], tmp_path, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0 and done.stdout.strip() == "[]" and done.stderr == ""
