#!/usr/bin/env python3
"""Build a TINY random-weight copy of the Kimi-Audio-7B-Instruct release.

The output folder is laid out exactly like the HF repo ``moonshotai/Kimi-Audio-7B-Instruct``
(plus the externally downloaded ``THUDM/glm-4-voice-tokenizer`` as a sub-folder) but every
network is built at the tiny dimensions of docs/ARCHITECTURE.md §7.1,
using the OFFICIAL PyTorch classes, random init with seed 0.  It is the input of the Swift
converter tests and of the demo.  Next to the folder a JSON manifest lists, for every file, its
tensors (name, dtype, shape, float64 sum and sum of squares computed with torch).

Official sources (kept OUTSIDE the repository, never committed) -- obtain them with::

    mkdir -p /tmp/ref-src && cd /tmp/ref-src
    git clone https://github.com/MoonshotAI/Kimi-Audio kimi              # tested at 2607d51
    git clone https://github.com/THUDM/GLM-4-Voice glm                   # tested at eb00ce9
    git clone https://github.com/SolutionArichtect/Kimi-Audio-7B-Instruct-Ascend hf   # 2144e18
    git clone https://github.com/zhangshengoo/Kimi-Audio-Training train  # f80aaff

  * ``--kimi-src``  Kimi-Audio repo: kimia_infer/models/detokenizer (DiTPrefix, BigVGAN and their
                    official loaders), kimia_infer/models/tokenizer/whisper_Lv3 (Whisper loader).
  * ``--glm-src``   GLM-4-Voice repo: speech_tokenizer/{modeling,configuration}_whisper.py
                    (WhisperVQEncoder / WhisperVQConfig).
  * ``--hf-src``    a copy of the HF repo's ``modeling_moonshot_kimia.py``
                    (MoonshotKimiaForCausalLM).  The Ascend mirror is NPU-patched but has the same
                    module tree; it does not ship ``configuration_moonshot_kimia.py``.
  * ``--ft-src``    ``finetune_codes/`` of Kimi-Audio-Training (the official fine-tune copy of the
                    HF remote code): ``configuration_moonshot_kimia.py`` (KimiAudioConfig) is taken
                    from here when ``--hf-src`` lacks it, and ``modeling_kimia.py`` is used as a
                    second, CUDA-flavoured copy of the LLM to cross-check the state dict.

The official code hard-codes CUDA / NPU / flash-attn / fused kernels; nothing here edits it.
Instead ``install_import_stubs`` puts stand-ins into ``sys.modules`` before import (see there).
Only module construction and state_dict()/load_state_dict() are used; no forward pass.

Run (from the repo root)::

    scripts/reference/setup.sh /opt/refvenv          # or any venv, see requirements.txt
    /opt/refvenv/bin/python scripts/reference/make_tiny_release.py \
        --out Tests/Fixtures/tiny-release --manifest Tests/Fixtures/tiny-release.manifest.json

Deterministic: seed 0, fixed training text for the BPE, fixed file names; running twice gives
byte-identical files.
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path

import torch
import torch.nn as nn
import yaml
from safetensors import safe_open
from safetensors.torch import save_file

SEED = 0

# --------------------------------------------------------------------------------------------
# Tiny dimensions (docs/ARCHITECTURE.md §7.1).  Everything that is not listed here keeps the real
# value (docs/ARCHITECTURE.md §1.2, §1.6–§1.10).
# --------------------------------------------------------------------------------------------
NUM_BPE_MERGES = 64
NUM_BASE_TOKENS = 256 + NUM_BPE_MERGES  # 320 (real: 151643)
NUM_SPECIALS = 421                       # 293 + 128, same as the release
TEXT_VOCAB = NUM_BASE_TOKENS + NUM_SPECIALS  # 741 (real: 152064)
AUDIO_CODEBOOK = 64                      # real: 16384
NUM_AUDIO_SPECIAL_TOKENS = 512           # kept (informational)

LLM = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    rope_theta=1000000.0,
    rms_norm_eps=1e-06,
    kimia_mimo_layers=2,
    kimia_mimo_transformer_from_layer_index=1,
    kimia_mimo_audiodelaytokens=6,
)
WHISPER_D = 32
WHISPER = dict(d_model=WHISPER_D, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64,
               num_mel_bins=128, max_source_positions=1500)
ADAPTOR_IN = 4 * WHISPER_D  # 128 (real 5120 = 4 x 1280)

GLM = dict(d_model=32, encoder_attention_heads=2, encoder_ffn_dim=64, num_mel_bins=128,
           max_source_positions=1500, quantize_position=2, pooling_position=2,
           pooling_kernel_size=4, pooling_type="avg", quantize_vocab_size=AUDIO_CODEBOOK,
           quantize_causal_block_size=8)
GLM_CONFIG_ENCODER_LAYERS = 4  # real config says 32 while only quantize_position=16 are built

DIT = dict(input_size=80, semantic_vocab_size=AUDIO_CODEBOOK, hidden_size=64, depth=2, num_heads=4,
           mlp_ratio=4.0)
MEL_MEAN = -4.479605   # real values quoted from config.yaml (docs/ARCHITECTURE.md §1.9); the tiny config rounds them
MEL_STD = 3.4584913

# upsample_initial_channel: 256 was planned; that makes vocoder/model.pt ~15 MB (the four
# AMP blocks of the first stage alone hold 6*128*128*(3+5+7+11) weights), so 128 is used.
VOCODER_INITIAL_CHANNEL = 128

# Specials in id order (docs/ARCHITECTURE.md §3.1); id = NUM_BASE_TOKENS + index.
USED_SPECIALS = [
    "[BOS]", "[EOS]", "<|im_msg_end|>", "<|im_user_msg_start|>", "<|im_assistant_msg_start|>",
    "<|reserved_token_0|>", "<|reserved_token_1|>", "<|reserved_token_2|>", "<|reserved_token_3|>",
    "[EOT]",
    "<|reserved_token_4|>", "<|reserved_token_5|>", "<|reserved_token_6|>", "<|reserved_token_7|>",
    "<|reserved_token_8|>", "<|reserved_token_9|>", "<|reserved_token_10|>", "<|reserved_token_11|>",
    "<|im_media_begin|>", "<|reserved_token_12|>", "<|im_media_end|>",
    "<|reserved_token_13|>", "<|reserved_token_14|>",
    "<|im_kimia_text_blank|>", "<|im_kimia_text_eos|>",
    "<|reserved_token_15|>", "<|reserved_token_16|>",
    "<|im_kimia_user_msg_start|>", "<|im_kimia_assistant_msg_start|>",
    "<|reserved_token_17|>", "<|reserved_token_18|>", "<|reserved_token_19|>",
    "<|im_kimia_speech_ct_id|>", "<|im_kimia_speech_ctd_id|>",
]
SPECIALS = USED_SPECIALS + [f"<|reserved_token_{i}|>"
                            for i in range(20, 20 + NUM_SPECIALS - len(USED_SPECIALS))]
assert len(SPECIALS) == NUM_SPECIALS and SPECIALS[-1] == "<|reserved_token_406|>"
SPECIAL_ID = {tok: NUM_BASE_TOKENS + i for i, tok in enumerate(SPECIALS)}

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

BPE_TRAINING_TEXT = """\
The quick brown fox jumps over the lazy dog. A tiny model is still a model: it has layers,
weights and a vocabulary, and it should behave like the large one in every way that matters
for testing. Please transcribe the speech to text. What is the weather like today? It is sunny
in the morning and rainy in the evening, so take an umbrella when you go out.
Kimi-Audio listens to the user, thinks about the answer and then speaks it. The text stream
leads the audio stream by six frames. Each audio token covers eighty milliseconds of sound.
The speaker said: "I'd like three tickets to the concert, and I'll pay with my card."
Numbers such as 2025, 16000 and 24000 appear in the configuration files.
There are two heads: the text head and the audio head. Both of them read the same hidden states
that the shared layers produce, and they are trained together on speech and text.
We're testing the tokenizer, the converter and the runtime; they've all got to agree.
"""


# --------------------------------------------------------------------------------------------
# Import stubs for the official code (no official file is edited)
# --------------------------------------------------------------------------------------------
def _stub_module(name: str, **attrs) -> types.ModuleType:
    import importlib.machinery
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    mod.__path__ = []  # allow submodules
    sys.modules[name] = mod
    return mod


def _not_available(what: str):
    def fn(*args, **kwargs):
        raise RuntimeError(f"{what} is stubbed out by make_tiny_release.py (no forward passes)")
    return fn


class _TimmMlp(nn.Module):
    """Stand-in for ``timm.models.vision_transformer.Mlp`` (timm 1.0 layers/mlp.py, use_conv=False).

    timm pulls torchvision + Pillow at import time; the DiT only uses this class, and only its
    submodule names (fc1/act/drop1/norm/fc2/drop2) and Linear shapes matter here.
    """

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU,
                 norm_layer=None, bias=True, drop=0.0, use_conv=False):
        super().__init__()
        assert not use_conv
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        bias = bias if isinstance(bias, tuple) else (bias, bias)
        drop = drop if isinstance(drop, tuple) else (drop, drop)
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias[0])
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop[0])
        self.norm = norm_layer(hidden_features) if norm_layer is not None else nn.Identity()
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias[1])
        self.drop2 = nn.Dropout(drop[1])

    def forward(self, x):
        return self.drop2(self.fc2(self.norm(self.drop1(self.act(self.fc1(x))))))


PATCHES = []  # human-readable list, printed and written to the README


def install_import_stubs(kimi_src: Path, glm_src: Path):
    # transformers probes optional packages at import time: import it before any stub exists.
    import transformers  # noqa: F401
    import transformers.modeling_utils  # noqa: F401
    import transformers.models.qwen2.modeling_qwen2  # noqa: F401
    import transformers.models.whisper.modeling_whisper  # noqa: F401
    # 1. torch_npu (Ascend copy of modeling_moonshot_kimia.py imports it and calls
    #    torch.npu.current_device() in MoonshotAttention.__init__).
    if "torch_npu" not in sys.modules:
        tn = _stub_module("torch_npu", npu_fusion_attention=_not_available("torch_npu.npu_fusion_attention"))
        contrib = _stub_module("torch_npu.contrib")
        tn.contrib = contrib
        contrib.transfer_to_npu = _stub_module("torch_npu.contrib.transfer_to_npu")
        PATCHES.append("sys.modules['torch_npu'], ['torch_npu.contrib'], "
                       "['torch_npu.contrib.transfer_to_npu']: empty stubs (Ascend modeling file)")
    if not hasattr(torch, "npu"):
        torch.npu = types.SimpleNamespace(current_device=lambda: "cpu", is_available=lambda: False)
        PATCHES.append("torch.npu = namespace(current_device=lambda: 'cpu') "
                       "(MoonshotAttention.__init__ builds mask_npu on it)")
    # 2. flash_attn (Kimi whisper_Lv3/modeling_whisper.py, flow_matching/dit_block.py and the
    #    fine-tune modeling_kimia.py import it at module level).
    fa_names = ["flash_attn_func", "flash_attn_varlen_func", "flash_attn_qkvpacked_func",
                "flash_attn_varlen_qkvpacked_func"]
    _stub_module("flash_attn", **{n: _not_available("flash_attn." + n) for n in fa_names})
    _stub_module("flash_attn.bert_padding", **{n: _not_available("flash_attn.bert_padding." + n)
                                               for n in ["index_first_axis", "pad_input", "unpad_input"]})
    PATCHES.append("sys.modules['flash_attn'], ['flash_attn.bert_padding']: stubs whose functions raise")
    # 3. timm (DiTBlock imports timm.models.vision_transformer.Mlp inside __init__).
    _stub_module("timm")
    _stub_module("timm.models")
    _stub_module("timm.models.vision_transformer", Mlp=_TimmMlp)
    PATCHES.append("sys.modules['timm.models.vision_transformer'].Mlp = re-typed copy of timm 1.0 Mlp "
                   "(fc1, act, drop1, norm=Identity, fc2, drop2); real timm needs torchvision+Pillow")
    # 4. librosa (bigvgan_wrapper / vocoder.utils import it for mel extraction of voice prompts).
    lib = _stub_module("librosa", load=_not_available("librosa.load"))
    lib.filters = _stub_module("librosa.filters", mel=_not_available("librosa.filters.mel"))
    PATCHES.append("sys.modules['librosa'], ['librosa.filters']: stubs (only used for mel extraction)")
    # 5. Fused BigVGAN CUDA kernel: the official loader builds BigVGAN(h, use_cuda_kernel=True),
    #    whose cuda/activation1d.py calls load.load() (nvcc JIT build) at import time.
    cuda_pkg = "kimia_infer.models.detokenizer.vocoder.alias_free_activation.cuda.load"
    _stub_module(cuda_pkg, load=lambda: types.SimpleNamespace(
        forward=_not_available("anti_alias_activation_cuda.forward")))
    PATCHES.append(f"sys.modules['{cuda_pkg}'].load = lambda: namespace(forward=raise) "
                   "(skips the nvcc JIT build; module/param names are those of the official class)")
    for p in (str(kimi_src), str(glm_src)):
        if p not in sys.path:
            sys.path.insert(0, p)


def load_module_from_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, str(path))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def import_llm_classes(hf_src: Path, ft_src: Path):
    """Returns (KimiAudioConfig, MoonshotKimiaForCausalLM [hf-src copy], same class [ft copy] or None)."""
    pkg = "kimia_hf_remote"
    _stub_module(pkg)
    cfg_path = hf_src / "configuration_moonshot_kimia.py"
    if not cfg_path.exists():
        cfg_path = ft_src / "configuration_moonshot_kimia.py"
    cfg_mod = load_module_from_file(f"{pkg}.configuration_moonshot_kimia", cfg_path)
    model_mod = load_module_from_file(f"{pkg}.modeling_moonshot_kimia", hf_src / "modeling_moonshot_kimia.py")
    ft_cls = None
    ft_path = ft_src / "modeling_kimia.py"
    if ft_path.exists():
        import transformers.utils as tu
        saved = tu.is_flash_attn_2_available
        tu.is_flash_attn_2_available = lambda: True  # the file raises at import without flash-attn
        try:
            ft_mod = load_module_from_file(f"{pkg}.modeling_kimia", ft_path)
        finally:
            tu.is_flash_attn_2_available = saved
        ft_cls = ft_mod.MoonshotKimiaForCausalLM
        PATCHES.append("transformers.utils.is_flash_attn_2_available -> True while importing the "
                       "fine-tune modeling_kimia.py (it raises 'flash attention must be installed')")
    return cfg_mod.KimiAudioConfig, model_mod.MoonshotKimiaForCausalLM, ft_cls, cfg_path


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
ST_DTYPE = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32", torch.float64: "F64",
            torch.int64: "I64", torch.int32: "I32", torch.bool: "BOOL", torch.uint8: "U8"}


def tensor_stats(t: torch.Tensor) -> dict:
    d = t.detach().to(torch.float64)
    return {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape),
            "sum": float(d.sum().item()), "sum_sq": float((d * d).sum().item())}


def randomize_constant_tensors(module: nn.Module, skip=lambda name: False, scale=0.02):
    """Official inits leave many tensors constant (norm weights = 1, biases = 0, DiT adaLN and
    final layer = 0, snake alpha/beta = 0).  A converter bug that swaps/drops such a tensor would
    go unnoticed, so every constant floating tensor is replaced (deterministically, seed 0) by
    ``c + noise``: std 0.1 around 1 for ones, std ``scale`` around 0 for zeros.  Non-constant
    tensors keep the official init; persistent buffers named by ``skip`` are left untouched."""
    gen = torch.Generator().manual_seed(SEED)
    changed = []
    with torch.no_grad():
        for name, t in sorted(module.state_dict(keep_vars=True).items()):
            if skip(name) or not t.is_floating_point() or t.numel() == 0:
                continue
            flat = t.detach().reshape(-1)
            if not bool((flat == flat[0]).all()):
                continue
            c = float(flat[0])
            std = 0.1 if c != 0.0 else scale
            noise = torch.randn(t.shape, generator=gen, dtype=torch.float32) * std
            t.data.copy_((c + noise).to(t.dtype))
            changed.append(name)
    return changed


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: Path, obj, sort_keys=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")


# --------------------------------------------------------------------------------------------
# Text tokenizer: tiny byte-level BPE in tiktoken format
# --------------------------------------------------------------------------------------------
def gpt2_byte_order() -> list[int]:
    """Single-byte ranks in the GPT-2 / Qwen order: printable bytes first (rank 0 = b'!')."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    return bs + [b for b in range(256) if b not in bs]


def train_bpe(text: str, num_merges: int) -> list[bytes]:
    import regex
    pieces = collections.Counter(m.encode("utf-8") for m in regex.findall(QWEN2_PATTERN, text))
    vocab = [bytes([b]) for b in gpt2_byte_order()]
    rank = {tok: i for i, tok in enumerate(vocab)}
    words = {w: [bytes([b]) for b in w] for w in pieces}
    for _ in range(num_merges):
        counts = collections.Counter()
        for w, freq in pieces.items():
            toks = words[w]
            for a, b in zip(toks, toks[1:]):
                counts[(a, b)] += freq
        # highest count; ties -> lowest (rank a, rank b); never create a duplicate token
        cands = sorted(counts.items(), key=lambda kv: (-kv[1], rank[kv[0][0]], rank[kv[0][1]]))
        best = next(pair for pair, _ in cands if pair[0] + pair[1] not in rank)
        new = best[0] + best[1]
        rank[new] = len(vocab)
        vocab.append(new)
        for w, toks in words.items():
            out, i = [], 0
            while i < len(toks):
                if i + 1 < len(toks) and toks[i] == best[0] and toks[i + 1] == best[1]:
                    out.append(new)
                    i += 2
                else:
                    out.append(toks[i])
                    i += 1
            words[w] = out
    return vocab


def write_tokenizer(out: Path):
    vocab = train_bpe(BPE_TRAINING_TEXT, NUM_BPE_MERGES)
    assert len(vocab) == NUM_BASE_TOKENS
    with open(out / "tiktoken.model", "wb") as f:
        for r, tok in enumerate(vocab):
            f.write(base64.b64encode(tok) + b" " + str(r).encode() + b"\n")
    # Reconstructed HF tokenizer files (the real ones were not available to read; structure
    # follows what transformers' PreTrainedTokenizer.save_pretrained writes for this class).
    added = {str(SPECIAL_ID[t]): {"content": t, "lstrip": False, "normalized": False,
                                  "rstrip": False, "single_word": False, "special": True}
             for t in SPECIALS}
    tok_dict = lambda t: {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                          "single_word": False}
    pad, unk = "<|reserved_token_406|>", "<|reserved_token_405|>"
    write_json(out / "tokenizer_config.json", {
        "added_tokens_decoder": added,
        "additional_special_tokens": USED_SPECIALS[2:],
        "auto_map": {"AutoTokenizer": ["tokenization_kimia.TikTokenTokenizer", None]},
        "bos_token": "[BOS]",
        "clean_up_tokenization_spaces": False,
        "eos_token": "[EOS]",
        "extra_special_tokens": {},
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": pad,
        "tokenizer_class": "TikTokenTokenizer",
        "unk_token": unk,
    })
    write_json(out / "special_tokens_map.json", {
        "additional_special_tokens": [tok_dict(t) for t in USED_SPECIALS[2:]],
        "bos_token": tok_dict("[BOS]"), "eos_token": tok_dict("[EOS]"),
        "pad_token": tok_dict(pad), "unk_token": tok_dict(unk),
    })
    return vocab


def check_tokenizer(out: Path, vocab: list[bytes]):
    """Round-trip through the real tiktoken library with the Qwen2 pattern."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    ranks = load_tiktoken_bpe(str(out / "tiktoken.model"))
    assert len(ranks) == NUM_BASE_TOKENS and ranks[b"!"] == 0
    enc = tiktoken.Encoding(name="tiny-kimia", pat_str=QWEN2_PATTERN, mergeable_ranks=ranks,
                            special_tokens=SPECIAL_ID)
    sample = "The quick brown fox said: we're testing the tokenizer, 2025!"
    ids = enc.encode(sample, allowed_special=set(), disallowed_special=())
    assert enc.decode(ids) == sample and len(ids) < len(sample.encode())
    assert enc.encode("<|im_media_begin|>", allowed_special="all") == [SPECIAL_ID["<|im_media_begin|>"]]
    return ids


# --------------------------------------------------------------------------------------------
# Components
# --------------------------------------------------------------------------------------------
def llm_config_dict():
    return {
        "architectures": ["MoonshotKimiaForCausalLM"],
        "attention_dropout": 0.0,
        "auto_map": {
            "AutoConfig": "configuration_moonshot_kimia.KimiAudioConfig",
            "AutoModel": "modeling_moonshot_kimia.MoonshotKimiaForCausalLM",
            "AutoModelForCausalLM": "modeling_moonshot_kimia.MoonshotKimiaForCausalLM",
        },
        "bos_token_id": SPECIAL_ID["[BOS]"],
        "eos_token_id": [SPECIAL_ID["[EOS]"], SPECIAL_ID["<|im_msg_end|>"]],
        "hidden_act": "silu",
        "hidden_size": LLM["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": LLM["intermediate_size"],
        "kimia_adaptor_input_dim": ADAPTOR_IN,
        "kimia_audio_output_vocab": AUDIO_CODEBOOK + NUM_AUDIO_SPECIAL_TOKENS,
        "kimia_media_begin": SPECIAL_ID["<|im_media_begin|>"],
        "kimia_media_end": SPECIAL_ID["<|im_media_end|>"],
        "kimia_mimo_audiodelaytokens": LLM["kimia_mimo_audiodelaytokens"],
        "kimia_mimo_layers": LLM["kimia_mimo_layers"],
        "kimia_mimo_transformer_from_layer_index": LLM["kimia_mimo_transformer_from_layer_index"],
        "kimia_text_output_vocab": TEXT_VOCAB,
        "kimia_token_offset": TEXT_VOCAB,
        "max_position_embeddings": LLM["max_position_embeddings"],
        "max_window_layers": LLM["num_hidden_layers"],
        "model_type": "qwen2",
        "num_attention_heads": LLM["num_attention_heads"],
        "num_audio_special_tokens": NUM_AUDIO_SPECIAL_TOKENS,
        "num_base_tokens": NUM_BASE_TOKENS,
        "num_hidden_layers": LLM["num_hidden_layers"],
        "num_key_value_heads": LLM["num_key_value_heads"],
        "pad_token_id": SPECIAL_ID["<|reserved_token_406|>"],
        "rms_norm_eps": LLM["rms_norm_eps"],
        "rope_scaling": None,
        "rope_theta": LLM["rope_theta"],
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": __import__("transformers").__version__,
        "use_cache": True,
        "use_sliding_window": False,
        "use_whisper_feature": True,
        "vocab_size": TEXT_VOCAB + AUDIO_CODEBOOK,
    }


LAST_SHARD_KEYS = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
                   "mimo_output.weight", "model.mimo_norm.weight"]


def build_llm(KimiAudioConfig, LLMClass):
    cfg_dict = llm_config_dict()
    kwargs = {k: v for k, v in cfg_dict.items() if k not in ("architectures", "auto_map",
                                                              "transformers_version", "model_type")}
    config = KimiAudioConfig(**kwargs)
    config.architectures = cfg_dict["architectures"]
    config.auto_map = cfg_dict["auto_map"]
    torch.manual_seed(SEED)
    model = LLMClass(config).float().eval()
    changed = randomize_constant_tensors(model)
    return config, model, changed


def write_llm(out: Path, config, model):
    sd = model.state_dict()
    head_dim = config.hidden_size // config.num_attention_heads
    tensors = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in sd.items()}
    # The real shards also carry self_attn.rotary_emb.inv_freq (non-persistent in the official
    # class, so state_dict() lacks them): the module's own fp32 buffer cast to BF16.
    for prefix, layers in (("model.layers", model.model.layers), ("model.mimo_layers", model.model.mimo_layers)):
        for i, layer in enumerate(layers):
            inv = layer.self_attn.rotary_emb.inv_freq
            assert inv.shape == (head_dim // 2,)
            tensors[f"{prefix}.{i}.self_attn.rotary_emb.inv_freq"] = inv.detach().to(torch.bfloat16).clone()

    def layer_keys(prefix, i):
        return sorted(k for k in tensors if k.startswith(f"{prefix}.{i}."))

    groups = [
        layer_keys("model.layers", 0) + layer_keys("model.layers", 1),
        layer_keys("model.layers", 2) + layer_keys("model.layers", 3),
        sorted(k for k in tensors if k.startswith("model.mimo_layers.") or k.startswith("model.vq_adaptor.")),
    ]
    assert config.num_hidden_layers == 4
    n_first = len(groups)
    names = [f"model-{i + 1}-of-{n_first}.safetensors" for i in range(n_first)]
    groups.append(LAST_SHARD_KEYS)
    names.append(f"model-{n_first + 1}-of-{n_first + 1}.safetensors")
    covered = [k for g in groups for k in g]
    assert sorted(covered) == sorted(tensors) and len(set(covered)) == len(covered)
    weight_map, total = {}, 0
    for name, keys in zip(names, groups):
        save_file({k: tensors[k] for k in keys}, str(out / name), metadata={"format": "pt"})
        for k in keys:
            weight_map[k] = name
            total += tensors[k].numel() * tensors[k].element_size()
    # exactly what transformers' save_pretrained writes: indent 2, sort_keys, trailing newline
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    write_json(out / "model.safetensors.index.json", index, sort_keys=True)
    write_json(out / "config.json", llm_config_dict(), sort_keys=True)
    from transformers import GenerationConfig
    gen = GenerationConfig.from_model_config(config)
    gen.save_pretrained(str(out))
    return names, tensors


def build_whisper():
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    config = WhisperConfig(
        vocab_size=96, num_mel_bins=WHISPER["num_mel_bins"], d_model=WHISPER["d_model"],
        encoder_layers=WHISPER["encoder_layers"], encoder_attention_heads=WHISPER["encoder_attention_heads"],
        encoder_ffn_dim=WHISPER["encoder_ffn_dim"], decoder_layers=2, decoder_attention_heads=2,
        decoder_ffn_dim=64, max_source_positions=WHISPER["max_source_positions"],
        max_target_positions=64, pad_token_id=95, bos_token_id=94, eos_token_id=94,
        decoder_start_token_id=93, begin_suppress_tokens=None, suppress_tokens=None,
        torch_dtype="bfloat16", use_cache=True)
    torch.manual_seed(SEED)
    model = WhisperForConditionalGeneration(config).float().eval()
    changed = randomize_constant_tensors(model, skip=lambda n: "embed_positions" in n)
    return config, model, changed


def write_whisper(out: Path, model):
    from transformers import WhisperFeatureExtractor
    d = out / "whisper-large-v3"
    d.mkdir(parents=True, exist_ok=True)
    model = model.to(torch.bfloat16)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        shutil.copy(Path(tmp) / "config.json", d / "config.json")
        shutil.copy(Path(tmp) / "model.safetensors", d / "model.safetensors")
    WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30,
                            n_fft=400).save_pretrained(str(d))
    model.float()


def import_glm():
    from speech_tokenizer.configuration_whisper import WhisperVQConfig
    from speech_tokenizer.modeling_whisper import WhisperVQEncoder
    return WhisperVQConfig, WhisperVQEncoder


def build_glm(WhisperVQConfig, WhisperVQEncoder):
    config = WhisperVQConfig(
        **GLM,
        encoder_layers=GLM_CONFIG_ENCODER_LAYERS, decoder_layers=2, decoder_attention_heads=2,
        decoder_ffn_dim=64, vocab_size=96, max_target_positions=64, pad_token_id=95,
        bos_token_id=94, eos_token_id=94, decoder_start_token_id=93, begin_suppress_tokens=None,
        suppress_tokens=None, quantize_encoder_only=True, quantize_causal_encoder=False,
        encoder_causal_attention=False, encoder_causal_convolution=True, quantize_ema_decay=0.99,
        quantize_restart_interval=100, quantize_loss_scale=10.0, quantize_commit_coefficient=0.25,
        skip_language_detection=True, activation_function="gelu", scale_embedding=False,
        torch_dtype="float32")
    config.architectures = ["WhisperVQEncoder"]
    torch.manual_seed(SEED)
    model = WhisperVQEncoder(config).float().eval()
    changed = randomize_constant_tensors(
        model, skip=lambda n: "embed_positions" in n or n in ("ema_count", "ema_weight"))
    return config, model, changed


def write_glm(out: Path, model):
    from transformers import WhisperFeatureExtractor
    d = out / "glm-4-voice-tokenizer"
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        shutil.copy(Path(tmp) / "config.json", d / "config.json")
        shutil.copy(Path(tmp) / "model.safetensors", d / "model.safetensors")
    WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30,
                            n_fft=400).save_pretrained(str(d))


def dit_yaml_dict():
    return {
        "model": {
            "dit": {
                "input_size": DIT["input_size"],
                "semantic_vocab_size": DIT["semantic_vocab_size"],
                "hidden_size": DIT["hidden_size"],
                "depth": DIT["depth"],
                "num_heads": DIT["num_heads"],
                "mlp_ratio": DIT["mlp_ratio"],
                "ffn_type": "vanilla_mlp",
                "ffn_gated_glu": False,
                "ffn_act_layer": "gelu",
                "ffn_conv_kernel_size": 5,
                "use_rope": True,
                "rope_params": {"max_position_embeddings": 4096, "rope_base": 10000.0,
                                "rope_interpolation_factor": 1.0},
                "position_embedding_type": "skip",
                "max_seq_len": 4096,
            }
        },
        "normalize_mel": True,
        "mel_mean": MEL_MEAN,
        "mel_std": MEL_STD,
    }


def build_dit():
    from kimia_infer.models.detokenizer.flow_matching.model import DiTPrefix
    c = dit_yaml_dict()["model"]["dit"]
    torch.manual_seed(SEED)
    # same constructor call as StreamingSemanticFMWrapper.from_pretrained
    dit = DiTPrefix(
        input_size=c["input_size"], semantic_vocab_size=c["semantic_vocab_size"] + 1,
        hidden_size=c["hidden_size"], depth=c["depth"], num_heads=c["num_heads"],
        mlp_ratio=c["mlp_ratio"], ffn_type=c["ffn_type"], ffn_gated_glu=c["ffn_gated_glu"],
        ffn_act_layer=c["ffn_act_layer"], ffn_conv_kernel_size=c["ffn_conv_kernel_size"],
        use_rope=c["use_rope"], rope_params=c["rope_params"],
        position_embedding_type=c["position_embedding_type"], max_seq_len=c["max_seq_len"],
        output_size=c["input_size"], prompt_cfg_dropout=0).float().eval()
    changed = randomize_constant_tensors(dit)
    return dit, changed


def write_dit(out: Path, dit):
    d = out / "audio_detokenizer"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "config.yaml", "w") as f:
        f.write("# Tiny random-weight fixture (Tests/Fixtures/tiny-release/README.md); keys as read by\n"
                "# kimia_infer/models/detokenizer/semantic_fm_prefix_streaming.py from_pretrained.\n")
        yaml.safe_dump(dit_yaml_dict(), f, sort_keys=False, default_flow_style=False)
    gen = torch.Generator().manual_seed(SEED + 1)
    state_dict = {"speech_model." + k: v.detach().float().clone() for k, v in dit.state_dict().items()}
    # entries the converter must ignore (the official loader keeps only keys containing
    # "speech_model"; the real file also holds extra copies):
    state_dict["resampler.kernel"] = torch.randn(1, 1, 16, generator=gen)
    ckpt = {
        "state_dict": state_dict,
        "extra_state": {"ema_copy.input_linear.bias": torch.randn(DIT["hidden_size"], generator=gen)},
        "global_step": 0,
    }
    torch.save(ckpt, d / "model.pt")
    return ckpt


def vocoder_config_dict():
    return {
        "resblock": "1",
        "num_gpus": 0,
        "batch_size": 32,
        "learning_rate": 0.0001,
        "adam_b1": 0.8,
        "adam_b2": 0.99,
        "lr_decay": 0.9999996,
        "seed": 1234,
        "upsample_rates": [5, 2, 2, 2, 2, 3, 2],
        "upsample_kernel_sizes": [9, 4, 4, 4, 4, 5, 4],
        "upsample_initial_channel": VOCODER_INITIAL_CHANNEL,
        "resblock_kernel_sizes": [3, 5, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "use_tanh_at_final": False,
        "use_bias_at_final": False,
        "activation": "snakebeta",
        "snake_logscale": True,
        "segment_size": 24000,
        "num_mels": 80,
        "num_freq": 961,
        "n_fft": 1920,
        "hop_size": 480,
        "win_size": 1920,
        "sampling_rate": 24000,
        "fmin": 0,
        "fmax": None,
        "fmax_for_loss": None,
        "num_workers": 4,
        "_tiny_fixture_note": "upsample_initial_channel is 128 (not 256 as in spec section 13) to keep "
                              "model.pt near 4 MB; real release: 2048",
    }


def build_vocoder():
    from kimia_infer.models.detokenizer.vocoder.bigvgan import BigVGAN
    from kimia_infer.models.detokenizer.vocoder.utils import AttrDict
    h = AttrDict(vocoder_config_dict())
    torch.manual_seed(SEED)
    voc = BigVGAN(h, True).float().eval()  # as BigVGANWrapper.from_pretrained: use_cuda_kernel=True
    changed = randomize_constant_tensors(voc, skip=lambda n: n.endswith(".filter"), scale=0.1)
    return voc, changed


def write_vocoder(out: Path, voc):
    d = out / "vocoder"
    d.mkdir(parents=True, exist_ok=True)
    write_json(d / "config.json", vocoder_config_dict())
    gsd = {k: v.detach().float().clone() for k, v in voc.state_dict().items()}
    torch.save({"generator": gsd}, d / "model.pt")
    return gsd


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------
def safetensors_entries(path: Path):
    out = []
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        for k in sorted(f.keys()):
            out.append({"name": k, **tensor_stats(f.get_tensor(k))})
    return meta, out


def pt_entries(obj, prefix=()):
    out = []
    if isinstance(obj, torch.Tensor):
        return [{"container": list(prefix[:-1]), "name": prefix[-1], **tensor_stats(obj)}]
    if isinstance(obj, dict):
        for k in sorted(obj):
            out += pt_entries(obj[k], prefix + (k,))
    return out


def write_manifest(out: Path, manifest_path: Path, extra: dict):
    files = []
    for p in sorted(out.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(out).as_posix()
        entry = {"path": rel, "size": p.stat().st_size, "sha256": sha256(p)}
        if p.suffix == ".safetensors":
            meta, tensors = safetensors_entries(p)
            entry["format"] = "safetensors"
            entry["metadata"] = meta
            entry["tensors"] = tensors
        elif p.suffix == ".pt":
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
            entry["format"] = "torch-zip-pickle"
            entry["top_level_keys"] = sorted(obj.keys())
            entry["tensors"] = pt_entries(obj)
        else:
            entry["format"] = p.suffix.lstrip(".") or "text"
        files.append(entry)
    manifest = {
        "description": "Tensor manifest of Tests/Fixtures/tiny-release (written by "
                       "scripts/reference/make_tiny_release.py). sum and sum_sq are float64 sums over "
                       "the stored values, computed with torch (value.to(float64).sum(), (v*v).sum()). "
                       "For .pt files 'container' is the key path of the dict holding the tensor.",
        "torch_version": torch.__version__,
        **extra,
        "files": files,
    }
    write_json(manifest_path, manifest)
    return manifest


# --------------------------------------------------------------------------------------------
# Verification with the official classes / loaders
# --------------------------------------------------------------------------------------------
def verify(out: Path, KimiAudioConfig, LLMClass, FtClass, WhisperVQEncoder, ref):
    report = []
    # ---- LLM: shards + index -------------------------------------------------------------
    index = json.loads((out / "model.safetensors.index.json").read_text())
    loaded, total = {}, 0
    shards = sorted(set(index["weight_map"].values()))
    for s in shards:
        with safe_open(str(out / s), framework="pt") as f:
            assert f.metadata() == {"format": "pt"}
            for k in f.keys():
                assert index["weight_map"][k] == s
                loaded[k] = f.get_tensor(k)
                total += loaded[k].numel() * loaded[k].element_size()
    assert total == index["metadata"]["total_size"], "total_size mismatch"
    assert len(loaded) == len(index["weight_map"])
    last = [s for s in shards if s.startswith(f"model-{len(shards)}-of-{len(shards)}")]
    assert len(last) == 1
    assert sorted(k for k, v in index["weight_map"].items() if v == last[0]) == sorted(LAST_SHARD_KEYS)
    assert all(t.dtype == torch.bfloat16 for t in loaded.values())
    inv = {k: v for k, v in loaded.items() if k.endswith("rotary_emb.inv_freq")}
    n_layers = LLM["num_hidden_layers"] + LLM["kimia_mimo_layers"]
    assert len(inv) == n_layers
    cfg = KimiAudioConfig.from_pretrained(str(out))
    for cls_name, cls in (("hf-src", LLMClass), ("ft-src", FtClass)):
        if cls is None:
            continue
        m = cls(cfg).to(torch.bfloat16)
        sd = {k: v for k, v in loaded.items() if not k.endswith("rotary_emb.inv_freq")}
        m.load_state_dict(sd, strict=True)
        for i, layer in enumerate(list(m.model.layers) + list(m.model.mimo_layers)):
            pre = f"model.layers.{i}" if i < LLM["num_hidden_layers"] else \
                f"model.mimo_layers.{i - LLM['num_hidden_layers']}"
            want = layer.self_attn.rotary_emb.inv_freq.float().to(torch.bfloat16)
            assert torch.equal(inv[f"{pre}.self_attn.rotary_emb.inv_freq"], want)
        report.append(f"LLM ({cls_name} MoonshotKimiaForCausalLM): load_state_dict(strict=True) OK, "
                      f"{len(sd)} tensors + {len(inv)} inv_freq buffers match the module's")
    m, info = LLMClass.from_pretrained(str(out), torch_dtype=torch.bfloat16, output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"] and not info["error_msgs"]
    # transformers drops keys that name non-persistent buffers, so inv_freq may not be reported
    assert set(info["unexpected_keys"]) <= set(inv), info["unexpected_keys"]
    for k, v in m.state_dict().items():
        assert torch.equal(v, loaded[k]), k
    report.append("LLM: transformers from_pretrained (sharded index) OK; no missing keys, "
                  "unexpected keys only inv_freq")
    # ---- Whisper -------------------------------------------------------------------------
    from transformers import WhisperForConditionalGeneration
    wd = out / "whisper-large-v3"
    w, info = WhisperForConditionalGeneration.from_pretrained(str(wd), output_loading_info=True)
    assert not any(info.values()), info
    with safe_open(str(wd / "model.safetensors"), framework="pt") as f:
        wkeys = list(f.keys())
        wsd = {k: f.get_tensor(k) for k in wkeys}
    assert all(k.startswith("model.encoder.") or k.startswith("model.decoder.") for k in wkeys)
    assert all(v.dtype == torch.bfloat16 for v in wsd.values())
    fresh = WhisperForConditionalGeneration(w.config)
    fresh.model.load_state_dict({k[len("model."):]: v for k, v in wsd.items()}, strict=True)
    from kimia_infer.models.tokenizer.whisper_Lv3.modeling_whisper import WhisperModel as KimiWhisperModel
    kw, info = KimiWhisperModel.from_pretrained(str(wd), output_loading_info=True)
    assert not any(info.values()), info
    enc_sd = {k[len("model.encoder."):]: v for k, v in wsd.items() if k.startswith("model.encoder.")}
    kw.encoder.load_state_dict(enc_sd, strict=True)
    report.append("Whisper: HF WhisperForConditionalGeneration.from_pretrained + strict load OK; "
                  "Kimi whisper_Lv3 WhisperModel.from_pretrained (official loader) OK, no missing keys")
    # ---- GLM VQ encoder ------------------------------------------------------------------
    gd = out / "glm-4-voice-tokenizer"
    g, info = WhisperVQEncoder.from_pretrained(str(gd), output_loading_info=True)
    assert not any(info.values()), info
    assert len(g.layers) == GLM["quantize_position"]
    with safe_open(str(gd / "model.safetensors"), framework="pt") as f:
        gsd = {k: f.get_tensor(k) for k in f.keys()}
    assert all(v.dtype == torch.float32 for v in gsd.values())
    fresh = type(g)(g.config)
    fresh.load_state_dict(gsd, strict=True)
    report.append("GLM WhisperVQEncoder: from_pretrained (Kimi's Glm4Tokenizer path) + strict load OK")
    # ---- DiT: official StreamingSemanticFMWrapper.from_pretrained (strict=True inside) ----
    from kimia_infer.models.detokenizer.semantic_fm_prefix_streaming import StreamingSemanticFMWrapper
    fm = StreamingSemanticFMWrapper.from_pretrained(
        str(out / "audio_detokenizer" / "config.yaml"), str(out / "audio_detokenizer" / "model.pt"),
        torch.device("cpu"), max_prompt_chunk=10, max_kv_cache_tokens=900, use_cfg=False)
    for k, v in fm.speech_model.state_dict().items():  # wrapper casts to bf16
        assert torch.equal(v, ref["dit"][k].to(torch.bfloat16)), k
    assert fm.normalize_mel is True and fm.mel_mean == MEL_MEAN and fm.mel_std == MEL_STD
    report.append("DiT: official StreamingSemanticFMWrapper.from_pretrained (strict=True) OK")
    # ---- Vocoder: official BigVGANWrapper.from_pretrained (BigVGAN(h, True), strict) -------
    from kimia_infer.models.detokenizer.bigvgan_wrapper import BigVGANWrapper
    bw = BigVGANWrapper.from_pretrained(str(out / "vocoder" / "config.json"),
                                        str(out / "vocoder" / "model.pt"), torch.device("cpu"))
    vsd = bw.vocoder.state_dict()
    assert any(k.endswith("weight_g") for k in vsd) and not any(k.endswith(".weight") and "conv" in k for k in vsd)
    assert "conv_post.bias" not in vsd
    bw.vocoder.remove_weight_norm()  # folding must work on the stored form
    report.append(f"Vocoder: official BigVGANWrapper.from_pretrained (strict) OK, {len(vsd)} keys "
                  f"(weight_g/weight_v form); remove_weight_norm OK")
    return report


def fixture_readme() -> str:
    return f"""# tiny-release — random-weight miniature of Kimi-Audio-7B-Instruct

Test fixture (NOT a usable model): every file of the `moonshotai/Kimi-Audio-7B-Instruct` release,
same names, formats, tensor names, dtypes and container layout, but tiny dimensions and random
weights (seed {SEED}).  Built with the **official** PyTorch classes by
`scripts/reference/make_tiny_release.py`; the tensor manifest (name, dtype, shape, float64 sum and
sum of squares, computed with torch) is `Tests/Fixtures/tiny-release.manifest.json`.
`THUDM/glm-4-voice-tokenizer` (downloaded separately in real use) sits here as a sub-folder.

## Files

| path | what | built from |
| --- | --- | --- |
| `config.json`, `generation_config.json` | KimiAudioConfig (all `kimia_*` keys), model_type qwen2, auto_map | — |
| `tiktoken.model` | 256 single-byte ranks (GPT-2/Qwen byte order, rank 0 = `!`) + {NUM_BPE_MERGES} merges trained on a fixed English text; `base64(bytes) SP rank` | script |
| `tokenizer_config.json`, `special_tokens_map.json` | reconstructed (the real files were not available): {NUM_SPECIALS} specials at ids {NUM_BASE_TOKENS}..{TEXT_VOCAB - 1} in the order of docs/ARCHITECTURE.md §3.1, pad = `<|reserved_token_406|>` = {SPECIAL_ID["<|reserved_token_406|>"]} | script |
| `model-1-of-3.safetensors` … `model-3-of-3.safetensors`, `model-4-of-4.safetensors` | BF16 LLM shards with the release's naming quirk; the last shard holds exactly `model.embed_tokens.weight`, `model.norm.weight`, `lm_head.weight`, `mimo_output.weight`, `model.mimo_norm.weight`; every trunk and MIMO layer also stores `self_attn.rotary_emb.inv_freq` (BF16 [{LLM["hidden_size"] // LLM["num_attention_heads"] // 2}]) like the real shards | `MoonshotKimiaForCausalLM` (HF remote code) |
| `model.safetensors.index.json` | `metadata.total_size` (tensor bytes incl. inv_freq) + sorted `weight_map`, as transformers writes it | — |
| `whisper-large-v3/` | `config.json`, `model.safetensors` (BF16, keys `model.encoder.*` + unused `model.decoder.*`), `preprocessor_config.json` | transformers `WhisperForConditionalGeneration` |
| `glm-4-voice-tokenizer/` | `config.json` (WhisperVQConfig), `model.safetensors` (fp32, unprefixed keys incl. `codebook.weight`, `embed_positions2.weight`, `ema_count`, `ema_weight`), `preprocessor_config.json` | GLM-4-Voice `WhisperVQEncoder` |
| `audio_detokenizer/config.yaml`, `audio_detokenizer/model.pt` | DiT hyper-parameters (`model.dit.*`, `normalize_mel`, `mel_mean`, `mel_std`); `torch.save` dict: `state_dict` = `speech_model.*` (fp32) **plus** `resampler.kernel`, and extra top-level keys `extra_state` (a tensor dict) and `global_step` — converters must ignore everything except `state_dict["speech_model.*"]` | Kimi `DiTPrefix` |
| `vocoder/config.json`, `vocoder/model.pt` | BigVGAN hparams; `torch.save({{"generator": state_dict}})` in weight-norm form (`weight_g`/`weight_v`, 1206 keys, no `conv_post.bias`, fp32) | Kimi `BigVGAN(h, use_cuda_kernel=True)` |

## Dimensions (docs/ARCHITECTURE.md §7.1)

* Text: {NUM_BASE_TOKENS} BPE ranks + {NUM_SPECIALS} specials = {TEXT_VOCAB} text ids; audio codes at {TEXT_VOCAB} + code (codebook {AUDIO_CODEBOOK}) → `vocab_size` {TEXT_VOCAB + AUDIO_CODEBOOK}. `<|im_media_begin|>` = {SPECIAL_ID["<|im_media_begin|>"]}, `<|im_media_end|>` = {SPECIAL_ID["<|im_media_end|>"]}, blank = {SPECIAL_ID["<|im_kimia_text_blank|>"]}, text_eos = {SPECIAL_ID["<|im_kimia_text_eos|>"]}, msg_end = {SPECIAL_ID["<|im_msg_end|>"]}, user start = {SPECIAL_ID["<|im_kimia_user_msg_start|>"]}, assistant start = {SPECIAL_ID["<|im_kimia_assistant_msg_start|>"]}, ct = {SPECIAL_ID["<|im_kimia_speech_ct_id|>"]}, ctd = {SPECIAL_ID["<|im_kimia_speech_ctd_id|>"]}.
* LLM: hidden {LLM["hidden_size"]}, heads {LLM["num_attention_heads"]} / kv {LLM["num_key_value_heads"]} (head_dim {LLM["hidden_size"] // LLM["num_attention_heads"]}), intermediate {LLM["intermediate_size"]}, {LLM["num_hidden_layers"]} trunk layers, {LLM["kimia_mimo_layers"]} MIMO layers branching after trunk layer index {LLM["kimia_mimo_transformer_from_layer_index"]}, audio delay {LLM["kimia_mimo_audiodelaytokens"]}, rope_theta 1e6, rms eps 1e-6, max positions {LLM["max_position_embeddings"]}, adaptor input {ADAPTOR_IN} (= 4 × {WHISPER_D}), untied embeddings.
* Whisper encoder: d_model {WHISPER_D}, 2 layers, 2 heads, FFN 64, 128 mels, 1500 positions (decoder: 2 layers, vocab 96, 64 positions — unused).
* GLM VQ encoder: d_model 32, 2 heads, FFN 64, quantize_position = pooling_position = 2 (2 layers built; `encoder_layers` in config.json says {GLM_CONFIG_ENCODER_LAYERS}, mirroring the real 32-vs-16 quirk — count layers with `quantize_position`), avg pooling 4, codebook 64 × 32, causal convs, block size 8, 1500/375 positions.
* DiT: hidden 64, 4 heads, depth 2, mlp_ratio 4 (GELU-tanh), 80 mels, semantic vocab 64 (+1 row), RoPE base 1e4 / 4096, position_embedding_type skip, normalize_mel with mean {MEL_MEAN} / std {MEL_STD} (the real values).
* BigVGAN: 80 mels, `upsample_initial_channel` **{VOCODER_INITIAL_CHANNEL}** (256 would give a ~15 MB file; channels 128→64→…→1), rates [5,2,2,2,2,3,2], kernels [9,4,4,4,4,5,4], AMPBlock1 kernels [3,5,7,11] dilations [1,3,5], snakebeta log-scale, official Kaiser-sinc 12-tap filters, no final bias, clamp (use_tanh_at_final false).

## Weights

Official init with `torch.manual_seed({SEED})`, then every tensor that the official init leaves
*constant* (norm weights = 1, biases = 0, the zero-initialised DiT adaLN/final layers, snake
alpha/beta = 0) is replaced by `constant + N(0, σ)` (σ = 0.1 around 1; 0.02 around 0, 0.1 for the
vocoder) so that a converter which drops or swaps such a tensor is caught.  Untouched: inv_freq,
the anti-alias filters, sinusoidal position tables, GLM `ema_count`/`ema_weight`.  The list of
re-randomised tensors is in the manifest (`randomized_constant_tensors`).

## Regenerate

```
scripts/reference/setup.sh .venv-ref
.venv-ref/bin/python scripts/reference/make_tiny_release.py \\
    --kimi-src /tmp/ref-src/kimi --glm-src /tmp/ref-src/glm \\
    --hf-src /tmp/ref-src/hf --ft-src /tmp/ref-src/train/finetune_codes \\
    --out Tests/Fixtures/tiny-release --manifest Tests/Fixtures/tiny-release.manifest.json
```
(see the script's docstring for how to obtain the four source trees). The output is byte-identical
across runs. The script verifies the result by loading every component back with the official
classes/loaders (`load_state_dict(strict=True)`, `from_pretrained`, `StreamingSemanticFMWrapper.from_pretrained`,
`BigVGANWrapper.from_pretrained`).
"""


# --------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kimi-src", type=Path, default=Path("/tmp/ref-src/kimi"))
    ap.add_argument("--glm-src", type=Path, default=Path("/tmp/ref-src/glm"))
    ap.add_argument("--hf-src", type=Path, default=Path("/tmp/ref-src/hf"))
    ap.add_argument("--ft-src", type=Path, default=Path("/tmp/ref-src/train/finetune_codes"))
    ap.add_argument("--out", type=Path, default=Path("Tests/Fixtures/tiny-release"))
    ap.add_argument("--manifest", type=Path, default=Path("Tests/Fixtures/tiny-release.manifest.json"))
    ap.add_argument("--no-verify", action="store_true")
    args = ap.parse_args()

    torch.use_deterministic_algorithms(True)
    install_import_stubs(args.kimi_src.resolve(), args.glm_src.resolve())
    KimiAudioConfig, LLMClass, FtClass, cfg_path = import_llm_classes(args.hf_src.resolve(), args.ft_src.resolve())
    WhisperVQConfig, WhisperVQEncoder = import_glm()

    out = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    vocab = write_tokenizer(out)
    sample_ids = check_tokenizer(out, vocab)

    config, llm, ch_llm = build_llm(KimiAudioConfig, LLMClass)
    write_llm(out, config, llm)
    wcfg, whisper, ch_w = build_whisper()
    write_whisper(out, whisper)
    gcfg, glm, ch_g = build_glm(WhisperVQConfig, WhisperVQEncoder)
    write_glm(out, glm)
    dit, ch_d = build_dit()
    write_dit(out, dit)
    voc, ch_v = build_vocoder()
    write_vocoder(out, voc)
    (out / "README.md").write_text(fixture_readme())

    report = []
    if not args.no_verify:
        report = verify(out, KimiAudioConfig, LLMClass, FtClass, WhisperVQEncoder,
                        {"dit": {k: v.detach().float() for k, v in dit.state_dict().items()}})

    extra = {
        "seed": SEED,
        "tokenizer": {"num_base_tokens": NUM_BASE_TOKENS, "num_specials": NUM_SPECIALS,
                      "text_vocab": TEXT_VOCAB, "special_ids": {t: SPECIAL_ID[t] for t in USED_SPECIALS},
                      "pad_id": SPECIAL_ID["<|reserved_token_406|>"],
                      "sample_text": "The quick brown fox said: we're testing the tokenizer, 2025!",
                      "sample_ids_tiktoken": sample_ids},
        "randomized_constant_tensors": {"llm": ch_llm, "whisper": ch_w, "glm": ch_g, "dit": ch_d,
                                        "vocoder_count": len(ch_v)},
        "import_patches": PATCHES,
        "llm_config_class_source": f"{cfg_path.parent.name}/{cfg_path.name}",
    }
    write_manifest(out, args.manifest, extra)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    for line in report:
        print("verify:", line)
    for p in PATCHES:
        print("patch:", p)
    print(f"wrote {out} ({total} bytes) and {args.manifest}")


if __name__ == "__main__":
    main()
