"""Mel filter-bank goldens from transformers' WhisperFeatureExtractor (the front end GLM-4-Voice's
tokenizer uses; Kimi's Whisper path loads the same librosa Slaney filters from mel_filters.npz).
Writes Tests/Fixtures/mel_filters.safetensors: mel_128 [128, 201] and mel_80 [80, 201] (F32,
16 kHz, n_fft 400, Slaney scale and norm, fmax 8 kHz).
Run: .venv-ref/bin/python scripts/reference/make_mel_goldens.py"""
import os
import numpy as np
from safetensors.numpy import save_file
from transformers import WhisperFeatureExtractor

out = {}
for n in (128, 80):
    fe = WhisperFeatureExtractor(feature_size=n, sampling_rate=16000, n_fft=400, hop_length=160)
    out[f"mel_{n}"] = np.ascontiguousarray(fe.mel_filters.T.astype(np.float32))   # [n_mels, 201]
path = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "mel_filters.safetensors")
save_file(out, path, metadata={"source": "transformers WhisperFeatureExtractor.mel_filters"})
print("wrote", os.path.normpath(path), {k: v.shape for k, v in out.items()})
