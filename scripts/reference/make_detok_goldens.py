#!/usr/bin/env python3
"""Audio-detokenizer goldens (stages ``dit``, ``vocoder``, ``detok``) from the OFFICIAL Kimi-Audio code.

Writes into ``Tests/Fixtures/golden/`` (format: ``formats/GOLDEN.md``):

  dit_tiny_f32.safetensors          one flow-matching chunk from a fresh state: 12 codes, start position 0,
                                    no look-ahead, ode_steps 30 (StreamingSemanticFMWrapper.infer_chunk)
  vocoder_tiny_f32.safetensors      BigVGANWrapper.decode_mel of a 24-frame log-mel (N(-5, 2))
  detok_tiny_f32.safetensors        KimiAudio.detokenize_audio end to end (75 codes -> chunks 30, 30, 15;
                                    look-ahead 12, max_kv_cache_tokens 900, ode_step 30), every chunk recorded
  detok_tiny_window_f32.safetensors the same mechanism with small windows (40 codes, chunks of 4, look-ahead 2,
                                    max_kv_cache_tokens 16, max_pos_size 64, ode_step 4): KV-cache trimming
                                    and the position reset both happen

Official code (MoonshotAI/Kimi-Audio @ 2607d51, kept OUTSIDE the repository, see scripts/reference/README.md):
  * kimia_infer/models/detokenizer/__init__.py: ``get_audio_detokenizer`` (builds
    ``PrefixStreamingFlowMatchingDetokenizer.from_pretrained(..., max_prompt_chunk=10, use_cfg=False,
    look_ahead_tokens=12)``, max_kv_cache_tokens default 900) on the tiny release
    (Tests/Fixtures/tiny-release: audio_detokenizer/{config.yaml,model.pt}, vocoder/{config.json,model.pt}),
    ``detokenize_streaming`` (noise draw, look-ahead carry, pre_mel/pre_wav Hamming cross-fade, position reset);
  * semantic_fm_prefix_streaming.py ``StreamingSemanticFMWrapper`` (from_pretrained, infer_chunk,
    update_incremental_state), flow_matching/{model.py DiTPrefix, dit_block.py, ode_wrapper.py
    StreamingODEWrapperForPrefix, scheduler.py StreamingFlowMatchingScheduler.sample_by_neuralode};
  * torchdyn 1.0.6 ``NeuralODE(solver="euler", sensitivity="adjoint")`` (the real package, installed with
    ``pip install --no-deps torchdyn==1.0.6`` + its import-time deps, see requirements-nodeps.txt): for
    t_span = torch.linspace(0, 1, ode_steps) it makes ode_steps-1 Euler steps x += dt*f(t, x), t being
    accumulated as t + dt and dt = t_span[k+1] - t; traj[-1] is x at the last grid point;
  * bigvgan_wrapper.py ``BigVGANWrapper.from_pretrained`` / ``decode_mel``, vocoder/bigvgan.py ``BigVGAN``
    (weights loaded in weight-norm form, weight norm active, exactly as the official loader does);
  * kimia_infer/api/kimia.py ``KimiAudio.detokenize_audio`` (first chunk 30 tokens, then 30 at a time,
    is_final on the last, upsample_factor 4), called unmodified on an ``object.__new__`` instance whose only
    attribute is ``detokenizer``.  The window case uses a copy of that loop with chunk 4 (the official one
    hard-codes 30); the copy is checked against the official function on the 75-code case (bit-identical).

Patches (no official file is edited):
  1. the import stubs of make_tiny_release.py / make_lm_goldens.install_forward_patches (flash_attn, timm
     ``Mlp`` re-typed from timm 1.0 [fc1, act, drop1, norm=Identity, fc2, drop2], librosa, torch_npu, the
     BigVGAN CUDA loader, loguru, GLM speech_tokenizer alias) and ``torch.cuda.current_device -> "cpu"``;
  2. ``dit_block.flash_attn_varlen_func`` -> the same attention written out in float32: per head
     softmax(q·kᵀ/√head_dim)·v over ALL keys (non-causal; keys = cached prefix ++ this chunk), batch 1; it
     asserts cu_seqlens_q = [0, Nq], cu_seqlens_k = [0, Nk] and max_seqlen_* = Nq, Nk (the cache bookkeeping
     agrees with the real key count);
  3. ``bigvgan_wrapper.BigVGAN`` -> ``BigVGAN(h, use_cuda_kernel=False)`` (the loader asks for True = the fused
     CUDA anti-alias kernel, which needs nvcc; the torch Activation1d path is the same math with the same
     module/parameter names);
  4. detokenizer/__init__.py and semantic_fm_prefix_streaming.py see a ``torch`` whose ``bfloat16`` is
     float32 (both hard-code ``self.dtype = torch.bfloat16`` and cast the DiT / vocoder / noise / Hamming
     window to it): everything runs in float32 on the CPU and the fp32 checkpoints are used unrounded;
  5. in detokenizer/__init__.py that ``torch``'s ``randn`` records what it draws (the global generator,
     ``torch.manual_seed`` fixed before each run); the stored noise is replayed through the same hook to
     check that injecting it reproduces the outputs bit for bit;
  6. recording only: a forward hook on the DiT (integer timestep of every call), wrappers around
     ``infer_chunk`` / ``detokenize_streaming`` on the instances (per-chunk outputs and cache state).

Run (from the repo root)::

    /opt/refvenv/bin/python scripts/reference/make_detok_goldens.py
        [--kimi-src /tmp/ref-src/kimi --glm-src /tmp/ref-src/glm --out Tests/Fixtures/golden]

Deterministic (fixed seeds, CPU, one thread, deterministic algorithms): byte-identical on re-runs. After
writing, every file is re-read; the detok runs are replayed with the stored noise (bit-identical), and
``verify_recipe`` re-derives all stored outputs from the inputs with the steps documented in
formats/GOLDEN.md (only the official DiTPrefix forward and decode_mel are called; exact equality).
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import torch
from safetensors import safe_open

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_lm_goldens as mlg  # noqa: E402  (save_case, install_forward_patches, git_head)

REPO = HERE.parent.parent
TINY = REPO / "Tests" / "Fixtures" / "tiny-release"

CODE_SEED = 20240601     # codes of the DiT / detok cases (torch.Generator)
NOISE_SEED = 1234        # torch.manual_seed before every noise draw
MEL_SEED = 4321          # vocoder case input
DIT_CODES, DET_CODES, WIN_CODES = 12, 75, 40
VOC_FRAMES = 24
UPSAMPLE = 4

PATCHES = [
    "make_tiny_release/make_lm_goldens import stubs (flash_attn, timm Mlp re-typed from timm 1.0, librosa, "
    "torch_npu, BigVGAN CUDA loader, loguru, GLM speech_tokenizer) and torch.cuda.current_device -> 'cpu'",
    "dit_block.flash_attn_varlen_func -> float32 softmax(q k^T / sqrt(head_dim)) v per head over all keys "
    "(cached prefix ++ chunk, non-causal, batch 1; cu_seqlens checked against the key count)",
    "bigvgan_wrapper.BigVGAN -> BigVGAN(h, use_cuda_kernel=False) (torch Activation1d instead of the fused kernel)",
    "detokenizer/__init__.py and semantic_fm_prefix_streaming.py see torch.bfloat16 = float32 (f32 on CPU)",
    "detokenizer/__init__.py torch.randn recorded (torch.manual_seed fixed before each run)",
]


# --------------------------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------------------------
def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                           softmax_scale=None, causal=False, **kw):
    """flash_attn_varlen_func for one sequence, written out in float32 ([Nq,H,D], [Nk,H,D] -> [Nq,H,D])."""
    assert dropout_p == 0.0 and softmax_scale is None and not causal and not kw
    nq, h, d = q.shape
    nk = k.shape[0]
    assert k.shape == (nk, h, d) and v.shape == (nk, h, d)
    assert cu_seqlens_q.tolist() == [0, nq] and cu_seqlens_k.tolist() == [0, nk], \
        (cu_seqlens_q.tolist(), cu_seqlens_k.tolist(), nq, nk)
    assert int(max_seqlen_q) == nq and int(max_seqlen_k) == nk
    qh, kh, vh = (x.float().transpose(0, 1) for x in (q, k, v))        # [H, N, D]
    s = torch.matmul(qh, kh.transpose(-1, -2)) * (d ** -0.5)           # [H, Nq, Nk]
    o = torch.matmul(torch.softmax(s, dim=-1), vh)                     # [H, Nq, D]
    return o.transpose(0, 1).contiguous().to(q.dtype)


class _TorchF32(types.ModuleType):
    """``torch`` as seen by the detokenizer modules: bfloat16 is float32; randn may be hooked."""

    def __getattr__(self, name):
        return getattr(torch, name)


class NoiseTape:
    """torch.randn for detokenizer/__init__.py: records draws, or replays stored ones."""

    def __init__(self):
        self.drawn, self.replay = [], None

    def __call__(self, *shape, **kw):
        if self.replay is not None:
            x = self.replay.pop(0)
            assert tuple(x.shape) == tuple(shape), (x.shape, shape)
            return x.clone()
        x = torch.randn(*shape, **kw)
        self.drawn.append(x.clone())
        return x


def install(kimi_src: Path, glm_src: Path):
    mlg.install_forward_patches(kimi_src, glm_src)
    import kimia_infer.models.detokenizer as detok_mod
    import kimia_infer.models.detokenizer.bigvgan_wrapper as bw_mod
    import kimia_infer.models.detokenizer.flow_matching.dit_block as dit_block
    import kimia_infer.models.detokenizer.semantic_fm_prefix_streaming as sfm_mod
    from kimia_infer.models.detokenizer.vocoder.bigvgan import BigVGAN
    import torchdyn
    assert torchdyn.__version__ == "1.0.6", torchdyn.__version__
    import kimia_infer.models.detokenizer.flow_matching.scheduler as sched
    assert sched.NEURALODE_INSTALLED
    dit_block.flash_attn_varlen_func = flash_attn_varlen_func
    bw_mod.BigVGAN = lambda h, use_cuda_kernel=False: BigVGAN(h, use_cuda_kernel=False)
    tape = NoiseTape()
    for mod in (detok_mod, sfm_mod):
        t = _TorchF32("torch")
        t.bfloat16 = torch.float32
        if mod is detok_mod:
            t.randn = tape
        mod.torch = t
    return detok_mod, tape


def load_detokenizer(detok_mod):
    """get_audio_detokenizer on the tiny release; checks that every weight is the checkpoint's fp32 value."""
    det = detok_mod.get_audio_detokenizer(str(TINY))
    fm, voc = det.semantic_fm, det.vocoder
    assert fm.dtype == torch.float32 and det.dtype == torch.float32
    sd = torch.load(TINY / "audio_detokenizer" / "model.pt", map_location="cpu", weights_only=True)["state_dict"]
    ref = {k.replace("speech_model.", ""): v for k, v in sd.items() if "speech_model" in k}
    got = fm.speech_model.state_dict()
    assert sorted(got) == sorted(ref)
    for k, v in got.items():
        assert v.dtype == torch.float32 and torch.equal(v, ref[k]), k
    gsd = torch.load(TINY / "vocoder" / "model.pt", map_location="cpu", weights_only=True)["generator"]
    vsd = voc.vocoder.state_dict()
    assert sorted(vsd) == sorted(gsd) and any(k.endswith("weight_g") for k in vsd)
    for k, v in vsd.items():
        assert v.dtype == torch.float32 and torch.equal(v, gsd[k]), k
    assert not voc.vocoder.h["use_cuda_kernel"]
    assert type(voc.vocoder.activation_post).__module__.endswith("alias_free_activation.torch.act")
    assert fm.max_kv_cache_tokens == 900 and fm.max_prompt_chunk == 10 and det.look_ahead_tokens == 12
    assert det.max_pos_size == 4096 and det.frame_size == 480
    return det


class Recorder:
    """DiT forward hook (integer timesteps, outputs) + per-chunk wrappers on the instances."""

    def __init__(self, det):
        self.det, self.calls, self.chunks, self.mels = det, [], [], []
        self.keep_outputs = False
        det.semantic_fm.speech_model.register_forward_hook(self._hook, with_kwargs=True)
        fm = det.semantic_fm
        orig_infer = fm.infer_chunk
        orig_stream = det.detokenize_streaming

        def infer_chunk(*a, **kw):
            out = orig_infer(*a, **kw)
            self.mels.append(out.detach().clone())
            return out

        def detokenize_streaming(semantic_token, **kw):
            n_calls = len(self.calls)
            info = {"codes": int(semantic_token.shape[1]), "start_position": fm.start_position_id,
                    "kv_prefix": fm.ode_wrapper.kv_cache_tokens, "is_final": bool(kw.get("is_final", False))}
            wav = orig_stream(semantic_token, **kw)
            info.update(wav=wav.detach().clone(), calls=self.calls[n_calls:],
                        start_position_after=fm.start_position_id, kv_after=fm.ode_wrapper.kv_cache_tokens)
            self.chunks.append(info)
            return wav

        fm.infer_chunk = infer_chunk
        det.detokenize_streaming = detokenize_streaming

    def _hook(self, module, args, kwargs, output):
        t = kwargs["t"]
        assert t.dtype == torch.long and t.numel() == 1
        self.calls.append({"t": int(t.item()), "frames": int(kwargs["x"].shape[1]),
                           "positions": kwargs["position_ids"][0].tolist(),
                           "out": output.detach().clone() if self.keep_outputs else None})

    def reset(self):
        self.calls, self.chunks, self.mels = [], [], []


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------
def codes(n, salt):
    g = torch.Generator().manual_seed(CODE_SEED + salt)
    return torch.randint(0, 64, (n,), generator=g, dtype=torch.int64)


def t_span_values(steps):
    return [float(x) for x in torch.linspace(0, 1, steps).tolist()]


def dit_case(det, rec, src):
    fm = det.semantic_fm
    c = codes(DIT_CODES, 0)
    cond = c.repeat_interleave(UPSAMPLE)                    # as detokenize_streaming does (upsample_factor 4)
    noise = torch.randn(cond.shape[0], 80, generator=torch.Generator().manual_seed(NOISE_SEED))
    fm.clear_all_states()
    rec.reset()
    rec.keep_outputs = True
    mel = fm.infer_chunk(xt_chunk=noise, semantic_tokens_chunk=cond, start_position_id=0, ode_steps=30,
                         look_ahead_tokens=0, cache=None)
    calls = rec.calls
    rec.keep_outputs = False
    steps = [k["t"] for k in calls]
    assert len(calls) == 29 and all(k["positions"] == list(range(cond.numel())) for k in calls)
    # v(x = noise, tau = 0) from a fresh state: the ODE wrapper called once by hand
    fm.clear_all_states()
    fm.ode_wrapper.set_conditions(x_mask=torch.zeros(1, cond.numel()).bool(), x_cond=cond[None],
                                  start_position_id=0, cache=fm.condition_cache)
    with torch.inference_mode():
        v0 = fm.ode_wrapper(torch.tensor(0.0), noise[None])[0]
    assert torch.equal(v0, calls[0]["out"][0])             # = the ODE's first evaluation
    fm.clear_all_states()
    meta = {"kaf.golden": "1", "stage": "dit", "dtype": "f32", "model": "Tests/Fixtures/tiny-release",
            "ode_steps": "30", "upsample_factor": str(UPSAMPLE), "start_position": "0", "look_ahead_tokens": "0",
            "timesteps": steps, "t_span": t_span_values(30), "normalize_mel": json.dumps(fm.normalize_mel),
            "mel_mean": repr(fm.mel_mean), "mel_std": repr(fm.mel_std),
            "source": src + "; StreamingSemanticFMWrapper.infer_chunk(xt_chunk=in.noise, semantic_tokens_chunk="
                            "in.codes.repeat_interleave(4), start_position_id=0, ode_steps=30, look_ahead_tokens=0) "
                            "from clear_all_states(); out.velocity0 = ode_wrapper(t=0, in.noise) after set_conditions "
                            "from a fresh state (= the ODE's first net output)"}
    t = {"in.codes": c, "in.noise": noise, "out.mel": mel.float(), "out.velocity0": v0.float()}
    return t, meta


def vocoder_case(det, src):
    g = torch.Generator().manual_seed(MEL_SEED)
    mel = -5.0 + 2.0 * torch.randn(VOC_FRAMES, 80, generator=g)
    with torch.inference_mode():
        wav = det.vocoder.decode_mel(mel)                  # [1, 480 F]
    assert wav.shape == (1, 480 * VOC_FRAMES)
    meta = {"kaf.golden": "1", "stage": "vocoder", "dtype": "f32", "model": "Tests/Fixtures/tiny-release",
            "hop": "480", "sampling_rate": "24000",
            "source": src + "; BigVGANWrapper.from_pretrained (weight-norm checkpoint, weight norm active) "
                            ".decode_mel(in.mel); in.mel = -5 + 2*N(0,1) (torch.Generator seed %d)" % MEL_SEED}
    return {"in.mel": mel, "out.wav": wav[0].float()}, meta


def official_detokenize_audio(det, tokens):
    """kimia.py KimiAudio.detokenize_audio, unmodified, on an instance that only has the detokenizer."""
    from kimia_infer.api.kimia import KimiAudio
    ka = object.__new__(KimiAudio)
    ka.detokenizer = det
    return ka.detokenize_audio(tokens[None])


def chunked_detokenize(det, tokens, chunk, first, ode_step):
    """Copy of KimiAudio.detokenize_audio with other chunk sizes and ode_step (kimia.py:284-314)."""
    det.clear_states()
    out = []
    t = tokens[None].long()
    n = t.size(1)
    out.append(det.detokenize_streaming(t[:, :first], is_final=(n <= first), upsample_factor=UPSAMPLE,
                                        ode_step=ode_step))
    if n > first:
        res = t[:, first:]
        for i in range(0, res.size(1), chunk):
            out.append(det.detokenize_streaming(res[:, i:i + chunk], upsample_factor=UPSAMPLE,
                                                is_final=(i + chunk >= res.size(1)), ode_step=ode_step))
    return torch.cat(out, dim=-1)


def run_detok(det, rec, tape, fn, replay=None):
    rec.reset()
    tape.drawn, tape.replay = [], (None if replay is None else [x.clone() for x in replay])
    torch.manual_seed(NOISE_SEED)
    wav = fn()
    assert tape.replay in (None, [])
    noise = tape.drawn if replay is None else replay
    tape.replay = None
    return wav, noise, rec.chunks, rec.mels


def detok_tensors_meta(c, wav, noise, chunks, mels, params, src, how):
    assert len(noise) == len(chunks) == len(mels)
    assert torch.equal(torch.cat([ch["wav"] for ch in chunks], dim=-1), wav)
    t = {"in.codes": c, "out.wav": wav[0].float()}
    for i, ch in enumerate(chunks):
        t[f"in.noise.{i:03d}"] = noise[i].float()
        t[f"out.wav.{i:03d}"] = ch["wav"][0].float()
        t[f"out.mel.{i:03d}"] = mels[i].float()
    odes = [[k["t"] for k in ch["calls"]] for ch in chunks]
    meta = {"kaf.golden": "1", "stage": "detok", "dtype": "f32", "model": "Tests/Fixtures/tiny-release",
            "chunks": str(len(chunks)),
            "chunk_codes": [ch["codes"] for ch in chunks],
            "chunk_is_final": [ch["is_final"] for ch in chunks],
            "chunk_frames_in": [int(x.shape[0]) for x in noise],
            "chunk_frames_out": [int(m.shape[0]) for m in mels],
            "chunk_samples": [int(ch["wav"].shape[1]) for ch in chunks],
            "chunk_start_positions": [ch["start_position"] for ch in chunks],
            "chunk_kv_prefix": [ch["kv_prefix"] for ch in chunks],
            "start_positions": [ch["start_position_after"] for ch in chunks],
            "kv_cache_tokens": [ch["kv_after"] for ch in chunks],
            "chunk_timesteps": odes,
            "noise_seed": str(NOISE_SEED),
            "source": src + "; " + how}
    for k, v in params.items():
        meta[k] = str(v)
    return t, meta


def check_saved(path, expect_tensors, expect_meta):
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        g = {k: f.get_tensor(k) for k in f.keys()}
    assert sorted(g) == sorted(expect_tensors)
    for k in g:
        assert torch.equal(g[k], expect_tensors[k]), k
    assert meta == {k: v if isinstance(v, str) else json.dumps(v) for k, v in expect_meta.items()}
    return g


# --------------------------------------------------------------------------------------------
# The algorithm of formats/GOLDEN.md (stages dit / detok) written out, checked against the files
# --------------------------------------------------------------------------------------------
def _net_call(net, x, cond, t, start, prev):
    """One DiTPrefix call at positions start.., attending to prev (per-block (K, V)) ++ its own K/V."""
    n = x.shape[1]
    nk = n + (0 if prev is None else prev[0][0].shape[1])
    inc = {} if prev is None else {i: {"attn_kvcache": {"prev_k": k, "prev_v": v}} for i, (k, v) in enumerate(prev)}
    out = net(x=x, condition=cond, t=torch.zeros(1, dtype=torch.long) + (t * 1000).long(),
              position_ids=torch.arange(start, start + n)[None],
              cu_seqlens=torch.tensor([0, n], dtype=torch.int32), cu_maxlen=torch.tensor(n),
              cu_seqlens_k=torch.tensor([0, nk], dtype=torch.int32), cu_maxlen_k=torch.tensor(nk),
              incremental_state=inc, nopadding=True, mask=None, seq_len=None)
    return out, [(inc[i]["attn_kvcache"]["cur_k"], inc[i]["attn_kvcache"]["cur_v"]) for i in range(len(net.blocks))]


def _euler(net, x, cond, start, prev, steps):
    ts = torch.linspace(0, 1, steps)
    t, cur, taus = ts[0], None, []
    for j in range(steps - 1):
        dt = ts[j + 1] - t
        taus.append(int((t * 1000).long()))
        v, cur = _net_call(net, x, cond, t, start, prev)
        x, t = x + dt * v, t + dt
    return x, cur, taus


def _load(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


@torch.inference_mode()
def verify_recipe(det, out_dir):
    """Re-derive the stored outputs from the inputs with the steps documented in formats/GOLDEN.md, calling
    only the official DiTPrefix forward and BigVGANWrapper.decode_mel (exact equality)."""
    fm, net = det.semantic_fm, det.semantic_fm.speech_model
    std, mean = fm.mel_std, fm.mel_mean
    g, meta = _load(out_dir / "dit_tiny_f32.safetensors")
    cond = g["in.codes"].repeat_interleave(UPSAMPLE)[None]
    x, _, taus = _euler(net, g["in.noise"][None], cond, 0, None, int(meta["ode_steps"]))
    assert taus == json.loads(meta["timesteps"])
    assert torch.equal(x[0] * std + mean, g["out.mel"])
    assert torch.equal(_net_call(net, g["in.noise"][None], cond, torch.tensor(0.0), 0, None)[0][0], g["out.velocity0"])
    for name in ("detok_tiny_f32", "detok_tiny_window_f32"):
        g, meta = _load(out_dir / f"{name}.safetensors")
        u, la_tok = int(meta["upsample_factor"]), int(meta["look_ahead_tokens"])
        max_kv, max_pos, steps = int(meta["max_kv_cache_tokens"]), int(meta["max_pos_size"]), int(meta["ode_steps"])
        hop = int(meta["frame_size"])
        prev = carry = pre_mel = pre_wav = None
        start = off = 0
        for k, nc in enumerate(json.loads(meta["chunk_codes"])):
            final = json.loads(meta["chunk_is_final"])[k]
            s = g["in.codes"][off: off + nc].repeat_interleave(u)
            off += nc
            if la_tok and carry is not None:
                s = torch.cat([carry, s])
            la = 0 if final else la_tok * u
            x, cur, _ = _euler(net, g[f"in.noise.{k:03d}"][None], s[None], start, prev, steps)
            L = s.numel() - la
            mel_n = x[:, :L]
            if la > 0:
                carry = s[-la:]
                _, cur = _net_call(net, mel_n, s[None, :L], torch.Tensor([0.999]), start, prev)
            mel = mel_n[0] * std + mean
            assert torch.equal(mel, g[f"out.mel.{k:03d}"]), (name, k)
            start += L
            prev = [(a[:, -max_kv:], b[:, -max_kv:]) if a.shape[1] > max_kv else (a, b) for a, b in cur]
            if pre_mel is None:
                w = det.vocoder.decode_mel(mel)[0]
                if final:
                    ret = w
                else:
                    ret, pre_wav, pre_mel = w[: hop * L // 2], w[-(hop * L // 2):], mel[(-L) // 2:]
            else:
                w = det.vocoder.decode_mel(torch.cat([pre_mel, mel]))[0]
                if final:
                    ret = w
                else:
                    p = pre_wav.numel()
                    gl = 2 * p if w.numel() > 2 * p else w.numel() // 2
                    h, win = gl // 2, torch.hamming_window(gl)
                    ret = w[:gl].clone()
                    ret[:h] = pre_wav[:h] * win[gl - h:] + w[:h] * win[:h]
                    r = w.numel() - gl
                    pre_wav, pre_mel = w[gl:], mel[-(r // hop):]
            assert torch.equal(ret, g[f"out.wav.{k:03d}"]), (name, k)
            if final:
                break
            if start + 2 * L > max_pos:
                start, prev = 0, None
            assert start == json.loads(meta["start_positions"])[k]
            assert (0 if prev is None else prev[0][0].shape[1]) == json.loads(meta["kv_cache_tokens"])[k]
    return "recipe check: formats/GOLDEN.md steps reproduce dit / both detok files exactly"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kimi-src", type=Path, default=Path("/tmp/ref-src/kimi"))
    ap.add_argument("--glm-src", type=Path, default=Path("/tmp/ref-src/glm"))
    ap.add_argument("--out", type=Path, default=REPO / "Tests" / "Fixtures" / "golden")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    detok_mod, tape = install(args.kimi_src.resolve(), args.glm_src.resolve())
    rev = mlg.git_head(args.kimi_src, "kimi")[:7]
    src = (f"MoonshotAI/Kimi-Audio@{rev} kimia_infer/models/detokenizer (get_audio_detokenizer on "
           f"Tests/Fixtures/tiny-release, torchdyn 1.0.6 NeuralODE euler), float32 on CPU; patches: "
           + "; ".join(PATCHES))
    det = load_detokenizer(detok_mod)
    rec = Recorder(det)
    args.out.mkdir(parents=True, exist_ok=True)
    report = []

    # ---- 1. dit ---------------------------------------------------------------------------
    t, meta = dit_case(det, rec, src)
    path = args.out / "dit_tiny_f32.safetensors"
    mlg.save_case(path, t, meta)
    check_saved(path, t, meta)
    report.append(f"{path.name}: codes {tuple(t['in.codes'].shape)}, mel {tuple(t['out.mel'].shape)}, "
                  f"timesteps {meta['timesteps'][:4]}...{meta['timesteps'][-2:]} ({len(meta['timesteps'])} calls), "
                  f"|mel| max {t['out.mel'].abs().max():.4f}, |v0| max {t['out.velocity0'].abs().max():.4f}")

    # ---- 2. vocoder -----------------------------------------------------------------------
    t, meta = vocoder_case(det, src)
    path = args.out / "vocoder_tiny_f32.safetensors"
    mlg.save_case(path, t, meta)
    check_saved(path, t, meta)
    report.append(f"{path.name}: mel {tuple(t['in.mel'].shape)} -> wav {tuple(t['out.wav'].shape)}, "
                  f"max |wav| {t['out.wav'].abs().max():.5f}")

    # ---- 3. detok (official KimiAudio.detokenize_audio) ------------------------------------
    c = codes(DET_CODES, 1)
    wav, noise, chunks, mels = run_detok(det, rec, tape, lambda: official_detokenize_audio(det, c))
    # the loop copy used for the window case gives the same bits on this case
    wav2, _, _, _ = run_detok(det, rec, tape, lambda: chunked_detokenize(det, c, 30, 30, 30))
    assert torch.equal(wav, wav2)
    # replaying the stored noise reproduces everything (the Swift side injects in.noise.NNN)
    wav3, _, chunks3, mels3 = run_detok(det, rec, tape, lambda: official_detokenize_audio(det, c), replay=noise)
    assert torch.equal(wav, wav3) and all(torch.equal(a, b) for a, b in zip(mels, mels3))
    params = {"chunk_tokens": 30, "first_chunk_tokens": 30, "look_ahead_tokens": det.look_ahead_tokens,
              "upsample_factor": UPSAMPLE, "ode_steps": 30, "max_kv_cache_tokens": det.semantic_fm.max_kv_cache_tokens,
              "max_pos_size": det.max_pos_size, "frame_size": det.frame_size}
    t, meta = detok_tensors_meta(c, wav, noise, chunks, mels, params, src,
                                 "kimia.py KimiAudio.detokenize_audio(in.codes[None]) unmodified (first chunk 30, "
                                 "then 30, is_final on the last, upsample_factor 4, ode_step 30 default)")
    path = args.out / "detok_tiny_f32.safetensors"
    mlg.save_case(path, t, meta)
    check_saved(path, t, meta)
    report.append(detok_report(path, t, meta))

    # ---- 4. detok with small windows -------------------------------------------------------
    det.look_ahead_tokens = 2
    det.max_pos_size = 64
    det.semantic_fm.max_kv_cache_tokens = 16
    c = codes(WIN_CODES, 2)
    run = lambda: chunked_detokenize(det, c, 4, 4, 4)  # noqa: E731
    wav, noise, chunks, mels = run_detok(det, rec, tape, run)
    wav3, _, _, mels3 = run_detok(det, rec, tape, run, replay=noise)
    assert torch.equal(wav, wav3) and all(torch.equal(a, b) for a, b in zip(mels, mels3))
    params = {"chunk_tokens": 4, "first_chunk_tokens": 4, "look_ahead_tokens": 2, "upsample_factor": UPSAMPLE,
              "ode_steps": 4, "max_kv_cache_tokens": 16, "max_pos_size": 64, "frame_size": det.frame_size}
    t, meta = detok_tensors_meta(c, wav, noise, chunks, mels, params, src,
                                 "copy of kimia.py detokenize_audio's loop with chunk 4 / first chunk 4 and "
                                 "detokenize_streaming(..., ode_step=4); after get_audio_detokenizer: "
                                 "look_ahead_tokens = 2, max_pos_size = 64, semantic_fm.max_kv_cache_tokens = 16")
    assert max(meta["kv_cache_tokens"]) <= 16 and any(k > 16 for k in
                                                      [p + f for p, f in zip(meta["chunk_kv_prefix"],
                                                                             meta["chunk_frames_out"])])
    resets = [i for i, ch in enumerate(chunks) if not ch["is_final"] and ch["start_position_after"] == 0]
    assert resets, "no position reset"
    path = args.out / "detok_tiny_window_f32.safetensors"
    mlg.save_case(path, t, meta)
    check_saved(path, t, meta)
    report.append(detok_report(path, t, meta) + f"\n    position reset after chunks {resets}")

    report.append(verify_recipe(det, args.out))
    print("\n".join(report))


def detok_report(path, t, meta):
    size = path.stat().st_size
    return (f"{path.name} ({size} bytes): codes {t['in.codes'].numel()}, chunks {meta['chunk_codes']}\n"
            f"    frames in {meta['chunk_frames_in']}\n    frames out {meta['chunk_frames_out']}\n"
            f"    samples {meta['chunk_samples']} (total {t['out.wav'].numel()})\n"
            f"    start pos before {meta['chunk_start_positions']}, after {meta['start_positions']}\n"
            f"    kv prefix before {meta['chunk_kv_prefix']}, after {meta['kv_cache_tokens']}\n"
            f"    timesteps chunk 0 {meta['chunk_timesteps'][0]}\n"
            f"    max |wav| {t['out.wav'].abs().max():.5f}")


if __name__ == "__main__":
    main()
