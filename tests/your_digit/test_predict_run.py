"""predict.py says which run made its model (issue 17), and finds the default model from another folder.

The description comes from the results record the run wrote beside the model (``<stem>.json``):
the listing, epochs against the book's, seed, test accuracy, or a smoke run; a record missing,
broken or hostile is said so in words and never stops predict. It is the first line on stdout,
in ``--serve``'s line and in the page's answers. Without ``--model``, ``outputs/cnn-mnist.keras``
is taken from the current folder or else from the project's own folder.
"""

import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

import predict
from tests.support import ROOT
from tests.your_digit.test_serve_limits import Stub, drawn_png, post
from your_digit import serve

RECORD = {"name": "cnn-mnist", "listing": "1.4.1", "epochs": 10, "batch_size": 128, "seed": 0, "smoke": False,
          "test_accuracy": 0.99262}
UNKNOWN = "no cnn-mnist.json beside it: which run made it is unknown"
UNREADABLE = "its cnn-mnist.json is unreadable"
SMOKE_NOTE = "a smoke run: 1 short epoch; python cnn_mnist.py trains the book's run"


def model_beside(folder, record=None, raw=None, stem="cnn-mnist"):
    """A model file's path in ``folder`` with ``record`` (a dict, as JSON) or ``raw`` bytes as its
    ``<stem>.json`` (neither: none). The model is an empty file: the description reads only the record."""
    model = os.path.join(folder, stem + ".keras")
    open(model, "wb").close()
    if record is not None:
        raw = json.dumps(record).encode()
    if raw is not None:
        with open(os.path.join(folder, stem + ".json"), "wb") as f:
            f.write(raw)
    return model


def described(path):
    """predict.describe_run(path), which must return within 10 s (a FIFO opened would wait forever)."""
    done = []
    thread = threading.Thread(target=lambda: done.append(predict.describe_run(path)), daemon=True)
    thread.start()
    thread.join(10)
    assert done, f"describing {path} did not return"
    return done[0]


# --- the description, from the record beside the model --------------------------------------------


@pytest.mark.parametrize("name, epochs, expected", [
    ("cnn-mnist", 10, "Listing 1.4.1, 10 epochs, seed 3, test accuracy 99.26%"),
    ("cnn-mnist", 30, "Listing 1.4.1, 30 epochs, seed 3, test accuracy 99.26%"),
    ("cnn-mnist", 2, "Listing 1.4.1, 2 of the book's 10 epochs, seed 3, test accuracy 99.26%"),
    ("mlp-mnist", 20, "Listing 1.3.2, 20 epochs, seed 3, test accuracy 99.26%"),
    ("mlp-mnist", 5, "Listing 1.3.2, 5 of the book's 20 epochs, seed 3, test accuracy 99.26%"),
    ("rnn-mnist", 1, "Listing 1.5.1, 1 of the book's 20 epochs, seed 3, test accuracy 99.26%"),
    ("my-mnist", 1, "1 epoch, seed 3, test accuracy 99.26%"),  # not a listing's name: no book to compare
])
def test_a_run_is_described_against_the_books_epochs(name, epochs, expected, tmp_path):
    record = {**RECORD, "name": name, "epochs": epochs, "seed": 3}
    assert described(model_beside(tmp_path, record)) == expected


def test_a_smoke_run_says_so_and_how_to_train_the_books(tmp_path):
    record = {**RECORD, "epochs": 1, "smoke": True, "test_accuracy": 0.941}
    assert described(model_beside(tmp_path, record)) == f"Listing 1.4.1, seed 0, test accuracy 94.10%, {SMOKE_NOTE}"
    record = {**RECORD, "name": "rnn-mnist", "epochs": 1, "smoke": True}
    assert described(model_beside(tmp_path, record)).endswith("; python rnn_mnist.py trains the book's run")


def test_no_record_beside_the_model(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    model_beside(other, RECORD)  # a record in another folder is not this model's
    assert described(model_beside(tmp_path)) == UNKNOWN
    assert described(model_beside(other, stem="mlp-mnist")) == "no mlp-mnist.json beside it: which run made it is unknown"
    assert described(str(tmp_path / "UP.KERAS")) == "no UP.json beside it: which run made it is unknown"
    assert described(str(tmp_path / "a\nb.keras")) == "no a\\nb.json beside it: which run made it is unknown"


def unreadable_records(folder):
    """Records a description cannot use, as bytes (or, for the special files, a function making one)."""
    fine = json.dumps(RECORD).encode()
    cases = {
        "text": b"not JSON\n",
        "cut short": fine[:-10],
        "not UTF-8": fine.replace(b"cnn-mnist", b"cnn-\xe9"),
        "a list": b"[1, 2]",
        "no seed": json.dumps({k: v for k, v in RECORD.items() if k != "seed"}).encode(),
        "epochs as text": json.dumps({**RECORD, "epochs": "10"}).encode(),
        "epochs true": json.dumps({**RECORD, "epochs": True}).encode(),
        "no epochs": json.dumps({**RECORD, "epochs": 0}).encode(),
        "epochs past the bound": json.dumps({**RECORD, "epochs": predict.MAX_EPOCHS + 1}).encode(),
        "5,000 digits": fine.replace(b'"epochs": 10', b'"epochs": ' + b"9" * 5000),
        "negative seed": json.dumps({**RECORD, "seed": -1}).encode(),
        "smoke as text": json.dumps({**RECORD, "smoke": "no"}).encode(),
        "accuracy NaN": fine.replace(b"0.99262", b"NaN"),
        "accuracy over 1": json.dumps({**RECORD, "test_accuracy": 99.26}).encode(),
        "nested too deep": b"[" * 200_000 + b"]" * 200_000,
        "over the bound": fine + b" " * (predict.MAX_RECORD_BYTES + 1 - len(fine)),  # valid JSON, but too long
    }
    special = {
        "folder": lambda path: os.mkdir(path),
        "FIFO": lambda path: os.mkfifo(path),
        "link to /dev/zero": lambda path: os.symlink("/dev/zero", path),
        "dangling link": lambda path: os.symlink(os.path.join(folder, "gone.json"), path),
    }
    return cases, special


@pytest.mark.parametrize("case", list(unreadable_records("")[0]) + list(unreadable_records("")[1]))
def test_a_broken_or_hostile_record_is_said_unreadable(case, tmp_path):
    cases, special = unreadable_records(str(tmp_path))
    if case in cases:
        model = model_beside(tmp_path, raw=cases[case])
    else:
        model = model_beside(tmp_path)
        special[case](str(tmp_path / "cnn-mnist.json"))
    assert described(model) == UNREADABLE


def test_a_record_at_the_bound_is_read(tmp_path):
    fine = json.dumps(RECORD).encode()
    model = model_beside(tmp_path, raw=fine + b" " * (predict.MAX_RECORD_BYTES - len(fine)))
    assert described(model) == "Listing 1.4.1, 10 epochs, seed 0, test accuracy 99.26%"


# --- predict.py's first line, --serve's line, the page ---------------------------------------------


@pytest.fixture(scope="module")
def seven(mnist_arrays, tmp_path_factory):
    path = tmp_path_factory.mktemp("digit") / "seven.png"
    Image.fromarray(mnist_arrays["x_test"][0]).save(path)
    return str(path)


@pytest.fixture(scope="module")
def smoke_run(smoke_cnn):
    """The smoke-trained CNN's path and its description as predict.py should print it."""
    path = smoke_cnn[1]
    with open(os.path.join(os.path.dirname(path), "cnn-mnist.json")) as f:
        record = json.load(f)
    assert record["smoke"] is True and record["epochs"] == 1
    return path, f"Listing 1.4.1, seed 0, test accuracy {100 * record['test_accuracy']:.2f}%, {SMOKE_NOTE}"


def predicted(argv, capsys):
    """predict.main in-process: (exit code, stdout, stderr) as text."""
    try:
        predict.main(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_first_line_names_the_model_and_its_run(smoke_run, seven, capsys):
    path, about = smoke_run
    code, out, err = predicted([seven, "--model", path], capsys)
    lines = out.splitlines()
    assert code == 0 and err == "" and len(lines) == 2, (out, err)
    assert lines[0] == f"Model: {path} ({about})"
    assert lines[1].startswith(f"{seven}: 7  (7 ")


@pytest.mark.parametrize("raw, expected", [(None, UNKNOWN), (b"\x00" * 100, UNREADABLE)])
def test_no_record_or_a_hostile_one_does_not_stop_predict(raw, expected, smoke_cnn, seven, tmp_path, capsys):
    model = shutil.copy(smoke_cnn[1], tmp_path / "cnn-mnist.keras")
    if raw is not None:
        (tmp_path / "cnn-mnist.json").write_bytes(raw)
    code, out, err = predicted([seven, "--model", str(model)], capsys)
    assert code == 0 and err == "", err
    assert out.splitlines()[0] == f"Model: {model} ({expected})" and len(out.splitlines()) == 2


def test_nothing_on_stdout_before_a_refusal(smoke_run, seven, tmp_path, capsys):
    taken = tmp_path / "file"
    taken.write_text("")
    for argv in ([seven, "--model", str(tmp_path / "none.keras")],
                 [seven, "--model", smoke_run[0], "--show", "--output-dir", str(taken)]):
        code, out, err = predicted(argv, capsys)
        assert code == 2 and out == "" and len(err.splitlines()) == 1, (argv, out, err)


def test_serve_names_the_model_and_its_run(smoke_run, capsys, monkeypatch):
    path, about = smoke_run
    monkeypatch.setattr(serve.Server, "serve_forever", lambda self: None)  # its one line, then stop
    code, out, err = predicted(["--serve", "--model", path, "--port", "0"], capsys)
    assert code == 0 and err == ""
    assert out.startswith(f"Serving {path} ({about}) on http://127.0.0.1:") and out.endswith("/ (Ctrl-C to stop)\n")


@pytest.mark.parametrize("label", ["cnn-mnist.keras (Listing 1.4.1, 10 epochs, seed 0, test accuracy 99.26%)", None])
def test_the_pages_answers_carry_the_model(label):
    server = serve.bind(Stub(np.eye(10)[7]), "127.0.0.1", 0, page_label=label)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status, answer = post(server.server_address[1], drawn_png())
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200 and answer["digit"] == 7
    assert answer.get("model") == label and ("model" in answer) == (label is not None)


def test_the_page_shows_the_model():
    """The page has its place for the answer's model and fills it as text (never as HTML)."""
    with open(os.path.join(serve.WEB, "index.html")) as f:
        assert '<p id="model"></p>' in f.read()
    with open(os.path.join(serve.WEB, "app.js")) as f:
        script = f.read()
    assert 'getElementById("model")' in script and "modelNote.textContent = answer.model" in script


# --- the default model, from another folder -------------------------------------------------------


@pytest.fixture()
def folders(tmp_path, monkeypatch):
    """``(project, elsewhere)``: predict.py's project folder made ``project``, run from ``elsewhere``."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    for folder in (project, elsewhere):
        (folder / "outputs").mkdir(parents=True)
    monkeypatch.setattr(predict, "PROJECT", os.path.realpath(project))
    monkeypatch.chdir(elsewhere)
    return project, elsewhere


def own_model(project):
    return os.path.join(os.path.realpath(project), "outputs", "cnn-mnist.keras")


def test_without_model_the_projects_own_is_found_from_elsewhere(folders):
    project, elsewhere = folders
    model_beside(project / "outputs")
    assert predict.parse_args(["x.png"]).model == own_model(project)
    model_beside(elsewhere / "outputs")  # one here wins
    assert predict.parse_args(["x.png"]).model == os.path.join("outputs", "cnn-mnist.keras")


def test_a_model_given_is_taken_as_given(folders):
    project, _ = folders
    model_beside(project / "outputs")
    assert predict.parse_args(["x.png", "--model", "outputs/cnn-mnist.keras"]).model == "outputs/cnn-mnist.keras"


def test_neither_model_names_both_places(folders, capsys):
    project, _ = folders
    with pytest.raises(SystemExit) as exit_:
        predict.parse_args(["x.png"])
    err = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2 and len(err) == 1
    assert err[0].endswith(f"error: --model outputs/cnn-mnist.keras: no such file here, nor the project's own "
                           f"{own_model(project)}; train one first (python cnn_mnist.py saves outputs/cnn-mnist.keras)")


def test_neither_model_in_the_project_folder_names_it_once(folders, capsys, monkeypatch):
    project, _ = folders
    monkeypatch.chdir(project)
    with pytest.raises(SystemExit) as exit_:
        predict.parse_args(["--serve"])
    err = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2 and len(err) == 1
    assert err[0].endswith("error: --model outputs/cnn-mnist.keras: no such file; "
                           "train one first (python cnn_mnist.py saves outputs/cnn-mnist.keras)")


@pytest.fixture(scope="module")
def from_elsewhere(smoke_cnn, seven, tmp_path_factory):
    """``python ../project/predict.py seven.png caf\\xe9.png missing.jpg gon\\xe9.png`` in a fresh process,
    as a reader runs it from a folder without outputs/, on a strict UTF-8 stdout: two of the names are
    not UTF-8, two files are missing. ``(the project, the run)``."""
    root = tmp_path_factory.mktemp("from-elsewhere")
    project, elsewhere = root / "project", root / "elsewhere"
    (project / "outputs").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(os.path.join(ROOT, "predict.py"), project)  # a copy of the project: its own code, its own outputs/
    for package in ("ch1", "study", "your_digit"):
        os.symlink(os.path.join(ROOT, package), project / package)
    smoke = os.path.dirname(smoke_cnn[1])
    for name in ("cnn-mnist.keras", "cnn-mnist.json"):
        shutil.copy(os.path.join(smoke, name), project / "outputs")
    name, missing = os.fsdecode(b"caf\xe9.png"), os.fsdecode(b"gon\xe9.png")
    for image in ("seven.png", name):
        shutil.copy(seven, elsewhere / image)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C.UTF-8"}
    return project, subprocess.run([sys.executable, os.path.join("..", "project", "predict.py"), "seven.png", name,
                                    "missing.jpg", missing], capture_output=True, cwd=elsewhere, env=env, timeout=300)


def test_run_from_another_folder_as_a_reader_does(from_elsewhere):
    """From a folder without outputs/: the project's model, named first; no TensorFlow chatter, one line
    per file, exit 2 for the missing ones."""
    project, done = from_elsewhere
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == ["predict.py: error: missing.jpg: no such file",
                                                 "predict.py: error: gon\\xe9.png: no such file"]
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 3 and lines[0].startswith(f"Model: {own_model(project)} (Listing 1.4.1, seed 0, "), lines
    assert lines[0].endswith(f"{SMOKE_NOTE})") and lines[1].startswith("seven.png: 7  (7 ") and lines[1].endswith("%)")


def test_file_names_print_in_any_locale(from_elsewhere):
    """A file name that is not UTF-8 prints with \\x escapes on a strict UTF-8 stdout, no crash."""
    assert from_elsewhere[1].stdout.decode().splitlines()[2].startswith("caf\\xe9.png: 7  (7 ")
