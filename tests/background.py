"""Fresh-process cases, run beside the suite.

A test that starts a fresh Python (a reader's command, a signal, a process's peak memory) spends most
of its time waiting while that process imports TensorFlow on one core: seconds each. Such a test puts
the process's part in a *case*, a function ``case(folder, npz)`` that runs it in the fresh folder
``folder`` (``npz``: a Keras-layout mnist.npz) and returns what the test checks; the test asks for
``background.result(case)``.

Marked ``@background.fresh(case)`` (pytest's mark ``fresh``), the test runs after the others and its
case starts as soon as the session does, on one background thread, one case at a time, at a lower
priority than the suite (tests/conftest.py does all three): by the time the test runs, its case has often finished. A case
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


def fresh(case):
    """The mark of a test that checks what ``case`` returns."""
    return pytest.mark.fresh.with_args(case)


class _Entry:
    def __init__(self):
        self.started = False
        self.finished = threading.Event()
        self.value = self.error = None


class Cases:
    """The session's cases: each run at most once, by the background thread or by the first to ask."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = {}  # case -> _Entry
        self._folder = self._npz = self._thread = None
        self._stopping = False

    def start(self, cases, folder, npz):
        """Run ``cases``, in order, on one background thread; their folders go in ``folder``."""
        self._folder, self._npz = folder, npz
        if cases:
            self._thread = threading.Thread(target=self._work, args=(cases,), name="fresh-process cases", daemon=True)
            self._thread.start()

    def result(self, case):
        """What ``case`` returned (it runs here unless it has started), or what it raised, raised again."""
        entry, mine = self._claim(case)
        if mine:
            self._run(case, entry)
        entry.finished.wait()
        if entry.error is not None:
            raise entry.error
        return entry.value

    def stop(self):
        """Start no more cases, and wait for the one running (each bounds its own processes' time)."""
        self._stopping = True
        if self._thread is not None:
            self._thread.join()

    def _work(self, cases):
        if sys.platform.startswith("linux"):
            os.nice(10)  # on Linux this thread alone, and the processes it starts
        for case in cases:
            if self._stopping:
                return
            entry, mine = self._claim(case)
            if mine:
                self._run(case, entry)

    def _claim(self, case):
        """The case's entry, and whether the caller is the one to run it."""
        with self._lock:
            entry = self._entries.setdefault(case, _Entry())
            mine = not entry.started
            entry.started = True
        return entry, mine

    def _run(self, case, entry):
        try:
            assert self._npz is not None, f"{case.__name__} is asked for by a test not marked background.fresh(...)"
            folder = tempfile.mkdtemp(prefix=case.__name__ + "-", dir=self._folder)
            entry.value = case(pathlib.Path(folder), self._npz)
        except BaseException as exc:  # each test that asks raises it
            entry.error = exc
        finally:
            entry.finished.set()


SESSION = Cases()  # tests/conftest.py starts and stops it
result = SESSION.result
