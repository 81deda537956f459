#!/usr/bin/env python3
"""SNR of three group quantizers on the real checkpoints made by
prepare_qwen.py / prepare_whisper_tiny.py (numpy only, float32 arithmetic like
converters/QuantizerFast.swift, sums in float64).

  q4_0   ggml Q4_0: m = signed value of largest |x| in the group, d = m/-8,
         q = clamp(trunc(x*(1/d) + 8.5), 0, 15), x^ = f16(d)*(q-8)
  q4s    the converter's search: for f in 1, .95, .9, .85: d0 = m/-8*f,
         q = clamp(rint(x/d0), -8, 7), d1 = sum(xq)/sum(q^2) (d0 if sum(q^2) = 0),
         d = f16(d1), q = clamp(rint(x/d), -8, 7); keep the lowest sum (x-dq)^2
  q8     d = max|x|/127, q = clamp(rint(x/d), -127, 127), x^ = f16(d)*q
SNR dB = 10 log10(sum x^2 / sum (x-x^)^2) over all 2-D linear weights whose
last dim is a multiple of 128, for groups of 32, 64, 128 along the last axis.

  /opt/refvenv/bin/python scripts/real/measure_snr.py [--out DIR] [--models qwen,whisper]

Qwen caveat: its weights were already Q4_K / Q5_0 / Q6_K / Q8_0 in the GGUF, so
they sit on a coarse grid; SNRs on them are biased (usually optimistic for a
grid that lines up, e.g. Q5_0/Q4_K at group 32) and are shown per source type.
"""

import argparse
import json
import os
import re
import time

import numpy as np

GROUPS = (32, 64, 128)
F4 = np.float32


def f16(a):
    return a.astype(np.float16).astype(np.float32)


def signed_max(x):
    """Per row of x (groups), the signed value of the first element of largest |x|."""
    i = np.argmax(np.abs(x), axis=1)
    return x[np.arange(x.shape[0]), i]


def recip(d):
    out = np.zeros_like(d)
    nz = d != 0
    out[nz] = F4(1) / d[nz]
    return out


def q4_0(x):
    m = signed_max(x)
    d = m / F4(-8)
    idv = recip(d)[:, None]
    q = np.clip(np.trunc(x * idv + F4(8.5)), 0, 15)
    xh = f16(d)[:, None] * (q - F4(8))
    return xh


def q4_search(x):
    m = signed_max(x)
    best_err = np.full(x.shape[0], np.inf, dtype=np.float64)
    best = np.zeros_like(x)
    for f in (1.0,):  # ggml's d = m/-8, refined once by least squares (converters/QuantizerFast.swift)
        d0 = m / F4(-8) * F4(f)
        q0 = np.clip(np.rint(x * recip(d0)[:, None]), -8, 7)
        den = (q0 * q0).sum(axis=1, dtype=np.float32)
        num = (x * q0).sum(axis=1, dtype=np.float32)
        d1 = np.where(den > 0, num / np.where(den > 0, den, 1), d0).astype(np.float32)
        d = f16(d1)
        q1 = np.clip(np.rint(x * recip(d)[:, None]), -8, 7)
        xh = q1 * d[:, None]
        err = ((x - xh).astype(np.float64) ** 2).sum(axis=1)
        take = err < best_err
        best_err = np.where(take, err, best_err)
        best[take] = xh[take]
    return best


def q8(x):
    amax = np.abs(x).max(axis=1)
    d = amax / F4(127)
    q = np.clip(np.rint(x * recip(d)[:, None]), -127, 127)
    return q * f16(d)[:, None]


METHODS = (("q4_0", q4_0), ("q4s", q4_search), ("q8", q8))


def accumulate(w, acc, chunk=1 << 22):
    """w: 2-D float32. acc[(method, G)] = [signal, noise]."""
    flat = w.reshape(-1)
    for G in GROUPS:
        step = (chunk // G) * G
        for s in range(0, flat.size, step):
            x = flat[s:s + step].reshape(-1, G)
            sig = float((x.astype(np.float64) ** 2).sum())
            for name, fn in METHODS:
                e = x - fn(x)
                a = acc.setdefault((name, G), [0.0, 0.0])
                a[0] += sig
                a[1] += float((e.astype(np.float64) ** 2).sum())


def snr(a):
    return 10 * np.log10(a[0] / a[1]) if a[1] > 0 else float("inf")


def load(path):
    from safetensors.numpy import load_file
    import torch
    from safetensors.torch import load_file as tload
    try:
        return {k: v.astype(np.float32) for k, v in load_file(path).items()}
    except TypeError:  # bf16 is not a numpy dtype
        return {k: v.float().numpy() for k, v in tload(path).items()}


def qwen_sets(folder):
    """Group Qwen linear weights by the GGUF source type (if the GGUF is in the cache)."""
    w = load(os.path.join(folder, "model.safetensors"))
    src = {}
    gguf_path = os.path.join(os.path.dirname(folder), "_cache", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
    if os.path.isfile(gguf_path):
        import importlib.util, sys
        sys.path.insert(0, os.path.dirname(__file__))
        from prepare_qwen import hf_name
        from gguf import GGUFReader
        for t in GGUFReader(gguf_path).tensors:
            src[hf_name(t.name)] = t.tensor_type.name
    sets = {}
    for k, v in w.items():
        if v.ndim != 2 or v.shape[-1] % 128:
            continue
        if re.search(r"\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$", k):
            sets.setdefault("qwen layers (all linears)", []).append(v)
            sets.setdefault(f"qwen layers from {src.get(k, '?')}", []).append(v)
        elif k == "lm_head.weight":
            sets.setdefault(f"qwen lm_head (from {src.get(k, '?')})", []).append(v)
    return sets


def whisper_sets(folder):
    w = load(os.path.join(folder, "model.safetensors"))
    sets = {}
    for k, v in w.items():
        if v.ndim == 2 and v.shape[-1] % 128 == 0 and re.search(r"(proj|fc1|fc2)\.weight$", k):
            sets.setdefault("whisper-tiny.en linears (f16)", []).append(v)
    return sets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("KIMI_REAL_DIR", "/tmp/kimi-real"))
    ap.add_argument("--models", default="whisper,qwen")
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args()
    rows = []
    for model in args.models.split(","):
        t0 = time.time()
        if model == "qwen":
            sets = qwen_sets(os.path.join(args.out, "qwen2.5-coder-0.5b-instruct"))
        else:
            sets = whisper_sets(os.path.join(args.out, "whisper-tiny.en"))
        for name, ws in sets.items():
            acc = {}
            for w in ws:
                accumulate(w, acc)
            n = sum(w.size for w in ws)
            rows.append((name, len(ws), n, {f"{m}/g{G}": snr(acc[(m, G)]) for m, _ in METHODS for G in GROUPS}))
            r = rows[-1][3]
            print(f"{name}: {len(ws)} tensors, {n / 1e6:.1f}M weights  " + "  ".join(f"{k} {v:.2f}" for k, v in r.items()),
                  flush=True)
        print(f"({model}: {time.time() - t0:.0f}s)", flush=True)
    hdr = "| weights | tensors | M weights | " + " | ".join(f"{m} g{G}" for m, _ in METHODS for G in GROUPS) + \
          " | q4s−q4_0 g32/64/128 |"
    print()
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    for name, nt, n, r in rows:
        gain = "/".join(f"{r[f'q4s/g{G}'] - r[f'q4_0/g{G}']:+.2f}" for G in GROUPS)
        print(f"| {name} | {nt} | {n / 1e6:.1f} | " + " | ".join(f"{v:.2f}" for v in r.values()) + f" | {gain} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"set": a, "tensors": b, "weights": c, "snr_db": d} for a, b, c, d in rows], f, indent=1)


if __name__ == "__main__":
    main()
