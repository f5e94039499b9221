"""Re-run the chapter's tables (1.3.2 MLP, 1.4.1 CNN, 1.5.1 SimpleRNN) with several seeds.

Each row is built by its listing's own ``build_model`` and trained as the listing trains it. Each
finished (row, seed) run is appended to the records as it ends, so an interrupted sweep resumes where
it stopped. From all records: per table a Markdown table and a CSV, and RESULTS.md (docs/tables.md;
resuming, workers and shards: docs/sweeps.md).
"""

import argparse
import contextlib
import dataclasses
import functools
import importlib
import itertools
import math
import multiprocessing
import multiprocessing.util
import os
import re
import signal
import time

from ch1 import quiet_startup
from ch1.cli import Parser, add_data_arg, add_smoke_arg, at_interrupt, check_batch_size, ensure_output_dir, fail, \
    forget, positive_int, writable_output_file
from study import records, report
from study.tables import SWEEPS, TABLES

SMOKE_DIR = os.path.join("outputs", "reproduce-smoke")  # smoke sweeps never touch the committed results
MAX_SEEDS = 1000  # --seeds: the plan is a list of every trial
MAX_SHARDS = 10_000  # --shard i/n: n at most this (a shard's records file is named after i and n)


def shard(text):
    match = re.fullmatch(r"(\d{1,5})/(\d{1,5})", text)
    if not match or not 0 <= int(match[1]) < int(match[2]) <= MAX_SHARDS:
        raise argparse.ArgumentTypeError(f"expected i/n with 0 <= i < n <= {MAX_SHARDS:,}, got {text[:30]!r}")
    return int(match[1]), int(match[2])


def learning_rate(text):
    with contextlib.suppress(ValueError):
        if 0 < float(text) < math.inf:
            return float(text)
    raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")


def parse_args(argv):
    parser = Parser(__doc__)
    parser.add_argument("--table", choices=sorted(SWEEPS), action="append", dest="tables",
                        help="a table to run (repeatable; cnn-variants: Listing 1.4.1's model with the changes "
                        "the CNN section describes); default: the book's three")
    parser.add_argument("--row", type=positive_int, action="append", dest="rows",
                        help="only this row of the chosen tables (repeatable); default: every row")
    parser.add_argument("--seeds", type=positive_int, default=3, help="seeds per row (0..N-1)")
    parser.add_argument("--epochs", type=positive_int,
                        help="another budget than the book's epochs (recorded apart; default: the book's)")
    parser.add_argument("--batch-size", type=positive_int, default=report.BATCH_SIZE,
                        help="minibatch size (another than the book's is recorded apart)")
    parser.add_argument("--learning-rate", type=learning_rate,
                        help="the optimizer's learning rate (recorded apart; default: Keras' default)")
    parser.add_argument("--precision", choices=records.PRECISIONS, default="float32",
                        help="bfloat16: Keras' mixed_bfloat16 policy (recorded apart)")
    parser.add_argument("--validation", action="store_true",
                        help="also record test accuracy after every epoch (training unchanged)")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="processes on this machine (at most the cores and the trials left): worker k of N "
                        "runs shard k/N of the trials left, with its share of the cores")
    parser.add_argument("--shard", type=shard, default=(0, 1), metavar="i/n",
                        help="run only every n-th trial, starting with trial i (0 <= i < n)")
    parser.add_argument("--merge", action="store_true", help="train nothing: build the tables from all records")
    parser.add_argument("--results-dir", metavar="DIR",
                        help=f"records (records*.jsonl) and the per-table .md and .csv; default: results, "
                        f"with --smoke {SMOKE_DIR}")
    parser.add_argument("--report", metavar="FILE",
                        help="the generated report; default: RESULTS.md, with --smoke <results-dir>/RESULTS.md")
    add_data_arg(parser)
    add_smoke_arg(parser)
    args = parser.parse_args(argv)
    args.tables = sorted(set(args.tables or TABLES))
    if args.seeds > MAX_SEEDS:
        parser.error(f"argument --seeds: at most {MAX_SEEDS:,}, got {args.seeds:,}")
    check_batch_size(parser, args)
    for number, table_id in itertools.product(args.rows or (), args.tables):
        if number > len(SWEEPS[table_id].rows):
            parser.error(f"argument --row: Table {table_id} has {len(SWEEPS[table_id].rows)} rows, not {number}")
    if args.results_dir is None:
        args.results_dir = SMOKE_DIR if args.smoke else "results"
    if args.report is None:
        args.report = os.path.join(args.results_dir, "RESULTS.md") if args.smoke else "RESULTS.md"
    return args


if __name__ == "__main__":
    parse_args(None)  # --help or a mistyped flag answers here, at once: before Keras loads TensorFlow
quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import keras

from ch1 import device
from ch1.run import load_data
from study import results
from study.train import train_and_evaluate
from study.variants import builder


def plan(args):
    """The shard's share of the chosen tables' trials, seed by seed (every row's seed 0 first, then seed
    1, ...): a partial sweep already fills every row."""
    trials = [records.Trial(table_id, row, seed, 1 if args.smoke else (args.epochs or SWEEPS[table_id].epochs),
                            args.batch_size, args.smoke, keras.backend.backend(), args.precision, args.learning_rate)
              for seed in range(args.seeds) for table_id in args.tables
              for row in (args.rows or range(1, len(SWEEPS[table_id].rows) + 1))]
    index, count = args.shard
    return trials[index::count]


@functools.cache
def data_once(data, smoke):
    """MNIST from ``data``, loaded and checked once per process (the smoke subset with ``smoke``); bad data exits."""
    return load_data(argparse.Namespace(data=data, smoke=smoke))


def train_trial(trial, data, validation=False, verbose=0):
    """Train one row with one seed as its listing does; return its record (a dict)."""
    table = SWEEPS[trial.table]
    row = table.rows[trial.row - 1]
    listing = importlib.import_module(table.listing)
    if verbose:
        print(f"Table {trial.table} row {trial.row} ({row.title}) seed {trial.seed}: {trial.epochs} epochs, "
              f"batch {trial.batch_size}", flush=True)
    result = train_and_evaluate(builder(listing.build_model, row.variant), row.build, row.optimizer, data_once(*data),
                                trial.epochs, trial.batch_size, trial.seed, learning_rate=trial.learning_rate,
                                precision=trial.precision, validation=validation, verbose=verbose)
    return {**dataclasses.asdict(trial), **{k: result[k] for k in ("params", "train_accuracy", "test_accuracy")},
            "fit_seconds": round(sum(result["epoch_seconds"]), 2),
            "history": {k: [round(v, 5) if math.isfinite(v) else None for v in vs] for k, vs in result["history"].items()},
            "diverged": result["diverged"], **device.describe(), "threads": _threads(), "versions": device.versions(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _threads(count=None):
    """The threads the backend computes with (a float result can depend on it); ``count``: set them first."""
    if keras.backend.backend() == "tensorflow":
        from tensorflow.config import threading

        if count:
            threading.set_intra_op_parallelism_threads(count)
            threading.set_inter_op_parallelism_threads(count)
        return threading.get_intra_op_parallelism_threads() or os.cpu_count()
    if keras.backend.backend() == "torch":
        import torch

        return torch.set_num_threads(count) if count else torch.get_num_threads()
    return os.cpu_count()


def run_share(trials, data, validation, path, label="", verbose=0):
    """Train ``trials`` one after another, appending each one's record to ``path`` as it ends, with one
    line of progress each (``label`` first). Runs in a worker process too."""
    for done, trial in enumerate(trials, 1):
        record = train_trial(trial, data, validation, verbose)
        records.append_record(path, record)
        print(f"{label}[{done}/{len(trials)}] Table {trial.table} row {trial.row} "
              f"({SWEEPS[trial.table].rows[trial.row - 1].title}) seed {trial.seed}: test "
              f"{100 * record['test_accuracy']:.2f}% train {100 * record['train_accuracy']:.2f}% in "
              f"{record['fit_seconds']:.0f}s; {len(trials) - done} left", flush=True)


def _worker_init(threads):
    """A worker leaves Ctrl-C to the parent (which ends the pool) and uses its share of the cores."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _threads(threads)


def start_pool(workers):
    threads = max(1, (os.cpu_count() or 1) // workers)
    return multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_init, initargs=(threads,))


def main(argv=None):
    args = parse_args(argv)
    # Every output path is checked before any long work.
    ensure_output_dir(args.results_dir, "--results-dir")
    writable_output_file(args.report, "--report")
    figure = None if args.smoke else os.path.join(os.path.dirname(args.report), "docs", "figures", "sgd-budget.png")
    if figure:
        ensure_output_dir(os.path.dirname(figure), "--report")  # the report's figures, beside it
    found = records.read_records(args.results_dir)
    if not args.merge:
        sweep(args, found)
        found = records.read_records(args.results_dir, quiet=True)  # (warned about above)
    command = "python reproduce.py --merge" + (" --smoke" if args.smoke else "")
    text = results.write_reports(found, args.results_dir, args.report, args.seeds, args.smoke, command, figure)
    print(f"Wrote {args.report} and the tables under {args.results_dir}/")
    return text


def sweep(args, found):
    """Run the planned trials with no record in ``found``, recording each as it ends: here, or with
    --workers N worker k runs shard k/N of them. A backend not recorded, or records that cannot be
    appended to: one line, exit 2."""
    if keras.backend.backend() not in records.BACKENDS:
        fail(f"Keras backend {keras.backend.backend()}: sweeps run on {', '.join(records.BACKENDS)}")
    index, count = args.shard
    path = os.path.join(args.results_dir, "records.jsonl" if count == 1 else f"records-shard-{index}of{count}.jsonl")
    planned = plan(args)
    todo = [t for t in planned if t not in found]
    workers = max(1, min(args.workers, len(todo), os.cpu_count() or 1))
    settings = ((args.data, args.smoke), args.validation, path)
    try:  # a records file that cannot be appended to, now or while the sweep runs: one line
        records.check_appendable(path)
        print(f"{len(todo)} trials to run ({len(planned) - len(todo)} already recorded) in {workers} process(es); "
              f"records: {path}", flush=True)
        if not todo:
            return
        data_once(args.data, args.smoke)  # check the data before any training (bad data exits here)
        if workers == 1:  # Keras' line per epoch, then the trial's line
            return run_share(todo, *settings, verbose=2)
        pool = start_pool(workers)

        def interrupted():  # the workers end with the sweep; what they recorded stays
            pool.terminate()
            pool.join()
            multiprocessing.util._exit_function()  # the pool's semaphores released, as at a normal exit

        at_interrupt(interrupted)
        try:
            pool.starmap(run_share, [(todo[k::workers], *settings, f"shard {k}/{workers}: ")
                                     for k in range(workers)])
        finally:
            forget(interrupted)
            pool.terminate()
            pool.join()
    except records.RecordsError as exc:
        fail(str(exc))


if __name__ == "__main__":
    main()
