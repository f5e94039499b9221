"""The command line every tool here builds on: argparse with one-line errors, checked flags, the listings'
own command line, output paths checked before any long work, Ctrl-C or SIGTERM ending in one line. No Keras
and no matplotlib here: a command reads its flags before Keras loads TensorFlow, so --help answers at once."""

import argparse
import difflib
import os
import secrets
import shutil
import signal
import sys

from ch1 import files
from ch1.data import TRAIN_SIZE
from ch1.startup import standard_streams

SEED_MAX = 2**32 - 1  # what NumPy and the backends accept as a seed
DEFAULT_SEED = 0
SMOKE_TRAIN = 6000  # --smoke trains on the first 6,000 training images
SMOKE_TEST = 2000  # and evaluates on the first 2,000 test images


def prog():
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "ch1"


def printable(text):
    """``text`` as one printable line in any locale: non-UTF-8 bytes as ``\\xe9``, a newline as ``\\n``, other
    control and invisible characters as ``\\x1b``, ... (a file's name cannot forge a line of output)."""
    text = os.fsencode(text).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


def error(message):
    """Say what is wrong in one line on stderr: ``prog: error: message`` (escaped by :func:`printable`)."""
    flush_stdout()
    if sys.stderr is not None:  # None where stderr was closed (`2>&-`) and nothing reopened it
        print(f"{prog()}: error: {printable(message)}", file=sys.stderr)


def flush_stdout():
    """Flush stdout before a message on stderr (the two keep their order); closed or broken, it is left alone."""
    try:
        sys.stdout and sys.stdout.flush()  # None where stdout was closed (`>&-`)
    except (OSError, ValueError):  # a broken pipe, or a stream already closed
        pass


def fail(message):
    """Say what is wrong in one line and exit with status 2 (no traceback)."""
    error(message)
    raise SystemExit(2)


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each flag's default, but none where there is no default (no "(default: None)")."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """argparse with the description from a docstring's first line, defaults shown in --help, one-line
    errors; parsing guards the standard streams (ch1.startup) and installs :func:`handle_signals` (Ctrl-C or
    SIGTERM: one line, no traceback)."""

    def __init__(self, doc, **kwargs):
        super().__init__(description=(doc or "").strip().split("\n")[0] or None, formatter_class=_Defaults, **kwargs)

    def parse_args(self, args=None, namespace=None):
        standard_streams()  # the first thing a command does: --help too needs them
        handle_signals()
        return super().parse_args(args, namespace)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}{self._nearest(message)}\n")

    def _nearest(self, message):
        """For a mistyped flag (``unrecognized arguments: --eopchs 2``), the nearest real one."""
        if not message.startswith("unrecognized arguments:"):
            return ""
        flags = [s for s in self._option_string_actions if s.startswith("--")]
        for word in message.split(":", 1)[1].split():
            if word.startswith("--"):
                close = difflib.get_close_matches(word.split("=")[0].replace("_", "-"), flags, n=1, cutoff=0.6)
                if close:
                    return f" (did you mean {close[0]}?)"
        return ""


def _whole(text, low, high, says):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{says}, got {value}")
    return value


def positive_int(text):
    """A count (an argparse type): a whole number from 1."""
    return _whole(text, 1, float("inf"), "must be at least 1")


def seed_number(text):
    """A seed (an argparse type): a whole number from 0 to 2**32 - 1."""
    return _whole(text, 0, SEED_MAX, f"must be from 0 to {SEED_MAX}")


def add_data_arg(parser):
    """--data: where MNIST comes from."""
    parser.add_argument("--data", metavar="PATH", help="a Keras mnist.npz, a folder holding one, or a folder of "
                        "the four MNIST IDX files (.gz or raw); default: $MNIST_DATA, else "
                        "keras.datasets.mnist.load_data()")
    return parser


def add_smoke_arg(parser):
    parser.add_argument("--smoke", action="store_true", help=f"quick check: 1 epoch on the first "
                        f"{SMOKE_TRAIN:,} training and {SMOKE_TEST:,} test images")
    return parser


class ListingParser(Parser):
    """A model listing's command line; the defaults are the book's. ``--smoke`` makes it one epoch."""

    def __init__(self, doc, epochs, batch_size):
        super().__init__(doc)
        self.add_argument("--epochs", type=positive_int, default=epochs, help="training epochs")
        self.add_argument("--batch-size", type=positive_int, default=batch_size, help="minibatch size")
        self.add_argument("--seed", type=seed_number, default=DEFAULT_SEED, help="random seed (same seed, same numbers)")
        add_data_arg(self)
        self.add_argument("--output-dir", metavar="DIR", default="outputs", help="where results are written")
        add_smoke_arg(self)

    def parse_args(self, args=None, namespace=None):
        args = super().parse_args(args, namespace)
        if args.smoke:
            args.epochs = 1
        check_batch_size(self, args)
        return args


def check_batch_size(parser, args):
    """--batch-size at most the training images of the run (--smoke: its subset); else the parser's error."""
    images = SMOKE_TRAIN if args.smoke else TRAIN_SIZE
    if args.batch_size > images:
        parser.error(f"argument --batch-size: at most the {images:,} training images"
                     f"{' of --smoke' if args.smoke else ''}, got {args.batch_size:,}")


def sampler_parser(doc):
    """Listing 1.3.1's command line: the sampler's seed, the data, where its figure goes."""
    parser = Parser(doc)
    parser.add_argument("--seed", type=seed_number, default=DEFAULT_SEED, help="random seed of the 25 digits")
    add_data_arg(parser)
    parser.add_argument("--output-dir", metavar="DIR", default="outputs", help="where mnist-samples.png is written")
    parser.set_defaults(smoke=False)  # the sampler counts the whole of MNIST
    return parser


MIN_FREE_BYTES = 64 * 2**20  # room a run needs for what it writes (the largest listing's model is ~3.3 MB)


def _probe(folder, name=None):
    """Create and remove a file in ``folder`` (raises OSError where that is not possible)."""
    probe = os.path.join(folder, name or f".write-test.{secrets.token_hex(4)}")
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.remove(probe)


def ensure_output_dir(path, flag="--output-dir", names=()):
    """Create the folder ``path`` if needed and prove, before any long work, that each of ``names`` can
    be written there under the temporary name ch1.files.atomic_path gives it (a name too long fails
    now, not after training), with no folder in its place and :data:`MIN_FREE_BYTES` free; else exit
    with one line."""
    try:
        os.makedirs(path, exist_ok=True)
        _probe(path)
        free = shutil.disk_usage(path).free
    except OSError as exc:
        fail(f"{flag} {path}: cannot write there ({exc.strerror or exc})")
    for name in names:
        if os.path.isdir(os.path.join(path, name)):
            fail(f"{flag} {path}: {name} there is a folder; a run replaces it with a file")
        try:
            _probe(path, files.temporary_name(name))
        except OSError as exc:
            fail(f"{flag} {path}: cannot write {name} there ({exc.strerror or exc})")
    if free < MIN_FREE_BYTES:
        fail(f"{flag} {path}: only {free / 2**20:.1f} MB free there; a run needs {MIN_FREE_BYTES // 2**20} MB")
    return path


def writable_output_file(path, flag):
    """Check, before any long work, that the file ``path`` can be written (its folder exists and is
    writable, it is not a folder), without creating it; else exit with one line."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        fail(f"{flag} {path}: a folder, not a file")
    if not os.path.isdir(folder):
        fail(f"{flag} {path}: no folder {folder}")
    try:
        _probe(folder)
    except OSError as exc:
        fail(f"{flag} {path}: cannot write there ({exc.strerror or exc})")
    return path


# --- signals -------------------------------------------------------------------------------------

_cleanups = []  # what to undo when Ctrl-C or SIGTERM ends the command (a sweep's worker processes)


def at_interrupt(cleanup):
    """Run ``cleanup()`` if Ctrl-C or SIGTERM ends the command; returns it (see :func:`forget`)."""
    _cleanups.append(cleanup)
    return cleanup


def forget(cleanup):
    if cleanup in _cleanups:
        _cleanups.remove(cleanup)


def _interrupted(signum, frame):
    """Remove temporary files, undo what was registered, say one line and die of the same signal (exit
    status 130 or 143). Nothing unwinds through the backend: an exception raised into TensorFlow's
    training loop can crash its threads on the way out."""
    for path in list(files.temporary):
        try:
            os.remove(path)
        except OSError:
            pass
    for cleanup in reversed(_cleanups):
        try:
            cleanup()
        except Exception:  # noqa: BLE001 - the command is ending; each cleanup is best effort
            pass
    flush_stdout()
    os.write(2, f"{prog()}: interrupted\n".encode(errors="backslashreplace"))
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def handle_signals():
    """Ctrl-C and SIGTERM (kill, timeout, SLURM) end the command with one line ``prog: interrupted``, the
    signal's exit status and no temporary file left (SIGINT too where a background job ignored it)."""
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _interrupted)
    except ValueError:  # not the main thread: leave signals alone
        pass
