"""ch1/ holds exactly what the listings stand on: every module in it is imported, directly or not,
by a listing, and nothing else is there; no listing reaches up into the tools.

Read from the sources' import statements (those inside functions too: what a listing imports when it
runs), so no Keras is loaded to check it. And every command reads its flags before it loads Keras."""

import ast
import os
import subprocess
import sys

import pytest

from tests.support import ROOT

LISTINGS = ("mnist_sampler", "mlp_mnist", "cnn_mnist", "rnn_mnist")
PACKAGES = ("ch1", "study", "your_digit")  # the project's own: the listings' plumbing, the study, the app


def source_of(module):
    """The file of the project's ``module`` (a package's __init__.py), or None where it is none of ours."""
    base = os.path.join(ROOT, *module.split("."))
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(path):
            return path
    return None


def imported_by(module):
    """The project's modules that ``module``'s import statements name (with the packages above them)."""
    path = source_of(module)
    names = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: a relative import, which this reader does not follow"
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from ch1 import data`
    found = set()
    for name in names:
        parts = name.split(".")
        if parts[0] in PACKAGES:
            found.update(".".join(parts[:n]) for n in range(1, len(parts) + 1) if source_of(".".join(parts[:n])))
    return found


def reached_from(modules):
    reached, todo = set(), list(modules)
    while todo:
        module = todo.pop()
        for name in imported_by(module) - reached:
            reached.add(name)
            todo.append(name)
    return reached


def test_the_import_reader_sees_what_python_imports():
    """What the test below stands on: each kind of import statement."""
    assert imported_by("mlp_mnist") >= {"ch1", "ch1.run"}  # from ch1 import ...; from ch1.run import ...
    assert "ch1.cli" in imported_by("ch1.run")
    assert "ch1.startup" in imported_by("ch1")  # ch1/__init__.py: from ch1.startup import quiet_startup
    assert {"study", "study.records", "study.train"} <= imported_by("reproduce")
    assert "your_digit.serve" not in reached_from(["figures"])  # a module figures.py never imports is not reached


def test_every_module_in_ch1_is_reached_from_the_listings_imports():
    reached = reached_from(LISTINGS)
    present = {"ch1"} | {f"ch1.{name[:-3]}" for name in os.listdir(os.path.join(ROOT, "ch1"))
                         if name.endswith(".py") and name != "__init__.py"}
    assert reached == present  # every ch1 module, and nothing of study/ or your_digit/


COMMANDS = LISTINGS + ("predict", "reproduce", "figures", "make_docs")  # what a reader types at the root
BEFORE_KERAS = """
import runpy, sys
sys.argv = [sys.argv[1]] + sys.argv[2:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print(sorted(set(sys.modules) & {"keras", "tensorflow", "jax", "torch", "matplotlib"}))
"""


@pytest.mark.parametrize("command", COMMANDS)
def test_help_and_a_mistyped_flag_answer_before_keras_loads(command):
    """`--help` prints at once, and a mistyped flag exits 2 in one line: the flags are read before the
    imports that load Keras and its backend (seconds) or matplotlib."""
    script = os.path.join(ROOT, command + ".py")
    env = {**os.environ, "PYTHONPATH": ROOT}
    shown = subprocess.run([sys.executable, "-c", BEFORE_KERAS, script, "--help"], capture_output=True, text=True,
                           env=env, cwd=ROOT, timeout=60)
    assert shown.returncode == 0 and shown.stdout.startswith(f"usage: {command}.py")
    assert shown.stdout.splitlines()[-1] == "[]"
    refused = subprocess.run([sys.executable, "-c", BEFORE_KERAS, script, "--no-such-flag"], capture_output=True,
                             text=True, env=env, cwd=ROOT, timeout=60)
    assert refused.returncode == 2 and refused.stdout == "[]\n"
    assert refused.stderr.endswith(f"{command}.py: error: unrecognized arguments: --no-such-flag\n")
