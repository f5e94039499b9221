"""The digit page's server (your_digit/serve.py, predict.py --serve) with real models: drawn MNIST
test digits read right, prepared as predict.py prepares files, with the CNN's feature maps as the
page draws them; an MLP's answer without them; the command serves the page on 127.0.0.1.
Bad requests and limits, with a stand-in model: test_serve_limits.py."""

import base64
import io
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import pytest
from PIL import Image

import mlp_mnist
import predict
from benchmarks.photos import as_drawn, png_bytes
from ch1 import cli
from ch1.data import prepare_images
from tests.your_digit.test_serve_limits import post
from your_digit import digits, serve

pytestmark = pytest.mark.backend  # the server must work on every backend

# The CNN's Conv2D and MaxPooling2D layers: name (before Keras' _1, _2, ... suffix) and output shape.
LAYERS = [("conv2d", [26, 26, 64]), ("max_pooling2d", [13, 13, 64]), ("conv2d", [11, 11, 64]),
          ("max_pooling2d", [5, 5, 64]), ("conv2d", [3, 3, 64])]


class Served:
    """A server for ``model`` on a free port of 127.0.0.1, serving from a thread of this process."""

    def __init__(self, model):
        self.server = serve.bind(serve.Predictor(model))
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()

    def predict(self, body):
        return post(self.port, body, timeout=60)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def server(smoke_cnn):
    served = Served(smoke_cnn[0])
    yield served
    served.close()


def decode_png(url):
    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        assert im.format == "PNG"
        return np.asarray(im)


def test_drawn_digits_are_read_right_with_the_cnns_feature_maps(server, smoke_cnn, mnist_arrays):
    """Ten test digits as the pad sends them, five at a time: read as predict.py reads a file."""
    model = smoke_cnn[0]
    bodies = [png_bytes(as_drawn(x)) for x in mnist_arrays["x_test"][:10]]
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(server.predict, bodies))
    right = 0
    for body, (status, answer), label in zip(bodies, answers, mnist_arrays["y_test"]):
        assert status == 200 and set(answer) == {"digit", "probabilities", "seen", "feature_maps"}, answer
        seen = decode_png(answer["seen"])
        np.testing.assert_array_equal(seen, digits.to_mnist(digits.decode_image(body)[0]))  # predict.py's path
        expected = model.predict(prepare_images(seen[None], model.input_shape[1:]), verbose=0)[0]
        np.testing.assert_allclose(answer["probabilities"], expected, atol=1e-4)
        assert answer["digit"] == int(np.argmax(expected))
        right += answer["digit"] == label
        assert [(m["name"].rstrip("0123456789").rstrip("_"), m["shape"]) for m in answer["feature_maps"]] == LAYERS
        for layer in answer["feature_maps"]:
            h, w, c = layer["shape"]
            assert layer["tile"] == [h, w] and layer["columns"] == 8
            assert decode_png(layer["mosaic"]).shape == (h * c // 8, w * 8)
    assert right >= 8


def test_the_maps_are_the_layers_outputs(server, smoke_cnn, mnist_arrays):
    """Map i is the tile at row i // 8, column i % 8 of the mosaic, scaled to its own maximum."""
    model = smoke_cnn[0]
    _, answer = server.predict(png_bytes(as_drawn(mnist_arrays["x_test"][0])))
    x = prepare_images(decode_png(answer["seen"])[None], model.input_shape[1:])
    maps = keras.ops.convert_to_numpy(keras.Model(model.inputs[0], model.layers[0].output)(x))[0]
    mosaic = decode_png(answer["feature_maps"][0]["mosaic"]).astype(float)
    for i in (0, 9, 63):
        tile = mosaic[26 * (i // 8):26 * (i // 8 + 1), 26 * (i % 8):26 * (i % 8 + 1)]
        peak = maps[..., i].max()
        np.testing.assert_allclose(tile, maps[..., i] / peak * 255 if peak > 0 else 0, atol=1.01)


def test_an_mlp_gets_the_prediction_alone(mnist_arrays):
    keras.utils.set_random_seed(0)
    served = Served(mlp_mnist.build_model())
    try:
        status, answer = served.predict(png_bytes(as_drawn(mnist_arrays["x_test"][0])))
    finally:
        served.close()
    assert status == 200 and set(answer) == {"digit", "probabilities", "seen"}


def test_the_command_serves_the_page_on_loopback_by_default(smoke_cnn, monkeypatch, capsys):
    """``predict.py --serve --port 0``: one line with its address on 127.0.0.1, the page there."""
    pages = []

    def get(server):
        with urllib.request.urlopen(serve.url(server), timeout=60) as page:
            pages.append(page.read())

    def serve_one_request(server):
        fetch = threading.Thread(target=get, args=(server,))
        fetch.start()
        server.handle_request()
        fetch.join(60)

    monkeypatch.setattr(cli, "handle_signals", lambda: None)  # this process keeps pytest's Ctrl-C
    monkeypatch.setattr(serve.Server, "serve_forever", serve_one_request)
    predict.main(["--serve", "--model", smoke_cnn[1], "--port", "0"])
    out, err = capsys.readouterr()
    assert out.startswith(f"Serving {smoke_cnn[1]} (") and " on http://127.0.0.1:" in out, out
    assert out.endswith("/ (Ctrl-C to stop)\n") and len(out.splitlines()) == 1 and err == ""
    assert len(pages) == 1 and b'id="pad"' in pages[0]


def test_serve_flags_checked_before_anything(monkeypatch, capsys):
    monkeypatch.setattr(cli, "handle_signals", lambda: None)
    for argv, expected in [(["--serve", "a.png"], "--serve takes no IMAGE"),
                           (["--serve", "--port", "70000"], "--port: must be from 0")]:
        with pytest.raises(SystemExit) as exit_:
            predict.main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(err) == 1 and expected in err[0], err
