"""The README's departures from the book are complete: each `# Book:` comment in a listing has its
row, and each row its place in the code."""

import os
import re

import pytest

from tests.support import ROOT

LISTINGS = ("mnist_sampler.py", "mlp_mnist.py", "cnn_mnist.py", "rnn_mnist.py")
WHERE = {"all four": LISTINGS, "the three models": LISTINGS[1:]}


def departures():
    """The table's rows: (files, the book's code, the code here), from README.md."""
    text = open(os.path.join(ROOT, "README.md")).read()
    table = text.split("## Departures from the book", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("where", "---"):
            continue
        where = cells[0].split(",")[0]
        files = WHERE.get(where) or tuple(f for f in LISTINGS if f"`{f}`" == where)
        assert files, f"a row of the departures names no listing: {line}"

        def code(cell):
            found = re.search(r"`([^`]+)`", cell)
            return found.group(1) if found else None

        rows.append((files, code(cells[1]), code(cells[2]) if cells[2] != "—" else None))
    return rows


def written(snippet, code):
    """Whether ``snippet`` stands in one line of ``code``, its ``...`` standing for anything."""
    pattern = ".*".join(re.escape(part) for part in snippet.split("..."))
    return any(re.search(pattern, line) for line in code.splitlines())


def _code_lines(path):
    """The listing's lines of code, comments and docstrings aside."""
    source = open(os.path.join(ROOT, path)).read()
    source = re.sub(r'"""(.*?)"""', "", source, flags=re.S)
    return [line for line in source.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_table_has_rows_for_all_four_listings():
    rows = departures()
    assert len(rows) >= 15
    for listing in LISTINGS:
        assert sum(listing in files for files, _, _ in rows) >= 5, listing


def test_each_row_has_its_place_in_the_code():
    for files, book, here in departures():
        for listing in files:
            code = "\n".join(_code_lines(listing))
            if here is None:  # a line of the book left out: it is not there
                assert book and book not in code, (listing, book)
            else:
                assert written(here, code), (listing, here)


@pytest.mark.parametrize("listing", LISTINGS)
def test_each_book_comment_has_its_row(listing):
    """The code right under each `# Book:` comment is the code a row of the table names."""
    lines = open(os.path.join(ROOT, listing)).read().splitlines()
    heres = [here for files, _, here in departures() if listing in files and here]
    comments = [i for i, line in enumerate(lines) if line.strip().startswith("# Book:")]
    assert comments
    for i in comments:
        following = next(line for line in lines[i + 1:] if not line.strip().startswith("#"))
        assert any(written(here, following) for here in heres), (listing, lines[i].strip(), following.strip())
