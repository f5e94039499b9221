"""Training speed of the book's models: plain model.fit against the project's paths.

Trains the book's CNN (``--model mlp rnn`` for the others) for E epochs with each path, in
one run, alternating path by path within every repeat, and prints per path: steady seconds
per epoch (the median of epochs 2..E; compilation is the first epoch's excess, shown apart),
test accuracy (mean over repeats, one seed each), and the speed-up over plain ``fit``.
The same model, optimizer, batch size and epochs for every path. Paths:

- plain:    the book's ``model.fit(x_train, y_train, epochs=..., batch_size=...)``
- default:  what the scripts run without flags (``ch1.fit``: model.fit with the epoch timer)
- fast:     ``--fast``: the compiled on-device epoch loop (JAX backend; elsewhere it is model.fit)
- bfloat16: ``--precision bfloat16``: model.fit under Keras' mixed_bfloat16 policy

    python benchmarks/bench_train.py                                    # CPU, TensorFlow
    KERAS_BACKEND=jax python benchmarks/bench_train.py --paths plain fast --repeats 3   # GPU
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ch1  # noqa: E402  (plumbing; imported before keras to quiet start-up)

import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402

import cnn_mnist  # noqa: E402
import mlp_mnist  # noqa: E402
import rnn_mnist  # noqa: E402
from ch1 import outputs  # noqa: E402
from ch1.data import prepare_images  # noqa: E402
from ch1.run import EpochTimer, Parser, add_data_args, describe_device, positive_int, seed_everything, versions  # noqa: E402,E501

LISTINGS = {"cnn": (cnn_mnist, "adam"), "mlp": (mlp_mnist, "adam"), "rnn": (rnn_mnist, "sgd")}
PATHS = ("plain", "default", "fast", "bfloat16")


def train_once(listing, optimizer, path, data, epochs, batch_size, seed):
    """One training run of ``epochs`` with ``path``; returns epoch seconds and test accuracy."""
    (x_train, y_train), (x_test, y_test) = data
    keras.backend.clear_session()
    seed_everything(seed)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if path == "bfloat16" else "float32")
    model = listing.build_model()
    x_train, x_test = (prepare_images(x, model.input_shape[1:]) for x in (x_train, x_test))
    y_train, y_test = (keras.utils.to_categorical(y, 10) for y in (y_train, y_test))
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    timer = EpochTimer()
    if path in ("plain", "bfloat16"):
        model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, callbacks=[timer], verbose=0)
    else:
        ch1.fit(model, x_train, y_train, epochs=epochs, batch_size=batch_size, callbacks=[timer],
                fast=path == "fast", verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, batch_size=batch_size, verbose=0)
    keras.mixed_precision.set_global_policy("float32")
    return timer.seconds, float(accuracy)


def summarize(runs):
    """Steady s/epoch (median of epochs 2..E over all repeats), compile s, accuracy mean and std."""
    steady = statistics.median(s for seconds, _ in runs for s in (seconds[1:] or seconds))
    compile_s = statistics.fmean(max(0.0, seconds[0] - steady) for seconds, _ in runs)
    accuracies = [100 * a for _, a in runs]
    return {"steady_s_per_epoch": steady, "compile_s": compile_s,
            "total_s": statistics.fmean(sum(seconds) for seconds, _ in runs),
            "test_accuracy_mean": statistics.fmean(accuracies),
            "test_accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else None,  # none with 1 run
            "repeats": len(runs), "epoch_seconds": [seconds for seconds, _ in runs], "test_accuracy": accuracies}


def parse_args(argv):
    parser = Parser(__doc__)
    parser.add_argument("--model", nargs="+", choices=sorted(LISTINGS), default=["cnn"], help="which listings")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS), help="paths to compare")
    parser.add_argument("--epochs", type=positive_int, default=10, help="epochs per training run")
    parser.add_argument("--batch-size", type=positive_int, default=128, help="minibatch size")
    parser.add_argument("--repeats", type=positive_int, default=1, help="runs per path (seeds 0..N-1)")
    parser.add_argument("--json", metavar="FILE", default="outputs/bench_train.json", help="where the JSON goes")
    add_data_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        outputs.prepare_output_dir(os.path.dirname(os.path.abspath(args.json)))
    except outputs.OutputError as exc:
        ch1.fail(str(exc).replace("--output-dir", "--json"))
    data = ch1.load_data(args)
    backend, device = keras.backend.backend(), describe_device()
    print(f"{device}; Keras {keras.__version__}, backend {backend}; {args.epochs} epochs, "
          f"batch {args.batch_size}, {args.repeats} repeat(s){'; smoke data' if args.smoke else ''}", flush=True)
    runs = {(m, p): [] for m in args.model for p in args.paths}
    for seed in range(args.repeats):
        for name in args.model:
            listing, optimizer = LISTINGS[name]
            for path in args.paths:
                start = time.perf_counter()
                seconds, accuracy = train_once(listing, optimizer, path, data, args.epochs, args.batch_size, seed)
                runs[(name, path)].append((seconds, accuracy))
                print(f"  {name} {path:8s} seed {seed}: {time.perf_counter() - start:6.1f}s, "
                      f"epochs {' '.join(f'{s:.2f}' for s in seconds)}, test {100 * accuracy:.2f}%", flush=True)
    results = []
    for (name, path), done in runs.items():
        summary = {"model": name, "path": path, **summarize(done)}
        if path == "fast" and not ch1.train.fast_path_available():
            summary["note"] = f"no fast path on {backend}: model.fit"
        results.append(summary)
    print()
    print("| model | path | steady s/epoch | compile s | test accuracy % | speed-up vs plain |")
    print("|---|---|---|---|---|---|")
    for r in results:
        plain = next((p for p in results if p["model"] == r["model"] and p["path"] == "plain"), None)
        r["speedup_vs_plain"] = plain["steady_s_per_epoch"] / r["steady_s_per_epoch"] if plain else None
        ratio = f"{r['speedup_vs_plain']:.2f}x" if r["speedup_vs_plain"] else "—"
        print(f"| {r['model']} | {r['path']}{' (' + r['note'] + ')' if 'note' in r else ''} "
              f"| {r['steady_s_per_epoch']:.3f} | {r['compile_s']:.2f} "
              f"| {outputs.mean_std(r['test_accuracy_mean'], r['test_accuracy_std'])} (n={r['repeats']}) | {ratio} |")
    report = {"device": device, "backend": backend, "versions": versions(), "epochs": args.epochs,
              "batch_size": args.batch_size, "repeats": args.repeats, "smoke": args.smoke, "results": results}
    outputs.write_json(args.json, report)
    print(f"\nWrote {args.json}")
    return report


if __name__ == "__main__":
    main()
