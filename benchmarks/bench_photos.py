"""How well digits photographed on paper are read: the hit rate per kind of photo.

Makes synthetic photos of the first N MNIST test digits (tests/photos.py: the digit upscaled
and written as ink on paper, photographed as JPEG; deterministic for a seed) in each kind —
plain, ruled paper, squared paper, faint pencil, thin pen, blue ink, red ink, rotated up to
10 degrees, shadowed — reads each as ``predict.py`` reads a file (ch1/digits.py), classifies
it with a saved model, and prints a Markdown table of the hit rate (the share read as the
true label) per kind beside the model's accuracy on the same digits as MNIST holds them.
Writes the JSON (results/photos/photos-<backend>.json) and, with ``--readme``, the table into
README.md between ``<!-- photos:begin -->`` and ``<!-- photos:end -->``.

    python -m benchmarks.bench_photos                     # outputs/cnn-mnist.keras, 100 digits per kind
    python -m benchmarks.bench_photos --digits 200 --readme
"""

from ch1 import quiet_startup

quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import os
import re
import sys
import time

import keras
import numpy as np

import predict
from ch1 import device, outputs
from ch1.cli import Parser, add_data_arg, fail, output_file, positive_int
from ch1.data import DataError, load_mnist
from ch1.digits import ImageError, decode_image, to_mnist

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import photos  # noqa: E402  (tests/photos.py: the synthetic photos, shared with the tests)

BEGIN, END = "<!-- photos:begin -->", "<!-- photos:end -->"


def parse_args(argv):
    parser = Parser(__doc__)
    parser.add_argument("--model", metavar="PATH", default=predict.DEFAULT_MODEL, help="a saved model of the listings")
    add_data_arg(parser)
    parser.add_argument("--digits", type=positive_int, default=100, help="test digits photographed per kind")
    parser.add_argument("--seed", type=int, default=0, help="the photos' random seed")
    parser.add_argument("--output", metavar="PATH", help="the JSON; default results/photos/photos-<backend>.json")
    parser.add_argument("--readme", action="store_true", help="also write the table into README.md's markers")
    return parser.parse_args(argv)


def table(result):
    lines = ["| kind | read right | unreadable |", "|---|---|---|"]
    lines.append(f"| MNIST itself (the same digits, 28x28) | {100 * result['mnist_accuracy']:.0f}% | — |")
    for kind, row in result["kinds"].items():
        lines.append(f"| {kind} | {100 * row['hit_rate']:.0f}% | {row['refused']} |")
    lines.append("")
    lines.append(f"{result['digits']} test digits per kind, seed {result['seed']}, {result['model']} "
                 f"({result['backend']}); made by `python -m benchmarks.bench_photos "
                 f"--digits {result['digits']} --readme`.")
    return "\n".join(lines)


def write_readme(text, path="README.md"):
    with open(path, encoding="utf-8") as f:
        readme = f.read()
    if BEGIN not in readme or END not in readme:
        fail(f"{path}: no {BEGIN} ... {END} markers to write the table between")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    readme = pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", readme, count=1)
    with outputs.atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(readme)


def main(argv=None):
    args = parse_args(argv)
    out = args.output or os.path.join("results", "photos", f"photos-{keras.backend.backend()}.json")
    if not args.output:
        os.makedirs(os.path.dirname(out), exist_ok=True)
    output_file(out, "--output")
    model = predict.load_classifier(args.model)
    try:
        _, (x_test, y_test) = load_mnist(args.data)
    except DataError as exc:
        fail(str(exc))
    images, labels = x_test[:args.digits], y_test[:args.digits]
    mnist = predict.classify(model, images).argmax(axis=1)

    start = time.perf_counter()
    kinds, prepare_ms = {}, []
    for kind, label, body in photos.photo_set(images, labels, seed=args.seed):
        row = kinds.setdefault(kind, {"seen": [], "labels": [], "refused": 0})
        began = time.perf_counter()
        try:
            row["seen"].append(to_mnist(decode_image(body)[0]))
            row["labels"].append(label)
        except ImageError:
            row["refused"] += 1
        prepare_ms.append(1000 * (time.perf_counter() - began))
    result = {"benchmark": "photos", "model": os.path.basename(args.model), "backend": keras.backend.backend(),
              "digits": args.digits, "seed": args.seed, "mnist_accuracy": float((mnist == labels).mean()),
              "kinds": {}, "prepare_ms_median": round(float(np.median(prepare_ms)), 1),
              "photo_size": photos.PHOTO_SIZE, "device": device.describe(), "versions": device.versions()}
    for kind, row in kinds.items():
        hits = 0
        if row["seen"]:
            read = predict.classify(model, np.stack(row["seen"])).argmax(axis=1)
            hits = int((read == np.array(row["labels"])).sum())
        result["kinds"][kind] = {"hit_rate": hits / args.digits, "hits": hits, "refused": row["refused"]}
    outputs.write_json(out, result)
    text = table(result)
    print(text)
    print(f"Wrote {out} ({time.perf_counter() - start:.0f} s; preparation median {result['prepare_ms_median']} ms)")
    if args.readme:
        write_readme(text)
        print("Wrote the table into README.md")
    return result


if __name__ == "__main__":
    main()
