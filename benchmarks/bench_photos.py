"""How well digits photographed on paper are read: the hit rate per kind of photo.

Photographs the first N MNIST test digits in each kind of benchmarks/photos.py (deterministic for a
seed), reads each as ``predict.py`` reads a file (your_digit/digits.py), classifies it with a saved
model, and prints a Markdown table of the hit rate per kind beside the model's accuracy on the same
digits as MNIST holds them. Writes the JSON (default results/photos/photos-<backend>.json) from
which ``python make_docs.py`` writes the docs' table.

    python -m benchmarks.bench_photos                     # outputs/cnn-mnist.keras, 100 digits per kind
"""

from ch1 import quiet_startup

quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import os
import time

import keras
import numpy as np

import predict
import make_docs
from benchmarks import photos
from ch1 import device, files
from ch1.cli import Parser, add_data_arg, positive_int, seed_number, writable_output_file
from ch1.run import load_data
from your_digit.digits import ImageError, decode_image, to_mnist


def main(argv=None):
    parser = Parser(__doc__)
    parser.add_argument("--model", metavar="PATH", default=predict.DEFAULT_MODEL, help="a saved model of the listings")
    add_data_arg(parser)
    parser.add_argument("--digits", type=positive_int, default=100, help="test digits photographed per kind")
    parser.add_argument("--seed", type=seed_number, default=0, help="the photos' random seed")
    parser.add_argument("--json", metavar="FILE", help="the JSON; default results/photos/photos-<backend>.json")
    args = parser.parse_args(argv)
    args.smoke = False  # the whole test set
    out = args.json or os.path.join("results", "photos", f"photos-{keras.backend.backend()}.json")
    writable_output_file(out, "--json")
    model = predict.load_classifier(args.model)
    _, (x_test, y_test) = load_data(args)
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
    result = {"benchmark": "photos", "model": args.model, "backend": keras.backend.backend(),
              "digits": args.digits, "seed": args.seed, "mnist_accuracy": float((mnist == labels).mean()),
              "kinds": {}, "prepare_ms_median": round(float(np.median(prepare_ms)), 1),
              "photo_size": photos.PHOTO_SIZE, "device": device.describe(), "versions": device.versions()}
    for kind, row in kinds.items():
        read = predict.classify(model, np.stack(row["seen"])).argmax(axis=1) if row["seen"] else np.array([])
        hits = int((read == np.array(row["labels"])).sum())
        result["kinds"][kind] = {"hit_rate": hits / args.digits, "hits": hits, "refused": row["refused"]}
    files.write_json(out, result)
    print(make_docs.photos_table(result))
    print(f"Wrote {out} ({time.perf_counter() - start:.0f} s; preparation median {result['prepare_ms_median']} ms)")
    return result


if __name__ == "__main__":
    main()
