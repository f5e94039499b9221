"""reproduce.py: one real sweep row, then the bookkeeping with a stand-in trainer (every row, resume,
an interrupted sweep, shards, workers, records keyed by what changes the numbers, a results folder or
flags that cannot be used refused before training), then the reports and the studies on the records."""

import csv
import json
import os
import shutil

import keras
import pytest

import reproduce
from study import records, report, sgd_study
from study.tables import TABLES
from tests.support import ROOT

ROWS = {"1.3.2": 18, "1.4.1": 4, "1.5.1": 4}


def fake_record(trial, *_):
    """What train_trial returns, without training: numbers that depend only on the trial."""
    accuracy = 0.9 + 0.001 * trial.row + 0.0001 * trial.seed
    return {"table": trial.table, "row": trial.row, "seed": trial.seed, "epochs": trial.epochs,
            "batch_size": trial.batch_size, "smoke": trial.smoke, "learning_rate": trial.learning_rate,
            "backend": trial.backend, "precision": trial.precision, "params": 1, "train_accuracy": accuracy,
            "test_accuracy": accuracy, "fit_seconds": 1.0, "history": {"accuracy": [accuracy]},
            "device": "CPU: stand-in", "versions": {"keras": keras.__version__}}


@pytest.fixture()
def stand_in(monkeypatch):
    monkeypatch.setattr(reproduce, "train_trial", fake_record)


def argv_for(folder, *extra):
    return ["--smoke", "--seeds", "1", "--results-dir", str(folder), "--report", str(folder / "R.md"), *extra]


@pytest.mark.backend
def test_a_real_sweep_row_is_its_listing(smoke_runs, mnist_npz, tmp_path):
    """Table 1.3.2 row 16 is Listing 1.3.2: the sweep's trial gives exactly the script's numbers."""
    reproduce.main(argv_for(tmp_path, "--data", mnist_npz, "--table", "1.3.2", "--row", "16"))
    record = json.loads((tmp_path / "records.jsonl").read_text())
    script = smoke_runs("mlp_mnist").results  # python mlp_mnist.py --smoke, seed 0 as the sweep's
    assert record["test_accuracy"] == script["test_accuracy"] and record["params"] == 269_322
    assert record["history"]["accuracy"][-1] == pytest.approx(script["train_accuracy"], abs=1e-5)
    assert record["backend"] == keras.backend.backend() and record["versions"]["keras"] == keras.__version__


def test_smoke_fills_every_row_and_a_rerun_skips_what_is_recorded(stand_in, tmp_path, capsys):
    text = reproduce.main(argv_for(tmp_path))
    for table_id, count in ROWS.items():
        with open(tmp_path / f"table-{table_id}-smoke.csv") as f:
            assert [int(r["row"]) for r in csv.DictReader(f)] == list(range(1, count + 1))
        assert f"## Table {table_id}" in text
    assert (tmp_path / "R.md").read_text() == text
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == 26
    capsys.readouterr()
    assert reproduce.main(argv_for(tmp_path)) == text
    assert "0 trials to run (26 already recorded)" in capsys.readouterr().out


def test_smoke_never_touches_the_committed_results(stand_in, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reproduce.main(["--smoke", "--seeds", "1", "--table", "1.4.1"])
    assert sorted(os.listdir(tmp_path)) == ["outputs"]  # no RESULTS.md, no results/
    assert sorted(os.listdir(tmp_path / "outputs" / "reproduce-smoke"))[:2] == ["RESULTS.md", "records.jsonl"]


def test_a_record_cut_short_runs_its_trial_again(stand_in, tmp_path, capsys):
    argv = argv_for(tmp_path, "--table", "1.4.1")
    reproduce.main(argv)
    path = tmp_path / "records.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2]) + lines[2][: len(lines[2]) // 2])  # as a kill mid-write would leave it
    capsys.readouterr()
    reproduce.main(argv)
    out = capsys.readouterr()
    assert "2 trials to run (2 already recorded)" in out.out
    assert f"{path}:3: skipping an unreadable record (not a whole JSON line (cut short?))" in out.err
    assert len(records.read_records(str(tmp_path))) == 4


def test_an_interrupted_sweep_keeps_every_finished_trial(tmp_path, monkeypatch, capsys):
    """Ctrl-C during the third trial: the two finished are on disk, whole, and the next sweep runs the rest."""
    def interrupted_on_the_third(trial, *_):
        if trial.row == 3:
            raise KeyboardInterrupt
        return fake_record(trial)

    monkeypatch.setattr(reproduce, "train_trial", interrupted_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        reproduce.main(argv_for(tmp_path, "--table", "1.4.1"))
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    assert [json.loads(line)["row"] for line in lines] == [1, 2]
    monkeypatch.setattr(reproduce, "train_trial", fake_record)
    capsys.readouterr()
    reproduce.main(argv_for(tmp_path, "--table", "1.4.1"))
    assert "2 trials to run (2 already recorded)" in capsys.readouterr().out


def test_records_are_keyed_by_backend_precision_and_budget(stand_in, tmp_path, monkeypatch, capsys):
    reproduce.main(argv_for(tmp_path, "--table", "1.5.1"))
    monkeypatch.setattr(reproduce.keras.backend, "backend", lambda: "jax")
    capsys.readouterr()
    text = reproduce.main(argv_for(tmp_path, "--table", "1.5.1"))
    assert "4 trials to run (0 already recorded)" in capsys.readouterr().out
    assert "## Table 1.5.1: SimpleRNN configurations (rnn_mnist.py, 1 epochs, batch 128, jax float32)" in text
    assert (tmp_path / "table-1.5.1-jax-float32-smoke.md").exists()
    reproduce.main(argv_for(tmp_path, "--table", "1.5.1", "--precision", "bfloat16"))
    text = reproduce.main(argv_for(tmp_path, "--table", "1.5.1", "--row", "1", "--learning-rate", "0.1",
                                   "--batch-size", "32"))
    assert "## Other budgets" in text and "batch 32, learning rate 0.1" in text
    assert {(t.backend, t.precision, t.batch_size) for t in records.read_records(str(tmp_path))} == {
        ("tensorflow", "float32", 128), ("jax", "float32", 128), ("jax", "bfloat16", 128), ("jax", "float32", 32)}


def test_shards_split_the_plan_disjointly_and_completely():
    for count in (1, 2, 3, 7):
        shares = [reproduce.plan(reproduce.parse_args(["--shard", f"{i}/{count}", "--seeds", "3"])) for i in range(count)]
        trials = [t for share in shares for t in share]
        assert len(trials) == len(set(trials)) == 3 * 26


def test_shards_merge_to_the_same_table(stand_in, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    reproduce.main(argv_for(whole, "--table", "1.4.1"))
    for index in range(3):
        reproduce.main(argv_for(parts, "--table", "1.4.1", "--shard", f"{index}/3"))
    assert sorted(p.name for p in parts.glob("records*.jsonl")) == [f"records-shard-{i}of3.jsonl" for i in range(3)]
    text = reproduce.main(argv_for(parts, "--merge"))
    assert all(f"## Table {t}" in text for t in ROWS)  # a one-table run still reports all three
    assert (parts / "table-1.4.1-smoke.csv").read_text() == (whole / "table-1.4.1-smoke.csv").read_text()


class InProcessPool:
    """The worker pool, run in this process (the stand-in trainer does not travel to a spawned worker)."""

    shares = []

    def __init__(self, workers):
        self.workers = workers

    def starmap(self, function, jobs):
        InProcessPool.shares = [[(t.row, t.seed) for t in job[0]] for job in jobs]
        return [function(*job) for job in jobs]

    def terminate(self):
        pass

    join = terminate


def test_workers_run_each_trial_left_once(stand_in, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reproduce, "start_pool", InProcessPool)
    monkeypatch.setattr(reproduce.os, "cpu_count", lambda: 8)
    reproduce.main(argv_for(tmp_path, "--table", "1.4.1", "--row", "1"))  # recorded before: not run again
    capsys.readouterr()
    reproduce.main(argv_for(tmp_path, "--table", "1.4.1", "--seeds", "2", "--workers", "3"))
    assert "7 trials to run (1 already recorded) in 3 process(es)" in capsys.readouterr().out
    assert InProcessPool.shares == [[(2, 0), (1, 1), (4, 1)], [(3, 0), (2, 1)], [(4, 0), (3, 1)]]
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    assert sorted((json.loads(r)["row"], json.loads(r)["seed"]) for r in lines) == [
        (row, seed) for row in range(1, 5) for seed in range(2)]


def refuse_training(*_):
    raise AssertionError("trained despite a results folder that cannot be used")


@pytest.mark.parametrize("kind", ["link", "folder", "backend"])
def test_what_a_sweep_cannot_record_is_refused_before_training(kind, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reproduce, "train_trial", refuse_training)
    (tmp_path / "elsewhere.jsonl").write_text("")
    if kind == "link":
        (tmp_path / "records.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    elif kind == "folder":
        (tmp_path / "records.jsonl").mkdir()
    else:
        monkeypatch.setattr(reproduce.keras.backend, "backend", lambda: "numpy")
    with pytest.raises(SystemExit) as exit_:
        reproduce.main(argv_for(tmp_path, "--table", "1.4.1"))
    err = capsys.readouterr().err.strip().splitlines()
    message = {"link": f"{tmp_path}/records.jsonl: a symbolic link; records are not written through one",
               "folder": f"{tmp_path}/records.jsonl: a folder, not a records file",
               "backend": "Keras backend numpy: sweeps run on tensorflow, jax, torch"}[kind]
    assert exit_.value.code == 2 and err[-1].endswith(f": error: {message}"), err
    assert (tmp_path / "elsewhere.jsonl").read_text() == ""


@pytest.mark.parametrize("argv, message", [
    (["--shard", "3/3"], "argument --shard: expected i/n with 0 <= i < n <= 10,000, got '3/3'"),
    (["--shard", "x"], "argument --shard: expected i/n"),
    (["--shard", "0/" + "9" * 300], "argument --shard: expected i/n with 0 <= i < n <= 10,000, got '0/" + "9" * 28 + "'"),
    (["--table", "9.9"], "argument --table: invalid choice"),
    (["--seeds", "0"], "argument --seeds: must be at least 1"),
    (["--seeds", "1001"], "argument --seeds: at most 1,000, got 1,001"),
    (["--table", "1.4.1", "--row", "5"], "argument --row: Table 1.4.1 has 4 rows, not 5"),
    (["--learning-rate", "nan"], "argument --learning-rate: expected a number above 0"),
    (["--batch-size", str(10**20)], "argument --batch-size: at most the 60,000 training images, got 100,000,000,"),
    (["--smoke", "--batch-size", "6001"], "argument --batch-size: at most the 6,000 training images of --smoke"),
    (["--report", "/no/such/folder/R.md"], "--report /no/such/folder/R.md: no folder /no/such/folder"),
])
def test_bad_flags_are_one_line_before_any_training(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        reproduce.main(["--results-dir", str(tmp_path)] + argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and message in err[0], err


def test_table_cells_are_mean_and_sample_std_and_one_seed_shows_no_spread():
    """The statistics behind a row: mean ± sample std over seeds; one seed is shown bare."""
    table = TABLES["1.4.1"]

    def record(row, seed, test):
        return {"table": "1.4.1", "row": row, "seed": seed, "epochs": table.epochs, "batch_size": 128,
                "smoke": False, "test_accuracy": test, "train_accuracy": 0.99, "fit_seconds": 1.0, "params": 1}

    found = [record(1, 0, 0.97), record(1, 1, 0.98), record(1, 2, 0.99), record(2, 0, 0.9925)]
    found[1]["history"] = {"accuracy": [0.9, 0.95, 0.96]}  # still learning: +1 point in the last epoch
    found[2]["history"] = {"accuracy": [0.9, 0.96, 0.98]}  # +2 points
    rows = report.summarize(table, {records.trial_of(r): r for r in found}, report.book_budget(table))
    assert rows[0]["last_epoch_gain"] == pytest.approx(1.5) and rows[0]["last_epoch_gain_n"] == 2
    assert rows[1]["last_epoch_gain"] is None and rows[1]["last_epoch_gain_n"] == 0
    assert rows[0]["n"] == 3 and rows[0]["test_mean"] == pytest.approx(98.0) and rows[0]["test_std"] == pytest.approx(1.0)
    assert rows[0]["off"] == (abs(98.0 - table.rows[0].book_test) > report.OFF_BY)
    assert rows[1]["n"] == 1 and rows[1]["test_std"] is None and rows[2]["n"] == 0
    lines = report.markdown_table(table, rows).splitlines()
    assert "| 98.00 ± 1.00 |" in lines[2] and "| 3 |" in lines[2]
    assert "| 99.25 |" in lines[3] and "±" not in lines[3] and "| — |" in lines[4]
    csv_rows = list(csv.DictReader(report.csv_table(table, rows).splitlines()))
    assert csv_rows[0]["test_std"] == "1.0000" and csv_rows[1]["test_std"] == "" and csv_rows[1]["seeds"] == "0"


def test_committed_results_are_generated_from_the_committed_records(tmp_path, monkeypatch):
    """RESULTS.md and results/table-*.{md,csv} are exactly what --merge makes of the records."""
    shutil.copytree(os.path.join(ROOT, "results"), tmp_path / "results",
                    ignore=lambda _, names: [n for n in names if n.startswith("table-")])
    monkeypatch.chdir(tmp_path)  # the report names its sources relative to the repository
    reproduce.main(["--merge"])
    assert (tmp_path / "RESULTS.md").read_text() == open(os.path.join(ROOT, "RESULTS.md")).read()
    for name in os.listdir(tmp_path / "results"):
        if name.startswith("table-"):
            assert (tmp_path / "results" / name).read_text() == open(os.path.join(ROOT, "results", name)).read()


def test_budget_study_reads_the_epoch_a_curve_reaches_the_book(tmp_path):
    """Table 1.3.2 row 4 (book: train 99.93, test 98.0): a longer run that reaches both at epoch 3
    is read as "matches the book at 3 epochs", with its accuracy there; a batch-32 run short of it
    does not match; with seeds that reach it at other epochs, or not at all, the table and the
    conclusion say so."""

    def record(seed, epochs, batch, lr, train, test, history=None):
        return {"table": "1.3.2", "row": 4, "seed": seed, "epochs": epochs, "batch_size": batch, "smoke": False,
                "learning_rate": lr, "test_accuracy": test, "train_accuracy": train, "fit_seconds": 1.0,
                "history": history}

    curve = {"accuracy": [0.95, 0.99, 0.9970, 0.9990], "val_accuracy": [0.95, 0.975, 0.9785, 0.98]}
    found = [record(0, 20, 128, None, 0.955, 0.953), record(0, 200, 128, None, 0.999, 0.98, curve),
             record(0, 20, 32, None, 0.985, 0.975)]
    study = sgd_study.budget_study({records.trial_of(r): r for r in found})
    row4 = study[("1.3.2", 4)]
    assert [line["n"] for line in row4["lines"]] == [1, 1, 1, 1, 0]
    assert row4["match_epochs"] == [3] and row4["lines"][1]["epochs"] == "200"
    assert row4["conclusion"] == "matches the book at 3 epochs with plain SGD (learning rate 0.01, batch 128)"
    assert study[("1.3.2", 1)]["conclusion"] == "not tested yet"
    text = sgd_study.section(study)
    assert "| the book (one run, as printed) | — | — | — | 1 | 99.93 | 98.00 |" in text
    assert "| longer, last epoch | 200 | 128 | 0.01 (default) | 1 | 99.90 | 98.00 |" in text
    assert "| longer, first epoch reaching the book | 3 | 128 | 0.01 (default) | 1 | 99.70 | 97.85 |" in text
    assert "| batch 32 (4x the steps) | 20 | 32 | 0.01 (default) | 1 | 98.50 | 97.50 |" in text
    path = sgd_study.figure(study, str(tmp_path / "sgd-budget.png"))
    assert os.path.getsize(path) > 10_000
    # Two more seeds: one reaches the book at epoch 4, one never does.
    late = {"accuracy": [0.95, 0.99, 0.9950, 0.9990], "val_accuracy": [0.95, 0.975, 0.98, 0.9790]}
    short = {"accuracy": [0.95, 0.96, 0.97, 0.98], "val_accuracy": [0.95, 0.96, 0.97, 0.975]}
    found += [record(1, 200, 128, None, 0.999, 0.979, late), record(2, 200, 128, None, 0.98, 0.975, short)]
    study = sgd_study.budget_study({records.trial_of(r): r for r in found})
    row4 = study[("1.3.2", 4)]
    assert row4["match_epochs"] == [3, 4, None]
    assert row4["lines"][2]["epochs"] == "4 ± 1 (by seed: 3, 4)" and row4["lines"][2]["n"] == 2
    assert row4["conclusion"] == ("matches the book at 4 ± 1 (by seed: 3, 4) epochs in 2 of 3 seeds with plain SGD "
                                  "(learning rate 0.01, batch 128)")
    # Short of the book everywhere: said so.
    flat = {"accuracy": [0.95, 0.96], "val_accuracy": [0.95, 0.96]}
    found = [found[0], record(0, 200, 128, None, 0.96, 0.96, flat), found[2]]
    study = sgd_study.budget_study({records.trial_of(r): r for r in found})
    assert study[("1.3.2", 4)]["lines"][2]["epochs"] == "none"
    assert study[("1.3.2", 4)]["conclusion"] == ("no tested budget reaches it; closest: batch 32 (4x the steps), "
                                                 "20 epochs (train -1.43, test -0.50 points)")


def test_one_budget_is_the_epochs_every_tested_row_is_at_the_book():
    """The epochs at which every longer curve of Table 1.3.2's tested rows sits within 0.3 points of the
    book (train and test) at once: none until every tested row has a full curve; then the overlap,
    with an epoch where one row strays left out."""
    table = TABLES["1.3.2"]
    tested = [number for table_id, number in sgd_study.STUDY_ROWS if table_id == "1.3.2"]

    def record(number, reach, dip=None):
        row = table.rows[number - 1]
        train = [(row.book_train - (2 if e < reach or e == dip else 0)) / 100 for e in range(1, 201)]
        test = [(row.book_test - (2 if e < reach else 0)) / 100 for e in range(1, 201)]
        return {"table": "1.3.2", "row": number, "seed": 0, "epochs": 200, "batch_size": 128, "smoke": False,
                "learning_rate": None, "test_accuracy": test[-1], "train_accuracy": train[-1], "fit_seconds": 1.0,
                "history": {"accuracy": train, "val_accuracy": test}}

    found = [record(number, reach=100 + 10 * i, dip=180 if i == 0 else None) for i, number in enumerate(tested)]
    partial = sgd_study.budget_study({records.trial_of(r): r for r in found[:-1]})
    assert sgd_study.one_budget(partial, "1.3.2") is None
    study = sgd_study.budget_study({records.trial_of(r): r for r in found})
    last = 100 + 10 * (len(tested) - 1)
    epochs, curves = sgd_study.one_budget(study, "1.3.2")
    assert curves == len(tested) and epochs == [e for e in range(last, 201) if e != 180]
    assert f"at once at epochs {last}-179, 181-200 of 200." in sgd_study.section(study)


def test_the_readmes_reading_of_the_sgd_rows_holds_for_the_committed_records():
    """What README's "Why the book's plain-SGD rows beat the 20-epoch re-run" says in words, checked
    against results/records.jsonl, so that new records cannot leave it untrue."""
    recorded = records.read_records(os.path.join(ROOT, "results"), quiet=True)
    study = sgd_study.budget_study(recorded)
    mlp = {number: found for (table_id, number), found in study.items() if table_id == "1.3.2"}
    for found in mlp.values():  # every tested row's curve reaches the book, in every seed run, after 40 epochs
        assert found["match_epochs"] and None not in found["match_epochs"] and min(found["match_epochs"]) > 2 * 20
    epochs, _ = sgd_study.one_budget(study, "1.3.2")
    assert epochs and epochs[-1] == sgd_study.LONGER["1.3.2"]  # all at once, near the end of the 200
    for number, found in mlp.items():
        row, by = TABLES["1.3.2"].rows[number - 1], {line["setting"]: line for line in found["lines"]}
        line = by["learning rate 0.1"]
        short = (line["train"][0] < row.book_train - report.OFF_BY, line["test"][0] < row.book_test - report.OFF_BY)
        expected = {1: (True, True), 2: (True, False), 6: (True, False)}.get(number, (False, False))
        assert short == expected, (number, short)  # lr 0.1 matches some rows and misses others; batch 32 between
        for key, book in (("train", row.book_train), ("test", row.book_test)):
            assert by["the book's budget"][key][0] < by["batch 32 (4x the steps)"][key][0] < book, (number, key)
    elsewhere = sgd_study.same_optimizer_elsewhere(recorded)  # the RNN's SGD rows match; the CNN's does not
    assert [line.endswith(": within 0.3 points") for line in elsewhere] == [False, True, True]
    cnn = study[("1.4.1", 1)]
    assert cnn["match_epochs"] and min(e for e in cnn["match_epochs"] if e) > TABLES["1.4.1"].epochs
    assert "goes past the book with learning rate 0.1" in cnn["conclusion"]
    assert "goes past the book with batch 32" in cnn["conclusion"]


def test_the_cnn_studys_figures_go_beside_any_report(tmp_path):
    """A sweep of the CNN study alone, reported elsewhere (--report other/R.md): its figures are written
    under other/docs/figures/, made for them, as RESULTS.md's are under docs/figures/."""
    (tmp_path / "results").mkdir()
    with open(os.path.join(ROOT, "results", "records.jsonl")) as f:
        study = [line for line in f if json.loads(line)["table"] == "cnn-variants"]
    (tmp_path / "results" / "records.jsonl").write_text("".join(study))
    (tmp_path / "other").mkdir()
    report = tmp_path / "other" / "R.md"
    reproduce.main(["--merge", "--results-dir", str(tmp_path / "results"), "--report", str(report)])
    assert sorted(os.listdir(tmp_path / "other" / "docs" / "figures")) == ["cnn-against-mlp.png", "cnn-learning-rates.png"]
    assert "![train and test accuracy per epoch at each learning rate](docs/figures/cnn-learning-rates.png)" in \
        report.read_text()
