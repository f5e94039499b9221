"""The command line and the life of one run: seeding, data, timing and results."""

import argparse
import os
import platform
import sys
import time

import keras
import numpy as np

from ch1 import outputs
from ch1.data import DataError, load_mnist

DEFAULT_SEED = 0
SMOKE_TRAIN = 6000  # --smoke trains on the first 6,000 training images
SMOKE_TEST = 2000  # and evaluates on the first 2,000 test images


def error(message):
    """Say what is wrong in one line on stderr: ``prog: error: message``."""
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "ch1"
    sys.stdout.flush()
    print(f"{prog}: error: {message}", file=sys.stderr)


def fail(message):
    """Say what is wrong in one line and exit with status 2 (no traceback)."""
    error(message)
    raise SystemExit(2)


class Parser(argparse.ArgumentParser):
    """argparse with defaults shown in --help and one-line errors."""

    def __init__(self, doc, **kwargs):
        lines = (doc or "").strip().splitlines()
        super().__init__(
            description=lines[0] if lines else None,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
            **kwargs,
        )

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_data_args(parser):
    """--data, --output-dir and --smoke: the flags every command here shares."""
    parser.add_argument(
        "--data", metavar="PATH",
        help="a Keras mnist.npz or a folder of the four MNIST IDX files (.gz or raw); "
        "default: $MNIST_DATA, else keras.datasets.mnist.load_data()"
        "%(default).0s",  # (an empty field: keeps argparse from adding "(default: None)")
    )
    parser.add_argument("--output-dir", metavar="DIR", default="outputs", help="where results are written")
    parser.add_argument(
        "--smoke", action="store_true",
        help=f"quick check: 1 epoch on the first {SMOKE_TRAIN:,} training and {SMOKE_TEST:,} test images",
    )
    return parser


def parse_args(doc, argv, epochs, batch_size):
    """The listings' common command line; the defaults are the book's."""
    parser = Parser(doc)
    parser.add_argument("--epochs", type=positive_int, default=epochs, help="training epochs")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size, help="minibatch size")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (same seed, same numbers)")
    add_data_args(parser)
    parser.add_argument("--fast", action="store_true",
                        help="the same training math in one compiled loop per epoch (JAX backend; "
                        "elsewhere model.fit): see ch1/train.py")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                        help="bfloat16: Keras' mixed_bfloat16 policy (changes the arithmetic; "
                        "faster only on hardware with bfloat16 units)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs = 1
    return args


def seed_everything(seed):
    """Seed Python, NumPy and the backend; make TensorFlow's ops deterministic."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


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


def describe_device():
    """The device the backend computes on, in words."""
    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform != "cpu":
                return f"{device.platform.upper()}: {device.device_kind}"
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return f"GPU: {torch.cuda.get_device_name(0)}"
        elif backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                return f"GPU: {details.get('device_name', gpus[0].name)}"
    except Exception:  # noqa: BLE001 - describing the device must never stop a run
        pass
    return f"CPU: {cpu_name()} ({os.cpu_count()} cores)"


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions():
    """Versions that matter for a result: Python, Keras, its backend, NumPy."""
    found = {"python": platform.python_version(), "keras": keras.__version__, "numpy": np.__version__}
    backend = keras.backend.backend()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    if module:
        found[module] = __import__(module).__version__
    return found


class EpochTimer(keras.callbacks.Callback):
    """Records wall-clock seconds per epoch."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class Run:
    """One script's run: checks its output directory, seeds everything, writes its results.

    ``name`` is the book's file stem (``cnn-mnist``): outputs are ``<name>.png``,
    ``<name>-history.png``, ``<name>.json`` and ``<name>.keras`` under ``--output-dir``.
    """

    def __init__(self, name, listing, args):
        self.name, self.listing, self.args = name, listing, args
        try:
            outputs.prepare_output_dir(args.output_dir)
        except outputs.OutputError as exc:
            fail(str(exc))
        seed_everything(args.seed)
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if args.precision == "bfloat16" else "float32")
        self.timer = EpochTimer()

    def path(self, suffix):
        return os.path.join(self.args.output_dir, self.name + suffix)

    def plot_model(self, model):
        return outputs.plot_model(model, self.path(".png"))

    @property
    def callbacks(self):
        return [self.timer]

    def finish(self, model, history, test_accuracy):
        """Save the model, the history plot and ``<name>.json``; return the results dict."""
        seconds = self.timer.seconds
        results = {
            "name": self.name,
            "listing": self.listing,
            "params": model.count_params(),
            "epochs": self.args.epochs,
            "batch_size": self.args.batch_size,
            "seed": self.args.seed,
            "smoke": self.args.smoke,
            "fast": self.args.fast,
            "precision": self.args.precision,
            "data": self.args.data or os.environ.get("MNIST_DATA") or "keras.datasets.mnist",
            "backend": keras.backend.backend(),
            "versions": versions(),
            "device": describe_device(),
            "train_accuracy": float(history.history["accuracy"][-1]),
            "test_accuracy": float(test_accuracy),
            "fit_seconds": round(sum(seconds), 3),
            "seconds_per_epoch": round(sum(seconds) / len(seconds), 3) if seconds else None,
            "epoch_seconds": [round(s, 3) for s in seconds],
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        }
        with outputs.atomic_path(self.path(".keras")) as tmp:
            model.save(tmp)
        outputs.plot_history(history.history, self.path("-history.png"),
                             f"{self.name} (Listing {self.listing}): test accuracy {100 * test_accuracy:.2f}%")
        outputs.write_json(self.path(".json"), results)
        print(f"Wrote {self.args.output_dir}/{self.name}.{{png,keras,json}} and {self.name}-history.png")
        return results
