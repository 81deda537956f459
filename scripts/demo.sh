#!/usr/bin/env bash
# Installs what is missing, builds release, and runs the main job on the embedded tiny model
# (Tests/Fixtures/tiny-release, a random-weight copy of the Kimi-Audio release made with the
# official classes by scripts/reference/make_tiny_release.py).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
scripts/setup.sh

echo "== build (release)"
swift build -c release
bin=$(swift build -c release --show-bin-path)

start=$SECONDS
out=${TMPDIR:-/tmp}/kimi-demo
mkdir -p "$out"
release=Tests/Fixtures/tiny-release

echo "== convert the tiny release to q4 (group 32)"
"$bin/kimi-convert" --q4 --force "$release" "$out/tiny-q4.kaf"
echo "== what the file holds"
"$bin/kimi-run" "$out/tiny-q4.kaf" info --verify

echo "== text chat (tiny random-weight model: the words are noise, the pipeline is real)"
"$bin/kimi-run" "$out/tiny-q4.kaf" chat "What is the capital of France?" --max-tokens 12
echo "== speech recognition on espeak-ng speech (tiny random-weight model: the words are noise; the codes are the official tokenizer's)"
"$bin/kimi-run" "$out/tiny-q4.kaf" asr Tests/Fixtures/audio/fox_22k.wav --json --max-tokens 12
echo "== text to speech and a spoken answer to speech (24 kHz WAVs; the tiny model's speech is noise, the detokenizer is the official one's)"
"$bin/kimi-run" "$out/tiny-q4.kaf" tts "The meeting moved to Tuesday." -o "$out/tts.wav" --json --max-tokens 120
"$bin/kimi-run" "$out/tiny-q4.kaf" talk Tests/Fixtures/audio/fox_22k.wav -o "$out/talk.wav" --json --max-tokens 120
echo "wrote $out/tts.wav and $out/talk.wav"
echo "== parity with the official PyTorch code (golden cases from scripts/reference/: the LLM, the Whisper encoder, the VQ tokenizer, the detokenizer)"
"$bin/kimi-convert" --f32 --force "$release" "$out/tiny-f32.kaf" >/dev/null 2>&1
"$bin/kimi-parity" "$out/tiny-f32.kaf" --golden Tests/Fixtures/golden/kimi_tiny_lm_f32.safetensors \
  --golden Tests/Fixtures/golden/kimi_tiny_lm_textonly_f32.safetensors \
  --golden Tests/Fixtures/golden/whisper_tiny_encoder_f32.safetensors \
  --golden Tests/Fixtures/golden/vq_tiny_long_31s.safetensors \
  --golden Tests/Fixtures/golden/dit_tiny_f32.safetensors Tests/Fixtures/golden/vocoder_tiny_f32.safetensors \
  Tests/Fixtures/golden/detok_tiny_f32.safetensors
echo "== the q4 file against the same official f32 run (bounds for q4 weights)"
"$bin/kimi-parity" "$out/tiny-q4.kaf" --golden Tests/Fixtures/golden/kimi_tiny_lm_f32.safetensors
echo "== a plain Whisper checkpoint (tiny random multilingual fixture): transcription with its own decoder, and its parity with transformers"
"$bin/kimi-convert" --f32 --force Tests/Fixtures/tiny-whisper "$out/tiny-whisper-f32.kaf" >/dev/null 2>&1
"$bin/kimi-run" "$out/tiny-whisper-f32.kaf" asr Tests/Fixtures/audio/fox_22k.wav --json --max-tokens 12
"$bin/kimi-parity" "$out/tiny-whisper-f32.kaf" --golden Tests/Fixtures/golden/whisper_tiny_decoder_*.safetensors
echo "== the parity report: the q4 file against the release folder itself (every tensor, both heads' KL divergence, every layer, audio in and out, the four directions)"
"$bin/kimi-parity" "$release" "$out/tiny-q4.kaf" --out "$out/report"
echo "== done in $((SECONDS - start)) s after the build; the report is $out/report/report.html (also report.md, report.json)"
