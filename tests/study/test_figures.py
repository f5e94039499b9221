"""figures.py from a smoke-trained CNN, and its one-line errors."""

import os

import numpy as np
import pytest

import figures

FIGURES = ["mnist-samples.png", "mlp-mnist.png", "cnn-mnist.png", "rnn-mnist.png", "cnn-kernel.png",
           "cnn-maxpool.png", "training-curves.png", "cnn-confusion.png", "cnn-misclassified.png"]


@pytest.fixture(scope="module")
def trained(smoke_runs):
    """The folder of the session's smoke-trained CNN (cnn-mnist.keras and cnn-mnist.json)."""
    return smoke_runs("cnn_mnist").folder


def test_all_figures_from_a_smoke_trained_cnn(trained, tmp_path, mnist_npz):
    written = figures.main(["--models-dir", str(trained), "--output-dir", str(tmp_path), "--data", mnist_npz,
                            "--smoke"])
    assert sorted(os.path.basename(p) for p in written) == sorted(FIGURES)
    for name in FIGURES:
        assert (tmp_path / name).stat().st_size > 5000, name


def test_confusion_matrix_counts():
    y_true = np.array([0, 1, 2, 2, 9])
    y_pred = np.array([0, 1, 2, 7, 9])
    _, matrix = figures.confusion_figure(y_true, y_pred)
    assert matrix.sum() == 5 and np.trace(matrix) == 4 and matrix[2, 7] == 1


def test_feature_maps_shrink_28_to_26(trained):
    import keras

    model = keras.saving.load_model(str(trained / "cnn-mnist.keras"))
    maps = figures.feature_maps(model, np.zeros((2, 28, 28, 1), "float32"))
    assert maps.shape == (2, 26, 26, 64)


def test_no_trained_model_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        figures.main(["--models-dir", str(tmp_path), "--output-dir", str(tmp_path / "f")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cnn-mnist.keras: no trained CNN here; run `python cnn_mnist.py` first, or train one there" in err[0]


def test_a_broken_results_json_is_one_line(trained, tmp_path, capsys):
    """A <name>.json cut short (a kill mid-copy) stops figures.py with one line naming it."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "cnn-mnist.keras").write_bytes((trained / "cnn-mnist.keras").read_bytes())
    (models / "mlp-mnist.json").write_text('{"name": "mlp-mnist", "history": {"loss": [0.')
    with pytest.raises(SystemExit) as exit_:
        figures.main(["--models-dir", str(models), "--output-dir", str(tmp_path / "f")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mlp-mnist.json: not a results JSON of the scripts" in err[0]


def test_training_curves_tick_whole_epochs(trained):
    import json

    run = json.loads((trained / "cnn-mnist.json").read_text())
    fig = figures.curves_figure([run])
    for ax in fig.axes:
        assert all(float(t).is_integer() for t in ax.get_xticks()), ax.get_xticks()
    figures.plt.close(fig)


def test_a_smoke_run_is_marked_as_one(trained):
    """figures.py never draws a smoke run as if it were a full one: its panel's title says what it is."""
    import json

    run = json.loads((trained / "cnn-mnist.json").read_text())
    assert run["smoke"] and figures.run_title(run) == "cnn-mnist (Listing 1.4.1), smoke run: 1 short epoch"
    short = {**run, "smoke": False, "epochs": 2}
    assert figures.run_title(short) == "cnn-mnist (Listing 1.4.1), 2 of the book's 10 epochs"
    assert figures.run_title({**run, "smoke": False, "epochs": 10}) == "cnn-mnist (Listing 1.4.1)"
    fig = figures.curves_figure([run])
    assert "smoke run" in fig.axes[0].get_title()
    figures.plt.close(fig)


@pytest.mark.parametrize("change, fault", [
    (lambda run: run["history"].update(accuracy=run["history"]["accuracy"] * 2), "of one length"),
    (lambda run: run.pop("name"), "'name'"),
    (lambda run: run.update(test_accuracy="high"), "of the wrong type"),
])
def test_results_json_of_the_wrong_shape_is_one_line(change, fault, trained, tmp_path, capsys):
    import json

    models = tmp_path / "models"
    models.mkdir()
    (models / "cnn-mnist.keras").write_bytes((trained / "cnn-mnist.keras").read_bytes())
    run = json.loads((trained / "cnn-mnist.json").read_text())
    change(run)
    (models / "cnn-mnist.json").write_text(json.dumps(run))
    with pytest.raises(SystemExit) as exit_:
        figures.main(["--models-dir", str(models), "--output-dir", str(tmp_path / "f")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1
    assert "cnn-mnist.json: not a results JSON of the scripts" in err[0] and fault in err[0]


@pytest.mark.parametrize("kind", ["mlp", "colour"])
def test_a_model_that_is_not_the_cnn_is_one_line(kind, tmp_path, capsys):
    """An MLP (an MNIST classifier, but no Conv2D) or a 32x32x3 CNN given as cnn-mnist.keras."""
    import keras

    import mlp_mnist

    if kind == "mlp":
        model = mlp_mnist.build_model()
    else:
        model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                                  keras.layers.Dense(10)])
    (tmp_path / "m").mkdir()
    model.save(tmp_path / "m" / "cnn-mnist.keras")
    with pytest.raises(SystemExit) as exit_:
        figures.main(["--models-dir", str(tmp_path / "m"), "--output-dir", str(tmp_path / "f")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "cnn-mnist.keras: " in err[0]
    assert ("not Listing 1.4.1's CNN" if kind == "mlp" else "expected an MNIST classifier") in err[0]
