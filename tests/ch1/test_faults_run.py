"""A listing's run when what surrounds it fails (issue 19): a stdout that is closed or whose reader goes
away, an output folder too deep for its files' names, too full before training or full at the save, a
batch larger than the data, a loop of symbolic links as the data, a mistyped flag; and, as a reader
meets them, the data rule (MNIST_DATA naming a folder) and the smoke folder beside a full run's files.

The listing run as a command is mlp_mnist.py, the quickest; the rest run in this process, with
training and data loading replaced by failures (``no_long_work``) or on a few images.
"""

import collections
import contextlib
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
import types
import zipfile

import pytest

from ch1.cli import Parser
from ch1.data import HOW_TO_POINT, IDX_FILES, DataError, load_mnist
from ch1.outputs import graphviz_available
from tests import background
from tests.support import ROOT, ended, run_on_64_images, small_arrays, write_idx_folder

SCRIPT = os.path.join(ROOT, "mlp_mnist.py")
# What a run writes: the diagram (mlp-mnist.dot instead of .png where Graphviz is missing), the model,
# the history plot, the results.
SMOKE_OUTPUTS = ("mlp-mnist.png" if graphviz_available() else "mlp-mnist.dot", "mlp-mnist.keras",
                 "mlp-mnist-history.png", "mlp-mnist.json")
FULL_RUN = ("mlp-mnist.png", "mlp-mnist.dot", "mlp-mnist.keras", "mlp-mnist-history.png", "mlp-mnist.json")
CLOSED_STDOUT = ["/bin/sh", "-c", 'exec "$0" "$@" >&-']  # the shell's `command >&-`
def folder_files(folder):
    return sorted(os.listdir(folder))


# --- as a command: the listing run by `python mlp_mnist.py --smoke` ------------------------------


def mlp_commands(root, npz):
    """Three runs of the listing as commands, side by side (each starts TensorFlow: seconds), in ``root``:
    - ``cut_short``: ``MNIST_DATA=<folder holding mnist.npz> python mlp_mnist.py --smoke --output-dir out
      | head -c 100``, with a full run's files already in out/, in the default environment
      (TF_CPP_MIN_LOG_LEVEL unset);
    - ``closed``: ``TF_CPP_MIN_LOG_LEVEL=0 python mlp_mnist.py --smoke --data <npz> --output-dir closed >&-``
      (a shell that lets all of TensorFlow's log through);
    - ``closed_bad``: ``python mlp_mnist.py --data <none> >&-``.
    A case (tests/background.py): the tests marked with it run last, the three commands meanwhile."""
    (root / "data").mkdir()
    os.symlink(npz, root / "data" / "mnist.npz")
    out = root / "out"
    out.mkdir()
    full_run = {name: f"the full run's {name}\n".encode() for name in FULL_RUN}
    for name, content in full_run.items():
        (out / name).write_bytes(content)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["MNIST_DATA"] = str(root / "data")
    with contextlib.ExitStack() as stack:
        started = lambda *command, **how: stack.enter_context(ended(subprocess.Popen(command, cwd=root, **how)))
        cut = started(sys.executable, SCRIPT, "--smoke", "--output-dir", str(out), env=env, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
        closed = started(*CLOSED_STDOUT, sys.executable, SCRIPT, "--smoke", "--data", npz, "--output-dir",
                         str(root / "closed"), stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"})
        closed_bad = started(*CLOSED_STDOUT, sys.executable, SCRIPT, "--data", str(root / "nope"),
                             stderr=subprocess.PIPE, text=True)
        head = cut.stdout.read(100)  # as `| head -c 100` reads, then goes away
        cut.stdout.close()
        stderr = cut.stderr.read().decode()
        cut.wait(timeout=300)
        done = {}
        for name, run in (("closed", closed), ("closed_bad", closed_bad)):
            err = run.communicate(timeout=300)[1]
            done[name] = subprocess.CompletedProcess(run.args, run.returncode, None, err)
    cut_short = collections.namedtuple("Run", "code head stderr out data full_run")(
        cut.returncode, head, stderr, out, root / "data", full_run)
    return types.SimpleNamespace(root=root, cut_short=cut_short, **done)


@pytest.fixture()
def commands():
    return background.result(mlp_commands)


@pytest.fixture()
def cut_short(commands):
    return commands.cut_short


@background.fresh(mlp_commands)
def test_a_reader_that_goes_away_ends_nothing(cut_short):
    """`| head -c 100`: the run goes on to the end, writes every output, and says nothing about the pipe."""
    assert cut_short.head.startswith(b'Model: "sequential"') and len(cut_short.head) == 100  # the pipe broke mid-run
    assert cut_short.code == 0, cut_short.stderr
    assert folder_files(cut_short.out / "smoke") == sorted(SMOKE_OUTPUTS)
    assert cut_short.stderr == ""  # no Traceback, no BrokenPipeError, no "Exception ignored"


@background.fresh(mlp_commands)
def test_mnist_data_may_name_a_folder_holding_mnist_npz(cut_short):
    assert cut_short.code == 0, cut_short.stderr
    results = json.loads((cut_short.out / "smoke" / "mlp-mnist.json").read_text())
    assert results["data"] == str(cut_short.data) and results["smoke"] and results["test_accuracy"] > 0.5


@background.fresh(mlp_commands)
def test_a_smoke_run_leaves_a_full_runs_files_alone(cut_short):
    assert cut_short.code == 0, cut_short.stderr
    assert folder_files(cut_short.out) == sorted([*FULL_RUN, "smoke"])
    for name, content in cut_short.full_run.items():
        assert (cut_short.out / name).read_bytes() == content, name


def test_the_shell_wrapper_closes_stdout(tmp_path):
    """What the two tests below stand on: under CLOSED_STDOUT, file descriptor 1 is closed (Python then
    has no sys.stdout)."""
    done = subprocess.run([*CLOSED_STDOUT, sys.executable, "-c", "import sys; sys.stderr.write(str(sys.stdout))"],
                          stderr=subprocess.PIPE, text=True, timeout=60)
    assert done.stderr == "None"


@background.fresh(mlp_commands)
def test_a_closed_stdout_ends_nothing(commands):
    """`python mlp_mnist.py --smoke >&-`: the run ends normally and writes every output; and with
    TF_CPP_MIN_LOG_LEVEL=0, stderr stays empty (ch1.startup keeps TensorFlow's spurious line off it)."""
    done, folder = commands.closed, commands.root / "closed"
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert folder_files(folder / "smoke") == sorted(SMOKE_OUTPUTS)
    assert json.loads((folder / "smoke" / "mlp-mnist.json").read_text())["smoke"]  # whole: nothing printed into it
    assert zipfile.is_zipfile(folder / "smoke" / "mlp-mnist.keras")


@background.fresh(mlp_commands)
def test_a_closed_stdout_and_bad_input_is_one_line(commands):
    """As a reader runs it, on any CPU: the only thing on stderr is the error (no TensorFlow start-up
    notices: CUDA probes, or oneDNN's on CPUs with AVX-512 or AMX), and a closed stdout changes nothing."""
    done = commands.closed_bad
    assert done.returncode == 2
    assert done.stderr == f"mlp_mnist.py: error: --data {commands.root / 'nope'}: no such file or folder; {HOW_TO_POINT}\n"


STREAMS = r"""
import os, sys
from ch1.startup import standard_streams
standard_streams()
print("printed")  # harmless: to /dev/null where stdout was closed
with open(sys.argv[1], "w") as f:
    f.write("\n".join(os.readlink(f"/proc/self/fd/{fd}") for fd in (0, 1, 2)))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd (Linux)")
@pytest.mark.parametrize("closed", ["<&-", ">&-", "2>&-", "<&- >&-", "<&- >&- 2>&-"])
def test_closed_standard_streams_get_dev_null(closed, tmp_path):
    """ch1.startup.standard_streams: each of file descriptors 0, 1 and 2 that was closed is /dev/null, so
    no file the command opens later takes its number (and what is printed never lands in that file)."""
    done = subprocess.run(["/bin/sh", "-c", f'exec "$0" "$@" {closed}', sys.executable, "-c", STREAMS,
                           str(tmp_path / "fds")], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, timeout=60,
                          stdin=subprocess.PIPE, capture_output=True)  # pipes, where not closed
    assert done.returncode == 0
    targets = (tmp_path / "fds").read_text().splitlines()
    for fd, spec in enumerate(("<&-", ">&-", "2>&-")):
        if spec in closed.split():
            assert targets[fd] == os.devnull, (fd, targets)
        else:
            assert targets[fd].startswith("pipe:"), (fd, targets)


class BrokenPipe:
    """A stdout whose reader went away."""

    def write(self, text):
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    def flush(self):
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


@pytest.mark.parametrize("stdout", [None, BrokenPipe()], ids=["closed", "broken-pipe"])
def test_an_error_is_one_line_whatever_became_of_stdout(stdout, monkeypatch, capsys):
    """ch1.cli.error flushes stdout first (to keep the order of the two streams): a stdout that is gone
    (``sys.stdout`` None where nothing reopened file descriptor 1) or whose reader left is no obstacle."""
    from ch1 import cli

    monkeypatch.setattr(sys, "argv", ["tool.py"])
    monkeypatch.setattr(sys, "stdout", stdout)
    cli.error("--data x: no such file or folder")
    assert capsys.readouterr().err == "tool.py: error: --data x: no such file or folder\n"


# --- in this process: refused before training, or the trained model kept -------------------------


@pytest.fixture()
def no_long_work(monkeypatch):
    """Training and loading MNIST fail the test: what is refused must be refused before either."""
    import keras

    import ch1.run

    def long_work(*args, **kwargs):
        raise AssertionError("training or data loading started despite bad input")

    monkeypatch.setattr(keras.Model, "fit", long_work)
    monkeypatch.setattr(ch1.run, "load_mnist", long_work)


def refused(argv, capsys):
    """``python mlp_mnist.py ARGV`` in this process: its one stderr line (after ``error: ``), exit status 2."""
    import mlp_mnist

    with pytest.raises(SystemExit) as exit_:
        mlp_mnist.main(argv)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err + captured.out, captured.err
    assert ": error: " in lines[0]
    return lines[0].split(": error: ", 1)[1]


def deep_path(base, length):
    """A path under ``base`` of exactly ``length`` characters, made of 200-character folder names."""
    path = str(base)
    while length - len(path) > 201 + 50:
        path = os.path.join(path, "d" * 200)
    return os.path.join(path, "e" * (length - len(path) - 1))


def test_an_output_dir_too_deep_for_its_files_names_is_refused_before_training(tmp_path, capsys, no_long_work):
    """4,069 characters: the folder itself can be made and written (PATH_MAX is 4,096 with the final NUL),
    but mlp-mnist-history.png's temporary name, .mlp-mnist-history.<8 hex>.png, would end at 4,101."""
    folder = deep_path(tmp_path, 4069)
    assert len(folder) == 4069 and len(os.path.join(folder, ".write-test.12345678")) < 4096
    message = refused(["--output-dir", folder], capsys)
    assert message == f"--output-dir {folder}: cannot write mlp-mnist-history.png there ({os.strerror(errno.ENAMETOOLONG)})"
    assert folder_files(folder) == []  # the probes leave nothing behind


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_relative_output_dir_in_a_folder_deeper_than_path_max_is_written(tmp_path, monkeypatch, capsys):
    """Run from a folder whose absolute path is longer than PATH_MAX, `--output-dir out` is probed as given,
    so every file must be written as given too (an absolute temporary name would not fit)."""
    monkeypatch.chdir(tmp_path)
    try:
        while len(os.getcwd()) < 4200:
            os.mkdir("d" * 200)
            os.chdir("d" * 200)
        _, finish = run_on_64_images(["--output-dir", "out"], monkeypatch)
        finish()
        assert folder_files("out") == sorted(["mlp-mnist.dot", "mlp-mnist.keras", "mlp-mnist-history.png",
                                              "mlp-mnist.json"])
    finally:
        os.chdir(tmp_path)
        shutil.rmtree("d" * 200)  # the tree pytest would otherwise keep


def test_disk_full_at_the_save_keeps_the_trained_model(tmp_path, monkeypatch, capsys):
    """ENOSPC at model.save, after training: one line, exit 2, nothing half-written in --output-dir, and the
    trained model kept, whole, in the system's temporary folder."""
    import keras
    import numpy as np

    out, system_tmp = tmp_path / "out", tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    real_save = keras.Model.save

    def save(model, path, *args, **kwargs):
        if os.path.dirname(os.path.abspath(path)) == str(out):
            with open(path, "wb") as f:
                f.write(b"PK\x03\x04 half a model")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real_save(model, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", save)
    model, finish = run_on_64_images(["--output-dir", str(out)], monkeypatch)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        finish()
    assert exit_.value.code == 2
    line, = capsys.readouterr().err.splitlines()
    stem = f"error: {out}/mlp-mnist.keras: cannot save the trained model ({os.strerror(errno.ENOSPC)}); it is kept as "
    assert line.split(": ", 1)[1].startswith(stem), line
    kept = line.split(stem)[1]
    assert os.path.dirname(kept) == str(system_tmp) and re.fullmatch(r"mlp-mnist-[0-9a-f]{8}\.keras", os.path.basename(kept))
    assert folder_files(system_tmp) == [os.path.basename(kept)]  # and no temporary file beside it
    assert zipfile.is_zipfile(kept)
    loaded = keras.saving.load_model(kept)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), model.get_weights()))
    os.remove(kept)
    assert folder_files(out) == ["mlp-mnist.dot"]  # the diagram, written before training; no model, no JSON


def test_disk_full_at_the_save_and_no_temporary_folder_is_one_line(tmp_path, monkeypatch, capsys):
    import keras

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))

    def save(model, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(keras.Model, "save", save)
    _, finish = run_on_64_images(["--output-dir", str(tmp_path / "out")], monkeypatch)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        finish()
    assert exit_.value.code == 2
    line, = capsys.readouterr().err.splitlines()
    assert line.endswith(f"{tmp_path}/out/mlp-mnist.keras: cannot save the trained model "
                         f"({os.strerror(errno.ENOSPC)}), nor keep it in {tmp_path / 'gone'}")


def test_too_little_free_space_is_refused_before_training(tmp_path, monkeypatch, capsys, no_long_work):
    from ch1 import outputs

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=10 * 2**20))
    message = refused(["--output-dir", str(tmp_path / "out")], capsys)
    assert message == (f"--output-dir {tmp_path / 'out'}: only 10.0 MB free there; a run needs "
                       f"{outputs.MIN_FREE_BYTES // 2**20} MB")
    assert folder_files(tmp_path / "out") == []


def test_a_folder_in_place_of_an_output_is_refused_before_training(tmp_path, capsys, no_long_work):
    (tmp_path / "out" / "mlp-mnist.keras").mkdir(parents=True)
    message = refused(["--output-dir", str(tmp_path / "out")], capsys)
    assert message == f"--output-dir {tmp_path / 'out'}: mlp-mnist.keras there is a folder; a run replaces it with a file"


@pytest.mark.parametrize("argv, expected", [
    (["--batch-size", "60001"], "argument --batch-size: at most the 60,000 training images, got 60,001"),
    (["--batch-size", str(10**20)], f"argument --batch-size: at most the 60,000 training images, got {10**20:,}"),
    (["--smoke", "--batch-size", "6001"], "argument --batch-size: at most the 6,000 training images of --smoke, got 6,001"),
])
def test_a_batch_larger_than_the_training_images_is_refused_at_once(argv, expected, tmp_path, monkeypatch, capsys,
                                                                     no_long_work):
    import mlp_mnist  # noqa: F401 - imported before memory is traced

    monkeypatch.chdir(tmp_path)
    tracemalloc.start()
    try:
        message = refused(argv, capsys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message == expected
    assert peak < 2**20  # nothing sized by the batch was made
    assert not os.path.exists(tmp_path / "outputs")  # refused before the output folder is made


def test_a_batch_of_all_the_training_images_is_accepted():
    from ch1.run import parse_args

    assert parse_args("", ["--batch-size", "60000"], epochs=20, batch_size=128).batch_size == 60000
    assert parse_args("", ["--smoke", "--batch-size", "6000"], epochs=20, batch_size=128).batch_size == 6000


# --- the data: a loop of symbolic links ---------------------------------------------------------


@pytest.fixture()
def loop(tmp_path):
    """``a -> b -> a``: a link that leads nowhere but back to itself."""
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    return str(tmp_path / "a")


LOOP = "cannot read (a loop of symbolic links)"


@pytest.mark.parametrize("slash", ["", "/"])  # `loop/`: the path of a folder, as a shell completes one
def test_a_loop_as_data_says_so(loop, slash):
    with pytest.raises(DataError) as raised:
        load_mnist(loop + slash)
    assert str(raised.value).endswith(f"{loop}{slash}: {LOOP}"), raised.value


def test_a_loop_as_mnist_data_says_so_and_where_it_came_from(loop, monkeypatch):
    monkeypatch.setenv("MNIST_DATA", loop)
    with pytest.raises(DataError) as raised:
        load_mnist()
    assert str(raised.value) == f"MNIST_DATA={loop}: {LOOP}"


def test_a_loop_in_a_folder_of_idx_files_names_the_file(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", small_arrays())
    labels = os.path.join(folder, IDX_FILES["y_test"] + ".gz")
    os.remove(labels)
    os.symlink(labels, labels)  # a link to itself
    with pytest.raises(DataError) as raised:
        load_mnist(folder, full=False)
    assert str(raised.value) == f"{labels}: {LOOP}"


# --- a mistyped flag: the nearest real one ------------------------------------------------------


def listing_parser():
    """The flags a listing has (ch1.run.parse_args), on the Parser alone: no Keras."""
    parser = Parser("A listing.", prog="mlp_mnist.py")
    for flag in ("--epochs", "--batch-size", "--seed", "--data", "--output-dir"):
        parser.add_argument(flag)
    parser.add_argument("--smoke", action="store_true")
    return parser


@pytest.mark.parametrize("argv, hint", [
    (["--eopchs", "2"], " (did you mean --epochs?)"),
    (["--batch_size", "64"], " (did you mean --batch-size?)"),
    (["--batch_size=64"], " (did you mean --batch-size?)"),
    (["--smoek"], " (did you mean --smoke?)"),
    (["--zzzzzz"], ""),  # nothing near: no guess
    (["stray"], ""),  # not a flag
])
def test_a_mistyped_flag_suggests_the_nearest(argv, hint, capsys):
    with pytest.raises(SystemExit) as exit_:
        listing_parser().parse_args(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"mlp_mnist.py: error: unrecognized arguments: {' '.join(argv)}{hint}\n"
