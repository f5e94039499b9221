"""What the chapter's listings stand on, and nothing else: ``startup`` (:func:`quiet_startup`, called by
each entry point before ``import keras``), ``cli``, ``data`` (MNIST), ``outputs`` (atomic files, plots),
``device`` and ``run`` (a listing's run; imports Keras). Importing ``ch1`` loads no Keras."""

from ch1.startup import quiet_startup

__all__ = ["quiet_startup"]
