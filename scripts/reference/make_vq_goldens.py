"""GLM-4-Voice speech-tokenizer goldens from the official code (formats/GOLDEN.md, stage "vq").

Runs GLM-4-Voice's `speech_tokenizer/modeling_whisper.py` `WhisperVQEncoder` (built as
`speech_tokenizer/utils.py` `load_quantize_encoder` builds it: `quantize_encoder_only = True`, layers
past `quantize_position` and the final LayerNorm left out) on the tiny release's
`glm-4-voice-tokenizer/` in float32 on the CPU, fed as `extract_speech_token` feeds it: transformers'
WhisperFeatureExtractor over the 30 s pieces (batches of 128, padding="longest",
pad_to_multiple_of=1280, return_attention_mask=True), then `quantized_token_ids` masked by the
attention mask at 12.5 Hz. Clips: Tests/Fixtures/audio/fox_22k.wav (one piece) and long_31s.wav
(two pieces, batched to 30 s), each loaded with librosa.load(sr=16000) as Kimi's Glm4Tokenizer does.
  in.wav        f32 [N]     the clip at 16 kHz as librosa.load gives it (the tokenizer's input)
  out.codes     int64 [n]   the tokens of the clip (pieces concatenated), raw 0-based ids
  out.pieces    int64 [p]   tokens per piece
Patches: none to the model; the state dict is read from the fixture (its keys carry no prefix,
utils.py strips `model.encoder.` from the real checkpoint's) instead of `.cuda()`-loading it.
Run: /opt/refvenv/bin/python scripts/reference/make_vq_goldens.py --glm-src /tmp/ref-src/glm
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import torch
from safetensors.numpy import save_file
from safetensors.torch import load_file
from transformers import WhisperFeatureExtractor

ROOT = Path(__file__).resolve().parents[2]
TOK = ROOT / "Tests/Fixtures/tiny-release/glm-4-voice-tokenizer"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--glm-src", type=Path, default=Path("/tmp/ref-src/glm"))
    args = ap.parse_args()
    sys.path.insert(0, str(args.glm_src.resolve()))
    from speech_tokenizer.configuration_whisper import WhisperVQConfig
    from speech_tokenizer.modeling_whisper import WhisperVQEncoder
    config = WhisperVQConfig.from_pretrained(str(TOK))
    config.quantize_encoder_only = True
    model = WhisperVQEncoder(config)
    sd = {}
    for k, v in load_file(str(TOK / "model.safetensors")).items():
        k = k[len("model.encoder."):] if k.startswith("model.encoder.") else k
        if k.startswith("layer_norm") or (k.startswith("layers") and int(k.split(".")[1]) >= config.quantize_position):
            continue
        sd[k] = v
    model.load_state_dict(sd)
    model.eval()
    fe = WhisperFeatureExtractor.from_pretrained(str(TOK))
    rev = subprocess.run(["git", "-C", str(args.glm_src), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    for clip in ["fox_22k.wav", "long_31s.wav"]:
        audio, _ = librosa.load(ROOT / "Tests/Fixtures/audio" / clip, sr=16000)
        segs, t = [], 0
        while t * 16000 < audio.shape[0]:
            segs.append(audio[t * 16000: (t + 30) * 16000])
            t += 30
        stride = model.conv1.stride[0] * model.conv2.stride[0] * (config.pooling_kernel_size or 1) * fe.hop_length
        codes, per = [], []
        for start in range(0, len(segs), 128):
            f = fe(segs[start: start + 128], sampling_rate=16000, return_attention_mask=True, return_tensors="pt",
                   padding="longest", pad_to_multiple_of=stride)
            with torch.no_grad():
                ids = model(**f).quantized_token_ids
            mask = f.attention_mask[:, ::model.conv1.stride[0] * model.conv2.stride[0]][:, ::config.pooling_kernel_size]
            for i in range(len(ids)):
                kept = ids[i][mask[i].bool()].tolist()
                codes += kept
                per.append(len(kept))
        meta = {"kaf.golden": "1", "stage": "vq", "dtype": "f32", "model": "Tests/Fixtures/tiny-release",
                "in.file": f"Tests/Fixtures/audio/{clip}",
                "source": f"GLM-4-Voice@{rev} speech_tokenizer/modeling_whisper.py WhisperVQEncoder (quantize_encoder_only), "
                          f"float32 on CPU, fed as utils.py extract_speech_token feeds it"}
        name = clip.rsplit(".", 1)[0]
        path = ROOT / f"Tests/Fixtures/golden/vq_tiny_{name}.safetensors"
        save_file({"in.wav": np.asarray(audio, np.float32), "out.codes": np.array(codes, np.int64),
                   "out.pieces": np.array(per, np.int64)}, str(path), metadata=meta)
        path.chmod(0o644)
        print(f"{clip}: {len(codes)} codes, per piece {per}, first {codes[:12]}")


if __name__ == "__main__":
    main()
