"""Re-run the chapter's tables (1.3.2 MLP, 1.4.1 CNN, 1.5.1 SimpleRNN) with several seeds.

Every row is built by its listing's own ``build_model`` with that row's settings and
trained like the listing (categorical cross-entropy, batch 128, the row's optimizer with
Keras' default settings). Each finished (row, seed) run is appended to a JSON-lines record
as it ends, so an interrupted sweep resumes where it stopped and a re-run skips what is done.
From the records it writes, per table, a Markdown table and a CSV (the book's numbers beside
the measured mean ± std over n seeds), and RESULTS.md.

    python reproduce.py                      # every table, 3 seeds (hours on a CPU)
    python reproduce.py --table 1.4.1        # one table
    python reproduce.py --workers 2          # trials in 2 processes on this machine
    python reproduce.py --shard 0/4          # every 4th trial, from the first: one of 4 machines
    python reproduce.py --merge              # tables and RESULTS.md from all records, no training
    python reproduce.py --smoke              # every row, one tiny epoch (tests and CI)
"""

import ch1  # plumbing; imported before keras to quiet start-up

import argparse
import csv
import glob
import io
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field

import cnn_mnist
import mlp_mnist
import rnn_mnist
from ch1 import outputs
from ch1.data import prepare_images
from ch1.run import Parser, add_data_args, positive_int

OFF_BY = 0.3  # mark rows whose measured mean test accuracy is this many points or more from the book's


@dataclass
class Row:
    """One configuration of a table: its columns as the book prints them, and the build settings."""

    columns: dict
    optimizer: str
    build: dict
    book_train: float
    book_test: float


@dataclass
class Table:
    id: str
    title: str
    listing: object  # the listing module whose build_model makes every row
    epochs: int
    rows: list = field(default_factory=list)

    @property
    def name(self):
        return self.listing.__name__


def _regularizer(text):
    """'None', 'Dropout(0.45)' or 'L2(0.001)' -> build_model keyword arguments."""
    if text == "None":
        return {"dropout": 0.0}
    kind, value = text.rstrip(")").split("(")
    return {"dropout": float(value)} if kind == "Dropout" else {"dropout": 0.0, "l2_weight": float(value)}


def _mlp_row(layers, regularizer, optimizer, relu, train, test):
    # "256-512-256": the book's label counts the output layer as the third number;
    # the listing (the Adam 0.45 row) has two hidden layers, so the first two are the hidden widths.
    hidden = tuple(int(n) for n in layers.split("-")[:2])
    build = {"hidden_units": hidden, "activation": "relu" if relu == "Yes" else "linear", **_regularizer(regularizer)}
    columns = {"layers": layers, "regularizer": regularizer, "optimizer": optimizer, "ReLU": relu}
    return Row(columns, optimizer.lower(), build, train, test)


def _cnn_row(layers, optimizer, regularizer, train, test):
    build = {"filters": int(layers.split("-")[0]), **_regularizer(regularizer)}
    columns = {"layers (filters)": layers, "optimizer": optimizer, "regularizer": regularizer}
    return Row(columns, optimizer.lower(), build, train, test)


def _rnn_row(units, optimizer, regularizer, train, test):
    build = {"units": units, **_regularizer(regularizer)}
    columns = {"units": units, "optimizer": optimizer, "regularizer": regularizer}
    return Row(columns, optimizer.lower(), build, train, test)


# The book's tables, row by row, with its train and test accuracy (%): ../shared/book/chapter1.md.
TABLES = {
    "1.3.2": Table("1.3.2", "MLP configurations", mlp_mnist, mlp_mnist.epochs, [
        _mlp_row("256-256-256", "None", "SGD", "None", 93.65, 92.5),
        _mlp_row("256-256-256", "L2(0.001)", "SGD", "Yes", 99.35, 98.0),
        _mlp_row("256-256-256", "L2(0.01)", "SGD", "Yes", 96.90, 96.7),
        _mlp_row("256-256-256", "None", "SGD", "Yes", 99.93, 98.0),
        _mlp_row("256-256-256", "Dropout(0.4)", "SGD", "Yes", 98.23, 98.1),
        _mlp_row("256-256-256", "Dropout(0.45)", "SGD", "Yes", 98.07, 98.1),
        _mlp_row("256-256-256", "Dropout(0.5)", "SGD", "Yes", 97.68, 98.1),
        _mlp_row("256-256-256", "Dropout(0.6)", "SGD", "Yes", 97.11, 97.9),
        _mlp_row("256-512-256", "Dropout(0.45)", "SGD", "Yes", 98.21, 98.2),
        _mlp_row("512-512-512", "Dropout(0.2)", "SGD", "Yes", 99.45, 98.3),
        _mlp_row("512-512-512", "Dropout(0.4)", "SGD", "Yes", 98.95, 98.3),
        _mlp_row("512-1024-512", "Dropout(0.45)", "SGD", "Yes", 98.90, 98.2),
        _mlp_row("1024-1024-1024", "Dropout(0.4)", "SGD", "Yes", 99.37, 98.3),
        _mlp_row("256-256-256", "Dropout(0.6)", "Adam", "Yes", 98.64, 98.2),
        _mlp_row("256-256-256", "Dropout(0.55)", "Adam", "Yes", 99.02, 98.3),
        _mlp_row("256-256-256", "Dropout(0.45)", "Adam", "Yes", 99.39, 98.5),
        _mlp_row("256-256-256", "Dropout(0.45)", "RMSprop", "Yes", 98.75, 98.1),
        _mlp_row("128-128-128", "Dropout(0.45)", "Adam", "Yes", 98.70, 97.7),
    ]),
    "1.4.1": Table("1.4.1", "CNN configurations", cnn_mnist, cnn_mnist.epochs, [
        _cnn_row("64-64-64", "SGD", "Dropout(0.2)", 97.76, 98.50),
        _cnn_row("64-64-64", "RMSprop", "Dropout(0.2)", 99.11, 99.00),
        _cnn_row("64-64-64", "Adam", "Dropout(0.2)", 99.75, 99.40),
        _cnn_row("64-64-64", "Adam", "Dropout(0.4)", 99.64, 99.30),
    ]),
    "1.5.1": Table("1.5.1", "SimpleRNN configurations", rnn_mnist, rnn_mnist.epochs, [
        _rnn_row(256, "SGD", "Dropout(0.2)", 97.26, 98.00),
        _rnn_row(256, "RMSprop", "Dropout(0.2)", 96.72, 97.60),
        _rnn_row(256, "Adam", "Dropout(0.2)", 96.79, 97.40),
        _rnn_row(512, "SGD", "Dropout(0.2)", 97.88, 98.30),
    ]),
}


# ---------------------------------------------------------------------------------------------
# Trials: which (table, row, seed) runs a sweep is made of, and running one.


def trial_key(table_id, row, seed, epochs, batch_size, smoke):
    return f"{table_id}|{row}|{seed}|{epochs}|{batch_size}|{int(smoke)}"


def plan(args):
    """Every trial of the chosen tables, seed by seed (all rows with seed 0 first, then seed 1, ...),
    so that a partial sweep already fills every row; then the shard's share of them."""
    trials = []
    for seed in range(args.seeds):
        for table_id in args.tables:
            for row in range(1, len(TABLES[table_id].rows) + 1):
                trials.append((table_id, row, seed))
    index, count = args.shard
    return trials[index::count]


def epochs_for(table, args):
    return 1 if args.smoke else (args.epochs or table.epochs)


_DATA = {}


def _data(args):
    """MNIST, loaded once per process (the smoke subset with --smoke)."""
    if "mnist" not in _DATA:
        _DATA["mnist"] = ch1.load_data(args)
    return _DATA["mnist"]


def run_trial(job):
    """Train one row with one seed; return its record (a dict). Runs in a worker process too."""
    import keras

    table_id, row_number, seed, args = job
    table = TABLES[table_id]
    row = table.rows[row_number - 1]
    (x_train, y_train), (x_test, y_test) = _data(args)
    keras.backend.clear_session()  # a fresh graph and layer names for every trial
    ch1.run.seed_everything(seed)
    model = table.listing.build_model(**row.build)
    shape = model.input_shape[1:]
    x_train, x_test = prepare_images(x_train, shape), prepare_images(x_test, shape)
    y_train = keras.utils.to_categorical(y_train, 10)
    y_test = keras.utils.to_categorical(y_test, 10)
    model.compile(loss="categorical_crossentropy", optimizer=row.optimizer, metrics=["accuracy"])
    epochs = epochs_for(table, args)
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=args.batch_size, verbose=0)
    seconds = time.perf_counter() - start
    _, test_accuracy = model.evaluate(x_test, y_test, batch_size=args.batch_size, verbose=0)
    return {
        "key": trial_key(table_id, row_number, seed, epochs, args.batch_size, args.smoke),
        "table": table_id, "row": row_number, "seed": seed, "epochs": epochs,
        "batch_size": args.batch_size, "smoke": args.smoke, "params": model.count_params(),
        "train_accuracy": float(history.history["accuracy"][-1]), "test_accuracy": float(test_accuracy),
        "fit_seconds": round(seconds, 2), "history": {k: [round(float(v), 5) for v in vs]
                                                      for k, vs in history.history.items()},
        "backend": keras.backend.backend(),
        "device": ch1.run.describe_device(), "versions": ch1.run.versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _worker_init():
    # A worker prints nothing but errors; the parent reports progress.
    sys.stdout = open(os.devnull, "w")


# ---------------------------------------------------------------------------------------------
# Records: one JSON line per finished trial, in <results-dir>/records*.jsonl.


def records_path(args):
    index, count = args.shard
    name = "records.jsonl" if count == 1 else f"records-shard-{index}of{count}.jsonl"
    if args.smoke:
        name = name.replace("records", "records-smoke")
    return os.path.join(args.results_dir, name)


def read_records(results_dir):
    """Every record in every records*.jsonl of ``results_dir`` (all shards), last one per key wins."""
    found = {}
    for path in sorted(glob.glob(os.path.join(results_dir, "records*.jsonl"))):
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    found[record["key"]] = record
                except (json.JSONDecodeError, KeyError, TypeError):
                    # A line cut short by a kill: that trial simply runs again.
                    print(f"{path}:{number}: skipping an unreadable record", file=sys.stderr)
    return found


def append_record(path, record):
    with open(path, "a+b") as f:
        if f.seek(0, os.SEEK_END) > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")  # the last line was cut short by a kill: leave it alone on its own line
        f.write(json.dumps(record).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------------------------------------
# Tables: the book beside the measured mean ± std.


def summarize(table, records, args):
    """One dict per row: the book's numbers and the measured ones (percent)."""
    epochs = epochs_for(table, args)
    rows = []
    for number, row in enumerate(table.rows, 1):
        runs = [r for r in records.values()
                if r["table"] == table.id and r["row"] == number and r["epochs"] == epochs
                and r["batch_size"] == args.batch_size and r["smoke"] == args.smoke]
        runs.sort(key=lambda r: r["seed"])
        test = [100 * r["test_accuracy"] for r in runs]
        train = [100 * r["train_accuracy"] for r in runs]
        summary = {"row": number, **row.columns, "book_train": row.book_train, "book_test": row.book_test,
                   "n": len(runs), "seeds": [r["seed"] for r in runs],
                   "train_mean": _mean(train), "train_std": _std(train),
                   "test_mean": _mean(test), "test_std": _std(test),
                   "seconds_mean": _mean([r["fit_seconds"] for r in runs])}
        # How fast a row was still learning when training stopped: the last epoch's rise in training
        # accuracy (points), over the runs whose records keep their per-epoch history.
        gains = [100 * (r["history"]["accuracy"][-1] - r["history"]["accuracy"][-2]) for r in runs
                 if len(r.get("history", {}).get("accuracy", [])) > 1]
        summary["last_epoch_gain"], summary["last_epoch_gain_n"] = _mean(gains), len(gains)
        summary["test_diff"] = None if summary["test_mean"] is None else summary["test_mean"] - row.book_test
        summary["off"] = summary["test_diff"] is not None and abs(summary["test_diff"]) > OFF_BY
        rows.append(summary)
    return rows


def _still_learning(r):
    if not r["last_epoch_gain_n"]:
        return ""
    return (f"; training accuracy rose {r['last_epoch_gain']:+.2f} points in the last epoch "
            f"(mean of {r['last_epoch_gain_n']} run{'s' * (r['last_epoch_gain_n'] != 1)} with history)")


def _mean(values):
    return statistics.fmean(values) if values else None


def _std(values):
    # A spread needs two runs: with one seed there is none to report (not a spread of zero).
    return statistics.stdev(values) if len(values) > 1 else None


def markdown_table(table, rows):
    config = list(table.rows[0].columns)
    head = ["#", *config, "book train %", "book test %", "train % (mean ± std)", "test % (mean ± std)",
            "n", "test − book", f"off by > {OFF_BY}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        diff = "—" if r["test_diff"] is None else f"{r['test_diff']:+.2f}"
        cells = [r["row"], *(r[c] for c in config), f"{r['book_train']:.2f}", f"{r['book_test']:.2f}",
                 outputs.mean_std(r["train_mean"], r["train_std"]), outputs.mean_std(r["test_mean"], r["test_std"]),
                 r["n"], diff,
                 "**yes**" if r["off"] else ""]
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


def environments(table_id, records, args):
    """Where a table's runs ran: 'backend on device (versions): n runs'."""
    counts = {}
    for r in records.values():
        if r["table"] == table_id and r["smoke"] == args.smoke:
            versions = ", ".join(f"{k} {v}" for k, v in r["versions"].items())
            where = f"Keras backend {r['backend']} on {r['device']} ({versions})"
            counts[where] = counts.get(where, 0) + 1
    return [f"{where}: {n} run{'s' * (n != 1)}" for where, n in sorted(counts.items())]


def write_text(path, text):
    with outputs.atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def write_reports(args, records):
    """Per table a Markdown table and a CSV under --results-dir, and the RESULTS.md report."""
    # The report covers every table, whichever ones this command trained, so that a sweep of one
    # table never drops the others from RESULTS.md.
    sections, off = [], []
    for table_id in sorted(TABLES):
        table = TABLES[table_id]
        rows = summarize(table, records, args)
        off += [f"- Table {table_id} row {r['row']} ({' '.join(str(r[c]) for c in table.rows[0].columns)}): "
                f"measured test {outputs.mean_std(r['test_mean'], r['test_std'])} % (n={r['n']}) against the "
                f"book's {r['book_test']:.2f} % ({r['test_diff']:+.2f} points)" + _still_learning(r)
                for r in rows if r["off"]]
        suffix = "-smoke" if args.smoke else ""
        write_text(os.path.join(args.results_dir, f"table-{table_id}{suffix}.md"), markdown_table(table, rows))
        write_text(os.path.join(args.results_dir, f"table-{table_id}{suffix}.csv"), csv_table(table, rows))
        done = sum(r["n"] for r in rows)
        where = "\n".join(f"- {line}" for line in environments(table_id, records, args)) or "- no runs yet"
        sections.append(
            f"## Table {table_id}: {table.title} ({table.name}.py, {epochs_for(table, args)} epochs, "
            f"batch {args.batch_size})\n\n"
            f"{done} of {len(rows) * args.seeds} runs ({len(rows)} rows x {args.seeds} seeds) are recorded. "
            f"Measured numbers are the mean ± sample std over the n seeds recorded for the row "
            f"(a row with one seed shows its single run, with no spread); "
            f"train % is the accuracy Keras reports for the last epoch (dropout active). "
            f"Rows marked in the last column differ from the book's test accuracy by more than {OFF_BY} points.\n\n"
            f"{markdown_table(table, rows)}\nRan on:\n{where}\n"
        )
    sections.append(f"## Rows more than {OFF_BY} points from the book\n\n" + ("\n".join(off) or "None so far.") + "\n")
    discussion_path = os.path.join(args.results_dir, "discussion.md")
    discussion = open(discussion_path).read() if os.path.exists(discussion_path) else ""
    command = "python reproduce.py --merge" + (" --smoke" if args.smoke else "")
    report = (
        "# Chapter 1 tables, re-run\n\n"
        f"Generated by `{command}` from the records in `{args.results_dir}/records*.jsonl`; "
        "do not edit by hand (the discussion comes from "
        f"`{args.results_dir}/discussion.md`). Seeds are 0..n-1; how rows of the book were read is in "
        "the README (\"How the tables' rows are read\").\n\n" + "\n".join(sections) + "\n" + discussion
    )
    write_text(args.report, report)
    return report


# ---------------------------------------------------------------------------------------------
# The command line.


def shard(text):
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/n such as 0/4, got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"expected 0 <= i < n in i/n, got {text!r}")
    return index, count


def parse_args(argv):
    parser = Parser(__doc__)
    parser.add_argument("--table", choices=sorted(TABLES), action="append", dest="tables",
                        help="a table to run (repeatable); default: all three")
    parser.add_argument("--seeds", type=positive_int, default=3, help="seeds per row (0..N-1)")
    parser.add_argument("--epochs", type=positive_int, help="override every table's epochs (default: the book's)")
    parser.add_argument("--batch-size", type=positive_int, default=128, help="minibatch size")
    parser.add_argument("--workers", type=positive_int, default=1, help="trials run in this many processes")
    parser.add_argument("--shard", type=shard, default=(0, 1), metavar="i/n",
                        help="run only every n-th trial, starting with trial i (0 <= i < n)")
    parser.add_argument("--merge", action="store_true", help="train nothing: build the tables from all records")
    parser.add_argument("--results-dir", metavar="DIR", default="results",
                        help="records (records*.jsonl) and the per-table .md and .csv")
    parser.add_argument("--report", metavar="FILE", default="RESULTS.md", help="the generated report")
    add_data_args(parser)
    args = parser.parse_args(argv)
    args.tables = sorted(set(args.tables or TABLES))
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        outputs.prepare_output_dir(args.results_dir)
    except outputs.OutputError as exc:
        ch1.fail(str(exc).replace("--output-dir", "--results-dir"))
    records = read_records(args.results_dir)
    if not args.merge:
        sweep(args, records)
    report = write_reports(args, records)
    print(f"Wrote {args.report} and the tables under {args.results_dir}/")
    return report


def sweep(args, records):
    """Run the planned trials that have no record yet, recording each as it ends."""
    planned = plan(args)
    todo = [t for t in planned
            if trial_key(t[0], t[1], t[2], epochs_for(TABLES[t[0]], args), args.batch_size, args.smoke)
            not in records]
    skipped = len(planned) - len(todo)
    print(f"{len(todo)} trials to run ({skipped} already recorded) in {args.workers} process(es); "
          f"records: {records_path(args)}")
    if not todo:
        return
    _data(args)  # check the data before any training (bad data exits here with status 2)
    jobs = [(*t, args) for t in todo]
    path = records_path(args)
    if args.workers == 1:
        results = map(run_trial, jobs)
        pool = None
    else:
        import multiprocessing

        pool = multiprocessing.get_context("spawn").Pool(args.workers, initializer=_worker_init)
        results = pool.imap_unordered(run_trial, jobs)
    try:
        for done, record in enumerate(results, 1):
            append_record(path, record)
            records[record["key"]] = record
            row = TABLES[record["table"]].rows[record["row"] - 1]
            config = " ".join(str(v) for v in row.columns.values())
            print(f"[{done}/{len(todo)}] Table {record['table']} row {record['row']} ({config}) "
                  f"seed {record['seed']}: test {100 * record['test_accuracy']:.2f}% "
                  f"train {100 * record['train_accuracy']:.2f}% in {record['fit_seconds']:.0f}s; "
                  f"{len(todo) - done} left", flush=True)
    finally:
        if pool is not None:
            pool.terminate()


if __name__ == "__main__":
    main()
