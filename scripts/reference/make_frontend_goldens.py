"""Audio front-end goldens from the official code (formats/GOLDEN.md, stage "frontend").

Inputs (written first, into Tests/Fixtures/audio/): speech from espeak-ng (Debian), made into
  fox_22k.wav          espeak-ng's own output: 22,050 Hz mono 16-bit PCM
  fox_44k_stereo.flac  44.1 kHz stereo FLAC: left = the speech (soxr up-sampled), right = 0.6 × left
                       delayed by 37 samples (so the channel mean differs from either channel)
  long_31s.wav         16 kHz mono 16-bit PCM, 31 s: sentences in several voices and rates with
                       pauses, so a 30 s piece and a 1 s piece follow
  fox_16k_float.wav    16 kHz mono 32-bit float: librosa's 16 kHz version of fox_22k.wav (no
                       resampling when read back)

Goldens (Tests/Fixtures/golden/frontend_<clip>.safetensors), computed by:
  * waveform: librosa.load(path, sr=16000) (soundfile decode, to_mono, soxr_hq resample,
    fix_length) -> out.wav16k [N]
  * Whisper path: Kimi-Audio's kimia_infer/models/tokenizer/whisper_Lv3/whisper.py
    `pad_or_trim` + `log_mel_spectrogram` (its own mel_filters.npz) per 30 s piece, as
    `WhisperEncoder.tokenize_waveform` cuts them -> out.whisper_mel.NNN [128, F] (F = the first
    min(3000, KEEP) frames, to keep the fixture small) and out.whisper_tokens [pieces]
  * VQ path: transformers' WhisperFeatureExtractor (the glm-4-voice-tokenizer folder's config) called
    as GLM-4-Voice's speech_tokenizer/utils.py `extract_speech_token` calls it (30 s pieces, batches
    of 128, padding="longest", pad_to_multiple_of=1280) -> out.vq_mel.NNN [128, min(frames, KEEP)],
    out.vq_frames [pieces] (all frames of the padded piece), out.vq_tokens [pieces]
  Both mel paths take out.wav16k as their input, so the mel tests do not depend on the resampler.

Run: /opt/refvenv/bin/python scripts/reference/make_frontend_goldens.py --kimi-src /tmp/ref-src/kimi
(extract_speech_token itself imports torchaudio and a CUDA model; the feature-extractor call is
replicated here line for line instead, see `vq_mels`.)
"""
from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import soxr
import torch
from safetensors.numpy import save_file
from transformers import WhisperFeatureExtractor

ROOT = Path(__file__).resolve().parents[2]
AUDIO = ROOT / "Tests/Fixtures/audio"
GOLDEN = ROOT / "Tests/Fixtures/golden"
GLM_CFG = ROOT / "Tests/Fixtures/tiny-release/glm-4-voice-tokenizer"
KEEP = 1024  # mel frames stored per piece

SENTENCES = [
    ("en-us", 160, "The quick brown fox jumps over the lazy dog."),
    ("en-gb", 140, "Kimi Audio listens to the user, thinks about the answer, and then speaks it."),
    ("en-us+f3", 175, "Please transcribe this recording: the meeting moved to Tuesday at three."),
    ("en-sc", 120, "Each audio token covers eighty milliseconds of sound; twelve and a half per second."),
    ("en-us+m4", 190, "Numbers such as two thousand twenty five, sixteen thousand and twenty four thousand."),
]


def espeak(voice: str, speed: int, text: str, path: Path):
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)


def make_inputs(tmp: Path):
    AUDIO.mkdir(parents=True, exist_ok=True)
    espeak(*SENTENCES[0], AUDIO / "fox_22k.wav")
    x, sr = sf.read(AUDIO / "fox_22k.wav", dtype="float32")
    assert sr == 22050 and x.ndim == 1
    left = soxr.resample(x, sr, 44100, quality="HQ").astype(np.float32)
    right = 0.6 * np.concatenate([np.zeros(37, np.float32), left[:-37]])
    sf.write(AUDIO / "fox_44k_stereo.flac", np.stack([left, right], axis=1), 44100, subtype="PCM_16")
    parts = []
    for i, (v, s, t) in enumerate(SENTENCES * 2):
        p = tmp / f"s{i}.wav"
        espeak(v, s, t, p)
        y, r = librosa.load(p, sr=16000)
        parts += [y, np.zeros(int(0.35 * 16000), np.float32)]
    long = np.concatenate(parts)
    assert long.size >= 31 * 16000, long.size / 16000
    sf.write(AUDIO / "long_31s.wav", long[: 31 * 16000], 16000, subtype="PCM_16")
    y, _ = librosa.load(AUDIO / "fox_22k.wav", sr=16000)
    sf.write(AUDIO / "fox_16k_float.wav", y, 16000, subtype="FLOAT")


def load_kimi_whisper(kimi_src: Path):
    """whisper_Lv3/whisper.py as a module of a stand-in package (its `.modeling_whisper` import,
    the encoder, is not needed for the front end); its mel_filters.npz is read from the checkout."""
    pkg = "kimi_whisper_lv3"
    mod = types.ModuleType(pkg)
    mod.__path__ = []
    mod.__spec__ = importlib.machinery.ModuleSpec(pkg, None, is_package=True)
    sys.modules[pkg] = mod
    stub = types.ModuleType(pkg + ".modeling_whisper")
    stub.WhisperModel = None
    sys.modules[pkg + ".modeling_whisper"] = stub
    path = kimi_src / "kimia_infer/models/tokenizer/whisper_Lv3/whisper.py"
    spec = importlib.util.spec_from_file_location(pkg + ".whisper", path)
    w = importlib.util.module_from_spec(spec)
    sys.modules[pkg + ".whisper"] = w
    spec.loader.exec_module(w)
    return w


def pieces(audio: np.ndarray):
    """The 30 s pieces, as tokenize_waveform and extract_speech_token cut them."""
    out, t = [], 0
    while t * 16000 < audio.shape[0]:
        out.append(audio[t * 16000: (t + 30) * 16000])
        t += 30
    return out


def whisper_mels(w, audio: np.ndarray):
    mels, tokens = [], []
    for seg in pieces(audio):
        tokens.append((seg.shape[0] - 1) // (160 * 8) + 1)          # tokenize_waveform's token_len
        mel = w.log_mel_spectrogram(w.pad_or_trim(seg.flatten()))  # [128, 3000]
        assert mel.shape == (128, 3000)
        mels.append(mel.numpy().astype(np.float32))
    return mels, tokens


def vq_mels(fe: WhisperFeatureExtractor, audio: np.ndarray):
    """extract_speech_token's feature-extractor call (stride = conv1 1 · conv2 2 · pooling 4 · hop 160)."""
    stride = 1 * 2 * 4 * fe.hop_length
    segs = pieces(audio)
    mels, frames, tokens = [], [], []
    for start in range(0, len(segs), 128):
        f = fe(segs[start: start + 128], sampling_rate=16000, return_attention_mask=True, return_tensors="pt",
               padding="longest", pad_to_multiple_of=stride)
        m = f.input_features.numpy().astype(np.float32)        # [b, 128, frames]
        mask = f.attention_mask[:, ::2][:, ::4]                # tokens kept per piece
        for i in range(m.shape[0]):
            mels.append(m[i])
            frames.append(m.shape[2])
            tokens.append(int(mask[i].sum()))
    return mels, frames, tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kimi-src", type=Path, default=Path("/tmp/ref-src/kimi"))
    ap.add_argument("--tmp", type=Path, default=Path("/tmp/kimi-frontend"))
    args = ap.parse_args()
    args.tmp.mkdir(parents=True, exist_ok=True)
    make_inputs(args.tmp)
    w = load_kimi_whisper(args.kimi_src.resolve())
    fe = WhisperFeatureExtractor.from_pretrained(str(GLM_CFG))
    rev = subprocess.run(["git", "-C", str(args.kimi_src), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    # fox_16k_float.wav is librosa's output for fox_22k.wav: its golden is frontend_fox_22k's.
    for clip in ["fox_22k.wav", "fox_44k_stereo.flac", "long_31s.wav"]:
        y, _ = librosa.load(AUDIO / clip, sr=16000)
        t = {"out.wav16k": np.ascontiguousarray(y, dtype=np.float32)}
        wm, wt = whisper_mels(w, y)
        vm, vf, vt = vq_mels(fe, y)
        for i, m in enumerate(wm):
            t[f"out.whisper_mel.{i:03d}"] = np.ascontiguousarray(m[:, :KEEP])
        for i, m in enumerate(vm):
            t[f"out.vq_mel.{i:03d}"] = np.ascontiguousarray(m[:, :KEEP])
        t["out.whisper_tokens"] = np.array(wt, np.int64)
        t["out.vq_frames"] = np.array(vf, np.int64)
        t["out.vq_tokens"] = np.array(vt, np.int64)
        meta = {"kaf.golden": "1", "stage": "frontend", "in.file": f"Tests/Fixtures/audio/{clip}",
                "pieces": str(len(wm)), "keep_frames": str(KEEP),
                "source": f"librosa {librosa.__version__}.load(sr=16000) (soxr {soxr.__version__}, libsoxr "
                          f"{soxr.__libsoxr_version__}); whisper mel: Kimi-Audio@{rev} whisper_Lv3/whisper.py "
                          f"log_mel_spectrogram(pad_or_trim(piece)); vq mel: transformers WhisperFeatureExtractor "
                          f"as GLM-4-Voice speech_tokenizer/utils.py extract_speech_token calls it; torch "
                          f"{torch.__version__}"}
        name = clip.rsplit(".", 1)[0]
        path = GOLDEN / f"frontend_{name}.safetensors"
        save_file(t, str(path), metadata=meta)
        path.chmod(0o644)
        print(f"{clip}: {y.size} samples at 16 kHz, whisper pieces {len(wm)} tokens {wt}, vq frames {vf} tokens {vt}")


if __name__ == "__main__":
    main()
