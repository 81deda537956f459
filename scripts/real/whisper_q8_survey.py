#!/usr/bin/env python3
"""How often 8-bit weights change a real Whisper's greedy transcript: ours, transformers and CTranslate2
side by side, each 8-bit run against its own float run, on a corpus of espeak-ng speech.

Whisper's greedy decoding is a chain of argmaxes: when two tokens are nearly tied, any perturbation picks
the other, and the rest of the window follows it. This script measures how often that happens, so the
question "are q8 transcripts identical to f32?" has a number for every implementation, not only ours.

Corpus (written to OUT/corpus, espeak-ng): 12 Harvard sentences in 5 voices (en-us, en-gb,
en-gb-scotland, en-us+f3, en-029) at 140 and 200 words per minute, one clip each (120 clips), plus the 12
sentences read in one go per voice at 175 wpm (5 clips of 37 s: 2 windows each), plus any CLIP given on
the command line (e.g. $KIMI_REAL_DIR/clips/long75.wav and the official test_audios/*.wav). Every 30 s
window is decoded on its own, greedy, no timestamps, as `kimi-run asr` does.

Runs (each gives the ids of every window):
- `--kaf FILE` (repeatable): `kimi-run FILE asr --json --no-speech-threshold 1`, our runtime;
- transformers `WhisperForConditionalGeneration.generate` in float32 on --model (the reference), and the
  same with the encoder's and decoder's matrices rounded to symmetric 8-bit groups of 32 along the input
  (ggml's q8_0 rounding, as the converter's, via measure_snr.q8; computed in float32: weight error only, no activation
  rounding), first for the encoder alone (our q8 default keeps the decoder at f16), then for both;
- CTranslate2 (`--ct2 DIR`, a converted model folder) at compute_type float32 and int8.

Report: per run, the windows whose ids equal the reference run's (ours and transformers against
transformers float32, CTranslate2 int8 against CTranslate2 float32) and the word error rate against the
sentences spoken (lower case, punctuation dropped, each clip's errors capped at its word count; corpus
clips only). Nothing is committed: the corpus, the ids and the report stay in OUT. `--rescore
OUT/report.json` prints the table again; `--features CLIP ...` instead compares transformers' own encoder
at bf16 and with q8-rounded matrices with its float32 run on Kimi-Audio's feature rows (as
`kimi-parity --golden` compares ours).

    /opt/refvenv/bin/python scripts/real/whisper_q8_survey.py --model $KIMI_REAL_DIR/whisper-tiny.en \\
        --kaf tiny.en-f32.kaf --kaf tiny.en-q8.kaf [--also-env KIMI_NO_AMX=1] [--ct2 DIR] [--out DIR] \\
        [--bin .build/release] [CLIP ...]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import librosa
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import measure_snr  # noqa: E402  (q8: the converter's rounding, in numpy)

SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
]
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-us+f3", "en-029"]
RATES = [140, 200]
SR, WINDOW = 16000, 480000
EOT = 50256  # ids at or above are special in every Whisper vocabulary


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def make_corpus(d: Path) -> dict:
    """Clip path → the text spoken."""
    d.mkdir(parents=True, exist_ok=True)
    truth = {}
    for v in VOICES:
        for s in RATES:
            for j, text in enumerate(SENTENCES):
                p = d / f"c_{v}_{s}_{j:02d}.wav"
                if not p.exists():
                    subprocess.run(["espeak-ng", "-v", v, "-s", str(s), "-w", str(p), text], check=True)
                truth[str(p)] = text
        p = d / f"long_{v}.wav"
        if not p.exists():
            (d / "sentences.txt").write_text("\n".join(SENTENCES) + "\n")
            subprocess.run(["espeak-ng", "-v", v, "-s", "175", "-g", "8", "-w", str(p), "-f", str(d / "sentences.txt")],
                           check=True)
        truth[str(p)] = " ".join(SENTENCES)
    return truth


def words(text: str) -> list:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def edits(a: list, b: list) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def fake_q8(w: torch.Tensor, group: int = 32) -> torch.Tensor:
    """w with every group of `group` along the input rounded as the converter rounds q8 (ggml's
    quantize_row_q8_0_ref: measure_snr.q8)."""
    g = w.detach().reshape(-1, group).numpy().astype(np.float32)
    return torch.from_numpy(measure_snr.q8(g)).reshape(w.shape)


def text_ids(ids):
    return [i for i in ids if i < EOT]


def report(keys, truth, runs, tok) -> None:
    """The Markdown table: windows identical to the reference run, and the word error rate with each
    clip's errors capped at its word count (a window that loops "de de de ..." to 448 positions would
    otherwise outweigh all the others)."""
    def against(name):
        return "CTranslate2 float32" if name == "CTranslate2 int8" else "transformers f32"

    print(f"| run | windows identical to | identical | WER vs the sentences ({len(truth)} corpus clips, "
          "each clip's errors capped at its word count) | clips with a runaway window (≥ 440 ids) |")
    print("| --- | --- | --- | --- | --- |")
    notes = []
    for name, r in runs.items():
        ref = runs[against(name)]
        differ = [k for k in keys if text_ids(r[k]) != text_ids(ref[k])]
        e = n = 0
        runaway = 0
        for c, t in truth.items():
            ws = [r[k] for k in keys if k.rsplit("#", 1)[0] == c]
            said = tok.decode([i for w in ws for i in text_ids(w)])
            e += min(edits(words(t), words(said)), len(words(t)))
            n += len(words(t))
            runaway += any(len(w) >= 440 for w in ws)
        print(f"| {name} | {against(name)} | {len(keys) - len(differ)} / {len(keys)} | {100 * e / n:.2f} % | {runaway} |")
        if differ and name != against(name):
            notes.append(f"{name}: differ on {' '.join(differ)}")
    print("\n".join(notes))


def features_check(model_dir: Path, clips: list) -> None:
    """transformers' own encoder at bf16 and with its matrices rounded to q8, against its f32 run: the
    min cosine of Kimi's feature rows (4 frames of 50 Hz per 12.5 Hz token, as `kimi-parity`'s
    `features`) and of all 1500 frames, per clip."""
    import copy
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration
    model = WhisperForConditionalGeneration.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    fe = WhisperFeatureExtractor.from_pretrained(model_dir)
    enc = model.model.encoder
    bf16 = copy.deepcopy(enc).to(torch.bfloat16)
    q8 = copy.deepcopy(enc)
    for m in q8.modules():
        if isinstance(m, torch.nn.Linear):
            m.weight.data.copy_(fake_q8(m.weight.data))
    cos = torch.nn.functional.cosine_similarity
    print("| clip | encoder | features min cosine | all 1500 frames min cosine |")
    print("| --- | --- | --- | --- |")
    for c in clips:
        y, _ = librosa.load(str(c), sr=SR)
        x = fe(y[:WINDOW], sampling_rate=SR, return_tensors="pt").input_features
        n = min(375, -(-len(y) // 1280))
        with torch.no_grad():
            ref = enc(x).last_hidden_state[0]
            for label, e, dt in [("bf16", bf16, torch.bfloat16), ("f32, matrices rounded to q8", q8, torch.float32)]:
                out = e(x.to(dt)).last_hidden_state[0].float()
                f = cos(ref[:4 * n].reshape(n, -1), out[:4 * n].reshape(n, -1), dim=-1)
                print(f"| {Path(c).name} | {label} | {f.min():.5f} | {cos(ref, out, dim=-1).min():.4f} |")


def main() -> None:
    real = Path(os.environ.get("KIMI_REAL_DIR", "/tmp/kimi-real"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", nargs="*", type=Path)
    ap.add_argument("--model", type=Path, default=real / "whisper-tiny.en")
    ap.add_argument("--kaf", action="append", default=[], type=Path)
    ap.add_argument("--ct2", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=real / "q8_survey")
    ap.add_argument("--bin", type=Path, default=Path(__file__).resolve().parents[2] / ".build/release")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rescore", type=Path, default=None, metavar="REPORT.json",
                    help="print the table of an earlier run's OUT/report.json and run nothing")
    ap.add_argument("--features", action="store_true",
                    help="only compare transformers' encoder at bf16 and with q8-rounded matrices with its f32 run on CLIPs")
    ap.add_argument("--also-env", action="append", default=[], metavar="NAME=VALUE",
                    help="run every --kaf again with this in the environment (e.g. KIMI_NO_AMX=1)")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(a.threads)
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperTokenizer

    if a.features:
        features_check(a.model, a.clips)
        return
    if a.rescore:
        d = json.loads(a.rescore.read_text())
        report(d["windows"], d["truth"], d["ids"], WhisperTokenizer.from_pretrained(a.model))
        return
    truth = make_corpus(a.out / "corpus")
    clips = sorted(truth) + [str(c) for c in a.clips]
    fe = WhisperFeatureExtractor.from_pretrained(a.model)
    tok = WhisperTokenizer.from_pretrained(a.model)
    windows = []  # (key, features)
    for c in clips:
        y, _ = librosa.load(c, sr=SR)
        for w in range((len(y) + WINDOW - 1) // WINDOW):
            x = fe(y[w * WINDOW:(w + 1) * WINDOW], sampling_rate=SR, return_tensors="pt").input_features
            windows.append((f"{Path(c).name}#{w}", x))
    log(f"{len(clips)} clips, {len(windows)} windows")
    runs = {}  # name → {window: ids}

    model = WhisperForConditionalGeneration.from_pretrained(a.model, torch_dtype=torch.float32).eval()
    orig = {n: p.detach().clone() for n, p in model.named_parameters()}

    def generate(name):
        r = {}
        with torch.no_grad():
            for k, x in windows:
                r[k] = model.generate(x, do_sample=False, num_beams=1, return_timestamps=False)[0].tolist()
        runs[name] = r
        log("done:", name)

    generate("transformers f32")
    # Linear matrices only; the convolutions, positions and the tied embedding stay float (ours keep
    # the convolutions and the embedding at 16 bits as well).
    matrices = [n for n, p in model.named_parameters() if p.dim() == 2 and "embed" not in n]
    for label, prefix in [("transformers, encoder 8-bit weights", "model.encoder."),
                          ("transformers, encoder + decoder 8-bit weights", "model.")]:
        for n, p in model.named_parameters():
            p.data.copy_(fake_q8(orig[n]) if n in matrices and n.startswith(prefix) else orig[n])
        generate(label)
    for n, p in model.named_parameters():
        p.data.copy_(orig[n])

    if a.ct2:
        import ctranslate2
        for ctype in ["float32", "int8"]:
            m = ctranslate2.models.Whisper(str(a.ct2), device="cpu", compute_type=ctype, intra_threads=a.threads)
            prompt = model.generation_config.forced_decoder_ids or []
            prefix = [model.generation_config.decoder_start_token_id] + [i for _, i in sorted(prompt)]
            r = {}
            for k, x in windows:
                f = ctranslate2.StorageView.from_array(np.ascontiguousarray(x.numpy()))
                r[k] = m.generate(f, [prefix], beam_size=1, max_length=448, suppress_blank=True,
                                  suppress_tokens=[-1])[0].sequences_ids[0]
            runs[f"CTranslate2 {ctype}"] = r
            log("done: CTranslate2", ctype)

    for extra in [None] + a.also_env:
        env = dict(os.environ)
        if extra:
            env.update([extra.split("=", 1)])
        for kaf in a.kaf:
            r = {}
            for c in clips:
                p = subprocess.run([str(a.bin / "kimi-run"), str(kaf), "asr", "--json", "-t", str(a.threads),
                                    "--no-speech-threshold", "1", c], capture_output=True, text=True, env=env)
                if p.returncode != 0:
                    sys.exit(f"{kaf}: kimi-run asr {c}: {p.stderr.strip()}")
                for w, s in enumerate(json.loads(p.stdout)["segments"]):
                    r[f"{Path(c).name}#{w}"] = s["tokens"]
            name = f"ours {kaf.name}" + (f" ({extra})" if extra else "")
            runs[name] = r
            log("done:", name)

    out = a.out / "report.json"
    keys = [k for k, _ in windows]
    out.write_text(json.dumps({"windows": keys, "truth": {Path(c).name: t for c, t in truth.items()}, "ids": runs},
                              indent=1))
    report(keys, {Path(c).name: t for c, t in truth.items()}, runs, tok)
    log("wrote", out)


if __name__ == "__main__":
    main()
