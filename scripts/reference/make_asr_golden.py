"""An `lm` golden whose prompt holds a real audio segment (formats/GOLDEN.md, file kimi_tiny_asr_f32).

The official pieces end to end, in float32 on the CPU, on Tests/Fixtures/audio/fox_22k.wav:
  * codes: GLM-4-Voice's WhisperVQEncoder as Kimi's Glm4Tokenizer calls it (the golden
    vq_tiny_fox_22k.safetensors, made by make_vq_goldens.py);
  * features: Kimi's whisper_Lv3 encoder regrouped by extract_whisper_feat (the golden
    whisper_tiny_encoder_f32.safetensors, made by make_whisper_goldens.py; the official code runs the
    encoder in bf16 on a GPU, here it ran in f32);
  * prompt: KimiAPromptManager.get_prompt([user text <the official ASR instruction>, user audio],
    output_type="text"), with `_tokenize_audio` / `extract_whisper_feat` returning those codes and
    features (the stand-ins of make_lm_goldens.make_prompt_manager);
  * loop: KimiAudio._generate_loop with the greedy KimiASampler (make_lm_goldens.run_official_loop).
Run: /opt/refvenv/bin/python scripts/reference/make_asr_golden.py (source checkouts as make_lm_goldens.py)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_lm_goldens as mlg  # noqa: E402
import make_tiny_release as mtr  # noqa: E402

ASR_INSTRUCTION = "请将音频内容转换为文字。"  # infer.py's transcription prompt
K = 16


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kimi-src", type=Path, default=Path("/tmp/ref-src/kimi"))
    ap.add_argument("--glm-src", type=Path, default=Path("/tmp/ref-src/glm"))
    ap.add_argument("--hf-src", type=Path, default=Path("/tmp/ref-src/hf"))
    ap.add_argument("--ft-src", type=Path, default=Path("/tmp/ref-src/train/finetune_codes"))
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    golden = mlg.REPO / "Tests" / "Fixtures" / "golden"
    codes = load_file(str(golden / "vq_tiny_fox_22k.safetensors"))["out.codes"].tolist()
    feats = load_file(str(golden / "whisper_tiny_encoder_f32.safetensors"))["out.features"].float()
    assert feats.shape[0] == len(codes)
    mlg.install_forward_patches(args.kimi_src.resolve(), args.glm_src.resolve())
    KimiAudioConfig, LLMClass, _ft, _cfg = mtr.import_llm_classes(args.hf_src.resolve(), args.ft_src.resolve())
    model_mod = sys.modules[LLMClass.__module__]
    no_half = mlg._TorchNoHalf("torch")
    no_half.float16 = torch.float32
    cfg = KimiAudioConfig.from_pretrained(str(mlg.TINY))
    offset = cfg.kimia_token_offset
    pm = mlg.make_prompt_manager(mlg.TINY, offset, feats)
    pm._tokenize_audio = lambda path: [offset + c for c in codes]
    msgs = [{"role": "user", "message_type": "text", "content": ASR_INSTRUCTION},
            {"role": "user", "message_type": "audio", "content": "Tests/Fixtures/audio/fox_22k.wav"}]
    model = mlg.load_kimi(LLMClass, torch.float32)
    model_mod.torch = no_half
    res = mlg.kimi_case(model, pm, msgs, "text", K, torch.float32, feats)
    kimi_rev, hf_rev = mlg.git_head(args.kimi_src, "kimi"), mlg.git_head(args.hf_src, "hf")
    meta = {"kaf.golden": "1", "stage": "lm", "dtype": "f32", "model": "Tests/Fixtures/tiny-release",
            "source": f"MoonshotKimiaForCausalLM from SolutionArichtect/Kimi-Audio-7B-Instruct-Ascend@{hf_rev[:7]} "
                      f"(eager fp32 attention, no fp16 down-cast); prompt = KimiAPromptManager.get_prompt, loop = "
                      f"KimiAudio._generate_loop, greedy KimiASampler from MoonshotAI/Kimi-Audio@{kimi_rev[:7]}; codes "
                      f"and features from the vq/whisper goldens of audio/fox_22k.wav",
            "output_type": "text", "k": res["steps"], "messages": msgs, "audio_codes": codes,
            "greedy_min_top2_gap": res["margins"], "kimia_token_offset": offset, "delay": 6,
            "in.file": "Tests/Fixtures/audio/fox_22k.wav", "instruction": ASR_INSTRUCTION}
    path = golden / "kimi_tiny_asr_f32.safetensors"
    mlg.save_case(path, mlg.kimi_tensors(res), meta)
    mlg.reload_and_rerun_kimi(path, model, pm.extra_tokens, "text", torch.float32)
    print(f"asr: T = {res['audio_ids'].numel()}, greedy text {res['greedy_text']}, min gap {res['margins']}")


if __name__ == "__main__":
    main()
