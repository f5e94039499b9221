"""figures.py from a smoke-trained CNN, and its one-line errors."""

import os

import numpy as np
import pytest

import cnn_mnist
import figures

FIGURES = ["mnist-samples.png", "cnn-kernel.png", "cnn-maxpool.png", "training-curves.png",
           "cnn-confusion.png", "cnn-misclassified.png"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_npz):
    folder = tmp_path_factory.mktemp("trained")
    cnn_mnist.main(["--smoke", "--data", mnist_npz, "--output-dir", str(folder)])
    return folder


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
    assert len(err) == 1 and "cnn-mnist.keras: no trained CNN here; run `python cnn_mnist.py` first" in err[0]


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
