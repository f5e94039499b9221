"""Where a number was measured: the CPU (model and the flags that decide its speed) or the GPU.

Speed, and in low precision accuracy too, differ between CPUs of the same name: one host
has AVX2 only, another AVX-512, AVX512-BF16 or AMX. Every results and benchmark JSON
records :func:`describe` so that a figure never claims more than the machine it came from.
"""

import os
import platform

# The CPU flags that decide how fast (and, for bfloat16, how) the models train.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags():
    """The :data:`SPEED_FLAGS` this CPU has (Linux: /proc/cpuinfo; elsewhere an empty list)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in SPEED_FLAGS if flag in present]
    except OSError:
        pass
    return []


def gpu_name():
    """The accelerator the Keras backend computes on, in words, or None on the CPU."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform != "cpu":
                return f"{device.platform.upper()}: {device.device_kind}"
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return f"GPU: {torch.cuda.get_device_name(0)}"
        elif backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                return f"GPU: {details.get('device_name', gpus[0].name)}"
    except Exception:  # noqa: BLE001 - describing the device must never stop a run
        pass
    return None


def describe():
    """``{"device": "CPU: AMD EPYC (2 cores; avx2 avx512f avx512_bf16)", "cpu": ..., "cpu_flags": [...],
    "gpu": None}``: the device in words, and its parts."""
    gpu, name, flags = gpu_name(), cpu_name(), cpu_flags()
    cpu = f"CPU: {name} ({os.cpu_count()} cores; {' '.join(flags) or 'no AVX2'})"
    return {"device": gpu or cpu, "cpu": name, "cpu_flags": flags, "cores": os.cpu_count(), "gpu": gpu}


def versions():
    """Versions that matter for a result: Python, Keras, its backend, NumPy."""
    import keras
    import numpy as np

    found = {"python": platform.python_version(), "keras": keras.__version__, "numpy": np.__version__}
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(keras.backend.backend())
    if module:
        found[module] = __import__(module).__version__
    return found
