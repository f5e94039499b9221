"""The digit page's server (your_digit/serve.py) with a stand-in model (no Keras): its answers to bad
requests, its limits (a body's size, a silent connection's time, Pillow's pixel limit), the
address it listens on and its one lines, and Ctrl-C."""

import base64
import contextlib
import http.client
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from your_digit import serve

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Stub:
    """A stand-in for a model (no Keras): the same probabilities for every image, no feature maps."""

    def __init__(self, probabilities=None):
        self.probabilities = np.full(10, 0.1) if probabilities is None else np.asarray(probabilities)

    def predict(self, seen):
        return self.probabilities, []


def encoded(image, format="PNG"):
    buffer = io.BytesIO()
    image.save(buffer, format)
    return buffer.getvalue()


def drawn_png():
    """A digit as the page's pad sends it: a 280x280 PNG, black ink on white (a 1)."""
    image = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(image).line((140, 40, 140, 240), fill=0, width=20)
    return encoded(image)


def strict_json(data):
    """JSON as a browser's JSON.parse reads it: NaN and Infinity are errors."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(data, parse_constant=refuse)


def post(port, body, host="127.0.0.1", timeout=30):
    """``(status, JSON)`` for POST /predict of ``body``."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/octet-stream"})
        response = conn.getresponse()
        assert response.getheader("Content-Type") == "application/json"
        return response.status, strict_json(response.read())
    finally:
        conn.close()


@contextlib.contextmanager
def served(predictor=None):
    """A server for the stand-in model on a free port of 127.0.0.1, serving from a thread of this process."""
    server = serve.bind(predictor or Stub())
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def exchange(port, data):
    """Send raw bytes and end the sending side; read until the server closes: its whole response."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
        return response


def test_a_drawing_is_answered_as_the_page_reads_it():
    with served(Stub(np.eye(10)[3])) as port:
        status, answer = post(port, drawn_png())
    assert status == 200 and set(answer) == {"digit", "probabilities", "seen"}
    assert answer["digit"] == 3 and answer["probabilities"] == list(np.eye(10)[3])
    with Image.open(io.BytesIO(base64.b64decode(answer["seen"].split(",", 1)[1]))) as seen:
        assert answer["seen"].startswith("data:image/png;base64,") and seen.size == (28, 28)


@pytest.mark.parametrize("request_, status, words", [
    (b"POST /predict HTTP/1.0\r\n\r\n", 411, "a Content-Length is required"),
    (b"POST /predict HTTP/1.0\r\nContent-Length: ten\r\n\r\n", 400, "bad Content-Length: 'ten'"),
    (b"POST /predict HTTP/1.0\r\nContent-Length: -5\r\n\r\n", 400, "bad Content-Length: '-5'"),
    (b"POST /predict HTTP/1.0\r\nContent-Length: 10485761\r\n\r\n", 413, "at most 10,485,760"),
    (b"POST /predict HTTP/1.0\r\nContent-Length: 10\r\n\r\nabc", 400, "the body ended before"),
    (b"GET /../README.md HTTP/1.0\r\n\r\n", 404, "no such page"),
    (b"POST /nope HTTP/1.0\r\nContent-Length: 1\r\n\r\nx", 404, "POST /predict only"),
    (b"PUT /predict HTTP/1.0\r\n\r\n", 501, "Unsupported method ('PUT')"),
    (b"GET / two words HTTP/1.0\r\n\r\n", 400, "Bad request syntax"),
])
def test_a_bad_request_gets_a_json_error(request_, status, words):
    """The body's size is refused from its header (413 without reading it), and every error is JSON."""
    with served() as port:
        response = exchange(port, request_)
    head, body = response.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.0 %d " % status) and b"Content-Type: application/json" in head, response
    assert words in strict_json(body)["error"]


def pixel_bomb(side=20_000):
    """A PNG whose header says ``side`` x ``side`` pixels (400 million: a decompression bomb)."""
    png = encoded(Image.new("L", (8, 8)))
    ihdr = b"IHDR" + struct.pack(">II", side, side) + png[24:29]
    return png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:]


@pytest.mark.parametrize("body, words", [
    (pixel_bomb(), "the image: too many pixels to be a digit image"),
    (b"not an image at all", "the image: not an image file"),
    (drawn_png()[:100], "the image: corrupt or truncated image"),
    (encoded(Image.new("L", (280, 280), 255)), "the image: blank, no digit"),
], ids=["pixel bomb", "not an image", "truncated", "blank"])
def test_no_image_or_no_digit_gets_a_json_400(body, words):
    with served() as port:
        status, answer = post(port, body)
    assert status == 400 and words in answer["error"], answer


def test_pillows_pixel_limit_is_the_one(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # the pad's 280x280 is 78,400 pixels
    with served() as port:
        status, answer = post(port, drawn_png())
    assert status == 400 and "too many pixels" in answer["error"], answer


@pytest.mark.parametrize("sent", [b"", b"POST /predict HTTP/1.0\r\nContent-Length: 100\r\n\r\nabc"])
@pytest.mark.timeout(30)
def test_a_silent_connection_is_closed_after_the_timeout(sent, monkeypatch):
    assert 0 < serve.Handler.timeout <= 60  # the server's own: each read waits at most this long
    monkeypatch.setattr(serve.Handler, "timeout", 0.5)
    with served() as port, socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(sent)
        start = time.monotonic()
        assert sock.recv(1024) == b""  # closed, no answer
        assert 0.3 < time.monotonic() - start < 5


def test_a_model_answering_nan_gets_a_500_in_valid_json(capsys):
    with served(Stub(np.full(10, np.nan))) as port:
        status, answer = post(port, drawn_png())  # strict_json refuses NaN
    assert status == 500 and "the model's output is not finite" in answer["error"]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "not finite" in err[0]


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("localhost", False), ("0.0.0.0", True)])
def test_listening_beyond_loopback_warns_in_one_line(host, warned, monkeypatch, capsys):
    monkeypatch.setattr(serve, "Predictor", lambda model: Stub())
    monkeypatch.setattr(serve.Server, "serve_forever", lambda self: None)
    monkeypatch.setattr(sys, "argv", ["predict.py"])
    serve.serve(None, host, 0, "model.keras")
    out, err = capsys.readouterr()
    assert out.startswith("Serving model.keras on http://") and len(out.splitlines()) == 1
    port = out.split(":")[-1].split("/")[0]
    assert err.splitlines() == ([f"predict.py: warning: http://{host}:{port}/ has no authentication: anyone who can "
                                 f"reach port {port} can use the page and its model"] if warned else [])


def test_a_busy_port_is_refused_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(serve, "Predictor", lambda model: Stub())
    monkeypatch.setattr(sys, "argv", ["predict.py"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_:
            serve.serve(None, "127.0.0.1", port, "model.keras")
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out == ""
    assert err.splitlines() == [f"predict.py: error: --host 127.0.0.1 --port {port}: cannot listen there (in use)"]


SERVED = """
from ch1.cli import handle_signals
from tests.your_digit.test_serve_limits import Stub
from your_digit import serve
handle_signals()  # as predict.py's flags install it
serve.Predictor = lambda model: Stub()
serve.serve(None, "127.0.0.1", 0, "a stub")
"""


@pytest.mark.timeout(60)
def test_ctrl_c_ends_the_server_in_one_line():
    """A fresh Python without Keras: the page on 127.0.0.1, then Ctrl-C: one line, the signal's status."""
    process = subprocess.Popen([sys.executable, "-c", SERVED], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    try:
        line = process.stdout.readline()
        assert line.startswith("Serving a stub on http://127.0.0.1:") and line.endswith("/ (Ctrl-C to stop)\n")
        with urllib.request.urlopen(line.split()[4], timeout=30) as page:
            assert page.status == 200 and b'id="pad"' in page.read()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == -signal.SIGINT and out == ""  # a shell shows 130
    assert err == "-c: interrupted\n"
