"""Signals and streams: Ctrl-C and SIGTERM end a command in one line with no temporary file left, and a
closed stdout or a reader that goes away (``| head``) ends nothing. Tried on tiny scripts that stand on
ch1.cli and ch1.startup without TensorFlow; one listing, as a reader runs it, is the slow test."""

import json
import os
import signal
import subprocess
import sys

import pytest

from ch1.outputs import graphviz_available
from tests.support import ROOT

MID_SAVE = """
import os, signal, sys
sys.argv[0] = "save.py"
from ch1 import cli, files
cli.Parser("").parse_args([])  # every command parses its flags first: that installs the handlers
with files.atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "w") as f:
        f.write("half a model")
    os.kill(os.getpid(), getattr(signal, sys.argv[2]))
    raise SystemExit("not reached: the signal ends the save")
"""


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_during_a_save_is_one_line_and_leaves_nothing_half_written(name, tmp_path):
    """Exit status 130 (Ctrl-C) or 143 (SIGTERM) in a shell: the process dies of the signal."""
    done = subprocess.run([sys.executable, "-c", MID_SAVE, str(tmp_path / "cnn-mnist.keras"), name],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == -getattr(signal, name) and done.stderr == "save.py: interrupted\n"
    assert os.listdir(tmp_path) == []  # neither the model nor its temporary file


CLOSED = """
import os, sys
sys.argv[0] = "tool.py"
from ch1 import cli
from ch1.startup import standard_streams
standard_streams()
print("printed")  # to /dev/null where stdout was closed
with open(sys.argv[1], "w") as f:  # a file the command opens takes none of the numbers 0, 1, 2
    f.write(" ".join(os.readlink(f"/proc/self/fd/{fd}") for fd in (0, 1, 2)))
cli.fail("--data x: no such file or folder")
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd (Linux)")
@pytest.mark.parametrize("closed", [(1,), (0, 1, 2)], ids=["stdout", "all"])
def test_a_closed_stdout_ends_nothing(closed, tmp_path):
    """``command >&-``: descriptors that were closed get /dev/null; an error is still one line."""
    def close():
        for fd in closed:
            os.close(fd)

    done = subprocess.run([sys.executable, "-c", CLOSED, str(tmp_path / "fds")], capture_output=True, text=True,
                          stdin=subprocess.PIPE, preexec_fn=close, timeout=60)
    assert done.returncode == 2
    assert done.stderr == ("" if 2 in closed else "tool.py: error: --data x: no such file or folder\n")
    targets = (tmp_path / "fds").read_text().split()
    assert [t == os.devnull for t in targets] == [fd in closed for fd in (0, 1, 2)], targets


PRINTS = """
import sys
from ch1.startup import standard_streams
standard_streams()
for i in range(100_000):
    print("line", i)
open(sys.argv[1], "w").write("done")
"""


def test_a_reader_that_goes_away_ends_nothing(tmp_path):
    """``command | head -1``: the command goes on to the end and says nothing about the pipe."""
    run = subprocess.Popen([sys.executable, "-c", PRINTS, str(tmp_path / "done")], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert run.stdout.readline() == "line 0\n"
        run.stdout.close()
        err = run.communicate(timeout=60)[1]
    finally:
        run.kill()
    assert run.returncode == 0 and err == ""  # no BrokenPipeError, no "Exception ignored"
    assert (tmp_path / "done").read_text() == "done"


@pytest.mark.slow
def test_a_listing_as_a_reader_runs_it(mnist_npz, tmp_path):
    """``MNIST_DATA=<folder holding mnist.npz> python mlp_mnist.py --smoke --output-dir out | head -c 100``
    in a shell that leaves TF_CPP_MIN_LOG_LEVEL unset, beside a full run's files: the run ends normally
    with nothing on stderr (TensorFlow's start-up notices filtered, the broken pipe harmless), writes
    its outputs to out/smoke/ and leaves the full run's alone."""
    (tmp_path / "data").mkdir()
    os.symlink(mnist_npz, tmp_path / "data" / "mnist.npz")
    full_run = {name: f"the full run's {name}\n" for name in ("mlp-mnist.png", "mlp-mnist.keras", "mlp-mnist.json")}
    (tmp_path / "out").mkdir()
    for name, text in full_run.items():
        (tmp_path / "out" / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["MNIST_DATA"] = str(tmp_path / "data")
    run = subprocess.Popen([sys.executable, os.path.join(ROOT, "mlp_mnist.py"), "--smoke", "--output-dir", "out"],
                           cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        head = run.stdout.read(100)
        run.stdout.close()
        err = run.communicate(timeout=500)[1]
    finally:
        run.kill()
    assert head.startswith('Model: "sequential"') and run.returncode == 0 and err == "", err
    diagram = "mlp-mnist.png" if graphviz_available() else "mlp-mnist.dot"
    assert sorted(os.listdir(tmp_path / "out" / "smoke")) == sorted(
        [diagram, "mlp-mnist-history.png", "mlp-mnist.json", "mlp-mnist.keras"])
    results = json.loads((tmp_path / "out" / "smoke" / "mlp-mnist.json").read_text())
    assert results["data"] == str(tmp_path / "data") and results["smoke"] and results["test_accuracy"] > 0.5
    assert {name: (tmp_path / "out" / name).read_text() for name in full_run} == full_run
    assert sorted(os.listdir(tmp_path / "out")) == sorted([*full_run, "smoke"])
