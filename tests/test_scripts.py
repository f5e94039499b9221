"""Each listing end to end in smoke mode on real MNIST, its outputs, determinism and bad input."""

import json
import os

import keras
import numpy as np
import pytest

import cnn_mnist
import mlp_mnist
import rnn_mnist
from ch1 import outputs

LISTINGS = [(mlp_mnist, "mlp-mnist", "1.3.2", 269_322), (cnn_mnist, "cnn-mnist", "1.4.1", 80_266),
            (rnn_mnist, "rnn-mnist", "1.5.1", 75_530)]


@pytest.mark.parametrize("listing, name, number, params", LISTINGS)
def test_smoke_run_end_to_end(listing, name, number, params, mnist_npz, run_dir, capsys):
    results = listing.main(["--smoke", "--data", mnist_npz])
    out = capsys.readouterr().out
    assert f"Total params: {params:,}" in out
    assert "Test accuracy: " in out
    # One epoch on 6,000 images is far above chance (10%) for all three models.
    assert results["test_accuracy"] > 0.5
    for suffix in (".png", "-history.png", ".json", ".keras"):
        path = run_dir / "outputs" / (name + suffix)
        assert path.stat().st_size > 0, path
    saved = json.loads((run_dir / "outputs" / f"{name}.json").read_text())
    assert saved["listing"] == number and saved["params"] == params
    assert saved["epochs"] == 1 and saved["batch_size"] == 128 and saved["seed"] == 0 and saved["smoke"]
    assert saved["backend"] == keras.backend.backend() and saved["versions"]["keras"] == keras.__version__
    assert saved["device"] and saved["fit_seconds"] > 0 and len(saved["epoch_seconds"]) == 1
    assert saved["test_accuracy"] == results["test_accuracy"] and 0 < saved["train_accuracy"] <= 1
    # Nothing half-written is left beside the outputs.
    assert not [p for p in os.listdir(run_dir / "outputs") if p.startswith(".")]


def test_same_seed_same_numbers(mnist_npz, tmp_path):
    args = ["--smoke", "--data", mnist_npz, "--seed", "7"]
    first = cnn_mnist.main(args + ["--output-dir", str(tmp_path / "a")])
    second = cnn_mnist.main(args + ["--output-dir", str(tmp_path / "b")])
    assert first["test_accuracy"] == second["test_accuracy"]
    assert first["history"] == second["history"]


def test_another_seed_other_numbers(mnist_npz, tmp_path):
    args = ["--smoke", "--data", mnist_npz, "--output-dir", str(tmp_path)]
    assert mlp_mnist.main(args + ["--seed", "1"])["history"] != mlp_mnist.main(args + ["--seed", "2"])["history"]


def test_flags_reach_training(mnist_npz, tmp_path):
    results = mlp_mnist.main(["--smoke", "--data", mnist_npz, "--output-dir", str(tmp_path / "o"),
                              "--batch-size", "500", "--seed", "3"])
    assert (results["batch_size"], results["seed"]) == (500, 3)
    assert os.path.exists(tmp_path / "o" / "mlp-mnist.json")


def test_help_shows_the_books_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        cnn_mnist.main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for expected in ("--epochs EPOCHS training epochs (default: 10)", "(default: 128)", "(default: outputs)",
                     "--seed", "--data PATH", "--smoke"):
        assert expected in text


def test_graphviz_missing_writes_dot_and_goes_on(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(outputs, "graphviz_available", lambda: False)
    written = outputs.plot_model(cnn_mnist.build_model(), str(tmp_path / "cnn-mnist.png"))
    assert written.endswith("cnn-mnist.dot") and not (tmp_path / "cnn-mnist.png").exists()
    assert "digraph" in (tmp_path / "cnn-mnist.dot").read_text()
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "Graphviz" in lines[0] and "apt-get install graphviz" in lines[0]


def test_graphviz_missing_in_a_whole_run(monkeypatch, mnist_npz, run_dir):
    monkeypatch.setenv("PATH", "/nonexistent")  # no `dot` anywhere
    mlp_mnist.main(["--smoke", "--data", mnist_npz])
    assert (run_dir / "outputs" / "mlp-mnist.dot").exists()
    assert (run_dir / "outputs" / "mlp-mnist.json").exists()


# --- bad input: one line naming the flag or file, exit code 2, no traceback, before training ----


@pytest.fixture()
def no_training(monkeypatch):
    def fit(*args, **kwargs):
        raise AssertionError("training started despite bad input")

    monkeypatch.setattr(keras.Model, "fit", fit)


def bad_files(tmp_path, mnist_npz):
    text = tmp_path / "digits.txt"
    text.write_text("not mnist\n")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(open(mnist_npz, "rb").read()[:50_000])
    labels = tmp_path / "labels.npz"
    with np.load(mnist_npz) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["y_test"] = arrays["y_test"].copy()
    arrays["y_test"][0] = 12
    np.savez(labels, **arrays)
    shape = tmp_path / "shape.npz"
    np.savez(shape, **{**arrays, "y_test": np.zeros(10000, np.uint8), "x_train": arrays["x_train"].reshape(60000, 784)})
    return {
        "missing": (["--data", str(tmp_path / "missing.npz")], "missing.npz: no such file"),
        "neither": (["--data", str(text)], "digits.txt: neither an npz file nor"),
        "truncated": (["--data", str(cut)], "cut.npz: corrupt or truncated npz"),
        "labels": (["--data", str(labels)], "labels.npz: y_test has labels 0..12, expected 0..9"),
        "shape": (["--data", str(shape)], "shape.npz: x_train has shape (60000, 784)"),
        "epochs": (["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
        "batch": (["--batch-size", "-5"], "argument --batch-size: must be at least 1, got -5"),
        "batch-word": (["--batch-size", "big"], "argument --batch-size: expected a whole number"),
        "output-dir": (["--output-dir", str(text)], f"--output-dir {text}: cannot write there"),
        "output-subdir": (["--output-dir", str(text / "sub")], "--output-dir"),
    }


CASES = ["missing", "neither", "truncated", "labels", "shape", "epochs", "batch", "batch-word", "output-dir",
         "output-subdir"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_line_exit_2(case, tmp_path, mnist_npz, monkeypatch, capsys, no_training):
    monkeypatch.chdir(tmp_path)
    argv, expected = bad_files(tmp_path, mnist_npz)[case]
    with pytest.raises(SystemExit) as exit_:
        cnn_mnist.main(argv)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "error: " in lines[0] and expected in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not os.path.exists(tmp_path / "outputs" / "cnn-mnist.json")


def test_bad_data_from_the_environment(tmp_path, monkeypatch, capsys, no_training):
    monkeypatch.setenv("MNIST_DATA", str(tmp_path / "nope"))
    with pytest.raises(SystemExit) as exit_:
        rnn_mnist.main(["--output-dir", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert "MNIST_DATA: " in capsys.readouterr().err


def test_command_line_bad_input_is_one_quiet_line(tmp_path):
    """As a reader runs it: the only thing on stderr is the error (no TensorFlow start-up chatter)."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, os.path.join(root, "mlp_mnist.py"), "--data", str(tmp_path / "none")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"mlp_mnist.py: error: --data: {tmp_path / 'none'}: no such file or directory"]
    assert done.stdout == ""
