"""Whisper-encoder goldens from the official code (formats/GOLDEN.md, stage "whisper").

Runs Kimi-Audio's own encoder (kimia_infer/models/tokenizer/whisper_Lv3/modeling_whisper.py
`WhisperModel.from_pretrained(...).encoder`, as `WhisperEncoder.__init__` in whisper.py loads it) on
the tiny release's `whisper-large-v3/` folder in float32 on the CPU, over the first 30 s piece of
Tests/Fixtures/audio/fox_22k.wav:
  in.mel       [128, 3000]  whisper.py `log_mel_spectrogram(pad_or_trim(librosa.load(sr=16000)))`
  out.encoder  [1500, d]    `last_hidden_state` (after the final LayerNorm)
  out.features [n, 4d]      `tokenize_waveform`'s first 4·token_len frames regrouped as
                            `extract_whisper_feat` does ([1, 4n, d] -> [1, n, 4d])
Patches (no official file is edited): the module imports `flash_attn` at load time (CUDA only), so
`flash_attn_func` is replaced by the same attention written out in float32
(softmax(q·kᵀ·scale)·v, bidirectional for the encoder); whisper.py's `.cuda()`/bf16 casts are not used
(the model runs in float32 on the CPU); `make_tiny_release.install_import_stubs` supplies the other
import stand-ins.
Run: /opt/refvenv/bin/python scripts/reference/make_whisper_goldens.py --kimi-src /tmp/ref-src/kimi --glm-src /tmp/ref-src/glm
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))


def flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, return_attn_probs=False, **kw):
    """flash_attn's [B, T, H, D] interface, written out (float32 softmax)."""
    assert not causal and dropout_p == 0.0 and not return_attn_probs
    qh, kh, vh = (x.transpose(1, 2).float() for x in (q, k, v))  # [B, H, T, D]
    s = torch.matmul(qh, kh.transpose(-1, -2)) * softmax_scale
    o = torch.matmul(torch.softmax(s, dim=-1), vh)
    return o.transpose(1, 2).contiguous().to(q.dtype)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kimi-src", type=Path, default=Path("/tmp/ref-src/kimi"))
    ap.add_argument("--glm-src", type=Path, default=Path("/tmp/ref-src/glm"))
    args = ap.parse_args()
    import librosa  # the real one: imported before the stubs below replace it
    y, _ = librosa.load(ROOT / "Tests/Fixtures/audio/fox_22k.wav", sr=16000)
    import make_frontend_goldens as mfg
    w = mfg.load_kimi_whisper(args.kimi_src.resolve())
    mel = w.log_mel_spectrogram(w.pad_or_trim(y[:480000].flatten()))
    token_len = (min(y.size, 480000) - 1) // (160 * 8) + 1

    import make_tiny_release as mtr
    mtr.install_import_stubs(args.kimi_src.resolve(), args.glm_src.resolve())
    sys.modules["flash_attn"].flash_attn_func = flash_attn_func
    import kimia_infer.models.tokenizer.whisper_Lv3.modeling_whisper as mw
    mw.flash_attn_func = flash_attn_func
    model = mw.WhisperModel.from_pretrained(str(ROOT / "Tests/Fixtures/tiny-release/whisper-large-v3"),
                                            torch_dtype=torch.float32).encoder.eval()
    with torch.no_grad():
        h = model(mel.unsqueeze(0).float(), return_dict=True).last_hidden_state  # [1, 1500, d]
    feats = h[:, : token_len * 4, :]
    feats = feats.reshape(feats.shape[0], feats.shape[1] // 4, feats.shape[2] * 4)
    rev = subprocess.run(["git", "-C", str(args.kimi_src), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    t = {"in.mel": mel.numpy().astype(np.float32), "out.encoder": h[0].numpy().astype(np.float32),
         "out.features": feats[0].numpy().astype(np.float32)}
    meta = {"kaf.golden": "1", "stage": "whisper", "dtype": "f32", "model": "Tests/Fixtures/tiny-release",
            "in.file": "Tests/Fixtures/audio/fox_22k.wav", "tokens": str(token_len),
            "source": f"Kimi-Audio@{rev} whisper_Lv3/modeling_whisper.py WhisperModel.encoder, float32 on CPU; "
                      f"flash_attn_func written out in float32; mel from whisper.py log_mel_spectrogram"}
    path = ROOT / "Tests/Fixtures/golden/whisper_tiny_encoder_f32.safetensors"
    save_file(t, str(path), metadata=meta)
    path.chmod(0o644)
    print(f"encoder {tuple(h.shape)}, features {tuple(feats.shape)}, tokens {token_len}")


if __name__ == "__main__":
    main()
