"""Fresh-process cases, run beside the suite.

A test that starts a fresh Python (a reader's command, a signal, a process's peak memory) spends most
of its time waiting while that process imports TensorFlow on one core: seconds each. Such a test puts
the process's part in a *case*, a function ``case(folder, npz)`` that runs it in the fresh folder
``folder`` (``npz``: a Keras-layout mnist.npz) and returns what the test checks; the test asks for
``background.result(case)``.

Marked ``@background.fresh(case)`` (pytest's mark ``fresh``), the test runs after the others and its case starts as soon as
the session does, on one background thread, one case at a time, at a lower priority than the suite
(tests/conftest.py does all three): by the time the test runs, its case has often finished. A case
that is not started yet when its test asks runs there and then, in the test's own thread: the same
result, only later. A case runs once per session however many tests ask for it; what it raises, each
of them raises.

A case starts processes and writes files; it never uses Keras in this process (a second thread would
share Keras' global state with the tests: layer names, seeds).
"""

import os
import pathlib
import sys
import tempfile
import threading

import pytest

_lock = threading.Lock()
_entries = {}  # case -> _Entry
_session = {"folder": None, "npz": None, "stop": False, "thread": None}


class _Entry:
    def __init__(self):
        self.started = False
        self.finished = threading.Event()
        self.value = self.error = None


def fresh(case):
    """The mark of a test that checks what ``case`` returns."""
    return pytest.mark.fresh.with_args(case)


def _claim(case):
    """The case's entry, and whether the caller is the one to run it."""
    with _lock:
        entry = _entries.setdefault(case, _Entry())
        mine = not entry.started
        entry.started = True
    return entry, mine


def _run(case, entry):
    try:
        folder = tempfile.mkdtemp(prefix=case.__name__ + "-", dir=_session["folder"])
        entry.value = case(pathlib.Path(folder), _session["npz"])
    except BaseException as exc:  # each test that asks raises it
        entry.error = exc
    finally:
        entry.finished.set()


def result(case):
    """What ``case`` returned (it runs here unless it has started), or what it raised, raised again."""
    entry, mine = _claim(case)
    if mine:
        _run(case, entry)
    entry.finished.wait()
    if entry.error is not None:
        raise entry.error
    return entry.value


def start(cases, folder, npz):
    """Run ``cases``, in order, on one background thread; their folders go in ``folder``."""
    _session.update(folder=folder, npz=npz)
    if not cases:
        return

    def work():
        if sys.platform.startswith("linux"):
            os.nice(10)  # on Linux this thread alone, and the processes it starts
        for case in cases:
            if _session["stop"]:
                return
            entry, mine = _claim(case)
            if mine:
                _run(case, entry)

    _session["thread"] = threading.Thread(target=work, name="fresh-process cases", daemon=True)
    _session["thread"].start()


def stop():
    """Start no more cases, and wait for the one running (each bounds its own processes' time)."""
    _session["stop"] = True
    if _session["thread"] is not None:
        _session["thread"].join()
