#!/usr/bin/env python3
"""Golden cases of stage `whisper_decoder` (formats/GOLDEN.md) from a real Hugging Face Whisper folder and
real speech, written by transformers (never by our code): greedy transcription ids, the prompt generate
built, and the teacher-forced raw decoder logits at every position.

For each clip and each of its consecutive 30 s windows (the way our runtime decodes longer audio):
librosa.load(sr=16000) → the window's samples → the folder's WhisperFeatureExtractor (padded to 30 s) →
`WhisperForConditionalGeneration.generate(input_features, do_sample=False, num_beams=1,
return_timestamps=False)` in float32 (eager attention, one thread), with no `max_new_tokens` (generation
runs to <|endoftext|> or to generation_config.max_length = 448 decoder positions, prompt included).
English-only models (tiny.en) take no language/task: generate builds the prompt
<|startoftranscript|><|notimestamps|> from forced_decoder_ids [[1, <|notimestamps|>]]; a multilingual
folder gets --language (default: detected) and task "transcribe".  The machinery (what is stored, the
checks that the teacher-forced logits, after generate's two suppression processors, give back every
greedy id and match generate's own scores) is `decode_case` of
scripts/reference/make_whisper_decoder_goldens.py; see its docstring.  Metadata `text` is
`tokenizer.decode(greedy, skip_special_tokens=True)` with the folder's tokenizer.

    /opt/refvenv/bin/python scripts/real/make_whisper_decoder_golden.py [--model DIR] [--out DIR] [CLIP.wav ...]

Without clips: $KIMI_REAL_DIR/clips/{fox,stella}.wav (espeak-ng's default voice saying "The quick brown
fox jumps over the lazy dog." and "Please call Stella and ask her to bring these things with her from the
store."; made when missing), the official Kimi-Audio repo's
test_audios/{asr_example,qa_example}.wav (--kimi-src, default /tmp/ref-src/kimi) and
$KIMI_REAL_DIR/clips/long75.wav, which is (re)built first: those four clips at 16 kHz, each followed by
0.5 s of silence, repeated in that order until the audio is >= 75 s (76.3 s: 3 windows), 16-bit PCM.
Output: --out (default $KIMI_REAL_DIR/golden)/whisper_decoder_<model>_<clip>[_w<k>].safetensors (model =
the folder name without "whisper-"; `_w<k>` only for clips longer than one window).  Defaults: --model
$KIMI_REAL_DIR/whisper-tiny.en (scripts/real/prepare_whisper_tiny.py makes it).  Nothing here is
committed: the weights, clips and goldens stay outside the repository.
"""

import argparse
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "reference"))
import make_whisper_decoder_goldens as wd  # noqa: E402  (decode_case, golden_tensors, save_case, ...)

LONG_SECONDS, GAP_SECONDS = 75.0, 0.5


def make_long(clips, out: Path) -> float:
    parts, n, i = [], 0, 0
    pieces = [librosa.load(str(c), sr=wd.SR)[0] for c in clips]
    while n < LONG_SECONDS * wd.SR:
        y = pieces[i % len(pieces)]
        parts += [y, np.zeros(int(GAP_SECONDS * wd.SR), np.float32)]
        n += len(y) + int(GAP_SECONDS * wd.SR)
        i += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), np.clip(np.concatenate(parts), -1.0, 1.0), wd.SR, subtype="PCM_16")
    return n / wd.SR


def main() -> None:
    real = Path(os.environ.get("KIMI_REAL_DIR", "/tmp/kimi-real"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", nargs="*", type=Path)
    ap.add_argument("--model", type=Path, default=real / "whisper-tiny.en")
    ap.add_argument("--out", type=Path, default=real / "golden")
    ap.add_argument("--kimi-src", type=Path, default=Path("/tmp/ref-src/kimi"))
    ap.add_argument("--language", default=None, help="multilingual folders only (default: detect)")
    a = ap.parse_args()
    import transformers
    from transformers import AutoTokenizer
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=UserWarning, module=r"transformers\.generation")

    clips = a.clips
    if not clips:
        base = [real / "clips/fox.wav", real / "clips/stella.wav", a.kimi_src / "test_audios/asr_example.wav",
                a.kimi_src / "test_audios/qa_example.wav"]
        # The two English clips: espeak-ng's default voice (22050 Hz), made here when missing.
        for clip, text in [(base[0], "The quick brown fox jumps over the lazy dog."),
                           (base[1], "Please call Stella and ask her to bring these things with her from the store.")]:
            if not clip.exists():
                clip.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(["espeak-ng", "-w", str(clip), text], check=True)
        long = real / "clips/long75.wav"
        print(f"{long}: {make_long(base, long):.2f} s", file=sys.stderr)
        clips = base + [long]
    model, fe = wd.load_folder(a.model)
    tok = AutoTokenizer.from_pretrained(str(a.model))
    gc = model.generation_config
    multilingual = bool(getattr(gc, "is_multilingual", False))
    language, task = (a.language, "transcribe") if multilingual else (None, None)
    name = a.model.name.removeprefix("whisper-")
    a.out.mkdir(parents=True, exist_ok=True)
    for clip in clips:
        y, _ = librosa.load(str(clip), sr=wd.SR)
        windows = math.ceil(len(y) / wd.WINDOW)
        for w in range(windows):
            samples, start, end, _ = wd.load_window(clip, w)
            r = wd.decode_case(model, fe, samples, language, task, None)
            assert r["single_pass"], (clip, w, r["passes"])
            if multilingual:
                lang = language or next(k[2:-2] for k, v in gc.lang_to_id.items() if v == r["prompt"][1])
            else:
                lang = "en"
            meta = {"kaf.golden": "1", "stage": "whisper_decoder", "dtype": "f32", "source": wd.source_string(r),
                    "model": f"{a.model.name} ({a.model})", "in.file": str(clip), "window": str(w),
                    "window_samples": [start, end], "language": lang,
                    "language_source": ("given" if language else "detected") if multilingual
                    else "English-only model: no language token in the prompt",
                    "task": "transcribe", "max_new_tokens": "null", "max_length": str(gc.max_length),
                    "greedy_min_top2_gap": r["min_gap"],
                    "stopped": "eot" if r["stopped"] else "max_length",
                    "logits_processors": r["processors"], "suppress_tokens": list(gc.suppress_tokens),
                    "begin_suppress_tokens": list(gc.begin_suppress_tokens),
                    "text": tok.decode(r["greedy"], skip_special_tokens=True)}
            if "language" in r:
                meta["language_top2_gap"] = r["language_gap"]
            suffix = f"_w{w}" if windows > 1 else ""
            path = a.out / f"whisper_decoder_{name}_{clip.stem}{suffix}.safetensors"
            wd.save_case(path, wd.golden_tensors(r), meta)
            wd.reload_and_rerun(path, model, fe, language, task, None)
            print(f"{path.name}: {len(samples) / wd.SR:.2f} s, prompt {r['prompt']}, {len(r['greedy'])} ids "
                  f"(stopped: {meta['stopped']}), min gap {r['min_gap']:.4g}, KV-cached vs full |Δ| "
                  f"{r['kv_diff']:.2g}, suppression changed {r['suppression_changed']} steps\n"
                  f"  greedy {r['greedy']}\n  text {meta['text']!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
