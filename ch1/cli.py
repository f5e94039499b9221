"""The command line every tool here builds on: argparse with one-line errors, checked flags,
output paths checked before any long work, and Ctrl-C or SIGTERM ending in one line.

Nothing here imports Keras.
"""

import argparse
import os
import signal
import sys

from ch1 import outputs

SEED_MAX = 2**32 - 1  # what NumPy and the backends accept as a seed


def prog():
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "ch1"


def error(message):
    """Say what is wrong in one line on stderr: ``prog: error: message``."""
    sys.stdout.flush()
    print(f"{prog()}: error: {message}", file=sys.stderr)


def fail(message):
    """Say what is wrong in one line and exit with status 2 (no traceback)."""
    error(message)
    raise SystemExit(2)


class Parser(argparse.ArgumentParser):
    """argparse with the description from a docstring, defaults shown in --help, one-line errors.

    Parsing also installs :func:`handle_signals`: every command that parses its flags
    ends on Ctrl-C or SIGTERM with one line, no traceback.
    """

    def __init__(self, doc, **kwargs):
        lines = (doc or "").strip().splitlines()
        super().__init__(
            description=lines[0] if lines else None,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
            **kwargs,
        )

    def parse_args(self, args=None, namespace=None):
        handle_signals()
        return super().parse_args(args, namespace)

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


def seed(text):
    """A seed: a whole number from 0 to 2**32 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be from 0 to {SEED_MAX}, got {value}")
    return value


def add_data_arg(parser):
    """--data: where MNIST comes from."""
    parser.add_argument(
        "--data", metavar="PATH",
        help="a Keras mnist.npz or a folder of the four MNIST IDX files (.gz or raw); "
        "default: $MNIST_DATA, else keras.datasets.mnist.load_data()"
        "%(default).0s",  # (an empty field: keeps argparse from adding "(default: None)")
    )
    return parser


def output_dir(path, flag="--output-dir"):
    """Create the folder ``path`` if needed and prove it writable, or exit with one line."""
    try:
        return outputs.prepare_output_dir(path, flag)
    except outputs.OutputError as exc:
        fail(str(exc))


def output_file(path, flag):
    """Check, before any long work, that the file ``path`` can be written; else exit with one line."""
    try:
        return outputs.check_output_file(path, flag)
    except outputs.OutputError as exc:
        fail(str(exc))


# --- signals -------------------------------------------------------------------------------------


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, timeout, SLURM), raised like Ctrl-C so that every ``finally`` cleans up."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _excepthook(kind, value, tb, previous=sys.excepthook):
    if not issubclass(kind, KeyboardInterrupt):
        return previous(kind, value, tb)
    sys.stdout.flush()
    print(f"{prog()}: interrupted", file=sys.stderr)
    sys.stderr.flush()
    if issubclass(kind, Terminated):
        # Die of SIGTERM as the sender expects (exit status 143 in a shell).
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
    # Python itself then ends an uncaught KeyboardInterrupt by SIGINT (exit status 130).


def handle_signals():
    """Ctrl-C and SIGTERM unwind like an exception (temporary files are removed on the way),
    then the command prints ``prog: interrupted`` and ends by that signal (130 or 143)."""
    sys.excepthook = _excepthook
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        pass
