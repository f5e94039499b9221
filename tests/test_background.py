"""tests/background.py, what the fresh-process tests stand on: a case runs once, on the background
thread or where it is first asked for, and what it raises reaches every test that asks."""

import threading

import pytest

from tests.background import Cases


def test_a_case_runs_once_and_where_it_is_first_asked_for(tmp_path):
    ran = []

    def case(folder, npz):
        ran.append((threading.current_thread().name, folder.parent, npz))
        return len(ran)

    cases = Cases()
    cases.start([], str(tmp_path), "mnist.npz")
    assert cases.result(case) == cases.result(case) == 1
    assert ran == [(threading.current_thread().name, tmp_path, "mnist.npz")]  # here, in its own folder


def test_a_started_case_runs_on_the_background_thread_and_is_waited_for(tmp_path):
    started, release, threads = threading.Event(), threading.Event(), []

    def case(folder, npz):
        threads.append(threading.current_thread().name)
        started.set()
        release.wait(10)
        return "done"

    cases = Cases()
    cases.start([case], str(tmp_path), "mnist.npz")
    assert started.wait(10)
    threading.Timer(0.2, release.set).start()
    assert cases.result(case) == "done"  # waited for while it ran there, not run a second time
    cases.stop()
    assert threads == ["fresh-process cases"]


def test_what_a_case_raises_every_test_that_asks_raises(tmp_path):
    def case(folder, npz):
        raise AssertionError("the command failed")

    cases = Cases()
    cases.start([], str(tmp_path), "mnist.npz")
    for _ in range(2):
        with pytest.raises(AssertionError, match="the command failed"):
            cases.result(case)


def test_a_case_asked_for_by_an_unmarked_test_says_so(tmp_path):
    def unmarked(folder, npz):
        return "never"

    cases = Cases()
    cases.start([], str(tmp_path), None)  # no test marked fresh was selected
    with pytest.raises(AssertionError, match="unmarked is asked for by a test not marked background.fresh"):
        cases.result(unmarked)
