"""What the chapter's listings stand on, and nothing else: ``cli`` (the command line, read first),
``startup`` (:func:`quiet_startup`, called by each entry point before ``import keras``), ``data`` (MNIST),
``files`` (a user's files: the check before reading, the atomic write), ``outputs`` (diagram, plots),
``device`` and ``run`` (a listing's run; imports Keras). Importing ``ch1`` loads no Keras."""

from ch1.startup import quiet_startup

__all__ = ["quiet_startup"]
