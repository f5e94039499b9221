"""Sweep throughput on this machine: one trial at a time on all cores, or one per core.

Runs the same trials of reproduce.py twice, in fresh results folders: with ``--workers 1``
(one process; the backend uses every core) and with ``--workers N`` for N cores (each worker
pinned to its share: TensorFlow's intra- and inter-op threads set to cores / N). Prints the
throughput of each layout (trials per hour, wall seconds) and checks that the two layouts give
identical numbers for every trial. The trials: Table 1.3.2 rows 1, 4, 6 and 16 (MLP) and
Table 1.4.1 rows 1 and 3 (CNN), seed 0, for ``--epochs`` epochs (records of a shorter budget
than the book's, kept in the benchmark's own folders).

    python -m benchmarks.bench_sweep --epochs 3 --json results/bench/sweep-cpu-tensorflow.json
"""

from ch1 import quiet_startup

quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import os
import tempfile
import time

import keras

import reproduce
from ch1 import device, outputs
from study import records
from ch1.cli import Parser, add_data_arg, positive_int, writable_output_file

TRIALS = (("1.3.2", (1, 4, 6, 16)), ("1.4.1", (1, 3)))


def run_layout(workers, epochs, data, folder):
    """Every trial of TRIALS with ``workers`` processes; returns wall seconds and the records."""
    start = time.perf_counter()
    for table_id, rows in TRIALS:
        argv = ["--table", table_id, "--seeds", "1", "--epochs", str(epochs), "--workers", str(workers),
                "--results-dir", folder, "--report", os.path.join(folder, "R.md")]
        argv += [arg for row in rows for arg in ("--row", str(row))] + (["--data", data] if data else [])
        reproduce.main(argv)
    return time.perf_counter() - start, records.read_records(folder)


def parse_args(argv):
    parser = Parser(__doc__)
    parser.add_argument("--epochs", type=positive_int, default=3, help="epochs per trial")
    parser.add_argument("--json", metavar="FILE", default="outputs/bench_sweep.json", help="where the JSON goes")
    add_data_arg(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    writable_output_file(args.json, "--json")  # before the long work, not after it
    cores = os.cpu_count() or 1
    trials = sum(len(rows) for _, rows in TRIALS)
    layouts = {}
    with tempfile.TemporaryDirectory() as folder:
        for workers in (1, cores):
            seconds, found = run_layout(workers, args.epochs, args.data, os.path.join(folder, f"w{workers}"))
            layouts[workers] = {"workers": workers, "threads_per_worker": max(1, cores // workers) if workers > 1
                                else cores, "wall_s": round(seconds, 1),
                                "trials_per_hour": round(3600 * trials / seconds, 1), "found": found}
    one, many = layouts[1]["found"], layouts[cores]["found"]
    differ = [{"trial": f"Table {t.table} row {t.row}", "test_accuracy": [one[t]["test_accuracy"],
                                                                          many[t]["test_accuracy"]]}
              for t in sorted(one, key=lambda t: (t.table, t.row))
              if t in many and (one[t]["test_accuracy"], one[t]["history"]) != (many[t]["test_accuracy"],
                                                                               many[t]["history"])]
    same = set(one) == set(many) and not differ
    print()
    print("| layout | wall s | trials per hour |")
    print("|---|---|---|")
    for layout in layouts.values():
        print(f"| --workers {layout['workers']} ({layout['threads_per_worker']} thread(s) each) "
              f"| {layout['wall_s']:.0f} | {layout['trials_per_hour']:.1f} |")
    print(f"\nThe same numbers in both layouts: {'yes' if same else 'NO'}")
    for d in differ:
        print(f"  {d['trial']}: test accuracy {d['test_accuracy'][0]:.6f} with 1 worker, "
              f"{d['test_accuracy'][1]:.6f} with {cores}")
    result = {**device.describe(), "backend": keras.backend.backend(), "versions": device.versions(),
              "epochs": args.epochs, "trials": trials, "same_numbers": same, "differ": differ,
              "layouts": [{k: v for k, v in layout.items() if k != "found"} for layout in layouts.values()]}
    outputs.write_json(args.json, result)
    print(f"Wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
