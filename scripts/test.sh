#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
scripts/setup.sh
# Each phase says when it starts (seconds since the script began): CI must stay under 20 minutes.
phase() { echo "== [$(printf '%4d' "$SECONDS") s] $*"; }

phase "build (debug, with tests)"
swift build --build-tests
phase "test"
# Debug build: arithmetic overflow and bounds traps stay on, so a hostile input that slips past a
# reader's checks fails the test run instead of passing silently.
set +e
swift test --skip-build 2>&1 | tee .build/test.log | grep -vE '^(◇ .* started|↳ )'
status=${PIPESTATUS[0]}
set -e
# Also the plain closing line any CI reads ("N passed, N failed"), from Swift Testing's summary.
tests=$(grep -aoE 'Test run with [0-9]+ tests' .build/test.log | tail -1 | grep -oE '[0-9]+' || echo 0)
issues=$(grep -aoE 'with [0-9]+ issues? \(' .build/test.log | tail -1 | grep -oE '[0-9]+' || true)
if [ "$status" -eq 0 ]; then echo "swift-test: $tests passed, 0 failed"; else echo "swift-test: $tests tests, ${issues:-some} failed"; fi
if [ "$status" -eq 0 ]; then
  phase "release build (what the demo and benchmarks run)"
  swift build -c release
  phase "fuzz every reader for 5 s (scripts/fuzz.sh; libFuzzer + AddressSanitizer)"
  scripts/fuzz.sh "${KIMI_FUZZ_SECONDS:-5}" || status=$?
fi
phase "done (exit $status)"
exit "$status"
