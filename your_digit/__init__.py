"""The own-digit app: a reader's photo or drawing read by the trained model. Used by predict.py and
figures.py; no listing imports it.

- ``your_digit.digits``: a photo or drawing prepared as MNIST would hold it.
- ``your_digit.model_file``: a model file checked and loaded, with one-line errors.
- ``your_digit.serve``: the drawing page's server (imports Keras when it serves).
"""
