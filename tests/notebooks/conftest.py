import os

HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "notebook: runs a notebook top to bottom in a Jupyter kernel with TensorFlow, in quick mode")


def pytest_collection_modifyitems(config, items):
    """The quick runs (a kernel with TensorFlow each) run where this folder is named, as in
    `python -m pytest -q tests/notebooks`, or `-m notebook`; the reader's `python -m pytest -q` leaves them out."""
    if "notebook" in config.option.markexpr or any(
            os.path.abspath(arg.split("::")[0]).startswith(HERE) for arg in config.args):
        return
    left_out = [item for item in items if item.get_closest_marker("notebook")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker("notebook")]
