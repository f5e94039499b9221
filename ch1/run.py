"""The life of one listing's run: seeding, data, and what it leaves behind (its command line: ch1.cli)."""

import json
import os
import secrets
import tempfile
import time

import keras

from ch1 import device, files, outputs
from ch1.cli import SMOKE_TEST, SMOKE_TRAIN, ensure_output_dir, fail
from ch1.data import DataError, load_mnist
from ch1.files import regular_file

MAX_RUN_BYTES = 2**20  # a run's <name>.json: the listings' are a few kB


def seed_everything(seed):
    """Seed Python, NumPy and the backend; make TensorFlow's ops deterministic."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


class EpochLog(keras.callbacks.Callback):
    """Wall-clock seconds and Keras' logs (loss, accuracy, val_...) of every epoch."""

    def __init__(self):
        super().__init__()
        self.seconds, self.history = [], {}

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))


def load_data(args):
    """Validated MNIST for a run (the smoke subset with --smoke); bad data exits with status 2."""
    try:
        (x_train, y_train), (x_test, y_test) = load_mnist(args.data, full=not args.smoke)
    except DataError as exc:
        fail(str(exc))
    if args.smoke:
        x_train, y_train = x_train[:SMOKE_TRAIN], y_train[:SMOKE_TRAIN]
        x_test, y_test = x_test[:SMOKE_TEST], y_test[:SMOKE_TEST]
    return (x_train, y_train), (x_test, y_test)


SUFFIXES = (".png", ".dot", "-history.png", ".keras", ".json")  # what a run writes, <name><suffix>


def run_folder(args):
    """Where a run writes: ``--output-dir``, and for ``--smoke`` its folder ``smoke/`` there, so that a
    smoke run never replaces a full run's model (the one predict.py and figures.py read)."""
    return os.path.join(args.output_dir, "smoke") if args.smoke else args.output_dir


class Run:
    """One listing's run: seeds everything and writes, under :func:`run_folder`, ``<name>.png`` (the
    diagram), ``<name>-history.png``, ``<name>.keras`` and, last, ``<name>.json`` (``name``: the book's
    file stem, ``cnn-mnist``), each proved writable before any training."""

    def __init__(self, name, listing, args):
        self.name, self.listing, self.args = name, listing, args
        self.folder = run_folder(args)
        ensure_output_dir(self.folder, "--output-dir", names=[name + s for s in SUFFIXES])
        seed_everything(args.seed)
        self.log = EpochLog()
        self.written = []

    def path(self, suffix):
        return os.path.join(self.folder, self.name + suffix)

    def plot_model(self, model):
        """The book's ``plot_model(model, to_file='cnn-mnist.png', show_shapes=True)``."""
        self.written.append(outputs.plot_model(model, self.path(".png")))

    @property
    def callbacks(self):
        """What ``model.fit`` is given beyond the book's arguments: a log of each epoch's time and metrics."""
        return [self.log]

    def finish(self, model, test_accuracy):
        """Save the model, the history plot and, last, ``<name>.json``; return the results dict."""
        seconds, history = self.log.seconds, self.log.history
        results = {
            "name": self.name, "listing": self.listing, "params": model.count_params(),
            "epochs": self.args.epochs, "batch_size": self.args.batch_size, "seed": self.args.seed,
            "smoke": self.args.smoke, "precision": keras.mixed_precision.global_policy().name,
            "data": self.args.data or os.environ.get("MNIST_DATA") or "keras.datasets.mnist",
            "backend": keras.backend.backend(), "versions": device.versions(), **device.describe(),
            "train_accuracy": history["accuracy"][-1], "test_accuracy": float(test_accuracy),
            "fit_seconds": round(sum(seconds), 3),
            "seconds_per_epoch": round(sum(seconds) / len(seconds), 3) if seconds else None,
            "epoch_seconds": [round(s, 3) for s in seconds], "history": history,
            "model": self.name + ".keras",  # saved beside this JSON, before it
        }
        if self.args.smoke:
            print(f"(a smoke run: {self.args.epochs} short epoch on the first {SMOKE_TRAIN:,} training images, "
                  f"tested on the first {SMOKE_TEST:,} test images; not the book's run, and written to "
                  f"{self.folder}/ apart from it)")
        self.written.append(save_model(model, self.path(".keras")))
        self.written.append(outputs.plot_history(
            history, self.path("-history.png"),
            f"{self.name} (Listing {self.listing}): test accuracy {100 * test_accuracy:.2f}%"))
        self.written.append(files.write_json(self.path(".json"), results))
        print("Wrote " + ", ".join(self.written))
        return results


def read_run(path):
    """A run's ``<name>.json`` as :meth:`Run.finish` wrote it (read by predict.py, figures.py, make_docs.py):
    a dict, or ValueError saying in a few words why it is not one."""
    if regular_file(path, "a run's JSON", ValueError).st_size > MAX_RUN_BYTES:
        raise ValueError(f"over {MAX_RUN_BYTES:,} bytes")
    with open(path, "rb") as f:
        try:
            run = json.loads(f.read().decode("utf-8"))
        except (UnicodeDecodeError, RecursionError, json.JSONDecodeError) as exc:
            raise ValueError(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(run, dict):
        raise ValueError("not a JSON object")
    history = run.get("history")
    loss, accuracy = (history.get(key) for key in ("loss", "accuracy")) if isinstance(history, dict) else (None, None)
    number = (int, float)
    if not (isinstance(run.get("name"), str) and isinstance(run.get("listing"), str)
            and type(run.get("epochs")) is int and run["epochs"] >= 1 and type(run.get("seed")) is int
            and type(run.get("smoke")) is bool and type(run.get("test_accuracy")) in number
            and 0 <= run["test_accuracy"] <= 1 and isinstance(loss, list) and isinstance(accuracy, list)
            and 0 < len(loss) == len(accuracy) and all(type(v) in number for v in loss + accuracy)):
        raise ValueError("not a run's results: a field is missing or of the wrong type")
    return run


def save_model(model, path):
    """``model.save(path)``, atomically. Where that fails after training (the disk full, the folder gone):
    one line and exit 2, the trained model kept, under a new name, in the system's temporary folder."""
    try:
        with files.atomic_path(path) as tmp:
            model.save(tmp)
        return path
    except OSError as exc:
        why = exc.strerror or str(exc)
    stem = os.path.splitext(os.path.basename(path))[0]
    kept = os.path.join(tempfile.gettempdir(), f"{stem}-{secrets.token_hex(4)}.keras")
    try:
        with files.atomic_path(kept) as tmp:
            model.save(tmp)
    except OSError:
        fail(f"{path}: cannot save the trained model ({why}), nor keep it in {tempfile.gettempdir()}")
    fail(f"{path}: cannot save the trained model ({why}); it is kept as {kept}")
