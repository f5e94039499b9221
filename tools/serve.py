"""A local web page to draw digits on, and the API behind it (``python predict.py --serve``).

The page (``web/``: plain HTML, CSS and JavaScript, nothing fetched from elsewhere) posts
what is drawn, or a dropped photo, to ``POST /predict``; the answer is prepared by the same
code as ``predict.py``'s files (:mod:`tools.digits`) and computed by one forward pass.

``POST /predict``: the body is an image file (PNG, JPEG, ... at most 10 MB, with a
Content-Length). The answer, ``200`` and JSON::

    {"digit": 7,
     "probabilities": [10 floats, digits 0..9],
     "seen": "data:image/png;base64,...",           # the 28x28 the model saw, as a PNG
     "feature_maps": [                               # CNN only: each Conv2D and MaxPooling2D layer
        {"name": "conv2d", "shape": [26, 26, 64],    # the layer's output for this image
         "tile": [26, 26], "columns": 8,             # map i at column i % 8, row i // 8
         "mosaic": "data:image/png;base64,..."},     # all maps in one grey PNG, each scaled to its max
        ...]}

An MLP or RNN answers without ``feature_maps``. A body that is no image, or an image with no
digit: ``400 {"error": "..."}``; no Content-Length: ``411``; over 10 MB: ``413`` (refused
from the header, unread); any other path or method: ``404`` or ``405``, JSON too. Only the
page's three files are served, from a fixed table, never a path from the URL. Requests are
not logged; the server prints one line when it starts.
"""

import base64
import errno
import io
import json
import os
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import keras
import numpy as np
from PIL import Image

from ch1.cli import prog
from ch1.data import prepare_images
from tools.digits import ImageError, decode_image, probabilities, to_mnist

MAX_BODY = 10 * 2**20  # bytes: a photo of a digit needs far less
COLUMNS = 8  # feature-map tiles per row of a mosaic (64 maps: 8x8, as the book's figures)
WEB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "web")
# What GET may fetch: URL path -> (file in web/, content type). Nothing else is ever read.
PAGES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
MAPPED_LAYERS = (keras.layers.Conv2D, keras.layers.MaxPooling2D)
DECODERS = 2  # images decoded at once (each may briefly hold a large photo's pixels)


class Predictor:
    """A model ready for one image at a time: the digit, its probabilities, and the CNN's feature maps.

    The extractor is built once: a ``keras.Model`` from the model's input to every Conv2D
    and MaxPooling2D layer's output plus the model's output, so one image is one forward
    pass. Calls are serialized by a lock (one model, many request threads).
    """

    def __init__(self, model):
        self.model = model
        self.input_shape = tuple(model.input_shape[1:])
        self.layers = [layer for layer in model.layers if isinstance(layer, MAPPED_LAYERS)]
        if self.layers:
            outputs = [layer.output for layer in self.layers] + list(model.outputs)
            inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
            self.forward = keras.Model(inputs, outputs)
        else:
            self.forward = model
        self.lock = threading.Lock()
        self.predict(np.zeros((28, 28), np.uint8))  # the first call builds the graph: do it now

    def predict(self, seen):
        """``(probabilities (10,), [(layer name, maps (h, w, c)), ...])`` for one uint8 28x28 image."""
        x = prepare_images(seen[None], self.input_shape)
        with self.lock:
            out = self.forward(x, training=False)
            out = [keras.ops.convert_to_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
        maps = [(layer.name, values[0]) for layer, values in zip(self.layers, out[:-1])]
        return probabilities(out[-1].reshape(1, -1))[0], maps


def png_data_url(image):
    """A uint8 array (grey) as a ``data:image/png;base64,...`` URL."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def mosaic(maps, columns=COLUMNS):
    """Maps (h, w, c) -> one uint8 grey image of c tiles, ``columns`` a row, each map scaled to its max."""
    height, width, count = maps.shape
    peak = maps.reshape(-1, count).max(axis=0)
    scaled = np.where(peak > 0, maps / np.where(peak > 0, peak, 1), 0) * 255
    rows = -(-count // columns)
    grid = np.zeros((rows * height, columns * width), np.uint8)
    for i in range(count):
        r, c = divmod(i, columns)
        grid[r * height:(r + 1) * height, c * width:(c + 1) * width] = np.rint(np.clip(scaled[..., i], 0, 255))
    return grid


def answer(predictor, data):
    """The JSON-ready answer for an uploaded image's bytes; raises ImageError (400) if there is no digit."""
    with _decoding:
        grey, _ = decode_image(data, "the image")
    seen = to_mnist(grey, "the image")
    probs, maps = predictor.predict(seen)
    result = {"digit": int(np.argmax(probs)), "probabilities": [float(p) for p in probs], "seen": png_data_url(seen)}
    if maps:
        result["feature_maps"] = [
            {"name": name, "shape": list(values.shape), "tile": list(values.shape[:2]), "columns": COLUMNS,
             "mosaic": png_data_url(mosaic(values))}
            for name, values in maps
        ]
    return result


_decoding = threading.BoundedSemaphore(DECODERS)


class Handler(BaseHTTPRequestHandler):
    """GET the page's files, POST /predict; every answer but the page's files is JSON."""

    server_version = "ch1-digits"
    timeout = 30  # seconds a client may stall mid-request before its connection is closed
    predictor = None  # set per server by make_server
    pages = {}

    def log_message(self, format, *args):
        """Quiet: no line per request (the server's one line is its address)."""

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (bad request line, unknown method, ...) as JSON too."""
        self.close_connection = True
        try:
            text = message or HTTPStatus(code).phrase
        except ValueError:
            text = str(code)
        self.send_json(code, {"error": text})

    def do_GET(self):
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if path not in self.pages:
            return self.send_json(404, {"error": f"no such page: {path[:200]}"})
        data, kind = self.pages[path]
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_HEAD = do_GET

    def do_POST(self):
        if self.path.split("?", 1)[0] != "/predict":
            self.close_connection = True  # its body, if any, is left unread
            return self.send_json(404, {"error": f"no such API: POST {self.path[:200]} (POST /predict only)"})
        header = self.headers.get("Content-Length")
        if header is None:
            self.close_connection = True
            return self.send_json(411, {"error": "a Content-Length is required (the image's size in bytes)"})
        length = int(header) if header.strip().isdigit() else -1
        if length < 0:
            self.close_connection = True
            return self.send_json(400, {"error": f"bad Content-Length: {header[:40]!r}"})
        if length > MAX_BODY:
            self.close_connection = True
            return self.send_json(413, {"error": f"the image is {length:,} bytes; at most {MAX_BODY:,}"})
        data = self.rfile.read(length)
        if len(data) < length:
            self.close_connection = True
            return self.send_json(400, {"error": "the body ended before its Content-Length"})
        try:
            result = answer(self.predictor, data)
        except ImageError as exc:
            return self.send_json(400, {"error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - a bug must not end the server: one line, a 500
            print(f"{prog()}: error: POST /predict: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
            return self.send_json(500, {"error": "internal error (see the server's output)"})
        self.send_json(200, result)

    def do_PUT(self):
        self.close_connection = True
        self.send_json(405, {"error": f"{self.command} is not supported: GET the page, POST /predict"})

    do_DELETE = do_PATCH = do_OPTIONS = do_PUT


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer whose request threads do not outlive it, quiet about clients that hang up."""

    daemon_threads = True
    request_queue_size = 128  # connections waiting to be accepted: a classroom's worth at once, not 5

    def handle_error(self, request, client_address):
        kind, exc = sys.exc_info()[:2]
        if issubclass(kind, (ConnectionError, TimeoutError)):
            return  # the client went away or stalled: nothing to say
        print(f"{prog()}: error: a request from {client_address[0]}: {kind.__name__}: {exc}".splitlines()[0],
              file=sys.stderr)


def make_server(model, host="127.0.0.1", port=0):
    """A bound (not yet serving) ``ThreadingHTTPServer`` for ``model``; raises OSError if the
    address cannot be had. ``port=0`` takes a free port: ``server.server_address[1]``."""
    pages = {}
    for url, (name, kind) in PAGES.items():
        with open(os.path.join(WEB, name), "rb") as f:
            pages[url] = (f.read(), kind)
    handler = type("PageHandler", (Handler,), {"predictor": Predictor(model), "pages": pages})
    return Server((host, port), handler)


def url(server):
    host, port = server.server_address[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def serve(model, host, port, label):
    """Serve until Ctrl-C or SIGTERM (which end the command with one line, see ch1.cli)."""
    from ch1.cli import fail

    try:
        server = make_server(model, host, port)
    except OSError as exc:
        reason = "in use" if getattr(exc, "errno", None) == errno.EADDRINUSE else (exc.strerror or str(exc))
        fail(f"--host {host} --port {port}: cannot listen there ({reason})")
    print(f"Serving {label} on {url(server)} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
