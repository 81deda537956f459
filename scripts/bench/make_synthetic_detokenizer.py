#!/usr/bin/env python3
"""Write the audio detokenizer of Kimi-Audio-7B-Instruct at FULL SIZE with random weights, for speed
benchmarks: OUT/audio_detokenizer/{config.yaml, model.pt} and OUT/vocoder/{config.json, model.pt}.

    make_synthetic_detokenizer.py OUT_DIR [--dtype bf16|f32]

OUT_DIR is usually a synthetic release made by make_synthetic_release.py (then convert with
``--components dit,vocoder`` or together with the LLM). Shapes and names are the release's
(docs/ARCHITECTURE.md §1.9, §1.10, §5.5, §5.6): the DiT (hidden 2304, 16 blocks, 18 heads, FFN 9216,
80 mels, 16385 semantic rows) as ``state_dict["speech_model.*"]``; BigVGAN (C0 2048, rates
[5,2,2,2,2,3,2], kernels [9,4,4,4,4,5,4], AMPBlock1 with kernels [3,5,7,11] and dilations [1,3,5],
SnakeBeta log-scale, no final bias) as ``{"generator": ...}`` in weight-norm form (weight_g,
weight_v; 1206 keys). The release stores both in f32 (6.3 GB for the DiT); ``--dtype bf16`` (the
default) halves the disk: the converter stores the same types either way (q8/f16 by its policy),
so the runtime's speed does not depend on it. Weights: N(0, 0.02) (adaLN and linears), so
activations stay finite; the anti-alias filters are the Kaiser-sinc the official code computes.
Needs torch (e.g. /opt/refvenv/bin/python).
"""
import argparse
import json
import math
from pathlib import Path

import torch

H, DEPTH, HEADS, FFN, MELS, SEM = 2304, 16, 18, 9216, 80, 16384
C0, RATES, UKS = 2048, [5, 2, 2, 2, 2, 3, 2], [9, 4, 4, 4, 4, 5, 4]
RKS, DILS = [3, 5, 7, 11], [[1, 3, 5]] * 4


def kaiser_sinc(cutoff=0.25, half_width=0.3, k=12):
    """alias_free_activation/torch/filter.py kaiser_sinc_filter1d for ratio 2 (even kernel)."""
    delta_f = 4 * half_width
    a = 2.285 * (k // 2 - 1) * math.pi * delta_f + 7.95
    beta = 0.1102 * (a - 8.7) if a > 50 else (0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21) if a >= 21 else 0.0)
    window = torch.kaiser_window(k, beta=beta, periodic=False)
    time = torch.arange(-k // 2, k // 2) + 0.5
    f = 2 * cutoff * window * torch.special.sinc(2 * cutoff * time)
    return (f / f.sum()).view(1, 1, k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--dtype", choices=["bf16", "f32"], default="bf16")
    a = ap.parse_args()
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    g = torch.Generator().manual_seed(0)

    def rnd(*shape, s=0.02):
        return (torch.randn(*shape, generator=g) * s).to(dt)

    d = a.out / "audio_detokenizer"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(
        "model:\n  dit:\n"
        f"    hidden_size: {H}\n    depth: {DEPTH}\n    num_heads: {HEADS}\n    mlp_ratio: 4\n"
        f"    input_size: {MELS}\n    semantic_vocab_size: {SEM}\n    ffn_type: vanilla_mlp\n    use_rope: true\n"
        "    rope_params:\n      max_position_embeddings: 4096\n      rope_base: 10000\n      rope_interpolation_factor: 1\n"
        "    position_embedding_type: skip\n    max_seq_len: 4096\n"
        "normalize_mel: true\nmel_mean: -4.479605\nmel_std: 3.4584913\n")
    sd = {}

    def lin(name, out, inp):
        sd[f"speech_model.{name}.weight"] = rnd(out, inp)
        sd[f"speech_model.{name}.bias"] = rnd(out)

    lin("t_embedder.mlp.0", H, 256)
    lin("t_embedder.mlp.2", H, H)
    sd["speech_model.semantic_token_embedding.weight"] = rnd(SEM + 1, H, s=1.0)
    lin("input_linear", H, MELS)
    for i in range(DEPTH):
        b = f"blocks.{i}."
        lin(b + "attn.qkv", 3 * H, H)
        lin(b + "attn.proj", H, H)
        lin(b + "mlp.fc1", FFN, H)
        lin(b + "mlp.fc2", H, FFN)
        lin(b + "adaLN_modulation.1", 6 * H, H)
    lin("final_layer.adaLN_modulation.1", 2 * H, H)
    lin("final_layer.linear", MELS, H)
    torch.save({"state_dict": sd}, d / "model.pt")
    print(f"{d}/model.pt: {sum(t.numel() for t in sd.values()):,} parameters ({a.dtype})", flush=True)
    del sd

    v = a.out / "vocoder"
    v.mkdir(parents=True, exist_ok=True)
    (v / "config.json").write_text(json.dumps({
        "num_mels": MELS, "upsample_rates": RATES, "upsample_kernel_sizes": UKS, "upsample_initial_channel": C0,
        "resblock": "1", "resblock_kernel_sizes": RKS, "resblock_dilation_sizes": DILS, "activation": "snakebeta",
        "snake_logscale": True, "use_bias_at_final": False, "use_tanh_at_final": False, "sampling_rate": 24000,
        "hop_size": 480, "n_fft": 1920, "win_size": 1920, "fmin": 0, "fmax": None}, indent=2) + "\n")
    gen = {}
    filt = kaiser_sinc().to(dt)

    def conv(name, out, inp, k, bias=True, g_dim=None):
        if bias:
            gen[name + ".bias"] = rnd(g_dim if g_dim else out)
        gen[name + ".weight_g"] = (torch.ones(out, 1, 1) * 0.3).to(dt)
        gen[name + ".weight_v"] = rnd(out, inp, k, s=1.0)

    def act(name, ch):
        gen[name + ".act.alpha"] = rnd(ch, s=0.1)
        gen[name + ".act.beta"] = rnd(ch, s=0.1)
        gen[name + ".upsample.filter"] = filt.clone()
        gen[name + ".downsample.lowpass.filter"] = filt.clone()

    conv("conv_pre", C0, MELS, 7)
    for i, (u, k) in enumerate(zip(RATES, UKS)):
        conv(f"ups.{i}.0", C0 >> i, C0 >> (i + 1), k, g_dim=C0 >> (i + 1))  # ConvTranspose: [in, out, k]
    for j in range(len(RATES) * len(RKS)):
        ch, k = C0 >> (j // len(RKS) + 1), RKS[j % len(RKS)]
        for m in range(3):
            conv(f"resblocks.{j}.convs1.{m}", ch, ch, k)
            conv(f"resblocks.{j}.convs2.{m}", ch, ch, k)
        for m in range(6):
            act(f"resblocks.{j}.activations.{m}", ch)
    act("activation_post", C0 >> len(RATES))
    conv("conv_post", 1, C0 >> len(RATES), 7, bias=False)
    torch.save({"generator": gen}, v / "model.pt")
    print(f"{v}/model.pt: {len(gen)} keys, {sum(t.numel() for t in gen.values()):,} values", flush=True)


if __name__ == "__main__":
    main()
