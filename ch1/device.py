"""Where a number was measured: the CPU (model and the flags that decide its speed) or the GPU. Speed,
and in low precision accuracy too, differ between CPUs of one name (AVX2, AVX-512, AVX512-BF16, AMX)."""

import os
import platform

# The CPU flags that decide how fast (and, for bfloat16, how) the models train.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def cpu():
    """The CPU's name and its :data:`SPEED_FLAGS` (Linux: /proc/cpuinfo; elsewhere no flags)."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                info.setdefault(*(part.strip() for part in line.partition(":")[::2]))
    except OSError:
        pass
    present = set(info.get("flags", "").split())
    name = info.get("model name") or platform.processor() or platform.machine()
    return name, [flag for flag in SPEED_FLAGS if flag in present]


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
                return f"GPU: {tf.config.experimental.get_device_details(gpus[0]).get('device_name', gpus[0].name)}"
    except Exception:  # noqa: BLE001 - describing the device must never stop a run
        pass
    return None


def describe():
    """``{"device": "CPU: AMD EPYC (2 cores; avx2 avx512f)", "cpu": ..., "cpu_flags": [...], "cores": 2,
    "gpu": None}``: the device in words, and its parts (every results and benchmark JSON records it)."""
    gpu, (name, flags) = gpu_name(), cpu()
    words = f"CPU: {name} ({os.cpu_count()} cores; {' '.join(flags) or 'no AVX2'})"
    return {"device": gpu or words, "cpu": name, "cpu_flags": flags, "cores": os.cpu_count(), "gpu": gpu}


def versions():
    """Versions that matter for a result: Python, Keras, its backend, NumPy."""
    import keras
    import numpy as np

    found = {"python": platform.python_version(), "keras": keras.__version__, "numpy": np.__version__}
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(keras.backend.backend())
    if module:
        found[module] = __import__(module).__version__
    return found
