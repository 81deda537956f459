#!/usr/bin/env bash
# Conversion benchmark: kimi-convert vs llama.cpp's two steps (convert_hf_to_gguf.py + llama-quantize)
# on full-size synthetic checkpoints (see scripts/bench/README.md).
#
#   scripts/bench/convert_bench.sh
#
# Environment:
#   KIMI_BENCH_DIR     work folder for checkpoints, outputs, logs, results (default /tmp/kimi-bench)
#   KIMI_BENCH_PYTHON  python with numpy for make_synthetic_release.py (default: /opt/refvenv/bin/python
#                      if present, else python3)
#   KIMI_BENCH_LAYERS  trunk layers of the synthetic checkpoints (default 28 = the real size)
#   KIMI_BENCH_CACHE   cold | warm | auto (default auto = cold if the page cache can be dropped)
#                      cold: `sync; echo 3 > /proc/sys/vm/drop_caches` before every measured command
#                      warm: every command runs twice, the second run is reported
#   KIMI_BENCH_ONLY    comma list of groups to run: ours-qwen2, ours-kimi, peer (default: all)
#   KIMI_BENCH_KEEP    1 = keep converted outputs (default: delete each right after measuring)
#   KIMI_BUILD         0 = do not run `swift build -c release` (use the existing binary)
#   KIMI_CONVERT       path of the kimi-convert binary (default .build/release/kimi-convert)
#   LLAMA_CPP_DIR      a llama.cpp tree holding convert_hf_to_gguf.py and build/bin/llama-quantize
#   LLAMA_CONVERT      explicit path of convert_hf_to_gguf.py   (overrides LLAMA_CPP_DIR)
#   LLAMA_QUANTIZE     explicit path of llama-quantize            (overrides LLAMA_CPP_DIR)
#   LLAMA_PYTHON       python that runs convert_hf_to_gguf.py (needs torch, numpy, safetensors,
#                      transformers, sentencepiece; gguf-py next to the script is put on PYTHONPATH)
#                      default: KIMI_BENCH_PYTHON
# Without a usable peer the llama.cpp half is skipped with a message; ours still runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH="${KIMI_BENCH_DIR:-/tmp/kimi-bench}"
if [ -n "${KIMI_BENCH_PYTHON:-}" ]; then PY="$KIMI_BENCH_PYTHON"
elif [ -x /opt/refvenv/bin/python ]; then PY=/opt/refvenv/bin/python
else PY=python3; fi
LAYERS="${KIMI_BENCH_LAYERS:-28}"
ONLY="${KIMI_BENCH_ONLY:-ours-qwen2,ours-kimi,peer}"
KEEP="${KIMI_BENCH_KEEP:-0}"
QWEN2="$BENCH/qwen2-l$LAYERS"
KIMI="$BENCH/kimi-l$LAYERS"
OUT="$BENCH/out"
LOGS="$BENCH/logs"
RESULTS="$BENCH/convert_bench.tsv"
mkdir -p "$BENCH" "$OUT" "$LOGS"

say() { echo "[convert_bench] $*" >&2; }
want() { [[ ",$ONLY," == *",$1,"* ]]; }
gb_free() { df -P -B1 "$BENCH" | awk 'NR==2 { printf "%.1f", $4 / 1e9 }'; }
bytes_of() { # total size of files (a file, or a folder's *.safetensors)
  if [ -d "$1" ]; then find "$1" -maxdepth 1 -name '*.safetensors' -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f\n", s }'
  elif [ -f "$1" ]; then stat -c %s "$1"
  else echo 0; fi
}

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
if ! /usr/bin/time -v true >/dev/null 2>&1; then
  say "GNU time (/usr/bin/time -v) is needed: apt-get install time"; exit 1
fi
command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"

KC="${KIMI_CONVERT:-$ROOT/.build/release/kimi-convert}"
if [ "${KIMI_BUILD:-1}" != 0 ] && [ -z "${KIMI_CONVERT:-}" ]; then
  say "swift build -c release --product kimi-convert"
  (cd "$ROOT" && swift build -c release --product kimi-convert 2>&1 | tail -n 3) >&2
fi
[ -x "$KC" ] || { say "no kimi-convert binary at $KC"; exit 1; }

PEER=1
LCONV="${LLAMA_CONVERT:-${LLAMA_CPP_DIR:+$LLAMA_CPP_DIR/convert_hf_to_gguf.py}}"
LQUANT="${LLAMA_QUANTIZE:-${LLAMA_CPP_DIR:+$LLAMA_CPP_DIR/build/bin/llama-quantize}}"
LPY="${LLAMA_PYTHON:-$PY}"
if ! want peer; then PEER=0
elif [ -z "$LCONV" ] || [ ! -f "$LCONV" ] || [ -z "$LQUANT" ] || [ ! -x "$LQUANT" ]; then
  say "llama.cpp peer not found: set LLAMA_CPP_DIR (a llama.cpp tree with convert_hf_to_gguf.py and"
  say "  build/bin/llama-quantize) or LLAMA_CONVERT and LLAMA_QUANTIZE; skipping the llama.cpp half"
  PEER=0
else
  LPYPATH="$(dirname "$LCONV")/gguf-py${PYTHONPATH:+:$PYTHONPATH}"
  if ! PYTHONPATH="$LPYPATH" "$LPY" -c 'import torch, numpy, safetensors, transformers, gguf' 2>/dev/null; then
    say "$LPY cannot import torch/numpy/safetensors/transformers/gguf (needed by $LCONV);"
    say "  set LLAMA_PYTHON to a suitable python; skipping the llama.cpp half"
    PEER=0
  fi
fi

# ---------------------------------------------------------------------------------------------
# Page cache policy
# ---------------------------------------------------------------------------------------------
CACHE="${KIMI_BENCH_CACHE:-auto}"
can_drop() { sync && { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null; }
if [ "$CACHE" = auto ]; then
  if can_drop; then CACHE=cold; else CACHE=warm; say "cannot drop the page cache: reporting warm runs (each command twice)"; fi
elif [ "$CACHE" = cold ] && ! can_drop; then
  say "KIMI_BENCH_CACHE=cold but the page cache cannot be dropped here"; exit 1
fi
say "page cache mode: $CACHE"

# ---------------------------------------------------------------------------------------------
# Checkpoints (made once, reused)
# ---------------------------------------------------------------------------------------------
need_ckpt() { # folder kind approx_gb
  if [ -f "$1/.complete" ]; then "$PY" "$ROOT/scripts/bench/make_synthetic_release.py" "$1" --kind "$2" --layers "$LAYERS"; return; fi
  local free; free=$(gb_free)
  if awk -v f="$free" -v n="$3" 'BEGIN { exit !(f < n + 15) }'; then
    say "not enough disk for the $2 checkpoint (~$3 GB + 15 GB headroom, $free GB free in $BENCH)"; exit 1
  fi
  say "generating the $2 checkpoint in $1 (~$3 GB)"
  "$PY" "$ROOT/scripts/bench/make_synthetic_release.py" "$1" --kind "$2" --layers "$LAYERS"
}
scale=$(awk -v l="$LAYERS" 'BEGIN { printf "%.0f", l / 28 * 13.1 }')
if want ours-qwen2 || [ "$PEER" = 1 ]; then need_ckpt "$QWEN2" qwen2 $((scale + 3)); fi
if want ours-kimi; then need_ckpt "$KIMI" kimi $((scale + 7)); fi

# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------
: > "$RESULTS"
# measure ID TOOL TASK INPUT OUTPUT cmd...   → appends one TSV row; returns the command's status
measure() {
  local id="$1" tool="$2" task="$3" input="$4" output="$5"; shift 5
  local runs=1 status=0 r
  [ "$CACHE" = warm ] && runs=2
  for ((r = 1; r <= runs; r++)); do
    rm -f "$output"
    [ "$CACHE" = cold ] && can_drop
    say "$id (run $r/$runs): $*"
    echo "$*" > "$LOGS/$id.cmd"
    status=0
    /usr/bin/time -v -o "$LOGS/$id.time" "$@" > "$LOGS/$id.log" 2>&1 || status=$?
  done
  local wall rss user sys load
  load=$(cut -d' ' -f1 /proc/loadavg)
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f\n", s }' "$LOGS/$id.time")
  rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f\n", $2 * 1024 }' "$LOGS/$id.time")
  user=$(awk -F': ' '/User time \(seconds\)/ { print $2 }' "$LOGS/$id.time")
  sys=$(awk -F': ' '/System time \(seconds\)/ { print $2 }' "$LOGS/$id.time")
  if [ "$status" != 0 ]; then
    say "$id FAILED (exit $status); last lines of $LOGS/$id.log:"; tail -n 5 "$LOGS/$id.log" >&2
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$tool" "$task" "$(bytes_of "$input")" "$(bytes_of "$output")" \
    "$wall" "$rss" "$user" "$sys" "$load" "$status" "$*" >> "$RESULTS"
  return "$status"
}
cleanup() { [ "$KEEP" = 1 ] || rm -f "$@"; }

if want ours-qwen2; then
  for q in q4 q8; do
    measure "ours-qwen2-$q" kimi-convert "qwen2 trunk -> $q (g32)" "$QWEN2" "$OUT/qwen2-$q.kaf" \
      "$KC" --$q --force "$QWEN2" "$OUT/qwen2-$q.kaf" || true
    cleanup "$OUT/qwen2-$q.kaf"
  done
fi
if want ours-kimi; then
  for q in q4 q8; do
    measure "ours-kimi-$q" kimi-convert "kimi llm+mimo -> $q (g32)" "$KIMI" "$OUT/kimi-$q.kaf" \
      "$KC" --$q --components llm,mimo --force "$KIMI" "$OUT/kimi-$q.kaf" || true
    cleanup "$OUT/kimi-$q.kaf"
  done
fi
if [ "$PEER" = 1 ]; then
  export PYTHONPATH="$LPYPATH"
  if measure "llama-q4-step1" llama.cpp "qwen2 trunk -> bf16 GGUF (convert_hf_to_gguf)" "$QWEN2" "$OUT/qwen2-bf16.gguf" \
      "$LPY" "$LCONV" --outtype bf16 --outfile "$OUT/qwen2-bf16.gguf" "$QWEN2"; then
    measure "llama-q4-step2" llama.cpp "bf16 GGUF -> Q4_0 (llama-quantize)" "$OUT/qwen2-bf16.gguf" "$OUT/qwen2-q4_0.gguf" \
      "$LQUANT" "$OUT/qwen2-bf16.gguf" "$OUT/qwen2-q4_0.gguf" Q4_0 || true
  fi
  cleanup "$OUT/qwen2-bf16.gguf" "$OUT/qwen2-q4_0.gguf"
  measure "llama-q8" llama.cpp "qwen2 trunk -> Q8_0 GGUF (convert_hf_to_gguf, one step)" "$QWEN2" "$OUT/qwen2-q8_0.gguf" \
    "$LPY" "$LCONV" --outtype q8_0 --outfile "$OUT/qwen2-q8_0.gguf" "$QWEN2" || true
  cleanup "$OUT/qwen2-q8_0.gguf"
fi

# ---------------------------------------------------------------------------------------------
# Table + JSON
# ---------------------------------------------------------------------------------------------
PEER_VERSION=""
[ "$PEER" = 1 ] && PEER_VERSION="$("$LQUANT" --version 2>&1 | grep -m1 -i 'version' || true)"
"$PY" - "$RESULTS" "$BENCH/convert_bench.json" "$CACHE" "$LAYERS" "$PEER_VERSION" \
  "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" <<'EOF'
import json, os, platform, sys
tsv, out, cache, layers, peer_version, commit = sys.argv[1:7]
rows = []
for line in open(tsv):
    id_, tool, task, inb, outb, wall, rss, user, sys_, load, status, cmd = line.rstrip("\n").split("\t")
    rows.append(dict(id=id_, tool=tool, task=task, input_bytes=int(float(inb)), output_bytes=int(float(outb)),
                     wall_s=float(wall or 0), peak_rss_bytes=int(float(rss or 0)), cpu_user_s=float(user or 0),
                     cpu_sys_s=float(sys_ or 0), loadavg_1min_after=float(load or 0), exit_status=int(status), command=cmd))
by = {r["id"]: r for r in rows}
s1, s2 = by.get("llama-q4-step1"), by.get("llama-q4-step2")
if s1 and s2 and s1["exit_status"] == 0 and s2["exit_status"] == 0:
    rows.append(dict(id="llama-q4-sum", tool="llama.cpp", task="qwen2 trunk -> Q4_0 (step1 + step2)",
                     input_bytes=s1["input_bytes"], output_bytes=s2["output_bytes"], wall_s=s1["wall_s"] + s2["wall_s"],
                     peak_rss_bytes=max(s1["peak_rss_bytes"], s2["peak_rss_bytes"]),
                     cpu_user_s=s1["cpu_user_s"] + s2["cpu_user_s"], cpu_sys_s=s1["cpu_sys_s"] + s2["cpu_sys_s"],
                     loadavg_1min_after=max(s1["loadavg_1min_after"], s2["loadavg_1min_after"]), exit_status=0,
                     command="step1 ; step2"))
    by["llama-q4-sum"] = rows[-1]
for r in rows:
    r["gb_per_s"] = r["input_bytes"] / 1e9 / r["wall_s"] if r["wall_s"] > 0 else None
ratios = {}
for q, peer in (("q4", "llama-q4-sum"), ("q8", "llama-q8")):
    o, p = by.get(f"ours-qwen2-{q}"), by.get(peer)
    if o and p and o["exit_status"] == 0 and p["exit_status"] == 0:
        ratios[q] = o["wall_s"] / p["wall_s"]
hdr = (f"{'tool':<12} {'task':<56} {'in GB':>6} {'out GB':>7} {'wall s':>8} {'GB/s':>6} {'peak RSS':>9} "
       f"{'user s':>7} {'sys s':>6} {'load':>5}  status")
print(hdr); print("-" * len(hdr))
for r in rows:
    gbs = f"{r['gb_per_s']:.3f}" if r["gb_per_s"] else "-"
    print(f"{r['tool']:<12} {r['task']:<56} {r['input_bytes'] / 1e9:6.2f} {r['output_bytes'] / 1e9:7.2f} {r['wall_s']:8.1f} "
          f"{gbs:>6} {r['peak_rss_bytes'] / 2**30:7.2f}Gi {r['cpu_user_s']:7.1f} {r['cpu_sys_s']:6.1f} {r['loadavg_1min_after']:5.2f}  "
          f"{'ok' if r['exit_status'] == 0 else 'FAILED ' + str(r['exit_status'])}")
print()
for q, v in ratios.items():
    print(f"wall time ours/llama.cpp, qwen2 trunk {q}: {v:.2f}  (goal <= 0.50: {'met' if v <= 0.5 else 'NOT met'})")
print("user s / sys s: CPU seconds of the command; load: 1-minute load average right after it (other work on the machine shows up here)")
print(f"page cache: {cache}{' (dropped before every command)' if cache == 'cold' else ' (second of two runs)'}")
doc = dict(cache=cache, layers=int(layers), repo_commit=commit, llama_cpp=peer_version or None,
           cpu=platform.processor() or platform.machine(), nproc=os.cpu_count(), rows=rows,
           ratio_ours_over_llama_cpp=ratios)
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
print(f"json: {out}")
EOF
