"""reproduce.py's reports: per table the book beside the measured mean ± std, and RESULTS.md.

The tables are always the book's budget (each table's epochs, batch 128, Keras' default
learning rate), one set per Keras backend and precision on record; records of other budgets
are listed apart ("Other budgets"). Nothing here imports Keras.
"""

import csv
import io
import os
import statistics

from ch1 import outputs
from ch1.tables import TABLES

OFF_BY = 0.3  # a row is marked when its mean test accuracy is more than this many points from the book's
BATCH_SIZE = 128  # the book's batch size for every row


def book_budget(table, smoke=False, backend="tensorflow", precision="float32"):
    """The setting the book's table was trained with (smoke: one tiny epoch)."""
    return {"epochs": 1 if smoke else table.epochs, "batch_size": BATCH_SIZE, "smoke": smoke,
            "learning_rate": None, "backend": backend, "precision": precision}


def _matches(trial, table_id, budget):
    return trial.table == table_id and all(getattr(trial, k) == v for k, v in budget.items())


def summarize(table, records, budget):
    """One dict per row: the book's numbers and the measured ones (percent) under ``budget``."""
    rows = []
    for number, row in enumerate(table.rows, 1):
        runs = sorted(((t, r) for t, r in records.items() if t.row == number and _matches(t, table.id, budget)),
                      key=lambda tr: tr[0].seed)
        test = [100 * r["test_accuracy"] for _, r in runs]
        train = [100 * r["train_accuracy"] for _, r in runs]
        summary = {"row": number, **row.columns, "book_train": row.book_train, "book_test": row.book_test,
                   "n": len(runs), "seeds": [t.seed for t, _ in runs],
                   "train_mean": _mean(train), "train_std": _std(train),
                   "test_mean": _mean(test), "test_std": _std(test),
                   "seconds_mean": _mean([r["fit_seconds"] for _, r in runs])}
        # How fast a row was still learning when training stopped: the last epoch's rise in training
        # accuracy (points), over the runs whose records keep their per-epoch history.
        gains = [100 * (acc[-1] - acc[-2]) for acc in ((r.get("history") or {}).get("accuracy", []) for _, r in runs)
                 if len(acc) > 1]
        summary["last_epoch_gain"], summary["last_epoch_gain_n"] = _mean(gains), len(gains)
        summary["test_diff"] = None if summary["test_mean"] is None else summary["test_mean"] - row.book_test
        summary["off"] = summary["test_diff"] is not None and abs(summary["test_diff"]) > OFF_BY
        rows.append(summary)
    return rows


def _mean(values):
    return statistics.fmean(values) if values else None


def _std(values):
    # A spread needs two runs: with one seed there is none to report (not a spread of zero).
    return statistics.stdev(values) if len(values) > 1 else None


def _still_learning(r):
    if not r["last_epoch_gain_n"]:
        return ""
    return (f"; training accuracy rose {r['last_epoch_gain']:+.2f} points in the last epoch "
            f"(mean of {r['last_epoch_gain_n']} run{'s' * (r['last_epoch_gain_n'] != 1)} with history)")


def markdown_table(table, rows):
    config = list(table.rows[0].columns)
    head = ["#", *config, "book train %", "book test %", "train % (mean ± std)", "test % (mean ± std)",
            "n", "test − book", f"off by > {OFF_BY}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        diff = "—" if r["test_diff"] is None else f"{r['test_diff']:+.2f}"
        cells = [r["row"], *(r[c] for c in config), f"{r['book_train']:.2f}", f"{r['book_test']:.2f}",
                 outputs.mean_std(r["train_mean"], r["train_std"]), outputs.mean_std(r["test_mean"], r["test_std"]),
                 r["n"], diff, "**yes**" if r["off"] else ""]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def csv_table(table, rows):
    config = list(table.rows[0].columns)
    fields = ["row", *config, "book_train", "book_test", "train_mean", "train_std", "test_mean", "test_std",
              "n", "seeds", "test_diff", "off", "seconds_mean", "last_epoch_gain", "last_epoch_gain_n"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, "seeds": " ".join(map(str, r["seeds"])),
                         **{k: "" if r[k] is None else f"{r[k]:.4f}" for k in
                            ("train_mean", "train_std", "test_mean", "test_std", "test_diff", "seconds_mean",
                             "last_epoch_gain")}})
    return buffer.getvalue()


def environments(table_id, records, budget):
    """Where a table's runs ran: 'backend on device (versions): n runs'."""
    counts = {}
    for trial, r in records.items():
        if _matches(trial, table_id, budget):
            versions = ", ".join(f"{k} {v}" for k, v in (r.get("versions") or {}).items())
            where = f"Keras backend {trial.backend} on {r.get('device', 'an unrecorded device')} ({versions})"
            counts[where] = counts.get(where, 0) + 1
    return [f"{where}: {n} run{'s' * (n != 1)}" for where, n in sorted(counts.items())]


def groups(records, smoke):
    """The (backend, precision) pairs on record, TensorFlow float32 (the default) first."""
    found = {(t.backend, t.precision) for t in records if t.smoke == smoke}
    found.add(("tensorflow", "float32"))
    return sorted(found, key=lambda g: (g != ("tensorflow", "float32"), g))


def other_budgets(records, smoke):
    """Records of budgets other than the book's (e.g. more epochs, another batch size), grouped per
    row and setting: a Markdown list, or '' when there are none."""
    found = {}
    for trial, r in records.items():
        table = TABLES[trial.table]
        if trial.smoke != smoke or _matches(trial, trial.table, book_budget(table, smoke, trial.backend,
                                                                              trial.precision)):
            continue
        key = (trial.table, trial.row, trial.epochs, trial.batch_size, trial.learning_rate, trial.backend,
               trial.precision)
        found.setdefault(key, []).append(r)
    lines = []
    for (table_id, number, epochs, batch, lr, backend, precision), runs in sorted(
            found.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        row = TABLES[table_id].rows[number - 1]
        test = [100 * r["test_accuracy"] for r in runs]
        train = [100 * r["train_accuracy"] for r in runs]
        lr_text = "default learning rate" if lr is None else f"learning rate {lr:g}"
        lines.append(f"- Table {table_id} row {number} ({row.label}), {epochs} epochs, batch {batch}, {lr_text}, "
                     f"{backend} {precision}: test {outputs.mean_std(_mean(test), _std(test))} %, train "
                     f"{outputs.mean_std(_mean(train), _std(train))} % (n={len(runs)}; book: test {row.book_test:.2f}, "
                     f"train {row.book_train:.2f})")
    return "\n".join(lines)


def write_text(path, text):
    with outputs.atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def write_reports(records, results_dir, report_path, seeds, smoke=False, command="python reproduce.py --merge"):
    """Per table a Markdown table and a CSV under ``results_dir``, and the report ``report_path``.

    The report covers every table, whichever ones a command trained, so that a sweep of one
    table never drops the others. Returns the report's text.
    """
    sections, off = [], []
    for backend, precision in groups(records, smoke):
        default = (backend, precision) == ("tensorflow", "float32")
        for table_id in sorted(TABLES):
            table = TABLES[table_id]
            budget = book_budget(table, smoke, backend, precision)
            rows = summarize(table, records, budget)
            where_label = "" if default else f", {backend} {precision}"
            off += [f"- Table {table_id} row {r['row']} ({table.rows[r['row'] - 1].label}{where_label}): "
                    f"measured test {outputs.mean_std(r['test_mean'], r['test_std'])} % (n={r['n']}) against the "
                    f"book's {r['book_test']:.2f} % ({r['test_diff']:+.2f} points)" + _still_learning(r)
                    for r in rows if r["off"]]
            suffix = ("" if default else f"-{backend}-{precision}") + ("-smoke" if smoke else "")
            write_text(os.path.join(results_dir, f"table-{table_id}{suffix}.md"), markdown_table(table, rows))
            write_text(os.path.join(results_dir, f"table-{table_id}{suffix}.csv"), csv_table(table, rows))
            done = sum(r["n"] for r in rows)
            where = "\n".join(f"- {line}" for line in environments(table_id, records, budget)) or "- no runs yet"
            sections.append(
                f"## Table {table_id}: {table.title} ({table.listing}.py, {budget['epochs']} epochs, "
                f"batch {BATCH_SIZE}{where_label})\n\n"
                f"{done} of {len(rows) * seeds} runs ({len(rows)} rows x {seeds} seeds) are recorded. "
                f"Measured numbers are the mean ± sample std over the n seeds recorded for the row "
                f"(a row with one seed shows its single run, with no spread); "
                f"train % is the accuracy Keras reports for the last epoch (dropout active). "
                f"Rows marked in the last column differ from the book's test accuracy by more than {OFF_BY} points.\n\n"
                f"{markdown_table(table, rows)}\nRan on:\n{where}\n"
            )
    sections.append(f"## Rows more than {OFF_BY} points from the book\n\n" + ("\n".join(off) or "None so far.") + "\n")
    others = other_budgets(records, smoke)
    if others:
        sections.append("## Other budgets\n\nRuns recorded with settings other than the book's "
                        "(not in the tables above):\n\n" + others + "\n")
    discussion_path = os.path.join(results_dir, "discussion.md")
    discussion = ""
    if os.path.isfile(discussion_path):
        with open(discussion_path) as f:
            discussion = f.read()
    report = (
        "# Chapter 1 tables, re-run\n\n"
        f"Generated by `{command}` from the records in `{results_dir}/records*.jsonl`; "
        "do not edit by hand (the discussion comes from "
        f"`{results_dir}/discussion.md`). Seeds are 0..n-1; how rows of the book were read is in "
        "the README (\"How the tables' rows are read\").\n\n" + "\n".join(sections) + "\n" + discussion
    )
    write_text(report_path, report)
    return report
