"""The chapter's notebooks (notebooks/): the listings' own model, hyperparameters, compile, fit and evaluate;
their .py twins in sync; the numbers they quote, from results/; their committed full run; and, marked
``notebook``, each run top to bottom in quick mode, offline (notebooks/execute.py)."""

import ast
import json
import os
import re
import runpy

import jupytext
import nbformat
import pytest

from study.records import read_records
from study.report import book_budget, summarize
from study.stats import mean_std
from study.tables import LISTINGS, TABLES
from tests.support import ROOT

FOLDER = os.path.join(ROOT, "notebooks")
MODELS = {listing.module: listing for listing in LISTINGS.values()}  # mlp_mnist, cnn_mnist, rnn_mnist
NAMES = ["mnist_sampler", *MODELS]


def notebook(name):
    return nbformat.read(os.path.join(FOLDER, name + ".ipynb"), as_version=4)


def outputs(nb):
    """What the notebook printed and showed as text, without its colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", "".join(out.get("text", "") + out.get("data", {}).get("text/plain", "")
                                                 for cell in nb.cells for out in cell.get("outputs", [])))


class AtDefaults(ast.NodeTransformer):
    """A function's body with its parameters at their defaults, folded: what it does when called bare."""

    def __init__(self, values):
        self.values = values

    def visit_Name(self, node):
        return self.values.get(node.id, node) if isinstance(node.ctx, ast.Load) else node

    def visit_IfExp(self, node):  # `l2(l2_weight) if l2_weight else None` -> None
        self.generic_visit(node)
        return (node.body if node.test.value else node.orelse) if isinstance(node.test, ast.Constant) else node

    def visit_BoolOp(self, node):  # `second_units or hidden_units` -> hidden_units
        self.generic_visit(node)
        first = node.values[0]
        falsy = isinstance(first, ast.Constant) and not first.value
        return node.values[1] if isinstance(node.op, ast.Or) and falsy else node

    def visit_Call(self, node):  # `Dense(units, kernel_regularizer=None)` -> Dense(units): None is Keras' default
        self.generic_visit(node)
        node.keywords = [k for k in node.keywords if not (isinstance(k.value, ast.Constant) and k.value.value is None)]
        return node


class FromArgs(ast.NodeTransformer):
    """The script's command line as the notebook's names: `args.epochs` -> `epochs`; `run.callbacks` dropped."""

    def visit_Attribute(self, node):
        return ast.Name(node.attr, ast.Load()) if isinstance(node.value, ast.Name) and node.value.id == "args" else node

    def visit_Call(self, node):
        self.generic_visit(node)
        node.keywords = [k for k in node.keywords if "run." not in ast.unparse(k.value)]
        return node


def is_step(stmt):
    """`model = Sequential()` or `model.add(...)`: a step of building the model."""
    return ast.unparse(stmt).startswith(("model = ", "model.add("))


def calls(tree):
    """The calls of model.compile, model.fit and model.evaluate, as code."""
    return [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Call)
            and ast.unparse(n.func) in ("model.compile", "model.fit", "model.evaluate")]


def values(tree):
    """`{name: code}` of the top-level assignments, but for the two the book takes from the data and the parser."""
    return {s.targets[0].id: ast.unparse(s.value) for s in tree.body if isinstance(s, ast.Assign)
            and isinstance(s.targets[0], ast.Name) and s.targets[0].id not in ("image_size", "num_labels", "parser")}


def listing_code(module):
    """The listing's model (build_model's body at its defaults), calls, values and epochs, as code."""
    tree = ast.parse(open(os.path.join(ROOT, module + ".py")).read())
    functions = {s.name: s for s in tree.body if isinstance(s, ast.FunctionDef)}
    build = functions["build_model"]
    defaults = dict(zip([a.arg for a in build.args.args][-len(build.args.defaults):], build.args.defaults))
    steps = []
    for stmt in build.body[1:-1]:  # the docstring and `return model` left out
        stmt = AtDefaults(defaults).visit(stmt)
        if is_step(stmt):
            steps.append(ast.unparse(stmt))
        else:  # a local, `regularizer = None`, put where it is used
            defaults[stmt.targets[0].id] = stmt.value
    main = FromArgs().visit(functions["main"])
    epochs = next(k.value for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "ListingParser"
                  for k in n.keywords if k.arg == "epochs")
    return steps, calls(main), {**values(tree), "epochs": ast.unparse(epochs)}


@pytest.mark.parametrize("module", MODELS)
def test_model_is_the_listings(module):
    """Each notebook builds, compiles, trains and tests the listing's model with its values: no copy that drifts."""
    tree = ast.parse("\n".join(c.source for c in notebook(module).cells if c.cell_type == "code"))
    steps, listing_calls, listing_values = listing_code(module)
    assert [ast.unparse(s) for s in tree.body if is_step(s)] == steps
    assert calls(tree) == listing_calls and len(listing_calls) == 3
    assert {name: values(tree).get(name) for name in listing_values} == listing_values


@pytest.mark.parametrize("name", NAMES)
def test_twins_in_sync(name):
    """Each notebook and its percent-format .py twin hold the same cells (jupytext --sync notebooks/*.ipynb)."""
    ipynb, py = (jupytext.read(os.path.join(FOLDER, name + ext)) for ext in (".ipynb", ".py"))
    assert [(c.cell_type, c.source) for c in py.cells] == [(c.cell_type, c.source) for c in ipynb.cells]


@pytest.mark.parametrize("module", MODELS)
def test_quoted_numbers(module):
    """The last cell quotes the book's numbers and the project's mean ± std as results/ records them."""
    listing, cells = MODELS[module], notebook(module).cells
    table = TABLES[listing.table]
    records = read_records(os.path.join(ROOT, "results"), quiet=True)
    row = summarize(table, records, book_budget(table))[listing.row - 1]
    assert f"`Total params: {listing.params:,}`" in cells[0].source
    assert f"(seeds {', '.join(map(str, row['seeds']))}; " in cells[-1].source
    assert f"Table {table.id} row {listing.row})" in cells[-1].source
    assert f"The book:     {listing.book_test:.1f}% (its Table {table.id}: {row['book_test']:.1f}%)" in cells[-1].source
    project = f"This project: {mean_std(row['test_mean'], row['test_std'])}% (mean ± std over {row['n']} seeds)"
    assert project in cells[-1].source


@pytest.mark.parametrize("name", NAMES)
def test_committed_run(name):
    """The committed notebook shows a full run (the book's epochs), with the results the script's run recorded."""
    nb, results = notebook(name), os.path.join(ROOT, "results", "listings")
    text = outputs(nb)
    assert os.path.getsize(os.path.join(FOLDER, name + ".ipynb")) < 2**20
    assert not [out for cell in nb.cells for out in cell.get("outputs", []) if out.output_type == "error"]
    if name == "mnist_sampler":
        with open(os.path.join(results, "mnist-samples.json")) as f:
            counts = json.load(f)
        assert "Train labels:  {%s}" % ", ".join(f"{k}: {v}" for k, v in counts["train_labels"].items()) in text
        return
    from ch1.run import read_run  # imports Keras

    run = read_run(os.path.join(results, MODELS[name].name + ".json"))
    assert f"Epoch {run['epochs']}/{run['epochs']}" in text
    assert f"\nTest accuracy: {100 * run['test_accuracy']:.1f}%" in text


@pytest.mark.notebook
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", NAMES)
def test_quick_run(name, mnist_npz, tmp_path, monkeypatch):
    """Each notebook runs top to bottom in a fresh kernel, offline, in quick mode (1 epoch on 1,000 images), in
    a temporary folder and with no PYTHONPATH: it can import nothing of this project, and installs nothing."""
    code = "\n".join(c.source for c in notebook(name).cells if c.cell_type == "code")
    assert not re.search(r"^\s*[!%]|pip install|git clone", code, re.M)  # no shell line, no install, no clone
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.setenv("CH1_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("MNIST_DATA", str(mnist_npz))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # Keras writes its keras.json there, not into ~/.keras
    if name == "rnn_mnist":  # one run where Graphviz's dot is not found: a one-line note for the diagram
        monkeypatch.setenv("PATH", str(tmp_path))
    text = outputs(runpy.run_path(os.path.join(FOLDER, "execute.py"))["execute"](
        os.path.join(FOLDER, name + ".ipynb"), timeout=240))
    if name == "mnist_sampler":
        assert "Train labels:  {0: 5923, 1: 6742, 2: 5958," in text and "Test labels:  {0: 980, 1: 1135," in text
    else:
        assert f"Total params: {MODELS[name].params:,}" in text and re.search(r"\nTest accuracy: \d+\.\d%", text)
        assert name != "rnn_mnist" or "You must install graphviz" in text
