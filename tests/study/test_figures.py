"""figures.py from the smoke-trained CNN, and its one-line errors."""

import json
import os
import shutil

import numpy as np
import pytest

import figures
from ch1 import outputs

FIGURES = ["mnist-samples.png", "cnn-kernel.png", "cnn-maxpool.png", "cnn-mnist-history.png", "cnn-confusion.png",
           "cnn-misclassified.png"]
DIAGRAMS = ["mlp-mnist", "cnn-mnist", "rnn-mnist"]  # .png, or their DOT source (.dot) without Graphviz


@pytest.fixture(scope="module")
def trained(smoke_runs):
    """The folder of the session's smoke-trained CNN (cnn-mnist.keras and cnn-mnist.json)."""
    return smoke_runs("cnn_mnist").folder


def test_smoke_figures_read_the_smoke_runs_and_go_under_smoke(trained, tmp_path, monkeypatch, mnist_npz, capsys):
    """``python figures.py --smoke`` reads outputs/smoke, writes under <output-dir>/smoke/ (a full run's figures
    beside it stay), and says the CNN is one smoke epoch's."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(trained, tmp_path / "outputs" / "smoke")
    (tmp_path / "outputs" / "mnist-samples.png").write_text("a full run's figure")
    written = figures.main(["--smoke", "--data", mnist_npz])
    diagrams = [name + (".png" if outputs.graphviz_available() else ".dot") for name in DIAGRAMS]
    assert sorted(written) == sorted(os.path.join("outputs", "smoke", name) for name in FIGURES + diagrams)
    assert all((tmp_path / path).stat().st_size > 1000 for path in written)
    assert (tmp_path / "outputs" / "mnist-samples.png").read_text() == "a full run's figure"
    assert "cnn-mnist (Listing 1.4.1), smoke run: 1 short epoch" in capsys.readouterr().out


def test_a_run_that_is_not_the_books_says_so_in_its_titles(trained):
    run = json.loads((trained / "cnn-mnist.json").read_text())
    assert figures.run_title(run) == "cnn-mnist (Listing 1.4.1), smoke run: 1 short epoch"
    assert figures.run_title({**run, "smoke": False, "epochs": 2}) == "cnn-mnist (Listing 1.4.1), 2 of the book's 10 epochs"
    assert figures.run_title({**run, "smoke": False, "epochs": 10}) == "cnn-mnist (Listing 1.4.1)"
    fig = figures.kernel_figure(figures.keras.saving.load_model(trained / "cnn-mnist.keras"),
                                np.zeros((28, 28), "uint8"), 7, "the CNN after one --smoke epoch")
    assert fig._suptitle.get_text().startswith("First Conv2D layer of the CNN after one --smoke epoch: 64 kernels")
    figures.plt.close(fig)


def test_confusion_matrix_counts():
    _, matrix = figures.confusion_figure(np.array([0, 1, 2, 2, 9]), np.array([0, 1, 2, 7, 9]))
    assert matrix.sum() == 5 and np.trace(matrix) == 4 and matrix[2, 7] == 1
    figures.plt.close("all")


def test_no_trained_model_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        figures.main(["--models-dir", str(tmp_path), "--output-dir", str(tmp_path / "f")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1
    assert "cnn-mnist.keras: no trained CNN here; run `python cnn_mnist.py` first, or train one there" in err[0]


def test_a_results_json_cut_short_is_one_line_naming_it(trained, tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(trained / "cnn-mnist.keras", models)
    (models / "mlp-mnist.json").write_text('{"name": "mlp-mnist", "history": {"loss": [0.')
    with pytest.raises(SystemExit) as exit_:
        figures.main(["--models-dir", str(models), "--output-dir", str(tmp_path / "f")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and f"{models}/mlp-mnist.json: " in err[0], err


def test_a_model_that_is_not_the_cnn_is_one_line(tmp_path, capsys):
    import mlp_mnist

    (tmp_path / "m").mkdir()
    mlp_mnist.build_model().save(tmp_path / "m" / "cnn-mnist.keras")
    with pytest.raises(SystemExit) as exit_:
        figures.main(["--models-dir", str(tmp_path / "m"), "--output-dir", str(tmp_path / "f")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "cnn-mnist.keras: not Listing 1.4.1's CNN" in err[0]
