"""study.records and study.results against a results folder that came with a crafted clone (issue 19),
and claims taken by several processes at once (issue 18), without Keras: names from fixed sets, paths
that stay in their folders, nothing written through a symbolic link, records read as a stream in
bounded memory, histories the reports cannot use left out of what needs one."""

import csv
import json
import os
import pickle
import socket
import subprocess
import sys
import threading

import pytest

from study import records, results, sgd_study
from study.tables import SWEEPS, TABLES
from tests import background
from tests.support import ROOT


def record(table="1.4.1", row=1, seed=0, **changes):
    """A usable smoke record of one trial, with ``changes``."""
    return {"table": table, "row": row, "seed": seed, "epochs": 1, "batch_size": 128, "smoke": True,
            "learning_rate": None, "backend": "tensorflow", "precision": "float32", "test_accuracy": 0.9,
            "train_accuracy": 0.95, "fit_seconds": 1.0, "params": 80_266, "history": {"accuracy": [0.95], "loss": [0.2]},
            "device": "CPU: stand-in", "versions": {"keras": "3"}, **changes}


def write_records(path, *lines):
    """Each line a record (a dict, as JSON) or raw bytes."""
    path.write_bytes(b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n"
                              for line in lines))
    return path


def warnings(capsys):
    return capsys.readouterr().err.strip().splitlines()


def every_file(folder):
    return sorted(os.path.relpath(os.path.join(top, name), folder) for top, _, names in os.walk(folder)
                  for name in names)


# --- values that become names come from fixed sets or bounded ranges --------------------------------

CRAFTED = {
    "backend a path": ({"backend": "/../../../../tmp/x"}, "backend is not one of tensorflow, jax, torch"),
    "backend not swept": ({"backend": "numpy"}, "backend is not one of"),
    "precision a path": ({"precision": "../x"}, "precision is not one of float32, bfloat16"),
    "table a path": ({"table": "../../x"}, "table is not one of 1.3.2, 1.4.1, 1.5.1, cnn-variants"),
    "row past the table": ({"row": 5}, "row outside 1..4 of Table 1.4.1"),
    "negative seed": ({"seed": -1}, "seed outside 0..999"),
    "seed past the seeds": ({"seed": 1000}, "seed outside 0..999"),
    "huge seed": ({"seed": 10**300}, "seed outside 0..999"),
    "no epochs": ({"epochs": 0}, "epochs outside 1..10000"),
    "batch past the training set": ({"batch_size": 60_001}, "batch_size outside 1..60000"),
    "zero learning rate": ({"learning_rate": 0}, "learning_rate outside (0, 100)"),
    "NaN learning rate": ({"learning_rate": float("nan")}, "learning_rate outside (0, 100)"),
    "huge learning rate": ({"learning_rate": 1e300}, "learning_rate outside (0, 100)"),
    "NaN accuracy": ({"test_accuracy": float("nan")}, "test_accuracy outside 0..1"),
    "endless fit": ({"fit_seconds": 1e300}, "fit_seconds outside 0..1000000000"),
    "a bool for a number": ({"row": True}, "row is bool"),
    "params a string": ({"params": "80,266"}, "params is str"),
}


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_a_record_whose_values_would_make_names_is_skipped_with_one_warning(kind, tmp_path, capsys):
    changes, reason = CRAFTED[kind]
    path = write_records(tmp_path / "records.jsonl", record(), record(**changes))
    found = records.read_records(str(tmp_path))
    err = warnings(capsys)
    assert len(found) == 1 and len(err) == 1, err
    assert err[0].startswith(f"warning: {path}:2: skipping an unreadable record (") and reason in err[0], err
    assert "/.." not in err[0] and "../" not in err[0]  # the reason quotes none of the record's text


def test_merge_of_crafted_records_writes_nothing_outside_the_results_folder(tmp_path, capsys):
    """The attack: a folder named like the start of a table file, then a backend that climbs out of it
    (``table-1.3.2-/../../escaped-float32.md``)."""
    folder = tmp_path / "clone" / "results"
    for table_id in TABLES:
        (folder / f"table-{table_id}-").mkdir(parents=True)
        (folder / f"table-{table_id}-tensorflow-").mkdir()
    write_records(folder / "records.jsonl", record(), record(backend="/../../escaped"),
                  record(precision="/../../escaped"))
    before = every_file(tmp_path)
    results.write_reports(records.read_records(str(folder)), str(folder), str(folder / "R.md"), 1, smoke=True)
    written = set(every_file(tmp_path)) - set(before)
    assert written == {"clone/results/R.md"} | {f"clone/results/table-{t}-smoke.{ext}" for t in TABLES
                                               for ext in ("md", "csv")}
    assert len(warnings(capsys)) == 2


@pytest.mark.parametrize("name", ["../x", "a/b", "/etc/passwd", "..", ".", "", "x\0y", "x" * 256])
def test_a_name_that_would_leave_its_folder_is_refused(name, tmp_path):
    with pytest.raises(records.RecordsError) as error:
        records.child(str(tmp_path), name)
    assert "\n" not in str(error.value) and "is not a file name inside it" in str(error.value)
    assert records.child(str(tmp_path), "table-1.4.1.md") == os.path.join(str(tmp_path), "table-1.4.1.md")


def test_every_trial_names_a_claim_inside_the_claims_folder():
    for table_id, table in SWEEPS.items():
        for row in range(1, len(table.rows) + 1):
            trial = records.Trial(table_id, row, records.MAX_SEEDS - 1, records.MAX_EPOCHS, records.TRAIN_SIZE, True,
                                  "tensorflow", "bfloat16", 1e-300)
            path = records.claim_path("results", trial)
            assert os.path.dirname(path) == os.path.join("results", "claims") and len(os.path.basename(path)) < 128


def test_a_link_on_the_way_to_a_folder_is_found(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    assert records.linked("link") == "link" and records.linked("link/inner/") == "link"
    assert records.linked("./link/x") == "./link" and records.linked(str(tmp_path / "link")) == str(tmp_path / "link")
    assert records.linked("real/x") is None and records.linked("new/x") is None and records.linked(str(tmp_path)) is None


# --- nothing is written through a symbolic link ----------------------------------------------------


def test_records_are_never_appended_through_a_link(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    (tmp_path / "records.jsonl").symlink_to(target)
    with pytest.raises(records.RecordsError, match="records.jsonl: a symbolic link; records are not written"):
        records.check_appendable(str(tmp_path / "records.jsonl"))
    with pytest.raises(records.RecordsError, match=r"records.jsonl: cannot append a record \(a symbolic link\)"):
        records.append_record(str(tmp_path / "records.jsonl"), record())
    assert target.read_text() == "precious\n"
    (tmp_path / "shard.jsonl").mkdir()
    with pytest.raises(records.RecordsError, match="shard.jsonl: a folder, not a records file"):
        records.check_appendable(str(tmp_path / "shard.jsonl"))
    records.check_appendable(str(tmp_path / "new.jsonl"))  # missing: made by the first append


def test_a_record_cut_short_stays_on_its_own_line(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_bytes(json.dumps(record(row=1)).encode()[:40])  # a kill in mid-line
    records.append_record(str(path), record(row=2))
    assert path.read_bytes().count(b"\n") == 2
    assert [t.row for t, _ in records.each_record(str(tmp_path), quiet=True)] == [2]


def test_reports_replace_a_link_instead_of_writing_through_it(tmp_path, capsys):
    folder, outside = tmp_path / "results", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    for name in ("table-1.4.1-smoke.md", "table-1.4.1-smoke.csv", "R.md"):
        (outside / name).write_text("precious\n")
        (folder / name).symlink_to(outside / name)
    results.write_reports({}, str(folder), str(folder / "R.md"), 1, smoke=True)
    for name in ("table-1.4.1-smoke.md", "table-1.4.1-smoke.csv", "R.md"):
        assert not (folder / name).is_symlink() and (folder / name).read_text() != "precious\n"
        assert (outside / name).read_text() == "precious\n"


@pytest.mark.parametrize("kind", ["link", "not UTF-8", "folder", "too big"])
def test_a_discussion_that_cannot_be_read_is_left_out_with_one_warning(kind, tmp_path, capsys):
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY\n")
    path = tmp_path / "discussion.md"
    if kind == "link":
        path.symlink_to(secret)
    elif kind == "not UTF-8":
        path.write_bytes(b"\xff\xfe discussion")
    elif kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(b"x" * (records.MAX_DISCUSSION + 1))
    text = results.write_reports({}, str(tmp_path), str(tmp_path / "R.md"), 1, smoke=True)
    err = warnings(capsys)
    assert "PRIVATE KEY" not in text and text.endswith("\n\n")
    assert len(err) == 1 and err[0].startswith(f"warning: {path}: ") and "left out of the report" in err[0], err


def test_a_discussion_is_copied_into_the_report(tmp_path, capsys):
    (tmp_path / "discussion.md").write_text("## Discussion\n\nThe é is kept.\n")
    text = results.write_reports({}, str(tmp_path), str(tmp_path / "R.md"), 1, smoke=True)
    assert text.endswith("## Discussion\n\nThe é is kept.\n") and not warnings(capsys)


# --- the claims folder and claims ------------------------------------------------------------------

TRIAL = records.Trial("1.4.1", 1, 0, 1, 128, True)


@pytest.mark.parametrize("kind", ["file", "link"])
def test_a_claims_folder_that_is_not_one_is_refused_in_one_line(kind, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    if kind == "file":
        (tmp_path / "claims").write_text("not a folder")
    else:
        (tmp_path / "claims").symlink_to(target)
    expected = "a regular file, not the claims folder" if kind == "file" else "a symbolic link, not the claims folder"
    for attempt in (lambda: records.claims_folder(str(tmp_path)), lambda: records.claim(str(tmp_path), TRIAL)):
        with pytest.raises(records.RecordsError) as error:
            attempt()
        assert str(error.value).startswith(f"{tmp_path}/claims: {expected}") and "\n" not in str(error.value)
    assert not os.listdir(target)


def test_a_claim_is_never_written_through_a_link_nor_waits_on_a_fifo(tmp_path):
    folder = records.claims_folder(str(tmp_path))
    victim = tmp_path / "victim"
    os.symlink(victim, records.claim_path(str(tmp_path), TRIAL))
    assert records.claim(str(tmp_path), TRIAL) is False  # a fresh unreadable claim: being written, left alone
    assert not victim.exists()
    other = records.Trial("1.4.1", 2, 0, 1, 128, True)
    os.mkfifo(records.claim_path(str(tmp_path), other))
    done = []
    worker = threading.Thread(target=lambda: done.append(records.claim(str(tmp_path), other)), daemon=True)
    worker.start()
    worker.join(10)
    assert done == [False]  # returned at once: a FIFO is never waited on
    os.utime(records.claim_path(str(tmp_path), TRIAL), (0, 0), follow_symlinks=False)
    assert records.claim(str(tmp_path), TRIAL) is True  # garbage over a minute old is taken over
    assert not victim.exists() and not os.path.islink(records.claim_path(str(tmp_path), TRIAL))
    assert sorted(os.listdir(folder)) == sorted(os.path.basename(records.claim_path(str(tmp_path), t))
                                                for t in (TRIAL, other))


@pytest.mark.parametrize("pid", [0, -1, 2**40, "12", True, None])
def test_a_claim_naming_no_process_is_garbage(pid, tmp_path):
    records.claims_folder(str(tmp_path))
    path = records.claim_path(str(tmp_path), TRIAL)
    with open(path, "w") as f:
        json.dump({"host": socket.gethostname(), "pid": pid, "since": 0}, f)
    assert records._holder(path) is None
    os.utime(path, (0, 0))
    assert records.claim(str(tmp_path), TRIAL) is True  # old garbage: taken over


def test_take_leaves_what_another_sweep_holds_or_has_recorded(tmp_path):
    folder = str(tmp_path)
    records.claims_folder(folder)
    with open(records.claim_path(folder, TRIAL), "w") as f:  # the parent: a live sweep on this host
        json.dump({"host": socket.gethostname(), "pid": os.getppid(), "since": 0}, f)
    assert records.take(folder, TRIAL) == "claimed by another sweep"
    records.release(folder, TRIAL)  # not ours: left in place
    assert os.path.exists(records.claim_path(folder, TRIAL))
    with open(records.claim_path(folder, TRIAL), "w") as f:  # a sweep that is gone
        json.dump({"host": socket.gethostname(), "pid": 2**22 + 1, "since": 0}, f)
    assert records.take(folder, TRIAL) is None  # taken over
    records.release(folder, TRIAL)
    assert not os.listdir(os.path.join(folder, "claims"))
    records.append_record(str(tmp_path / "records-shard-0of2.jsonl"), record())
    assert records.take(folder, TRIAL) == "recorded by another sweep"
    assert not os.listdir(os.path.join(folder, "claims"))  # the claim given back at once


SWEEPER = """
import json, os, sys, time
from study import records

folder, go = sys.argv[1], sys.argv[2]
trials = [records.Trial("1.4.1", row, seed, 1, 128, True) for seed in range(3) for row in range(1, 5)]
while not os.path.exists(go):  # every sweeper starts at once
    time.sleep(0.001)
ran = []
for trial in trials:
    if records.take(folder, trial) is None:
        time.sleep(0.02)  # training
        records.append_record(os.path.join(folder, "records.jsonl"), {
            "table": trial.table, "row": trial.row, "seed": trial.seed, "epochs": 1, "batch_size": 128,
            "smoke": True, "test_accuracy": 0.9, "train_accuracy": 0.9, "fit_seconds": 0.02, "params": 1,
            "pid": os.getpid()})
        records.release(folder, trial)
        ran.append(trial.slug())
print(json.dumps({"ran": ran, "keras": sorted(m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules)}))
"""


def test_sweepers_at_once_run_each_trial_once(tmp_path):
    """Four processes take the same twelve trials at the same moment: each trial is run and recorded once,
    every claim is given back, and no process loads Keras."""
    script, go = tmp_path / "sweeper.py", tmp_path / "go"
    script.write_text(SWEEPER)
    env = {**os.environ, "PYTHONPATH": ROOT}
    sweepers = [subprocess.Popen([sys.executable, str(script), str(tmp_path), str(go)], env=env, cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    go.touch()
    outs = [p.communicate(timeout=60) for p in sweepers]
    assert all(p.returncode == 0 for p in sweepers), outs
    reports = [json.loads(out) for out, _ in outs]
    ran = [slug for r in reports for slug in r["ran"]]
    assert len(ran) == 12 and len(set(ran)) == 12, ran
    assert all(r["keras"] == [] for r in reports)
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    assert len(lines) == 12 and len({records.trial_of(json.loads(line)) for line in lines}) == 12
    assert not os.listdir(tmp_path / "claims")


def test_a_trial_travels_to_a_worker_process():
    trial = records.Trial("1.3.2", 4, 2, 200, 32, False, "jax", "bfloat16", 0.1)
    assert pickle.loads(pickle.dumps(trial)) == trial and hash(pickle.loads(pickle.dumps(trial))) == hash(trial)


# --- records read as a stream -----------------------------------------------------------------------


def test_a_line_over_the_bound_is_skipped_with_one_warning(tmp_path, capsys):
    good = json.dumps(record(row=2)).encode()
    longest = good[:-1] + b" " * (records.MAX_LINE - len(good)) + b"}"  # exactly MAX_LINE bytes: read
    too_long = good[:-1] + b" " * (records.MAX_LINE - len(good) + 1) + b"}"
    path = write_records(tmp_path / "records.jsonl", too_long, json.dumps(record(row=1)).encode(), longest,
                         b"[" * 100_000)
    found = records.read_records(str(tmp_path))
    err = warnings(capsys)
    assert sorted(t.row for t in found) == [1, 2] and len(err) == 2, err
    assert err[0] == (f"warning: {path}:1: skipping an unreadable record (a line over 1,048,576 bytes); "
                      "that trial runs again")
    assert err[1].startswith(f"warning: {path}:4: skipping an unreadable record (nested too deeply)")


def test_a_fifo_among_the_records_is_skipped_unopened(tmp_path, capsys):
    os.mkfifo(tmp_path / "records-fifo.jsonl")
    write_records(tmp_path / "records.jsonl", record())
    found = []
    worker = threading.Thread(target=lambda: found.append(records.read_records(str(tmp_path))), daemon=True)
    worker.start()
    worker.join(10)
    assert len(found) == 1 and len(found[0]) == 1
    assert warnings(capsys) == [f"warning: {tmp_path}/records-fifo.jsonl: not a regular file (a FIFO), "
                                "not a records file; skipping it"]


MEASURE = """
import sys
from study import records, results
folder = sys.argv[1]
found = records.read_records(folder, quiet=True)
results.write_reports(found, folder, folder + "/R.md", 3)
# The peak of this process alone (ru_maxrss would count the parent's memory at the fork).
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")).split()[1]
print(len(found), int(peak) * 1024)
"""


def peak_of_a_merge(folder):
    done = subprocess.run([sys.executable, "-c", MEASURE, str(folder)], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    trials, peak = done.stdout.split()
    return int(trials), int(peak)


def merges_of_45_mb(folder, npz):
    """45 MB of records like the committed ones, each its own trial: a seed of every row of Tables 1.3.2
    and 1.5.1 (20 epochs of loss and accuracy), and of the budget study's longer runs (200 or 40 epochs
    of four metrics); merged in a fresh process, and no records merged in another (a case,
    tests/background.py: the records take seconds to write and to merge). ``(lines, file size,
    baseline peak, (trials, peak))``."""
    empty, full = folder / "empty", folder / "full"
    empty.mkdir()
    full.mkdir()
    curve = [round(0.9 + 0.0004 * e, 5) for e in range(200)]
    lines = []
    for (table_id, number) in [("1.3.2", n) for n in range(1, 19)] + [("1.5.1", n) for n in range(1, 5)]:
        short = json.dumps(record(table_id, number, epochs=20, smoke=False, seed="SEED",
                                  history={"accuracy": curve[:20], "loss": curve[:20]}))
        lines += [short.replace('"SEED"', str(seed)) for seed in range(records.MAX_SEEDS)]
    for table_id, number in sgd_study.STUDY_ROWS:
        epochs = sgd_study.LONGER[table_id]
        long = json.dumps(record(table_id, number, epochs=epochs, smoke=False, seed="SEED", history={
            name: curve[:epochs] for name in ("accuracy", "loss", "val_accuracy", "val_loss")}))
        lines += [long.replace('"SEED"', str(seed)) for seed in range(records.MAX_SEEDS)]
    size = (full / "records.jsonl").write_text("\n".join(lines) + "\n")
    return len(lines), size, peak_of_a_merge(empty)[1], peak_of_a_merge(full)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak from /proc (Linux)")
@background.fresh(merges_of_45_mb)
def test_a_merge_holds_less_than_the_records_it_reads():
    """A merge's peak memory grows by less than twice the records' size (by about as much as the
    file); read whole, as before, it grew by seven times the file."""
    lines, size, baseline, (trials, peak) = background.result(merges_of_45_mb)
    assert size > 45e6
    assert trials == lines == 28 * records.MAX_SEEDS
    assert peak - baseline < 2 * size, (peak - baseline) / size


# --- histories the reports cannot use ---------------------------------------------------------------


def study_record(seed, history):
    """A run of the budget study's longer budget (Table 1.3.2 row 4, 200 epochs, the book's batch)."""
    return record("1.3.2", 4, seed, epochs=200, smoke=False, train_accuracy=0.999, test_accuracy=0.98, history=history)


UNUSABLE = {
    "uneven": {"accuracy": [0.99] * 200, "val_accuracy": [0.98] * 150},
    "no accuracy": {"val_accuracy": [0.98] * 200, "loss": [0.1] * 200},
    "null accuracy": {"accuracy": [0.99] * 199 + [None], "val_accuracy": [0.98] * 200},
    "shorter than its epochs": {"accuracy": [0.99] * 3, "val_accuracy": [0.98] * 3},
    "accuracy above 1": {"accuracy": [0.99] * 199 + [7.0], "val_accuracy": [0.98] * 200},
}


def test_records_whose_history_cannot_be_read_count_and_are_left_out_of_what_needs_one(tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    unusable = [study_record(seed, history) for seed, history in enumerate(UNUSABLE.values())]
    full = {"accuracy": [0.99] * 200, "val_accuracy": [0.98] * 200, "loss": [0.1] * 199 + [None]}
    book = record("1.3.2", 4, 0, epochs=20, smoke=False, history={"accuracy": [0.9] * 19 + [None]},
                  versions="not a mapping", device=7)
    write_records(folder / "records.jsonl", *unusable, study_record(9, full), book)
    found = records.read_records(str(folder))
    assert len(found) == len(UNUSABLE) + 2 and not warnings(capsys)
    assert sum("history" in r for r in found.values()) == 1
    text = results.write_reports(found, str(folder), str(tmp_path / "R.md"), 3, figure=str(tmp_path / "f.png"))
    study = sgd_study.budget_study(found)[("1.3.2", 4)]
    assert study["lines"][1]["n"] == len(UNUSABLE) + 1 and len(study["curves"]) == 1  # all counted, one curve
    assert "Keras backend tensorflow on an unrecorded device (): 1 run" in text
    with open(folder / "table-1.3.2.csv") as f:
        row4 = list(csv.DictReader(f))[3]
    assert row4["n"] == "1" and row4["last_epoch_gain_n"] == "0"
    assert os.path.getsize(tmp_path / "f.png") > 10_000


def test_what_the_reports_keep_of_a_record():
    kept = records.for_reports(record(history={"accuracy": [0.5, 0.75], "val_accuracy": [0.5, 0.5],
                                               "loss": [2.0, 1.0]}, epochs=2, cpu_flags=["avx2"]))
    assert sorted(kept) == ["device", "epochs", "fit_seconds", "history", "params", "test_accuracy", "train_accuracy",
                            "versions"]
    assert {name: list(values) for name, values in kept["history"].items()} == {"accuracy": [0.5, 0.75],
                                                                                "val_accuracy": [0.5, 0.5]}
    assert kept["versions"] == {"keras": "3"} and kept["device"] == "CPU: stand-in"
