#!/usr/bin/env bash
# KL divergence of quantized weights against the float reference, measured by two tools on the same
# text: kimi-parity (text head, formats/PARITY.md) and llama.cpp's `llama-perplexity --kl-divergence`.
# Both score windows of 512 tokens, the second half of each (255 positions per window).
#
#   LLAMA_CPP_BIN=/path/to/llama.cpp/build/bin scripts/bench/kl_vs_llamacpp.sh HF_FOLDER [--text FILE]
#
# HF_FOLDER   a Hugging Face Qwen2 folder both tools accept (e.g. scripts/real/prepare_qwen.py's
#             qwen2.5-coder-0.5b-instruct/).
# --text FILE the UTF-8 text (default: kimi-parity's built-in corpus, extracted from
#             runtime/Parity/ParityDefaults.swift exactly as Swift reads the multi-line literal).
#
# Steps: llama.cpp: convert_hf_to_gguf.py --outtype f16, llama-quantize Q8_0 / Q4_0 (and Q4_0 with
# --token-embedding-type q8_0, the like-for-like row: kimi-convert keeps embeddings at >= 8 bits),
# llama-perplexity on F16 saving the base logits, then --kl-divergence per quantized file.
# Ours: kimi-convert --f32 / --q8 / --q4, kimi-parity f32.kaf qN.kaf --text ... --json.
# Nothing is built here; the peer is built by hand outside the repository.
#
# Environment:
#   LLAMA_CPP_BIN      (required) folder with llama-quantize and llama-perplexity (llama-tokenize optional,
#                      used to print llama.cpp's token count)
#   LLAMA_CPP_CONVERT  convert_hf_to_gguf.py (default: $LLAMA_CPP_BIN/../../convert_hf_to_gguf.py)
#   LLAMA_PYTHON       python that runs it (default /opt/refvenv/bin/python if present, else python3)
#   KIMI_BIN           folder with kimi-convert and kimi-parity (default: .build/release)
#   KIMI_BENCH_DIR     work folder root (default /tmp/kimi-bench); everything goes to $KIMI_BENCH_DIR/kl.
#                      Needs about 6x the HF folder's size (0.5B model: ~7 GB; the f32 .kaf alone 2.4 GB);
#                      the script stops before starting when there is less (KIMI_KL_IGNORE_DISK=1 skips the check)
#   KIMI_BENCH_THREADS threads for both tools (default 2)
#   KIMI_KL_TYPES      comma list out of q8,q4 (default q8,q4)
#   KIMI_KL_Q4_EMBD8   1 = also measure llama.cpp Q4_0 with q8_0 token embeddings (default 1)
#   KIMI_BENCH_CLEAN   1 = delete the model files (.gguf, .kaf, .kld) at the end (default 0)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
say() { echo "[kl_vs_llamacpp] $*" >&2; }
die() { say "error: $*"; exit 2; }

HF="" TEXT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --text) [ $# -ge 2 ] || die "--text needs a FILE"; TEXT="$2"; shift 2 ;;
    -h|--help) sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) [ -z "$HF" ] || die "one HF folder only"; HF="$1"; shift ;;
  esac
done
[ -n "$HF" ] || die "usage: LLAMA_CPP_BIN=DIR $0 HF_FOLDER [--text FILE]"
[ -f "$HF/config.json" ] || die "$HF has no config.json (give a Hugging Face model folder)"
HF="$(cd "$HF" && pwd)"

[ -n "${LLAMA_CPP_BIN:-}" ] || die "set LLAMA_CPP_BIN to the folder holding llama.cpp's llama-quantize and llama-perplexity"
LBIN="$(cd "$LLAMA_CPP_BIN" 2>/dev/null && pwd)" || die "LLAMA_CPP_BIN=$LLAMA_CPP_BIN is not a folder"
for b in llama-quantize llama-perplexity; do
  [ -x "$LBIN/$b" ] || die "no $b in LLAMA_CPP_BIN=$LBIN (build its target by hand)"
done
LCONV="${LLAMA_CPP_CONVERT:-$LBIN/../../convert_hf_to_gguf.py}"
[ -f "$LCONV" ] || die "convert_hf_to_gguf.py not found at $LCONV; set LLAMA_CPP_CONVERT"
if [ -n "${LLAMA_PYTHON:-}" ]; then LPY="$LLAMA_PYTHON"
elif [ -x /opt/refvenv/bin/python ]; then LPY=/opt/refvenv/bin/python
else LPY=python3; fi
KBIN="${KIMI_BIN:-$ROOT/.build/release}"
for b in kimi-convert kimi-parity; do
  [ -x "$KBIN/$b" ] || die "no $b in KIMI_BIN=$KBIN (swift build -c release, or set KIMI_BIN)"
done
command -v jq >/dev/null || die "jq is needed"
THREADS="${KIMI_BENCH_THREADS:-2}"
TYPES="${KIMI_KL_TYPES:-q8,q4}"
EMBD8="${KIMI_KL_Q4_EMBD8:-1}"
WORK="${KIMI_BENCH_DIR:-/tmp/kimi-bench}/kl"
case "$WORK/" in "$ROOT"/*) die "the work folder $WORK is inside the repository; set KIMI_BENCH_DIR" ;; esac
mkdir -p "$WORK/logs"
LOGS="$WORK/logs"
want() { [[ ",$TYPES," == *",$1,"* ]]; }

# Disk: f16 + three GGUFs + base logits + f32/q8/q4 .kaf ≈ 6x the (bf16) HF folder. Files of an earlier run
# in $WORK count as free (they are overwritten).
need_kb=$(du -sk "$HF" | awk '{ printf "%d", $1 * 6 }')
old_kb=$( (du -sck "$WORK"/*.gguf "$WORK"/*.kaf "$WORK"/base.kld 2>/dev/null || true) | awk 'END { print $1 + 0 }')
free_kb=$(df -Pk "$WORK" | awk -v o="$old_kb" 'NR==2 { print $4 + o }')
if [ "$free_kb" -lt "$need_kb" ] && [ "${KIMI_KL_IGNORE_DISK:-0}" != 1 ]; then
  die "~$((need_kb / 1048576)) GB needed in $WORK, $((free_kb / 1048576)) GB free; set KIMI_BENCH_DIR (or KIMI_KL_IGNORE_DISK=1)"
fi

# timed ID cmd...: runs cmd with stdout+stderr in $LOGS/ID.log (stdout in $STDOUT instead when that is set),
# the command in ID.cmd, the wall seconds in ID.sec. Exit status 1 is accepted from kimi-parity (a failing
# check is a result, not an error; 2 is bad input).
timed() {
  local id="$1"; shift
  echo "$*" > "$LOGS/$id.cmd"
  say "$id: $*"
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  if [ -n "${STDOUT:-}" ]; then "$@" > "$STDOUT" 2> "$LOGS/$id.log" || rc=$?
  else "$@" > "$LOGS/$id.log" 2>&1 || rc=$?; fi
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }' > "$LOGS/$id.sec"
  if [ "$rc" -ne 0 ]; then
    if [ "$rc" -eq 1 ] && [[ "$id" == parity-* ]]; then return 0; fi
    say "$id FAILED (exit $rc); last lines of $LOGS/$id.log:"; tail -n 8 "$LOGS/$id.log" >&2; exit 1
  fi
}

# ---------------------------------------------------------------------------------------------
# The text
# ---------------------------------------------------------------------------------------------
CORPUS="$WORK/corpus.txt"
if [ -n "$TEXT" ]; then
  [ -f "$TEXT" ] || die "--text $TEXT: no such file"
  cp "$TEXT" "$CORPUS"
else
  # Swift multi-line literal: the lines after `public static let corpus = """` up to the closing `"""`,
  # each without the closing delimiter's indentation, joined by "\n" (no newline after the last line).
  python3 - "$ROOT/runtime/Parity/ParityDefaults.swift" "$CORPUS" <<'EOF'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
start = next(i for i, l in enumerate(lines) if l.rstrip().endswith('public static let corpus = """')) + 1
end = next(i for i in range(start, len(lines)) if lines[i].strip() == '"""')
indent = lines[end][: len(lines[end]) - len(lines[end].lstrip())]
body = []
for l in lines[start:end]:
    if l.strip() == "":
        body.append("")
        continue
    if not l.startswith(indent):
        sys.exit(f"line {lines.index(l) + 1}: less indented than the closing delimiter")
    body.append(l[len(indent):])
text = "\n".join(body)
if "\\" in text:
    sys.exit("the literal has a backslash escape; this extractor does not interpret escapes (use --text)")
open(sys.argv[2], "w", encoding="utf-8").write(text)
EOF
fi
say "text: $CORPUS ($(wc -c < "$CORPUS") bytes)"

# ---------------------------------------------------------------------------------------------
# llama.cpp
# ---------------------------------------------------------------------------------------------
LLAMA_ROWS=()   # "label file" pairs
timed convert-f16 "$LPY" "$LCONV" "$HF" --outtype f16 --outfile "$WORK/f16.gguf"
if want q8; then
  timed quantize-q8_0 "$LBIN/llama-quantize" "$WORK/f16.gguf" "$WORK/q8_0.gguf" Q8_0 "$THREADS"
  LLAMA_ROWS+=("Q8_0 q8_0")
fi
if want q4; then
  timed quantize-q4_0 "$LBIN/llama-quantize" "$WORK/f16.gguf" "$WORK/q4_0.gguf" Q4_0 "$THREADS"
  LLAMA_ROWS+=("Q4_0 q4_0")
  if [ "$EMBD8" = 1 ]; then
    timed quantize-q4_0e8 "$LBIN/llama-quantize" --token-embedding-type q8_0 \
      "$WORK/f16.gguf" "$WORK/q4_0e8.gguf" Q4_0 "$THREADS"
    LLAMA_ROWS+=("Q4_0+embd-q8_0 q4_0e8")
  fi
fi
timed ppl-f16 "$LBIN/llama-perplexity" -m "$WORK/f16.gguf" -f "$CORPUS" -c 512 -t "$THREADS" \
  --kl-divergence-base "$WORK/base.kld"
for row in "${LLAMA_ROWS[@]}"; do
  f="${row##* }"
  timed "ppl-$f" "$LBIN/llama-perplexity" -m "$WORK/$f.gguf" --kl-divergence-base "$WORK/base.kld" \
    --kl-divergence -c 512 -t "$THREADS"
done
LLAMA_TOKENS="?"
if [ -x "$LBIN/llama-tokenize" ]; then
  LLAMA_TOKENS=$("$LBIN/llama-tokenize" -m "$WORK/f16.gguf" -f "$CORPUS" --show-count --ids --log-disable 2>/dev/null \
    | sed -n 's/^Total number of tokens: //p')
fi

# ---------------------------------------------------------------------------------------------
# Ours
# ---------------------------------------------------------------------------------------------
KIMI_ROWS=()
timed kconvert-f32 "$KBIN/kimi-convert" --force --threads "$THREADS" --f32 "$HF" "$WORK/f32.kaf"
for q in q8 q4; do
  want "$q" || continue
  timed "kconvert-$q" "$KBIN/kimi-convert" --force --threads "$THREADS" "--$q" "$HF" "$WORK/$q.kaf"
  KIMI_ROWS+=("$q")
done
for q in "${KIMI_ROWS[@]}"; do
  rm -rf "$WORK/report-$q"
  STDOUT="$WORK/$q.json" timed "parity-$q" "$KBIN/kimi-parity" "$WORK/f32.kaf" "$WORK/$q.kaf" --text "$CORPUS" \
    --out "$WORK/report-$q" --json --threads "$THREADS"
  jq -e .checks "$WORK/$q.json" > /dev/null || { say "parity-$q: no JSON report in $LOGS/parity-$q.log"; exit 1; }
done

# ---------------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------------
# llama.cpp's summary lines, e.g. "Mean    KLD:   0.001118 ±   0.000039", "Same top p: 97.516 ± 0.563 %".
lval() { sed -n "s/^$2[[:space:]]*:[[:space:]]*\([-0-9.eE+]*\).*/\1/p" "$1" | tail -n 1; }
echo
echo "| tool | type | mean KL | p99 KL | max KL | same top-1 | PPL ratio (Δ PPL) | positions scored | seconds |"
echo "|---|---|---|---|---|---|---|---|---|"
for row in "${LLAMA_ROWS[@]}"; do
  label="${row% *}" f="${row##* }" log="$LOGS/ppl-$f.log"
  chunks=$(sed -n 's/.*computing over \([0-9]*\) chunks, n_ctx=\([0-9]*\).*/\1 \2/p' "$log" | tail -n 1)
  pos=$(echo "$chunks" | awk '{ c = $1; n = $2; printf "%d (%d chunks of %d)", c * (n - 1 - int(n / 2)), c, n }')
  printf '| llama-perplexity | %s | %s | %s | %s | %s %% | %s (%s) | %s | %s |\n' "$label" \
    "$(lval "$log" 'Mean *KLD')" "$(lval "$log" '99\.0% *KLD')" "$(lval "$log" 'Maximum KLD')" \
    "$(lval "$log" 'Same top p')" "$(lval "$log" 'Mean PPL(Q)\/PPL(base)')" "$(lval "$log" 'Mean PPL(Q)-PPL(base)')" \
    "$pos" "$(cat "$LOGS/ppl-$f.sec")"
done
for q in "${KIMI_ROWS[@]}"; do
  jq -r --arg q "$q" --arg sec "$(cat "$LOGS/parity-$q.sec")" '
    def c(n): (.checks[] | select(.section == "text_head" and .name == n));
    def f(x; d): (x * pow(10; d) | round) / pow(10; d) | tostring;
    (c("ppl_model").value) as $pm | (c("ppl_reference").value) as $pr |
    "| kimi-parity | \($q) | \(f(c("kl_mean").value; 6)) | \(f(c("kl_p99").value; 6)) | \(f(c("kl_max").value; 6)) | "
    + "\(f(c("same_top1").value * 100; 3)) % | \(f($pm / $pr; 6)) (\(f($pm - $pr; 4))) | "
    + "\(c("same_top1").detail | capture("of (?<n>[0-9]+)").n) "
    + "(\(.notes[] | select(startswith("text head")) | capture("(?<w>[0-9]+) windows? of (?<n>[0-9]+)") | "\(.w) windows of \(.n)")) | "
    + "\($sec) |"' "$WORK/$q.json"
done
echo
ppl_base=$(sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$LOGS/ppl-f16.log" | tail -n 1)
echo "- llama.cpp: F16 base run (saves the logits, PPL $ppl_base) $(cat "$LOGS/ppl-f16.sec") s; tokens: $LLAMA_TOKENS (llama-tokenize)."
if [ "${#KIMI_ROWS[@]}" -gt 0 ]; then
  q="${KIMI_ROWS[0]}"
  jq -r '"- kimi-parity: reference (f32) PPL \(.checks[] | select(.name == "ppl_reference") | .value * 10000 | round / 10000); "
    + (.notes[] | select(startswith("text head"))) + "."' "$WORK/$q.json"
  echo "- kimi-parity seconds cover the whole report (tensor statistics, both models on every window, greedy end to end)."
fi
echo "- logs and commands: $LOGS; reports: $WORK/report-*/"

if [ "${KIMI_BENCH_CLEAN:-0}" = 1 ]; then
  rm -f "$WORK"/*.gguf "$WORK"/*.kaf "$WORK/base.kld"
fi
