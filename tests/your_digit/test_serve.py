"""The digit page's server (your_digit/serve.py, predict.py --serve): its API without a browser.

Good images answered as predict.py answers files, junk and blank bodies refused with 400,
oversize ones with 413 from the header alone, no Content-Length with 411, unknown paths and
path traversal with 404, 16 parallel requests answered alike, a model answering NaN refused
with 500 in valid JSON, the command line's one lines. Hostile clients: test_serve_limits.py.
"""

import base64
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import pytest
from PIL import Image

import mlp_mnist
import predict
from your_digit import digits, serve
from ch1.data import prepare_images
from benchmarks.photos import as_drawn, png_bytes
from tests import background
from tests.support import ROOT, ended, untrained_mlp

pytestmark = pytest.mark.backend  # the server must work on every backend

# The CNN's Conv2D and MaxPooling2D layers: name (before Keras' _1, _2, ... suffix) and output shape.
LAYERS = [("conv2d", [26, 26, 64]), ("max_pooling2d", [13, 13, 64]), ("conv2d", [11, 11, 64]),
          ("max_pooling2d", [5, 5, 64]), ("conv2d", [3, 3, 64])]


def layer_kinds(feature_maps):
    return [(m["name"].rstrip("0123456789").rstrip("_"), m["shape"]) for m in feature_maps]


def not_json(name):
    raise ValueError(f"{name} in an answer: not JSON")


class Served:
    """A server for ``model`` on a free port, serving from a thread of this process."""

    def __init__(self, model):
        self.server = serve.make_server(model, "127.0.0.1", 0)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def request(self, method, path, body=None, headers=None):
        """``(status, JSON or bytes)``; a body gets its Content-Length unless ``headers`` sets one."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            headers = dict(headers or {})
            if body is not None and "Content-Length" not in headers:
                headers["Content-Length"] = str(len(body))
            for key, value in headers.items():
                conn.putheader(key, value)
            conn.endheaders()
            if body:
                conn.send(body)
            response = conn.getresponse()
            data = response.read()
            if response.getheader("Content-Type", "").startswith("application/json"):
                data = json.loads(data, parse_constant=not_json)  # as a browser reads it: NaN is no JSON
            return response.status, data
        finally:
            conn.close()

    def predict(self, body):
        return self.request("POST", "/predict", body, {"Content-Type": "image/png"})

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def cnn(smoke_cnn):
    return smoke_cnn


@pytest.fixture(scope="module")
def server(cnn):
    served = Served(cnn[0])
    yield served
    served.close()


@pytest.fixture(scope="module")
def drawn(mnist_arrays):
    """Ten MNIST test digits as the pad sends them: PNGs of black ink on white, 280x280."""
    return [png_bytes(as_drawn(x)) for x in mnist_arrays["x_test"][:10]], mnist_arrays["y_test"][:10]


def decode_png(url):
    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        assert im.format == "PNG"
        return np.asarray(im)


def test_an_image_is_answered_as_predict_py_prepares_it(server, cnn, drawn):
    model, _ = cnn
    bodies, labels = drawn
    right = 0
    for body, label in zip(bodies, labels):
        status, answer = server.predict(body)
        assert status == 200, answer
        assert set(answer) == {"digit", "probabilities", "seen", "feature_maps"}
        seen = decode_png(answer["seen"])
        np.testing.assert_array_equal(seen, digits.to_mnist(digits.decode_image(body)[0]))  # the same path
        expected = model.predict(prepare_images(seen[None], model.input_shape[1:]), verbose=0)[0]
        np.testing.assert_allclose(answer["probabilities"], expected, atol=1e-4)
        assert answer["digit"] == int(np.argmax(answer["probabilities"])) and len(answer["probabilities"]) == 10
        right += answer["digit"] == label
        assert layer_kinds(answer["feature_maps"]) == LAYERS
        for layer in answer["feature_maps"]:
            h, w, c = layer["shape"]
            assert layer["tile"] == [h, w] and layer["columns"] == 8
            assert decode_png(layer["mosaic"]).shape == (h * c // 8, w * 8)
    assert right >= 8


def test_the_maps_are_the_layers_outputs(server, cnn, drawn):
    model, _ = cnn
    _, answer = server.predict(drawn[0][0])
    seen = decode_png(answer["seen"])
    first = keras.Model(model.inputs[0], model.layers[0].output)
    maps = keras.ops.convert_to_numpy(first(prepare_images(seen[None], model.input_shape[1:])))[0]
    mosaic = decode_png(answer["feature_maps"][0]["mosaic"]).astype(float)
    for i in (0, 9, 63):  # map i is tile (i // 8, i % 8), scaled to its own maximum
        tile = mosaic[26 * (i // 8):26 * (i // 8 + 1), 26 * (i % 8):26 * (i % 8 + 1)]
        scaled = maps[..., i] / maps[..., i].max() * 255 if maps[..., i].max() > 0 else maps[..., i]
        np.testing.assert_allclose(tile, scaled, atol=1.01)


def test_same_answer_as_predict_py_for_the_same_file(server, cnn, drawn, tmp_path, capsys):
    path = tmp_path / "drawn.png"
    path.write_bytes(drawn[0][1])
    results = predict.main([str(path), "--model", cnn[1]])
    capsys.readouterr()
    _, answer = server.predict(drawn[0][1])
    assert results[0]["digit"] == answer["digit"]
    np.testing.assert_allclose(results[0]["probabilities"], answer["probabilities"], atol=1e-4)


def test_a_jpeg_photo_is_answered(server, drawn, mnist_arrays):
    rgb = np.repeat(as_drawn(mnist_arrays["x_test"][0], 600)[..., None], 3, axis=-1)
    status, answer = server.predict(png_bytes(rgb, format="JPEG", quality=85))
    assert status == 200 and answer["digit"] == server.predict(drawn[0][0])[1]["digit"]


@pytest.mark.parametrize("body, expected", [
    (b"not an image at all", "the image: not an image file"),
    (b"", "the image: not an image file"),
    (png_bytes(np.full((280, 280), 255)), "the image: blank, no digit"),
    (png_bytes(np.full((60, 40), 255))[:70], "the image: corrupt or truncated image"),
])
def test_junk_and_blank_bodies_get_400(server, body, expected):
    status, answer = server.predict(body)
    assert status == 400 and expected in answer["error"], answer


def test_oversize_body_refused_from_its_header_alone(server):
    start = time.monotonic()
    status, answer = server.request("POST", "/predict", b"", {"Content-Length": str(serve.MAX_BODY + 1)})
    assert status == 413 and "at most 10,485,760" in answer["error"]
    assert time.monotonic() - start < 10  # answered at once, not after waiting for 10 MB


def test_missing_or_bad_content_length(server):
    status, answer = server.request("POST", "/predict")
    assert status == 411 and "Content-Length" in answer["error"]
    status, answer = server.request("POST", "/predict", b"", {"Content-Length": "-5"})
    assert status == 400 and "Content-Length" in answer["error"]


@pytest.mark.parametrize("path", ["/nope", "/predict/x", "/web/app.js", "/../README.md", "/%2e%2e/predict.py",
                                  "/..%2fREADME.md", "/index.html/../../predict.py", "//etc/passwd",
                                  "/app.js/..", "/your_digit/serve.py", "/.git/config"])
def test_unknown_paths_and_traversal_get_404(server, path):
    status, answer = server.request("GET", path)
    assert status == 404 and "no such page" in answer["error"]
    status, answer = server.request("POST", path, b"x")
    assert status == 404


def test_the_pages_own_files_are_served(server):
    for path, kind in [("/", "text/html"), ("/index.html", "text/html"), ("/app.js", "text/javascript"),
                       ("/style.css", "text/css")]:
        status, body = server.request("GET", path)
        assert status == 200 and len(body) > 500
    status, body = server.request("GET", "/?x=1")
    assert status == 200 and b'id="pad"' in body and b'name="viewport"' in body
    assert b"http" not in server.request("GET", "/")[1].replace(b"http-equiv", b"")  # nothing from elsewhere
    status, answer = server.request("PUT", "/predict", b"x")
    assert status == 405


def test_16_parallel_requests_all_answered_alike(server, drawn):
    bodies = drawn[0][:4] * 4
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(server.predict, bodies))
    assert all(status == 200 for status, _ in answers)
    for i, (_, answer) in enumerate(answers):
        first = answers[i % 4][1]
        assert answer["digit"] == first["digit"] and answer["probabilities"] == first["probabilities"]
        assert answer["seen"] == first["seen"]


def test_an_mlp_gets_the_prediction_alone(drawn):
    keras.utils.set_random_seed(0)
    served = Served(mlp_mnist.build_model())
    try:
        status, answer = served.predict(drawn[0][0])
        assert status == 200 and set(answer) == {"digit", "probabilities", "seen"}
    finally:
        served.close()


def test_a_model_answering_nan_gets_a_500_in_valid_json(drawn, capsys):
    keras.utils.set_random_seed(0)
    model = mlp_mnist.build_model()
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    served = Served(model)
    try:
        status, answer = served.predict(drawn[0][0])
    finally:
        served.close()
    assert status == 500 and "the model's output is not finite" in answer["error"], answer
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "not finite" in err[0], err


# --- predict.py --serve -------------------------------------------------------------------------


def test_serve_flags_checked_before_anything(capsys, tmp_path):
    for argv, expected in [(["--serve", "a.png"], "--serve takes no IMAGE"),
                           (["--serve", "--port", "70000"], "--port: must be from 0"),
                           (["--serve", "--model", str(tmp_path / "none.keras")], "none.keras: no such file")]:
        with pytest.raises(SystemExit) as exit_:
            predict.main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(err) == 1 and expected in err[0], err


def test_a_busy_port_is_refused_in_one_line(tiny_model, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["predict.py"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_:
            predict.main(["--serve", "--model", tiny_model, "--port", str(port)])
    captured = capsys.readouterr()
    assert exit_.value.code == 2 and captured.out == ""
    assert captured.err.splitlines() == [f"predict.py: error: --host 127.0.0.1 --port {port}: cannot listen there (in use)"]


def served_and_interrupted(folder, npz):
    """``python predict.py --serve --model mlp.keras --port 0`` as a reader runs it: its first line, the
    page's status, then Ctrl-C (it starts TensorFlow; a case, tests/background.py): ``(model, first
    line, status, returncode, stdout, stderr)``."""
    model = shutil.copy(background.result(untrained_mlp), folder / "mlp.keras")  # no mlp.json beside it
    command = [sys.executable, os.path.join(ROOT, "predict.py"), "--serve", "--model", str(model), "--port", "0"]
    status = None
    with ended(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder)) as first:
        line = first.stdout.readline().strip()
        if line.endswith("(Ctrl-C to stop)"):
            conn = http.client.HTTPConnection("127.0.0.1", int(line.split(":")[-1].split("/")[0]), timeout=60)
            conn.request("GET", "/")
            status = conn.getresponse().status
            conn.close()
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=60)
    return str(model), line, status, first.returncode, out, err


@background.fresh(served_and_interrupted)
def test_serve_command_and_ctrl_c():
    """As a reader runs it: one line with the address, the page served, Ctrl-C one line."""
    model, line, status, returncode, out, err = background.result(served_and_interrupted)
    assert line.startswith(f"Serving {model} (no mlp.json beside it: which run made it is unknown) "
                           "on http://127.0.0.1:") and line.endswith("/ (Ctrl-C to stop)"), (line, err)
    assert int(line.split(":")[-1].split("/")[0]) > 0
    assert status == 200
    assert returncode in (130, -signal.SIGINT) and out == ""
    assert err.splitlines() == ["predict.py: interrupted"]
