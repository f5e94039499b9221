"""The book's tables as data (study/tables.py): each row builds the model its columns describe, the
listings are rows of their tables, and the book's numbers are typed in one place."""

import importlib
import os
import re
import subprocess

import pytest

from tests.support import ROOT
from study.tables import LISTINGS, TABLES


def _layers(model, kind):
    return [layer for layer in model.layers if type(layer).__name__ == kind]


def _build(table, row):
    return importlib.import_module(table.listing).build_model(**row.build)


def _layer_configs(model):
    """Each layer's class and settings, its name aside (names count up in a session)."""
    return [(type(layer).__name__, {k: v for k, v in layer.get_config().items() if k != "name"})
            for layer in model.layers]


def _dropout(text):
    """The dropout rate a column such as 'Dropout(0.45)' (or 'L2(0.01)', 'None': no dropout) names."""
    found = re.fullmatch(r"Dropout\((.*)\)", text)
    return float(found.group(1)) if found else 0.0


@pytest.mark.backend
@pytest.mark.parametrize("number", range(1, len(TABLES["1.3.2"].rows) + 1))
def test_each_mlp_row_builds_the_model_its_columns_name(number):
    table = TABLES["1.3.2"]
    row = table.rows[number - 1]
    model = _build(table, row)
    first, second, _ = (int(n) for n in row.columns["layers"].split("-"))  # the book counts the output as the third
    assert [layer.units for layer in _layers(model, "Dense")] == [first, second, 10]
    assert [layer.rate for layer in _layers(model, "Dropout")] == [_dropout(row.columns["regularizer"])] * 2
    l2 = re.fullmatch(r"L2\((.*)\)", row.columns["regularizer"])
    for dense in _layers(model, "Dense")[:2]:
        regularizer = dense.kernel_regularizer
        assert (regularizer.get_config()["l2"] if regularizer else None) == (float(l2.group(1)) if l2 else None)
    hidden = [layer.get_config()["activation"] for layer in _layers(model, "Activation")[:2]]
    assert hidden == ["relu" if row.columns["ReLU"] == "Yes" else "linear"] * 2
    assert row.optimizer == row.columns["optimizer"].lower()


@pytest.mark.backend
@pytest.mark.parametrize("table_id, column", [("1.4.1", "layers (filters)"), ("1.5.1", "units")])
def test_each_cnn_and_rnn_row_builds_the_model_its_columns_name(table_id, column):
    table = TABLES[table_id]
    for row in table.rows:
        model = _build(table, row)
        if table_id == "1.4.1":
            assert "-".join(str(c.filters) for c in _layers(model, "Conv2D")) == row.columns[column]
            assert [d.rate for d in _layers(model, "Dropout")] == [_dropout(row.columns["regularizer"])]
        else:
            rnn = _layers(model, "SimpleRNN")[0]
            assert rnn.units == row.columns[column] and rnn.dropout == _dropout(row.columns["regularizer"])
        assert row.optimizer == row.columns["optimizer"].lower()


@pytest.mark.parametrize("key", sorted(LISTINGS))
def test_each_listing_is_a_row_of_its_table(key):
    """The row named as the listing's own has the listing's optimizer (from its compile line) and
    builds the listing's model exactly; the listing's docstring quotes the book's numbers as the
    tables hold them."""
    listing = LISTINGS[key]
    table = TABLES[listing.table]
    row = table.rows[listing.row - 1]
    source = open(os.path.join(ROOT, listing.script)).read()
    assert f"optimizer='{row.optimizer}'" in source
    module = importlib.import_module(listing.module)
    assert _layer_configs(_build(table, row)) == _layer_configs(module.build_model())
    doc = " ".join(module.__doc__.split())
    assert f"Total params: {listing.params:,}" in doc
    assert f"(the book: {listing.book_test}% test accuracy in {table.epochs} epochs" in doc
    assert f"Listing {listing.number} " in doc


def test_the_books_numbers_are_typed_in_one_file():
    """A few of the book's numbers that appear nowhere else: only study/tables.py types them in code."""
    files = subprocess.run(["git", "ls-files", "*.py"], capture_output=True, text=True, cwd=ROOT).stdout.split()
    for number in ("93.65", "99.93", "97.76", "96.79", "97.88"):
        holders = [f for f in files if not f.startswith("tests/") and number in open(os.path.join(ROOT, f)).read()]
        assert holders == ["study/tables.py"], (number, holders)
