#!/usr/bin/env python3
"""Golden cases of stage `whisper` (formats/GOLDEN.md) from a real Hugging Face Whisper folder and real
speech, written by transformers (never by our code), for `kimi-parity FILE.kaf --golden ...`.

For each clip: librosa.load(sr=16000) → the first 30 s piece → transformers' WhisperFeatureExtractor
(the folder's preprocessor, padded to 30 s) → `WhisperForConditionalGeneration.model.encoder` in float32
→ the last hidden state [1500, d] and the first 4·⌈L/1280⌉ frames regrouped [n, 4d] (as Kimi regroups them).

    /opt/refvenv/bin/python scripts/real/make_whisper_golden.py [--model DIR] [--out DIR] CLIP.wav ...

Defaults: --model $KIMI_REAL_DIR/whisper-tiny.en (scripts/real/prepare_whisper_tiny.py makes it),
--out $KIMI_REAL_DIR/golden. Clips: espeak-ng speech, the official Kimi-Audio repo's test_audios/*.wav.
Nothing here is committed: the weights and the goldens stay outside the repository.
"""

import argparse
import math
import os
import sys
from pathlib import Path

import librosa
import numpy as np
import torch
from safetensors.numpy import save_file
from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration


def main() -> None:
    real = Path(os.environ.get("KIMI_REAL_DIR", "/tmp/kimi-real"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", nargs="+", type=Path)
    ap.add_argument("--model", type=Path, default=real / "whisper-tiny.en")
    ap.add_argument("--out", type=Path, default=real / "golden")
    a = ap.parse_args()
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration.from_pretrained(a.model, torch_dtype=torch.float32).eval()
    fe = WhisperFeatureExtractor.from_pretrained(a.model)
    a.out.mkdir(parents=True, exist_ok=True)
    for clip in a.clips:
        y, _ = librosa.load(clip, sr=16000)
        piece = y[:480_000]
        mel = fe(piece, sampling_rate=16000, return_tensors="np").input_features[0].astype(np.float32)
        with torch.no_grad():
            h = model.model.encoder(torch.from_numpy(mel)[None]).last_hidden_state[0].numpy()
        n = math.ceil(len(piece) / 1280)
        d = h.shape[1]
        features = h[: 4 * n].reshape(n, 4 * d)
        name = f"whisper_{a.model.name}_{clip.stem}.safetensors"
        meta = {"kaf.golden": "1", "stage": "whisper", "in.file": str(clip), "tokens": str(n),
                "model": f"{a.model.name} (transformers WhisperForConditionalGeneration encoder, float32)"}
        save_file({"in.mel": mel, "out.encoder": np.ascontiguousarray(h, np.float32),
                   "out.features": np.ascontiguousarray(features, np.float32)}, str(a.out / name), metadata=meta)
        print(f"{a.out / name}: {len(y) / 16000:.2f} s, mel {mel.shape}, encoder {h.shape}, n = {n}", file=sys.stderr)


if __name__ == "__main__":
    main()
