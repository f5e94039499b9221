"""The fast path (ch1/train.py): the same math as model.fit, on the JAX backend.

A Keras process has one backend, so these tests run small programs with KERAS_BACKEND=jax.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                               reason="the fast path needs JAX (pip install jax)")


def run_jax(code, tmp_path):
    script = tmp_path / "check.py"
    script.write_text(code)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


SAME_MATH = """
import json
import ch1, keras, numpy as np
import mlp_mnist
from ch1.data import load_mnist, prepare_images

(x, y), _ = load_mnist(full=False)
x, y = prepare_images(x[:1000], (784,)), keras.utils.to_categorical(y[:1000], 10)
results = {}
for optimizer in ("sgd", "adam"):
    weights = None
    for fast in (False, True):
        keras.utils.set_random_seed(0)
        # No dropout and no shuffling: both paths then take exactly the same steps.
        model = mlp_mnist.build_model(dropout=0.0, l2_weight=1e-3)
        model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
        history = ch1.fit(model, x, y, epochs=2, batch_size=128, fast=fast, shuffle=False, verbose=0)
        got = [w.copy() for w in model.get_weights()]
        if weights is None:
            weights, plain = got, history.history
        else:
            results[optimizer] = {
                "max_weight_diff": max(float(np.abs(a - b).max()) for a, b in zip(weights, got)),
                "loss": [plain["loss"], history.history["loss"]],
                "accuracy": [plain["accuracy"], history.history["accuracy"]],
            }
print(json.dumps(results))
"""


@needs_jax
def test_fast_path_takes_the_same_steps_as_model_fit(tmp_path):
    results = run_jax(SAME_MATH, tmp_path)
    for optimizer, r in results.items():
        assert r["max_weight_diff"] < 1e-4, optimizer
        plain, fast = r["loss"]
        assert all(abs(a - b) < 1e-4 for a, b in zip(plain, fast)), (optimizer, r["loss"])
        plain, fast = r["accuracy"]
        assert all(abs(a - b) < 2e-3 for a, b in zip(plain, fast)), (optimizer, r["accuracy"])


SMOKE = """
import json
import cnn_mnist, rnn_mnist
out = {}
for listing in (cnn_mnist, rnn_mnist):
    r = listing.main(["--smoke", "--fast", "--output-dir", {out!r}])
    out[r["name"]] = [r["test_accuracy"], r["fast"], r["backend"]]
print(json.dumps(out))
"""


@needs_jax
def test_fast_smoke_runs_learn_and_save(tmp_path, mnist_npz, monkeypatch):
    monkeypatch.setenv("MNIST_DATA", mnist_npz)
    results = run_jax(SMOKE.replace("{out!r}", repr(str(tmp_path / "out"))), tmp_path)
    for name, (accuracy, fast, backend) in results.items():
        assert accuracy > 0.5 and fast and backend == "jax", name
        assert (tmp_path / "out" / f"{name}.keras").exists()


def test_fast_elsewhere_falls_back_to_model_fit(mnist_npz, tmp_path, capsys):
    import keras

    import mlp_mnist

    if keras.backend.backend() == "jax":
        pytest.skip("this process runs JAX: the fast path applies")
    results = mlp_mnist.main(["--smoke", "--fast", "--data", mnist_npz, "--output-dir", str(tmp_path)])
    assert f"no fast path on the {keras.backend.backend()} backend; training with model.fit" in capsys.readouterr().out
    assert results["test_accuracy"] > 0.5


def test_bfloat16_precision_flag(mnist_npz, tmp_path):
    import keras

    import mlp_mnist

    results = mlp_mnist.main(["--smoke", "--precision", "bfloat16", "--data", mnist_npz, "--output-dir", str(tmp_path)])
    assert results["precision"] == "bfloat16" and results["test_accuracy"] > 0.5
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    default = mlp_mnist.main(["--smoke", "--data", mnist_npz, "--output-dir", str(tmp_path)])
    assert default["precision"] == "float32" and keras.mixed_precision.global_policy().name == "float32"


def test_benchmark_compares_paths(mnist_npz, tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import bench_train

    report = bench_train.main(["--model", "mlp", "--paths", "plain", "default", "--epochs", "2", "--smoke",
                               "--data", mnist_npz, "--json", str(tmp_path / "bench.json")])
    assert json.loads((tmp_path / "bench.json").read_text()) == json.loads(json.dumps(report))
    plain, default = report["results"]
    assert (plain["path"], default["path"]) == ("plain", "default") and plain["speedup_vs_plain"] == 1.0
    assert plain["steady_s_per_epoch"] > 0 and len(plain["epoch_seconds"][0]) == 2
    # Same seed, same math: the default path is model.fit.
    assert plain["test_accuracy"] == default["test_accuracy"]
