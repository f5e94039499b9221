"""Classify your own digit images with a trained Chapter 1 model, or draw them on a web page.

Each image (PNG, JPEG, ...; any size, colour or grey, dark on light or light on dark) is prepared as
MNIST was made (your_digit/digits.py) and printed with the top-3 probabilities, after a line naming
the model (any listing's .keras: your_digit/model_file.py) and the run that made it. Without
``--model``: ``outputs/cnn-mnist.keras`` here, else the project's own beside predict.py. ``--serve``
starts a local page to draw on instead (your_digit/serve.py). Examples: docs/your-digit.md.

    python predict.py digit.png photo.jpg               # e.g. `photo.jpg: 7  (7 98.1%, 1 1.2%, 9 0.4%)`
"""

import argparse
import os
import sys

from ch1 import quiet_startup
from ch1.cli import Parser, ensure_output_dir, error, fail, printable

DEFAULT_MODEL = os.path.join("outputs", "cnn-mnist.keras")
TRAIN_FIRST = (f"train one first (python cnn_mnist.py saves {DEFAULT_MODEL}; python mlp_mnist.py, a minute, "
               f"saves {os.path.join('outputs', 'mlp-mnist.keras')}: give it with --model)")
PROJECT = os.path.dirname(os.path.realpath(__file__))  # where the project's own outputs/ is, however predict.py is run


def default_model():
    """``outputs/cnn-mnist.keras`` here, else the project's own beside predict.py; neither: one line, exit 2."""
    own = os.path.join(PROJECT, DEFAULT_MODEL)
    for path in (DEFAULT_MODEL, own):
        if os.path.lexists(path):
            return path
    where = "" if os.path.realpath(os.curdir) == PROJECT else f" here, nor the project's own {own}"
    fail(f"--model {DEFAULT_MODEL}: no such file{where}; {TRAIN_FIRST}")


def port(text):
    """A port (an argparse type): 0 (any free one) to 65535."""
    if not (text.isascii() and text.isdigit() and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"must be from 0 (any free port) to 65535, got {text!r}")
    return int(text)


def parse_args(argv):
    parser = Parser(__doc__)
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="image files of one digit each (PNG, JPEG, ...)")
    parser.add_argument("--model", metavar="PATH", default=argparse.SUPPRESS,  # not given: default_model()
                        help=f"a saved model of the listings (.keras): CNN, MLP or RNN (default: {DEFAULT_MODEL} "
                             "here or, where there is none, the project's own beside predict.py)")
    parser.add_argument("--show", action="store_true",
                        help="also write <output-dir>/<image-stem>-seen.png: the input beside the 28x28 the model saw")
    parser.add_argument("--output-dir", metavar="DIR", default="outputs", help="where --show writes")
    parser.add_argument("--serve", action="store_true",
                        help="no IMAGE: serve a page to draw or drop digits on, and its API (POST /predict)")
    parser.add_argument("--host", default="127.0.0.1", help="--serve: the address to listen on")
    parser.add_argument("--port", type=port, default=8000, help="--serve: the port (0: any free one)")
    args = parser.parse_args(argv)
    if args.serve and args.images:
        parser.error(f"--serve takes no IMAGE (got {printable(args.images[0])})")
    if args.serve and args.show:
        parser.error("--show applies to IMAGE files, not to --serve")
    if not args.serve and not args.images:
        parser.error("the following arguments are required: IMAGE (or --serve)")
    if "model" not in args:
        args.model = default_model()
    return args


if __name__ == "__main__":
    parse_args(None)  # --help or a mistyped flag answers here, at once: before Keras loads TensorFlow
quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import numpy as np

from ch1 import outputs
from ch1.data import prepare_images
from ch1.files import reason
from ch1.run import read_run
from your_digit import model_file
from your_digit.digits import ImageError, probabilities, read_image, to_mnist
from study.tables import LISTINGS, TABLES

BATCH = 16  # images read, classified and reported at a time: memory stays bounded however many are given


def load_classifier(path):
    """A saved MNIST classifier (your_digit/model_file.py); anything else exits with one line, status 2."""
    try:
        return model_file.load_classifier(path, f"--model {path}")
    except model_file.ModelFileError as exc:
        fail(f"{exc}; {TRAIN_FIRST}" if not os.path.lexists(path) else str(exc))


def describe_run(path):
    """Which run made the model at ``path``, in words, from its ``<stem>.json`` (ch1.run.read_run): listing,
    epochs (against the book's), seed, test accuracy, a smoke run; or that the JSON is missing or unreadable."""
    stem = os.path.splitext(path)[0]
    name = printable(os.path.basename(stem) + ".json")
    if not os.path.lexists(stem + ".json"):
        return f"no {name} beside it: which run made it is unknown"
    try:
        record = read_run(stem + ".json")
    except (OSError, ValueError):
        return f"its {name} is unreadable"
    listing = next((listing for listing in LISTINGS.values() if listing.name == record["name"]), None)
    epochs, book = record["epochs"], TABLES[listing.table].epochs if listing else None
    s = "s" if epochs != 1 else ""
    parts = [f"Listing {listing.number}"] if listing else []
    if not record["smoke"]:
        parts.append(f"{epochs} of the book's {book} epochs" if book and epochs < book else f"{epochs} epoch{s}")
    parts += [f"seed {record['seed']}", f"test accuracy {100 * record['test_accuracy']:.2f}%"]
    if record["smoke"]:
        parts.append(f"a smoke run: {epochs} short epoch{s}"
                     + (f"; python {listing.script} trains the book's run" if listing else ""))
    return ", ".join(parts)


def classify(model, images):
    """Probabilities (N, 10) for uint8 28x28 images, shaped for the model (MLP, CNN or RNN); all NaN
    in a row where the model's outputs for that image are not all finite (a broken model)."""
    x = prepare_images(np.asarray(images), model.input_shape[1:])
    outputs = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    finite = np.isfinite(outputs).all(axis=1)
    probs = np.full(outputs.shape, np.nan)
    if finite.any():
        probs[finite] = probabilities(outputs[finite])
    return probs


def seen_path(output_dir, path, taken):
    """``<output-dir>/<image-stem>-seen.png``; a second image of the same stem gets ``-2``, ..."""
    stem = os.path.splitext(os.path.basename(path))[0] or "image"
    name, n = f"{stem}-seen.png", 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}-seen.png"
    taken.add(name)
    return os.path.join(output_dir, name)


def save_seen(out, shown, seen, title):
    """The input beside the 28x28 the model saw, as one PNG."""
    fig, (ax_in, ax_seen) = outputs.plt.subplots(1, 2, figsize=(7, 3.6))
    ax_in.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=255)
    ax_seen.imshow(seen, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax_in.set(title="input", xticks=[], yticks=[])
    ax_seen.set(title="seen by the model (28x28)", xticks=[], yticks=[])
    fig.suptitle(title)
    fig.tight_layout()
    return outputs.save_figure(fig, out, dpi=100)


def main(argv=None):
    """Classify the images ``BATCH`` at a time; return the results (file, digit, top3, probabilities, seen).
    An unusable image is one error line, the others still classified, then exit status 2; a bad model or
    output folder exits at once (2). ``--serve``: the page, until Ctrl-C."""
    for stream in (sys.stdout, sys.stderr):  # a file name no locale can print must not crash a line
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = parse_args(argv)
    model = load_classifier(args.model)
    about = describe_run(args.model)
    if args.serve:
        from your_digit import serve

        # The page names the file alone: it may be reached from other machines.
        return serve.serve(model, args.host, args.port, label=f"{printable(args.model)} ({about})",
                           page_label=f"{printable(os.path.basename(args.model))} ({about})")
    if args.show:
        ensure_output_dir(args.output_dir)
    print(f"Model: {printable(args.model)} ({about})")
    results, failed, taken = [], 0, set()
    for start in range(0, len(args.images), BATCH):
        failed += classify_files(model, args.images[start:start + BATCH], args, taken, results)
    if failed:
        raise SystemExit(2)
    return results


def prepared(path):
    """``(28x28 uint8 as the model sees it, the image as shown)``, or ``(None, its error line)``."""
    try:
        grey, shown = read_image(path)
        return to_mnist(grey, path), shown
    except ImageError as exc:
        return None, str(exc)


def classify_files(model, paths, args, taken, results):
    """Read, classify and report ``paths`` (a few; held only here), adding to ``results``; the error lines."""
    images = [(path, *prepared(path)) for path in paths]
    good = [seen for _, seen, _ in images if seen is not None]
    probs = iter(classify(model, np.stack(good)) if good else [])
    failed = 0
    for path, seen, shown in images:
        p = None if seen is None else next(probs)
        if p is None or not np.isfinite(p).all():
            error(shown if p is None else f"{path}: --model {args.model} gave NaN or infinite outputs for it "
                                          "(a broken model)")
            failed += 1
            continue
        top3 = [(int(d), float(p[d])) for d in np.argsort(-p, kind="stable")[:3]]
        digit = top3[0][0]
        result = {"file": path, "digit": digit, "top3": top3, "probabilities": [float(v) for v in p], "seen": None}
        print(f"{printable(path)}: {digit}  ({', '.join(f'{d} {100 * q:.1f}%' for d, q in top3)})")
        if args.show:
            try:
                result["seen"] = save_seen(seen_path(args.output_dir, path, taken), shown, seen,
                                           f"{printable(os.path.basename(path))}: {digit} ({100 * top3[0][1]:.1f}%)")
            except OSError as exc:  # the disk full: nothing half-written is left (ch1.files.atomic_path)
                fail(f"--output-dir {args.output_dir}: cannot write ({reason(exc)})")
            print(f"  wrote {printable(result['seen'])}")
        results.append(result)
    return failed


if __name__ == "__main__":
    main()
