"""Ctrl-C and SIGTERM: temporary files removed, one line, the signal's exit status, no traceback."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.support import ROOT


MID_SAVE = """
import os, signal, sys
sys.argv[0] = "save.py"
from ch1 import cli, outputs
cli.Parser("").parse_args([])  # every command parses its flags first: that installs the handlers
with outputs.atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "w") as f:
        f.write("half a model")
    os.kill(os.getpid(), getattr(signal, sys.argv[2]))
    raise SystemExit("not reached: the signal ends the save")
"""


@pytest.mark.parametrize("name, status", [("SIGTERM", -signal.SIGTERM), ("SIGINT", -signal.SIGINT)])
def test_a_signal_during_a_save_leaves_nothing_half_written(tmp_path, name, status):
    target = tmp_path / "cnn-mnist.keras"
    done = subprocess.run([sys.executable, "-c", MID_SAVE, str(target), name], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, timeout=60)
    assert done.returncode == status, done.stderr
    assert done.stderr == "save.py: interrupted\n"
    assert os.listdir(tmp_path) == []  # neither the model nor its hidden temporary file


@pytest.fixture(scope="module")
def long_runs(tmp_path_factory, mnist_npz):
    """Two long commands started side by side (each starts TensorFlow, seconds), for the tests below
    to interrupt: ``python rnn_mnist.py --epochs 3`` and a sweep of two trials (each 20 full epochs)
    with two workers. ``{name: (process, folder)}``; what a test leaves running is ended here."""
    runs = {}
    for name, script, flags in (
            ("training", "rnn_mnist.py", ["--epochs", "3"]),
            ("sweep", "reproduce.py", ["--table", "1.3.2", "--row", "1", "--row", "2", "--seeds", "1", "--workers", "2"])):
        folder = tmp_path_factory.mktemp(name)
        if name == "sweep":
            flags += ["--results-dir", str(folder), "--report", str(folder / "R.md")]
        runs[name] = (subprocess.Popen([sys.executable, os.path.join(ROOT, script), "--data", mnist_npz, *flags],
                                       cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), folder)
    yield runs
    for run, _ in runs.values():
        if run.poll() is None:
            run.kill()
        run.communicate()


@pytest.mark.backend
def test_sigterm_during_training_ends_in_one_line(long_runs):
    """As `kill`, `timeout` or SLURM end a run: one line, exit status 143 in a shell, no outputs half-made."""
    run, folder = long_runs["training"]
    deadline = time.monotonic() + 120
    seen = ""
    while "Epoch 1/3" not in seen and time.monotonic() < deadline:
        seen += run.stdout.readline()
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=120)
    assert run.returncode == -signal.SIGTERM, err
    assert err.strip().splitlines() == ["rnn_mnist.py: interrupted"]
    assert not [p for p in os.listdir(folder / "outputs") if p.startswith(".") or p.endswith((".json", ".keras"))]


def test_sigterm_during_a_sweep_with_workers_releases_its_claims(long_runs):
    """An interrupted sweep: one line, its workers ended, its claims given back (the trials run again)."""
    run, folder = long_runs["sweep"]
    assert "2 trials to run" in run.stdout.readline()
    claims = folder / "claims"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (claims.is_dir() and os.listdir(claims)):
        time.sleep(0.1)  # until the workers hold their claims
    assert os.listdir(claims)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=60)
    assert run.returncode == -signal.SIGTERM
    assert err == "reproduce.py: interrupted\n"
    assert os.listdir(folder / "claims") == []
