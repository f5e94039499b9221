"""make_docs.py and the docs: generated from the committed runs, links that resolve, commands that
work on a fresh clone as written."""

import contextlib
import importlib
import io
import os
import re
import shlex
import shutil
import subprocess

import pytest

import make_docs
from tests.support import ROOT

PAGES = ["README.md", "RESULTS.md"] + sorted(os.path.join("docs", p) for p in os.listdir(os.path.join(ROOT, "docs"))
                                             if p.endswith(".md"))


def _tracked():
    return subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT, check=True).stdout.split()


def test_the_docs_are_made_from_the_committed_runs_and_a_second_run_changes_nothing(tmp_path, monkeypatch):
    """make_docs.py over a copy of README.md, docs/ and results/ writes them byte for byte as committed."""
    for name in ("README.md", "docs", "results"):
        source = os.path.join(ROOT, name)
        (shutil.copytree if os.path.isdir(source) else shutil.copy)(source, tmp_path / name)
    monkeypatch.chdir(tmp_path)  # the docs name their sources relative to the project
    make_docs.main([])
    for page in ["README.md"] + [p for p in PAGES if p.startswith("docs")]:
        assert (tmp_path / page).read_text() == open(os.path.join(ROOT, page)).read(), page


def test_the_readme_is_for_the_reader():
    lines = open(os.path.join(ROOT, "README.md")).read().splitlines()
    assert len(lines) <= 150
    text = "\n".join(lines)
    for forbidden in ("issue ", "commit ", "session"):  # no history
        assert forbidden not in text.lower(), forbidden


def _slug(heading):
    """The anchor a Git forge gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path):
    with open(path) as f:
        return {_slug(line.lstrip("#")) for line in f if line.startswith("#")}


def test_every_relative_link_and_image_resolves():
    for page in PAGES:
        text = open(os.path.join(ROOT, page)).read()
        text = re.sub(r"```.*?```", "", text, flags=re.S)  # code is not links
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), path)) if path else \
                os.path.join(ROOT, page)
            assert not os.path.isabs(path), (page, target)
            assert os.path.exists(resolved), (page, target)
            if anchor and resolved.endswith(".md"):
                assert anchor in _anchors(resolved), (page, target)


def _commands():
    """Every `python ...` line of every bash block in the README and docs: (page, block, command)."""
    found = []
    for page in [p for p in PAGES if p != "RESULTS.md"]:
        text = open(os.path.join(ROOT, page)).read()
        for number, block in enumerate(re.findall(r"```bash\n(.*?)```", text, flags=re.S)):
            for line in block.splitlines():
                line = line.split("  #")[0].strip()
                if line.startswith("#"):
                    continue  # a comment line
                for part in re.split(r"\s*&&\s*", line):
                    words = shlex.split(part.replace("$", "")) if part else []
                    while words and "=" in words[0]:
                        words = words[1:]  # KERAS_BACKEND=jax ...
                    if words[:1] == ["python"] and len(words) > 1 and words[1:3] != ["-m", "pytest"]:
                        found.append((page, number, words))
    return found


def _script(words):
    return words[2] if words[1] == "-m" else words[1]


def _help(script):
    """What ``python SCRIPT --help`` (or ``python -m MODULE --help``) prints, from this process."""
    module = importlib.import_module(script[:-3] if script.endswith(".py") else script)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        module.main(["--help"])
    return out.getvalue()


def test_every_command_in_the_docs_works_on_a_fresh_clone():
    """On the committed files alone, with no outputs/: every script or module a command names is
    committed, takes every flag it is given (its --help lists them), and every model or run it reads is
    committed or made by a command before it in the same block."""
    tracked = set(_tracked())
    commands = _commands()
    assert len(commands) > 20
    scripts = sorted({_script(words) for _, _, words in commands})
    for script in scripts:
        assert (script if script.endswith(".py") else script.replace(".", "/") + ".py") in tracked, script
    helps = {script: _help(script) for script in scripts}
    made = {}
    for page, block, words in commands:
        script = _script(words)
        assert script in helps and "usage:" in helps[script], (page, words)
        flags = [w.split("=")[0] for w in words[2:] if w.startswith("--")]
        for flag in flags:
            assert flag in helps[script], (page, words, flag)
        arguments = dict(zip(words, words[1:]))
        output_dir = arguments.get("--output-dir", "outputs")
        if script.endswith("_mnist.py"):
            made.setdefault((page, block), set()).add(os.path.normpath(output_dir))
        needs = [arguments[f] for f in ("--model", "--models-dir") if f in arguments]
        if script == "predict.py" and "--model" not in arguments:
            needs.append(os.path.join("outputs", "cnn-mnist.keras"))
        for need in needs:
            folder = need if need.endswith(("dir", "listings")) or "." not in os.path.basename(need) else \
                os.path.dirname(need)
            assert need in tracked or os.path.normpath(folder) in made.get((page, block), set()), (page, words)


def test_each_promise_of_the_threat_model_names_a_test_that_exists():
    """docs/reliability.md's table: every row names its tests, each in the file named before it in the row."""
    files = {name: os.path.join(folder, name) for folder, _, names in os.walk(os.path.join(ROOT, "tests"))
             for name in names if name.startswith("test_")}
    rows = [line for line in open(os.path.join(ROOT, "docs", "reliability.md")) if line.startswith("| ")][2:]
    assert len(rows) >= 20
    for row in rows:
        named = re.findall(r"`(?:[\w/]*?(test_\w+\.py)::)?(test_\w+)`", row.split(" | ")[-1])
        assert named and named[0][0], row
        for file, test in named:
            source = open(files[file or source_file]).read()
            source_file = file or source_file
            assert f"def {test}(" in source, (source_file, test)
