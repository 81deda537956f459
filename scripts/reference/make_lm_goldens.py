#!/usr/bin/env python3
"""Golden cases (stage ``lm``) for the runtime's LLM, made with the OFFICIAL PyTorch code.

Writes into ``Tests/Fixtures/golden/`` (format: ``formats/GOLDEN.md``):

  kimi_tiny_lm_f32.safetensors        tiny release, float32, audio->audio prompt (+ a user text
                                      message), one continuous-feature segment, 12 greedy steps
                                      with output_type "both"
  kimi_tiny_lm_bf16.safetensors       the same in bfloat16 (as the release runs); logits stored f32
  kimi_tiny_lm_textonly_f32.safetensors  text->text prompt, no features, 8 greedy steps,
                                      output_type "text"
  qwen_tiny_lm_f32.safetensors        Tests/Fixtures/tiny-qwen2 with transformers Qwen2ForCausalLM
                                      (f32, eager attention), chat template prompt, generate() greedy

Official code used (kept OUTSIDE the repository, see scripts/reference/README.md):
  * model:   MoonshotKimiaForCausalLM from modeling_moonshot_kimia.py of
             SolutionArichtect/Kimi-Audio-7B-Instruct-Ascend @ 2144e18 (the HF remote code, NPU
             flavoured), loaded with ``from_pretrained(torch_dtype=...)`` exactly like
             kimia_infer/api/kimia.py:27-29 does;
  * prompt:  KimiAPromptManager.get_prompt / tokenize_message (MoonshotAI/Kimi-Audio @ 2607d51,
             kimia_infer/api/prompt_manager.py) -- the instance is made with ``object.__new__``
             (its __init__ loads the GLM tokenizer / Whisper on CUDA); the text tokenizer is the
             tiny release's tiktoken.model with the Qwen2 pattern, ``_tokenize_audio`` and
             ``extract_whisper_feat`` return the fixed codes / features of this script;
  * loop:    KimiAudio._generate_loop (kimia_infer/api/kimia.py:51-207) called unmodified on an
             instance made with ``object.__new__`` (attributes alm, extra_tokens,
             kimia_text_audiodelaytokens = 6, eod_ids set as in __init__, kimia.py:47-49);
  * sampler: KimiASampler (kimia_infer/utils/sampler.py), wrapped only to keep references to the
             tensors it returns (the loop fills forced blanks into those tensors in place, so
             after the loop they hold exactly the ids fed back / stored in the history).

Patches (no official file is edited): the import stubs of make_tiny_release.py
(torch_npu, flash_attn, timm, librosa, BigVGAN CUDA loader) plus, for forward passes:
  * torch_npu.npu_fusion_attention(q, k, v, N, "BSND", keep_prob=1, scale, atten_mask,
    sparse_mode=3) -> eager attention: fp32 scores/softmax/PV with GQA (query head h uses KV head
    h // (N/Nkv)) and the bottom-right aligned causal mask of sparse_mode 3, output cast to the
    input dtype (flash-attention semantics);
  * torch.cuda.current_device -> "cpu" (model forward whisper branch, kimia.py buffers);
  * float32 models only: the fp32 -> fp16 down-cast of q/k/v before the flash kernel
    (modeling_moonshot_kimia.py:345-367, needed only because flash-attn has no fp32 kernel) is
    neutralised by giving the modeling module a ``torch`` whose ``float16`` is float32; the
    script prints how much the logits would move without this patch;
  * stubs for loguru, and kimia_infer.models.tokenizer.glm4.speech_tokenizer (a git submodule,
    aliased to GLM-4-Voice's speech_tokenizer; its utils module, which needs torchaudio, is a stub).

Run (from the repo root)::

    /opt/refvenv/bin/python scripts/reference/make_lm_goldens.py
        [--kimi-src /tmp/ref-src/kimi --glm-src /tmp/ref-src/glm --hf-src /tmp/ref-src/hf
         --ft-src /tmp/ref-src/train/finetune_codes --out Tests/Fixtures/golden]

Deterministic (fixed seeds, CPU, deterministic algorithms); every file is re-loaded and its
case re-run through the reference after writing.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import types
from pathlib import Path

import torch
from safetensors import safe_open

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_tiny_release as mtr  # noqa: E402  (shared import stubs / tiny tokenizer constants)

REPO = HERE.parent.parent
TINY = REPO / "Tests" / "Fixtures" / "tiny-release"
TINY_QWEN = REPO / "Tests" / "Fixtures" / "tiny-qwen2"

FEATURE_SEED = 1234
AUDIO_CODES = [5, 17, 42, 0, 63, 8, 33, 21]          # N = 8 GLM codes (tiny codebook 64)
AUDIO_PROMPT_TEXT = "What is the weather like today?"  # user text message before the audio
TEXTONLY_PROMPT_TEXT = "Please transcribe the speech to text."
QWEN_PROMPT = "What is the capital of France?"
K_BOTH, K_TEXT, K_QWEN = 12, 8, 8

SOURCES = {}  # filled in main(): repo name -> commit


# commits the sources were taken at (the /tmp/ref-src trees are `git archive` exports without .git)
TESTED_REVS = {"kimi": "2607d515f5b7dffa1dcc7526f9f26feb48e356c4",
               "hf": "2144e18b03871c3309973005472e417e485e74cd"}


def git_head(path: Path, which: str) -> str:
    try:
        return subprocess.check_output(["git", "-C", str(path), "rev-parse", "HEAD"], text=True,
                                       stderr=subprocess.DEVNULL).strip()
    except Exception:
        return TESTED_REVS[which]


# --------------------------------------------------------------------------------------------
# Forward-time patches
# --------------------------------------------------------------------------------------------
def npu_fusion_attention_cpu(query, key, value, head_num, input_layout, *, keep_prob=1.0,
                             scale=None, atten_mask=None, sparse_mode=0, **kw):
    """Math of torch_npu.npu_fusion_attention for the way modeling_moonshot_kimia.py calls it
    (layout BSND, no dropout, sparse_mode 3 = causal aligned to the bottom-right corner)."""
    assert input_layout == "BSND" and keep_prob == 1.0 and sparse_mode == 3 and not kw
    b, sq, n, d = query.shape
    sk, nkv = key.shape[1], key.shape[2]
    assert n == head_num and n % nkv == 0
    q = query.float().transpose(1, 2)                                       # B N Sq D
    k = key.float().transpose(1, 2).repeat_interleave(n // nkv, dim=1)      # B N Sk D
    v = value.float().transpose(1, 2).repeat_interleave(n // nkv, dim=1)
    s = torch.matmul(q, k.transpose(-1, -2)) * scale
    allowed = torch.ones(sq, sk, dtype=torch.bool).tril(diagonal=sk - sq)
    s = s.masked_fill(~allowed, float("-inf"))
    p = torch.softmax(s, dim=-1)
    o = torch.matmul(p, v).transpose(1, 2).to(query.dtype)                  # B Sq N D
    return (o,)


class _TorchNoHalf(types.ModuleType):
    """``torch`` as seen by the modeling module, except ``float16`` is float32 (see docstring)."""

    def __getattr__(self, name):
        return getattr(torch, name)


def install_forward_patches(kimi_src: Path, glm_src: Path):
    mtr.install_import_stubs(kimi_src, glm_src)
    sys.modules["torch_npu"].npu_fusion_attention = npu_fusion_attention_cpu
    torch.cuda.current_device = lambda: "cpu"
    mtr._stub_module("loguru", logger=types.SimpleNamespace(
        info=lambda *a, **k: None, warning=lambda *a, **k: None, debug=lambda *a, **k: None))
    import speech_tokenizer
    import speech_tokenizer.modeling_whisper
    glm4 = "kimia_infer.models.tokenizer.glm4"
    mtr._stub_module(glm4)
    sys.modules[glm4 + ".speech_tokenizer"] = speech_tokenizer
    sys.modules[glm4 + ".speech_tokenizer.modeling_whisper"] = speech_tokenizer.modeling_whisper
    mtr._stub_module(glm4 + ".speech_tokenizer.utils",
                     extract_speech_token=mtr._not_available("extract_speech_token"))


# --------------------------------------------------------------------------------------------
# Official prompt manager / loop on CPU
# --------------------------------------------------------------------------------------------
class TinyTikTokenizer:
    """What KimiAPromptManager needs from the HF TikTokenTokenizer: encode(text, bos, eos),
    special_tokens, pad_id.  Encoding = tiktoken with the tiny ranks and the Qwen2 pattern, user
    text specials encoded as plain text (allowed_special=set(), disallowed_special=())."""

    def __init__(self, release: Path):
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe
        ranks = load_tiktoken_bpe(str(release / "tiktoken.model"))
        self.special_tokens = dict(mtr.SPECIAL_ID)
        self.pad_id = mtr.SPECIAL_ID["<|reserved_token_406|>"]
        self.enc = tiktoken.Encoding(name="tiny-kimia", pat_str=mtr.QWEN2_PATTERN,
                                     mergeable_ranks=ranks, special_tokens=self.special_tokens)

    def encode(self, text, bos=False, eos=False):
        assert not bos and not eos
        return self.enc.encode(text, allowed_special=set(), disallowed_special=())


def make_prompt_manager(release: Path, offset: int, features: torch.Tensor):
    from kimia_infer.api.prompt_manager import KimiAPromptManager
    from kimia_infer.utils.special_tokens import instantiate_extra_tokens
    pm = object.__new__(KimiAPromptManager)
    pm.text_tokenizer = TinyTikTokenizer(release)
    pm.extra_tokens = instantiate_extra_tokens(pm.text_tokenizer)
    pm.kimia_token_offset = offset
    pm._tokenize_audio = lambda path: [offset + c for c in AUDIO_CODES]
    # extract_whisper_feat returns [1, n, 4*d_model] (prompt_manager.py:58-64)
    pm.extract_whisper_feat = lambda path: features.unsqueeze(0)
    return pm


class RecordingSampler:
    """Factory for a subclass of the official KimiASampler that keeps the returned tensors."""

    def __init__(self, base):
        log = self.log = {"text": [], "audio": []}

        class Rec(base):
            def sample_text_logits(self, logits, recent_tokens=None):
                t = super().sample_text_logits(logits, recent_tokens)
                log["text"].append(t)
                return t

            def sample_audio_logits(self, logits, recent_tokens=None):
                t = super().sample_audio_logits(logits, recent_tokens)
                log["audio"].append(t)
                return t

        self.cls = Rec


class RecordingALM:
    """Stands in for KimiAudio.alm: forwards to the official model, records inputs/outputs."""

    def __init__(self, model):
        self.model = model
        self.calls = []

    def forward(self, **kw):
        out = self.model.forward(**kw)
        self.calls.append({"input_ids": kw["input_ids"].clone(),
                           "text_input_ids": kw["text_input_ids"].clone(),
                           "position_ids": kw["position_ids"].clone(),
                           "audio_logits": out[0].float().clone(),
                           "text_logits": out[1].float().clone()})
        return out


def run_official_loop(model, extra_tokens, audio_ids, text_ids, cont_mask, features, k, output_type):
    """KimiAudio._generate_loop, greedy (T = 0 for both streams; the other sampler parameters are
    generate()'s defaults).  Returns prompt logits and the K fed-back (text, audio) ids."""
    import kimia_infer.api.kimia as kimia_mod
    from kimia_infer.api.kimia import KimiAudio
    ka = object.__new__(KimiAudio)
    rec_alm = RecordingALM(model)
    ka.alm = rec_alm
    ka.extra_tokens = extra_tokens
    ka.kimia_text_audiodelaytokens = 6                               # kimia.py:48
    ka.eod_ids = [extra_tokens.msg_end, extra_tokens.media_end]      # kimia.py:49
    rs = RecordingSampler(kimia_mod.KimiASampler)
    saved = kimia_mod.KimiASampler
    kimia_mod.KimiASampler = rs.cls
    try:
        ret_audio, ret_text = ka._generate_loop(
            audio_input_ids=audio_ids, text_input_ids=text_ids, max_new_tokens=k,
            audio_top_k=5, audio_temperature=0.0, audio_repetition_penalty=1.0,
            audio_repetition_window_size=64, text_top_k=5, text_temperature=0.0,
            text_repetition_penalty=1.0, text_repetition_window_size=16,
            is_continuous_mask=cont_mask, continous_feature=features, output_type=output_type)
    finally:
        kimia_mod.KimiASampler = saved
    text = [int(t.item()) for t in rs.log["text"]]
    audio = [int(t.item()) for t in rs.log["audio"]]
    assert len(text) == len(audio) == len(rec_alm.calls)
    # cross-check: what call i+1 received is what step i produced (after forcing)
    for i, call in enumerate(rec_alm.calls[1:]):
        assert call["input_ids"].tolist() == [[audio[i]]] and call["text_input_ids"].tolist() == [[text[i]]]
        assert call["position_ids"].tolist() == [[audio_ids.shape[1] + i]]
    prefill = rec_alm.calls[0]

    def gap(l):  # top-1 minus top-2 logit of the last position
        top = l[0, -1].float().topk(2).values
        return float(top[0] - top[1])
    margins = {"text": min(gap(c["text_logits"]) for c in rec_alm.calls),
               "audio": min([gap(c["audio_logits"]) for i, c in enumerate(rec_alm.calls)
                             if i >= 6 and output_type == "both"] or [float("nan")])}
    return {"margins": margins, "text_logits": prefill["text_logits"][0], "audio_logits": prefill["audio_logits"][0],
            "greedy_text": text, "greedy_audio": audio, "returned": (ret_text, ret_audio),
            "steps": len(text), "calls": rec_alm.calls}


# --------------------------------------------------------------------------------------------
# Kimi cases
# --------------------------------------------------------------------------------------------
def load_kimi(LLMClass, dtype):
    m = LLMClass.from_pretrained(str(TINY), torch_dtype=dtype)
    return m.eval()


def kimi_case(model, pm, messages, output_type, k, dtype, features):
    hist = pm.get_prompt(messages, output_type=output_type)
    audio_ids, text_ids, cont = hist.to_tensor()
    feats = [f.to(dtype) for f in hist.continuous_feature]   # the Whisper encoder runs in bf16
    # Deviation: KimiAudio.generate passes the (possibly EMPTY) feature list (kimia.py:233,247,262);
    # for a prompt without audio the model then fails with IndexError at
    # modeling_moonshot_kimia.py:726-734 (`whisper_input_feature[0]` on []).  No features -> None.
    res = run_official_loop(model, pm.extra_tokens, audio_ids, text_ids, cont,
                            feats if feats else None, k, output_type)
    res.update(audio_ids=audio_ids[0], text_ids=text_ids[0], cont=cont[0], feats=feats)
    return res


_ST_DTYPES = {torch.float32: "F32", torch.int64: "I64", torch.uint8: "U8"}


def save_case(path: Path, tensors: dict, meta: dict):
    """Write a safetensors file byte-deterministically (the safetensors library writes the
    metadata map in random order): tensors sorted by name, metadata keys sorted, compact JSON,
    header padded with spaces to a multiple of 8 like the library does.  Values must be str."""
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in sorted(meta.items())}
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    with safe_open(str(path), framework="pt") as f:  # the library must read it back identically
        assert f.metadata() == meta and sorted(f.keys()) == sorted(tensors)
        for name in tensors:
            assert torch.equal(f.get_tensor(name), tensors[name].cpu()), name


def kimi_tensors(res, with_greedy=True):
    t = {"in.audio_ids": res["audio_ids"].to(torch.int64),
         "in.text_ids": res["text_ids"].to(torch.int64),
         "out.text_logits": res["text_logits"].float(),
         "out.audio_logits": res["audio_logits"].float()}
    if res["feats"]:
        assert len(res["feats"]) == 1
        t["in.whisper_features"] = res["feats"][0][0].float()
        t["in.continuous_mask"] = res["cont"].to(torch.uint8)
    if with_greedy:
        t["out.greedy_text"] = torch.tensor(res["greedy_text"], dtype=torch.int64)
        t["out.greedy_audio"] = torch.tensor(res["greedy_audio"], dtype=torch.int64)
    return t


def reload_and_rerun_kimi(path: Path, model, extra_tokens, output_type, dtype):
    """Re-run the stored inputs through the official loop and compare bit-for-bit."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        g = {k: f.get_tensor(k) for k in f.keys()}
    assert meta["kaf.golden"] == "1" and meta["stage"] == "lm"
    feats = None
    cont = torch.zeros(1, g["in.audio_ids"].numel(), dtype=torch.bool)
    if "in.whisper_features" in g:
        feats = [g["in.whisper_features"].to(dtype).unsqueeze(0)]
        cont = g["in.continuous_mask"].bool().unsqueeze(0)
    k = g["out.greedy_text"].numel()
    res = run_official_loop(model, extra_tokens, g["in.audio_ids"].unsqueeze(0),
                            g["in.text_ids"].unsqueeze(0), cont, feats, k, output_type)
    assert torch.equal(res["text_logits"], g["out.text_logits"]), path
    assert torch.equal(res["audio_logits"], g["out.audio_logits"]), path
    assert res["greedy_text"] == g["out.greedy_text"].tolist()
    assert res["greedy_audio"] == g["out.greedy_audio"].tolist()
    return g


def kv_cache_check(model, res, feats, dtype):
    """Full no-cache forward of prompt + fed-back ids: its logits at the generated positions
    must give the same argmax as the KV-cached loop (sanity check of the cache path)."""
    L = res["audio_ids"].numel()
    n = len(res["calls"]) - 1
    a = torch.cat([res["audio_ids"], torch.tensor(res["greedy_audio"][:n])]).unsqueeze(0)
    t = torch.cat([res["text_ids"], torch.tensor(res["greedy_text"][:n])]).unsqueeze(0)
    cont = torch.cat([res["cont"], torch.zeros(n, dtype=torch.bool)]).unsqueeze(0)
    with torch.inference_mode():
        al, tl, _ = model.forward(input_ids=a, text_input_ids=t, whisper_input_feature=feats or None,
                                  is_continuous_mask=cont, position_ids=torch.arange(L + n).unsqueeze(0),
                                  return_dict=False)
    dmax = 0.0
    for i, call in enumerate(res["calls"][1:]):
        dmax = max(dmax, (tl[0, L + i].float() - call["text_logits"][0, -1]).abs().max().item(),
                   (al[0, L + i].float() - call["audio_logits"][0, -1]).abs().max().item())
    return dmax


# --------------------------------------------------------------------------------------------
# Qwen case
# --------------------------------------------------------------------------------------------
def qwen_case(out: Path):
    import transformers
    from transformers import AutoTokenizer, Qwen2ForCausalLM
    tok = AutoTokenizer.from_pretrained(str(TINY_QWEN))
    msgs = [{"role": "user", "content": QWEN_PROMPT}]
    prompt_text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    ids = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
    assert ids == tok(prompt_text, add_special_tokens=False)["input_ids"]
    model = Qwen2ForCausalLM.from_pretrained(str(TINY_QWEN), torch_dtype=torch.float32,
                                             attn_implementation="eager").eval()
    x = torch.tensor([ids])
    with torch.inference_mode():
        logits = model(input_ids=x).logits[0].float()
        gen = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False,
                             max_new_tokens=K_QWEN, min_new_tokens=0, num_beams=1,
                             pad_token_id=tok.pad_token_id, output_scores=True,
                             return_dict_in_generate=True)
    greedy = gen.sequences[0, len(ids):].tolist()
    gaps = [float(t[0] - t[1]) for t in (sc[0].topk(2).values for sc in gen.scores)]
    path = out / "qwen_tiny_lm_f32.safetensors"
    save_case(path, {"in.text_ids": torch.tensor(ids, dtype=torch.int64),
                     "out.text_logits": logits,
                     "out.greedy_text": torch.tensor(greedy, dtype=torch.int64)},
              {"kaf.golden": "1", "stage": "lm", "dtype": "f32", "model": "Tests/Fixtures/tiny-qwen2",
               "source": f"transformers {transformers.__version__} Qwen2ForCausalLM (attn_implementation=eager, "
                         f"float32); prompt = tokenizer.apply_chat_template(add_generation_prompt=True); "
                         f"greedy = generate(do_sample=False, max_new_tokens={K_QWEN})",
               "prompt": prompt_text, "k": len(greedy),
               "eos_token_id": model.generation_config.eos_token_id, "greedy_min_top2_gap": min(gaps)})
    # reload + re-run
    with safe_open(str(path), framework="pt") as f:
        g = {k: f.get_tensor(k) for k in f.keys()}
    with torch.inference_mode():
        l2 = model(input_ids=g["in.text_ids"].unsqueeze(0)).logits[0].float()
        g2 = model.generate(g["in.text_ids"].unsqueeze(0), attention_mask=torch.ones_like(x),
                            do_sample=False, max_new_tokens=K_QWEN, pad_token_id=tok.pad_token_id)
    assert torch.equal(l2, g["out.text_logits"]) and g2[0, len(ids):].tolist() == g["out.greedy_text"].tolist()
    # a bf16 run for information (the converter's BF16 weights at BF16 compute)
    mb = Qwen2ForCausalLM.from_pretrained(str(TINY_QWEN), torch_dtype=torch.bfloat16,
                                          attn_implementation="eager").eval()
    with torch.inference_mode():
        lb = mb(input_ids=x).logits[0].float()
    print(f"qwen: prompt {prompt_text!r}\n  ids {ids}\n  greedy {greedy} (min top1-top2 gap {min(gaps):.3g})\n"
          f"  logits shape {tuple(logits.shape)}; |bf16-f32| max {(lb - logits).abs().max():.4g} "
          f"mean {(lb - logits).abs().mean():.4g}")
    return path


# --------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kimi-src", type=Path, default=Path("/tmp/ref-src/kimi"))
    ap.add_argument("--glm-src", type=Path, default=Path("/tmp/ref-src/glm"))
    ap.add_argument("--hf-src", type=Path, default=Path("/tmp/ref-src/hf"))
    ap.add_argument("--ft-src", type=Path, default=Path("/tmp/ref-src/train/finetune_codes"))
    ap.add_argument("--out", type=Path, default=REPO / "Tests" / "Fixtures" / "golden")
    args = ap.parse_args()

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    install_forward_patches(args.kimi_src.resolve(), args.glm_src.resolve())
    KimiAudioConfig, LLMClass, _ft, _cfg = mtr.import_llm_classes(args.hf_src.resolve(), args.ft_src.resolve())
    model_mod = sys.modules[LLMClass.__module__]
    no_half = _TorchNoHalf("torch")
    no_half.float16 = torch.float32
    kimi_rev, hf_rev = git_head(args.kimi_src, "kimi"), git_head(args.hf_src, "hf")
    src = (f"MoonshotKimiaForCausalLM from SolutionArichtect/Kimi-Audio-7B-Instruct-Ascend@{hf_rev[:7]} "
           f"modeling_moonshot_kimia.py (npu_fusion_attention -> eager fp32-softmax attention, "
           f"{{half}}); prompt = KimiAPromptManager.get_prompt, loop = KimiAudio._generate_loop, "
           f"sampler = KimiASampler from MoonshotAI/Kimi-Audio@{kimi_rev[:7]}; greedy (T=0)")
    args.out.mkdir(parents=True, exist_ok=True)

    cfg = KimiAudioConfig.from_pretrained(str(TINY))
    offset = cfg.kimia_token_offset
    gen = torch.Generator().manual_seed(FEATURE_SEED)
    feats32 = torch.randn(len(AUDIO_CODES), cfg.kimia_adaptor_input_dim, generator=gen)
    feats = feats32.to(torch.bfloat16).float()  # bf16-representable: same input for f32 and bf16
    pm = make_prompt_manager(TINY, offset, feats)
    both_msgs = [{"role": "user", "message_type": "text", "content": AUDIO_PROMPT_TEXT},
                 {"role": "user", "message_type": "audio", "content": "<fixed codes + features>"}]
    text_msgs = [{"role": "user", "message_type": "text", "content": TEXTONLY_PROMPT_TEXT}]

    results = {}
    for dtype, tag in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
        model = load_kimi(LLMClass, dtype)
        model_mod.torch = no_half if dtype == torch.float32 else torch
        half_note = ("fp32->fp16 q/k/v down-cast before the kernel neutralised" if dtype == torch.float32
                     else "model in bf16 as kimia.py loads it")
        res = kimi_case(model, pm, both_msgs, "both", K_BOTH, dtype, feats)
        results[tag] = res
        meta = {"kaf.golden": "1", "stage": "lm", "dtype": tag, "model": "Tests/Fixtures/tiny-release",
                "source": src.format(half=half_note), "output_type": "both", "k": res["steps"],
                "messages": both_msgs, "audio_codes": AUDIO_CODES,
                "whisper_features": f"torch.randn(8, 128, generator=manual_seed({FEATURE_SEED})) rounded to bf16",
                "greedy_min_top2_gap": res["margins"],
                "kimia_token_offset": offset, "delay": 6, "eod_ids": [pm.extra_tokens.msg_end, pm.extra_tokens.media_end]}
        path = args.out / f"kimi_tiny_lm_{tag}.safetensors"
        save_case(path, kimi_tensors(res), meta)
        reload_and_rerun_kimi(path, model, pm.extra_tokens, "both", dtype)
        print(f"kimi {tag}: KV-cache vs full-forward max |Δlogit| at generated positions: "
              f"{kv_cache_check(model, res, res['feats'], dtype):.3g}")
        if dtype == torch.float32:
            # text -> text, output_type "text"
            rt = kimi_case(model, pm, text_msgs, "text", K_TEXT, dtype, None)
            results["text"] = rt
            meta = {"kaf.golden": "1", "stage": "lm", "dtype": tag, "model": "Tests/Fixtures/tiny-release",
                    "source": src.format(half=half_note), "output_type": "text", "k": rt["steps"],
                    "messages": text_msgs, "greedy_min_top2_gap": rt["margins"], "kimia_token_offset": offset, "delay": 6}
            path = args.out / "kimi_tiny_lm_textonly_f32.safetensors"
            save_case(path, kimi_tensors(rt), meta)
            reload_and_rerun_kimi(path, model, pm.extra_tokens, "text", dtype)
            # what the unpatched fp16 down-cast would do (information only)
            model_mod.torch = torch
            r16 = kimi_case(model, pm, both_msgs, "both", K_BOTH, dtype, feats)
            model_mod.torch = no_half
            print("kimi f32: effect of the official fp32->fp16 attention down-cast (not in the golden): "
                  f"text max {(r16['text_logits'] - res['text_logits']).abs().max():.3g}, audio max "
                  f"{(r16['audio_logits'] - res['audio_logits']).abs().max():.3g}; greedy same: "
                  f"{r16['greedy_text'] == res['greedy_text'] and r16['greedy_audio'] == res['greedy_audio']}")
            # a direct official forward with .to(bf16) instead of from_pretrained(bf16) must agree
        else:
            m2 = load_kimi(LLMClass, torch.float32).to(torch.bfloat16)
            r2 = kimi_case(m2, pm, both_msgs, "both", K_BOTH, dtype, feats)
            same = torch.equal(r2["text_logits"], res["text_logits"]) and torch.equal(r2["audio_logits"], res["audio_logits"])
            print(f"kimi bf16: from_pretrained(torch_dtype=bf16) == from_pretrained(f32).to(bf16): {same}")
        model_mod.torch = torch

    f32, b16, tx = results["f32"], results["bf16"], results["text"]
    for name, r in (("audio->audio f32", f32), ("audio->audio bf16", b16), ("text->text f32", tx)):
        print(f"{name}:\n  audio_ids {r['audio_ids'].tolist()}\n  text_ids  {r['text_ids'].tolist()}\n"
              f"  continuous {r['cont'].int().tolist()}\n  greedy_text  {r['greedy_text']}\n"
              f"  greedy_audio {r['greedy_audio']}\n  min top1-top2 logit gap over the greedy steps {r['margins']}\n  returned (text, audio) {r['returned']}")
    for head in ("text_logits", "audio_logits"):
        d = (b16[head] - f32[head]).abs()
        scale = f32[head].abs().max().item()
        print(f"|bf16 - f32| {head}: max {d.max():.4g} mean {d.mean():.4g} (max |f32| {scale:.4g}); "
              f"argmax agreement {(b16[head].argmax(-1) == f32[head].argmax(-1)).float().mean():.3f}")
    qwen_case(args.out)
    for p in sorted(args.out.glob("*lm*.safetensors")):
        print(f"wrote {p.relative_to(REPO)} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
