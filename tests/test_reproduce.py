"""reproduce.py: every row of the three tables in smoke mode, resume, shards and merge."""

import csv
import json
import os

import pytest

import reproduce

ROWS = {"1.3.2": 18, "1.4.1": 4, "1.5.1": 4}


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory, mnist_npz):
    """All 26 rows, one seed, one tiny epoch each: run once for the module."""
    folder = tmp_path_factory.mktemp("sweep")
    argv = ["--smoke", "--seeds", "1", "--data", mnist_npz, "--results-dir", str(folder / "results"),
            "--report", str(folder / "RESULTS.md")]
    report = reproduce.main(argv)
    return folder, argv, report


def test_smoke_fills_every_row_of_every_table(smoke_sweep):
    folder, _, report = smoke_sweep
    assert sorted(ROWS) == sorted(reproduce.TABLES)
    for table_id, count in ROWS.items():
        assert len(reproduce.TABLES[table_id].rows) == count
        with open(folder / "results" / f"table-{table_id}-smoke.csv") as f:
            rows = list(csv.DictReader(f))
        assert [int(r["row"]) for r in rows] == list(range(1, count + 1))
        for r in rows:
            assert r["n"] == "1" and 10 < float(r["test_mean"]) <= 100 and float(r["book_test"]) > 90
            assert abs(float(r["test_diff"]) - (float(r["test_mean"]) - float(r["book_test"]))) < 1e-3
            assert r["off"] in ("True", "False")
        markdown = (folder / "results" / f"table-{table_id}-smoke.md").read_text().strip().splitlines()
        assert len(markdown) == 2 + count and all(line.startswith("|") for line in markdown)
        assert f"## Table {table_id}" in report
    assert (folder / "RESULTS.md").read_text() == report
    records = [json.loads(line) for line in open(folder / "results" / "records-smoke.jsonl")]
    assert len(records) == 26 and len({r["key"] for r in records}) == 26


def test_listing_rows_are_the_listings(smoke_sweep):
    """Table rows that are the book's scripts build the scripts' exact models."""
    folder, _, _ = smoke_sweep
    records = {(r["table"], r["row"]): r for r in map(json.loads, open(folder / "results" / "records-smoke.jsonl"))}
    assert records[("1.3.2", 16)]["params"] == 269_322  # Adam, Dropout(0.45): Listing 1.3.2
    assert records[("1.4.1", 3)]["params"] == 80_266  # Adam, Dropout(0.2): Listing 1.4.1
    assert records[("1.5.1", 1)]["params"] == 75_530  # SGD, 256 units: Listing 1.5.1
    assert records[("1.3.2", 12)]["params"] == 784 * 512 + 512 + 512 * 1024 + 1024 + 1024 * 10 + 10


def test_rerun_skips_what_is_recorded(smoke_sweep, capsys, monkeypatch):
    folder, argv, report = smoke_sweep
    monkeypatch.setattr(reproduce, "run_trial", lambda job: pytest.fail(f"re-ran {job[:3]}"))
    assert reproduce.main(argv) == report
    assert "0 trials to run (26 already recorded)" in capsys.readouterr().out


def test_interrupted_sweep_resumes(tmp_path, mnist_npz, capsys):
    argv = ["--smoke", "--seeds", "1", "--table", "1.4.1", "--data", mnist_npz,
            "--results-dir", str(tmp_path), "--report", str(tmp_path / "R.md")]
    reproduce.main(argv)
    path = tmp_path / "records-smoke.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    # Keep two finished runs and half of a third line, as a kill mid-write would.
    path.write_text("".join(lines[:2]) + lines[2][: len(lines[2]) // 2])
    capsys.readouterr()
    reproduce.main(argv)
    out = capsys.readouterr()
    assert "2 trials to run (2 already recorded)" in out.out and "skipping an unreadable record" in out.err
    keys = {json.loads(line)["key"] for line in path.read_text().splitlines() if line.endswith("}")}
    assert len(keys) == 4


def test_shards_cover_every_trial_once():
    for count in (1, 2, 3, 5, 7):
        trials = []
        for index in range(count):
            args = reproduce.parse_args(["--shard", f"{index}/{count}", "--seeds", "3"])
            trials += reproduce.plan(args)
        assert len(trials) == 3 * 26 and len(set(trials)) == 3 * 26


def test_shards_merge_to_the_same_table(smoke_sweep, tmp_path, mnist_npz):
    folder, _, _ = smoke_sweep
    common = ["--smoke", "--seeds", "1", "--table", "1.4.1", "--data", mnist_npz,
              "--results-dir", str(tmp_path), "--report", str(tmp_path / "R.md")]
    for index in range(3):
        reproduce.main(common + ["--shard", f"{index}/3"])
    assert sorted(p.name for p in tmp_path.glob("records*.jsonl")) == [
        "records-smoke-shard-0of3.jsonl", "records-smoke-shard-1of3.jsonl", "records-smoke-shard-2of3.jsonl"]
    report = reproduce.main(common + ["--merge"])
    assert all(f"## Table {t}" in report for t in ROWS)  # a one-table run still reports all three
    assert accuracies(tmp_path / "table-1.4.1-smoke.csv") == accuracies(folder / "results" / "table-1.4.1-smoke.csv")


def test_workers_give_the_same_numbers(smoke_sweep, tmp_path, mnist_npz):
    folder, _, _ = smoke_sweep
    reproduce.main(["--smoke", "--seeds", "1", "--table", "1.5.1", "--workers", "2", "--data", mnist_npz,
                    "--results-dir", str(tmp_path), "--report", str(tmp_path / "R.md")])
    assert accuracies(tmp_path / "table-1.5.1-smoke.csv") == accuracies(folder / "results" / "table-1.5.1-smoke.csv")


def accuracies(path):
    """A table's rows without their timing (which differs run to run)."""
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "seconds_mean"} for row in csv.DictReader(f)]


@pytest.mark.parametrize("argv, message", [
    (["--shard", "3/3"], "argument --shard: expected 0 <= i < n"),
    (["--shard", "x"], "argument --shard: expected i/n"),
    (["--table", "9.9"], "argument --table: invalid choice"),
    (["--seeds", "0"], "argument --seeds: must be at least 1"),
])
def test_bad_flags(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        reproduce.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_book_numbers_are_the_chapters():
    book = {(t, i): (r.book_train, r.book_test) for t, table in reproduce.TABLES.items()
            for i, r in enumerate(table.rows, 1)}
    assert book[("1.3.2", 1)] == (93.65, 92.5) and book[("1.3.2", 18)] == (98.70, 97.7)
    assert book[("1.4.1", 3)] == (99.75, 99.40) and book[("1.5.1", 4)] == (97.88, 98.30)
    mlp = reproduce.TABLES["1.3.2"].rows
    assert mlp[0].build == {"hidden_units": (256, 256), "activation": "linear", "dropout": 0.0}
    assert mlp[1].build == {"hidden_units": (256, 256), "activation": "relu", "dropout": 0.0, "l2_weight": 0.001}
    assert mlp[8].build["hidden_units"] == (256, 512) and mlp[12].build["hidden_units"] == (1024, 1024)


def test_table_cells_are_mean_and_sample_std_and_one_seed_shows_no_spread():
    """The statistics behind a row: mean ± sample std over seeds; one seed is shown bare."""
    args = reproduce.parse_args(["--table", "1.4.1"])
    table = reproduce.TABLES["1.4.1"]

    def record(row, seed, test):
        return {"key": f"{row}|{seed}", "table": "1.4.1", "row": row, "seed": seed, "epochs": table.epochs,
                "batch_size": args.batch_size, "smoke": False, "test_accuracy": test,
                "train_accuracy": 0.99, "fit_seconds": 1.0}

    records = [record(1, 0, 0.97), record(1, 1, 0.98), record(1, 2, 0.99), record(2, 0, 0.9925)]
    records[1]["history"] = {"accuracy": [0.9, 0.95, 0.96]}  # still learning: +1 point in the last epoch
    records[2]["history"] = {"accuracy": [0.9, 0.96, 0.98]}  # +2 points
    rows = reproduce.summarize(table, {r["key"]: r for r in records}, args)
    assert rows[0]["last_epoch_gain"] == pytest.approx(1.5) and rows[0]["last_epoch_gain_n"] == 2
    assert rows[1]["last_epoch_gain"] is None and rows[1]["last_epoch_gain_n"] == 0
    assert rows[0]["n"] == 3 and rows[0]["test_mean"] == pytest.approx(98.0)
    assert rows[0]["test_std"] == pytest.approx(1.0)  # sample std (n - 1), not population
    assert rows[0]["off"] == (abs(98.0 - table.rows[0].book_test) > reproduce.OFF_BY)
    assert rows[1]["n"] == 1 and rows[1]["test_std"] is None and rows[2]["n"] == 0
    lines = reproduce.markdown_table(table, rows).splitlines()
    assert "| 98.00 ± 1.00 |" in lines[2] and "| 3 |" in lines[2]
    assert "| 99.25 |" in lines[3] and "±" not in lines[3]
    assert "| — |" in lines[4]
    csv_rows = list(csv.DictReader(reproduce.csv_table(table, rows).splitlines()))
    assert csv_rows[0]["test_std"] == "1.0000" and csv_rows[1]["test_std"] == "" and csv_rows[1]["seeds"] == "0"


def test_committed_results_are_generated_from_the_committed_records(tmp_path, monkeypatch):
    """RESULTS.md and results/table-*.{md,csv} are exactly what --merge makes of the records."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    (tmp_path / "results").mkdir()
    for name in os.listdir(os.path.join(root, "results")):
        if name.startswith("records") and name.endswith(".jsonl") or name == "discussion.md":
            (tmp_path / "results" / name).write_bytes(open(os.path.join(root, "results", name), "rb").read())
    monkeypatch.chdir(tmp_path)  # the report names its sources relative to the repository
    reproduce.main(["--merge"])
    assert (tmp_path / "RESULTS.md").read_text() == open(os.path.join(root, "RESULTS.md")).read()
    for table_id in ROWS:
        for ext in ("md", "csv"):
            name = f"table-{table_id}.{ext}"
            assert (tmp_path / "results" / name).read_text() == open(os.path.join(root, "results", name)).read()
