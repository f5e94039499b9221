"""Keep TensorFlow's start-up notices off stderr, so that a run prints what the book shows.

When Keras loads TensorFlow, TensorFlow's C++ side writes straight to file descriptor 2
before its own log level applies: CUDA probes on a machine without a GPU, and on CPUs with
AVX-512 or AMX a oneDNN notice (``port.cc ... oneDNN custom operations are on``). Entry
points call :func:`quiet_startup` once, before ``import keras``; it imports Keras with
those known lines filtered out and lets anything else through. oneDNN itself stays on
(turning it off would change the arithmetic). The filter holds whatever the shell sets
``TF_CPP_MIN_LOG_LEVEL`` to; that level still rules what TensorFlow logs once it has started,
but for one line: where the shell lets TensorFlow's errors through (a level of 0 to 2),
training under ``--seed`` (which makes TensorFlow's ops deterministic) logs a spurious
``node_def_util.cc ... NodeDef mentions attribute use_unbounded_threadpool`` at error level
from TensorFlow's own tf.data rewrite. For those shells :class:`_StderrFilter` keeps that one
line off stderr for the whole run (and :func:`release_stderr` hands stderr back at the end).
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

# Lines TensorFlow writes to file descriptor 2 at any time, while training (all spurious).
RUN_NOISE = (
    # TensorFlow 2.21's deterministic tf.data rewrite copies an attribute MapDataset lacks (harmless).
    "NodeDef mentions attribute use_unbounded_threadpool which is not in the op definition",
)

_done = False
_filter = None


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


def is_run_noise(line):
    return any(noise in line for noise in RUN_NOISE)


class _StderrFilter:
    """File descriptor 2 made a pipe whose reader, a thread, writes what it reads to the real stderr
    but for the lines of :data:`RUN_NOISE`. Lines pass whole, at once (a piece with no newline
    after 50 ms of quiet); children inherit the pipe and are filtered too. :meth:`release` puts the
    real stderr back on file descriptor 2 and passes on what the pipe still holds (at exit, and
    before a signal ends the command). What the pipe holds when the process is killed outright
    (SIGKILL, a crash) is lost; a crash report from faulthandler goes to the real stderr."""

    def __init__(self):
        import atexit
        import faulthandler
        import threading

        sys.stderr.flush()
        self._real = os.dup(2)
        self._read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._closing = False
        self._broken = False
        if faulthandler.is_enabled():
            self._crash_file = os.fdopen(os.dup(self._real), "w")
            faulthandler.enable(file=self._crash_file, all_threads=True)
        self._thread = threading.Thread(target=self._forward, name="stderr-filter", daemon=True)
        self._thread.start()
        atexit.register(self.release)

    def _write(self, data):
        while data and not self._broken:
            try:
                data = data[os.write(self._real, data):]
            except InterruptedError:
                continue
            except OSError:  # the real stderr's reader went away: drop the rest, as _PipeSafe does stdout
                self._broken = True

    def _forward(self):
        try:
            self._filter_lines()
        except BaseException:  # never swallow stderr: hand the real one back to the process
            os.dup2(self._real, 2)
            raise

    def _filter_lines(self):
        import select

        pending = b""
        while True:
            # Read before the wait: once release() has begun, all this process wrote is in the pipe, so
            # a wait that then finds the pipe empty is the end. (Read after it, a release begun during
            # the wait would end the thread with the last lines still in the pipe: lost.)
            closing = self._closing
            readable, _, _ = select.select([self._read], [], [], 0.05)
            if not readable:
                if pending:
                    self._write(pending)  # a piece with no newline, quiet since: it is not TensorFlow's
                    pending = b""
                if closing:
                    return
                continue
            data = os.read(self._read, 65536)
            if not data:  # every writer closed
                self._write(pending)
                return
            *lines, pending = (pending + data).split(b"\n")
            kept = [line + b"\n" for line in lines if not is_run_noise(line.decode(errors="replace"))]
            self._write(b"".join(kept))

    def release(self):
        """The real stderr back on file descriptor 2, once everything written so far has passed."""
        if self._closing:
            return
        try:
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - a stderr closed or replaced: nothing to flush
            pass
        os.dup2(self._real, 2)  # this process no longer writes to the pipe (children may, a while)
        self._closing = True
        self._thread.join(timeout=2)


def release_stderr():
    """Hand the real stderr back (see :class:`_StderrFilter`); does nothing where there is no filter.
    :mod:`ch1.cli` calls it before a signal ends the command (at exit, the filter releases itself)."""
    if _filter is not None:
        _filter.release()


def _filter_run_noise():
    """Install :class:`_StderrFilter` where the shell lets TensorFlow's errors through, for the
    TensorFlow backend (the only one whose training logs the line), on POSIX systems."""
    global _filter
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
    except ValueError:
        level = 0  # TensorFlow reads a level it cannot parse as 0: everything
    if level >= 3 or os.name != "posix" or configured_backend() != "tensorflow" or "tensorflow" not in sys.modules:
        return  # (select() reads no pipe on Windows)
    _filter = _StderrFilter()


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
        _filter_run_noise()
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
    _filter_run_noise()
