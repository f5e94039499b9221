#!/usr/bin/env bash
# The training benchmark on a GPU in one command, for a machine with JAX but no TensorFlow and no internet.
# Needs, in the project folder (both git-ignored): .whl/ with the keras, namex and optree wheels, and
# .device/mnist.npz. Prepare them on a machine with internet:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0
#   mkdir -p .device && cp /path/to/mnist.npz .device/
# Then: bash benchmarks/gpu.sh [extra bench_train flags]   (about 3 minutes on one H100/H200)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site KERAS_BACKEND=jax PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -m benchmarks.bench_train --paths plain bfloat16 --epochs 10 --repeats 3 \
    --data .device/mnist.npz --json "${OUT:-outputs}/bench_train_gpu.json" "$@"
