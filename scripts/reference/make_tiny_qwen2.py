"""A tiny random-weight Hugging Face Qwen2 checkpoint with a real byte-level BPE tokenizer.

Made with the reference libraries only (transformers' Qwen2ForCausalLM, the `tokenizers` trainer,
transformers' GPT-2 byte mapping), so the converter's Qwen2 path and tokenizer.json → tiktoken
conversion are checked against code nobody here wrote. Writes Tests/Fixtures/tiny-qwen2/:
config.json, model.safetensors (BF16), tokenizer.json, tokenizer_config.json, and expected.json
(for every id: the token's bytes in hex, via transformers' bytes_to_unicode; the special tokens).

Run: .venv-ref/bin/python scripts/reference/make_tiny_qwen2.py   (scripts/reference/setup.sh)
"""
import json, os
import torch
from tokenizers import Tokenizer, models, trainers, pre_tokenizers, decoders, Regex
from transformers import Qwen2Config, Qwen2ForCausalLM, PreTrainedTokenizerFast
from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "tiny-qwen2")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(0)

QWEN2_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
text = ("The quick brown fox jumps over the lazy dog. What is the capital of France? Paris is the capital. "
        "def add(a, b):\n    return a + b\n" "Numbers 12345 and émigrés, naïve café, 東京, 🙂.") * 20

tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.Sequence([
    pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
tok.decoder = decoders.ByteLevel()
specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
trainer = trainers.BpeTrainer(vocab_size=256 + 96, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                              special_tokens=[], show_progress=False)
tok.train_from_iterator([text], trainer)
n_base = tok.get_vocab_size()
tok.add_special_tokens(specials)
chat_template = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
fast.chat_template = chat_template
fast.save_pretrained(OUT)

cfg = Qwen2Config(vocab_size=n_base + len(specials), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, rope_theta=1e6,
                  rms_norm_eps=1e-6, tie_word_embeddings=False, torch_dtype="bfloat16",
                  bos_token_id=n_base, eos_token_id=n_base + 2)
model = Qwen2ForCausalLM(cfg)
with torch.no_grad():   # no constant tensors: a converter that swaps two must be caught
    for n, p in model.named_parameters():
        if "norm" in n or n.endswith("bias"):
            p.add_(torch.randn_like(p) * 0.1)
model.to(torch.bfloat16).save_pretrained(OUT, safe_serialization=True)

b2u = bytes_to_unicode(); u2b = {v: k for k, v in b2u.items()}
vocab = tok.get_vocab()
expected = {"num_base_tokens": n_base,
            "tokens": {str(i): bytes(u2b[c] for c in piece).hex() for piece, i in vocab.items() if i < n_base},
            "specials": {s: vocab[s] for s in specials},
            "sample": {"text": "What is the capital of France?", "ids": tok.encode("What is the capital of France?").ids}}
json.dump(expected, open(os.path.join(OUT, "expected.json"), "w"), indent=0, sort_keys=True)
print("wrote", os.path.normpath(OUT), "vocab", n_base, "+", len(specials))
