"""The listings' models against the book: parameter counts, Listing 1.4.2, the layers as printed,
and the CNN variants of what the chapter says but never measures."""

import importlib

import pytest

import cnn_mnist
import mlp_mnist
import rnn_mnist
from study import variants
from study.tables import LISTING_1_4_2, LISTINGS, VARIANTS

pytestmark = pytest.mark.backend


@pytest.mark.parametrize("key, params", [("mlp", 269_322), ("cnn", 80_266), ("rnn", 75_530)])
def test_book_parameter_counts(key, params):
    """The counts each listing's printed summary ends with (`Total params: 80,266`), as the book prints
    them and as study.tables.LISTINGS (which the tools and docs read) holds them."""
    listing = LISTINGS[key]
    assert importlib.import_module(listing.module).build_model().count_params() == params == listing.params


def test_cnn_layers_match_listing_1_4_2():
    model = cnn_mnist.build_model()
    got = [(type(layer).__name__, tuple(layer.output.shape), layer.count_params()) for layer in model.layers]
    assert got == [(kind, shape, params) for _, kind, shape, params in LISTING_1_4_2]
    assert model.input_shape == (None, 28, 28, 1)
    assert [layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"] == [0.2]
    assert [layer.get_config()["activation"] for layer in model.layers if type(layer).__name__ == "Conv2D"] == \
        ["relu"] * 3


def test_mlp_layers_are_the_books():
    model = mlp_mnist.build_model()
    got = [(type(layer).__name__, tuple(layer.output.shape), layer.count_params()) for layer in model.layers]
    assert got == [
        ("Dense", (None, 256), 200_960), ("Activation", (None, 256), 0), ("Dropout", (None, 256), 0),
        ("Dense", (None, 256), 65_792), ("Activation", (None, 256), 0), ("Dropout", (None, 256), 0),
        ("Dense", (None, 10), 2_570), ("Activation", (None, 10), 0),
    ]
    assert model.input_shape == (None, 784)
    assert [layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"] == [0.45, 0.45]


def test_rnn_layers_are_the_books():
    model = rnn_mnist.build_model()
    rnn = model.layers[0]
    assert type(rnn).__name__ == "SimpleRNN" and rnn.units == 256 and rnn.dropout == 0.2
    assert model.input_shape == (None, 28, 28)
    assert [layer.count_params() for layer in model.layers] == [72_960, 2_570, 0]


def test_wider_second_layer_for_table_rows():
    model = mlp_mnist.build_model(hidden_units=512, second_units=1024)
    assert [layer.units for layer in model.layers if type(layer).__name__ == "Dense"] == [512, 1024, 10]


# Each variant of Listing 1.4.1's model: its layers (type, output shape) and parameter count.
VARIANT_LAYERS = {
    "average-pooling": (80_266, ["Conv2D", "AveragePooling2D", "Conv2D", "AveragePooling2D", "Conv2D", "Flatten",
                                 "Dropout", "Dense", "Activation"], (None, 3, 3, 64)),
    "strided": (84_746, ["Conv2D", "Conv2D", "Conv2D", "Flatten", "Dropout", "Dense", "Activation"],
                (None, 4, 4, 64)),
    "same": (105_866, ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "Flatten", "Dropout",
                       "Dense", "Activation"], (None, 7, 7, 64)),
    "batch-norm": (81_034, ["Conv2D", "BatchNormalization", "Activation", "MaxPooling2D"] * 2 +
                   ["Conv2D", "BatchNormalization", "Activation", "Flatten", "Dropout", "Dense", "Activation"],
                   (None, 3, 3, 64)),
}


@pytest.mark.parametrize("row", VARIANTS.rows, ids=lambda row: row.variant)
def test_each_variant_is_listing_1_4_1_with_one_change(row):
    params, layers, last_maps = VARIANT_LAYERS[row.variant]
    model = variants.build(cnn_mnist.build_model, row.variant, **row.build)
    assert model.count_params() == params
    assert [type(layer).__name__ for layer in model.layers] == layers
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert tuple(convs[-1].output.shape) == last_maps
    assert all(c.filters == 64 and c.kernel_size == (3, 3) for c in convs)
    assert [layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"] == [0.2]
    if row.variant == "batch-norm":
        assert [c.get_config()["activation"] for c in convs] == ["linear"] * 3
        assert [layer.get_config()["activation"] for layer in model.layers
                if type(layer).__name__ == "Activation"] == ["relu"] * 3 + ["softmax"]
    if row.variant == "strided":
        assert [c.strides for c in convs] == [(2, 2), (2, 2), (1, 1)]
