"""Write the README's measured tables from the JSON files that the runs themselves wrote.

    python mlp_mnist.py --output-dir results/listings      # (and cnn_mnist.py, rnn_mnist.py)
    python -m benchmarks.bench_train --json results/bench/cpu-tensorflow-cnn.json
    python readme_results.py             # rewrites the tables between the markers in README.md

The tables are never typed by hand: each cell comes from results/listings/<name>.json,
results/bench*/*.json, results/serve, results/photos, or reproduce.py's records (the SGD budget study).
"""

import argparse
import glob
import json
import os
import re

from tools import records, sgd_study
from tools.stats import mean_std
from tools.tables import LISTINGS, row

MARKERS = {"listings": ("<!-- listing-results:begin -->", "<!-- listing-results:end -->"),
           "bench": ("<!-- bench:begin -->", "<!-- bench:end -->"),
           "sweep": ("<!-- sweep:begin -->", "<!-- sweep:end -->"),
           "serve": ("<!-- serve:begin -->", "<!-- serve:end -->"),
           "photos": ("<!-- photos:begin -->", "<!-- photos:end -->"),
           "sgd": ("<!-- sgd-study:begin -->", "<!-- sgd-study:end -->")}


def table(folder):
    lines = ["| script | listing | params | epochs | book's test accuracy | measured test accuracy "
             "| train accuracy (last epoch) | s per epoch | seed | backend and device |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    versions = set()
    for listing in LISTINGS.values():
        script, table_test = listing.script, row(listing.table, listing.row).book_test
        book = f"{listing.book_test}%"
        if table_test != listing.book_test:
            book += f" (Table {listing.table}: {table_test}%)"
        path = os.path.join(folder, listing.name + ".json")
        if not os.path.exists(path):
            lines.append(f"| `{script}` | {listing.number} | | | {book} | not run yet | | | | |")
            continue
        with open(path) as f:
            r = json.load(f)
        if r["smoke"]:
            raise SystemExit(f"{path}: a --smoke run; the README shows full runs")
        versions.add(", ".join(f"{k} {v}" for k, v in r["versions"].items()))
        lines.append(f"| `{script}` | {r['listing']} | {r['params']:,} | {r['epochs']} | {book} "
                     f"| **{100 * r['test_accuracy']:.2f}%** | {100 * r['train_accuracy']:.2f}% "
                     f"| {r['seconds_per_epoch']:.1f} | {r['seed']} | {r['backend']}, {r['device']} |")
    lines.append("")
    lines.append(f"Versions: {'; '.join(sorted(versions)) or 'none yet'}. "
                 f"Made by `python readme_results.py` from `{folder}/*.json`.")
    return "\n".join(lines)


def bench_tables(folder):
    """One table per benchmark JSON: steady s/epoch, compile s, accuracy, speed-up over plain fit."""
    blocks = []
    for path, b in _json_files(folder):
        versions = ", ".join(f"{k} {v}" for k, v in b["versions"].items())
        lines = [f"`{path}`: {b['device']}, Keras backend {b['backend']} ({versions}); {b['epochs']} epochs, "
                 f"batch {b['batch_size']}, {b['repeats']} repeat(s) (seeds 0..{b['repeats'] - 1})"
                 f"{', smoke data' if b['smoke'] else ''}.", "",
                 "| model | path | steady s/epoch | compile s | test accuracy % | speed-up vs plain fit |",
                 "|---|---|---|---|---|---|"]
        for r in b["results"]:
            note = f" ({r['note']})" if r.get("note") else ""
            ratio = f"{r['speedup_vs_plain']:.2f}x" if r.get("speedup_vs_plain") else "—"
            # One repeat has no spread (older files wrote 0.0 for it).
            std = r.get("test_accuracy_std") if r.get("repeats", b["repeats"]) > 1 else None
            accuracy = mean_std(r["test_accuracy_mean"], std)
            lines.append(f"| {r['model']} | {r['path']}{note} | {r['steady_s_per_epoch']:.3f} | {r['compile_s']:.1f} "
                         f"| {accuracy} | {ratio} |")
        blocks.append("\n".join(lines))
    if not blocks:
        return "No benchmark recorded yet."
    return "\n\n".join(blocks) + "\n\nMade by `python readme_results.py` from the benchmark's JSON files."


def _differences(b):
    if b["same_numbers"]:
        return "yes"
    if "differ" not in b:
        return "**no**"
    return "**no**, " + "; ".join(f"{d['trial']}'s test accuracy {100 * d['test_accuracy'][0]:.2f}% against "
                                 f"{100 * d['test_accuracy'][1]:.2f}%" for d in b["differ"])


def sweep_tables(folder):
    """The sweep layouts' throughput (benchmarks/bench_sweep.py), one table per JSON file."""
    blocks = []
    for path, b in _json_files(folder):
        lines = [f"`{path}`: {b['device']}, Keras backend {b['backend']}; {b['trials']} trials of {b['epochs']} "
                 f"epochs each; the same numbers in both layouts: {_differences(b)}.", "",
                 "| layout | wall s | trials per hour |", "|---|---|---|"]
        for layout in b["layouts"]:
            lines.append(f"| `--workers {layout['workers']}` ({layout['threads_per_worker']} thread(s) each) "
                         f"| {layout['wall_s']:.0f} | {layout['trials_per_hour']:.1f} |")
        blocks.append("\n".join(lines))
    if not blocks:
        return "No sweep benchmark recorded yet."
    return "\n\n".join(blocks) + "\n\nMade by `python readme_results.py` from `benchmarks/bench_sweep.py`'s JSON."


def _json_files(folder):
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as f:
            yield path, json.load(f)


def serve_lines(folder):
    """The page's round trip (benchmarks/bench_serve.py), one line per JSON file."""
    lines = [f"- `{path}`: median **{b['median_ms']:.0f} ms**, p90 {b['p90_ms']:.0f} ms over {b['requests']} "
             f"requests ({b['model']}, Keras backend {b['backend']}, {b['device']['device']})"
             for path, b in _json_files(folder)]
    return "\n".join(lines) or "No round trip measured yet."


def photos_table(result):
    """The hit rate per kind of photo (benchmarks/bench_photos.py)."""
    lines = ["| kind | read right | unreadable |", "|---|---|---|",
             f"| MNIST itself (the same digits, 28x28) | {100 * result['mnist_accuracy']:.0f}% | — |"]
    for kind, read in result["kinds"].items():
        lines.append(f"| {kind} | {100 * read['hit_rate']:.0f}% | {read['refused']} |")
    return "\n".join(lines)


def photos_tables(folder):
    blocks = [f"{photos_table(r)}\n\n`{path}`: {r['digits']} test digits per kind, seed {r['seed']}, {r['model']} "
              f"(Keras backend {r['backend']}, {r['device']['device']}); preparing one {r['photo_size']}-pixel "
              f"photo takes {r['prepare_ms_median']:.0f} ms (median)." for path, r in _json_files(folder)]
    return "\n\n".join(blocks) or "No photos read yet."


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--runs", default="results/listings", help="folder with the runs' <name>.json")
    parser.add_argument("--bench", default="results/bench", help="folder with benchmark JSON files")
    parser.add_argument("--sweep", default="results/bench-sweep", help="folder with the sweep benchmark's JSON")
    parser.add_argument("--serve", default="results/serve", help="folder with the page's round-trip JSON")
    parser.add_argument("--photos", default="results/photos", help="folder with the photo benchmark's JSON")
    parser.add_argument("--records", default="results", help="folder with reproduce.py's records*.jsonl")
    parser.add_argument("--readme", default="README.md")
    args = parser.parse_args(argv)
    with open(args.readme) as f:
        text = f.read()
    for key, body in (("listings", table(args.runs)), ("bench", bench_tables(args.bench)),
                      ("sweep", sweep_tables(args.sweep)), ("serve", serve_lines(args.serve)),
                      ("photos", photos_tables(args.photos)), ("sgd", sgd_study.docs_block(records.read_records(args.records, quiet=True), args.records))):
        begin, end = MARKERS[key]
        if begin not in text or end not in text:
            raise SystemExit(f"{args.readme}: no {begin} ... {end} markers")
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: f"{begin}\n{body}\n{end}", text,
                      flags=re.S)
    with open(args.readme + ".tmp", "w") as f:
        f.write(text)
    os.replace(args.readme + ".tmp", args.readme)
    print(f"Wrote the measured tables into {args.readme}")


if __name__ == "__main__":
    main()
