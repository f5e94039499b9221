"""Write the docs' generated parts from what the runs themselves recorded; never type a number.

docs/chapter1.md whole (the chapter re-run, in the book's order), and the blocks between
``<!-- name:begin -->`` and ``<!-- name:end -->`` in README.md and docs/*.md, from
results/listings/ (the listings' runs), results/records*.jsonl (reproduce.py) and the
benchmarks' JSON under results/. A second run changes nothing.

    python make_docs.py
"""

import glob
import importlib
import json
import os
import pathlib
import re

from ch1 import quiet_startup
from ch1.cli import Parser

if __name__ == "__main__":
    Parser(__doc__).parse_args()  # --help or a stray argument answers here, at once: before Keras loads TensorFlow
quiet_startup()  # the listings' summaries are built with Keras: its start-up notices stay off stderr

import keras

from ch1.run import read_run
from study import cnn_study, records, report
from study.results import write_text
from study.stats import markdown, mean_std
from study.tables import LISTING_1_4_2, LISTINGS, TABLES, row

RESULTS = "results"
LISTINGS_DIR = os.path.join(RESULTS, "listings")
CHAPTER = os.path.join("docs", "chapter1.md")


def _json(path):
    """A benchmark's or the sampler's JSON (not a run: ch1.run.read_run reads those)."""
    with open(path) as f:
        return json.load(f)


def per_file(folder, render, nothing, sep="\n\n", made=""):
    """``render(path, contents)`` of each JSON file in ``folder`` (one per machine), then ``made``; else ``nothing``."""
    parts = [render(path, _json(path)) for path in sorted(glob.glob(os.path.join(folder, "*.json")))]
    return sep.join(parts) + made if parts else nothing


def listing_runs(folder):
    """Each listing's run (<folder>/<name>.json) or None; a --smoke run or not a run stops with one line."""
    runs = {}
    for key, listing in LISTINGS.items():
        path = os.path.join(folder, listing.name + ".json")
        try:
            runs[key] = read_run(path) if os.path.exists(path) else None
        except ValueError as exc:
            raise SystemExit(f"{path}: {exc}") from None
        if runs[key] and runs[key]["smoke"]:
            raise SystemExit(f"{path}: a --smoke run; the docs show full runs")
    return runs


def test_line(run):
    """The book's last line as the run printed it: ``Test accuracy: 99.3%``."""
    return "Test accuracy: %.1f%%" % (100.0 * run["test_accuracy"])


def listings_block(folder):
    """README's map of the four listings: file, model, params, the book's and the measured test accuracy."""
    sampler = os.path.join(folder, "mnist-samples.json")
    cells = []
    if os.path.exists(sampler):
        cells.append(["1.3.1", "`mnist_sampler.py`", "— (counts the digits, plots 25)", "—", "—", "—",
                      f"`Train labels:  {{0: {_json(sampler)['train_labels']['0']}, ...}}`, then `Test labels: ...`"])
    runs = listing_runs(folder)
    devices, versions = set(), set()
    for key, listing in LISTINGS.items():
        run, book = runs[key], book_accuracy(listing, "Table")
        if run:
            devices.add(f"{run['backend']} on {run['device']}")
            versions.add(", ".join(f"{k} {v}" for k, v in run["versions"].items()))
        cells.append([listing.number, f"`{listing.script}`", MODELS[key], f"{run['params'] if run else listing.params:,}",
                      book, *(["not run yet", ""] if run is None else [
                          f"**{100 * run['test_accuracy']:.2f}%** ({run['epochs']} epochs, seed {run['seed']}, "
                          f"{run['fit_seconds'] / 60:.0f} min)", f"`{test_line(run)}`"])])
    return (markdown(["listing", "file", "model", "params", "the book's test accuracy", "measured here",
                      "the book's print, as a run shows it"], cells) +
            f"\n\nMeasured with {'; '.join(sorted(devices)) or 'nothing yet'} ({'; '.join(sorted(versions))}). "
            f"Made by `python make_docs.py` from `{folder}/*.json`.")


MODELS = {
    "mlp": "Dense(256)-ReLU-Dropout(0.45) x2, Dense(10)-softmax; Adam, 20 epochs",
    "cnn": "Conv2D(64, 3)-ReLU-MaxPool(2) x2, Conv2D(64, 3)-ReLU, Dropout(0.2), Dense(10)-softmax; Adam, 10 epochs",
    "rnn": "SimpleRNN(256, dropout=0.2) over 28 rows, Dense(10)-softmax; SGD, 20 epochs",
}


def bench_table(path, b):
    """One training benchmark's JSON (benchmarks/bench_train.py): steady s/epoch, compile s, accuracy, speed-up."""
    return (f"`{path}`: {b['device']}, Keras backend {b['backend']} "
            f"({', '.join(f'{k} {v}' for k, v in b['versions'].items())}); {b['epochs']} epochs, batch "
            f"{b['batch_size']}, {b['repeats']} repeat(s) (seeds 0..{b['repeats'] - 1}){', smoke data' * b['smoke']}."
            "\n\n" + markdown(
                ["model", "path", "steady s/epoch", "compile s", "test accuracy %", "speed-up vs plain fit"],
                [[r["model"], r["path"], f"{r['steady_s_per_epoch']:.3f}",
                  f"{r['compile_s']:.1f}", mean_std(r["test_accuracy_mean"], r["test_accuracy_std"]),
                  f"{r['speedup_vs_plain']:.2f}x" if r["speedup_vs_plain"] else "—"] for r in b["results"]]))


def serve_line(path, b):
    """The page's round trip (benchmarks/bench_serve.py), one line per JSON file."""
    return (f"- `{path}`: median **{b['median_ms']:.0f} ms**, p90 {b['p90_ms']:.0f} ms over {b['requests']} "
            f"requests ({b['model']}, Keras backend {b['backend']}, {b['device']['device']})")


def photos_table(result):
    """The hit rate per kind of photo (benchmarks/bench_photos.py)."""
    return markdown(["kind", "read right", "unreadable"],
                    [["MNIST itself (the same digits, 28x28)", f"{100 * result['mnist_accuracy']:.0f}%", "—"]] +
                    [[kind, f"{100 * read['hit_rate']:.0f}%", read["refused"]] for kind, read in result["kinds"].items()])


def photos_block(path, r):
    return (f"{photos_table(r)}\n\n`{path}`: {r['digits']} test digits per kind, seed {r['seed']}, {r['model']} "
            f"(Keras backend {r['backend']}, {r['device']['device']}); preparing one {r['photo_size']}-pixel "
            f"photo takes {r['prepare_ms_median']:.0f} ms (median).")


# --- docs/chapter1.md -------------------------------------------------------------------------


def summary(listing):
    """What ``model.summary()`` prints for the listing's model, built in a fresh session (a run's layer names)."""
    keras.backend.clear_session()
    lines = []
    importlib.import_module(listing.module).build_model().summary(
        print_fn=lambda text, line_break=True: lines.append(text))
    return "\n".join(lines).rstrip()


def _figure(name, alt):
    path = os.path.join("docs", "figures", name)
    return f"![{alt}](figures/{name})" if os.path.exists(path) else f"*({path} is not made yet: `python figures.py "\
        f"--output-dir docs/figures`)*"


def book_accuracy(listing, table):
    """The test accuracy the listing states, and its table row's where that differs ("Table 1.4.1: ...")."""
    table_test = row(listing.table, listing.row).book_test
    return f"{listing.book_test}%" + ("" if table_test == listing.book_test else
                                     f" ({table} {listing.table}: {table_test}%)")


def _listing_section(key, run, found):
    listing, table = LISTINGS[key], TABLES[LISTINGS[key].table]
    head = f"## Listing {listing.number}: `{listing.script}`\n\n{MODELS[key]}.\n"
    if run is None:
        return head + f"\nNot run yet: `python {listing.script} --output-dir results/listings`.\n"
    rows = report.summarize(table, found, report.book_budget(table))
    parts = [head, markdown(["", "the book", "this run"], [
        ["parameters (`Total params`)", f"{listing.params:,}", f"{run['params']:,}"],
        ["epochs, batch", f"{table.epochs}, 128", f"{run['epochs']}, {run['batch_size']}"],
        ["test accuracy", book_accuracy(listing, "its row of Table"), f"{100 * run['test_accuracy']:.2f}% (`{test_line(run)}`)"],
        ["training accuracy, last epoch", "—", f"{100 * run['train_accuracy']:.2f}%"]]), "",
             f"What `python {listing.script}` printed: the summary, then the book's own print (Keras' progress bar "
             f"between them and the `Wrote ...` line after are left out), on {run['device']}, Keras backend "
             f"{run['backend']}, seed {run['seed']}:", "", "```text", summary(listing), "...", test_line(run), "```",
             "", f"Its last epoch ({run['epochs']} of {run['epochs']}), from the run's JSON: {run['epoch_seconds'][-1]:.1f} s, training "
             f"accuracy {run['history']['accuracy'][-1]:.4f}, loss {run['history']['loss'][-1]:.4f}.", ""]
    if key == "cnn":
        parts += ["Listing 1.4.2 as the book prints it: the same shapes and counts; Keras 3 numbers its layers "
                  "from `conv2d`, Keras 2 from `conv2d_1`.", "",
                  markdown(["the book (Keras 2)", "output shape", "params"], [[f"{name} ({kind})", shape, f"{params:,}"]
                           for name, kind, shape, params in LISTING_1_4_2]), ""]
    parts += [_figure(f"{listing.name}.png", f"{listing.name}: the model diagram plot_model draws"), ""]
    if key == "cnn":
        parts += ["The chapter's figures made real: a 3x3 kernel of the trained CNN's first layer over a test "
                  "digit and the 26x26 feature maps it yields (Figures 1.4.2-1.4.3), and MaxPooling2D(2) on one "
                  "of them (Figure 1.4.4):", "", _figure("cnn-kernel.png", "a 3x3 kernel and its feature maps"), "",
                  _figure("cnn-maxpool.png", "MaxPooling2D(2) on a feature map"), ""]
    parts += [f"Table {table.id}, {table.title}: the book's numbers beside the re-run ({sum(r['n'] for r in rows)} "
              f"runs, mean ± std over the seeds recorded; `python reproduce.py --table {table.id}`):\n\n"
              + report.markdown_table(table, rows)]
    if key == "mlp":
        parts += ["Why the plain-SGD rows fall short at 20 epochs, and what budget reaches the book: "
                  "[the tables' page](tables.md#why-the-books-plain-sgd-rows-beat-the-20-epoch-re-run)."]
    if key == "cnn":
        parts += [cnn_study.section(found, level=3, figures="figures")]
    return "\n".join(parts) + "\n"


def chapter_page(listings_folder, found):
    """docs/chapter1.md: the chapter re-run, from the records and the committed run outputs."""
    parts = ["# Chapter 1, re-run\n",
             f"Generated by `python make_docs.py` from `{listings_folder}/*.json` (each listing's own run), "
             f"`{RESULTS}/records*.jsonl` (`reproduce.py`'s runs) and `docs/figures/` (`figures.py`); do not edit "
             "by hand. The book's numbers come from `study/tables.py`. In the book's order:\n"]
    sampler = os.path.join(listings_folder, "mnist-samples.json")
    parts.append("## Listing 1.3.1: `mnist_sampler.py`\n")
    if os.path.exists(sampler):
        s = _json(sampler)
        counts = {name: "{" + ", ".join(f"{k}: {v}" for k, v in s[name].items()) + "}"
                  for name in ("train_labels", "test_labels")}
        parts += [f"What `python mnist_sampler.py` printed (seed {s['seed']}): how many of each digit MNIST's "
                  "60,000 training and 10,000 test images hold, then 25 random training digits.\n",
                  "```text", f"Train labels:  {counts['train_labels']}", f"Test labels:  {counts['test_labels']}",
                  "```\n", _figure("mnist-samples.png", "25 random MNIST training digits") + "\n"]
    else:
        parts.append("Not run yet: `python mnist_sampler.py --output-dir results/listings`.\n")
    runs = listing_runs(listings_folder)
    for key in ("mlp", "cnn", "rnn"):
        parts.append(_listing_section(key, runs[key], found))
    return "\n".join(parts).rstrip() + "\n"


# --- writing ----------------------------------------------------------------------------------


def fill(text, name, body):
    """``text`` with the block ``name`` between its markers replaced by ``body``."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    return re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: f"{begin}\n{body}\n{end}", text, flags=re.S)


def main(argv=None):
    Parser(__doc__).parse_args(argv)
    found = records.read_records(RESULTS, quiet=True)
    blocks = {"listings": listings_block(LISTINGS_DIR),
              "bench": per_file(f"{RESULTS}/bench", bench_table, "No benchmark recorded yet.",
                                made="\n\nMade by `python make_docs.py` from the benchmark's JSON files."),
              "serve": per_file(f"{RESULTS}/serve", serve_line, "No round trip measured yet.", "\n"),
              "photos": per_file(f"{RESULTS}/photos", photos_block, "No photos read yet.")}
    texts = {path: pathlib.Path(path).read_text() for path in
             ["README.md"] + sorted(p for p in glob.glob(os.path.join("docs", "*.md")) if p != CHAPTER)}
    for name, body in blocks.items():
        holders = [p for p, text in texts.items() if f"<!-- {name}:begin -->" in text]
        if len(holders) != 1:
            raise SystemExit(f"the block {name!r} must be in exactly one of README.md and docs/*.md; found in "
                             f"{holders or 'none'}")
        texts[holders[0]] = fill(texts[holders[0]], name, body)
    for path, text in [*texts.items(), (CHAPTER, chapter_page(LISTINGS_DIR, found))]:
        write_text(path, text)
    print(f"Wrote {', '.join(texts)} and {CHAPTER}")


if __name__ == "__main__":
    main()
