"""Golden quant blocks from ggml's own Python reference (the `gguf` package, gguf-py).

Our q8_g32 and q4_g32 blocks are byte for byte ggml's block_q8_0 / block_q4_0 (formats/KAF.md), so
gguf-py's quantize() gives the expected bytes and dequantize() the expected values for the tests.
Run: python3 scripts/reference/make_quant_goldens.py   (needs: pip install gguf numpy)
Writes Tests/Fixtures/quant/ggml_blocks.json.
"""
import json, os
import numpy as np
from gguf import quants, GGMLQuantizationType as T

rng = np.random.default_rng(1234)
rows = [
    rng.standard_normal(256).astype(np.float32),                       # plain gaussian
    (rng.standard_normal(256) * 1e-3).astype(np.float32),              # small weights
    np.concatenate([np.zeros(32), rng.standard_normal(224) * 5]).astype(np.float32),  # an all-zero group
    np.where(rng.random(256) < 0.05, 40.0, rng.standard_normal(256)).astype(np.float32),  # outliers
    np.linspace(-3, 2, 256).astype(np.float32),                         # ramp: rounding ties
]
cases = []
for r in rows:
    case = {"input": [float(x) for x in r]}
    for name, t in (("q8_0", T.Q8_0), ("q4_0", T.Q4_0)):
        q = quants.quantize(r.reshape(1, -1), t)
        case[name + "_bytes"] = q.tobytes().hex()
        case[name + "_dequant"] = [float(x) for x in quants.dequantize(q, t).reshape(-1)]
    cases.append(case)
out = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "quant", "ggml_blocks.json")
with open(out, "w") as f:
    json.dump({"source": "gguf-py quants.quantize/dequantize", "cases": cases}, f)
print("wrote", os.path.normpath(out))
