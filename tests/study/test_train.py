"""study/train.py: the tools' training of one configuration; the benchmark of its bfloat16 option."""

import json

import keras
import numpy as np
import pytest

import mlp_mnist
from study import train


def small(mnist_arrays, n_train=1000, n_test=500):
    a = mnist_arrays
    return (a["x_train"][:n_train], a["y_train"][:n_train]), (a["x_test"][:n_test], a["y_test"][:n_test])


def test_evaluating_every_epoch_leaves_training_bit_identical(mnist_arrays):
    """validation_data (test accuracy after every epoch) changes nothing in the training curve."""
    runs = [train.train_and_evaluate(mlp_mnist.build_model, {"dropout": 0.45}, "sgd", small(mnist_arrays), 2, 128,
                                     seed=3, validation=validation) for validation in (False, True)]
    plain, validated = (r["history"] for r in runs)
    assert validated["loss"] == plain["loss"] and validated["accuracy"] == plain["accuracy"]
    assert len(validated["val_accuracy"]) == 2 and "val_accuracy" not in plain
    assert validated["val_accuracy"][-1] == pytest.approx(runs[1]["test_accuracy"], abs=1e-6)
    assert runs[0]["test_accuracy"] == runs[1]["test_accuracy"]


def test_a_learning_rate_replaces_only_the_default():
    assert train.make_optimizer("sgd") == "sgd"
    optimizer = train.make_optimizer("sgd", 0.1)
    assert isinstance(optimizer, keras.optimizers.SGD) and float(np.asarray(optimizer.learning_rate)) == pytest.approx(0.1)
    assert float(optimizer.momentum) == 0.0


def test_benchmark_compares_paths(mnist_npz, tmp_path):
    from benchmarks import bench_train

    report = bench_train.main(["--model", "mlp", "--paths", "plain", "bfloat16", "--epochs", "2", "--smoke", "--batch-size", "1000",
                               "--data", mnist_npz, "--json", str(tmp_path / "bench.json")])
    assert json.loads((tmp_path / "bench.json").read_text()) == json.loads(json.dumps(report))
    plain, bf16 = report["results"]
    assert (plain["path"], bf16["path"]) == ("plain", "bfloat16") and plain["speedup_vs_plain"] == 1.0
    assert (plain["precision"], bf16["precision"]) == ("float32", "mixed_bfloat16")  # two different paths ran
    assert keras.mixed_precision.global_policy().name == "float32"  # bfloat16 is restored to float32 after
    assert plain["steady_s_per_epoch"] > 0 and len(plain["epoch_seconds"][0]) == 2
    assert report["cpu"] and isinstance(report["cpu_flags"], list) and report["device"]


def test_benchmark_json_path_is_checked_before_the_work(tmp_path, capsys):
    from benchmarks import bench_train

    with pytest.raises(SystemExit) as exit_:
        bench_train.main(["--json", str(tmp_path), "--data", str(tmp_path / "none.npz")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--json {tmp_path}: a folder, not a file" in err[0]
