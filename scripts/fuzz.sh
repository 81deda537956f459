#!/usr/bin/env bash
# Coverage-guided fuzzing of every reader that takes a user's file (issue 12; docs/RELIABILITY.md):
# the .kaf reader, safetensors files and index, the zip + pickle reader (torch checkpoints),
# tiktoken, JSON, YAML and the audio decoder. Builds Sources/kimi-fuzz with libFuzzer and
# AddressSanitizer (swiftc -sanitize=fuzzer,address) into .build/fuzz, seeds one corpus per reader
# from the test fixtures, runs each reader for SECONDS, and prints executions per second and the
# crashes found. A crash (or a leak, a hang over 10 s, more than 2 GB) is saved under
# .build/fuzz-work/artifacts/READER/ and makes the script exit 1; replay one with
#   .build/debug/kimi-fuzz READER FILE
# and add it to Tests/Fixtures/fuzz/READER/ (replayed by scripts/test.sh) once fixed.
#
#   scripts/fuzz.sh [SECONDS] [READER...]     (default 60 s each, every reader)
#
# scripts/test.sh runs it at 5 s per reader; the work on issue 12 ran it for 600 s per reader.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
SECONDS_EACH=${1:-60}
shift || true
READERS=("$@")
[ ${#READERS[@]} -gt 0 ] || READERS=(kaf safetensors index torch tiktoken json yaml audio)

echo "== build the fuzzer (libFuzzer + AddressSanitizer, .build/fuzz)"
swift build --build-path .build/fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DKIMI_FUZZING --product kimi-fuzz 2>&1 |
  grep -vE "^(\[|ld.gold: warning|/usr/bin/ld.gold: warning)" || true
FUZZ=$(swift build --build-path .build/fuzz --show-bin-path)/kimi-fuzz
[ -x "$FUZZ" ] || { echo "fuzz.sh: the fuzzer did not build" >&2; exit 2; }

work=.build/fuzz-work  # outside SwiftPM's build path, which a build may prune
mkdir -p "$work"
fx=Tests/Fixtures
seed() {  # seed READER FILE... : copies (the first 64 KiB of) each file into the corpus
  local r=$1; shift
  mkdir -p "$work/corpus/$r"
  for f in "$@"; do [ -f "$f" ] && head -c 65536 "$f" > "$work/corpus/$r/$(basename "$f")"; done
}
if [ ! -f "$work/seeded" ]; then
  # A small .kaf: the tiny Qwen2 fixture at q8 (kimi-convert from a normal debug build).
  swift build --product kimi-convert > /dev/null
  .build/debug/kimi-convert --q8 --force "$fx/tiny-qwen2" "$work/tiny-qwen2.kaf" > /dev/null 2>&1
  seed kaf "$work/tiny-qwen2.kaf"
  seed safetensors "$fx"/readers/good/*.safetensors "$fx"/readers/single/model.safetensors "$fx"/readers/malformed/safetensors/*.safetensors
  seed index "$fx"/tiny-release/model.safetensors.index.json "$fx"/readers/sharded/*.json
  seed torch "$fx"/pickle/*.pt
  seed tiktoken "$fx"/readers/good/tiktoken*.model
  seed json "$fx"/tiny-release/config.json "$fx"/tiny-release/generation_config.json "$fx"/tiny-whisper/*.json "$fx"/readers/expected.json
  seed yaml "$fx"/readers/good/config.yaml "$fx"/tiny-release/audio_detokenizer/config.yaml "$fx"/readers/malformed/yaml/*.yaml
  seed audio "$fx"/audio/*
  for r in "${READERS[@]}"; do [ -d "$fx/fuzz/$r" ] && cp "$fx/fuzz/$r"/* "$work/corpus/$r/" 2>/dev/null || true; done
  touch "$work/seeded"
fi

failed=0
summary="$work/summary-$(IFS=-; echo "${READERS[*]}").md"
printf '| reader | seconds | executions | exec/s | corpus | crashes |\n| --- | --- | --- | --- | --- | --- |\n' > "$summary"
for r in "${READERS[@]}"; do
  mkdir -p "$work/corpus/$r" ".build/fuzz-work/artifacts/$r"
  log="$work/$r.log"
  set +e
  KIMI_FUZZ_TARGET=$r ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 "$FUZZ" "$work/corpus/$r" \
    -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix=".build/fuzz-work/artifacts/$r/" > "$log" 2>&1
  status=$?
  set -e
  runs=$(grep -aoE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | awk '{ s += $1 } END { print s + 0 }')
  crashes=$(find ".build/fuzz-work/artifacts/$r" -type f | wc -l)
  corpus=$(find "$work/corpus/$r" -type f | wc -l)
  rate=$(awk -v n="$runs" -v s="$SECONDS_EACH" 'BEGIN { printf "%.0f", n / s }')
  printf '| %s | %s | %s | %s | %s | %s |\n' "$r" "$SECONDS_EACH" "$runs" "$rate" "$corpus" "$crashes" >> "$summary"
  if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    failed=1
    echo "fuzz.sh: $r: status $status, $crashes artifact(s) in .build/fuzz-work/artifacts/$r (log $log)" >&2
    grep -aE "ERROR|SUMMARY|deadly signal|Fatal error" "$log" | head -5 >&2 || true
  fi
done
cat "$summary"
exit "$failed"
