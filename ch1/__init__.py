"""Plumbing shared by the Chapter 1 listings and tools; importing it has no side effects.

- ``ch1.startup``: :func:`quiet_startup`, called once by each entry point before ``import keras``.
- ``ch1.cli``: argparse with one-line errors, checked flags and output paths, signals.
- ``ch1.data``: loading and checking MNIST.
- ``ch1.outputs``: atomic files, the model diagram, plots, number formatting.
- ``ch1.device``: the CPU (model and speed flags) or GPU a number was measured on.
- ``ch1.tables``: the book's tables and listings as data (the book's numbers, typed once).
- ``ch1.run``: a listing's command line and run (imports Keras).
- ``ch1.train``: training one configuration for the tools, and the speed options (imports Keras).
- ``ch1.records``, ``ch1.report``: reproduce.py's records and reports.
"""

from ch1.startup import quiet_startup

__all__ = ["quiet_startup"]
