"""A local web page to draw digits on, and the API behind it (``python predict.py --serve``).

The page (``web/``, nothing fetched from elsewhere) posts a drawing or a dropped photo to ``POST
/predict``: at most ``MAX_BODY`` bytes with a Content-Length, prepared as ``predict.py`` prepares a
file (:mod:`your_digit.digits`) and answered from one forward pass, ``200`` and JSON::

    {"digit": 7, "probabilities": [10 floats],
     "seen": "data:image/png;base64,...",           # the 28x28 the model saw
     "feature_maps": [{"name": "conv2d", "shape": [26, 26, 64], "tile": [26, 26], "columns": 8,
                       "mosaic": "data:image/png;base64,..."}, ...],  # CNN only: map i at column i % 8
     "model": "cnn-mnist.keras (Listing 1.4.1, ...)"}  # where the server was given a page_label

Every other answer is JSON ``{"error": "..."}``: 411, 400 or 413 (unread) for the Content-Length;
400 for no image, too many pixels (Pillow's limit) or no digit; 500 for a model's output not finite;
404 for other paths; 501 for other methods. It listens on 127.0.0.1 unless told otherwise, and then
warns that the page has no authentication; a read waits at most ``Handler.timeout`` seconds. Out of
scope: clients on a network that attack the page (slow connections, floods, slow-decoding images).
"""

import base64
import errno
import io
import ipaddress
import json
import os
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

from ch1.cli import error, fail, prog
from ch1.data import prepare_images
from your_digit.digits import ImageError, decode_image, probabilities, to_mnist

MAX_BODY = 10 * 2**20  # bytes: a photo of a digit needs far less
COLUMNS = 8  # feature-map tiles per row of a mosaic (64 maps: 8x8, as the book's figures)
WEB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "web")
# What GET may fetch: URL path -> (file in web/, content type). Nothing else is ever read.
PAGES = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/style.css": ("style.css", "text/css; charset=utf-8")}


class ModelFault(Exception):
    """The model answered something that is no probability (NaN or infinity): a 500, said in one line."""


class Predictor:
    """A model's probabilities and its Conv2D and MaxPooling2D layers' outputs (the feature maps) for one
    image, from one forward pass of a ``keras.Model`` built once; calls are serialized by a lock."""

    def __init__(self, model):
        import keras

        self.input_shape = tuple(model.input_shape[1:])
        self.layers = [layer for layer in model.layers
                       if isinstance(layer, (keras.layers.Conv2D, keras.layers.MaxPooling2D))]
        self.forward = keras.Model(model.inputs[0], [layer.output for layer in self.layers] + list(model.outputs))
        self.to_numpy = keras.ops.convert_to_numpy
        self.lock = threading.Lock()
        self.predict(np.zeros((28, 28), np.uint8))  # the first call builds the graph: do it now

    def predict(self, seen):
        """``(probabilities (10,), [(layer name, maps (h, w, c)), ...])`` for one uint8 28x28 image."""
        x = prepare_images(seen[None], self.input_shape)
        with self.lock:
            out = [self.to_numpy(o) for o in self.forward(x, training=False)]
        maps = [(layer.name, values[0]) for layer, values in zip(self.layers, out[:-1])]
        return probabilities(out[-1].reshape(1, -1))[0], maps


def png_data_url(image):
    """A uint8 array (grey) as a ``data:image/png;base64,...`` URL."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def mosaic(maps):
    """Maps (h, w, c) -> one uint8 grey image of c tiles, ``COLUMNS`` a row, each map scaled to its max."""
    height, width, count = maps.shape
    peak = maps.reshape(-1, count).max(axis=0)
    scaled = np.rint(np.clip(np.where(peak > 0, maps / np.where(peak > 0, peak, 1), 0) * 255, 0, 255))
    grid = np.zeros((-(-count // COLUMNS) * height, COLUMNS * width), np.uint8)
    for i in range(count):
        r, c = divmod(i, COLUMNS)
        grid[r * height:(r + 1) * height, c * width:(c + 1) * width] = scaled[..., i]
    return grid


def answer(predictor, data):
    """The JSON-ready answer for an uploaded image's bytes; ImageError (400) where there is no digit,
    ModelFault (500) where the model's probabilities are not all finite."""
    seen = to_mnist(decode_image(data, "the image")[0], "the image")
    probs, maps = predictor.predict(seen)
    if not np.isfinite(probs).all():
        raise ModelFault("the model's output is not finite (NaN or infinity): are its weights damaged?")
    result = {"digit": int(np.argmax(probs)), "probabilities": [float(p) for p in probs], "seen": png_data_url(seen)}
    if maps:
        result["feature_maps"] = [{"name": name, "shape": list(values.shape), "tile": list(values.shape[:2]),
                                   "columns": COLUMNS, "mosaic": png_data_url(mosaic(values))}
                                  for name, values in maps]
    return result


class Handler(BaseHTTPRequestHandler):
    """The page's files (GET) and the API (POST /predict), one request a connection (HTTP/1.0)."""

    timeout = 10  # seconds each read from the client may wait (the socket's timeout), then it is closed

    def log_message(self, format, *args):
        """Quiet: no line per request (the server's one line is its address)."""

    def send_json(self, status, body):
        self.send_body(status, json.dumps(body, allow_nan=False).encode(), "application/json", "no-store")

    def send_body(self, status, data, kind, cache):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", cache)
        self.end_headers()
        self.wfile.write(data)

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (a bad request line, 501 for other methods, ...) as JSON too."""
        self.close_connection = True
        self.send_json(code, {"error": message or HTTPStatus(code).phrase})

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path not in self.pages:
            return self.send_json(404, {"error": f"no such page: {path[:200]}"})
        self.send_body(200, *self.pages[path], "no-cache")

    def do_POST(self):
        if self.path.split("?", 1)[0] != "/predict":
            return self.send_json(404, {"error": f"no such API: POST {self.path[:200]} (POST /predict only)"})
        value = self.headers.get("Content-Length")
        if value is None:
            return self.send_json(411, {"error": "a Content-Length is required (the image's size in bytes)"})
        length = int(value) if value.strip().isascii() and value.strip().isdigit() else -1
        if length < 0:
            return self.send_json(400, {"error": f"bad Content-Length: {value[:40]!r}"})
        if length > MAX_BODY:
            return self.send_json(413, {"error": f"the image is {length:,} bytes; at most {MAX_BODY:,}"})
        data = self.rfile.read(length)
        if len(data) < length:
            return self.send_json(400, {"error": "the body ended before its Content-Length"})
        try:
            body = answer(self.predictor, data)
        except ImageError as exc:
            return self.send_json(400, {"error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - a ModelFault, or a bug: one line here, a 500 there
            said = str(exc) if isinstance(exc, ModelFault) else f"internal error: {type(exc).__name__}: {exc}"
            error(f"POST /predict: {said}")
            return self.send_json(500, {"error": said})
        if self.page_label is not None:
            body["model"] = self.page_label
        self.send_json(200, body)


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer, on IPv6 for an IPv6 host; a request ended by anything but its client going
    away is one line."""

    def __init__(self, address, handler):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):
            error(f"a request from {client_address[0]}: {type(exc).__name__}: {exc}")


def bind(predictor, host="127.0.0.1", port=0, page_label=None):
    """A bound (not yet serving) :class:`Server` answering with ``predictor`` (anything with a
    :class:`Predictor`'s ``predict(seen)``), ``page_label`` as each answer's ``model``; OSError if the
    address cannot be had (``port=0``: a free one, ``server.server_address[1]``)."""
    pages = {}
    for url_path, (name, kind) in PAGES.items():
        with open(os.path.join(WEB, name), "rb") as f:
            pages[url_path] = (f.read(), kind)
    handler = type("PageHandler", (Handler,), {"predictor": predictor, "pages": pages, "page_label": page_label})
    return Server((host, port), handler)


def url(server):
    host, port = server.server_address[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def serve(model, host, port, label, page_label=None):
    """Serve until Ctrl-C or SIGTERM (which end the command with one line, see ch1.cli). ``label`` names
    the model in the line the server prints; ``page_label`` on the page (see :func:`bind`)."""
    try:
        server = bind(Predictor(model), host, port, page_label)
    except OSError as exc:
        reason = "in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        fail(f"--host {host} --port {port}: cannot listen there ({reason})")
    print(f"Serving {label} on {url(server)} (Ctrl-C to stop)", flush=True)
    if not ipaddress.ip_address(server.server_address[0].split("%")[0]).is_loopback:
        print(f"{prog()}: warning: {url(server)} has no authentication: anyone who can reach port "
              f"{server.server_address[1]} can use the page and its model", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
