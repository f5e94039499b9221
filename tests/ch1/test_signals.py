"""Ctrl-C and SIGTERM: temporary files removed, one line, the signal's exit status, no traceback."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests import background
from tests.support import ROOT, ended


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


def interrupted_training(folder, npz):
    """``python rnn_mnist.py --epochs 3`` ended by SIGTERM once its first epoch has begun (it starts
    TensorFlow: seconds; a case, tests/background.py): ``(returncode, stderr, the files in outputs/)``."""
    with ended(subprocess.Popen([sys.executable, os.path.join(ROOT, "rnn_mnist.py"), "--data", npz, "--epochs", "3"],
                                cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) as run:
        deadline = time.monotonic() + 120
        seen = ""
        while "Epoch 1/3" not in seen and time.monotonic() < deadline and run.poll() is None:
            seen += run.stdout.readline()
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=120)
    return run.returncode, err, os.listdir(folder / "outputs")


@background.fresh(interrupted_training)
@pytest.mark.backend
def test_sigterm_during_training_ends_in_one_line():
    """As `kill`, `timeout` or SLURM end a run: one line, exit status 143 in a shell, no outputs half-made."""
    returncode, err, outputs = background.result(interrupted_training)
    assert returncode == -signal.SIGTERM, err
    assert err.strip().splitlines() == ["rnn_mnist.py: interrupted"]
    assert not [p for p in outputs if p.startswith(".") or p.endswith((".json", ".keras"))]


def interrupted_sweep(folder, npz):
    """A sweep of two trials (each 20 full epochs) with two workers, ended by SIGTERM once the workers
    hold their claims (a case): ``(its first line, whether claims were held, returncode, stderr, the
    claims left)``."""
    flags = ["--table", "1.3.2", "--row", "1", "--row", "2", "--seeds", "1", "--workers", "2",
             "--results-dir", str(folder), "--report", str(folder / "R.md")]
    with ended(subprocess.Popen([sys.executable, os.path.join(ROOT, "reproduce.py"), "--data", npz, *flags],
                                cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) as run:
        first = run.stdout.readline()
        claims = folder / "claims"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (claims.is_dir() and os.listdir(claims)) and run.poll() is None:
            time.sleep(0.1)  # until the workers hold their claims
        held = bool(claims.is_dir() and os.listdir(claims))
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    return first, held, run.returncode, err, os.listdir(claims)


@background.fresh(interrupted_sweep)
def test_sigterm_during_a_sweep_with_workers_releases_its_claims():
    """An interrupted sweep: one line, its workers ended, its claims given back (the trials run again)."""
    first, held, returncode, err, left = background.result(interrupted_sweep)
    assert "2 trials to run" in first and held
    assert returncode == -signal.SIGTERM
    assert err == "reproduce.py: interrupted\n"
    assert left == []
