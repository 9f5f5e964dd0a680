#!/usr/bin/env bash
# gpu_checks.sh - build and run the GPU checks of the CUDA backend in one go,
# on a machine with an NVIDIA GPU (see bench/results/README.md):
#   1. tests/cuda/test_cuda_kernels: every CUDA kernel against the CPU kernels;
#   2. bench/cuda/bench_cuda [n_seq]: GB/s vs D2D copy, TFLOP/s vs bare cuBLAS,
#      OPT-175B per-block times and the 96-block projection;
#   3. (CMake build only) the pipeline on the generated opt-125m-shaped model
#      with --backend cuda against --backend cpu, then cpu-staged, compared by
#      bench/cuda/compare_backends.py (INT8 codes, scales, metrics).
#
#   bash bench/cuda/gpu_checks.sh [--direct] [n_seq]
#
# Build: the project's CMake build (build-gpu/, -DAWEQ_CUDA=ON) when its
# dependencies (MPI, zstd, cmocka, OpenBLAS, jansson) are installed; else, or
# with --direct, a direct nvcc/gcc build of just the kernels, the test and the
# bench (build-gpu/direct/), finding NCCL in the CUDA toolkit or in Python's
# nvidia-nccl package, and BLAS through pkg-config, or else the naive
# stand-in tests/cuda/naive_blas (AWEQ_NAIVE_BLAS=1 forces it).
# Logs (at most 5 files) go to $OUT when set (the device tool), else
# build-gpu/logs. Exit 0 only when the test passed and the bench ran.
set -u -o pipefail
cd "$(dirname "$0")/../.." || exit 2
SRC=$PWD
B=${AWEQ_GPU_BUILD:-$SRC/build-gpu}
LOG=${OUT:-$B/logs}
mkdir -p "$B" "$LOG"
direct=0
if [ "${1:-}" = --direct ]; then direct=1; shift; fi
NSEQ=${1:-2}
JOBS=$(nproc 2>/dev/null || echo 2)
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$NVCC")")}

{
    date
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 || true
    "$NVCC" --version | tail -2
} >"$LOG/device.txt" 2>&1
cat "$LOG/device.txt"

TEST=$B/tests/test_cuda_kernels
BENCH=$B/bench/cuda/bench_cuda
built=0
if [ $direct = 0 ]; then
    echo "== CMake build ($B)"
    if cmake -S "$SRC" -B "$B" -DAWEQ_CUDA=ON -DCMAKE_BUILD_TYPE=Release >"$LOG/build.txt" 2>&1 &&
        cmake --build "$B" -j"$JOBS" --target test_cuda_kernels bench_cuda >>"$LOG/build.txt" 2>&1; then
        built=1
    else
        echo "CMake build not possible here (tail of $LOG/build.txt below); direct build instead"
        tail -5 "$LOG/build.txt"
    fi
fi

if [ $built = 0 ]; then
    D=$B/direct
    mkdir -p "$D"
    echo "== direct build ($D)" | tee -a "$LOG/build.txt"
    # target: the GPU present, else both of the project's targets
    cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
    if [ -n "$cc" ]; then ARCH=(-gencode "arch=compute_$cc,code=sm_$cc")
    else ARCH=(-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90); fi
    # NCCL: the toolkit's, or the pip package's
    NCCL_INC=$CUDA_HOME/include
    NCCL_LIB=$CUDA_HOME/lib64
    if [ ! -f "$NCCL_INC/nccl.h" ]; then
        p=$(python3 -c 'import nvidia.nccl as m, os; print(list(m.__path__)[0])' 2>/dev/null || true)
        NCCL_INC=$p/include NCCL_LIB=$p/lib
    fi
    [ -f "$NCCL_INC/nccl.h" ] || { echo "no nccl.h found (toolkit or python nvidia-nccl)"; exit 2; }
    NCCL_SO=$(ls "$NCCL_LIB"/libnccl.so* 2>/dev/null | head -1)
    # BLAS for the CPU reference
    BLAS_C=() BLAS_L=() EXTRA_C=()
    if [ "${AWEQ_NAIVE_BLAS:-0}" != 1 ] && pkg-config --exists openblas 2>/dev/null; then
        read -r -a BLAS_C <<<"$(pkg-config --cflags openblas)"
        read -r -a BLAS_L <<<"$(pkg-config --libs openblas)"
    else
        echo "BLAS: naive stand-in (tests/cuda/naive_blas)" | tee -a "$LOG/build.txt"
        BLAS_C=(-I"$SRC/tests/cuda/naive_blas")
        EXTRA_C=("$SRC/tests/cuda/naive_blas/cblas_naive.c")
    fi
    INC=(-I"$SRC/kernels" -I"$SRC/common")
    NVFLAGS=(-O2 -std=c++17 "${ARCH[@]}" "${INC[@]}" -I"$NCCL_INC" -Xcompiler=-Wall,-Wextra)
    CFLAGS=(-O3 -std=c11 -fno-math-errno -D_GNU_SOURCE -Wall -Wextra "${INC[@]}" "${BLAS_C[@]}")
    pids=() lib=()
    for f in "$SRC"/kernels/cuda/*.cu; do
        o=$D/$(basename "$f").o
        "$NVCC" "${NVFLAGS[@]}" -c "$f" -o "$o" >>"$LOG/build.txt" 2>&1 &
        pids+=($!) lib+=("$o")
    done
    for f in "$SRC"/kernels/aw_kernels.c "$SRC"/common/aw_status.c "$SRC"/common/aw_dtype.c \
        "${EXTRA_C[@]}"; do
        o=$D/$(basename "$f").o
        gcc "${CFLAGS[@]}" -c "$f" -o "$o" >>"$LOG/build.txt" 2>&1 &
        pids+=($!) lib+=("$o")
    done
    gcc "${CFLAGS[@]}" -c "$SRC/tests/cuda/test_cuda_kernels.c" -o "$D/test.o" >>"$LOG/build.txt" 2>&1 &
    pids+=($!)
    "$NVCC" "${NVFLAGS[@]}" -c "$SRC/bench/cuda/bench_cuda.cu" -o "$D/bench.o" >>"$LOG/build.txt" 2>&1 &
    pids+=($!)
    fail=0
    for p in "${pids[@]}"; do wait "$p" || fail=1; done
    LINK=(-lcublas -lcublasLt "$NCCL_SO" -Xlinker -rpath="$NCCL_LIB" "${BLAS_L[@]}" -lm)
    if [ $fail = 1 ] ||
        ! "$NVCC" "${ARCH[@]}" -o "$D/test_cuda_kernels" "$D/test.o" "${lib[@]}" "${LINK[@]}" >>"$LOG/build.txt" 2>&1 ||
        ! "$NVCC" "${ARCH[@]}" -o "$D/bench_cuda" "$D/bench.o" "${lib[@]}" "${LINK[@]}" >>"$LOG/build.txt" 2>&1; then
        echo "direct build failed:"
        tail -20 "$LOG/build.txt"
        exit 2
    fi
    TEST=$D/test_cuda_kernels
    BENCH=$D/bench_cuda
fi

echo "== $TEST"
"$TEST" 2>&1 | tee "$LOG/test_cuda_kernels.txt"
rc_t=$?
echo "== $BENCH $NSEQ"
"$BENCH" "$NSEQ" 2>&1 | tee "$LOG/bench_cuda.txt"
rc_b=$?
rc_p=0
if [ $built = 1 ]; then
    P=$LOG/pipeline.txt
    W=$B/pipeline-check
    rm -rf "$W" && mkdir -p "$W"
    {
        echo "== pipeline: opt-125m shape, --backend cuda against --backend cpu"
        cmake --build "$B" -j"$JOBS" --target aweq-dist aweq_cuda >/dev/null &&
            "$B/aweq-dist" synth --shape opt-125m --out "$W/m" --quiet &&
            /usr/bin/time -f "cpu: %e s" "$B/aweq-dist" --model "$W/m" --out "$W/q-cpu" --backend cpu --quiet &&
            /usr/bin/time -f "cuda: %e s" "$B/aweq-dist" --model "$W/m" --out "$W/q-cuda" --backend cuda --quiet &&
            python3 "$SRC/bench/cuda/compare_backends.py" "$W/q-cpu" "$W/q-cuda"
    } >"$P" 2>&1
    rc_p=$?
    cat "$P"
fi
echo "== test_cuda_kernels exit $rc_t, bench_cuda exit $rc_b (77: no device), pipeline exit $rc_p"
[ $rc_t = 0 ] && [ $rc_b = 0 ] && [ $rc_p = 0 ]
