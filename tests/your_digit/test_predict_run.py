"""predict.py says which run made its model (issue 17), finds the default model from another folder, and
suggests the MLP a reader has when there is no CNN (issue 26).

The description comes from the run's JSON beside the model (``<stem>.json``, read by ch1.run.read_run):
the listing, epochs against the book's, seed, test accuracy, or a smoke run; one missing or unreadable
is said so and never stops predict. It is the first line on stdout, in ``--serve``'s line and in the
page's answers.
"""

import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

import predict
from tests.support import ROOT
from tests.your_digit.test_serve_limits import Stub, drawn_png, post
from your_digit import serve

RECORD = {"name": "cnn-mnist", "listing": "1.4.1", "epochs": 10, "batch_size": 128, "seed": 0, "smoke": False,
          "test_accuracy": 0.99262, "history": {"loss": [0.2], "accuracy": [0.95]}}
UNKNOWN = "no cnn-mnist.json beside it: which run made it is unknown"
SMOKE_NOTE = "a smoke run: 1 short epoch; python cnn_mnist.py trains the book's run"


def model_beside(folder, record=None, raw=None, stem="cnn-mnist"):
    """A model file's path in ``folder`` with ``record`` (a dict, as JSON) or ``raw`` bytes as its
    ``<stem>.json`` (neither: none). The model is an empty file: the description reads only the record."""
    model = os.path.join(folder, stem + ".keras")
    open(model, "wb").close()
    if record is not None or raw is not None:
        with open(os.path.join(folder, stem + ".json"), "wb") as f:
            f.write(json.dumps(record).encode() if record is not None else raw)
    return model


# --- the description, from the record beside the model --------------------------------------------


@pytest.mark.parametrize("name, epochs, expected", [
    ("cnn-mnist", 10, "Listing 1.4.1, 10 epochs, seed 3, test accuracy 99.26%"),
    ("cnn-mnist", 2, "Listing 1.4.1, 2 of the book's 10 epochs, seed 3, test accuracy 99.26%"),
    ("mlp-mnist", 20, "Listing 1.3.2, 20 epochs, seed 3, test accuracy 99.26%"),
    ("my-mnist", 1, "1 epoch, seed 3, test accuracy 99.26%"),  # not a listing's name: no book to compare
])
def test_a_run_is_described_against_the_books_epochs(name, epochs, expected, tmp_path):
    assert predict.describe_run(model_beside(tmp_path, {**RECORD, "name": name, "epochs": epochs, "seed": 3})) == expected


def test_a_smoke_run_says_so_and_how_to_train_the_books(tmp_path):
    record = {**RECORD, "epochs": 1, "smoke": True, "test_accuracy": 0.941}
    assert predict.describe_run(model_beside(tmp_path, record)) == \
        f"Listing 1.4.1, seed 0, test accuracy 94.10%, {SMOKE_NOTE}"


def test_no_record_beside_the_model(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    model_beside(other, RECORD)  # a record in another folder is not this model's
    assert predict.describe_run(model_beside(tmp_path)) == UNKNOWN
    assert predict.describe_run(str(tmp_path / "a\nb.keras")) == "no a\\nb.json beside it: which run made it is unknown"


@pytest.mark.parametrize("case", ["text", "not a run's", "FIFO"])
def test_a_broken_record_is_said_unreadable(case, tmp_path):
    raw = {"text": b"not JSON\n", "not a run's": json.dumps({**RECORD, "seed": "0"}).encode(), "FIFO": None}[case]
    model = model_beside(tmp_path, raw=raw)
    if case == "FIFO":
        os.mkfifo(tmp_path / "cnn-mnist.json")  # never opened: it would wait for a writer
    assert predict.describe_run(model) == "its cnn-mnist.json is unreadable"


# --- predict.py's first line, --serve's line, the page ---------------------------------------------


def predicted(argv, capsys):
    """predict.main in-process: (exit code, stdout, stderr) as text."""
    try:
        predict.main(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def smoke_about(smoke_cnn):
    with open(os.path.join(os.path.dirname(smoke_cnn[1]), "cnn-mnist.json")) as f:
        record = json.load(f)
    return f"Listing 1.4.1, seed 0, test accuracy {100 * record['test_accuracy']:.2f}%, {SMOKE_NOTE}"


def test_the_first_line_names_the_model_and_its_run(smoke_cnn, first_test_digit, capsys):
    code, out, err = predicted([first_test_digit, "--model", smoke_cnn[1]], capsys)
    assert code == 0 and err == "" and out.splitlines()[0] == f"Model: {smoke_cnn[1]} ({smoke_about(smoke_cnn)})"
    assert len(out.splitlines()) == 2 and out.splitlines()[1].startswith(f"{first_test_digit}: 7  (7 ")


def test_serve_names_the_model_and_its_run(smoke_cnn, capsys, monkeypatch):
    monkeypatch.setattr(serve.Server, "serve_forever", lambda self: None)  # its one line, then stop
    code, out, err = predicted(["--serve", "--model", smoke_cnn[1], "--port", "0"], capsys)
    assert code == 0 and err == "" and out.endswith("/ (Ctrl-C to stop)\n")
    assert out.startswith(f"Serving {smoke_cnn[1]} ({smoke_about(smoke_cnn)}) on http://127.0.0.1:")


@pytest.mark.parametrize("label", ["cnn-mnist.keras (Listing 1.4.1, 10 epochs, seed 0, test accuracy 99.26%)", None])
def test_the_pages_answers_carry_the_model(label):
    server = serve.bind(Stub(np.eye(10)[7]), "127.0.0.1", 0, page_label=label)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        status, answer = post(server.server_address[1], drawn_png())
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200 and answer["digit"] == 7
    assert answer.get("model") == label and ("model" in answer) == (label is not None)


# --- the default model, from another folder; the MLP without a CNN (issue 26) ---------------------


@pytest.fixture()
def folders(tmp_path, monkeypatch):
    """``(project, elsewhere)``: predict.py's project folder made ``project``, run from ``elsewhere``."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    for folder in (project, elsewhere):
        (folder / "outputs").mkdir(parents=True)
    monkeypatch.setattr(predict, "PROJECT", os.path.realpath(project))
    monkeypatch.chdir(elsewhere)
    return project, elsewhere


def own_model(project, stem="cnn-mnist"):
    return os.path.join(os.path.realpath(project), "outputs", stem + ".keras")


def test_without_model_the_projects_own_is_found_from_elsewhere(folders):
    project, elsewhere = folders
    model_beside(project / "outputs")
    assert predict.parse_args(["x.png"]).model == own_model(project)
    model_beside(elsewhere / "outputs")  # one here wins
    assert predict.parse_args(["x.png"]).model == os.path.join("outputs", "cnn-mnist.keras")


def test_neither_model_names_both_places_and_how_to_train(folders, capsys, monkeypatch):
    project, elsewhere = folders
    for folder, where in ((elsewhere, "here, nor the project's own"), (project, "")):
        monkeypatch.chdir(folder)
        with pytest.raises(SystemExit) as exit_:
            predict.parse_args(["x.png"])
        err = capsys.readouterr().err.splitlines()
        start = f"error: --model outputs/cnn-mnist.keras: no such file{' ' + where + ' ' if where else ''}"
        assert exit_.value.code == 2 and len(err) == 1 and start in err[0], err
        assert err[0].endswith("; train one first (python cnn_mnist.py saves outputs/cnn-mnist.keras; python "
                               "mlp_mnist.py, a minute, saves outputs/mlp-mnist.keras: give it with --model)")


@pytest.mark.slow
def test_run_from_another_folder_as_a_reader_does(smoke_cnn, first_test_digit, tmp_path):
    """``python ../project/predict.py seven.png caf\\xe9.png missing.jpg gon\\xe9.png`` in a fresh process, from
    a folder without outputs/, on a strict UTF-8 stdout: the project's model named first, no TensorFlow
    chatter, one line per file (names that are not UTF-8 with \\x escapes), exit 2 for the missing ones."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "outputs").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(os.path.join(ROOT, "predict.py"), project)  # a copy of the project: its own code, its own outputs/
    for package in ("ch1", "study", "your_digit"):
        os.symlink(os.path.join(ROOT, package), project / package)
    for name in ("cnn-mnist.keras", "cnn-mnist.json"):
        shutil.copy(os.path.join(os.path.dirname(smoke_cnn[1]), name), project / "outputs")
    name, missing = os.fsdecode(b"caf\xe9.png"), os.fsdecode(b"gon\xe9.png")
    for image in ("seven.png", name):
        shutil.copy(first_test_digit, elsewhere / image)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C.UTF-8"}
    done = subprocess.run([sys.executable, os.path.join("..", "project", "predict.py"), "seven.png", name,
                           "missing.jpg", missing], capture_output=True, cwd=elsewhere, env=env, timeout=300)
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == ["predict.py: error: missing.jpg: no such file",
                                                 "predict.py: error: gon\\xe9.png: no such file"]
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 3 and lines[0] == f"Model: {own_model(project)} ({smoke_about(smoke_cnn)})", lines
    assert lines[1].startswith("seven.png: 7  (7 ") and lines[1].endswith("%)")
    assert lines[2].startswith("caf\\xe9.png: 7  (7 ")
