"""The listings' models against the book's parameter counts and Listing 1.4.2."""

import pytest

import cnn_mnist
import mlp_mnist
import rnn_mnist
from tools.tables import LISTINGS

pytestmark = pytest.mark.backend


@pytest.mark.parametrize("listing, params", [(mlp_mnist, 269_322), (cnn_mnist, 80_266), (rnn_mnist, 75_530)])
def test_book_parameter_counts(listing, params):
    assert listing.build_model().count_params() == params


def test_the_listings_facts_are_the_books():
    assert {k: (v.number, v.params, v.book_test) for k, v in LISTINGS.items()} == {
        "mlp": ("1.3.2", 269_322, 98.3), "cnn": ("1.4.1", 80_266, 99.4), "rnn": ("1.5.1", 75_530, 98.3)}


# Listing 1.4.2 as the book prints it: layer type, output shape, params.
LISTING_1_4_2 = [
    ("Conv2D", (None, 26, 26, 64), 640),
    ("MaxPooling2D", (None, 13, 13, 64), 0),
    ("Conv2D", (None, 11, 11, 64), 36_928),
    ("MaxPooling2D", (None, 5, 5, 64), 0),
    ("Conv2D", (None, 3, 3, 64), 36_928),
    ("Flatten", (None, 576), 0),
    ("Dropout", (None, 576), 0),
    ("Dense", (None, 10), 5_770),
    ("Activation", (None, 10), 0),
]


def test_cnn_layers_match_listing_1_4_2():
    model = cnn_mnist.build_model()
    got = [(type(layer).__name__, tuple(layer.output.shape), layer.count_params()) for layer in model.layers]
    assert got == LISTING_1_4_2


def test_mlp_layers_are_the_books():
    model = mlp_mnist.build_model()
    got = [(type(layer).__name__, tuple(layer.output.shape), layer.count_params()) for layer in model.layers]
    assert got == [
        ("Dense", (None, 256), 200_960), ("Activation", (None, 256), 0), ("Dropout", (None, 256), 0),
        ("Dense", (None, 256), 65_792), ("Activation", (None, 256), 0), ("Dropout", (None, 256), 0),
        ("Dense", (None, 10), 2_570), ("Activation", (None, 10), 0),
    ]
    assert [layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"] == [0.45, 0.45]


def test_rnn_layers_are_the_books():
    model = rnn_mnist.build_model()
    rnn = model.layers[0]
    assert type(rnn).__name__ == "SimpleRNN" and rnn.units == 256 and rnn.dropout == 0.2
    assert model.input_shape == (None, 28, 28)
    assert [layer.count_params() for layer in model.layers] == [72_960, 2_570, 0]


def test_input_shapes():
    assert mlp_mnist.build_model().input_shape == (None, 784)
    assert cnn_mnist.build_model().input_shape == (None, 28, 28, 1)


def test_book_hyperparameters():
    assert (mlp_mnist.batch_size, mlp_mnist.hidden_units, mlp_mnist.dropout) == (128, 256, 0.45)
    assert (cnn_mnist.batch_size, cnn_mnist.kernel_size, cnn_mnist.pool_size, cnn_mnist.filters,
            cnn_mnist.dropout) == (128, 3, 2, 64, 0.2)
    assert (rnn_mnist.batch_size, rnn_mnist.units, rnn_mnist.dropout) == (128, 256, 0.2)


@pytest.mark.parametrize("listing, epochs", [(mlp_mnist, 20), (cnn_mnist, 10), (rnn_mnist, 20)])
def test_book_epochs_are_the_defaults(listing, epochs, capsys):
    with pytest.raises(SystemExit):
        listing.main(["--help"])
    assert f"training epochs (default: {epochs})" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("listing", [mlp_mnist, cnn_mnist, rnn_mnist])
def test_each_listing_ends_in_the_books_lines(listing):
    """The book's compile, fit, evaluate and print, in its order, in each listing's main()."""
    source = open(listing.__file__).read()
    lines = ["model.compile(loss='categorical_crossentropy',", "model.fit(x_train, y_train, epochs=",
             "_, acc = model.evaluate(x_test,", 'print("\\nTest accuracy: %.1f%%" % (100.0 * acc))']
    positions = [source.find(line) for line in lines]
    assert -1 not in positions and positions == sorted(positions), positions


def test_wider_second_layer_for_table_rows():
    model = mlp_mnist.build_model(hidden_units=512, second_units=1024)
    assert [layer.units for layer in model.layers if type(layer).__name__ == "Dense"] == [512, 1024, 10]
