"""Round-trip time of the digit page's API: POST /predict, as the page sends a drawn digit.

Starts the server in this process on a free port (your_digit/serve.py, as ``predict.py --serve``
runs it), posts N real MNIST test digits rendered as the pad holds them (280x280 PNG, black
ink on white), one after another, and prints the median and 90th percentile of the round trip
in milliseconds: HTTP, decoding, the MNIST-style preparation, one forward pass with every
feature map, and the answer's PNGs and JSON. The first requests (warm-up) are not counted.
Writes a JSON with the CPU model and its speed flags (or the GPU), the versions, and the flags.

    python -m benchmarks.bench_serve                                  # outputs/cnn-mnist.keras
    python -m benchmarks.bench_serve --model outputs/mlp-mnist.keras --requests 500
"""

from ch1 import quiet_startup

quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import http.client
import json
import os
import statistics
import threading
import time

import keras
import numpy as np

import predict
from benchmarks.photos import as_drawn, png_bytes
from ch1 import device, outputs
from your_digit import serve
from ch1.cli import Parser, add_data_arg, positive_int, writable_output_file
from ch1.run import load_data

WARMUP = 5


def post(conn, body):
    conn.request("POST", "/predict", body=body, headers={"Content-Type": "image/png"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"POST /predict answered {response.status}: {data[:200]!r}")
    return json.loads(data)


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def parse_args(argv):
    parser = Parser(__doc__)
    parser.add_argument("--model", metavar="PATH", default=predict.DEFAULT_MODEL, help="a saved model of the listings")
    add_data_arg(parser)
    parser.add_argument("--requests", type=positive_int, default=200, help="timed requests (after a warm-up of 5)")
    parser.add_argument("--json", metavar="FILE",
                        help="the JSON to write; default results/serve/serve-<cpu|gpu>-<backend>.json")
    args = parser.parse_args(argv)
    args.smoke = False  # the whole test set
    return args


def main(argv=None):
    args = parse_args(argv)
    where = "gpu" if device.describe()["gpu"] else "cpu"
    out = args.json or os.path.join("results", "serve", f"serve-{where}-{keras.backend.backend()}.json")
    writable_output_file(out, "--json")
    model = predict.load_classifier(args.model)
    _, (x_test, y_test) = load_data(args)
    count = WARMUP + args.requests
    bodies = [png_bytes(as_drawn(x)) for x in x_test[:count]]

    server = serve.make_server(model, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=60)
    times, right = [], 0
    try:
        for i, body in enumerate(bodies):
            start = time.perf_counter()
            answer = post(conn, body)
            elapsed = (time.perf_counter() - start) * 1000
            if i >= WARMUP:
                times.append(elapsed)
                right += answer["digit"] == y_test[i]
    finally:
        conn.close()
        server.shutdown()
        server.server_close()

    where_words = device.describe()
    result = {
        "benchmark": "serve",
        "what": "POST /predict round trip of a 280x280 PNG drawn digit (HTTP, preparation, forward pass, "
                "feature maps, JSON), one request at a time",
        "model": args.model,
        "has_feature_maps": bool(serve.mapped_layers(model)),
        "backend": keras.backend.backend(),
        "requests": args.requests,
        "warmup": WARMUP,
        "median_ms": round(statistics.median(times), 2),
        "p90_ms": round(percentile(times, 90), 2),
        "min_ms": round(min(times), 2),
        "max_ms": round(max(times), 2),
        "read_right": round(right / len(times), 4),
        "device": where_words,
        "versions": device.versions(),
    }
    outputs.write_json(out, result)
    print(f"{result['model']} on {result['backend']}, {where_words['device']}: "
          f"median {result['median_ms']:.1f} ms, p90 {result['p90_ms']:.1f} ms over {len(times)} requests "
          f"({100 * result['read_right']:.1f}% read right)")
    print(f"Wrote {out}")
    return result


if __name__ == "__main__":
    main()
