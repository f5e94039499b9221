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
from tools.tables import TABLES

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
        if trial.table not in TABLES:
            continue  # the variants have a section of their own
        table = TABLES[trial.table]
        if trial.smoke != smoke or _matches(trial, trial.table, book_budget(table, smoke, trial.backend,
                                                                              trial.precision)):
            continue
        if not smoke and (trial.table, trial.row) in STUDY_ROWS and any(
                _matches(trial, trial.table, _study_budget(table, changes)) for _, changes in STUDY_SETTINGS):
            continue  # in the budget study's section
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


def write_reports(records, results_dir, report_path, seeds, smoke=False, command="python reproduce.py --merge",
                  figure=None):
    """Per table a Markdown table and a CSV under ``results_dir``, and the report ``report_path``.

    The report covers every table, whichever ones a command trained, so that a sweep of one
    table never drops the others. Unless ``smoke``, it ends with the budget study, whose figure
    goes to ``figure`` once any of its runs is recorded. Returns the report's text.
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
    if not smoke:
        study = budget_study(records)
        sections.append(budget_study_section(study, same_optimizer_elsewhere(records)))
        if figure and any(line["n"] for found in study.values() for line in found["lines"][1:]):
            os.makedirs(os.path.dirname(os.path.abspath(figure)), exist_ok=True)
            budget_study_figure(study, figure)
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


# --- the budget study: what reproduces the book's plain-SGD rows? -----------------------------------

# The rows tested, and the settings tried on each beside the book's budget (issue 13).
STUDY_ROWS = (("1.3.2", 1), ("1.3.2", 2), ("1.3.2", 4), ("1.3.2", 6), ("1.3.2", 10), ("1.4.1", 1))
LONGER = {"1.3.2": 200, "1.4.1": 40}  # epochs of the longer budget, with test accuracy after every epoch
STUDY_SETTINGS = (  # label, then what differs from the book's budget
    ("the book's budget", {}),
    ("longer", {"epochs": "longer"}),
    ("batch 32 (4x the steps)", {"batch_size": 32}),
    ("learning rate 0.1", {"learning_rate": 0.1}),
)


def _study_budget(table, changes):
    budget = book_budget(table)
    budget.update({k: LONGER[table.id] if v == "longer" else v for k, v in changes.items()})
    return budget


def _reaches(train, test, row):
    """Whether train and test accuracy (%) come within OFF_BY of the book's numbers, or above them."""
    return train >= row.book_train - OFF_BY and test >= row.book_test - OFF_BY


def _within(train, test, row):
    """Whether train and test accuracy (%) are both within OFF_BY of the book's numbers, either way."""
    return abs(train - row.book_train) <= OFF_BY and abs(test - row.book_test) <= OFF_BY


def first_match(record, row):
    """The first epoch (from 1) at which a run's curve reaches the book's train and test accuracy, or
    None. Needs the test accuracy after every epoch (``val_accuracy``, reproduce.py --validation)."""
    history = record.get("history") or {}
    for epoch, (train, test) in enumerate(zip(history.get("accuracy", []), history.get("val_accuracy", [])), 1):
        if _reaches(100 * train, 100 * test, row):
            return epoch
    return None


def _line(label, epochs, budget, train, test):
    return {"setting": label, "epochs": epochs, "batch_size": budget["batch_size"],
            "learning_rate": budget["learning_rate"], "n": len(test), "train": (_mean(train), _std(train)),
            "test": (_mean(test), _std(test))}


def budget_study(records):
    """The study's findings per tested row: {(table, row): {"lines", "conclusion", "curves", "match_epochs"}}.

    Each line is one point of the row's table: a setting, the epoch read, and the mean ± std of train
    and test accuracy over the seeds. The longer budget gives two: its last epoch, and the first
    epoch at which each seed's curve reaches the book (over the seeds that do).
    """
    found = {}
    for table_id, number in STUDY_ROWS:
        table, row = TABLES[table_id], TABLES[table_id].rows[number - 1]
        lines, curves, matches, match_epochs = [], [], [], []
        for label, changes in STUDY_SETTINGS:
            budget = _study_budget(table, changes)
            runs = [r for t, r in sorted(records.items(), key=lambda tr: tr[0].seed)
                    if t.row == number and _matches(t, table_id, budget)]
            train = [100 * r["train_accuracy"] for r in runs]
            test = [100 * r["test_accuracy"] for r in runs]
            if changes.get("epochs") != "longer":
                line = _line(label, str(budget["epochs"]), budget, train, test)
                lines.append(line)
                if runs and _reaches(line["train"][0], line["test"][0], row):
                    gaps = (line["train"][0] - row.book_train, line["test"][0] - row.book_test)
                    if _within(line["train"][0], line["test"][0], row):
                        matches.append(f"matches the book with {label}, {budget['epochs']} epochs")
                    else:
                        matches.append(f"goes past the book with {label}, {budget['epochs']} epochs "
                                       f"(train {gaps[0]:+.2f}, test {gaps[1]:+.2f} points)")
                continue
            # The longer budget: its last epoch, and where each seed's curve first reaches the book.
            with_curve = [r for r in runs if "val_accuracy" in (r.get("history") or {})]
            curves += [r["history"] for r in with_curve]
            match_epochs = [first_match(r, row) for r in with_curve]
            reached = [(r, e) for r, e in zip(with_curve, match_epochs) if e is not None]
            lines.append(_line(f"{label}, last epoch", str(budget["epochs"]), budget, train, test))
            epochs = [e for _, e in reached]
            lines.append(_line(f"{label}, first epoch reaching the book",
                               _epochs_text(epochs) if epochs else ("none" if with_curve else "—"), budget,
                               [100 * r["history"]["accuracy"][e - 1] for r, e in reached],
                               [100 * r["history"]["val_accuracy"][e - 1] for r, e in reached]))
            if reached:
                seeds = "" if len(reached) == len(with_curve) else f" in {len(reached)} of {len(with_curve)} seeds"
                matches.append(f"matches the book at {_epochs_text(epochs)} epochs{seeds} with plain SGD "
                               f"(learning rate 0.01, batch {budget['batch_size']})")
        tested = any(line["n"] for line in lines[1:])
        conclusion = ("; ".join(matches) if matches else
                      f"no tested budget reaches it; closest: {_closest(lines, row)}" if tested else "not tested yet")
        found[(table_id, number)] = {"lines": lines, "conclusion": conclusion, "curves": curves,
                                     "match_epochs": match_epochs}
    return found


def _closest(lines, row):
    """The setting whose mean train and test accuracy fall least short of the book's, in words."""
    tried = [line for line in lines if line["n"]]
    best = min(tried, key=lambda line: max(row.book_train - line["train"][0], row.book_test - line["test"][0]))
    return (f"{best['setting']}, {best['epochs']} epochs (train {best['train'][0] - row.book_train:+.2f}, "
            f"test {best['test'][0] - row.book_test:+.2f} points)")


def _epochs_text(epochs):
    """'96' for one seed; '127 ± 29 (seeds: 96, 140, 150)' for several."""
    if len(epochs) == 1:
        return str(epochs[0])
    return f"{_mean(epochs):.0f} ± {_std(epochs):.0f} (by seed: {', '.join(map(str, epochs))})"


def same_optimizer_elsewhere(records):
    """The chapter's SGD rows in the tables that print their budget (Tables 1.4.1 and 1.5.1) at that
    budget: how close Keras' default SGD comes to the book there, one line each (recorded rows only)."""
    found = []
    for table_id in ("1.4.1", "1.5.1"):
        table = TABLES[table_id]
        for r in summarize(table, records, book_budget(table)):
            row = table.rows[r["row"] - 1]
            if r["n"] and row.optimizer == "sgd":
                train_diff = r["train_mean"] - r["book_train"]
                verdict = "within" if _within(r["train_mean"], r["test_mean"], row) else "not within"
                found.append(f"Table {table_id} row {r['row']} ({row.label}, "
                             f"{table.epochs} epochs): train {outputs.mean_std(r['train_mean'], r['train_std'])} % "
                             f"against the book's {r['book_train']:.2f} % ({train_diff:+.2f}), test "
                             f"{outputs.mean_std(r['test_mean'], r['test_std'])} % against {r['book_test']:.2f} % "
                             f"({r['test_diff']:+.2f}), n={r['n']}: {verdict} {OFF_BY} points")
    return found


def budget_study_section(study, elsewhere=()):
    """RESULTS.md's section on the study, from :func:`budget_study` (and :func:`same_optimizer_elsewhere`)."""
    parts = ["## What budget reproduces the book's plain-SGD rows?\n\n"
             "Table 1.3.2's SGD rows and Table 1.4.1's SGD row end below the book at the book's budget. "
             "Each tested row is run again, apart from the tables above, with a longer budget (test "
             "accuracy recorded after every epoch), with batch 32 (4x the updates per epoch) and with "
             "learning rate 0.1. A setting *reaches* the book when its train and test accuracy both come "
             f"within {OFF_BY} points of the book's, or above. For the longer budget the table gives its "
             "last epoch and, per seed, the first epoch at which the curve reaches the book, with the "
             "accuracy there. Numbers are mean ± sample std over the n seeds. Figure: "
             "`docs/figures/sgd-budget.png`.\n"]
    if elsewhere:
        parts.append("The same optimizer where the chapter prints the budget: Keras' `\"sgd\"` (learning rate "
                     "0.01, no momentum, the default in Keras 2 as in Keras 3) at the book's epochs and batch "
                     "128 gives, for the SGD rows of Tables 1.4.1 and 1.5.1:\n\n" +
                     "\n".join(f"- {line}" for line in elsewhere) +
                     "\n\nTable 1.3.2 prints no epoch count (20 is Listing 1.3.2's), so its budget is the "
                     "open question the settings below test.\n")
    for (table_id, number), found in study.items():
        row = TABLES[table_id].rows[number - 1]
        lines = ["| setting | epochs | batch | learning rate | n | train % | test % |",
                 "|---|---|---|---|---|---|---|",
                 f"| the book (one run, as printed) | — | — | — | 1 | {row.book_train:.2f} | {row.book_test:.2f} |"]
        for line in found["lines"]:
            lr = "0.01 (default)" if line["learning_rate"] is None else f"{line['learning_rate']:g}"
            lines.append(f"| {line['setting']} | {line['epochs']} | {line['batch_size']} | {lr} | {line['n']} | "
                         f"{outputs.mean_std(*line['train'])} | {outputs.mean_std(*line['test'])} |")
        parts.append(f"### Table {table_id} row {number} ({row.label}): book train {row.book_train:.2f} %, "
                     f"test {row.book_test:.2f} %\n\n" + "\n".join(lines) +
                     f"\n\n**Conclusion:** {found['conclusion']}.\n")
    common = one_budget_sentence(study)
    if common:
        parts.append(f"### One budget for all the tested rows of Table 1.3.2\n\n{common}\n")
    return "\n".join(parts)


def one_budget_sentence(study, table_id="1.3.2"):
    """:func:`one_budget` in a sentence, or None until every tested row of the table has a full curve."""
    common = one_budget(study, table_id)
    if common is None:
        return None
    epochs, curves = common
    return (f"All {curves} longer curves of the tested Table {table_id} rows (every row, every seed) are within "
            f"{OFF_BY} points of the book's train and test accuracy at once at epochs "
            f"{_ranges(epochs) if epochs else 'none'} of {LONGER[table_id]}.")


def one_budget(study, table_id):
    """The epochs at which every longer curve of the table's tested rows is within OFF_BY points of the
    book's train and test accuracy (both ways), and how many curves that is; None until every tested
    row of the table has a full-length curve."""
    curves = []
    for (tid, number), found in study.items():
        if tid != table_id:
            continue
        full = [h for h in found["curves"] if len(h["accuracy"]) == LONGER[table_id]]
        if not full:
            return None
        curves += [(TABLES[tid].rows[number - 1], h) for h in full]
    epochs = [e for e in range(1, LONGER[table_id] + 1)
              if all(_within(100 * h["accuracy"][e - 1], 100 * h["val_accuracy"][e - 1], row) for row, h in curves)]
    return epochs, len(curves)


def _ranges(numbers):
    """[160, 161, 162, 165, 166] -> '160-162, 165-166'."""
    spans = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def budget_study_figure(study, path):
    """Train and test accuracy against epochs for each tested row's longer runs; the book's numbers dashed."""
    plt = outputs.plt
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), squeeze=False)
    for ax, ((table_id, number), found) in zip(axes.flat, study.items()):
        row = TABLES[table_id].rows[number - 1]
        for i, history in enumerate(found["curves"]):
            epochs = range(1, len(history["accuracy"]) + 1)
            ax.plot(epochs, [100 * a for a in history["accuracy"]], color="C0", alpha=0.8,
                    label="train (longer budget)" if i == 0 else None)
            ax.plot(epochs, [100 * a for a in history["val_accuracy"]], color="C1", alpha=0.8,
                    label="test (longer budget)" if i == 0 else None)
        for i, epoch in enumerate(e for e in found["match_epochs"] if e is not None):
            ax.axvline(epoch, color="0.4", linestyle=":", linewidth=1,
                       label="first reaches the book" if i == 0 else None)
        points = [line for line in found["lines"] if not line["setting"].startswith("longer")]
        for line, marker in zip(points, ("o", "s", "^")):
            if line["n"]:
                ax.plot([int(line["epochs"])], [line["train"][0]], marker, color="C0", label=f"train, {line['setting']}")
                ax.plot([int(line["epochs"])], [line["test"][0]], marker, color="C1", label=f"test, {line['setting']}")
        ax.axhline(row.book_train, color="C0", linestyle="--", linewidth=1, label="book train")
        ax.axhline(row.book_test, color="C1", linestyle="--", linewidth=1, label="book test")
        ax.set_title(f"Table {table_id} row {number}: {row.label}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(max(80, min(row.book_test, row.book_train) - 8), 100.5)
        ax.set_xlim(0, LONGER[table_id] + 1)
        ax.grid(alpha=0.3)
        outputs.whole_epochs(ax)
    # One legend for all panels: every label once, in the order first drawn.
    legend = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend.keys()), loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.suptitle("Plain SGD rows: accuracy against epochs (one curve per seed); the book's numbers dashed")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return outputs.save_figure(fig, path, dpi=90)
