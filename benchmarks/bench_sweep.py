"""Sweep throughput on this machine: one trial at a time on all cores, or one per core (docs/sweeps.md).

Runs the same trials of reproduce.py (Table 1.3.2 rows 1, 4, 6, 16 and Table 1.4.1 rows 1, 3, seed 0,
``--epochs`` epochs) with ``--workers 1`` and with ``--workers N`` for N cores, in fresh folders, and
prints each layout's trials per hour and whether the two gave the same numbers.

    python -m benchmarks.bench_sweep --epochs 3 --json results/bench-sweep/cpu-tensorflow.json
"""

from ch1 import quiet_startup

quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import os
import tempfile
import time

import keras

import make_docs
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
              if t in many and (one[t]["test_accuracy"], one[t].get("history")) != (many[t]["test_accuracy"],
                                                                                     many[t].get("history"))]
    same = set(one) == set(many) and not differ
    result = {**device.describe(), "backend": keras.backend.backend(), "versions": device.versions(),
              "epochs": args.epochs, "trials": trials, "same_numbers": same, "differ": differ,
              "layouts": [{k: v for k, v in layout.items() if k != "found"} for layout in layouts.values()]}
    print(make_docs.sweep_table(args.json, result))
    outputs.write_json(args.json, result)
    print(f"Wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
