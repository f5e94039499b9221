"""What the chapter's listings stand on, and nothing else. Importing ``ch1`` loads no Keras and changes
nothing (``ch1.outputs`` selects matplotlib's file-only backend, Agg, when it is imported).

- ``ch1.startup``: :func:`quiet_startup`, called once by each entry point before ``import keras``.
- ``ch1.cli``: argparse with one-line errors, checked flags and output paths, signals.
- ``ch1.data``: finding, loading and checking MNIST.
- ``ch1.outputs``: atomic files, the model diagram, the history plot.
- ``ch1.device``: the CPU (model and speed flags) or GPU a run was measured on.
- ``ch1.run``: a listing's command line, seeding and run (imports Keras).
"""

from ch1.startup import quiet_startup

__all__ = ["quiet_startup"]
