"""study.records and the reports made of them, without Keras: a record that cannot be used is skipped
with one warning and its trial runs again; records are appended whole, never through a link; the
reports never crash on what the records hold and write only into their folder."""

import json
import os

import pytest

from study import records, results

GOOD = {"table": "1.4.1", "row": 1, "seed": 0, "epochs": 1, "batch_size": 128, "smoke": True, "learning_rate": None,
        "backend": "tensorflow", "precision": "float32", "test_accuracy": 0.9, "train_accuracy": 0.95,
        "fit_seconds": 1.0, "params": 80_266, "history": {"accuracy": [0.95], "loss": [0.2]}, "device": "CPU: stand-in",
        "versions": {"keras": "3"}}


def line(**changes):
    return json.dumps({**GOOD, "row": 2, **changes}).encode()


BAD = {
    "cut short by a kill": (line()[:40], "not a whole JSON line (cut short?)"),
    "not UTF-8": (b"\xff\xfe{", "not a whole JSON line"),
    "nested too deeply": (b"[" * 100_000, "not a whole JSON line"),
    "not an object": (b"[1, 2, 3]", "not a JSON object"),
    "a missing field": (json.dumps({"table": "1.4.1", "row": 2}).encode(), "no seed"),
    "a string for a number": (line(test_accuracy="0.6"), "test_accuracy is str"),
    "a bool for a number": (line(row=True), "row is bool"),
    "versions not a mapping": (line(versions="3"), "versions is str"),
    "no epochs": (line(epochs=0), "epochs outside 1..1000000000"),
    "NaN accuracy": (line(test_accuracy=float("nan")), "test_accuracy outside 0..1"),
    "a backend that is a path": (line(backend="/../../x"), "backend is not one of tensorflow, jax, torch"),
    "a precision that is a path": (line(precision="../x"), "precision is not one of float32, bfloat16"),
    "a table that is a path": (line(table="../x"), "table is not one of 1.3.2, 1.4.1, 1.5.1, cnn-variants"),
    "a row past the table": (line(row=5), "row outside 1..4 of Table 1.4.1"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_record_that_cannot_be_used_is_skipped_with_one_warning(kind, tmp_path, capsys):
    bad, reason = BAD[kind]
    path = tmp_path / "records.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + bad + b"\n" + line(row=3) + b"\n")
    found = records.read_records(str(tmp_path))
    err = capsys.readouterr().err.strip().splitlines()
    assert sorted(t.row for t in found) == [1, 3]  # the bad line's trial (row 2) runs again
    assert len(err) == 1 and err[0].startswith(f"warning: {path}:2: skipping an unreadable record ({reason}"), err
    assert "/.." not in err[0] and "../" not in err[0]  # the reason quotes none of the record's text


def test_a_records_file_far_too_large_is_skipped_unread(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(records, "MAX_BYTES", 100)
    (tmp_path / "records.jsonl").write_bytes(json.dumps(GOOD).encode() + b"\n")
    assert records.read_records(str(tmp_path)) == {} and "records.jsonl: over 100 bytes" in capsys.readouterr().err


def test_a_history_the_reports_cannot_read_is_left_out_and_the_record_counts(tmp_path, capsys):
    histories = [{"accuracy": [0.5, 0.9], "val_accuracy": [0.5]}, {"loss": [1.0, 0.5]}, {"accuracy": [0.5, None]},
                 {"accuracy": [0.5, 7.0]}, [1], None, {"accuracy": [0.5, 0.9], "val_accuracy": [0.4, 0.8], "loss": [2, 1]}]
    (tmp_path / "records.jsonl").write_text("".join(json.dumps({**GOOD, "seed": seed, "epochs": 2, "history": h}) + "\n"
                                                    for seed, h in enumerate(histories)))
    found = records.read_records(str(tmp_path))
    assert len(found) == len(histories) and not capsys.readouterr().err
    assert [r.get("history") for r in found.values()] == [None] * 6 + [{"accuracy": [0.5, 0.9],
                                                                        "val_accuracy": [0.4, 0.8]}]


def test_old_records_are_tensorflow_float32_at_the_default_learning_rate():
    old = {k: v for k, v in GOOD.items() if k not in ("backend", "precision", "learning_rate", "versions")}
    assert records.check(old) is None
    assert records.trial_of(old) == records.Trial("1.4.1", 1, 0, 1, 128, True, "tensorflow", "float32", None)


@pytest.mark.parametrize("kind", ["link", "folder"])
def test_a_records_file_that_is_a_link_or_a_folder_is_refused(kind, tmp_path):
    path, target = tmp_path / "records.jsonl", tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    path.symlink_to(target) if kind == "link" else path.mkdir()
    message = "a symbolic link; records are not written" if kind == "link" else "a folder, not a records file"
    with pytest.raises(records.RecordsError, match=f"records.jsonl: {message}"):
        records.check_appendable(str(path))
    with pytest.raises(records.RecordsError, match="records.jsonl: cannot append a record"):
        records.append_record(str(path), GOOD)
    assert target.read_text() == "precious\n"
    records.check_appendable(str(tmp_path / "new.jsonl"))  # missing: made by the first append


def test_a_record_after_one_cut_short_stays_on_its_own_line(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_bytes(json.dumps(GOOD).encode()[:40])  # a kill in mid-line
    records.append_record(str(path), {**GOOD, "row": 2})
    assert path.read_bytes().count(b"\n") == 2 and path.read_bytes().endswith(b"}\n")
    assert [t.row for t in records.read_records(str(tmp_path), quiet=True)] == [2]


def every_file(folder):
    return sorted(os.path.relpath(os.path.join(top, name), folder) for top, _, names in os.walk(folder) for name in names)


def test_reports_never_crash_and_write_only_into_their_folder(tmp_path, capsys):
    """Odd but usable records (a device that is a number, another budget, a huge learning rate) and an unreadable
    discussion: the report is written, the discussion left out with one warning, and a link where a
    table goes is replaced, never written through."""
    folder, outside = tmp_path / "results", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (outside / "table-1.4.1-smoke.md").write_text("precious\n")
    (folder / "table-1.4.1-smoke.md").symlink_to(outside / "table-1.4.1-smoke.md")
    (folder / "discussion.md").write_bytes(b"\xff\xfe not UTF-8")
    lines = [GOOD, {**GOOD, "seed": 1, "device": 7},
             {**GOOD, "epochs": 3, "batch_size": 32, "learning_rate": 1e300, "history": None}]
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    before = every_file(tmp_path)
    text = results.write_reports(records.read_records(str(folder)), str(folder), str(folder / "R.md"), 3, smoke=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {folder}/discussion.md: ") and "left out" in err[0], err
    assert "## Other budgets" in text and (folder / "R.md").read_text() == text
    assert set(every_file(tmp_path)) == set(before) | {"results/R.md"} | {
        f"results/table-{t}-smoke.{ext}" for t in ("1.3.2", "1.4.1", "1.5.1") for ext in ("md", "csv")}
    assert not (folder / "table-1.4.1-smoke.md").is_symlink() and (outside / "table-1.4.1-smoke.md").read_text() == \
        "precious\n"


def test_a_discussion_is_copied_into_the_report(tmp_path, capsys):
    (tmp_path / "discussion.md").write_text("## Discussion\n\nThe é is kept.\n")
    text = results.write_reports({}, str(tmp_path), str(tmp_path / "R.md"), 1, smoke=True)
    assert text.endswith("## Discussion\n\nThe é is kept.\n") and not capsys.readouterr().err
