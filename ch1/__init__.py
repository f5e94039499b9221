"""Plumbing shared by the Chapter 1 listings: data, command line, outputs.

Import it before ``keras``: it keeps TensorFlow's start-up chatter (CUDA probes on a
machine without a GPU, C++ log lines) out of the way, so that a run prints what the
book shows: the summary, the progress bar and the test accuracy. Set
``TF_CPP_MIN_LOG_LEVEL=0`` to see TensorFlow's own log again.
"""

import importlib.util
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ log: fatal errors only

# Lines TensorFlow writes straight to file descriptor 2 while it looks for a GPU.
_STARTUP_NOISE = ("absl::InitializeLog", "cudart_stub.cc", "cuda_platform.cc", "cuda_dnn.cc",
                  "cuda_fft.cc", "cuda_blas.cc", "Unable to register cu")


def _configured_backend():
    """The backend Keras will use: $KERAS_BACKEND, else keras.json's, else TensorFlow."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "keras.json")
    try:
        with open(config) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def _import_keras():
    if _configured_backend() == "tensorflow" and importlib.util.find_spec("tensorflow") is None:
        # Keras' default backend is TensorFlow; without it `import keras` fails deep inside.
        print(f"{os.path.basename(sys.argv[0] or 'python')}: error: TensorFlow is not installed: "
              "pip install -r requirements.txt, or choose another backend with KERAS_BACKEND=jax "
              "(or torch)", file=sys.stderr)
        raise SystemExit(2)
    import keras  # noqa: F401

    # keras.utils.set_random_seed imports TensorFlow too, whatever the backend, where it is installed.
    if importlib.util.find_spec("tensorflow") is not None:
        import tensorflow  # noqa: F401


def _import_keras_quietly():
    """Import keras (and TensorFlow) with the known start-up noise filtered out."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        _import_keras()
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            _import_keras()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            for line in log.read().decode(errors="replace").splitlines(keepends=True):
                if not any(noise in line for noise in _STARTUP_NOISE):
                    sys.stderr.write(line)


_import_keras_quietly()

from ch1.data import DataError, load_mnist  # noqa: E402
from ch1.run import Run, fail, load_data, parse_args  # noqa: E402
from ch1.train import fit  # noqa: E402

__all__ = ["DataError", "Run", "fail", "fit", "load_data", "load_mnist", "parse_args"]
