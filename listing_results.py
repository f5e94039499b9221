"""Write the README's table of measured listing runs from the runs' own JSON files.

    python mlp_mnist.py --output-dir results/listings
    python cnn_mnist.py --output-dir results/listings
    python rnn_mnist.py --output-dir results/listings
    python listing_results.py            # rewrites the table between the markers in README.md

The table is never typed by hand: each cell comes from a results/listings/<name>.json.
"""

import argparse
import json
import os
import re

LISTINGS = [  # name, file, the book's stated test accuracy (../shared/book/chapter1.md)
    ("mlp-mnist", "mlp_mnist.py", "1.3.2", "98.3% (Table 1.3.2: 98.5%)"),
    ("cnn-mnist", "cnn_mnist.py", "1.4.1", "99.4%"),
    ("rnn-mnist", "rnn_mnist.py", "1.5.1", "98.3% (Table 1.5.1: 98.0%)"),
]
BEGIN, END = "<!-- listing-results:begin -->", "<!-- listing-results:end -->"


def table(folder):
    lines = ["| script | listing | params | epochs | book's test accuracy | measured test accuracy "
             "| train accuracy (last epoch) | s per epoch | seed | backend and device |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    versions = set()
    for name, script, listing, book in LISTINGS:
        path = os.path.join(folder, name + ".json")
        if not os.path.exists(path):
            lines.append(f"| `{script}` | {listing} | | | {book} | not run yet | | | | |")
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
                 f"Made by `python listing_results.py` from `{folder}/*.json`.")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--runs", default="results/listings", help="folder with the runs' <name>.json")
    parser.add_argument("--readme", default="README.md")
    args = parser.parse_args(argv)
    with open(args.readme) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{args.readme}: no {BEGIN} ... {END} markers")
    block = f"{BEGIN}\n{table(args.runs)}\n{END}"
    text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    with open(args.readme + ".tmp", "w") as f:
        f.write(text)
    os.replace(args.readme + ".tmp", args.readme)
    print(f"Wrote the listing results into {args.readme}")


if __name__ == "__main__":
    main()
