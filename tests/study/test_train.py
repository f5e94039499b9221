"""study/train.py: the tools' training of one configuration, and its speed options.

The compiled JAX loop is checked against model.fit in a small program with KERAS_BACKEND=jax
(a Keras process has one backend).
"""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import mlp_mnist
from study import train

from tests.support import ROOT


needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                               reason="the compiled loop needs JAX (pip install jax)")


def run_jax(code, tmp_path):
    script = tmp_path / "check.py"
    script.write_text(code)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


SAME_MATH = """
import json
from ch1 import quiet_startup
quiet_startup()
import keras, numpy as np
import mlp_mnist
from study import train
from ch1.data import load_mnist, prepare_images

(x, y), _ = load_mnist(full=False)
x, y = prepare_images(x[:1000], (784,)), keras.utils.to_categorical(y[:1000], 10)
results = {}
for optimizer in ("sgd", "adam"):
    weights = None
    for compiled in (False, True):
        keras.utils.set_random_seed(0)
        # No dropout and no shuffling: both paths then take exactly the same steps.
        model = mlp_mnist.build_model(dropout=0.0, l2_weight=1e-3)
        model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
        if compiled:
            history = train.fit_compiled(model, x, y, epochs=2, batch_size=128, shuffle=False)
        else:
            history = model.fit(x, y, epochs=2, batch_size=128, shuffle=False, verbose=0).history
        got = [w.copy() for w in model.get_weights()]
        if weights is None:
            weights, plain = got, history
        else:
            results[optimizer] = {
                "max_weight_diff": max(float(np.abs(a - b).max()) for a, b in zip(weights, got)),
                "loss": [plain["loss"], history["loss"]],
                "accuracy": [plain["accuracy"], history["accuracy"]],
            }
print(json.dumps(results))
"""


@pytest.mark.backend  # CI's backend phases are where JAX is installed
@needs_jax
def test_compiled_loop_takes_the_same_steps_as_model_fit(tmp_path, mnist_npz, monkeypatch):
    monkeypatch.setenv("MNIST_DATA", mnist_npz)
    results = run_jax(SAME_MATH, tmp_path)
    for optimizer, r in results.items():
        assert r["max_weight_diff"] < 1e-4, optimizer
        plain, fast = r["loss"]
        assert all(abs(a - b) < 1e-4 for a, b in zip(plain, fast)), (optimizer, r["loss"])
        plain, fast = r["accuracy"]
        assert all(abs(a - b) < 2e-3 for a, b in zip(plain, fast)), (optimizer, r["accuracy"])


def small(mnist_arrays, n_train=3000, n_test=1000):
    a = mnist_arrays
    return (a["x_train"][:n_train], a["y_train"][:n_train]), (a["x_test"][:n_test], a["y_test"][:n_test])


@pytest.mark.backend
def test_fast_without_an_accelerator_says_so_and_uses_model_fit(mnist_arrays, capsys):
    if train.accelerator() is not None:
        pytest.skip("an accelerator is here: the compiled loop applies")
    plain = train.train_and_evaluate(mlp_mnist.build_model, {}, "adam", small(mnist_arrays), 1, 128, seed=0)
    capsys.readouterr()
    fast = train.train_and_evaluate(mlp_mnist.build_model, {}, "adam", small(mnist_arrays), 1, 128, seed=0,
                                    fast=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "slower than model.fit on a CPU; training with model.fit" in lines[0]
    assert fast["test_accuracy"] == plain["test_accuracy"]


def test_evaluating_every_epoch_leaves_training_bit_identical(mnist_arrays):
    """validation_data (test accuracy after every epoch) changes nothing in the training curve."""
    runs = [train.train_and_evaluate(mlp_mnist.build_model, {"dropout": 0.45}, "sgd", small(mnist_arrays), 2, 128,
                                     seed=3, validation=validation) for validation in (False, True)]
    plain, validated = (r["history"] for r in runs)
    assert validated["loss"] == plain["loss"] and validated["accuracy"] == plain["accuracy"]
    assert len(validated["val_accuracy"]) == 2 and "val_accuracy" not in plain
    assert validated["val_accuracy"][-1] == pytest.approx(runs[1]["test_accuracy"], abs=1e-6)
    assert runs[0]["test_accuracy"] == runs[1]["test_accuracy"]


def test_bfloat16_trains_in_bfloat16_and_restores_float32(mnist_arrays):
    result = train.train_and_evaluate(mlp_mnist.build_model, {}, "adam", small(mnist_arrays), 1, 128, seed=0,
                                      precision="bfloat16")
    assert result["model"].dtype_policy.name == "mixed_bfloat16" and result["test_accuracy"] > 0.5
    assert keras.mixed_precision.global_policy().name == "float32"


def test_a_learning_rate_replaces_only_the_default():
    assert train.make_optimizer("sgd") == "sgd"
    optimizer = train.make_optimizer("sgd", 0.1)
    assert isinstance(optimizer, keras.optimizers.SGD) and float(np.asarray(optimizer.learning_rate)) == pytest.approx(0.1)
    assert float(optimizer.momentum) == 0.0


def test_benchmark_compares_paths(mnist_npz, tmp_path):
    from benchmarks import bench_train

    report = bench_train.main(["--model", "mlp", "--paths", "plain", "bfloat16", "--epochs", "2", "--smoke",
                               "--data", mnist_npz, "--json", str(tmp_path / "bench.json")])
    assert json.loads((tmp_path / "bench.json").read_text()) == json.loads(json.dumps(report))
    plain, bf16 = report["results"]
    assert (plain["path"], bf16["path"]) == ("plain", "bfloat16") and plain["speedup_vs_plain"] == 1.0
    assert (plain["precision"], bf16["precision"]) == ("float32", "mixed_bfloat16")  # two different paths ran
    assert plain["steady_s_per_epoch"] > 0 and len(plain["epoch_seconds"][0]) == 2
    assert report["cpu"] and isinstance(report["cpu_flags"], list) and report["device"]


def test_benchmark_json_path_is_checked_before_the_work(tmp_path, capsys):
    from benchmarks import bench_train

    with pytest.raises(SystemExit) as exit_:
        bench_train.main(["--json", str(tmp_path), "--data", str(tmp_path / "none.npz")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--json {tmp_path}: a folder, not a file" in err[0]
