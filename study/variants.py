"""Listing 1.4.1's model with one of the CNN section's changes (study.tables.VARIANTS): :func:`build` rebuilds
the listing's own ``build_model``'s model from its layers' own configurations, with one change. Imports Keras.

    python -m study.variants    # each variant's parameter count
"""

from ch1 import quiet_startup

quiet_startup()  # before Keras loads TensorFlow (python -m study.variants is an entry point too)

import functools  # noqa: E402

import keras  # noqa: E402
from keras.layers import Activation, AveragePooling2D, BatchNormalization, Conv2D, MaxPooling2D  # noqa: E402


def _average_pooling(layers):
    return [AveragePooling2D.from_config(layer.get_config()) if isinstance(layer, MaxPooling2D) else _copy(layer)
            for layer in layers]


def _strided(layers):
    """The Conv2D before each pooling layer gets strides=2; the pooling layer goes."""
    return [_copy(layer, strides=following.get_config()["pool_size"])
            if isinstance(layer, Conv2D) and isinstance(following, MaxPooling2D) else _copy(layer)
            for layer, following in zip(layers, [*layers[1:], None]) if not isinstance(layer, MaxPooling2D)]


def _same(layers):
    return [_copy(layer, padding="same") if isinstance(layer, Conv2D) else _copy(layer) for layer in layers]


def _batch_norm(layers):
    """Conv2D(activation=a) becomes Conv2D (no activation), BatchNormalization(), Activation(a)."""
    return [new for layer in layers for new in (
        [_copy(layer, activation="linear"), BatchNormalization(), Activation(layer.get_config()["activation"])]
        if isinstance(layer, Conv2D) else [_copy(layer)])]


CHANGES = {"average-pooling": _average_pooling, "strided": _strided, "same": _same, "batch-norm": _batch_norm}


def _copy(layer, **changes):
    """A new layer like ``layer`` (its configuration without its name) with ``changes``."""
    config = {k: v for k, v in layer.get_config().items() if k != "name"}
    return type(layer).from_config({**config, **changes})


def build(build_model, variant=None, **build_args):
    """``build_model(**build_args)``, with the change ``variant`` (None: the model as printed)."""
    model = build_model(**build_args)
    if variant is None:
        return model
    return keras.Sequential([keras.Input(shape=model.input_shape[1:]), *CHANGES[variant](model.layers)])


def builder(build_model, variant):
    """A ``build_model``-like function that makes ``variant`` (for study.train.train_and_evaluate)."""
    return build_model if variant is None else functools.partial(build, build_model, variant)


def main():
    import importlib

    from study.tables import VARIANTS

    listing = importlib.import_module(VARIANTS.listing)
    print(f"{'variant':<20} {'params':>8}  change")
    print(f"{'(as printed)':<20} {listing.build_model().count_params():>8,}  Listing 1.4.1's model")
    for row in VARIANTS.rows:
        model = build(listing.build_model, row.variant, **row.build)
        print(f"{row.columns['variant']:<20} {model.count_params():>8,}  {row.columns['change']}")


if __name__ == "__main__":
    main()
