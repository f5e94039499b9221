"""Keep TensorFlow's start-up notices off stderr, so that a run prints what the book shows (CUDA probes
on a machine without a GPU, oneDNN's notice on CPUs with AVX-512 or AMX, written to file descriptor 2
before TensorFlow's log level applies); and make a closed stdout or a reader that goes away harmless."""

import importlib.util
import os
import sys
import tempfile

STARTUP_NOISE = (  # lines TensorFlow writes to file descriptor 2 while it starts (all informational)
    "absl::InitializeLog", "cudart_stub.cc", "cuda_platform.cc", "cuda_dnn.cc", "cuda_fft.cc", "cuda_blas.cc",
    "cuda_executor.cc", "Unable to register cu", "port.cc:",  # port.cc: "oneDNN custom operations are on"
    "cpu_feature_guard.cc", "rebuild TensorFlow with the appropriate compiler flags",
    "computation_placer.cc",  # TensorFlow 2.19 (the notebooks' older stack): "computation placer already registered"
)


def is_noise(line):
    return any(noise in line for noise in STARTUP_NOISE)


def _import_keras():
    try:
        import keras  # noqa: F401
    except ImportError as exc:  # its backend (TensorFlow unless KERAS_BACKEND or keras.json say otherwise) missing
        from ch1.cli import fail

        fail(f"{exc}: pip install -r requirements.txt (TensorFlow), or requirements-backends.txt for "
             "KERAS_BACKEND=jax or torch")
    if importlib.util.find_spec("tensorflow") is not None:  # keras.utils.set_random_seed imports it anyway:
        import tensorflow  # now, notices filtered, and its look for devices too ("failed call to cuInit")

        tensorflow.config.list_physical_devices()


class _PipeSafe:
    """stdout that outlives its reader (``| head``): once the pipe breaks, output goes to /dev/null and
    the command carries on."""

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
    """A closed descriptor 0, 1 or 2 (``>&-``) gets /dev/null, so no file opened later takes its number;
    stdout survives a broken pipe (:class:`_PipeSafe`)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
    sys.stdout = sys.stdout or open(os.devnull, "w")
    sys.stderr = sys.stderr or open(os.devnull, "w")
    if not isinstance(sys.stdout, _PipeSafe) and hasattr(sys.stdout, "fileno"):
        sys.stdout = _PipeSafe(sys.stdout)


def quiet_startup():
    """Import Keras (and TensorFlow) with their start-up notices filtered from stderr; call it once, before
    ``import keras`` (later calls do nothing). Sets ``TF_CPP_MIN_LOG_LEVEL=3`` unless the shell set it."""
    if getattr(quiet_startup, "done", False):
        return
    quiet_startup.done = True
    standard_streams()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
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
            sys.stderr.writelines(line for line in log.read().decode(errors="replace").splitlines(True)
                                  if not is_noise(line))
