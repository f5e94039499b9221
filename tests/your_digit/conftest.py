"""Temporary: the fixtures tests/conftest.py is getting (the ch1 helper's); delete this file once it has them."""

import pytest


@pytest.fixture(scope="session")
def untrained_mlp(tmp_path_factory):
    """The listing's MLP, untrained (seed 0), saved as .keras: enough where its weights do not matter."""
    import keras

    import mlp_mnist

    keras.utils.set_random_seed(0)
    path = str(tmp_path_factory.mktemp("untrained") / "mlp.keras")
    mlp_mnist.build_model().save(path)
    return path


@pytest.fixture(scope="session")
def first_test_digit(tmp_path_factory, mnist_arrays):
    """The test set's first digit (a 7) as a PNG: its path."""
    from PIL import Image

    path = str(tmp_path_factory.mktemp("digit") / "digit.png")
    Image.fromarray(mnist_arrays["x_test"][0]).save(path)
    return path
