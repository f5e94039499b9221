"""reproduce.py's records: one JSON line per finished trial, and claims on trials being run.

A record is keyed by everything that changes its numbers: table, row, seed, epochs, batch
size, learning rate (None: Keras' default), smoke, Keras backend and precision. Records
written before the backend and precision were recorded are TensorFlow's, in float32.

A results folder may come with a clone, so nothing in it is trusted:

- Reading never fails on a record: a line cut short by a kill, a line over MAX_LINE bytes,
  invalid UTF-8, bad JSON, a missing field, a field of the wrong type or a value outside its
  set or range is skipped with one warning naming the file and line (that trial simply runs
  again). Every value that becomes part of a file name comes from a fixed set (tables and
  rows of study.tables.SWEEPS, BACKENDS, PRECISIONS) or a bounded range, and every name made
  from one is checked to stay inside its folder (:func:`child`).
- Files are read line by line, and per trial only what the reports read is kept
  (:func:`for_reports`), so a merge's memory follows the trials, not the size of the files.
- Records and claims are never written through a symbolic link, nor into a claims folder
  that is one; the discussion is never read through one (it is copied into RESULTS.md).

Nothing here imports Keras.
"""

import errno
import glob
import json
import os
import socket
import stat
import sys
import time
from array import array
from dataclasses import dataclass

from ch1.data import TRAIN_SIZE
from ch1.files import file_kind, regular_file
from study.tables import SWEEPS

BACKENDS = ("tensorflow", "jax", "torch")  # the Keras backends a sweep runs and records
PRECISIONS = ("float32", "bfloat16")
MAX_SEEDS = 1000  # seeds are 0..999
MAX_EPOCHS = 10_000
MAX_LEARNING_RATE = 100  # a learning rate is above 0 and below this
MAX_FIT_SECONDS = 10**9  # about 32 years
MAX_PARAMS = 10**9  # the largest row, 1024-1024-1024, has under 3 million
MAX_LINE = 2**20  # bytes in one record's line: room for MAX_EPOCHS epochs of four metrics
MAX_CLAIM = 4096  # bytes read of a claim file (a real one holds about 80)
MAX_DISCUSSION = 2**20  # bytes of results/discussion.md copied into the report

DEFAULTS = {"backend": "tensorflow", "precision": "float32", "learning_rate": None}
# Field: the types it may have. A record lacking a field of DEFAULTS takes the default.
FIELDS = {
    "table": (str,), "row": (int,), "seed": (int,), "epochs": (int,), "batch_size": (int,), "smoke": (bool,),
    "test_accuracy": (int, float), "train_accuracy": (int, float), "fit_seconds": (int, float), "params": (int,),
    "backend": (str,), "precision": (str,), "learning_rate": (int, float, type(None)),
}
RANGES = {"seed": (0, MAX_SEEDS - 1), "epochs": (1, MAX_EPOCHS), "batch_size": (1, TRAIN_SIZE),
          "test_accuracy": (0, 1), "train_accuracy": (0, 1), "fit_seconds": (0, MAX_FIT_SECONDS),
          "params": (1, MAX_PARAMS)}
REPORT_FIELDS = ("test_accuracy", "train_accuracy", "fit_seconds", "params", "epochs")  # (checked: always there)
CURVES = ("accuracy", "val_accuracy")  # the per-epoch metrics the reports read
CLAIM_STALE_S = 48 * 3600  # a claim from another host older than this is taken to be abandoned
# Flags some systems lack: Windows has no O_NOFOLLOW (a link there takes an administrator to make)
# nor O_NONBLOCK, and needs O_BINARY, which it alone has.
NOFOLLOW, NONBLOCK, BINARY = (getattr(os, name, 0) for name in ("O_NOFOLLOW", "O_NONBLOCK", "O_BINARY"))


class RecordsError(Exception):
    """A records file, claims folder or file name that cannot be used (the message is one line)."""


@dataclass(frozen=True, slots=True)  # slots: a merge holds one per trial, so each is kept small
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
    """The Trial a (checked) record is the result of (its names interned: one copy for all trials)."""
    values = {**DEFAULTS, **record}
    return Trial(sys.intern(values["table"]), values["row"], values["seed"], values["epochs"], values["batch_size"],
                 values["smoke"], sys.intern(values["backend"]), sys.intern(values["precision"]),
                 values["learning_rate"])


def check(record):
    """Why ``record`` cannot be used (a short reason that quotes none of its text), or None when it can."""
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
    values = {**DEFAULTS, **record}
    if values["table"] not in SWEEPS:
        return f"table is not one of {', '.join(SWEEPS)}"
    if not 1 <= values["row"] <= len(SWEEPS[values["table"]].rows):
        return f"row outside 1..{len(SWEEPS[values['table']].rows)} of Table {values['table']}"
    for name, (low, high) in RANGES.items():
        if not low <= values[name] <= high:  # (NaN is outside every range)
            return f"{name} outside {low}..{high}"
    if values["backend"] not in BACKENDS:
        return f"backend is not one of {', '.join(BACKENDS)}"
    if values["precision"] not in PRECISIONS:
        return f"precision is not one of {', '.join(PRECISIONS)}"
    if values["learning_rate"] is not None and not 0 < values["learning_rate"] < MAX_LEARNING_RATE:
        return f"learning_rate outside (0, {MAX_LEARNING_RATE})"
    history = record.get("history")
    if history is not None and not (isinstance(history, dict) and all(
            isinstance(v, list) and all(isinstance(x, (int, float, type(None))) for x in v) for v in history.values())):
        return "history is not lists of numbers (null: a loss that was not finite)"
    return None


def curves(record):
    """A (checked) record's per-epoch accuracies as the reports read them ({name: array of floats}):
    ``accuracy`` and ``val_accuracy`` where the run recorded both, else the last two epochs' ``accuracy``;
    None when its history cannot be read as one run's: every list one value per epoch, ``accuracy``
    present, the accuracies numbers in 0..1. A record without one still counts in the tables; it is
    left out of what needs a history."""
    history = record.get("history")
    if not history or "accuracy" not in history or any(len(v) != record["epochs"] for v in history.values()):
        return None
    kept = {name: history[name] for name in CURVES if name in history}
    if not all(x is not None and 0 <= x <= 1 for values in kept.values() for x in values):
        return None
    if "val_accuracy" not in kept:  # of a curve without test accuracy the reports read the last epoch's rise
        kept["accuracy"] = kept["accuracy"][-2:]
    return {name: array("d", values) for name, values in kept.items()}  # 8 bytes a value, not a list's 32


def for_reports(record, shared=None):
    """What the reports read of a (checked) record: REPORT_FIELDS, whether it ``diverged`` (where that
    is recorded as true or false), where it ran (``device`` and ``versions``, where they are text) and
    its :func:`curves` as ``history``. A line can hold far more (every metric per epoch, the CPU's
    flags); keeping this alone holds a merge's memory to the number of trials. ``shared``: a dict
    through which equal ``device`` and ``versions`` of many records are kept once."""
    shared = {} if shared is None else shared
    kept = {name: record[name] for name in REPORT_FIELDS}
    if isinstance(record.get("diverged"), bool):
        kept["diverged"] = record["diverged"]
    if isinstance(record.get("device"), str):
        kept["device"] = shared.setdefault(record["device"], record["device"])
    versions = record.get("versions")
    if isinstance(versions, dict) and all(isinstance(v, str) for v in versions.values()):
        kept["versions"] = shared.setdefault(tuple(versions.items()), versions)
    history = curves(record)
    if history:
        kept["history"] = history
    return kept


def warn(message):
    print(f"warning: {message}", file=sys.stderr)


def each_record(results_dir, quiet=False):
    """``(trial, record)`` for every usable record in ``results_dir``/records*.jsonl (all shards), file by
    file and line by line, one line in memory at a time. ``quiet``: skip unusable files and lines without
    a warning (they were warned about when the sweep began)."""
    say = (lambda message: None) if quiet else warn
    for path in sorted(glob.glob(os.path.join(glob.escape(results_dir), "records*.jsonl"))):
        try:
            regular_file(path, "a records file", RecordsError)
            with open(path, "rb") as f:
                for number, line in _lines(f):
                    record, reason = _parse(line)
                    if reason:
                        say(f"{path}:{number}: skipping an unreadable record ({reason}); that trial runs again")
                    elif record is not None:
                        yield trial_of(record), record
        except RecordsError as exc:
            say(f"{exc}; skipping it")
        except OSError as exc:
            say(f"{path}: skipping, cannot read it ({exc.strerror or exc})")


def _lines(f):
    """``(number, line)`` for each line of the binary file ``f``; a line over MAX_LINE bytes comes as None,
    its bytes passed over in pieces, never held whole."""
    number = 0
    while True:
        line = f.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = f.readline(MAX_LINE + 1)
            yield number, None
        else:
            yield number, line


def _parse(line):
    """``(record, None)`` for a usable line, ``(None, why not)`` for an unusable one, ``(None, None)``
    for a blank one."""
    if line is None:
        return None, f"a line over {MAX_LINE:,} bytes"
    if not line.strip():
        return None, None
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8"
    except RecursionError:
        return None, "nested too deeply"
    except ValueError:
        return None, "not a whole JSON line (cut short?)"
    reason = check(record)
    return (None, reason) if reason else (record, None)


def read_records(results_dir, quiet=False):
    """``{Trial: what the reports read of its record}`` (:func:`for_reports`) from every usable record in
    ``results_dir``/records*.jsonl (all shards), the last of a trial's records winning."""
    shared = {}
    return {trial: for_reports(record, shared) for trial, record in each_record(results_dir, quiet)}


def recorded(results_dir, trial):
    """Whether ``results_dir`` holds a usable record of ``trial``."""
    return any(found == trial for found, _ in each_record(results_dir, quiet=True))


def child(folder, name):
    """``folder``/``name`` when ``name`` is a plain file name (no folder part, not '.' or '..', no NUL, at
    most 255 bytes), so that a path made from a record, a flag or a file name stays inside ``folder``;
    else RecordsError."""
    if (name in ("", ".", "..") or os.sep in name or (os.altsep and os.altsep in name) or "\0" in name
            or len(os.fsencode(name)) > 255):
        raise RecordsError(f"{folder}: {name[:60]!r} is not a file name inside it")
    return os.path.join(folder, name)


def linked(path):
    """The first part of ``path`` that is a symbolic link, or None. For a relative path that is any folder
    on the way from the working folder and the path itself (a clone may hold links); for an absolute one,
    the path itself (the folders above it are the system's, and /tmp is a link on some)."""
    if os.path.isabs(path):
        return path if os.path.islink(path) else None
    parts = path.split(os.sep)
    steps = [os.path.join(*parts[:i]) for i in range(1, len(parts) + 1) if parts[i - 1] not in ("", ".")]
    return next((step for step in steps if os.path.islink(step)), None)


def check_appendable(path):
    """Before a sweep trains: RecordsError unless records can be appended at ``path`` (missing, or a
    regular file that is not a symbolic link)."""
    if os.path.islink(path):
        raise RecordsError(f"{path}: a symbolic link; records are not written through one")
    if os.path.lexists(path):
        regular_file(path, "a records file", RecordsError)


def append_record(path, record):
    """Append one record as a line, on disk when this returns; a line cut short before it stays on its own
    line. Never through a symbolic link (RecordsError)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | NOFOLLOW | NONBLOCK | BINARY, 0o644)
    except OSError as exc:
        reason = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
        raise RecordsError(f"{path}: cannot append a record ({reason})") from None
    try:
        line = json.dumps(record).encode() + b"\n"
        size = os.fstat(fd).st_size
        if size:
            os.lseek(fd, size - 1, os.SEEK_SET)
            if os.read(fd, 1) != b"\n":
                line = b"\n" + line  # (with O_APPEND the write still goes to the end)
        while line:  # one write as a rule: appends of concurrent sweeps do not interleave
            line = line[os.write(fd, line):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_plain(path):
    """A descriptor to read ``path``: never through a symbolic link (OSError), never waiting on a FIFO."""
    return os.open(path, os.O_RDONLY | NOFOLLOW | NONBLOCK | BINARY)


def read_discussion(results_dir):
    """``results_dir``/discussion.md, the hand-written end of RESULTS.md, or '' when there is none. Read only
    from a regular file that is not a symbolic link (a link would copy whatever it points to into the
    report), of at most MAX_DISCUSSION bytes of UTF-8; anything else is left out with one warning."""
    path = os.path.join(results_dir, "discussion.md")
    if not os.path.lexists(path):
        return ""
    if os.path.islink(path):
        return _left_out(f"{path}: a symbolic link")
    try:
        size = regular_file(path, "a discussion", RecordsError).st_size
    except RecordsError as exc:
        return _left_out(str(exc))
    if size > MAX_DISCUSSION:
        return _left_out(f"{path}: over {MAX_DISCUSSION:,} bytes")
    try:
        fd = _open_plain(path)
        try:
            return os.read(fd, MAX_DISCUSSION).decode("utf-8")
        finally:
            os.close(fd)
    except OSError as exc:
        return _left_out(f"{path}: cannot read it ({exc.strerror or exc})")
    except UnicodeDecodeError:
        return _left_out(f"{path}: not UTF-8")


def _left_out(reason):
    warn(f"{reason}; the discussion is left out of the report")
    return ""


# --- claims: two sweeps on one results folder run each trial once ----------------------------------


def claims_dir(results_dir):
    return os.path.join(results_dir, "claims")


def claims_folder(results_dir):
    """The claims folder of ``results_dir``, made if missing; RecordsError (one line) where it is a symbolic
    link or anything but a folder, or cannot be made."""
    folder = claims_dir(results_dir)
    try:
        os.mkdir(folder)
    except FileExistsError:
        pass
    except OSError as exc:
        raise RecordsError(f"{folder}: cannot make the claims folder ({exc.strerror or exc})") from None
    mode = os.lstat(folder).st_mode
    if stat.S_ISLNK(mode):
        raise RecordsError(f"{folder}: a symbolic link, not the claims folder; claims are not written through one")
    if not stat.S_ISDIR(mode):
        raise RecordsError(f"{folder}: {file_kind(mode)}, not the claims folder (move it away)")
    return folder


def claim_path(results_dir, trial):
    return child(claims_dir(results_dir), trial.slug() + ".claim")


def claim(results_dir, trial, owner=None):
    """Claim ``trial`` for the sweep ``owner`` (a process id; default this process); False if another
    live sweep holds it. RecordsError where the claims folder cannot hold claims.

    A claim is a file created with O_EXCL (atomic on local file systems and on NFS v3 and
    later; never through a symbolic link). A claim whose sweep is gone (same host) or older
    than two days (another host) is taken over.
    """
    owner = owner or os.getpid()
    claims_folder(results_dir)
    path = claim_path(results_dir, trial)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o644)
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
            except OSError:
                return False  # not a file we can take over (a folder of that name): left alone
            continue
        except OSError as exc:
            raise RecordsError(f"{path}: cannot claim the trial ({exc.strerror or exc})") from None
        with os.fdopen(fd, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": owner, "since": time.time()}, f)
        return True
    return False


def release(results_dir, trial, owner=None):
    """Give back the claim on ``trial`` if the sweep ``owner`` (default this process) holds it."""
    path = claim_path(results_dir, trial)
    if _holder(path) == (socket.gethostname(), owner or os.getpid()):
        try:
            os.remove(path)
        except OSError:
            pass  # gone already, or the folder went: nothing left to give back


def take(results_dir, trial, owner=None):
    """Claim ``trial`` to run it, unless another sweep holds it or has recorded it: None when it is the
    sweep ``owner``'s to run, else why not.

    The records are read again after the claim: a sweep appends a trial's record before it gives
    the claim back, so a second sweep on the same folder sees one or the other.
    """
    if not claim(results_dir, trial, owner):
        return "claimed by another sweep"
    if recorded(results_dir, trial):
        release(results_dir, trial, owner)
        return "recorded by another sweep"
    return None


def _holder(path):
    """``(host, pid)`` of a claim file, or None when it cannot be read (gone, being written, garbage, a link
    or a FIFO: never followed nor waited on, and at most MAX_CLAIM bytes read)."""
    try:
        fd = _open_plain(path)
        try:
            holder = json.loads(os.read(fd, MAX_CLAIM))
        finally:
            os.close(fd)
        host, pid = holder["host"], holder["pid"]
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        return None
    if not isinstance(host, str) or not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**31:
        return None  # 0 or -1 would name a process group, a huge number no process at all
    return host, pid


def _stale(path, holder):
    if holder is None:
        # Being written this very moment, or garbage: garbage older than a minute is stale.
        try:
            return time.time() - os.lstat(path).st_mtime > 60
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
        return time.time() - os.lstat(path).st_mtime > CLAIM_STALE_S
    except OSError:
        return True
