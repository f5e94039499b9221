"""Classify your own digit images with a trained Chapter 1 model, or draw them on a web page.

Reads ordinary image files (PNG, JPEG, ...; any size; a dark digit on light paper or a
light digit on dark; colour or grey), prepares each the way MNIST itself was made, and
prints the predicted digit with the top-3 probabilities. Preparation (your_digit/digits.py):
grey, invert if the background is light, suppress the background (paper texture, uneven
light, ruled or squared paper's lines), find the digit (its largest ink and the strokes
beside it), crop to it, scale its longest side to 20 pixels keeping the aspect ratio, and
paste it into a 28x28 image with its centre of mass at the centre. Any of the three
listings' saved models works (MLP, CNN, RNN): the input shape is read from the model, and
the file is checked before Keras reads it (your_digit/model_file.py). ``--serve`` instead starts a
local web page to draw on (your_digit/serve.py), which prepares what it is sent the same way.

The first line says which run made the model, from the results record its run wrote beside
it (``cnn-mnist.json`` beside ``cnn-mnist.keras``): its listing, epochs, seed and test accuracy,
and whether it was a smoke run (e.g. ``Model: outputs/cnn-mnist.keras (Listing 1.4.1, 10 epochs,
seed 0, test accuracy 99.26%)``). Without ``--model``, the model is ``outputs/cnn-mnist.keras`` in
the current folder or, where it has none, the project's own (beside predict.py).

    python cnn_mnist.py                                 # train; saves outputs/cnn-mnist.keras
    python predict.py digit.png photo.jpg               # e.g. `photo.jpg: 7  (7 98.1%, 1 1.2%, 9 0.4%)`
    python ../project/predict.py digit.png              # from another folder: the project's model
    python predict.py photo.jpg --show                  # also writes outputs/photo-seen.png
    python predict.py digit.png --model outputs/mlp-mnist.keras
    python predict.py --serve                           # draw at http://127.0.0.1:8000/
"""

from ch1 import quiet_startup

quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import argparse
import json
import os
import sys

import numpy as np

from ch1 import outputs
from ch1.cli import SEED_MAX, Parser, ensure_output_dir, error, fail
from ch1.data import prepare_images
from ch1.files import regular_file
from ch1.outputs import plt
from your_digit import model_file
from your_digit.digits import ImageError, probabilities, read_image, to_mnist
from study.tables import LISTINGS, TABLES

DEFAULT_MODEL = os.path.join("outputs", "cnn-mnist.keras")
PROJECT = os.path.dirname(os.path.realpath(__file__))  # where the project's own outputs/ is, however predict.py is run
MAX_RECORD_BYTES = 2**20  # a run's <name>.json: the listings' are about 2 kB; 1 MB of hostile JSON parses in ~25 MB
MAX_EPOCHS = 10**6  # a record claiming more is not a run's
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
TOP = 3
BATCH = 16  # images read, classified and reported at a time: memory stays bounded however many are given


# --- the model ----------------------------------------------------------------------------------


def load_classifier(path):
    """Load a saved MNIST classifier, checked first (your_digit/model_file.py); anything else exits
    with one line and status 2."""
    try:
        return model_file.load_classifier(path, f"--model {printable(path)}")
    except model_file.ModelFileError as exc:
        if not os.path.lexists(path):
            fail(f"{exc}; train one first (python cnn_mnist.py saves {DEFAULT_MODEL})")
        fail(str(exc))


def default_model():
    """The model used without --model: ``outputs/cnn-mnist.keras`` in the current folder or, where that
    folder has none, the project's own beside predict.py (``python ../proj/predict.py x.png`` finds
    it). Neither: one line naming both places, exit 2."""
    own = os.path.join(PROJECT, DEFAULT_MODEL)
    for path in (DEFAULT_MODEL, own):
        if os.path.lexists(path):
            return path
    where = "" if os.path.realpath(os.curdir) == PROJECT else f" here, nor the project's own {printable(own)}"
    fail(f"--model {DEFAULT_MODEL}: no such file{where}; train one first (python cnn_mnist.py saves {DEFAULT_MODEL})")


# --- which run made it --------------------------------------------------------------------------


def describe_run(path):
    """Which run made the model at ``path``, in words, from the results record that run wrote beside
    it (``<stem>.json``): its listing, epochs (against the book's), seed and test accuracy, or that it
    was a smoke run. The record only describes: one missing or unreadable is said so, never an error."""
    folder, base = os.path.split(path)
    stem = os.path.splitext(base)[0]
    name = printable(stem + ".json")
    record_path = os.path.join(folder, stem + ".json")
    if not os.path.lexists(record_path):
        return f"no {name} beside it: which run made it is unknown"
    try:
        record = read_record(record_path)
    except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested too deep for the parser
        return f"its {name} is unreadable"
    listing = next((listing for listing in LISTINGS.values() if listing.name == record["name"]), None)
    epochs, book = record["epochs"], TABLES[listing.table].epochs if listing else None
    parts = [f"Listing {listing.number}"] if listing else []
    if not record["smoke"]:
        parts.append(f"{epochs} of the book's {book} epochs" if book and epochs < book else plural(epochs, "epoch"))
    parts += [f"seed {record['seed']}", f"test accuracy {100 * record['test_accuracy']:.2f}%"]
    if record["smoke"]:
        parts.append(f"a smoke run: {plural(epochs, 'short epoch')}"
                     + (f"; python {listing.script} trains the book's run" if listing else ""))
    return ", ".join(parts)


def read_record(path):
    """A run's results record (its ``<name>.json``) as a dict; ValueError unless it is a regular file of
    at most ``MAX_RECORD_BYTES`` of UTF-8 JSON with the fields a description reads, each of its type
    and in its range."""
    regular_file(path, "a results record", ValueError)  # never opened otherwise: a FIFO would wait forever
    with open(path, "rb") as f:
        data = f.read(MAX_RECORD_BYTES + 1)
    if len(data) > MAX_RECORD_BYTES:
        raise ValueError(f"over {MAX_RECORD_BYTES:,} bytes")
    record = json.loads(data.decode("utf-8"))
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    name, epochs, seed, smoke, accuracy = (record.get(key) for key in
                                           ("name", "epochs", "seed", "smoke", "test_accuracy"))
    if not (isinstance(name, str) and type(epochs) is int and 1 <= epochs <= MAX_EPOCHS
            and type(seed) is int and 0 <= seed <= SEED_MAX and type(smoke) is bool
            and type(accuracy) in (int, float) and 0 <= accuracy <= 1):
        raise ValueError("not a results record of a run")
    return record


def plural(n, word):
    return f"{n} {word}{'s' if n != 1 else ''}"


# --- classifying --------------------------------------------------------------------------------


def classify(model, images):
    """Probabilities (N, 10) for uint8 28x28 images, shaped for the model (MLP, CNN or RNN).

    A row is all NaN where the model's outputs for that image are not all finite (a broken
    model): the other rows are computed from their own outputs alone.
    """
    x = prepare_images(np.asarray(images), model.input_shape[1:])
    outputs = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    finite = np.isfinite(outputs).all(axis=1)
    probs = np.full(outputs.shape, np.nan)
    if finite.any():
        probs[finite] = probabilities(outputs[finite])
    return probs


def top(probs, k=TOP):
    order = np.argsort(-probs, kind="stable")[:k]
    return [(int(d), float(probs[d])) for d in order]


# --- output -------------------------------------------------------------------------------------


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
    fig, (ax_in, ax_seen) = plt.subplots(1, 2, figsize=(7, 3.6))
    ax_in.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=255)
    ax_in.set_title("input")
    ax_seen.imshow(seen, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax_seen.set_title("seen by the model (28x28)")
    for ax in (ax_in, ax_seen):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return outputs.save_figure(fig, out, dpi=100)


def describe(path, digit, top3):
    return f"{printable(path)}: {digit}  ({', '.join(f'{d} {100 * p:.1f}%' for d, p in top3)})"


def printable(path):
    """A file name as text that prints as one line in any locale: bytes that are not UTF-8 as
    ``\\xe9``, a newline as ``\\n``, other control and invisible characters as ``\\x1b``,
    ``\\u202e``, ... (a file's name cannot forge a line of output or rewrite the terminal)."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


def port(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 (any free port) to 65535, got {value}")
    return value


def parse_args(argv):
    parser = Parser(__doc__)
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="image files of one digit each (PNG, JPEG, ...)")
    parser.add_argument("--model", metavar="PATH", default=argparse.SUPPRESS,  # not given: default_model()
                        help=f"a saved model of the listings (.keras): CNN, MLP or RNN (default: {DEFAULT_MODEL} "
                             f"in the current folder or, where it has none, the project's own {DEFAULT_MODEL} "
                             "beside predict.py)")
    parser.add_argument("--show", action="store_true",
                        help="also write <output-dir>/<image-stem>-seen.png: the input beside the 28x28 the model saw")
    parser.add_argument("--output-dir", metavar="DIR", default="outputs", help="where --show writes")
    parser.add_argument("--serve", action="store_true",
                        help="no IMAGE: serve a page to draw or drop digits on, and its API (POST /predict)")
    parser.add_argument("--host", default=DEFAULT_HOST, help="--serve: the address to listen on")
    parser.add_argument("--port", type=port, default=DEFAULT_PORT, help="--serve: the port (0: any free one)")
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


def main(argv=None):
    """Classify each image; return a list of results (file, digit, top3, probabilities, seen).

    The first line printed names the model and the run that made it (:func:`describe_run`). Images are read, classified and reported ``BATCH`` at a time, each ``--show`` PNG written
    as its image is classified. Unusable images get one error line each while the others are
    still classified; the exit status is then 2. A bad model or output folder exits at once
    with status 2. With ``--serve``, serve the page until Ctrl-C (see your_digit/serve.py).
    """
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
        done, errors = classify_files(model, args.images[start:start + BATCH], args, taken)
        results += done
        failed += errors
    sys.stdout.flush()
    if failed:
        raise SystemExit(2)
    return results


def classify_files(model, paths, args, taken):
    """Read, classify and report ``paths`` (a few): ``(results, number of error lines)``.

    The images read are held only here, until their lines are printed and PNGs written.
    """
    prepared = []  # (file, 28x28 uint8 or None, shown image or error message)
    for path in paths:
        try:
            grey, shown = read_image(path, printable(path))
            prepared.append((path, to_mnist(grey, printable(path)), shown if args.show else None))
        except ImageError as exc:
            prepared.append((path, None, str(exc)))
    good = [seen for _, seen, _ in prepared if seen is not None]
    probs = iter(classify(model, np.stack(good)) if good else [])
    results, failed = [], 0
    for path, seen, extra in prepared:
        if seen is None:
            error(extra)
            failed += 1
            continue
        p = next(probs)
        if not np.isfinite(p).all():
            error(f"{printable(path)}: --model {printable(args.model)} gave NaN or infinite outputs for it "
                  "(a broken model)")
            failed += 1
            continue
        results.append(report(path, seen, extra, p, args, taken))
    return results, failed


def report(path, seen, shown, p, args, taken):
    """Print one image's line (and write its --show PNG); return its result."""
    top3 = top(p)
    digit = top3[0][0]
    result = {"file": path, "digit": digit, "top3": top3, "probabilities": [float(v) for v in p], "seen": None}
    print(describe(path, digit, top3))
    if args.show:
        result["seen"] = save_seen(seen_path(args.output_dir, path, taken), shown, seen,
                                   f"{printable(os.path.basename(path))}: {digit} ({100 * top3[0][1]:.1f}%)")
        print(f"  wrote {printable(result['seen'])}")
    return result


if __name__ == "__main__":
    main()
