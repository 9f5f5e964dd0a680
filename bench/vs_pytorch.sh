#!/usr/bin/env bash
# aweq-dist against PyTorch/transformers on the same work (bench/vs_pytorch.py).
# usage: bench/vs_pytorch.sh [BUILD_DIR] [vs_pytorch.py options...]
#   PYTHON=/path/to/python   use that interpreter (torch, transformers, safetensors,
#                            optionally compressed-tensors) instead of build/venv
# Without PYTHON, creates build/venv (python3 -m venv) and pip installs torch,
# transformers, safetensors and compressed-tensors from PyPI (torch's PyPI wheel
# pulls its CUDA libraries too: a few GB; the CPU index is not reachable here).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build}
[ $# -gt 0 ] && shift
if [ -z "${PYTHON:-}" ]; then
    V=$ROOT/build/venv
    if [ ! -x "$V/bin/python" ]; then
        python3 -m venv "$V"
        "$V/bin/pip" install --quiet --upgrade pip
        "$V/bin/pip" install --quiet torch transformers safetensors compressed-tensors numpy
    fi
    PYTHON=$V/bin/python
fi
"$PYTHON" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
exec "$PYTHON" "$ROOT/bench/vs_pytorch.py" --aweq "$B/aweq-dist" \
    --cmdline "PYTHON=${PYTHON} bash bench/vs_pytorch.sh $B${*:+ $*}" "$@"
