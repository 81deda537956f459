#!/usr/bin/env bash
# Speech output at full size (issue 11), on synthetic weights:
#   1. the detokenizer on a middle chunk (kimi-run bench --stage detok): DiT and vocoder seconds,
#      GFLOP/s, real-time factor, at the official 30 ODE steps and at 10;
#   2. the lock-step rate (decode steps with the MIMO branch and audio head, bench --audio-head)
#      against its memory-bandwidth bound: bytes of weights read per step ÷ the machine's read
#      bandwidth (kimi-bench-kernels, as llm_bench.sh measures it), and the text-only rate beside it;
#   3. talk on a spoken question, under /usr/bin/time: per-stage seconds, time to first audio and the
#      peak resident memory of the whole pipeline.
# There is no CPU peer for Kimi-Audio's speech output (the official pipeline needs a CUDA GPU), so
# the ratios are against the bandwidth bound and real time.
#
# Random weights rarely emit audio codes at the official sampling (temperature 0.8, top-k 10: the
# synthetic MIMO head's top ten are never codes), so step 3 samples the audio head over the whole
# vocabulary at temperature 1 (about 1 step in 10 is a code) and detokenizes in chunks of 4 codes
# with 1 of look-ahead: the first audio then comes after a few dozen steps and every component's
# weights are touched. The official-settings time to first audio is printed as an estimate from the
# measured rates (encoders + prefill + 37 steps + the first chunk's DiT and vocoder).
#
#   scripts/bench/speech_bench.sh FULL.kaf [QUESTION.wav]
#
# FULL.kaf: every component at full size, e.g.
#   python3 scripts/bench/make_synthetic_release.py --audio $D/kimi-audio-synth
#   /opt/refvenv/bin/python scripts/bench/make_synthetic_detokenizer.py $D/kimi-audio-synth
#   kimi-convert --q4 $D/kimi-audio-synth $D/kimi-full-q4.kaf
# QUESTION.wav: default, a spoken question made here with espeak-ng (about 7 s).
# Environment: KIMI_BUILD=0 skips `swift build -c release`; THREADS (2); KIMI_BENCH_R (2).
set -euo pipefail
cd "$(dirname "$0")/../.."
KAF=${1:?usage: speech_bench.sh FULL.kaf [QUESTION.wav]}
THREADS=${THREADS:-2}
R=${KIMI_BENCH_R:-2}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
say() { printf '%s\n' "$*" >&2; }
[ "${KIMI_BUILD:-1}" = 0 ] || swift build -c release >&2
BIN=.build/release
if [ $# -ge 2 ]; then
  Q=$2
else
  Q=$OUT/question.wav
  espeak-ng -w "$OUT/raw.wav" "What is the weather usually like in spring, and what should I pack for a week of hiking in the mountains near the lakes?"
  sox "$OUT/raw.wav" -r 16000 "$Q"
fi

say "memory bandwidth: kimi-bench-kernels"
BW=$(KIMI_BENCH_TYPES= KIMI_BENCH_THREADS="$THREADS" "$BIN/kimi-bench-kernels" 2>/dev/null |
  awk -v t="$THREADS" -F'|' '/Memory bandwidth/ { on = 1; next } on && $2 + 0 == t && $3 ~ /[0-9]/ { gsub(/ /, "", $3); print $3; exit }')
say "detokenizer: bench --stage detok (30 and 10 ODE steps)"
"$BIN/kimi-run" "$KAF" bench --stage detok -t "$THREADS" -r "$R" --json > "$OUT/detok30.json"
"$BIN/kimi-run" "$KAF" bench --stage detok -t "$THREADS" -r "$R" --ode-steps 10 --json > "$OUT/detok10.json"
say "lock-step: bench -n 16 --audio-head, and text only"
"$BIN/kimi-run" "$KAF" bench -p 0 -n 16 -t "$THREADS" -r "$R" --audio-head --json > "$OUT/step.json"
"$BIN/kimi-run" "$KAF" bench -p 0 -n 16 -t "$THREADS" -r "$R" --json > "$OUT/text.json"
say "talk: $Q"
/usr/bin/time -v "$BIN/kimi-run" "$KAF" talk "$Q" -o "$OUT/reply.wav" --json -t "$THREADS" --max-tokens 80 \
  --audio-top-k 0 --audio-temperature 1 --chunk-tokens 4 --lookahead 1 > "$OUT/talk.json" 2> "$OUT/talk.time"

python3 - "$OUT" "${BW:-0}" <<'EOF'
import json, re, sys
out, bw = sys.argv[1], float(sys.argv[2])
j = lambda n: json.load(open(f"{out}/{n}.json"))
d30, d10, step, text, talk = j("detok30"), j("detok10"), j("step"), j("text"), j("talk")
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{out}/talk.time").read()).group(1)) * 1024
print("| measurement | value |\n| --- | --- |")
for name, d in (("30", d30), ("10", d10)):
    print(f"| detokenizer, {name} ODE steps, chunk of {d['chunk_codes']} codes ({d['audio_seconds']:.2f} s) | DiT {d['dit_seconds']:.2f} s "
          f"({d['dit_gflops']:.0f} GFLOP, {d['dit_gflops'] / d['dit_seconds']:.0f} GFLOP/s), vocoder {d['vocoder_seconds']:.2f} s "
          f"({d['vocoder_gflops']:.0f} GFLOP, {d['vocoder_gflops'] / d['vocoder_seconds']:.0f} GFLOP/s): real-time factor {d['rtf']:.2f} |")
gib = 2 ** 30
for name, s, note in (("lock-step (MIMO + audio head)", step, "; real-time speech needs 12.5"), ("text-only decode", text, "")):
    bound = bw * 1e9 / s["step_read_bytes"] if bw else float("nan")
    print(f"| {name} | {s['tg_tokens_per_second']:.2f} steps/s; {s['step_read_bytes'] / gib:.2f} GiB read per step at "
          f"{bw:.1f} GB/s → bound {bound:.2f} steps/s ({s['tg_tokens_per_second'] / bound:.0%} of it){note} |")
st = talk["seconds"]
print(f"| talk, {talk['input_seconds']:.1f} s question, {talk['steps']} steps (chunks of 4 codes) | first audio {talk['first_audio_seconds']:.1f} s; "
      + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(st.items())) + f"; peak RSS {rss / gib:.2f} GiB |")
steps = step["tg_tokens_per_second"]
first = sum(st[k] for k in ("mel", "whisper", "vq", "prefill")) + 37 / steps
per_frame = d30["dit_seconds"] / 168  # the middle chunk's ODE covers 168 frames
est = first + per_frame * 120 + d30["vocoder_seconds"] * 72 / d30["vocoder_frames"]
print(f"| talk at the official settings (estimate from the rates above) | first audio ≈ {est:.0f} s (encoders + prefill + 37 steps + the first chunk's DiT over 120 frames and vocoder) |")
EOF
