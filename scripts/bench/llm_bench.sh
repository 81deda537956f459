#!/usr/bin/env bash
# LLM speed benchmark: kimi-run bench vs llama.cpp's llama-bench on the same synthetic
# Qwen2.5-7B-shaped trunk (see scripts/bench/README.md, section "llm_bench.sh").
#
#   LLAMA_CPP_DIR=/path/to/llama.cpp scripts/bench/llm_bench.sh
#
# Environment:
#   KIMI_BENCH_DIR      work folder (default /tmp/kimi-bench); converted models are cached in $KIMI_BENCH_DIR/llm
#   KIMI_BENCH_PYTHON   python with numpy (default: /opt/refvenv/bin/python if present, else python3)
#   KIMI_BENCH_LAYERS   trunk layers of the synthetic checkpoint (default 28 = the real size)
#   KIMI_BENCH_THREADS  threads for both tools (default 2)
#   KIMI_BENCH_P, KIMI_BENCH_N, KIMI_BENCH_R   prompt tokens, generated tokens, repetitions (512, 32, 2)
#   KIMI_BENCH_TYPES    comma list out of q4,q8 (default q4,q8)
#   KIMI_BENCH_MAX_LOAD 1-minute load average above which a measurement waits (default 1.5)
#   KIMI_BENCH_LOAD_WAIT  seconds to wait at most for the load to drop (default 300; then it runs anyway
#                         and the load is shown in the table)
#   KIMI_BENCH_CLEAN    1 = delete the converted models in $KIMI_BENCH_DIR/llm at the end (default 0: keep)
#   KIMI_BUILD          0 = do not run `swift build -c release` (use the existing binaries)
#   KIMI_CONVERT, KIMI_RUN, KIMI_BENCH_KERNELS   explicit binaries (default .build/release/…)
#   LLAMA_CPP_DIR       a llama.cpp tree holding convert_hf_to_gguf.py, gguf-py/ and
#                       build/bin/{llama-quantize,llama-bench}
#   LLAMA_CONVERT, LLAMA_QUANTIZE, LLAMA_BENCH   explicit paths (override LLAMA_CPP_DIR)
#   LLAMA_PYTHON        python that runs convert_hf_to_gguf.py (default KIMI_BENCH_PYTHON)
# Without a usable peer the llama.cpp half is skipped with a message; ours still runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH="${KIMI_BENCH_DIR:-/tmp/kimi-bench}"
if [ -n "${KIMI_BENCH_PYTHON:-}" ]; then PY="$KIMI_BENCH_PYTHON"
elif [ -x /opt/refvenv/bin/python ]; then PY=/opt/refvenv/bin/python
else PY=python3; fi
LAYERS="${KIMI_BENCH_LAYERS:-28}"
THREADS="${KIMI_BENCH_THREADS:-2}"
P="${KIMI_BENCH_P:-512}"; N="${KIMI_BENCH_N:-32}"; R="${KIMI_BENCH_R:-2}"
TYPES="${KIMI_BENCH_TYPES:-q4,q8}"
MAX_LOAD="${KIMI_BENCH_MAX_LOAD:-1.5}"
LOAD_WAIT="${KIMI_BENCH_LOAD_WAIT:-300}"
QWEN2="$BENCH/qwen2-l$LAYERS"
OUT="$BENCH/llm"
LOGS="$OUT/logs"
RESULTS="$OUT/llm_bench.tsv"
mkdir -p "$OUT" "$LOGS"

say() { echo "[llm_bench] $*" >&2; }
want_type() { [[ ",$TYPES," == *",$1,"* ]]; }
gb_free() { df -P -B1 "$OUT" | awk 'NR==2 { printf "%.1f", $4 / 1e9 }'; }
load1() { cut -d' ' -f1 /proc/loadavg; }
# Busy fraction of all CPUs over 2 s (from /proc/stat). Taken while nothing of ours runs, so unlike the load
# average (which still counts our own previous run for a minute) it shows only other work on the machine.
cpu_busy() {
  local a b
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat); sleep 2
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
  echo "$a $b" | awk '{ busy = $3 - $1; idle = $4 - $2; printf "%.2f", (busy + idle > 0 ? busy / (busy + idle) : 0) }'
}

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
if ! /usr/bin/time -v true >/dev/null 2>&1; then
  say "GNU time (/usr/bin/time -v) is needed: apt-get install time"; exit 1
fi
command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"

KC="${KIMI_CONVERT:-$ROOT/.build/release/kimi-convert}"
KR="${KIMI_RUN:-$ROOT/.build/release/kimi-run}"
KK="${KIMI_BENCH_KERNELS:-$ROOT/.build/release/kimi-bench-kernels}"
if [ "${KIMI_BUILD:-1}" != 0 ]; then
  for prod in kimi-convert kimi-run kimi-bench-kernels; do
    say "swift build -c release --product $prod"
    (cd "$ROOT" && swift build -c release --product "$prod" 2>&1 | tail -n 2) >&2
  done
fi
[ -x "$KC" ] || { say "no kimi-convert binary at $KC"; exit 1; }
[ -x "$KR" ] || { say "no kimi-run binary at $KR"; exit 1; }

PEER=1
LCONV="${LLAMA_CONVERT:-${LLAMA_CPP_DIR:+$LLAMA_CPP_DIR/convert_hf_to_gguf.py}}"
LQUANT="${LLAMA_QUANTIZE:-${LLAMA_CPP_DIR:+$LLAMA_CPP_DIR/build/bin/llama-quantize}}"
LBENCH="${LLAMA_BENCH:-${LLAMA_CPP_DIR:+$LLAMA_CPP_DIR/build/bin/llama-bench}}"
LPY="${LLAMA_PYTHON:-$PY}"
if [ -z "$LCONV" ] || [ ! -f "$LCONV" ] || [ -z "$LQUANT" ] || [ ! -x "$LQUANT" ] || [ -z "$LBENCH" ] || [ ! -x "$LBENCH" ]; then
  say "llama.cpp peer not found: set LLAMA_CPP_DIR (a llama.cpp tree with convert_hf_to_gguf.py and"
  say "  build/bin/llama-quantize, build/bin/llama-bench) or LLAMA_CONVERT, LLAMA_QUANTIZE and LLAMA_BENCH;"
  say "  skipping the llama.cpp half"
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
# Checkpoint (made once, reused; same generator and rules as convert_bench.sh)
# ---------------------------------------------------------------------------------------------
if [ ! -f "$QWEN2/.complete" ]; then
  need=$(awk -v l="$LAYERS" 'BEGIN { printf "%.0f", l / 28 * 13.1 + 3 }')
  if awk -v f="$(gb_free)" -v n="$need" 'BEGIN { exit !(f < n + 15) }'; then
    say "not enough disk for the qwen2 checkpoint (~$need GB + 15 GB headroom, $(gb_free) GB free)"; exit 1
  fi
  say "generating the qwen2 checkpoint in $QWEN2 (~$need GB)"
  "$PY" "$ROOT/scripts/bench/make_synthetic_release.py" "$QWEN2" --kind qwen2 --layers "$LAYERS"
fi

# ---------------------------------------------------------------------------------------------
# Conversions (cached in $OUT; a file is only moved to its final name once complete)
# ---------------------------------------------------------------------------------------------
# convert FINAL NEED_GB ID cmd...  The command writes PART (FINAL with ".part" before its extension; "{}" in
# the command stands for it), which becomes FINAL only when the command succeeds.
convert() {
  local final="$1" need="$2" id="$3"; shift 3
  if [ -s "$final" ]; then say "$id: cached $final"; return 0; fi
  if awk -v f="$(gb_free)" -v n="$need" 'BEGIN { exit !(f < n + 2) }'; then
    say "$id: not enough disk (~$need GB + 2 GB needed, $(gb_free) GB free in $OUT)"; return 1
  fi
  local part="${final%.*}.part.${final##*.}" args=() a
  for a in "$@"; do args+=("${a//\{\}/$part}"); done
  rm -f "$part"
  say "$id: ${args[*]}"
  echo "${args[*]}" > "$LOGS/convert-$id.cmd"
  if /usr/bin/time -v -o "$LOGS/convert-$id.time" "${args[@]}" > "$LOGS/convert-$id.log" 2>&1; then
    mv -f "$part" "$final"
  else
    say "$id FAILED; last lines of $LOGS/convert-$id.log:"; tail -n 5 "$LOGS/convert-$id.log" >&2
    rm -f "$part"; return 1
  fi
}

if [ "$PEER" = 1 ]; then
  export PYTHONPATH="$LPYPATH"
  # Q4_0 first: its bf16 intermediate (15 GB) is deleted before the other outputs are made.
  if want_type q4 && [ ! -s "$OUT/qwen2-q4_0.gguf" ]; then
    if convert "$OUT/qwen2-bf16.gguf" 16 llama-bf16 "$LPY" "$LCONV" --outtype bf16 --outfile "{}" "$QWEN2"; then
      convert "$OUT/qwen2-q4_0.gguf" 5 llama-q4_0 "$LQUANT" "$OUT/qwen2-bf16.gguf" "{}" Q4_0 || true
    fi
    rm -f "$OUT/qwen2-bf16.gguf"
  fi
  if want_type q8; then
    convert "$OUT/qwen2-q8_0.gguf" 9 llama-q8_0 "$LPY" "$LCONV" --outtype q8_0 --outfile "{}" "$QWEN2" || true
  fi
fi
for q in q4 q8; do
  want_type $q || continue
  need=5; [ $q = q8 ] && need=9
  convert "$OUT/qwen2-$q.kaf" $need ours-$q "$KC" --$q --force "$QWEN2" "{}" || true
done

# ---------------------------------------------------------------------------------------------
# Load: wait (up to LOAD_WAIT s) while the 1-minute load average is above MAX_LOAD
# ---------------------------------------------------------------------------------------------
wait_for_load() {
  local waited=0
  while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN { exit !(l > m) }'; do
    if [ "$waited" -ge "$LOAD_WAIT" ]; then
      say "load average still $(load1) after ${waited}s; measuring anyway (the load is in the table)"; return 0
    fi
    [ "$waited" = 0 ] && say "load average $(load1) > $MAX_LOAD (other work on the machine?): waiting up to ${LOAD_WAIT}s"
    sleep 15; waited=$((waited + 15))
  done
}

# ---------------------------------------------------------------------------------------------
# Memory bandwidth (once)
# ---------------------------------------------------------------------------------------------
wait_for_load
BW_LOAD=$(load1)
BW=""; BW_HOW=""
if [ -x "$KK" ]; then
  say "memory bandwidth: KIMI_BENCH_TYPES= KIMI_BENCH_THREADS=$THREADS $KK"
  KIMI_BENCH_TYPES= KIMI_BENCH_THREADS="$THREADS" "$KK" > "$LOGS/bandwidth.log" 2>&1 || true
  BW=$(awk -v t="$THREADS" -F'|' '/Memory bandwidth/ { on = 1; next } on && $2 + 0 == t && $3 ~ /[0-9]/ { gsub(/ /, "", $3); print $3; exit }' "$LOGS/bandwidth.log")
  [ -n "$BW" ] && BW_HOW="kimi-bench-kernels: $THREADS-thread SIMD sum over a 512 MiB f32 buffer (best of 3, each >= 0.5 s), ThreadPool split"
fi
if [ -z "$BW" ]; then
  say "memory bandwidth: numpy fallback (kimi-bench-kernels missing or unparsable)"
  BW=$("$PY" - <<'EOF' 2>"$LOGS/bandwidth.log"
import time, numpy as np
a = np.random.default_rng(0).random(128 << 20, dtype=np.float32)  # 512 MiB
a.sum(); best = 1e9
for _ in range(5):
    t = time.perf_counter(); a.sum(); best = min(best, time.perf_counter() - t)
print(f"{a.nbytes / best / 1e9:.1f}")
EOF
  ) || BW=""
  [ -n "$BW" ] && BW_HOW="numpy: 1-thread a.sum() over a 512 MiB f32 array (best of 5)"
fi
say "read bandwidth: ${BW:-unknown} GB/s (${BW_HOW:-not measured})"

# ---------------------------------------------------------------------------------------------
# Speed: warm-up run, then the measured run; one tool at a time
# ---------------------------------------------------------------------------------------------
: > "$RESULTS"
# bench TYPE TOOL ID MODEL warmup-cmd... -- measured-cmd...
bench() {
  local type="$1" tool="$2" id="$3" model="$4"; shift 4
  local warm=() a
  while [ "$1" != -- ]; do warm+=("$1"); shift; done; shift
  if [ ! -s "$model" ]; then say "$id: no model $model (conversion failed?)"; return 0; fi
  wait_for_load
  say "$id warm-up: ${warm[*]}"
  "${warm[@]}" > "$LOGS/$id.warmup.log" 2>&1 || say "$id warm-up failed (see $LOGS/$id.warmup.log)"
  wait_for_load
  local before status=0 after resident busy
  busy=$(cpu_busy); before=$(load1)
  say "$id: other CPU use before the run: $busy of all cores; load average $before"
  say "$id: $*"
  echo "$*" > "$LOGS/$id.cmd"
  /usr/bin/time -v -o "$LOGS/$id.time" "$@" > "$LOGS/$id.json" 2> "$LOGS/$id.err" || status=$?
  after=$(load1)
  resident=$(fincore -b -n -o RES,SIZE "$model" 2>/dev/null | awk '{ printf "%.3f", ($2 > 0 ? $1 / $2 : 0) }' || true)
  [ "$status" = 0 ] || { say "$id FAILED (exit $status); last lines of $LOGS/$id.err:"; tail -n 5 "$LOGS/$id.err" >&2; }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$type" "$tool" "$id" "$model" "$busy" "$before" "$after" "${resident:-}" "$status" "$*" >> "$RESULTS"
}

for q in q4 q8; do
  want_type $q || continue
  kaf="$OUT/qwen2-$q.kaf"
  bench $q kimi-run ours-$q "$kaf" "$KR" bench "$kaf" -p 64 -n 8 -t "$THREADS" -r 1 --json \
    -- "$KR" bench "$kaf" -p "$P" -n "$N" -t "$THREADS" -r "$R" --json
  [ -s "$kaf" ] && "$KR" info "$kaf" --tensors --json > "$LOGS/ours-$q.info.json" 2>/dev/null || true
  if [ "$PEER" = 1 ]; then
    g="$OUT/qwen2-q4_0.gguf"; [ $q = q8 ] && g="$OUT/qwen2-q8_0.gguf"
    bench $q llama.cpp llama-$q "$g" "$LBENCH" -m "$g" -t "$THREADS" -p 64 -n 8 -r 1 -o json \
      -- "$LBENCH" -m "$g" -t "$THREADS" -p "$P" -n "$N" -r "$R" -o json
    [ -s "$g" ] && "$LPY" - "$g" > "$LOGS/llama-$q.tensors.json" 2>/dev/null <<'EOF' || true
import json, sys
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
print(json.dumps([dict(name=t.name, type=t.tensor_type.name, bytes=int(t.n_bytes)) for t in r.tensors]))
EOF
  fi
done

# ---------------------------------------------------------------------------------------------
# Table + JSON
# ---------------------------------------------------------------------------------------------
PEER_VERSION=""
[ "$PEER" = 1 ] && PEER_VERSION="$("$LBENCH" --version 2>&1 | grep -m1 -i 'version' || true)"
"$PY" - "$RESULTS" "$LOGS" "$BENCH/llm_bench.json" "${BW:-0}" "$BW_HOW" "$BW_LOAD" "$THREADS" "$P" "$N" "$R" "$PEER_VERSION" \
  "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" <<'EOF'
import json, os, platform, sys
tsv, logs, out, bw, bw_how, bw_load, threads, P, N, R, peer_version, commit = sys.argv[1:13]
bw = float(bw) or None
P, N = int(P), int(N)

def last_json(path):
    try:
        txt = open(path).read().strip()
    except OSError:
        return None
    for start in (0, txt.find("["), txt.rfind("\n{") + 1):
        try:
            return json.loads(txt[start:])
        except (ValueError, TypeError):
            continue
    return None

def peak_rss(path):
    try:
        for line in open(path):
            if "Maximum resident set size" in line:
                return int(line.split(":")[1]) * 1024
    except OSError:
        pass
    return None

rows = []
for line in open(tsv):
    type_, tool, id_, model, busy, before, after, resident, status, cmd = line.rstrip("\n").split("\t")
    r = dict(type=type_, tool=tool, id=id_, model=model, model_file_bytes=os.path.getsize(model) if os.path.exists(model) else None,
             other_cpu_busy_before=float(busy), loadavg_1min_before=float(before), loadavg_1min_after=float(after),
             model_resident_in_page_cache=float(resident) if resident else None, exit_status=int(status), command=cmd,
             peak_rss_bytes=peak_rss(f"{logs}/{id_}.time"), pp_tokens_per_second=None, tg_tokens_per_second=None,
             weight_bytes_per_token=None, embedding_bytes=None)
    j = last_json(f"{logs}/{id_}.json") if r["exit_status"] == 0 else None
    if tool == "kimi-run" and isinstance(j, dict):
        r["pp_tokens_per_second"] = j.get("pp_tokens_per_second") or None
        r["tg_tokens_per_second"] = j.get("tg_tokens_per_second") or None
        r["llm_weight_bytes_reported"] = j.get("llm_weight_bytes")
        info = last_json(f"{logs}/{id_}.info.json")
        if isinstance(info, dict) and info.get("tensors"):
            llm = [t for t in info["tensors"] if t["name"].startswith("llm.")]
            emb = [t for t in llm if "embed_tokens" in t["name"]]
            r["embedding_bytes"] = sum(t["bytes"] for t in emb)
            r["weight_bytes_per_token"] = sum(t["bytes"] for t in llm) - r["embedding_bytes"]
            r["types"] = {t["name"]: t["dtype"] for t in llm if "embed_tokens" in t["name"] or "lm_head" in t["name"]
                          or t["name"] == "llm.layers.0.mlp.up_proj.weight"}
    elif tool == "llama.cpp" and isinstance(j, list):
        for t in j:
            key = "pp_tokens_per_second" if t.get("n_gen", 0) == 0 else "tg_tokens_per_second"
            samples = t.get("samples_ts") or [t.get("avg_ts", 0)]
            r[key] = max(samples)                       # best of the repetitions, like kimi-run bench
            r[key.replace("tokens_per_second", "avg_tokens_per_second")] = t.get("avg_ts")
            r["llama_build"] = f"{t.get('build_commit')} ({t.get('build_number')})"
            r["cpu_info"] = t.get("cpu_info")
        tens = last_json(f"{logs}/{id_}.tensors.json")
        if isinstance(tens, list):
            emb = [t for t in tens if t["name"] == "token_embd.weight"]
            r["embedding_bytes"] = sum(t["bytes"] for t in emb)
            r["weight_bytes_per_token"] = sum(t["bytes"] for t in tens) - r["embedding_bytes"]
            r["types"] = {t["name"]: t["type"] for t in tens if t["name"] in ("token_embd.weight", "output.weight", "blk.0.ffn_up.weight")}
    bpt = r["weight_bytes_per_token"]
    r["decode_bound_tokens_per_second"] = bw * 1e9 / bpt if bw and bpt else None
    r["fraction_of_decode_bound"] = (r["tg_tokens_per_second"] / r["decode_bound_tokens_per_second"]
                                     if r["tg_tokens_per_second"] and r["decode_bound_tokens_per_second"] else None)
    rows.append(r)

ratios = {}
for q in sorted({r["type"] for r in rows}):
    o = next((r for r in rows if r["type"] == q and r["tool"] == "kimi-run"), None)
    p = next((r for r in rows if r["type"] == q and r["tool"] == "llama.cpp"), None)
    if o and p:
        ratios[q] = {k: (o[f"{k}_tokens_per_second"] / p[f"{k}_tokens_per_second"]
                         if o[f"{k}_tokens_per_second"] and p[f"{k}_tokens_per_second"] else None) for k in ("pp", "tg")}

f = lambda v, fmt: (fmt % v) if v is not None else "-"
hdr = (f"{'type':<4} {'tool':<10} {'weights':<38} {'GB/token':>8} {f'pp{P} t/s':>9} {f'tg{N} t/s':>9} "
       f"{'pp ours/l':>9} {'tg ours/l':>9} {'tg bound':>8} {'of bound':>8} {'RSS GiB':>7} {'cached':>6} {'busy':>4} {'load':>9}")
print(hdr); print("-" * len(hdr))
for r in rows:
    rat = ratios.get(r["type"], {}) if r["tool"] == "kimi-run" else {}
    types = r.get("types") or {}
    # layer linears' type (what the q4/q8 run actually stores), then embedding and head
    layer = next((v for k, v in types.items() if "up_proj" in k or "ffn_up" in k), None)
    desc = layer or (("q4" if r["type"] == "q4" else "q8") if r["tool"] == "kimi-run" else ("Q4_0" if r["type"] == "q4" else "Q8_0"))
    emb = next((v for k, v in types.items() if "embed" in k or "embd" in k), None)
    head = next((v for k, v in types.items() if "lm_head" in k or k == "output.weight"), None)
    if emb or head: desc += f" (emb {emb}, out {head})"
    print(f"{r['type']:<4} {r['tool']:<10} {desc:<38} {f(r['weight_bytes_per_token'] and r['weight_bytes_per_token'] / 1e9, '%.3f'):>8} "
          f"{f(r['pp_tokens_per_second'], '%.2f'):>9} {f(r['tg_tokens_per_second'], '%.2f'):>9} "
          f"{f(rat.get('pp'), '%.2f'):>9} {f(rat.get('tg'), '%.2f'):>9} {f(r['decode_bound_tokens_per_second'], '%.2f'):>8} "
          f"{f(r['fraction_of_decode_bound'], '%.2f'):>8} {f(r['peak_rss_bytes'] and r['peak_rss_bytes'] / 2**30, '%.2f'):>7} "
          f"{f(r['model_resident_in_page_cache'], '%.2f'):>6} {r['other_cpu_busy_before']:4.2f} {r['loadavg_1min_before']:4.2f}/{r['loadavg_1min_after']:4.2f}"
          + ("" if r["exit_status"] == 0 else f"  FAILED {r['exit_status']}"))
print()
print(f"threads {threads}; pp{P}/tg{N} tokens per second are the best of the repetitions for both tools "
      f"(llama-bench's averages are in the JSON)")
print("GB/token: weight bytes read per decoded token = all LLM weight tensors except the token-embedding table (only "
      "row-gathered); tg bound = read bandwidth / GB/token; of bound = tg / tg bound")
print(f"read bandwidth: {f(bw, '%.1f')} GB/s ({bw_how or 'not measured'}; load {bw_load} before)")
print("cached: fraction of the model file in the page cache after the run (fincore); busy: CPU use by other processes "
      "(fraction of all cores, 2 s just before the run); load: 1-minute load average before/after the measured run (the "
      "'before' value still counts our own warm-up, the 'after' one our run)")
for q, v in ratios.items():
    print(f"ours / llama.cpp, {q}: pp {f(v['pp'], '%.2f')}, tg {f(v['tg'], '%.2f')}")
doc = dict(repo_commit=commit, llama_cpp=peer_version or None, threads=int(threads), prompt_tokens=P, gen_tokens=N,
           repetitions=int(R), read_bandwidth_gb_per_s=bw, bandwidth_method=bw_how, loadavg_1min_before_bandwidth=float(bw_load),
           cpu=platform.processor() or platform.machine(), nproc=os.cpu_count(), rows=rows, ratio_ours_over_llama_cpp=ratios)
with open(out, "w") as fh:
    json.dump(doc, fh, indent=2)
print(f"json: {out}")
EOF

if [ "${KIMI_BENCH_CLEAN:-0}" = 1 ]; then
  say "KIMI_BENCH_CLEAN=1: deleting the converted models in $OUT"
  rm -f "$OUT"/qwen2-*.kaf "$OUT"/qwen2-*.gguf
fi
