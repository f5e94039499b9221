"""reproduce.py's records: one JSON line per finished trial, and claims on trials being run.

A record is keyed by everything that changes its numbers: table, row, seed, epochs, batch
size, learning rate (None: Keras' default), smoke, Keras backend and precision. Records
written before the backend and precision were recorded are TensorFlow's, in float32.

Reading never fails on a record: a line cut short by a kill, invalid UTF-8, bad JSON, a
missing field or a field of the wrong type is skipped with one warning naming the file and
line (that trial simply runs again). Nothing here imports Keras.
"""

import glob
import json
import os
import socket
import sys
import time
from dataclasses import dataclass

from tools.tables import SWEEPS

DEFAULTS = {"backend": "tensorflow", "precision": "float32", "learning_rate": None}
# Field: the types it may have. A record lacking a field of DEFAULTS takes the default.
FIELDS = {
    "table": (str,), "row": (int,), "seed": (int,), "epochs": (int,), "batch_size": (int,), "smoke": (bool,),
    "test_accuracy": (int, float), "train_accuracy": (int, float), "fit_seconds": (int, float),
    "backend": (str,), "precision": (str,), "learning_rate": (int, float, type(None)),
}
CLAIM_STALE_S = 48 * 3600  # a claim from another host older than this is taken to be abandoned


@dataclass(frozen=True)
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

    def slug(self):
        lr = "default" if self.learning_rate is None else f"{self.learning_rate:g}"
        return (f"{self.table}-r{self.row}-s{self.seed}-e{self.epochs}-b{self.batch_size}-lr{lr}"
                f"-{self.backend}-{self.precision}{'-smoke' if self.smoke else ''}")


def trial_of(record):
    """The Trial a (checked) record is the result of."""
    values = {**DEFAULTS, **record}
    return Trial(values["table"], values["row"], values["seed"], values["epochs"], values["batch_size"],
                 values["smoke"], values["backend"], values["precision"], values["learning_rate"])


def check(record):
    """Why ``record`` cannot be used (a short reason), or None when it can."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for name, types in FIELDS.items():
        if name not in record:
            if name in DEFAULTS:
                continue
            return f"no {name}"
        value = record[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return f"{name} is {type(value).__name__}"
    if record["table"] not in SWEEPS or not 1 <= record["row"] <= len(SWEEPS[record["table"]].rows):
        return f"no row {record['row']} in Table {record['table']}"
    if not (0 <= record["test_accuracy"] <= 1 and 0 <= record["train_accuracy"] <= 1):
        return "accuracy outside 0..1"
    history = record.get("history")
    if history is not None and not (isinstance(history, dict) and all(
            isinstance(v, list) and all(isinstance(x, (int, float, type(None))) for x in v) for v in history.values())):
        return "history is not lists of numbers (null: a loss that was not finite)"
    return None


def warn(message):
    print(f"warning: {message}", file=sys.stderr)


def read_records(results_dir, quiet=False):
    """Every usable record in ``results_dir``/records*.jsonl (all shards): {Trial: record}, last wins.
    ``quiet``: skip unusable lines without a warning (they were warned about when the sweep began)."""
    found = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(results_dir), "records*.jsonl"))):
        try:
            with open(path, "rb") as f:
                lines = f.read().split(b"\n")
        except OSError as exc:
            if not quiet:
                warn(f"{path}: skipping, cannot read it ({exc.strerror or exc})")
            continue
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
                reason = check(record)
            except UnicodeDecodeError:
                reason = "not UTF-8"
            except ValueError:
                reason = "not a whole JSON line (cut short?)"
            if reason:
                if not quiet:
                    warn(f"{path}:{number}: skipping an unreadable record ({reason}); that trial runs again")
                continue
            found[trial_of(record)] = record
    return found


def append_record(path, record):
    """Append one record as a line, flushed to disk; a line cut short before it stays on its own line."""
    with open(path, "a+b") as f:
        if f.seek(0, os.SEEK_END) > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write(json.dumps(record).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


# --- claims: two sweeps on one results folder run each trial once ----------------------------------


def claims_dir(results_dir):
    return os.path.join(results_dir, "claims")


def claim(results_dir, trial, owner=None):
    """Claim ``trial`` for the sweep ``owner`` (a process id; default this process); False if another
    live sweep holds it.

    A claim is a file created with O_EXCL (atomic on local file systems and on NFS v3 and
    later). A claim whose sweep is gone (same host) or older than two days (another host) is
    taken over.
    """
    owner = owner or os.getpid()
    folder = claims_dir(results_dir)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, trial.slug() + ".claim")
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder == (socket.gethostname(), owner):
                return True  # ours already (an interrupted sweep in this very process)
            if not _stale(path, holder):
                return False
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": owner, "since": time.time()}, f)
        return True
    return False


def release(results_dir, trial, owner=None):
    """Give back the claim on ``trial`` if the sweep ``owner`` (default this process) holds it."""
    path = os.path.join(claims_dir(results_dir), trial.slug() + ".claim")
    if _holder(path) == (socket.gethostname(), owner or os.getpid()):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def _holder(path):
    """``(host, pid)`` of a claim file, or None when it cannot be read (gone, being written, garbage)."""
    try:
        with open(path) as f:
            holder = json.load(f)
        return holder["host"], int(holder["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _stale(path, holder):
    if holder is None:
        # Being written this very moment, or garbage: garbage older than a minute is stale.
        try:
            return time.time() - os.stat(path).st_mtime > 60
        except OSError:
            return True
    host, pid = holder
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    try:
        return time.time() - os.stat(path).st_mtime > CLAIM_STALE_S
    except OSError:
        return True
