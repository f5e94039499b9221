"""Each listing end to end as a reader runs it (smoke mode, real MNIST), determinism, and the book's
defaults and last lines."""

import json
import os
import re

import keras
import pytest

import cnn_mnist
import mlp_mnist
import mnist_sampler
import rnn_mnist
from ch1.outputs import graphviz_available
from ch1.cli import SMOKE_TEST
from study.tables import LISTINGS

LISTING_MODULES = {"mlp": mlp_mnist, "cnn": cnn_mnist, "rnn": rnn_mnist}


@pytest.mark.backend
@pytest.mark.parametrize("key", sorted(LISTINGS))
def test_smoke_run_end_to_end(key, smoke_runs):
    listing = LISTINGS[key]
    run = smoke_runs(listing.module)
    assert "Total params: " in run.stdout  # the summary (its count: test_models.py)
    # The book's last line, then what the run was: a smoke run says so.
    assert re.search(r"\nTest accuracy: \d+\.\d%\n", run.stdout)
    assert f"(a smoke run: 1 short epoch on the first 6,000 training images, tested on the first {SMOKE_TEST:,}" \
        in run.stdout
    # One epoch on 6,000 images is far above chance (10%) for all three models.
    assert run.results["test_accuracy"] > 0.5
    diagram = ".png" if graphviz_available() else ".dot"  # without Graphviz, the diagram's DOT source
    written = [str(run.folder / f"{listing.name}{suffix}") for suffix in (diagram, ".keras", "-history.png", ".json")]
    assert f"Wrote {', '.join(written)}" in run.stdout  # exactly the files written, the JSON last
    for path in written:
        stat = os.stat(path)
        assert stat.st_size > 0 and stat.st_mode & 0o777 == 0o644, path  # the umask's mode, not 0600
    saved = json.loads((run.folder / f"{listing.name}.json").read_text())
    assert saved["listing"] == listing.number and saved["params"] == run.results["params"]
    assert saved["model"] == f"{listing.name}.keras"
    assert saved["epochs"] == 1 and saved["batch_size"] == 128 and saved["seed"] == 0 and saved["smoke"]
    assert saved["backend"] == keras.backend.backend() and saved["versions"]["keras"] == keras.__version__
    assert saved["device"] and saved["cpu"] and isinstance(saved["cpu_flags"], list)
    assert saved["fit_seconds"] > 0 and len(saved["epoch_seconds"]) == 1 and saved["precision"] == "float32"
    assert saved["test_accuracy"] == run.results["test_accuracy"] and 0 < saved["train_accuracy"] <= 1
    assert len(saved["history"]["loss"]) == 1
    # Nothing half-written is left beside the outputs, and nothing outside smoke/.
    assert not [p for p in os.listdir(run.folder) if p.startswith(".")]
    assert os.listdir(run.folder.parent) == ["smoke"]


@pytest.mark.backend
def test_the_seed_and_the_batch_size_reach_training(smoke_runs, mnist_npz, tmp_path):
    """Another seed, other numbers. (The same seed, the same numbers to the last digit: a sweep's trial
    repeats the smoke run, tests/study/test_reproduce.py::test_a_real_sweep_row_is_its_listing.)"""
    first = smoke_runs("mlp_mnist").results  # --smoke, seed 0
    other = mlp_mnist.main(["--smoke", "--data", mnist_npz, "--seed", "8", "--batch-size", "500",
                            "--output-dir", str(tmp_path)])
    assert (other["batch_size"], other["seed"]) == (500, 8)
    assert other["history"] != first["history"]


@pytest.mark.parametrize("key", sorted(LISTINGS))
def test_help_shows_the_books_defaults(key, capsys):
    module = LISTING_MODULES[key]
    epochs = {"mlp": 20, "cnn": 10, "rnn": 20}[key]  # the listings' model.fit(..., epochs=...)
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    captured = capsys.readouterr()
    assert exit_.value.code == 0 and captured.err == ""
    text = " ".join(captured.out.split())
    assert "(default: None)" not in text
    for expected in (f"--epochs EPOCHS training epochs (default: {epochs})", "minibatch size (default: 128)",
                     "(default: outputs)", "--seed", "--data PATH", "--smoke"):
        assert expected in text
    assert "--fast" not in text and "--precision" not in text  # speed options live in the tools


@pytest.mark.parametrize("module", [mlp_mnist, cnn_mnist, rnn_mnist])
def test_each_listing_ends_in_the_books_lines(module):
    """The book's compile, fit, evaluate and print, in its order, in each listing's main()."""
    source = open(module.__file__).read()
    lines = ["model.compile(loss='categorical_crossentropy',", "model.fit(x_train, y_train, epochs=",
             "_, acc = model.evaluate(x_test,", 'print("\\nTest accuracy: %.1f%%" % (100.0 * acc))']
    positions = [source.find(line) for line in lines]
    assert -1 not in positions and positions == sorted(positions), positions


def test_the_sampler_prints_the_books_label_counts(mnist_npz, tmp_path, capsys):
    """Listing 1.3.1 on real MNIST: the counts of each digit as the book prints them, and its figure."""
    path = mnist_sampler.main(["--data", mnist_npz, "--output-dir", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("Train labels:  {0: 5923, 1: 6742, 2: 5958, 3: 6131, 4: 5842, 5: 5421, 6: 5918, "
                        "7: 6265, 8: 5851, 9: 5949}")
    assert lines[1] == "Test labels:  {0: 980, 1: 1135, 2: 1032, 3: 1010, 4: 982, 5: 892, 6: 958, 7: 1028, 8: 974, 9: 1009}"
    assert path == str(tmp_path / "mnist-samples.png") and os.path.getsize(path) > 5000
    again = tmp_path / "again"
    mnist_sampler.main(["--data", mnist_npz, "--output-dir", str(again)])
    assert (again / "mnist-samples.png").read_bytes() == (tmp_path / "mnist-samples.png").read_bytes()
