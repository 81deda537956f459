#!/usr/bin/env bash
# Plain Whisper transcription, end to end: ours (kimi-run FILE asr --json) beside faster-whisper (CTranslate2)
# and whisper.cpp (whisper-cli) on the same weights at the same precision, same clips, same threads, in one
# run. Greedy, no timestamps, no temperature fallback, no VAD, each 30 s window decoded on its own
# (faster-whisper: condition_on_previous_text=False). See scripts/bench/README.md.
#
#   CT2_PYTHON=… WHISPER_CPP_DIR=… scripts/bench/whisper_asr_bench.sh HF_WHISPER_DIR=GGML_PREFIX:CT2_PREFIX CLIP...
#
# HF_WHISPER_DIR is converted with kimi-convert --f32 / --q8; whisper.cpp reads GGML_PREFIX-{f32,q8_0}.bin and
# faster-whisper CT2_PREFIX-{f32,int8}/ (missing ones are skipped). CLIPs: any audio files (e.g. a 30 s and a 5 min
# clip; scripts/bench/README.md says how ours were made).
#
# Environment:
#   CT2_PYTHON          python with faster_whisper (no faster-whisper column without it)
#   WHISPER_CPP_DIR     whisper.cpp checkout with build/bin/whisper-cli (no whisper.cpp column without it)
#   KIMI_BENCH_DIR      where our conversions are cached (default /tmp/kimi-bench, files under asr/)
#   KIMI_BENCH_THREADS  threads for every tool (default 2); KIMI_BENCH_R runs per cell, best wall kept (default 2)
#   KIMI_BENCH_MAX_LOAD 1-minute load average above which a run waits, up to 300 s (default 1.0)
#   KIMI_BUILD          0 = use the existing release binaries
# Prints a Markdown table per clip: wall seconds, real-time factor (wall / audio), encoder seconds and the rest
# (decoder, mel, load), peak RSS, and whether the transcript equals ours (after lower-casing and dropping
# punctuation; otherwise the word edit distance). Rows also go to $KIMI_BENCH_DIR/asr/whisper_asr_bench.tsv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${KIMI_BENCH_DIR:-/tmp/kimi-bench}/asr"
THREADS="${KIMI_BENCH_THREADS:-2}"; R="${KIMI_BENCH_R:-2}"; MAX_LOAD="${KIMI_BENCH_MAX_LOAD:-1.0}"
mkdir -p "$OUT"
[ $# -ge 2 ] || { sed -n 2,24p "$0" >&2; exit 2; }
if [ "${KIMI_BUILD:-1}" != 0 ]; then (cd "$ROOT" && swift build -c release --product kimi-run >&2 && swift build -c release --product kimi-convert >&2); fi
CONVERT="$ROOT/.build/release/kimi-convert"; RUN="$ROOT/.build/release/kimi-run"
CLI="${WHISPER_CPP_DIR:-}/build/bin/whisper-cli"

wait_quiet() {
  local waited=0
  while awk -v m="$MAX_LOAD" '{ exit !($1 > m) }' /proc/loadavg && [ $waited -lt 300 ]; do sleep 10; waited=$((waited + 10)); done
}

# One run of a command: "wall_s peak_rss_mb" on the last line of $1.time, its stdout in $1.out, stderr in $1.err.
timed() {
  local tag="$1"; shift
  /usr/bin/time -f "%e %M" -o "$tag.time" "$@" > "$tag.out" 2> "$tag.err"
}

FW_SCRIPT="$OUT/fw_transcribe.py"
cat > "$FW_SCRIPT" <<'EOF'
import json, sys, time
from faster_whisper import WhisperModel
from faster_whisper.audio import decode_audio
d, ct, th, clip = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
t0 = time.perf_counter()
m = WhisperModel(d, device="cpu", compute_type=ct, cpu_threads=th)
t1 = time.perf_counter()
audio = decode_audio(clip, sampling_rate=16000)
segs, info = m.transcribe(audio, beam_size=1, best_of=1, temperature=0.0, without_timestamps=True, vad_filter=False,
                          condition_on_previous_text=False, language="en" if not m.model.is_multilingual else None)
text = "".join(s.text for s in segs)
t2 = time.perf_counter()
# Encoder alone on the same windows (faster-whisper does not report it): one encode per 30 s window.
import numpy as np, ctranslate2
enc = 0.0
for i in range(0, len(audio), 480000):
    f = m.feature_extractor(np.pad(audio[i:i + 480000], (0, max(0, 480000 - len(audio[i:i + 480000])))))[:, :3000]
    x = ctranslate2.StorageView.from_array(np.ascontiguousarray(f[None].astype(np.float32)))
    t = time.perf_counter(); m.model.encode(x, to_cpu=True); enc += time.perf_counter() - t
print(json.dumps({"text": text, "load": t1 - t0, "transcribe": t2 - t1, "encoder": enc}))
EOF

norm() { tr 'A-Z' 'a-z' | tr -c 'a-z0-9\n ' ' ' | tr -s ' ' | sed 's/^ //; s/ $//'; }
agree() {  # word edit distance between two normalized texts, "same" when 0
  python3 - "$1" "$2" <<'EOF'
import sys
a, b = sys.argv[1].split(), sys.argv[2].split()
d = list(range(len(b) + 1))
for i, x in enumerate(a, 1):
    p, d[0] = d[0], i
    for j, y in enumerate(b, 1):
        p, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, p + (x != y))
print("same" if d[-1] == 0 else f"{d[-1]} words differ")
EOF
}

arg="$1"; shift
hf="${arg%%=*}"; peers="${arg#*=}"; [ "$peers" = "$arg" ] && peers=":"
ggml="${peers%%:*}"; ct2="${peers#*:}"; name="$(basename "$hf")"
printf "clip\tmodel\tprecision\ttool\twall_s\trtf\tencoder_s\trest_s\tpeak_rss_mb\ttranscript\n" > "$OUT/whisper_asr_bench.tsv"
for clip in "$@"; do
  secs=$(python3 -c "import wave,sys; w=wave.open(sys.argv[1]); print(w.getnframes()/w.getframerate())" "$clip" 2>/dev/null || echo 0)
  echo
  echo "### $(basename "$clip") ($(printf %.1f "$secs") s), $name, $THREADS threads"
  echo
  echo "| precision | tool | wall (s) | RTF | encoder (s) | rest (s) | peak RSS (MB) | transcript vs ours |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  for row in "f32 f32 f32 float32" "q8 q8_0 int8 int8"; do
    set -- $row; prec=$1; gsuf=$2; csuf=$3; ctype=$4
    kaf="$OUT/$name-$prec.kaf"
    [ -f "$kaf" ] || "$CONVERT" --"$prec" "$hf" "$kaf" --force >/dev/null 2>&1
    tag="$OUT/run"
    # ours
    best=""; for _ in $(seq "$R"); do
      wait_quiet; timed "$tag" "$RUN" "$kaf" asr --json -t "$THREADS" "$clip"
      w=$(cut -d' ' -f1 "$tag.time"); if [ -z "$best" ] || awk -v a="$w" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$w; cp "$tag.out" "$tag.best"; rss=$(( $(cut -d' ' -f2 "$tag.time") / 1024 )); fi
    done
    ref=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['text'])" "$tag.best" | norm)
    enc=$(python3 -c "import json,sys; j=json.load(open(sys.argv[1]))['seconds']; print(f\"{j['encoder']:.3f}\")" "$tag.best")
    rest=$(awk -v w="$best" -v e="$enc" 'BEGIN{printf "%.3f", w - e}')
    line="| $prec | ours | $best | $(awk -v w="$best" -v s="$secs" 'BEGIN{printf "%.3f", w/s}') | $enc | $rest | $rss | (reference) |"
    echo "$line"; printf "%s\t%s\t%s\tours\t%s\t-\t%s\t%s\t%s\t-\n" "$(basename "$clip")" "$name" "$prec" "$best" "$enc" "$rest" "$rss" >> "$OUT/whisper_asr_bench.tsv"
    # faster-whisper
    if [ -n "${CT2_PYTHON:-}" ] && [ -d "$ct2-$csuf" ]; then
      best=""; for _ in $(seq "$R"); do
        wait_quiet; timed "$tag" "$CT2_PYTHON" "$FW_SCRIPT" "$ct2-$csuf" "$ctype" "$THREADS" "$clip"
        w=$(python3 -c "import json,sys; j=json.loads(open(sys.argv[1]).read().splitlines()[-1]); print(f\"{j['load']+j['transcribe']:.3f}\")" "$tag.out")
        if [ -z "$best" ] || awk -v a="$w" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$w; cp "$tag.out" "$tag.best"; rss=$(( $(cut -d' ' -f2 "$tag.time") / 1024 )); fi
      done
      txt=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])['text'])" "$tag.best" | norm)
      enc=$(python3 -c "import json,sys; print(f\"{json.loads(open(sys.argv[1]).read().splitlines()[-1])['encoder']:.3f}\")" "$tag.best")
      rest=$(awk -v w="$best" -v e="$enc" 'BEGIN{printf "%.3f", w - e}')
      echo "| $prec | faster-whisper | $best | $(awk -v w="$best" -v s="$secs" 'BEGIN{printf "%.3f", w/s}') | $enc | $rest | $rss | $(agree "$ref" "$txt") |"
      printf "%s\t%s\t%s\tfaster-whisper\t%s\t-\t%s\t%s\t%s\t%s\n" "$(basename "$clip")" "$name" "$prec" "$best" "$enc" "$rest" "$rss" "$(agree "$ref" "$txt")" >> "$OUT/whisper_asr_bench.tsv"
    fi
    # whisper.cpp (wall = process time; its own encode time from its timings; 16 kHz WAV input)
    if [ -x "$CLI" ] && [ -f "$ggml-$gsuf.bin" ]; then
      wav="$OUT/$(basename "$clip" | sed 's/\.[^.]*$//')-16k.wav"
      # Made anew each run: a cached copy named after the clip outlived a changed clip (whisper.cpp
      # then transcribed the old audio).
      sox "$clip" -r 16000 -c 1 -b 16 "$wav" 2>/dev/null || cp "$clip" "$wav"
      best=""; for _ in $(seq "$R"); do
        wait_quiet; timed "$tag" "$CLI" -m "$ggml-$gsuf.bin" -t "$THREADS" -bs 1 -bo 1 -nf -nt -mc 0 -l en -f "$wav"
        w=$(cut -d' ' -f1 "$tag.time"); if [ -z "$best" ] || awk -v a="$w" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$w; cp "$tag.out" "$tag.best"; cp "$tag.err" "$tag.besterr"; rss=$(( $(cut -d' ' -f2 "$tag.time") / 1024 )); fi
      done
      txt=$(tr '\n' ' ' < "$tag.best" | norm)
      enc=$(sed -nE 's/.*encode time = +([0-9.]+) ms.*/\1/p' "$tag.besterr" | awk '{printf "%.3f", $1/1000}')
      rest=$(awk -v w="$best" -v e="${enc:-0}" 'BEGIN{printf "%.3f", w - e}')
      echo "| $prec | whisper.cpp | $best | $(awk -v w="$best" -v s="$secs" 'BEGIN{printf "%.3f", w/s}') | ${enc:--} | $rest | $rss | $(agree "$ref" "$txt") |"
      printf "%s\t%s\t%s\twhisper.cpp\t%s\t-\t%s\t%s\t%s\t%s\n" "$(basename "$clip")" "$name" "$prec" "$best" "${enc:--}" "$rest" "$rss" "$(agree "$ref" "$txt")" >> "$OUT/whisper_asr_bench.tsv"
    fi
  done
done
