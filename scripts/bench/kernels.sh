#!/usr/bin/env bash
# Kernel micro-benchmarks at Kimi-Audio 7B dims (W = 18944×3584 and 3584×18944): matvec GB/s vs the
# machine's read bandwidth, prefill GFLOP/s (int8 tiles; OpenBLAS sgemm vs own tiles for float),
# ThreadPool vs DispatchQueue.concurrentPerform overhead. Release build; speed is never asserted.
#
#   scripts/bench/kernels.sh                 # q4_g32_r8,q8_g32_r8,q4_g32,q8_g32,bf16,f32 on 1 and 2 threads, T = 512
#   KIMI_BENCH_TYPES=q4_g128,f16 KIMI_BENCH_THREADS=1 KIMI_BENCH_T=128 scripts/bench/kernels.sh
#   KIMI_MARCH=native scripts/bench/kernels.sh   # AVX-512/VNNI build instead of x86-64-v3
#   KIMI_BENCH_SHAPES=3584x3584,512x3584 scripts/bench/kernels.sh   # other matrix shapes (ROWSxCOLS)
#
# Needs the `kimi-bench-kernels` executable target in Package.swift. Memory: one f32 weight is
# 272 MB, plus a 512 MiB bandwidth buffer (KIMI_BENCH_QUICK=1: 128 MiB).
set -euo pipefail
cd "$(dirname "$0")/../.."
SCRATCH="${KIMI_BENCH_SCRATCH:-.build-kernels-rel}"
if [[ "${KIMI_BUILD:-1}" != 0 ]]; then
    swift build -c release --product kimi-bench-kernels --scratch-path "$SCRATCH" >&2
fi
exec "$SCRATCH/release/kimi-bench-kernels" "$@"
