"""A local web page to draw digits on, and the API behind it (``python predict.py --serve``).

The page (``web/``: plain HTML, CSS and JavaScript, nothing fetched from elsewhere) posts
what is drawn, or a dropped photo, to ``POST /predict``; the answer is prepared by the same
code as ``predict.py``'s files (:mod:`your_digit.digits`) and computed by one forward pass.

``POST /predict``: the body is a PNG, JPEG or WebP image (at most 10 MB, with a
Content-Length). The answer, ``200`` and JSON::

    {"digit": 7,
     "probabilities": [10 floats, digits 0..9],
     "seen": "data:image/png;base64,...",           # the 28x28 the model saw, as a PNG
     "feature_maps": [                               # CNN only: each Conv2D and MaxPooling2D layer
        {"name": "conv2d", "shape": [26, 26, 64],    # the layer's output for this image
         "tile": [26, 26], "columns": 8,             # map i at column i % 8, row i // 8
         "mosaic": "data:image/png;base64,..."},     # all maps in one grey PNG, each scaled to its max
        ...],
     "model": "cnn-mnist.keras (Listing 1.4.1, 10 epochs, seed 0, test accuracy 99.26%)"}

An MLP or RNN answers without ``feature_maps``; ``model`` (which run made the model, as
predict.py describes it) is there when the server was given it (``page_label``). A body that
is no image, or an image with no digit: ``400 {"error": "..."}``; no Content-Length: ``411``;
over 10 MB: ``413`` (refused from the header, unread); a model whose output is not finite:
``500``; any other path or method: ``404`` or ``405``, JSON too. Only the page's three files
are served, from a fixed table, never a path from the URL. Requests are not logged; the
server prints one line when it starts (and a warning when it listens beyond this machine:
the page has no authentication).

Hostile clients cost bounded time and memory (:class:`Limits`):

- an image is checked from its bytes before anything decodes it (:func:`check_image`):
  PNG, JPEG or WebP only, at most ``MAX_PIXELS``, a JPEG of at most ``MAX_SCANS`` scans
  (each scan is a pass over every pixel: 10,000 of them took 46 s), and headers short
  enough that Pillow's own reading of them, byte by byte or chunk by chunk in Python,
  stays quick; at most ``DECODERS`` images are decoded and prepared at once, and as many
  small ones (the pad's drawings) beside them, so that a drawing never waits behind photos;
- at most ``connections`` connections: a new one beyond that drops the connection that has
  waited longest for its request, and one that takes over ``head_timeout`` to send its
  request line and headers, or ``idle_timeout`` between two reads, is dropped too;
- bodies are read in chunks, and all of them together hold at most ``buffered`` bytes: an
  upload that does not fit drops the uploads that have waited longest for their bytes;
- when the process is out of file descriptors, accepting waits for a connection to close
  (dropping the one waiting longest) instead of trying again at once.

Keras is imported only to build a :class:`Predictor`: the server itself, and the tests of its
limits with a stand-in model, run without it.
"""

import base64
import dataclasses
import errno
import io
import ipaddress
import json
import os
import socket
import struct
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

from ch1.cli import error, prog
from ch1.data import prepare_images
from your_digit.digits import ImageError, decode_image, probabilities, to_mnist

MAX_BODY = 10 * 2**20  # bytes: a photo of a digit needs far less
MAX_PIXELS = 50_000_000  # an image's width x height: a 48- or 50-megapixel phone photo (8160x6120) is the most
MAX_SCANS = 100  # scans of a JPEG: libjpeg writes 10 for a progressive photo (6 grey), 1 to 3 for a baseline
MAX_SEGMENTS = 256  # JPEG segments (and fill bytes) before the first scan: a photo has 10 to 30
MAX_CHUNKS = 4096  # PNG chunks: 10 MB in libpng's 8 KiB IDAT chunks is 1,280
COLUMNS = 8  # feature-map tiles per row of a mosaic (64 maps: 8x8, as the book's figures)
WEB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "web")
# What GET may fetch: URL path -> (file in web/, content type). Nothing else is ever read.
PAGES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
DECODERS = 2  # images decoded and prepared at once in each lane (a photo may hold ~400 MB at MAX_PIXELS)
DRAWING_PIXELS = 2**20  # images of at most a megapixel (the pad's drawings) have a lane of their own
CHUNK = 64 * 2**10  # bytes of a body read at a time
ACCEPT_BACKOFF = 0.1  # seconds accepting waits when out of file descriptors (or for one to close)
OUT_OF_FILES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one server allows at once; the defaults suit a classroom, tests lower them."""

    connections: int = 128  # open connections (each a thread)
    buffered: int = 64 * 2**20  # bytes of request bodies held across all connections
    body: int = MAX_BODY  # bytes of one request body
    head: int = 16 * 2**10  # bytes of one request line and its headers (http.server allows 6.5 MB)
    head_timeout: float = 10.0  # seconds from a connection's start to the end of its request's headers
    idle_timeout: float = 10.0  # seconds one read may wait for the client's next bytes


LIMITS = Limits()


class ModelFault(Exception):
    """The model answered something that is no probability (NaN or infinity): a 500, said in one line."""


def mapped_layers(model):
    """The model's Conv2D and MaxPooling2D layers: those whose outputs the page shows as feature maps."""
    import keras

    return [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.MaxPooling2D))]


class Predictor:
    """A model ready for one image at a time: the digit, its probabilities, and the CNN's feature maps.

    The extractor is built once: a ``keras.Model`` from the model's input to every Conv2D
    and MaxPooling2D layer's output plus the model's output, so one image is one forward
    pass. Calls are serialized by a lock (one model, many request threads).
    """

    def __init__(self, model):
        import keras

        self.model = model
        self.input_shape = tuple(model.input_shape[1:])
        self.layers = mapped_layers(model)
        if self.layers:
            outputs = [layer.output for layer in self.layers] + list(model.outputs)
            inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
            self.forward = keras.Model(inputs, outputs)
        else:
            self.forward = model
        self.to_numpy = keras.ops.convert_to_numpy
        self.lock = threading.Lock()
        self.predict(np.zeros((28, 28), np.uint8))  # the first call builds the graph: do it now

    def predict(self, seen):
        """``(probabilities (10,), [(layer name, maps (h, w, c)), ...])`` for one uint8 28x28 image."""
        x = prepare_images(seen[None], self.input_shape)
        with self.lock:
            out = self.forward(x, training=False)
            out = [self.to_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
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


# --- the image, checked from its bytes ----------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # a JPEG's frame header (C4, C8, CC are not)


def check_image(data, name="the image"):
    """Refuse, from its bytes alone and before anything decodes it, an image that would cost too much;
    return its pixel count (None if its header is cut short: decode_image then says so).

    Raises :class:`ImageError` (a 400) for anything but a PNG, JPEG or WebP, for more than
    ``MAX_PIXELS``, and for a JPEG or PNG whose structure makes decoding slow (see
    :func:`jpeg_size`, :func:`png_size`).
    """
    if data.startswith(PNG_SIGNATURE):
        size = png_size(data, name)
    elif data.startswith(b"\xff\xd8\xff"):
        size = jpeg_size(data, name)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        size = webp_size(data)
    else:
        raise ImageError(f"{name}: not an image file the page reads (PNG, JPEG or WebP)")
    if size is None:
        return None
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(f"{name}: {width}x{height} is {width * height / 1e6:.0f} megapixels; "
                         f"at most {MAX_PIXELS / 1e6:.0f}")
    return width * height


def jpeg_size(data, name):
    """A JPEG's ``(width, height)`` from its frame header (None if the data ends first).

    Raises :class:`ImageError` for more than ``MAX_SCANS`` scans: libjpeg passes over every
    8x8 block for each, whatever the scale it decodes at. Every scan starts with the bytes
    FF DA, so their count bounds the scans it can read. Also for more than ``MAX_SEGMENTS`` segments
    and fill bytes before the first scan, or stray bytes between them: Pillow reads those
    in Python, a junk or fill byte at a time.
    """
    scans = data.count(b"\xff\xda")
    if scans > MAX_SCANS:
        raise ImageError(f"{name}: a JPEG of {scans:,} scans; at most {MAX_SCANS} (a photo has about 10)")
    pos, size = 2, None
    for _ in range(MAX_SEGMENTS):
        if pos + 4 > len(data):
            return size
        if data[pos] != 0xFF:
            raise ImageError(f"{name}: corrupt or truncated image (stray bytes at {pos:,} in the JPEG's header)")
        marker = data[pos + 1]
        if marker in (0xDA, 0xD9):  # the first scan (or the end of the image)
            return size
        if marker == 0xFF:  # a fill byte
            pos += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # a marker without a length
            pos += 2
        else:
            if marker in SOF_MARKERS and pos + 9 <= len(data):
                height, width = struct.unpack_from(">HH", data, pos + 5)
                size = (width, height)
            pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    raise ImageError(f"{name}: a JPEG of more than {MAX_SEGMENTS} segments before its image data")


def png_size(data, name):
    """A PNG's ``(width, height)`` from its header chunk (None if the data ends first).

    Raises :class:`ImageError` for more than ``MAX_CHUNKS`` chunks: Pillow reads each one in Python.
    """
    pos = len(PNG_SIGNATURE)
    for _ in range(MAX_CHUNKS):
        if pos + 8 > len(data):
            break
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IEND":
            break
        pos += 12 + length
    else:
        raise ImageError(f"{name}: a PNG of more than {MAX_CHUNKS:,} chunks")
    return struct.unpack_from(">II", data, 16) if data[12:16] == b"IHDR" and len(data) >= 24 else None


def webp_size(data):
    """A WebP's ``(width, height)``: its canvas (extended format) or its one image's (None if cut short)."""
    kind = data[12:16]
    if kind == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if kind == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + (bits >> 14 & 0x3FFF)
    if kind == b"VP8 " and len(data) >= 30:
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


_drawings = threading.BoundedSemaphore(DECODERS)
_photos = threading.BoundedSemaphore(DECODERS)


def prepare(data):
    """The uint8 28x28 the model sees for an uploaded image's bytes; raises ImageError (400) if there is none."""
    pixels = check_image(data)
    with _drawings if pixels is not None and pixels <= DRAWING_PIXELS else _photos:
        grey, _ = decode_image(data, "the image")
        return to_mnist(grey, "the image")


def answer(predictor, data):
    """The JSON-ready answer for an uploaded image's bytes; raises ImageError (400) if there is no
    digit, ModelFault (500) if the model's probabilities are not all finite."""
    seen = prepare(data)
    probs, maps = predictor.predict(seen)
    if not np.isfinite(probs).all():
        raise ModelFault("the model's output is not finite (NaN or infinity): are its weights damaged?")
    result = {"digit": int(np.argmax(probs)), "probabilities": [float(p) for p in probs], "seen": png_data_url(seen)}
    if maps:
        result["feature_maps"] = [
            {"name": name, "shape": list(values.shape), "tile": list(values.shape[:2]), "columns": COLUMNS,
             "mosaic": png_data_url(mosaic(values))}
            for name, values in maps
        ]
    return result


def encode(body):
    """JSON bytes; NaN or infinity raise ValueError rather than become the invalid JSON ``NaN``."""
    return json.dumps(body, allow_nan=False).encode()


def content_length(value):
    """A Content-Length as an int, or None unless it is ASCII digits (spaces around them aside), at
    most 18 of them: isdigit() alone takes '²' (which int() refuses) and '٣' (which int() reads
    as 3), and int() refuses thousands of digits."""
    value = value.strip(" \t")
    if not (value.isascii() and value.isdigit()) or len(value.lstrip("0")) > 18:
        return None
    return int(value.lstrip("0") or "0")


# --- the connections ----------------------------------------------------------------------------


class HeadTooLarge(Exception):
    """A request line and headers longer than ``Limits.head``."""


class HeadLimit:
    """A connection's input whose ``readline`` calls (http.server's, for the request line and the
    headers) stop at ``limit`` bytes in all with :class:`HeadTooLarge`: http.server alone holds
    up to 100 header lines of 64 KiB each. The body is read with ``read1``, not counted."""

    def __init__(self, rfile, limit):
        self.rfile, self.left = rfile, limit

    def readline(self, size=-1):
        size = self.left + 1 if size < 0 else min(size, self.left + 1)
        line = self.rfile.readline(size)
        self.left -= len(line)
        if self.left < 0:
            raise HeadTooLarge
        return line

    def read1(self, size):
        return self.rfile.read1(size)

    def close(self):
        self.rfile.close()


class Connection:
    """An accepted socket as the server tracks it (its fields change under the server's lock)."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.since = time.monotonic()  # when it was accepted
        self.deadline = deadline  # when its request line and headers must be in (None once they are)
        self.reading = True  # its request is not all in yet: it may be dropped to make room
        self.reserved = 0  # bytes of the server's body budget its upload holds
        self.dropped = False  # shut for reading by the server (too slow, or room was needed)


def oldest(connections):
    """Of the connections still reading their request, the one accepted first (None if none is)."""
    return min((c for c in connections if c.reading and not c.dropped), key=lambda c: c.since, default=None)


class Handler(BaseHTTPRequestHandler):
    """GET the page's files, POST /predict; every answer but the page's files is JSON.

    One request a connection (HTTP/1.0, http.server's default), so a connection's phases are
    its request's: its head (request line and headers), its body, then its answer.
    """

    server_version = "ch1-digits"
    predictor = None  # set per server by bind
    pages = {}
    page_label = None  # the model in words, sent with each answer as "model" (None: not sent)

    def setup(self):
        self.timeout = self.server.limits.idle_timeout  # set on the socket by StreamRequestHandler.setup
        super().setup()
        self.rfile = HeadLimit(self.rfile, self.server.limits.head)

    def handle_one_request(self):
        """http.server's, with a head over ``Limits.head`` answered 431."""
        self.requestline = self.command = self.request_version = ""  # what an answer needs before parse_request
        try:
            super().handle_one_request()
        except HeadTooLarge:
            self.send_error(431, f"the request line and headers are over {self.server.limits.head:,} bytes")

    def parse_request(self):
        """http.server's; once the head is in, only a POST (its body to come) still counts as reading."""
        parsed = super().parse_request()
        if parsed:
            self.server.mark(self.request, reading=self.command == "POST")
        return parsed

    def log_message(self, format, *args):
        """Quiet: no line per request (the server's one line is its address)."""

    def send_json(self, status, body):
        self.send_data(status, encode(body))

    def send_data(self, status, data):
        """A JSON answer's bytes, with the headers every JSON answer has."""
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
        self.close_connection = True  # one request a connection (see the class): its body may be left unread
        if self.path.split("?", 1)[0] != "/predict":
            return self.send_json(404, {"error": f"no such API: POST {self.path[:200]} (POST /predict only)"})
        headers = self.headers.get_all("Content-Length") or []
        if not headers:
            return self.send_json(411, {"error": "a Content-Length is required (the image's size in bytes)"})
        length = content_length(headers[0]) if len(headers) == 1 else None
        if length is None:
            return self.send_json(400, {"error": f"bad Content-Length: {', '.join(headers)[:40]!r}"})
        limit = self.server.limits.body
        if length > limit:
            return self.send_json(413, {"error": f"the image is {length:,} bytes; at most {limit:,}"})
        if not self.server.reserve(self.request, length):
            return self.send_json(503, {"error": "the server is busy with other uploads: try again in a moment"})
        try:
            data = self.read_body(length)
            if data is not None:
                self.reply(data)
        finally:
            self.server.release(self.request)

    def read_body(self, length):
        """The body, a chunk at a time (what is held is what has come); None, answered, if it ends short."""
        body = io.BytesIO()
        while body.tell() < length:
            chunk = self.rfile.read1(min(length - body.tell(), CHUNK))
            if not chunk:
                break
            body.write(chunk)
        if body.tell() < length:
            if self.server.mark(self.request, reading=False):
                self.send_json(503, {"error": "the server dropped this upload to make room for others: try again"})
            else:
                self.send_json(400, {"error": "the body ended before its Content-Length"})
            return None
        self.server.mark(self.request, reading=False)
        return body.getvalue()  # the buffer itself, not a copy

    def reply(self, data):
        """Answer an image's bytes: 200 and the answer, or 400 or 500 and one line saying why."""
        try:
            body = answer(self.predictor, data)
            if self.page_label is not None:
                body["model"] = self.page_label
            result = encode(body)
        except ImageError as exc:
            return self.send_json(400, {"error": str(exc)})
        except ModelFault as exc:
            error(f"POST /predict: {exc}")
            return self.send_json(500, {"error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - a bug must not end the server: one line, a 500
            error(f"POST /predict: {type(exc).__name__}: {exc}".splitlines()[0])
            return self.send_json(500, {"error": "internal error (see the server's output)"})
        self.send_data(200, result)

    def do_PUT(self):
        self.close_connection = True
        self.send_json(405, {"error": f"{self.command} is not supported: GET the page, POST /predict"})

    do_DELETE = do_PATCH = do_OPTIONS = do_PUT


BUSY = encode({"error": "the server has all the connections it takes: try again in a moment"})
BUSY_RESPONSE = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\nCache-Control: no-store\r\n\r\n%s" % (len(BUSY), BUSY))


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer within :class:`Limits`, on the address family its host needs; request
    threads do not outlive it, and clients that hang up or stall are not reported."""

    daemon_threads = True
    request_queue_size = 128  # connections waiting to be accepted: a classroom's worth at once, not 5

    def __init__(self, address, handler, limits=LIMITS):
        self.address_family = address_family(*address)
        self.limits = limits
        self.lock = threading.Condition()  # guards what follows; notified when a connection or bytes are freed
        self.open = {}  # socket -> Connection, from accept to close
        self.buffered = 0  # bytes reserved by uploads
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        """Admit a new connection (all taken: drop the oldest still reading, or answer 503), serve it in a thread."""
        with self.lock:
            live = [c for c in self.open.values() if not c.dropped]
            victim = oldest(live) if len(live) >= self.limits.connections else None
            admitted = len(live) < self.limits.connections or victim is not None
            if victim is not None:
                self.drop(victim)
            if admitted:
                self.open[request] = Connection(request, time.monotonic() + self.limits.head_timeout)
        if admitted:
            return super().process_request(request, client_address)
        try:
            request.setblocking(False)  # the accepting thread never waits on a client
            request.send(BUSY_RESPONSE)
        except OSError:
            pass  # gone already, or not reading: it is closed all the same
        self.shutdown_request(request)

    def get_request(self):
        """accept(); out of file descriptors, first drop the oldest connection still reading and wait
        (at most ACCEPT_BACKOFF) for one to close, so the accept loop does not spin."""
        try:
            return super().get_request()
        except OSError as exc:
            if exc.errno in OUT_OF_FILES:
                with self.lock:
                    victim = oldest(self.open.values())
                    if victim is not None:
                        self.drop(victim)
                    self.lock.wait(ACCEPT_BACKOFF)
            raise

    def service_actions(self):
        """Between accepts (twice a second at least): drop the connections whose heads are late."""
        now = time.monotonic()
        with self.lock:
            for conn in self.open.values():
                if conn.reading and conn.deadline is not None and now > conn.deadline and not conn.dropped:
                    self.drop(conn)

    def drop(self, conn):
        """Shut ``conn`` for reading (under the lock): its thread's read returns at once, as if the client
        had stopped, so it answers (its client may still read that) and closes."""
        conn.dropped = True
        try:
            conn.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass  # closed already

    def mark(self, sock, reading):
        """Its head is in: no more head deadline; ``reading``: a body is still to come. True if it was dropped."""
        with self.lock:
            conn = self.open[sock]
            conn.deadline, conn.reading = None, reading
            return conn.dropped

    def reserve(self, sock, size):
        """Hold ``size`` bytes of the body budget for ``sock``'s upload; False if they cannot be had in
        ``Limits.idle_timeout``. Short of them, the uploads accepted first and still reading are
        dropped (stalled or slower than this one); uploads read in full are waited for."""
        end = time.monotonic() + self.limits.idle_timeout
        with self.lock:
            conn = self.open[sock]
            while True:
                freeing = sum(c.reserved for c in self.open.values() if c.dropped)
                if self.buffered + size <= self.limits.buffered:
                    self.buffered += size
                    conn.reserved += size
                    return True
                if self.buffered - freeing + size > self.limits.buffered:
                    victim = oldest(c for c in self.open.values() if c.reserved and c is not conn)
                    if victim is not None:
                        self.drop(victim)
                        continue
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)

    def release(self, sock):
        """Give back the body budget ``sock``'s upload holds."""
        with self.lock:
            conn = self.open[sock]
            self.buffered -= conn.reserved
            conn.reserved = 0
            self.lock.notify_all()

    def shutdown_request(self, request):
        """Close a connection and forget it (what it held is freed)."""
        super().shutdown_request(request)
        with self.lock:
            conn = self.open.pop(request, None)
            if conn is not None:
                self.buffered -= conn.reserved
            self.lock.notify_all()

    def handle_error(self, request, client_address):
        kind, exc = sys.exc_info()[:2]
        if issubclass(kind, (ConnectionError, TimeoutError)):
            return  # the client went away or stalled: nothing to say
        error(f"a request from {client_address[0]}: {kind.__name__}: {exc}".splitlines()[0])


def address_family(host, port):
    """AF_INET6 for an IPv6 address ('::1', '::') or a name with IPv6 addresses only; else AF_INET, as
    http.server binds (a name with both, 'localhost' among them, listens on its IPv4 address)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError):
        return socket.AF_INET  # binding says what is wrong with the name
    families = {info[0] for info in infos}
    return socket.AF_INET6 if socket.AF_INET6 in families and socket.AF_INET not in families else socket.AF_INET


def bind(predictor, host="127.0.0.1", port=0, limits=LIMITS, page_label=None):
    """A bound (not yet serving) :class:`Server` answering with ``predictor`` (a :class:`Predictor`, or
    anything with its ``predict(seen)``), and ``page_label`` as each answer's ``model``; raises
    OSError if the address cannot be had."""
    pages = {}
    for url_path, (name, kind) in PAGES.items():
        with open(os.path.join(WEB, name), "rb") as f:
            pages[url_path] = (f.read(), kind)
    Image.init()  # Pillow's format plugins imported now, not by a request when no file descriptor is left
    handler = type("PageHandler", (Handler,), {"predictor": predictor, "pages": pages, "page_label": page_label})
    return Server((host, port), handler, limits)


def make_server(model, host="127.0.0.1", port=0, limits=LIMITS, page_label=None):
    """A bound (not yet serving) :class:`Server` for ``model``; raises OSError if the address cannot
    be had. ``port=0`` takes a free port: ``server.server_address[1]``."""
    return bind(Predictor(model), host, port, limits, page_label)


def url(server):
    host, port = server.server_address[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def exposed(server):
    """Whether the server listens beyond this machine: on any address but a loopback one."""
    return not ipaddress.ip_address(server.server_address[0].split("%")[0]).is_loopback


def serve(model, host, port, label, page_label=None):
    """Serve until Ctrl-C or SIGTERM (which end the command with one line, see ch1.cli). ``label`` names
    the model in the line the server prints; ``page_label`` on the page (see :func:`bind`)."""
    from ch1.cli import fail

    try:
        server = make_server(model, host, port, page_label=page_label)
    except OSError as exc:
        reason = "in use" if getattr(exc, "errno", None) == errno.EADDRINUSE else (exc.strerror or str(exc))
        fail(f"--host {host} --port {port}: cannot listen there ({reason})")
    print(f"Serving {label} on {url(server)} (Ctrl-C to stop)", flush=True)
    if exposed(server):
        print(f"{prog()}: warning: {url(server)} has no authentication: anyone who can reach port "
              f"{server.server_address[1]} can use the page and its model", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
