"""The book's tables as data (ch1/tables.py): the chapter's numbers, typed in one place."""

import os
import subprocess

from tools.tables import TABLES, row
from tests.support import ROOT



def test_book_numbers_are_the_chapters():
    assert (row("1.3.2", 1).book_train, row("1.3.2", 1).book_test) == (93.65, 92.5)
    assert (row("1.3.2", 18).book_train, row("1.3.2", 18).book_test) == (98.70, 97.7)
    assert (row("1.4.1", 3).book_train, row("1.4.1", 3).book_test) == (99.75, 99.40)
    assert (row("1.5.1", 4).book_train, row("1.5.1", 4).book_test) == (97.88, 98.30)
    assert [t.epochs for t in TABLES.values()] == [20, 10, 20]
    mlp = TABLES["1.3.2"].rows
    assert mlp[0].build == {"hidden_units": 256, "second_units": 256, "activation": "linear", "dropout": 0.0}
    assert mlp[1].build == {"hidden_units": 256, "second_units": 256, "activation": "relu", "dropout": 0.0,
                            "l2_weight": 0.001}
    assert (mlp[8].build["hidden_units"], mlp[8].build["second_units"]) == (256, 512)
    assert mlp[12].build["hidden_units"] == 1024 and mlp[4].build["dropout"] == 0.4
    assert [r.optimizer for r in TABLES["1.4.1"].rows] == ["sgd", "rmsprop", "adam", "adam"]


def test_the_books_numbers_are_typed_in_one_file():
    """A few of the book's numbers that appear nowhere else: only tools/tables.py types them in code."""
    files = subprocess.run(["git", "ls-files", "*.py"], capture_output=True, text=True, cwd=ROOT).stdout.split()
    for number in ("93.65", "99.93", "97.76", "96.79", "97.88"):
        holders = [f for f in files if not f.startswith("tests/") and number in open(os.path.join(ROOT, f)).read()]
        assert holders == ["tools/tables.py"], (number, holders)
