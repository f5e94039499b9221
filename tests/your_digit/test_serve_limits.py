"""The digit page's server against hostile clients (issue 19), with a stand-in model (no Keras).

An image is refused from its bytes before it is decoded when decoding it would cost too much
(a progressive JPEG of thousands of scans, too many pixels, headers Pillow reads byte by
byte), while the page's own PNGs and 48-megapixel phone photos are answered; a normal request
is answered within 2 s while hostile JPEGs are posted, while photos hold every decoding slot
and while slow clients hold every connection; slow heads, stalled reads, oversize heads and half-sent uploads are dropped or
refused; memory stays bounded under 100 half-sent uploads and the accept loop does not spin
when the process is out of file descriptors (both measured in a server subprocess); a
Content-Length is ASCII digits or a 400; IPv6 hosts are served; listening beyond loopback
warns; a model's NaN is a 500 with valid JSON.
"""

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.support import ROOT
from your_digit import serve

NORMAL_LATENCY = 2.0  # seconds: what the issue allows a normal request while hostile clients are connected


class Stub:
    """A stand-in for a model (no Keras): the same probabilities for every image, no feature maps."""

    def __init__(self, probabilities=None):
        self.probabilities = np.full(10, 0.1) if probabilities is None else np.asarray(probabilities)

    def predict(self, seen):
        return self.probabilities, []


def drawn_png():
    """A digit as the page's pad sends it: a 280x280 PNG, black ink on white."""
    image = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(image).line((140, 40, 140, 240), fill=0, width=20)
    return encoded(image, "PNG")


def encoded(image, format, **options):
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def photo(size, **options):
    """A phone photo's worth of JPEG: a dark ring (a 0) on light paper, ``size`` (width, height)."""
    image = Image.new("RGB", size, (235, 235, 230))
    width, height = size
    ImageDraw.Draw(image).ellipse((width * 3 // 8, height // 4, width * 5 // 8, height * 3 // 4),
                                  outline=(30, 30, 30), width=max(4, width // 32))
    return encoded(image, "JPEG", quality=85, **options)


def hostile_jpeg(side=4096, scans=20_000):
    """A progressive JPEG whose one AC scan is repeated ``scans`` times: a few bytes each, yet libjpeg
    passes over every 8x8 block for each (here about 20 s of CPU for the whole file, 1 MB)."""
    data = encoded(Image.new("L", (side, side), 255), "JPEG", progressive=True)
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC4, 0xDA, 0xD9)]
    for before, start, end in zip(starts, starts[1:], starts[2:]):
        spectral = data[start + 5 + 2 * data[start + 4]:][:3]  # Ss, Se, Ah/Al after the component list
        if data[start + 1] == 0xDA and data[before + 1] == 0xC4 and spectral[0] >= 1 and spectral[2] >> 4 == 0:
            scan = data[before:end]  # its Huffman table and the scan: a first pass over AC coefficients
    end_of_image = len(data) - 2
    return data[:end_of_image] + scan * scans + data[end_of_image:]


def strict_json(data):
    """JSON as a browser's JSON.parse reads it: NaN and Infinity are errors."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(data, parse_constant=refuse)


def post(port, body, host="127.0.0.1", timeout=30):
    """``(status, JSON)`` for POST /predict of ``body``."""
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/octet-stream"})
        response = conn.getresponse()
        return response.status, strict_json(response.read())
    finally:
        conn.close()


def timed_post(port, body):
    start = time.monotonic()
    status, answer = post(port, body)
    return status, answer, time.monotonic() - start


def exchange(port, data, timeout=10):
    """Send raw bytes, read until the server closes: its whole response (b"" if it sent none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
        return response


def status_of(response):
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else None


def slow_client(port, head=b"POST /predict HTTP/1.0\r\nContent-Length: 100\r\n"):
    """A connection that has sent part of its head and stalls."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head)
    return sock


def closed_by_server(sock, timeout):
    """Whether the server closes ``sock`` (EOF or a reset, after any answer) within ``timeout`` seconds."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@contextlib.contextmanager
def served(limits=serve.LIMITS, predictor=None, host="127.0.0.1"):
    """A server for the stand-in model on a free port, serving from a thread of this process."""
    server = serve.bind(predictor or Stub(), host, 0, limits)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def live(server):
    with server.lock:
        return sum(not c.dropped for c in server.open.values())


# --- the image, checked before it is decoded ----------------------------------------------------


@pytest.fixture(scope="module")
def hostile():
    return hostile_jpeg()


def test_the_pages_own_images_pass_the_check():
    grey = Image.new("L", (300, 200), 255)
    rgba = Image.new("RGBA", (300, 200), (255, 255, 255, 0))
    for data in [drawn_png(), encoded(rgba, "PNG"), photo((4000, 3000)), photo((8000, 6000), progressive=True),
                 photo((8160, 6120)), encoded(grey, "WEBP"), encoded(grey, "WEBP", lossless=True),
                 encoded(rgba, "WEBP")]:
        serve.check_image(data)


@pytest.mark.parametrize("format, options", [("PNG", {}), ("JPEG", {}), ("JPEG", {"progressive": True}),
                                             ("WEBP", {}), ("WEBP", {"lossless": True}), ("RGBA WEBP", {})])
def test_sizes_are_read_from_the_header_as_pillow_reads_them(format, options):
    mode = "RGBA" if format.startswith("RGBA") else "RGB"
    data = encoded(Image.new(mode, (321, 123), "white"), format.split()[-1], **options)
    if format == "PNG":
        size = serve.png_size(data, "x")
    elif format == "JPEG":
        size = serve.jpeg_size(data, "x")
    else:
        size = serve.webp_size(data)
    with Image.open(io.BytesIO(data)) as image:
        assert size == image.size == (321, 123)


@pytest.mark.parametrize("format", ["GIF", "BMP", "TIFF", "PPM", "ICO"])
def test_formats_the_page_does_not_send_are_refused_undecoded(format):
    with pytest.raises(serve.ImageError, match="not an image file the page reads"):
        serve.check_image(encoded(Image.new("RGB", (64, 64), "white"), format))


def test_too_many_pixels_refused_from_the_header():
    """Headers alone, claiming 8000x8000: refused before any pixel is read."""
    png = encoded(Image.new("L", (8, 8)), "PNG")
    ihdr = b"IHDR" + (8000).to_bytes(4, "big") * 2 + png[24:29]
    big_png = png[:12] + ihdr + png[29:]
    jpeg = encoded(Image.new("L", (8, 8)), "JPEG")
    sof = jpeg.index(b"\xff\xc0")
    big_jpeg = jpeg[:sof + 5] + (8000).to_bytes(2, "big") * 2 + jpeg[sof + 9:]
    webp = encoded(Image.new("RGBA", (8, 8)), "WEBP")
    assert webp[12:16] == b"VP8X"
    big_webp = webp[:24] + (7999).to_bytes(3, "little") * 2 + webp[30:]
    for data in (big_png, big_jpeg, big_webp):
        with pytest.raises(serve.ImageError, match="8000x8000 is 64 megapixels; at most 50"):
            serve.check_image(data)


def test_a_progressive_jpeg_of_thousands_of_scans_is_refused_at_once(hostile):
    start = time.process_time()
    with pytest.raises(serve.ImageError, match="a JPEG of 20,00[0-9] scans; at most 100"):
        serve.check_image(hostile)
    assert time.process_time() - start < 0.5  # decoding it would take about 20 s


def test_jpeg_headers_pillow_reads_byte_by_byte_are_refused():
    """Pillow reads a JPEG's segments before its first scan in Python, a fill or junk byte at a time."""
    jpeg = encoded(Image.new("L", (8, 8)), "JPEG")
    for data, expected in [(jpeg[:2] + b"\xff\xfe\x00\x02" * 2_000_000 + jpeg[2:], "more than 256 segments"),
                           (jpeg[:2] + b"\xff" * 8_000_000 + jpeg[2:], "more than 256 segments"),
                           (jpeg[:20] + b"\x00" * 8_000_000 + jpeg[20:], "stray bytes at 20")]:
        start = time.process_time()
        with pytest.raises(serve.ImageError, match=expected):
            serve.check_image(data)
        assert time.process_time() - start < 0.5


def test_a_png_of_a_million_chunks_is_refused():
    png = encoded(Image.new("L", (8, 8)), "PNG")
    empty_chunk = b"\x00\x00\x00\x00aaAa\x8b\xe7\x1a\x9e"  # length, type, CRC of nothing: Pillow reads each
    with pytest.raises(serve.ImageError, match="more than 4,096 chunks"):
        serve.check_image(png[:33] + empty_chunk * 800_000 + png[33:])


# --- a normal request while hostile clients are connected ---------------------------------------


def test_48_megapixel_phone_photos_are_answered():
    with served() as server:
        for data in (photo((8000, 6000)), photo((8000, 6000), progressive=True)):
            status, answer = post(server.server_address[1], data)
            assert status == 200, answer


def test_normal_request_answered_while_hostile_jpegs_are_posted(hostile):
    with served() as server:
        port = server.server_address[1]
        stop, refused = threading.Event(), []

        def attack():
            while not stop.is_set():
                refused.append(post(port, hostile))

        attackers = [threading.Thread(target=attack) for _ in range(2)]
        for thread in attackers:
            thread.start()
        try:
            time.sleep(0.5)
            status, answer, seconds = timed_post(port, drawn_png())
        finally:
            stop.set()
            for thread in attackers:
                thread.join()
    assert status == 200 and seconds < NORMAL_LATENCY, (status, answer, seconds)
    assert refused and all(status == 400 and "scans" in answer["error"] for status, answer in refused)


def test_a_drawing_does_not_wait_behind_photos():
    """With every photo lane taken (as by photos that take long to decode), a drawing is still answered."""
    with served() as server:
        port = server.server_address[1]
        for _ in range(serve.DECODERS):
            serve._photos.acquire()
        try:
            status, answer, seconds = timed_post(port, drawn_png())
            assert status == 200 and seconds < NORMAL_LATENCY, (status, answer, seconds)
            with pytest.raises(TimeoutError):
                post(port, photo((2000, 1500)), timeout=1)  # a photo waits for its lane
        finally:
            for _ in range(serve.DECODERS):
                serve._photos.release()


def test_normal_request_answered_while_slow_clients_hold_every_connection():
    limits = serve.Limits(connections=8, head_timeout=60, idle_timeout=60)
    with served(limits) as server:
        port = server.server_address[1]
        slow = [slow_client(port) for _ in range(40)]
        try:
            time.sleep(0.3)
            assert live(server) <= 8
            status, answer, seconds = timed_post(port, drawn_png())
            assert status == 200 and seconds < NORMAL_LATENCY, (status, answer, seconds)
            dropped = sum(closed_by_server(sock, 0.1) for sock in slow)
            assert dropped >= 40 - 8 + 1  # the oldest made room, down to 7 of them beside the normal one
        finally:
            for sock in slow:
                sock.close()


def test_connections_all_busy_get_503_at_once():
    """When every connection is past reading (here: being answered), a new one is refused, not queued."""
    release = threading.Event()

    class Blocking(Stub):
        def predict(self, seen):
            release.wait(30)
            return super().predict(seen)

    with served(serve.Limits(connections=2), Blocking()) as server:
        port = server.server_address[1]
        workers = [threading.Thread(target=post, args=(port, drawn_png())) for _ in range(2)]
        for thread in workers:
            thread.start()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (live(server) == 2 and not any(
                    c.reading for c in list(server.open.values()))):
                time.sleep(0.02)
            response = exchange(port, b"GET / HTTP/1.0\r\n\r\n")
            assert status_of(response) == 503 and b"all the connections it takes" in response
        finally:
            release.set()
            for thread in workers:
                thread.join()


def test_a_head_sent_too_slowly_is_dropped():
    with served(serve.Limits(head_timeout=1, idle_timeout=30)) as server:
        sock = slow_client(server.server_address[1], b"POST /predict HTTP/1.0\r\n")
        start = time.monotonic()
        try:
            for _ in range(20):  # a header byte every 0.2 s: never idle, never done
                time.sleep(0.2)
                try:
                    sock.sendall(b"X")
                except OSError:
                    break
            assert closed_by_server(sock, 5) and time.monotonic() - start < 3
        finally:
            sock.close()


def test_a_stalled_upload_is_dropped_after_the_idle_timeout():
    with served(serve.Limits(idle_timeout=0.5)) as server:
        sock = slow_client(server.server_address[1], b"POST /predict HTTP/1.0\r\nContent-Length: 1000\r\n\r\nabc")
        start = time.monotonic()
        try:
            assert closed_by_server(sock, 5) and time.monotonic() - start < 2
        finally:
            sock.close()
        assert server.buffered == 0


def test_a_head_over_the_limit_gets_431():
    with served() as server:
        port = server.server_address[1]
        for head in [b"GET / HTTP/1.0\r\nX: " + b"a" * 20_000 + b"\r\n\r\n",
                     b"GET / HTTP/1.0\r\n" + (b"X: " + b"a" * 400 + b"\r\n") * 50 + b"\r\n",
                     b"GET /" + b"a" * 20_000 + b" HTTP/1.0\r\n\r\n"]:
            response = exchange(port, head)
            assert status_of(response) == 431 and b"over 16,384 bytes" in response, response[:200]
        assert status_of(exchange(port, b"GET / HTTP/1.0\r\nX: " + b"a" * 8_000 + b"\r\n\r\n")) == 200


def test_half_sent_uploads_stay_within_the_byte_budget():
    """Uploads that stall hold at most ``buffered`` bytes in all; newer ones push the oldest out (503)."""
    limits = serve.Limits(buffered=4 * 2**20, body=2**20, idle_timeout=30)
    with served(limits) as server:
        port = server.server_address[1]
        uploads, peak = [], 0
        try:
            for _ in range(12):
                sock = slow_client(port, b"POST /predict HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % 2**20)
                sock.sendall(b"\0" * (2**20 // 2))
                uploads.append(sock)
                time.sleep(0.05)
                peak = max(peak, server.buffered)
            status, answer, seconds = timed_post(port, drawn_png())
            assert status == 200 and seconds < NORMAL_LATENCY, (status, answer, seconds)
            assert 0 < peak <= limits.buffered
            answers = []
            for sock in uploads[:8]:
                sock.settimeout(5)
                answers.append(sock.recv(65536))
            assert all(status_of(a) == 503 and b"make room" in a for a in answers), answers
        finally:
            for sock in uploads:
                sock.close()


@pytest.mark.parametrize("value", ["\u00b2".encode("latin-1"), "\u00b3".encode("latin-1"), b"+5", b"-5", b"5 5", b"0x10",
                                   b"1_0", b"", b"5.0", b"9" * 5_000])
def test_a_content_length_not_ascii_digits_gets_400(value):
    """'\u00b2'.isdigit() is True and int('\u00b2') fails: such a header once got no answer at all."""
    with served() as server:
        response = exchange(server.server_address[1],
                            b"POST /predict HTTP/1.0\r\nContent-Length: " + value + b"\r\n\r\n" + b"x" * 5)
    assert status_of(response) == 400 and b"bad Content-Length" in response, response


def test_two_content_lengths_get_400_and_spaces_around_one_are_fine():
    body = drawn_png()
    with served() as server:
        port = server.server_address[1]
        twice = exchange(port, b"POST /predict HTTP/1.0\r\nContent-Length: %d\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), len(body), body))
        spaced = exchange(port, b"POST /predict HTTP/1.0\r\nContent-Length:  %d \t\r\n\r\n%s" % (len(body), body))
    assert status_of(twice) == 400 and b"bad Content-Length" in twice
    assert status_of(spaced) == 200


def test_content_length_parsing():
    assert serve.content_length(" 42\t") == 42 and serve.content_length("007") == 7
    assert serve.content_length("0" * 5000) == 0 and serve.content_length("9" * 18) == 10**18 - 1
    for value in ["\u00b2", "\u0663", "+1", "1 2", "9" * 19, "", " "]:
        assert serve.content_length(value) is None


# --- a model's NaN ------------------------------------------------------------------------------


def test_a_model_answering_nan_gets_a_500_in_valid_json(capsys):
    with served(predictor=Stub(np.full(10, np.nan))) as server:
        status, answer = post(server.server_address[1], drawn_png())  # strict_json refuses NaN
    assert status == 500 and "not finite" in answer["error"]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "not finite" in err[0]


def test_json_is_never_nan():
    with pytest.raises(ValueError):
        serve.encode({"probabilities": [float("nan")]})


# --- addresses ----------------------------------------------------------------------------------


def has_ipv6():
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback here")


@needs_ipv6
@pytest.mark.parametrize("host, connect", [("::1", "::1"), ("::", "::1")])
def test_ipv6_hosts_are_served(host, connect):
    with served(host=host) as server:
        assert server.address_family == socket.AF_INET6
        port = server.server_address[1]
        assert serve.url(server) == f"http://[{server.server_address[0]}]:{port}/"
        status, answer = post(port, drawn_png(), host=connect)
    assert status == 200, answer


def test_a_name_with_an_ipv4_address_listens_on_it():
    assert serve.address_family("localhost", 0) == socket.AF_INET
    assert serve.address_family("127.0.0.1", 0) == serve.address_family("", 0) == socket.AF_INET


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("localhost", False), ("0.0.0.0", True),
                                          pytest.param("::1", False, marks=needs_ipv6),
                                          pytest.param("::", True, marks=needs_ipv6)])
def test_listening_beyond_loopback_warns_in_one_line(host, warned, monkeypatch, capsys):
    def interrupted(self, poll_interval=0.5):
        raise KeyboardInterrupt  # as Ctrl-C ends serving

    monkeypatch.setattr(serve, "Predictor", lambda model: Stub())
    monkeypatch.setattr(serve.Server, "serve_forever", interrupted)
    with pytest.raises(KeyboardInterrupt):
        serve.serve(None, host, 0, "model.keras")
    out, err = capsys.readouterr()
    assert out.startswith("Serving model.keras on http://") and len(out.splitlines()) == 1
    if warned:
        assert len(err.splitlines()) == 1 and ": warning: " in err and "no authentication" in err, err
        assert "anyone who can reach port" in err
    else:
        assert err == ""


# --- in a server subprocess: memory, and out of file descriptors --------------------------------

SERVER = """
import json, resource, sys
limits, files = json.loads(sys.argv[1]), int(sys.argv[2])
from tests.your_digit.test_serve_limits import Stub
from your_digit import serve
if files:
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
server = serve.bind(Stub(), "127.0.0.1", 0, serve.Limits(**limits))
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@contextlib.contextmanager
def server_process(limits=None, files=0):
    """``(pid, port)`` of a server for the stand-in model in a subprocess (``files``: its open-file limit)."""
    process = subprocess.Popen([sys.executable, "-c", SERVER, json.dumps(limits or {}), str(files)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    try:
        yield process.pid, int(process.stdout.readline())
    finally:
        process.kill()
        process.communicate()


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_memory_stays_bounded_with_100_half_sent_uploads():
    """100 uploads of 10 MB, each stalled after 1 MB: the server held 1 MB for each (100 MB) before."""
    with server_process() as (pid, port):
        assert post(port, drawn_png())[0] == 200  # warm: the decoding path's memory is in the baseline
        baseline = status_kb(pid, "VmRSS")
        uploads = []
        try:
            for _ in range(100):
                sock = slow_client(port, b"POST /predict HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % serve.MAX_BODY)
                with contextlib.suppress(OSError):  # dropped to make room: the server stops reading it
                    sock.sendall(b"\0" * 2**20)
                uploads.append(sock)
            time.sleep(0.3)
            status, answer, seconds = timed_post(port, drawn_png())
            grown = (status_kb(pid, "VmHWM") - baseline) / 1024
        finally:
            for sock in uploads:
                sock.close()
    assert status == 200 and seconds < NORMAL_LATENCY, (status, answer, seconds)
    assert grown < 40, f"the server grew by {grown:.0f} MB"


def test_out_of_file_descriptors_the_accept_loop_waits_and_serves():
    """At 64 open files, 100 slow clients: accept() fails with EMFILE; the loop must not spin, and
    a normal request is still answered (the oldest slow client makes room)."""
    with server_process(files=64) as (pid, port):
        slow = [slow_client(port) for _ in range(100)]
        try:
            time.sleep(0.5)
            before, start = cpu_seconds(pid), time.monotonic()
            time.sleep(1.5)
            busy = (cpu_seconds(pid) - before) / (time.monotonic() - start)
            status, answer, seconds = timed_post(port, drawn_png())
        finally:
            for sock in slow:
                sock.close()
    assert busy < 0.3, f"the server used {busy:.0%} of a CPU while out of file descriptors"
    assert status == 200 and seconds < NORMAL_LATENCY, (status, answer, seconds)
