"""Round-trip time of the digit page's API: POST /predict, as the page sends a drawn digit.

The server runs in this process on a free port; N MNIST test digits as the pad holds them (280x280
PNG) are posted one after another, after 5 not counted; the round trip's median and 90th percentile
are printed in milliseconds, and written to a JSON with the device, the versions and the flags.

    python -m benchmarks.bench_serve                                  # outputs/cnn-mnist.keras
    python -m benchmarks.bench_serve --model outputs/mlp-mnist.keras --requests 500
"""

from ch1 import quiet_startup

quiet_startup()  # before Keras loads TensorFlow: its start-up notices stay off stderr

import http.client
import json
import os
import threading
import time

import keras
import numpy as np

import predict
from benchmarks.photos import as_drawn, png_bytes
from ch1 import device, files
from ch1.cli import Parser, add_data_arg, positive_int, writable_output_file
from ch1.run import load_data
from your_digit import serve

WARMUP = 5


def main(argv=None):
    parser = Parser(__doc__)
    parser.add_argument("--model", metavar="PATH", default=predict.DEFAULT_MODEL, help="a saved model of the listings")
    add_data_arg(parser)
    parser.add_argument("--requests", type=positive_int, default=200, help="timed requests (after a warm-up of 5)")
    parser.add_argument("--json", metavar="FILE", help="default: results/serve/serve-<cpu|gpu>-<backend>.json")
    args = parser.parse_args(argv)
    args.smoke = False  # the whole test set
    where = device.describe()
    name = f"serve-{'gpu' if where['gpu'] else 'cpu'}-{keras.backend.backend()}.json"
    out = args.json or os.path.join("results", "serve", name)
    writable_output_file(out, "--json")
    model = predict.load_classifier(args.model)
    _, (x_test, y_test) = load_data(args)
    server = serve.bind(serve.Predictor(model))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn, times, answers = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=60), [], []
    try:
        for x in x_test[:WARMUP + args.requests]:
            body = png_bytes(as_drawn(x))
            start = time.perf_counter()
            conn.request("POST", "/predict", body=body, headers={"Content-Type": "image/png"})
            answers.append(json.loads((response := conn.getresponse()).read()))
            times.append((time.perf_counter() - start) * 1000)
            if response.status != 200:
                raise RuntimeError(f"POST /predict answered {response.status}: {answers[-1]}")
    finally:
        conn.close()
        server.shutdown()
        server.server_close()
    times, digits = np.array(times[WARMUP:]), np.array([a["digit"] for a in answers[WARMUP:]])
    result = {
        "benchmark": "serve", "what": "POST /predict round trip of a 280x280 PNG drawn digit (HTTP, preparation, "
                                      "forward pass, feature maps, JSON), one request at a time",
        "model": args.model, "has_feature_maps": "feature_maps" in answers[-1], "backend": keras.backend.backend(),
        "requests": args.requests, "warmup": WARMUP,
        "median_ms": round(float(np.median(times)), 2), "p90_ms": round(float(np.percentile(times, 90)), 2),
        "min_ms": round(float(times.min()), 2), "max_ms": round(float(times.max()), 2),
        "read_right": round(float(np.mean(digits == y_test[WARMUP:WARMUP + args.requests])), 4),
        "device": where, "versions": device.versions(),
    }
    files.write_json(out, result)
    print(f"{result['model']} on {result['backend']}, {where['device']}: median {result['median_ms']:.1f} ms, "
          f"p90 {result['p90_ms']:.1f} ms over {len(times)} requests ({100 * result['read_right']:.1f}% read right)")
    print(f"Wrote {out}")
    return result


if __name__ == "__main__":
    main()
