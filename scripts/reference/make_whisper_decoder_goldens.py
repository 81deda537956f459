#!/usr/bin/env python3
"""Whisper-decoder goldens (formats/GOLDEN.md, stage ``whisper_decoder``) made by Hugging Face
transformers, plus the tiny random MULTILINGUAL Whisper they run on.  Nothing here uses this
repository's own code.

1. Builds ``Tests/Fixtures/tiny-whisper/`` -- a plain HF folder that
   ``WhisperForConditionalGeneration.from_pretrained`` and ``WhisperFeatureExtractor.from_pretrained``
   load: config.json, generation_config.json, preprocessor_config.json, tokenizer.json,
   model.safetensors (f32).
   * dims: d_model 64, 4 heads, 2 encoder + 2 decoder layers, FFN 128, 80 mels, 1500 source / 448
     target positions, gelu, scale_embedding false, tied proj_out (as real Whisper);
   * tokenizer.json: byte-level BPE trained with the ``tokenizers`` library on TRAIN_TEXT below
     (GPT-2 ByteLevel pre-tokenizer/decoder and the post-processor of a real Whisper tokenizer.json;
     256 byte tokens + 104 merges = 360 text ids), then, with contiguous ids, the special tokens in
     Whisper's order: <|endoftext|> 360, <|startoftranscript|> 361, <|en|> <|zh|> <|de|> <|es|>
     <|fr|> <|ja|> 362..367, <|translate|> 368, <|transcribe|> 369, <|startoflm|> 370,
     <|startofprev|> 371, <|nocaptions|> 372, <|notimestamps|> 373, and (non-special, as in the hub
     tokenizers) the timestamps <|0.00|> .. <|0.18|> 374..383; vocab_size 384;
   * generation_config.json in the shape of openai/whisper-tiny's (multilingual): lang_to_id,
     task_to_id, forced_decoder_ids [[1, null], [2, <|transcribe|>]], no_timestamps_token_id,
     prev_sot_token_id, suppress_tokens = the ids of 10 punctuation byte tokens + sot, translate,
     transcribe, startoflm, startofprev, nocaptions (the same kinds of specials the real list has),
     begin_suppress_tokens [id of "Ġ", eot], max_length 448, return_timestamps false;
   * weights: transformers' own init with ``init_std`` INIT_STD (instead of 0.02, whose logits are
     nearly uniform) and torch seed SEED, then every LayerNorm weight/bias and every (zero-initialised)
     bias gets N(0, 0.1) noise so that no tensor is constant, and the <|endoftext|> embedding row
     (zeroed by nn.Embedding's padding_idx = pad = eot) is redrawn with std EOT_STD = 2 x INIT_STD (so
     that greedy decoding can end with <|endoftext|>).  The encoder's sinusoidal position table stays
     exact.  The seed is the first one from 0 up (26) for which: every case below is a single-pass
     decode (see "segments" below), decodes >= 5 tokens before <|endoftext|>, at least one case stops
     with <|endoftext|> before the cap, the suppression changes the greedy choice at least once, and
     the smallest top-1 - top-2 gap of the processed logits over every greedy step of every case (and
     of the language-detection logits) is >= 1e-3.

2. Writes ``Tests/Fixtures/golden/whisper_tiny_decoder_<case>.safetensors`` for
     fox_en       audio/fox_22k.wav, language "en", task "transcribe"
     fox_detect   the same clip, no language: transformers' ``detect_language`` picks it
     long_31s_w1  the SECOND 30 s window of audio/long_31s.wav (16 kHz samples 480000..end),
                  language "en" -- the runtime decodes > 30 s audio as independent 30 s windows
   For each: librosa.load(sr=16000) -> the window's samples -> the folder's WhisperFeatureExtractor
   (padded to 30 s) = ``in.mel`` [80, 3000]; then
     model.generate(input_features, do_sample=False, num_beams=1, return_timestamps=False,
                    language=..., task="transcribe", max_new_tokens=MAX_NEW_TOKENS)
   (also called with return_dict_in_generate=True, output_scores=True for the full sequence and the
   processed scores; the plain call returns the generated ids without the prompt and without the
   final <|endoftext|>).  ``in.prompt`` = the decoder prompt generate built (sot, language, task,
   notimestamps), ``out.greedy`` = the ids after it (with the final <|endoftext|> if it stopped),
   ``out.logits`` = teacher-forced raw logits
   ``model(input_features=mel, decoder_input_ids=prompt + greedy[:-1]).logits`` at every position
   (before any suppression).  Detect case: ``out.language_logits`` = the raw logits of the decoder
   run on [sot] alone (what ``detect_language`` argmaxes after setting every id outside
   ``lang_to_id`` to -inf) and ``out.language`` = the detected language id.

   transformers 4.49 generate (short form, return_timestamps=False, greedy) applies exactly two
   logits processors (recorded from ``_get_logits_processor`` into metadata ``logits_processors``):
   SuppressTokensAtBeginLogitsProcessor (begin_suppress_tokens -> -inf at the FIRST generated step
   only) and SuppressTokensLogitsProcessor (suppress_tokens -> -inf at every step); then argmax.
   No timestamp rules (WhisperTimeStampLogitsProcessor only with return_timestamps=True), no
   no-speech detection, no temperature fallback, no repetition penalty.  Timestamp tokens, language
   tokens and <|notimestamps|> are NOT suppressed.  The script checks that the teacher-forced logits,
   so processed, give back every greedy id, and that they match generate's (KV-cached) scores.
   "Segments": even in short form, generate treats two consecutive timestamp tokens (ids >
   <|notimestamps|>) in the output as a segment end and decodes AGAIN from that timestamp's frame; the
   goldens contain no such case (each generate call makes exactly one inner decode, asserted).

   The model runs in float32 on the CPU with attn_implementation="eager", one thread,
   deterministic algorithms.  Files are written with make_lm_goldens.save_case (sorted tensor names
   and metadata keys): re-running gives byte-identical files, and every file is read back and its
   inputs re-run through transformers (bit-identical).

Run: /opt/refvenv/bin/python scripts/reference/make_whisper_decoder_goldens.py      (~1 min)
     [--out-model DIR] [--out-golden DIR] [--seed N   (skip the search; ~5 s)]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_lm_goldens import save_case  # noqa: E402  (byte-deterministic safetensors writer)

REPO = HERE.parent.parent
MODEL_DIR = REPO / "Tests" / "Fixtures" / "tiny-whisper"
GOLDEN_DIR = REPO / "Tests" / "Fixtures" / "golden"
AUDIO = REPO / "Tests" / "Fixtures" / "audio"

SR, WINDOW = 16000, 480000          # 16 kHz, 30 s windows
MAX_NEW_TOKENS = 24
N_TEXT = 360                         # 256 byte tokens + 104 merges
LANGS = ["en", "zh", "de", "es", "fr", "ja"]   # a subset, in Whisper's language order
N_TIMESTAMPS = 10
INIT_STD = 0.25
NOISE_STD = 0.1
EOT_STD = 0.5
MIN_GAP = 1e-3
MIN_TOKENS = 5
SUPPRESS_TEXT = ['"', "#", "(", ")", "*", "+", "/", ":", ";", "<"]   # byte tokens, as in Whisper's list

TRAIN_TEXT = (
    "The quick brown fox jumps over the lazy dog. "
    "Please call Stella. Ask her to bring these things with her from the store: six spoons of fresh "
    "snow peas, five thick slabs of blue cheese, and maybe a snack for her brother Bob. "
    "We also need a small plastic snake and a big toy frog for the kids. "
    "She can scoop these things into three red bags, and we will go meet her Wednesday at the train "
    "station. When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow. "
    "The rainbow is a division of white light into many beautiful colors. "
    "Numbers like 1, 2, 3 and 2024 appear too; so do quotes \"like this\", #tags, (brackets), a*b+c, "
    "a/b, key: value; x < y. "
) * 12


# --------------------------------------------------------------------------------------------
# The tiny folder
# --------------------------------------------------------------------------------------------
def build_tokenizer():
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=N_TEXT, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[], show_progress=False)
    tok.train_from_iterator([TRAIN_TEXT], trainer)
    assert tok.get_vocab_size() == N_TEXT, tok.get_vocab_size()
    specials = (["<|endoftext|>", "<|startoftranscript|>"] + [f"<|{c}|>" for c in LANGS]
                + ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>",
                   "<|notimestamps|>"])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(N_TIMESTAMPS)]
    tok.add_tokens([AddedToken(s, special=False, normalized=True) for s in stamps])
    v = tok.get_vocab(with_added_tokens=True)
    for i, s in enumerate(specials + stamps):
        assert v[s] == N_TEXT + i, (s, v[s])
    ids = {s: v[s] for s in specials}
    sot, notimestamps, eot = ids["<|startoftranscript|>"], ids["<|notimestamps|>"], ids["<|endoftext|>"]
    tok.post_processor = processors.TemplateProcessing(   # as in a real Whisper tokenizer.json
        single="<|startoftranscript|> <|notimestamps|> $A:0 <|endoftext|>:0",
        pair="<|startoftranscript|> <|notimestamps|> $A:0 $B:1 <|endoftext|>:1",
        special_tokens=[("<|startoftranscript|>", sot), ("<|notimestamps|>", notimestamps), ("<|endoftext|>", eot)])
    ids["Ġ"] = v["Ġ"]
    for p in SUPPRESS_TEXT:
        ids[p] = v[p]
    return tok, ids, len(v)


def generation_dict(ids):
    t = ids
    suppress = sorted([t[p] for p in SUPPRESS_TEXT] + [t["<|startoftranscript|>"], t["<|translate|>"],
                                                        t["<|transcribe|>"], t["<|startoflm|>"],
                                                        t["<|startofprev|>"], t["<|nocaptions|>"]])
    eot = t["<|endoftext|>"]
    return {
        "alignment_heads": [[1, 0], [1, 2]],
        "begin_suppress_tokens": [t["Ġ"], eot],
        "bos_token_id": eot,
        "decoder_start_token_id": t["<|startoftranscript|>"],
        "eos_token_id": eot,
        "forced_decoder_ids": [[1, None], [2, t["<|transcribe|>"]]],
        "is_multilingual": True,
        "lang_to_id": {f"<|{c}|>": t[f"<|{c}|>"] for c in LANGS},
        "max_initial_timestamp_index": 50,
        "max_length": 448,
        "no_timestamps_token_id": t["<|notimestamps|>"],
        "pad_token_id": eot,
        "prev_sot_token_id": t["<|startofprev|>"],
        "return_timestamps": False,
        "suppress_tokens": suppress,
        "task_to_id": {"transcribe": t["<|transcribe|>"], "translate": t["<|translate|>"]},
    }


def build_model(seed, vocab, ids):
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    eot = ids["<|endoftext|>"]
    cfg = WhisperConfig(
        vocab_size=vocab, num_mel_bins=80, d_model=64, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
        max_source_positions=1500, max_target_positions=448, activation_function="gelu",
        scale_embedding=False, init_std=INIT_STD, pad_token_id=eot, bos_token_id=eot, eos_token_id=eot,
        decoder_start_token_id=ids["<|startoftranscript|>"], begin_suppress_tokens=None,
        suppress_tokens=None, forced_decoder_ids=None, torch_dtype="float32",
        architectures=["WhisperForConditionalGeneration"])
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * NOISE_STD)
        emb = model.model.decoder.embed_tokens.weight
        assert emb.data_ptr() == model.proj_out.weight.data_ptr()   # tied, as in real Whisper
        assert bool((emb[eot] == 0).all())
        emb[eot] = torch.randn(emb.shape[1]) * EOT_STD
    return model.eval()


def write_folder(out: Path, model, tok, gen: dict):
    """Write the HF folder deterministically (config/generation config via transformers,
    model.safetensors via save_case with the {"format": "pt"} metadata transformers expects)."""
    from transformers import GenerationConfig, WhisperFeatureExtractor
    out.mkdir(parents=True, exist_ok=True)   # README.md (hand-written) stays
    from transformers import WhisperConfig
    cfg = model.config.to_dict()
    cfg.pop("_attn_implementation_autoset", None)   # set by model construction, not a config value
    WhisperConfig.from_dict(cfg).save_pretrained(out)
    GenerationConfig(**gen).save_pretrained(out)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(out)
    tok.save(str(out / "tokenizer.json"), pretty=True)
    sd = {k: v.detach().clone().float() for k, v in model.state_dict().items() if k != "proj_out.weight"}
    save_case(out / "model.safetensors", sd, {"format": "pt"})


def load_folder(path: Path):
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration
    model = WhisperForConditionalGeneration.from_pretrained(str(path), torch_dtype=torch.float32,
                                                            attn_implementation="eager").eval()
    return model, WhisperFeatureExtractor.from_pretrained(str(path))


# --------------------------------------------------------------------------------------------
# One decoder case (shared with scripts/real/make_whisper_decoder_golden.py)
# --------------------------------------------------------------------------------------------
def load_window(path: Path, window: int):
    import librosa
    y, _ = librosa.load(str(path), sr=SR)
    start, end = window * WINDOW, min(len(y), (window + 1) * WINDOW)
    assert start < len(y), (path, window)
    return y[start:end], start, end, len(y)


def process(raw: torch.Tensor, step: int, suppress, begin_suppress):
    """What generate's two processors do to the raw logits of greedy step `step` (0 = first)."""
    s = raw.clone()
    s[list(suppress)] = -float("inf")
    if step == 0:
        s[list(begin_suppress)] = -float("inf")
    return s


def top2_gap(x: torch.Tensor) -> float:
    v = x.topk(2).values
    return float(v[0] - v[1])


def decode_case(model, fe, samples: np.ndarray, language, task, max_new_tokens):
    """Run transformers' Whisper generate on one 30 s window and everything the golden stores."""
    gc = model.generation_config
    mel = fe(samples, sampling_rate=SR, return_tensors="np").input_features[0].astype(np.float32)
    assert mel.shape == (fe.feature_size, 3000), mel.shape
    x = torch.from_numpy(mel)[None]
    kw = dict(do_sample=False, num_beams=1, return_timestamps=False)
    if language is not None or task is not None:
        kw.update(language=language, task=task)
    if max_new_tokens is not None:
        kw["max_new_tokens"] = max_new_tokens
    seen = []
    orig = model._get_logits_processor

    def spy(*a, **k):
        lp = orig(*a, **k)
        seen.append([type(p).__name__ for p in lp])
        return lp
    model._get_logits_processor = spy
    try:
        with torch.inference_mode():
            plain = model.generate(x, **kw)[0].tolist()
            passes = [len(seen)]
            full = model.generate(x, **kw, return_dict_in_generate=True, output_scores=True)
            passes.append(len(seen) - passes[0])
    finally:
        del model._get_logits_processor
    # Short-form generate loops over "segments": if the ids contain two consecutive timestamp tokens
    # it re-decodes from the last timestamp's frame (a second inner generate call).  The goldens are
    # single-pass decodes; a case that is not is reported (and rejected by the seed search).
    if passes != [1, 1]:
        return {"single_pass": False, "passes": passes}
    assert seen[0] == seen[1], seen
    seq = full.sequences[0].tolist()
    eot = gc.eos_token_id
    # the prompt generate built (it appends <|notimestamps|> itself when return_timestamps is False)
    n_new = len(full.scores)
    prompt, greedy = seq[:len(seq) - n_new], seq[len(seq) - n_new:]
    stopped = greedy[-1] == eot
    assert plain == (greedy[:-1] if stopped else greedy), (plain, greedy)   # plain: no prompt, no final eot
    assert prompt[0] == gc.decoder_start_token_id and prompt[-1] == gc.no_timestamps_token_id, prompt
    assert eot not in greedy[:-1]
    suppress, begin = list(gc.suppress_tokens), list(gc.begin_suppress_tokens)
    # teacher-forced raw logits at every position
    dec = torch.tensor([prompt + greedy[:-1]])
    with torch.inference_mode():
        logits = model(input_features=x, decoder_input_ids=dec).logits[0].float()
    P = len(prompt)
    assert logits.shape[0] == P + len(greedy) - 1
    gaps, kv_diff, suppression_changed = [], 0.0, 0
    for i, g in enumerate(greedy):
        raw = logits[P - 1 + i]
        s = process(raw, i, suppress, begin)
        assert int(s.argmax()) == g, (i, int(s.argmax()), g)
        sc = full.scores[i][0].float()
        assert torch.equal(torch.isinf(sc), torch.isinf(s)) and int(sc.argmax()) == g
        fin = torch.isfinite(s)
        kv_diff = max(kv_diff, float((sc[fin] - s[fin]).abs().max()))
        gaps.append(top2_gap(s))
        suppression_changed += int(raw.argmax()) != g
    res = {"single_pass": True, "mel": mel, "prompt": prompt, "greedy": greedy, "logits": logits, "stopped": stopped,
           "gaps": gaps, "min_gap": min(gaps), "kv_diff": kv_diff, "suppression_changed": suppression_changed,
           "processors": seen[0], "generate_kwargs": kw}
    if getattr(gc, "lang_to_id", None) and language is None:
        # what detect_language does: decoder on [sot] only, ids outside lang_to_id -> -inf, argmax
        with torch.inference_mode():
            ll = model(input_features=x, decoder_input_ids=torch.tensor([[gc.decoder_start_token_id]]),
                       use_cache=False).logits[0, -1].float()
            det = int(model.detect_language(input_features=x, generation_config=gc)[0])
        lang_ids = sorted(gc.lang_to_id.values())
        masked = torch.full_like(ll, -float("inf"))
        masked[lang_ids] = ll[lang_ids]
        assert int(masked.argmax()) == det == prompt[1], (int(masked.argmax()), det, prompt)
        assert torch.allclose(ll, logits[0], atol=1e-5, rtol=0)
        res.update(language_logits=ll, language=det, language_gap=top2_gap(masked))
    return res


def golden_tensors(res):
    t = {"in.mel": torch.from_numpy(res["mel"]),
         "in.prompt": torch.tensor(res["prompt"], dtype=torch.int64),
         "out.greedy": torch.tensor(res["greedy"], dtype=torch.int64),
         "out.logits": res["logits"].contiguous()}
    if "language" in res:
        t["out.language_logits"] = res["language_logits"].contiguous()
        t["out.language"] = torch.tensor([res["language"]], dtype=torch.int64)
    return t


def source_string(res):
    import transformers
    kw = ", ".join(f"{k}={v!r}" for k, v in res["generate_kwargs"].items())
    s = (f"transformers {transformers.__version__} WhisperForConditionalGeneration (float32, CPU, "
         f"attn_implementation=eager); in.mel = WhisperFeatureExtractor(window samples, sampling_rate=16000) "
         f"padded to 30 s; out.greedy = generate(input_features, {kw}, return_dict_in_generate=True, "
         f"output_scores=True).sequences after the prompt; out.logits = model(input_features, "
         f"decoder_input_ids=prompt+greedy[:-1]).logits (raw)")
    if "language" in res:
        s += ("; out.language_logits = model(input_features, decoder_input_ids=[[sot]], use_cache=False)"
              ".logits[0, -1] (raw), out.language = WhisperForConditionalGeneration.detect_language")
    return s


def reload_and_rerun(path: Path, model, fe, language, task, max_new_tokens):
    """Read a golden back and re-run its stored mel through transformers: bit-identical."""
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta, g = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    assert meta["kaf.golden"] == "1" and meta["stage"] == "whisper_decoder"
    x = g["in.mel"][None]
    kw = dict(do_sample=False, num_beams=1, return_timestamps=False)
    if language is not None or task is not None:
        kw.update(language=language, task=task)
    if max_new_tokens is not None:
        kw["max_new_tokens"] = max_new_tokens
    with torch.inference_mode():
        seq = model.generate(x, **kw, return_dict_in_generate=True).sequences[0].tolist()
        dec = torch.cat([g["in.prompt"], g["out.greedy"][:-1]])[None]
        logits = model(input_features=x, decoder_input_ids=dec).logits[0].float()
    assert seq == g["in.prompt"].tolist() + g["out.greedy"].tolist(), path
    assert torch.equal(logits, g["out.logits"]), path
    return meta, g


# --------------------------------------------------------------------------------------------
CASES = [  # name, clip, window, language
    ("fox_en", "fox_22k.wav", 0, "en"),
    ("fox_detect", "fox_22k.wav", 0, None),
    ("long_31s_w1", "long_31s.wav", 1, "en"),
]


def run_cases(model, fe):
    out = {}
    for name, clip, window, lang in CASES:
        samples, start, end, n = load_window(AUDIO / clip, window)
        r = decode_case(model, fe, samples, lang, "transcribe", MAX_NEW_TOKENS)
        r.update(clip=clip, window=window, start=start, end=end, n=n)
        out[name] = r
    return out


def acceptable(res, eot):
    if not all(r["single_pass"] for r in res.values()):
        return False
    gaps = [r["min_gap"] for r in res.values()] + [r["language_gap"] for r in res.values() if "language" in r]
    n_before = [len(r["greedy"]) - int(r["stopped"]) for r in res.values()]
    return (min(gaps) >= MIN_GAP and min(n_before) >= MIN_TOKENS and any(r["stopped"] for r in res.values())
            and sum(r["suppression_changed"] for r in res.values()) > 0)


def main():
    import transformers
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-model", type=Path, default=MODEL_DIR)
    ap.add_argument("--out-golden", type=Path, default=GOLDEN_DIR)
    ap.add_argument("--max-seeds", type=int, default=200)
    ap.add_argument("--seed", type=int, default=None,
                    help="skip the search and use this seed (it must still meet the criteria)")
    a = ap.parse_args()
    assert transformers.__version__ == "4.49.0", transformers.__version__
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=UserWarning, module=r"transformers\.generation")

    tok, ids, vocab = build_tokenizer()
    gen = generation_dict(ids)
    eot = ids["<|endoftext|>"]
    # seed search: the folder is written to a scratch dir and loaded back, so the search sees exactly
    # what from_pretrained gives
    chosen = None
    with tempfile.TemporaryDirectory() as tmp:
        for seed in ([a.seed] if a.seed is not None else range(a.max_seeds)):
            write_folder(Path(tmp) / "m", build_model(seed, vocab, ids), tok, gen)
            model, fe = load_folder(Path(tmp) / "m")
            res = run_cases(model, fe)
            summary = {k: (len(r["greedy"]), r["stopped"], round(r["min_gap"], 4)) if r["single_pass"]
                       else f"{r['passes']} passes" for k, r in res.items()}
            print(f"seed {seed}: {summary}", flush=True)
            if acceptable(res, eot):
                chosen = seed
                break
    assert chosen is not None, "no seed met the criteria"
    write_folder(a.out_model, build_model(chosen, vocab, ids), tok, gen)
    model, fe = load_folder(a.out_model)
    res = run_cases(model, fe)
    assert acceptable(res, eot)

    from transformers import WhisperTokenizerFast
    wtok = WhisperTokenizerFast(tokenizer_file=str(a.out_model / "tokenizer.json"))
    gap_all = min([r["min_gap"] for r in res.values()])
    a.out_golden.mkdir(parents=True, exist_ok=True)
    id_to_lang = {v: k[2:-2] for k, v in gen["lang_to_id"].items()}
    for (name, clip, window, lang), r in zip(CASES, res.values()):
        meta = {"kaf.golden": "1", "stage": "whisper_decoder", "dtype": "f32", "source": source_string(r),
                "model": "Tests/Fixtures/tiny-whisper", "in.file": f"Tests/Fixtures/audio/{clip}",
                "window": str(window), "window_samples": [r["start"], r["end"]],
                "language": lang if lang is not None else id_to_lang[r["prompt"][1]],
                "language_source": "given" if lang is not None else "detected",
                "task": "transcribe", "max_new_tokens": str(MAX_NEW_TOKENS),
                "greedy_min_top2_gap": r["min_gap"], "greedy_min_top2_gap_all_cases": gap_all,
                "stopped": "eot" if r["stopped"] else "max_new_tokens",
                "logits_processors": r["processors"], "suppress_tokens": gen["suppress_tokens"],
                "begin_suppress_tokens": gen["begin_suppress_tokens"], "seed": str(chosen),
                "text": wtok.decode(r["greedy"], skip_special_tokens=True)}
        if "language" in r:
            meta["language_top2_gap"] = r["language_gap"]
        path = a.out_golden / f"whisper_tiny_decoder_{name}.safetensors"
        save_case(path, golden_tensors(r), meta)
        path.chmod(0o644)
        m, g = reload_and_rerun(path, model, fe, lang, "transcribe", MAX_NEW_TOKENS)
        print(f"{path} ({path.stat().st_size} bytes): prompt {r['prompt']} greedy {r['greedy']} "
              f"stopped={m['stopped']} min gap {r['min_gap']:.4g} (KV-cached vs full |Δ| {r['kv_diff']:.2g}, "
              f"suppression changed {r['suppression_changed']} steps) language {m['language']} "
              f"({m['language_source']}{', gap %.4g' % r['language_gap'] if 'language' in r else ''}) "
              f"text {m['text']!r}")
    print(f"seed {chosen}; processors {res['fox_en']['processors']}; vocab {vocab}; ids {json.dumps(ids)}")
    total = sum(p.stat().st_size for p in a.out_model.iterdir())
    print(f"{a.out_model}: {total} bytes: "
          + ", ".join(f"{p.name} {p.stat().st_size}" for p in sorted(a.out_model.iterdir())))


if __name__ == "__main__":
    main()
