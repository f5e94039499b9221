"""The command line every tool here builds on: argparse with one-line errors, checked flags,
output paths checked before any long work, and Ctrl-C or SIGTERM ending in one line (no Keras here)."""

import argparse
import difflib
import os
import signal
import sys

from ch1 import outputs

SEED_MAX = 2**32 - 1  # what NumPy and the backends accept as a seed


def prog():
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "ch1"


def printable(text):
    """``text`` (a file name, or a message naming one) as one printable line in any locale: bytes that
    are not UTF-8 as ``\\xe9``, a newline as ``\\n``, other control and invisible characters as
    ``\\x1b``, ``\\u202e``, ... (a file's name cannot forge a line of output or rewrite the terminal)."""
    text = os.fsencode(text).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


def error(message):
    """Say what is wrong in one line on stderr: ``prog: error: message`` (escaped by :func:`printable`)."""
    flush_stdout()
    if sys.stderr is not None:  # None where stderr was closed (`2>&-`) and nothing reopened it
        print(f"{prog()}: error: {printable(message)}", file=sys.stderr)


def flush_stdout():
    """Flush what was printed before a message on stderr, so the two keep their order; a stdout that
    is closed (``>&-``: ``sys.stdout`` is None), or whose reader went away, is left alone."""
    if sys.stdout is None:
        return
    try:
        sys.stdout.flush()
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
    """argparse with the description from a docstring, defaults shown in --help, one-line errors.

    Parsing also installs :func:`handle_signals`: every command that parses its flags
    ends on Ctrl-C or SIGTERM with one line, no traceback.
    """

    def __init__(self, doc, **kwargs):
        lines = (doc or "").strip().splitlines()
        super().__init__(
            description=lines[0] if lines else None,
            formatter_class=_Defaults,
            **kwargs,
        )

    def parse_args(self, args=None, namespace=None):
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
    parser.add_argument(
        "--data", metavar="PATH",
        help="a Keras mnist.npz, a folder holding one, or a folder of the four MNIST IDX files (.gz or raw); "
        "default: $MNIST_DATA, else keras.datasets.mnist.load_data()",
    )
    return parser


def ensure_output_dir(path, flag="--output-dir", names=()):
    """Create the folder ``path`` if needed and prove that it, and the files ``names`` in it, can be
    written (ch1.outputs.prepare_output_dir), or exit with one line."""
    try:
        return outputs.prepare_output_dir(path, flag, names)
    except outputs.OutputError as exc:
        fail(str(exc))


def writable_output_file(path, flag):
    """Check, before any long work, that the file ``path`` can be written; else exit with one line."""
    try:
        return outputs.check_output_file(path, flag)
    except outputs.OutputError as exc:
        fail(str(exc))


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
    """End the command at once: remove temporary files, undo what was registered, one line, and die
    of the same signal (exit status 130 for Ctrl-C, 143 for SIGTERM in a shell).

    Nothing unwinds through the backend: an exception raised into TensorFlow's training loop
    can crash its threads on the way out, so the process ends here instead.
    """
    for path in outputs.temporary_files():
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
    """Ctrl-C and SIGTERM (kill, timeout, SLURM) end the command with one line ``prog: interrupted``
    and the signal's exit status, leaving no temporary file behind. Installed for SIGINT even where
    the command was started with SIGINT ignored (a background job)."""
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _interrupted)
    except ValueError:  # not the main thread: leave signals alone
        pass
