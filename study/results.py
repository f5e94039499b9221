"""RESULTS.md and the per-table files from all of reproduce.py's records (``--merge``): the book's tables
(study.report), one set per Keras backend and precision on record, the rows off the book, the two studies
(study.sgd_study, study.cnn_study), and any other budget's records, apart. Nothing here imports Keras.
"""

import collections
import os

from ch1 import files
from study import cnn_study, sgd_study
from study.records import read_discussion
from study.report import (BATCH_SIZE, OFF_BY, book_budget, csv_table, markdown_table, matches, percent,
                          still_learning, summarize)
from study.stats import mean_std
from study.tables import TABLES


def environments(table_id, records, budget):
    """Where a table's runs ran: 'backend on device (versions): n runs'."""
    counts = collections.Counter(
        f"Keras backend {t.backend} on {r.get('device', 'an unrecorded device')} "
        f"({', '.join(f'{k} {v}' for k, v in (r.get('versions') or {}).items())})"
        for t, r in records.items() if matches(t, table_id, budget))
    return [f"{where}: {n} run{'s' * (n != 1)}" for where, n in sorted(counts.items())]


def groups(records, smoke):
    """The (backend, precision) pairs on record, TensorFlow float32 (the default) first."""
    found = {(t.backend, t.precision) for t in records if t.smoke == smoke} | {("tensorflow", "float32")}
    return sorted(found, key=lambda g: (g != ("tensorflow", "float32"), g))


def other_budgets(records, smoke):
    """Records of budgets other than the book's (e.g. more epochs, another batch size), grouped per
    row and setting: a Markdown list, or '' when there are none."""
    found = {}
    for t, r in records.items():
        if t.table not in TABLES or t.smoke != smoke or not smoke and (cnn_study.in_study(t) or sgd_study.in_study(t)):
            continue  # the variants and the two studies have sections of their own
        if not matches(t, t.table, book_budget(TABLES[t.table], smoke, t.backend, t.precision)):  # not in the tables
            found.setdefault((t.table, t.row, t.epochs, t.batch_size, t.learning_rate, t.backend, t.precision), []).append(r)
    lines = []
    for (table_id, number, epochs, batch, lr, backend, precision), runs in sorted(
            found.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        row = TABLES[table_id].rows[number - 1]
        lr_text = "default learning rate" if lr is None else f"learning rate {lr:g}"
        lines.append(f"- Table {table_id} row {number} ({row.title}), {epochs} epochs, batch {batch}, {lr_text}, "
                     f"{backend} {precision}: test {mean_std(*percent(runs, 'test_accuracy'))} %, train "
                     f"{mean_std(*percent(runs, 'train_accuracy'))} % (n={len(runs)}; book: test {row.book_test:.2f}, "
                     f"train {row.book_train:.2f})")
    return "\n".join(lines)


def write_text(path, text):
    with files.atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def write_reports(records, results_dir, report_path, seeds, smoke=False, command="python reproduce.py --merge",
                  figure=None):
    """Per table a Markdown table and a CSV under ``results_dir``, and the report ``report_path`` (every
    table, whichever a command trained; unless ``smoke``, the two studies, their figures drawn once
    they have runs: the budget study's to ``figure``, the CNN study's beside it). Returns its text."""
    sections, off = [], []
    for backend, precision in groups(records, smoke):
        default = (backend, precision) == ("tensorflow", "float32")
        for table_id, table in sorted(TABLES.items()):
            budget = book_budget(table, smoke, backend, precision)
            rows, where_label = summarize(table, records, budget), "" if default else f", {backend} {precision}"
            off += [f"- Table {table_id} row {r['row']} ({table.rows[r['row'] - 1].title}{where_label}): "
                    f"measured test {mean_std(r['test_mean'], r['test_std'])} % (n={r['n']}) against the "
                    f"book's {r['book_test']:.2f} % ({r['test_diff']:+.3f} points)" + still_learning(r)
                    for r in rows if r["off"]]
            name = f"table-{table_id}" + ("" if default else f"-{backend}-{precision}") + ("-smoke" if smoke else "")
            write_text(os.path.join(results_dir, name + ".md"), text := markdown_table(table, rows))
            write_text(os.path.join(results_dir, name + ".csv"), csv_table(table, rows))
            where = "\n".join(f"- {line}" for line in environments(table_id, records, budget)) or "- no runs yet"
            sections.append(
                f"## Table {table_id}: {table.title} ({table.listing}.py, {budget['epochs']} epochs, "
                f"batch {BATCH_SIZE}{where_label})\n\n"
                f"{sum(r['n'] for r in rows)} of {len(rows) * seeds} runs ({len(rows)} rows x {seeds} seeds) are recorded. "
                f"Measured numbers are the mean ± sample std over the n seeds recorded for the row "
                f"(a row with one seed shows its single run, with no spread); "
                f"train % is the accuracy Keras reports for the last epoch (dropout active). "
                f"Rows marked in the last column differ from the book's test accuracy by more than {OFF_BY} points.\n\n"
                f"{text}\nRan on:\n{where}\n"
            )
    sections.append(f"## Rows more than {OFF_BY} points from the book\n\n" + ("\n".join(off) or "None so far.") + "\n")
    if not smoke:
        study = sgd_study.budget_study(records)
        sections.append(sgd_study.section(study, sgd_study.same_optimizer_elsewhere(records)))
        sections.append(cnn_study.section(records))
        if figure:
            figures = os.path.dirname(os.path.abspath(figure))
            os.makedirs(figures, exist_ok=True)  # both studies' figures
            if any(line["n"] for found in study.values() for line in found["lines"][1:]):
                sgd_study.figure(study, figure)
            cnn_study.write_figures(records, figures)
    others = other_budgets(records, smoke)
    if others:
        sections.append("## Other budgets\n\nRuns recorded with settings other than the book's "
                        "(not in the tables above):\n\n" + others + "\n")
    report = (
        "# Chapter 1 tables, re-run\n\n"
        f"Generated by `{command}` from the records in `{results_dir}/records*.jsonl`; "
        "do not edit by hand (the discussion comes from "
        f"`{results_dir}/discussion.md`). Seeds are 0..n-1; how rows of the book were read is in "
        "[docs/tables.md](docs/tables.md#how-the-tables-rows-are-read).\n\n" + "\n".join(sections) + "\n"
        + read_discussion(results_dir))
    write_text(report_path, report)
    return report
