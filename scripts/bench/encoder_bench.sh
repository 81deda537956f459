#!/usr/bin/env bash
# Audio-encoder speed: one 30 s window through the Whisper encoder, ours (kimi-run bench --stage whisper)
# beside CTranslate2 and whisper.cpp on the same weights at the same precision, in one run; and the
# GLM-4-Voice VQ tokenizer on 30 s (ours only: no peer runs it). See scripts/bench/README.md.
#
#   CT2_PYTHON=… WHISPER_ENCODE_BENCH=… scripts/bench/encoder_bench.sh HF_WHISPER_DIR=ggml:CT2 ...
#
# Each argument names one model: an HF Whisper folder (ours converts it with kimi-convert --f32 / --q8),
# then, after '=', the peers' conversions of the same weights as a prefix: PREFIX-{f32,f16,q8_0}.bin for
# whisper.cpp (missing ones are skipped) and PREFIX-{f32,int8}/ for CTranslate2, separated by ':'.
# Example (the folders scripts/real/ and the peer notes make):
#   scripts/bench/encoder_bench.sh \
#     /tmp/kimi-real/whisper-tiny.en=/tmp/kimi-real/ggml/ggml-tiny.en:/tmp/kimi-real/ct2/tiny.en \
#     /tmp/kimi-bench/whisper-large-v3-synth=/tmp/kimi-bench/ggml/ggml-large-v3-synth:/tmp/kimi-bench/ct2/large-v3-synth
#
# Environment:
#   CT2_PYTHON            python with ctranslate2 (no CTranslate2 column without it)
#   WHISPER_ENCODE_BENCH  a program on whisper.cpp's library: `PROG MODEL THREADS N` loads MODEL, calls
#                         whisper_set_mel with a 3000-frame mel and whisper_encode once to warm up, then N
#                         times, and prints "best=X ms" (whisper-bench also runs 4,600 decoder steps, which
#                         on large-v3 here did not finish in 13 min; see scripts/bench/README.md)
#   KIMI_VQ_KAF           a .kaf with a vq component (e.g. the full-size synthetic release converted
#                         with --components llm,whisper,vq): its VQ tokenizer is timed on 30 s
#   KIMI_BENCH_DIR        where our conversions are cached (default /tmp/kimi-bench/encoder)
#   KIMI_BENCH_THREADS    threads for every tool (default 2); KIMI_BENCH_R repetitions, best kept (3)
#   KIMI_BENCH_MAX_LOAD   1-minute load average above which a measurement waits, up to 300 s (1.0)
#   KIMI_BUILD            0 = use the existing release binaries
# Prints a Markdown table (seconds per window, ratio ours / fastest peer at that precision) and writes
# $KIMI_BENCH_DIR/encoder_bench.tsv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${KIMI_BENCH_DIR:-/tmp/kimi-bench}/encoder"
THREADS="${KIMI_BENCH_THREADS:-2}"; R="${KIMI_BENCH_R:-3}"; MAX_LOAD="${KIMI_BENCH_MAX_LOAD:-1.0}"
mkdir -p "$OUT"
say() { echo "[encoder_bench] $*" >&2; }
[ $# -ge 1 ] || { sed -n 2,27p "$0" >&2; exit 2; }
if [ "${KIMI_BUILD:-1}" != 0 ]; then (cd "$ROOT" && swift build -c release --product kimi-run >&2 && swift build -c release --product kimi-convert >&2); fi
CONVERT="$ROOT/.build/release/kimi-convert"; RUN="$ROOT/.build/release/kimi-run"

wait_quiet() {
  local waited=0
  while awk -v m="$MAX_LOAD" '{ exit !($1 > m) }' /proc/loadavg && [ $waited -lt 300 ]; do sleep 10; waited=$((waited + 10)); done
  cut -d' ' -f1 /proc/loadavg
}

CT2_SCRIPT="$OUT/ct2_encode.py"
cat > "$CT2_SCRIPT" <<'EOF'
import sys, time, numpy as np, ctranslate2
d, ct, th, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
m = ctranslate2.models.Whisper(d, device="cpu", compute_type=ct, intra_threads=th)
x = ctranslate2.StorageView.from_array(np.random.default_rng(0).standard_normal((1, m.n_mels, 3000)).astype(np.float32) * 0.5)
m.encode(x, to_cpu=True)
best = min((lambda t: (m.encode(x, to_cpu=True), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(n))
print(f"{best:.4f}")
EOF

printf "model\tprecision\tours_s\twhisper_cpp_s\tct2_s\tratio_vs_fastest_peer\tload\n" > "$OUT/encoder_bench.tsv"
echo "| model | precision | ours (s) | whisper.cpp (s) | CTranslate2 (s) | ours / fastest peer | load |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for arg in "$@"; do
  hf="${arg%%=*}"; peers="${arg#*=}"; [ "$peers" = "$arg" ] && peers=":"
  ggml="${peers%%:*}"; ct2="${peers#*:}"
  name="$(basename "$hf")"
  # precision: ours (kimi-convert flag) / whisper.cpp suffix / CTranslate2 suffix and compute type
  for row in "f32 f32 f32 float32" "f16 f16 - -" "q8 q8_0 int8 int8"; do
    set -- $row; prec=$1; gsuf=$2; csuf=$3; ctype=$4
    kaf="$OUT/$name-$prec.kaf"
    [ -f "$kaf" ] || "$CONVERT" --"$prec" "$hf" "$kaf" --force >/dev/null 2>&1
    load=$(wait_quiet)
    ours=$("$RUN" "$kaf" bench --stage whisper -t "$THREADS" -r "$R" --json | sed -E 's/.*"encoder_seconds":([0-9.e+-]+).*/\1/' | awk '{ printf "%.4f", $1 }')
    wcpp="-"; c2="-"
    if [ -n "${WHISPER_ENCODE_BENCH:-}" ] && [ -n "$ggml" ] && [ -f "$ggml-$gsuf.bin" ]; then
      wcpp=$("$WHISPER_ENCODE_BENCH" "$ggml-$gsuf.bin" "$THREADS" "$R" 2>/dev/null | sed -nE 's/.*best=([0-9.]+) ms.*/\1/p' | awk '{ printf "%.4f", $1 / 1000 }')
      [ -n "$wcpp" ] || wcpp="-"
    fi
    if [ -n "${CT2_PYTHON:-}" ] && [ -n "$ct2" ] && [ "$csuf" != - ] && [ -d "$ct2-$csuf" ]; then
      c2=$("$CT2_PYTHON" "$CT2_SCRIPT" "$ct2-$csuf" "$ctype" "$THREADS" "$R" 2>/dev/null | tail -1)
    fi
    ratio=$(awk -v o="$ours" -v a="$wcpp" -v b="$c2" 'BEGIN { f = 0; if (a != "-") f = a; if (b != "-" && (f == 0 || b < f)) f = b; if (f > 0) printf "%.2f", o / f; else print "-" }')
    echo "| $name | $prec | $ours | $wcpp | $c2 | $ratio | $load |"
    printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$name" "$prec" "$ours" "$wcpp" "$c2" "$ratio" "$load" >> "$OUT/encoder_bench.tsv"
  done
done
if [ -n "${KIMI_VQ_KAF:-}" ]; then
  load=$(wait_quiet)
  vq=$("$RUN" "$KIMI_VQ_KAF" bench --stage vq -t "$THREADS" -r "$R" --json | sed -E 's/.*"vq_seconds":([0-9.e+-]+).*/\1/' | awk '{ printf "%.3f", $1 }')
  echo
  echo "VQ tokenizer ($(basename "$KIMI_VQ_KAF")), 30 s of audio: $vq s (load $load)"
  printf "vq:%s\t-\t%s\t-\t-\t-\t%s\n" "$(basename "$KIMI_VQ_KAF")" "$vq" "$load" >> "$OUT/encoder_bench.tsv"
fi
