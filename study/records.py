"""reproduce.py's records: one JSON line per finished trial in results/records*.jsonl, read and appended.

A record is keyed by everything that changes its numbers (:class:`Trial`); records without a backend
and precision are TensorFlow's, in float32. Reading never fails on a record: an unusable line (:func:`check`)
is skipped with one warning naming the file and line, and that trial runs again. Nothing here imports Keras.
"""

import dataclasses
import glob
import json
import os
import sys

from ch1.files import reason, regular_file
from study.tables import SWEEPS

BACKENDS = ("tensorflow", "jax", "torch")  # the Keras backends a sweep runs and records
PRECISIONS = ("float32", "bfloat16")
MAX_BYTES = 2**26  # a records file: room for thousands of trials with their curves (78 take 250 kB)
DEFAULTS = {"backend": "tensorflow", "precision": "float32", "learning_rate": None}
NUMBER = (int, float)
FIELDS = {"table": str, "row": int, "seed": int, "epochs": int, "batch_size": int, "smoke": bool,
          "test_accuracy": NUMBER, "train_accuracy": NUMBER, "fit_seconds": NUMBER, "params": int,
          "backend": str, "precision": str, "learning_rate": (*NUMBER, type(None)), "versions": dict}
RANGES = {"epochs": (1, 10**9), "test_accuracy": (0, 1), "train_accuracy": (0, 1), "fit_seconds": (0, 10**12)}
CURVES = ("accuracy", "val_accuracy")  # the per-epoch metrics the reports read
# Windows has no O_NOFOLLOW (a link there takes an administrator to make) and alone needs O_BINARY.
NOFOLLOW, BINARY = (getattr(os, name, 0) for name in ("O_NOFOLLOW", "O_BINARY"))


class RecordsError(Exception):
    """A records file that cannot be used (the message is one line)."""


@dataclasses.dataclass(frozen=True)
class Trial:
    """One training run of a sweep: a table's row with one seed, under one setting."""

    table: str
    row: int
    seed: int
    epochs: int
    batch_size: int
    smoke: bool = False
    backend: str = "tensorflow"
    precision: str = "float32"
    learning_rate: float = None


def trial_of(record):
    """The Trial a (checked) record is the result of."""
    values = {**DEFAULTS, **record}
    return Trial(**{field.name: values[field.name] for field in dataclasses.fields(Trial)})


def check(record):
    """Why ``record`` cannot be used (a short reason that quotes none of its text), or None when it can: a
    field missing or of the wrong type, out of range, or naming a table, row, backend or precision outside
    its fixed set (the report files are named after them)."""
    if not isinstance(record, dict):
        return "not a JSON object"
    values = {"versions": {}, **DEFAULTS, **record}
    for name, types in FIELDS.items():
        if name not in values:
            return f"no {name}"
        if not isinstance(values[name], types) or (isinstance(values[name], bool) and types is not bool):
            return f"{name} is {type(values[name]).__name__}"
    for name, allowed in (("table", SWEEPS), ("backend", BACKENDS), ("precision", PRECISIONS)):
        if values[name] not in allowed:
            return f"{name} is not one of {', '.join(allowed)}"
    if not 1 <= values["row"] <= len(SWEEPS[values["table"]].rows):
        return f"row outside 1..{len(SWEEPS[values['table']].rows)} of Table {values['table']}"
    for name, (low, high) in RANGES.items():
        if not low <= values[name] <= high:  # (NaN is outside every range)
            return f"{name} outside {low}..{high}"
    return None


def curves(record):
    """A (checked) record's CURVES where each holds one number in 0..1 per epoch and ``accuracy`` is
    there; else None."""
    history = record.get("history")
    kept = {name: history[name] for name in CURVES if name in history} if isinstance(history, dict) else {}
    if "accuracy" in kept and all(isinstance(values, list) and len(values) == record["epochs"] and all(
            isinstance(x, NUMBER) and not isinstance(x, bool) and 0 <= x <= 1 for x in values)
            for values in kept.values()):
        return kept
    return None


def warn(message):
    print(f"warning: {message}", file=sys.stderr)


def read_records(results_dir, quiet=False):
    """``{Trial: record}`` from every usable line of ``results_dir``/records*.jsonl (all shards; a file over
    MAX_BYTES skipped unread), the last of a trial's records winning, its ``history`` its :func:`curves` or
    absent. ``quiet``: skip unusable files and lines without a warning."""
    say = (lambda message: None) if quiet else warn
    found = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(results_dir), "records*.jsonl"))):
        try:
            if regular_file(path, "a records file", RecordsError).st_size > MAX_BYTES:
                raise RecordsError(f"{path}: over {MAX_BYTES:,} bytes, not a records file of this project")
            with open(path, "rb") as f:
                lines = f.read(MAX_BYTES + 1).split(b"\n")
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    why = check(record := json.loads(line.decode("utf-8")))
                except (ValueError, RecursionError):  # (UnicodeDecodeError is a ValueError)
                    why = "not a whole JSON line (cut short?)"
                if why:
                    say(f"{path}:{number}: skipping an unreadable record ({why}); that trial runs again")
                    continue
                history = curves(record)
                record = {key: value for key, value in record.items() if key != "history"}
                found[trial_of(record)] = {**record, "history": history} if history else record
        except RecordsError as exc:
            say(f"{exc}; skipping it")
        except OSError as exc:
            say(f"{path}: skipping, cannot read it ({reason(exc)})")
    return found


def check_appendable(path):
    """RecordsError unless ``path`` is missing or a regular file that is not a symbolic link."""
    if os.path.islink(path):
        raise RecordsError(f"{path}: a symbolic link; records are not written through one")
    if os.path.lexists(path):
        regular_file(path, "a records file", RecordsError)


def append_record(path, record):
    """Append one record as a line in one write, on disk when this returns (appends of several processes
    do not interleave); a line cut short before it stays on its own line. Never through a symbolic link."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | NOFOLLOW | BINARY, 0o644)
    except OSError as exc:
        why = "a symbolic link" if os.path.islink(path) else reason(exc)
        raise RecordsError(f"{path}: cannot append a record ({why})") from None
    try:
        line = json.dumps(record).encode() + b"\n"
        size = os.fstat(fd).st_size
        if size:
            os.lseek(fd, size - 1, os.SEEK_SET)
            if os.read(fd, 1) != b"\n":
                line = b"\n" + line  # (with O_APPEND the write still goes to the end)
        while line:
            line = line[os.write(fd, line):]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_discussion(results_dir):
    """``results_dir``/discussion.md, the hand-written end of RESULTS.md; '' if none or unreadable (warned)."""
    path = os.path.join(results_dir, "discussion.md")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        warn(f"{path}: cannot read it ({reason(exc) if isinstance(exc, OSError) else 'not UTF-8'}); "
             "the discussion is left out of the report")
        return ""
