"""Re-run the chapter's tables (1.3.2 MLP, 1.4.1 CNN, 1.5.1 SimpleRNN) with several seeds.

Every row is built by its listing's own ``build_model`` with that row's settings and
trained like the listing (study/train.py: categorical cross-entropy, batch 128, the row's
optimizer with Keras' default settings). Each finished (row, seed) run is appended to a
JSON-lines record as it ends, so an interrupted sweep resumes where it stopped, a re-run
skips what is done, and two sweeps on one results folder share the work. From the records
it writes, per table, a Markdown table and a CSV (the book's numbers beside the measured
mean ± std over n seeds), and RESULTS.md.

    python reproduce.py                      # every table, 3 seeds (hours on a CPU)
    python reproduce.py --table 1.4.1        # one table
    python reproduce.py --workers 2          # trials in 2 processes on this machine
    python reproduce.py --shard 0/4          # every 4th trial, from the first: one of 4 machines
    python reproduce.py --merge              # tables and RESULTS.md from all records, no training
    python reproduce.py --smoke              # every row, one tiny epoch, into outputs/ (tests and CI)
"""

from ch1 import quiet_startup

quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import argparse
import importlib
import math
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
import time

import keras

from ch1 import device
from study import records, report, results
from ch1.cli import (Parser, add_data_arg, at_interrupt, ensure_output_dir, fail, forget, positive_int,
                     writable_output_file)
from ch1.data import TRAIN_SIZE
from ch1.run import SMOKE_TRAIN, add_smoke_arg, load_data
from study.tables import SWEEPS, TABLES
from study.train import train_and_evaluate
from study.variants import builder

SMOKE_DIR = os.path.join("outputs", "reproduce-smoke")  # smoke sweeps never touch the committed results
MAX_SHARDS = 10_000  # --shard i/n: n at most this (a shard's records file is named after i and n)


def plan(args):
    """Every trial of the chosen tables, seed by seed (all rows with seed 0 first, then seed 1, ...),
    so that a partial sweep already fills every row; then the shard's share of them."""
    backend = keras.backend.backend()
    trials = []
    for seed in range(args.seeds):
        for table_id in args.tables:
            table = SWEEPS[table_id]
            rows = args.rows or range(1, len(table.rows) + 1)
            for row in rows:
                epochs = 1 if args.smoke else (args.epochs or table.epochs)
                trials.append(records.Trial(table_id, row, seed, epochs, args.batch_size, args.smoke, backend,
                                            args.precision, args.learning_rate))
    index, count = args.shard
    return trials[index::count]


_DATA = {}


def data_once(args):
    """MNIST, loaded and checked once per process (the smoke subset with --smoke); bad data exits."""
    if "mnist" not in _DATA:
        _DATA["mnist"] = load_data(args)
    return _DATA["mnist"]


def run_trial(job):
    """Claim one trial, and unless another sweep has it or has recorded it (study.records.take), train
    it; return its record, or ``{"skipped": why}``. Runs in a worker process too."""
    trial, data_args, fast, validation, verbose, results_dir, owner = job
    why = records.take(results_dir, trial, owner)
    if why:
        return {"skipped": why}
    return train_trial(trial, data_args, fast, validation, verbose)


def train_trial(trial, data_args, fast=False, validation=False, verbose=0):
    """Train one row with one seed as its listing does; return its record (a dict)."""
    table = SWEEPS[trial.table]
    row = table.rows[trial.row - 1]
    listing = importlib.import_module(table.listing)
    if verbose:
        print(f"Table {trial.table} row {trial.row} ({row.title}) seed {trial.seed}: {trial.epochs} epochs, "
              f"batch {trial.batch_size}", flush=True)
    result = train_and_evaluate(builder(listing.build_model, row.variant), row.build, row.optimizer, data_once(data_args),
                                trial.epochs, trial.batch_size, trial.seed, learning_rate=trial.learning_rate,
                                precision=trial.precision, fast=fast, validation=validation, verbose=verbose)
    return {
        "table": trial.table, "row": trial.row, "seed": trial.seed, "epochs": trial.epochs,
        "batch_size": trial.batch_size, "smoke": trial.smoke, "learning_rate": trial.learning_rate,
        "backend": trial.backend, "precision": trial.precision, "params": result["params"],
        "train_accuracy": result["train_accuracy"], "test_accuracy": result["test_accuracy"],
        "fit_seconds": round(sum(result["epoch_seconds"]), 2),
        "history": {k: [round(v, 5) if math.isfinite(v) else None for v in vs] for k, vs in result["history"].items()},
        "diverged": result["diverged"],
        **device.describe(), "threads": _threads(), "versions": device.versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _threads():
    """The threads the backend computes a trial with (a float result can depend on it)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    if keras.backend.backend() == "torch":
        import torch

        return torch.get_num_threads()
    return os.cpu_count()


def _worker_init(threads):
    """A worker prints nothing but errors (the parent reports progress), leaves Ctrl-C to the parent
    (which ends the pool), and uses its share of the cores."""
    sys.stdout = open(os.devnull, "w")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    elif keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(threads)


def records_path(args):
    index, count = args.shard
    name = "records.jsonl" if count == 1 else f"records-shard-{index}of{count}.jsonl"
    return records.child(args.results_dir, name)


# ---------------------------------------------------------------------------------------------
# The command line.


def shard(text):
    shown = text if len(text) <= 30 else text[:25] + "..."
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/n such as 0/4, got {shown!r}") from None
    if count > MAX_SHARDS:
        raise argparse.ArgumentTypeError(f"expected n at most {MAX_SHARDS:,} in i/n, got {shown!r}")
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"expected 0 <= i < n in i/n, got {shown!r}")
    return index, count


def learning_rate(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < records.MAX_LEARNING_RATE:
        raise argparse.ArgumentTypeError(f"expected a number above 0 and below {records.MAX_LEARNING_RATE}, "
                                         f"got {text!r}")
    return value


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
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                        help="bfloat16: Keras' mixed_bfloat16 policy (recorded apart)")
    parser.add_argument("--fast", action="store_true",
                        help="the compiled JAX loop (study/train.py); pays only on an accelerator, "
                        "elsewhere model.fit")
    parser.add_argument("--validation", action="store_true",
                        help="also record test accuracy after every epoch (training unchanged)")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="trials run in this many processes (at most the cores and the trials left), "
                        "each with its share of the cores")
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
    images = SMOKE_TRAIN if args.smoke else TRAIN_SIZE
    for flag, value, limit, what in (("--seeds", args.seeds, records.MAX_SEEDS, ""),
                                     ("--epochs", args.epochs, records.MAX_EPOCHS, ""),
                                     ("--batch-size", args.batch_size, images,
                                      " training images" + (" of --smoke" if args.smoke else ""))):
        if value is not None and value > limit:
            parser.error(f"argument {flag}: at most {'the ' * bool(what)}{limit:,}{what}, got {value:,}")
    for number in args.rows or ():
        for table_id in args.tables:
            if number > len(SWEEPS[table_id].rows):
                parser.error(f"argument --row: Table {table_id} has {len(SWEEPS[table_id].rows)} rows, not {number}")
    if args.results_dir is None:
        args.results_dir = SMOKE_DIR if args.smoke else "results"
    if args.report is None:
        args.report = os.path.join(args.results_dir, "RESULTS.md") if args.smoke else "RESULTS.md"
    return args


def main(argv=None):
    args = parse_args(argv)
    # Every output path is checked before any long work; none is written through a symbolic link.
    figure = None if args.smoke else os.path.join(os.path.dirname(args.report) or ".", "docs", "figures",
                                                  "sgd-budget.png")
    for flag, folder in (("--results-dir", args.results_dir), ("--report", os.path.dirname(args.report)),
                         ("--report", figure and os.path.dirname(figure))):
        link = folder and records.linked(folder)
        if link:
            fail(f"{flag}: {link} is a symbolic link; outputs are not written through one (give the folder "
                 f"it points to)")
    ensure_output_dir(args.results_dir, "--results-dir")
    writable_output_file(args.report, "--report")
    if figure:
        ensure_output_dir(os.path.dirname(figure), "--report")  # the report's figures, beside it
    found = records.read_records(args.results_dir)
    if not args.merge:
        sweep(args, found)
    command = "python reproduce.py --merge" + (" --smoke" if args.smoke else "")
    text = results.write_reports(found, args.results_dir, args.report, args.seeds, args.smoke, command, figure)
    print(f"Wrote {args.report} and the tables under {args.results_dir}/")
    return text


def sweep(args, found):
    """Run the planned trials that have no record yet and no other sweep has claimed, recording each.
    First, in one line and exit 2, a backend that is not recorded, or a records file or claims folder
    that cannot be written."""
    if keras.backend.backend() not in records.BACKENDS:
        fail(f"Keras backend {keras.backend.backend()}: sweeps run on {', '.join(records.BACKENDS)}")
    try:
        records.check_appendable(records_path(args))
        records.claims_folder(args.results_dir)
    except records.RecordsError as exc:
        fail(str(exc))
    planned = plan(args)
    todo = [t for t in planned if t not in found]
    workers = max(1, min(args.workers, len(todo), os.cpu_count() or 1))
    print(f"{len(todo)} trials to run ({len(planned) - len(todo)} already recorded) in {workers} process(es); "
          f"records: {records_path(args)}", flush=True)
    if not todo:
        return
    data_once(args)  # check the data before any training (bad data exits here)
    path = records_path(args)
    data_args = argparse.Namespace(data=args.data, smoke=args.smoke)
    # One process shows each epoch as it ends (Keras' one line per epoch); workers stay quiet and the
    # parent reports each trial. Each trial is claimed just before it runs, in this sweep's name.
    verbose = 2 if workers == 1 else 0
    owner = os.getpid()
    jobs = [(t, data_args, args.fast, args.validation, verbose, args.results_dir, owner) for t in todo]
    pool = None

    def release_claims():
        # This sweep's claims on trials it did not finish go back (they run again); the workers end.
        if pool is not None:
            pool.terminate()
            pool.join()
        for trial in todo:
            if trial not in found:
                records.release(args.results_dir, trial, owner)

    def interrupted():
        release_claims()
        # What Python runs at a normal exit (the process ends by its signal instead): the pool's
        # semaphores are released, so no warning about leaked ones follows the one line.
        multiprocessing.util._exit_function()

    at_interrupt(interrupted)
    left, skipped = len(jobs), 0
    try:
        if workers == 1 or len(jobs) < 2:
            results = map(run_trial, jobs)
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_init, initargs=(threads,))
            results = pool.imap_unordered(run_trial, jobs)
        for record in results:
            left -= 1
            if "skipped" in record:
                skipped += 1
                continue
            trial = records.trial_of(record)
            records.append_record(path, record)
            found[trial] = records.for_reports(record)
            records.release(args.results_dir, trial, owner)
            row = SWEEPS[trial.table].rows[trial.row - 1]
            print(f"[{len(jobs) - left}/{len(jobs)}] Table {trial.table} row {trial.row} ({row.title}) "
                  f"seed {trial.seed}: test {100 * record['test_accuracy']:.2f}% "
                  f"train {100 * record['train_accuracy']:.2f}% in {record['fit_seconds']:.0f}s; "
                  f"{left} left", flush=True)
    except records.RecordsError as exc:  # a records file or claim made unusable while the sweep ran
        fail(str(exc))
    finally:
        forget(interrupted)
        release_claims()
    if skipped:
        print(f"{skipped} of them left to another sweep on {args.results_dir}/ (claimed or recorded there)",
              flush=True)


if __name__ == "__main__":
    main()
