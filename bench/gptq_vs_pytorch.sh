#!/usr/bin/env bash
# GPTQ of one OPT-125m-shaped block: aw_k_gptq (bench_gptq) against a PyTorch
# fp32 implementation of the same algorithm (bench/gptq_vs_pytorch.py),
# alternating A/B at 1 and 2 threads; writes bench/results/gptq-vs-pytorch.md.
# usage: bench/gptq_vs_pytorch.sh [BUILD_DIR] [gptq_vs_pytorch.py options...]
#   PYTHON=/path/to/python   an interpreter with torch and numpy (default:
#                            /work/venv/bin/python if present, else python3)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build}
[ $# -gt 0 ] && shift
if [ -z "${PYTHON:-}" ]; then
    if [ -x /work/venv/bin/python ]; then PYTHON=/work/venv/bin/python; else PYTHON=python3; fi
fi
cmake --build "$B" --target bench_gptq >/dev/null
exec "$PYTHON" "$ROOT/bench/gptq_vs_pytorch.py" --bench "$B/bench/bench_gptq" --work "$B/gptq-vs-pytorch" \
    --cmdline "bash bench/gptq_vs_pytorch.sh $B${*:+ $*}" "$@"
