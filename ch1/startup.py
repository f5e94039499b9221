"""Keep TensorFlow's start-up notices off stderr, so that a run prints what the book shows.

When Keras loads TensorFlow, TensorFlow's C++ side writes straight to file descriptor 2
before its own log level applies: CUDA probes on a machine without a GPU, and on CPUs with
AVX-512 or AMX a oneDNN notice (``port.cc ... oneDNN custom operations are on``). Entry
points call :func:`quiet_startup` once, before ``import keras``; it imports Keras with
those known lines filtered out and lets anything else through. oneDNN itself stays on
(turning it off would change the arithmetic). The filter holds whatever the shell sets
``TF_CPP_MIN_LOG_LEVEL`` to; that level still rules what TensorFlow logs once it has started.
"""

import importlib.util
import json
import os
import sys
import tempfile

# Lines TensorFlow writes to file descriptor 2 while it starts (all informational).
STARTUP_NOISE = (
    "absl::InitializeLog",  # "WARNING: All log messages before absl::InitializeLog() ..."
    "cudart_stub.cc", "cuda_platform.cc", "cuda_dnn.cc", "cuda_fft.cc", "cuda_blas.cc", "cuda_executor.cc",
    "Unable to register cu",
    "port.cc:",  # "oneDNN custom operations are on ..." (CPUs with AVX-512 or AMX)
    "cpu_feature_guard.cc", "rebuild TensorFlow with the appropriate compiler flags",
)

_done = False


def configured_backend():
    """The backend Keras will use: $KERAS_BACKEND, else keras.json's, else TensorFlow."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "keras.json")
    try:
        with open(config) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def is_noise(line):
    return any(noise in line for noise in STARTUP_NOISE)


def _import_keras():
    if configured_backend() == "tensorflow" and importlib.util.find_spec("tensorflow") is None:
        # Keras' default backend is TensorFlow; without it `import keras` fails deep inside.
        print(f"{os.path.basename(sys.argv[0] or 'python')}: error: TensorFlow is not installed: "
              "pip install -r requirements.txt, or choose another backend with KERAS_BACKEND=jax "
              "(or torch)", file=sys.stderr)
        raise SystemExit(2)
    import keras  # noqa: F401

    # keras.utils.set_random_seed imports TensorFlow too, whatever the backend, where it is installed:
    # load it now, while its notices are filtered, and let it look for its devices now too: on a host
    # with CUDA libraries but no GPU that look writes "failed call to cuInit", at error level.
    if importlib.util.find_spec("tensorflow") is not None:
        import tensorflow

        tensorflow.config.list_physical_devices()


class _PipeSafe:
    """stdout that outlives its reader (``| head``): once the pipe breaks, what is written goes to
    /dev/null and the command carries on, so long work is never lost to a closed pipe."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def standard_streams():
    """Make a closed stdout or stderr (``>&-``) and a reader that goes away (``| head``) harmless.

    A descriptor 0, 1 or 2 that is closed gets /dev/null, so no file the command opens later takes
    its number (and the command's output never lands in it) and printing does nothing. stdout
    survives a broken pipe (:class:`_PipeSafe`).
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")
    if not isinstance(sys.stdout, _PipeSafe) and hasattr(sys.stdout, "fileno"):
        sys.stdout = _PipeSafe(sys.stdout)


def quiet_startup():
    """Import Keras (and TensorFlow) with their known start-up notices filtered from stderr.

    Call it once, before ``import keras``; later calls do nothing. Sets
    ``TF_CPP_MIN_LOG_LEVEL=3`` (TensorFlow's later C++ log: fatal errors only) unless the shell set it.
    """
    global _done
    if _done:
        return
    _done = True
    standard_streams()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "keras" in sys.modules:
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
                if not is_noise(line):
                    sys.stderr.write(line)
