"""Training speed of the book's models: the book's model.fit against the speed options (docs/speed.md).

Trains a listing's model (the CNN by default) with its own table row's settings for E epochs with
each path, alternating path by path within every repeat, and prints per path the steady seconds per
epoch (median of epochs 2..E; compilation is the first epoch's excess), the test accuracy and the
speed-up over plain model.fit. Paths: plain (float32 model.fit) and bfloat16 (Keras' mixed_bfloat16).
The JSON names the CPU and its speed flags, or the GPU: a speed holds for that machine.
"""

from ch1 import quiet_startup

quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import importlib
import itertools
import statistics
import time

import keras

import make_docs
from ch1 import device, files
from ch1.cli import Parser, add_data_arg, add_smoke_arg, positive_int, writable_output_file
from ch1.run import load_data
from study.stats import mean, std
from study.tables import LISTINGS, row
from study.train import train_and_evaluate

PATHS = ("plain", "bfloat16")


def summarize(runs):
    """Steady s/epoch (median of epochs 2..E over all repeats), compile s, accuracy mean and std."""
    steady = statistics.median(s for seconds, _ in runs for s in (seconds[1:] or seconds))
    accuracies = [100 * a for _, a in runs]
    return {"steady_s_per_epoch": steady, "compile_s": mean([max(0.0, seconds[0] - steady) for seconds, _ in runs]),
            "total_s": mean([sum(seconds) for seconds, _ in runs]), "test_accuracy_mean": mean(accuracies),
            "test_accuracy_std": std(accuracies), "repeats": len(runs),
            "epoch_seconds": [seconds for seconds, _ in runs], "test_accuracy": accuracies}


def parse_args(argv):
    parser = Parser(__doc__)
    parser.add_argument("--model", nargs="+", choices=sorted(LISTINGS), default=["cnn"], help="which listings")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=["plain", "bfloat16"], help="paths to compare")
    parser.add_argument("--epochs", type=positive_int, default=3, help="epochs per training run")
    parser.add_argument("--batch-size", type=positive_int, default=128, help="minibatch size")
    parser.add_argument("--repeats", type=positive_int, default=1, help="runs per path (seeds 0..N-1)")
    parser.add_argument("--json", metavar="FILE", default="outputs/bench_train.json", help="where the JSON goes")
    add_data_arg(parser)
    add_smoke_arg(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    writable_output_file(args.json, "--json")  # before the long work, not after it
    data = load_data(args)
    backend, where = keras.backend.backend(), device.describe()
    print(f"{where['device']}; Keras {keras.__version__}, backend {backend}; {args.epochs} epochs, "
          f"batch {args.batch_size}, {args.repeats} repeat(s){'; smoke data' if args.smoke else ''}", flush=True)
    runs = {(m, p): [] for m in args.model for p in args.paths}
    precision = {}  # the dtype policy each path's model trained under
    for seed, name, path in itertools.product(range(args.repeats), args.model, args.paths):
        start, listing = time.perf_counter(), LISTINGS[name]
        settings = row(listing.table, listing.row)
        result = train_and_evaluate(importlib.import_module(listing.module).build_model, settings.build,
                                    settings.optimizer, data, args.epochs, args.batch_size, seed,
                                    precision="bfloat16" if path == "bfloat16" else "float32")
        seconds, accuracy = result["epoch_seconds"], result["test_accuracy"]
        precision[(name, path)] = result["model"].dtype_policy.name
        runs[(name, path)].append((seconds, accuracy))
        print(f"  {name} {path:8s} seed {seed}: {time.perf_counter() - start:6.1f}s, "
              f"epochs {' '.join(f'{s:.2f}' for s in seconds)}, test {100 * accuracy:.2f}%", flush=True)
    results = [{"model": name, "path": path, "precision": precision[(name, path)], **summarize(done)}
               for (name, path), done in runs.items()]
    for r in results:
        plain = [p["steady_s_per_epoch"] for p in results if p["model"] == r["model"] and p["path"] == "plain"]
        r["speedup_vs_plain"] = plain[0] / r["steady_s_per_epoch"] if plain else None
    report = {**where, "backend": backend, "versions": device.versions(), "epochs": args.epochs,
              "batch_size": args.batch_size, "repeats": args.repeats, "smoke": args.smoke, "results": results}
    print("\n" + make_docs.bench_table(args.json, report))
    files.write_json(args.json, report)
    print(f"\nWrote {args.json}")
    return report


if __name__ == "__main__":
    main()
