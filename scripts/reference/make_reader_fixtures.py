#!/usr/bin/env python3
"""Writes the fixtures for the Swift readers (safetensors, YAML, tiktoken) into
Tests/Fixtures/readers/.

Good files are written by the reference libraries (safetensors.torch, PyYAML) and their
expected contents -- dtype, shape, every value as float64 (and exact integers for integer
dtypes) -- are computed here by torch/numpy into expected.json. The Swift tests compare
against expected.json, never against values our own code produced.

Malformed files are built by hand, one problem each, and listed in expected.json under
"malformed" so that the Swift test table and the fixtures cannot drift apart.

Run with the reference venv:  /opt/refvenv/bin/python scripts/reference/make_reader_fixtures.py
The output is deterministic (fixed values, no randomness, sorted JSON).
"""

import base64
import json
import math
import os
import re
import shutil
import struct
import sys

import numpy as np
import torch
import yaml
from safetensors.torch import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "readers")

expected = {"safetensors": {}, "checkpoints": {}, "tiktoken": {}, "yaml": {}, "malformed": []}


def path(*parts):
    p = os.path.join(OUT, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def rel(p):
    return os.path.relpath(p, OUT)


# ---------------------------------------------------------------- safetensors (good)

def f64_values(t):
    """Every element as float64; non-finite values as strings (JSON has no NaN/Inf)."""
    out = []
    for v in t.to(torch.float64).flatten().tolist():
        if math.isnan(v):
            out.append("nan")
        elif math.isinf(v):
            out.append("inf" if v > 0 else "-inf")
        else:
            out.append(v)
    return out


def describe_file(p, tensors, metadata):
    """Expected view of one safetensors file: the header parsed here with json (not our code)."""
    with open(p, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    # Tensor order: by data offsets (begin, then end: zero-size tensors share a begin), then name.
    order = sorted((k for k in header if k != "__metadata__"),
                   key=lambda k: (header[k]["data_offsets"][0], header[k]["data_offsets"][1], k))
    entry = {"metadata": header.get("__metadata__", {}), "order": order, "tensors": {}}
    assert entry["metadata"] == (metadata or {})
    for name, t in tensors.items():
        e = {
            "dtype": header[name]["dtype"],
            "shape": list(t.shape),
            "data_offsets": header[name]["data_offsets"],
            "values": f64_values(t),
        }
        if not t.dtype.is_floating_point:
            e["ints"] = [int(v) for v in t.flatten().tolist()]
        entry["tensors"][name] = e
    return entry


def sort_metadata_keys(p):
    """safetensors keeps __metadata__ in a Rust HashMap, so its key order changes from run to
    run. Rewrite just that object with sorted keys (same bytes otherwise, same length) so the
    fixtures are reproducible."""
    with open(p, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    text = raw[8:8 + n].decode()
    header = json.loads(text)
    if len(header.get("__metadata__", {})) < 2:
        return
    old = json.dumps(header["__metadata__"], separators=(",", ":"))
    new = json.dumps(dict(sorted(header["__metadata__"].items())), separators=(",", ":"))
    start = text.index('"__metadata__":') + len('"__metadata__":')
    end = start + len(old)  # the library writes compact JSON; checked just below
    assert len(old) == len(new) and json.loads(text[start:end]) == header["__metadata__"]
    text = text[:start] + new + text[end:]
    assert json.loads(text) == header
    with open(p, "wb") as f:
        f.write(raw[:8] + text.encode() + raw[8 + n:])


def save(p, tensors, metadata=None):
    save_file(tensors, p, metadata=metadata)
    sort_metadata_keys(p)
    return describe_file(p, tensors, metadata)


def floats_family():
    base = torch.tensor([0.0, -0.0, 1.0, -1.5, 3.140625, 1e-3, -4.479605, 65504.0, 1e-8, 123456.789,
                         float("inf"), float("-inf")], dtype=torch.float64)
    return {
        "f32.matrix": (torch.arange(-6, 6, dtype=torch.float32).reshape(3, 4) * 0.37),
        "f32.specials": torch.cat([base.to(torch.float32), torch.tensor([float("nan")])]),
        "f32.scalar": torch.tensor(2.5, dtype=torch.float32),            # shape []
        "f32.empty": torch.zeros((2, 0), dtype=torch.float32),           # zero bytes
        "f64.vector": torch.tensor([math.pi, -math.e, 1e300, -1e-300, 5e-324, 0.1], dtype=torch.float64),
    }


def halves_family():
    src = torch.tensor([0.0, -0.0, 1.0, -2.0, 0.333333, -4.479605, 1e-3, 3.0e4, 1e-7,
                        float("inf"), float("-inf"), 255.5], dtype=torch.float32)
    return {
        "bf16.vector": src.to(torch.bfloat16),
        "bf16.cube": (torch.linspace(-3, 3, 24, dtype=torch.float32).reshape(2, 3, 4)).to(torch.bfloat16),
        "f16.vector": src.to(torch.float16),   # 3e4 fits, 1e-7 is a subnormal in f16
        "f16.matrix": (torch.linspace(-1, 1, 10, dtype=torch.float32).reshape(5, 2)).to(torch.float16),
    }


def ints_family():
    return {
        "i64": torch.tensor([0, 1, -1, 2**53, -(2**53), 2**62 + 1, -(2**63) + 1, 2**63 - 2], dtype=torch.int64),
        "i32": torch.tensor([[0, -2147483648], [2147483647, 12345]], dtype=torch.int32),
        "i16": torch.tensor([-32768, 32767, 7], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0, -1], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 128, 1, 2], dtype=torch.uint8),
        "bool": torch.tensor([True, False, False, True, True], dtype=torch.bool),
    }


def write_good_safetensors():
    expected["safetensors"]["good/floats.safetensors"] = save(
        path("good", "floats.safetensors"), floats_family(),
        metadata={"format": "pt", "note": "f32/f64 family", "empty": ""})
    expected["safetensors"]["good/halves.safetensors"] = save(
        path("good", "halves.safetensors"), halves_family(), metadata={"format": "pt"})
    expected["safetensors"]["good/ints.safetensors"] = save(
        path("good", "ints.safetensors"), ints_family())


# Shards named like the Kimi release: "model-1-of-35" next to "model-36-of-36".
SHARDS = {
    "model-1-of-35.safetensors": {
        "model.embed_tokens.weight": (torch.arange(12, dtype=torch.float32).reshape(4, 3) / 8).to(torch.bfloat16),
        "model.layers.0.input_layernorm.weight": torch.tensor([1.0, 0.5, -0.25], dtype=torch.float32),
    },
    "model-2-of-35.safetensors": {
        "model.layers.0.mlp.up_proj.weight": torch.tensor([[1.5, -2.0, 0.0], [3.0, 4.0, -0.5]], dtype=torch.float16),
    },
    "model-36-of-36.safetensors": {
        "lm_head.weight": (torch.linspace(-1, 1, 6, dtype=torch.float32).reshape(2, 3)).to(torch.bfloat16),
        "model.norm.weight": torch.tensor([0.125, 8.0, -1.0], dtype=torch.float32),
        "model.step": torch.tensor([7], dtype=torch.int64),
    },
}


def write_sharded(folder, shards, weight_map=None, extra_index=None, skip=()):
    """Writes shards with safetensors and an index (by default the true weight map)."""
    d = os.path.join(OUT, folder)
    os.makedirs(d, exist_ok=True)
    described = {}
    total = 0
    for shard, tensors in shards.items():
        if shard in skip:
            continue
        described[shard] = save(os.path.join(d, shard), tensors, metadata={"format": "pt"})
        total += sum(t.numel() * t.element_size() for t in tensors.values())
    if weight_map is None:
        weight_map = {name: shard for shard, ts in shards.items() for name in ts}
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    if extra_index is not None:
        index = extra_index
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
    return described, total


def write_good_checkpoints():
    described, total = write_sharded("sharded", SHARDS)
    # Deterministic checkpoint order: shards in natural (numeric-aware) order of file name,
    # then tensors by data offset inside each shard.
    def natural(s):
        return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", s)]
    order = [name for shard in sorted(described, key=natural) for name in described[shard]["order"]]
    expected["checkpoints"]["sharded"] = {
        "shards": described,
        "order": order,
        "total_bytes": total,
        "weight_map": {name: shard for shard, ts in SHARDS.items() for name in ts},
    }
    # A folder with one model.safetensors and no index.
    single = {"encoder.conv1.weight": torch.tensor([[0.5, -0.5]], dtype=torch.float32)}
    d = save(path("single", "model.safetensors"), single)
    expected["checkpoints"]["single"] = {
        "shards": {"model.safetensors": d}, "order": d["order"],
        "total_bytes": 8, "weight_map": {"encoder.conv1.weight": "model.safetensors"},
    }


# ---------------------------------------------------------------- safetensors (malformed)

def malformed(reader, p, problem):
    expected["malformed"].append({"reader": reader, "path": rel(p), "problem": problem})


def raw_safetensors(name, header, data=b"", length=None, header_bytes=None, problem=""):
    """A safetensors file built by hand: u64 length, header bytes, data."""
    hb = header_bytes if header_bytes is not None else json.dumps(header).encode()
    n = len(hb) if length is None else length
    p = path("malformed", "safetensors", name)
    with open(p, "wb") as f:
        f.write(struct.pack("<Q", n) + hb + data)
    malformed("safetensors", p, problem)


def write_malformed_safetensors():
    good = open(path("good", "floats.safetensors"), "rb").read()
    p = path("malformed", "safetensors", "empty.safetensors")
    open(p, "wb").close()
    malformed("safetensors", p, "empty file")
    p = path("malformed", "safetensors", "short.safetensors")
    open(p, "wb").write(good[:5])
    malformed("safetensors", p, "shorter than the 8-byte header length")
    p = path("malformed", "safetensors", "truncated.safetensors")
    open(p, "wb").write(good[: len(good) - 10])
    malformed("safetensors", p, "data section cut short: last tensor runs past it")

    f32x4 = struct.pack("<4f", 1, 2, 3, 4)
    ok = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
    raw_safetensors("header_huge.safetensors", ok, f32x4, length=2**63, problem="header length 2^63")
    raw_safetensors("header_past_eof.safetensors", ok, f32x4, length=1000, problem="header length past EOF")
    raw_safetensors("header_too_big.safetensors", None, b"", length=200 * 2**20,
                    header_bytes=b"{}", problem="header length above the 100 MiB cap")
    raw_safetensors("header_not_json.safetensors", None, f32x4, header_bytes=b"{not json at all", problem="header not JSON")
    raw_safetensors("header_array.safetensors", [1, 2, 3], problem="header is a JSON array")
    raw_safetensors("dtype_unknown.safetensors",
                    {"a": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}}, b"\0" * 4,
                    problem="unsupported dtype")
    raw_safetensors("shape_mismatch.safetensors",
                    {"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 16]}}, f32x4,
                    problem="byte size != dtype size x product(shape)")
    raw_safetensors("shape_overflow.safetensors",
                    {"a": {"dtype": "F64", "shape": [2**40, 2**40], "data_offsets": [0, 16]}}, f32x4,
                    problem="element count overflows")
    raw_safetensors("offsets_past_data.safetensors",
                    {"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}, f32x4,
                    problem="data_offsets past the data section")
    raw_safetensors("offsets_reversed.safetensors",
                    {"a": {"dtype": "F32", "shape": [0], "data_offsets": [16, 8]}}, f32x4,
                    problem="data_offsets end < begin")
    raw_safetensors("overlap.safetensors",
                    {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
                     "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, f32x4,
                    problem="overlapping tensors")
    raw_safetensors("negative_dim.safetensors",
                    {"a": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}}, f32x4,
                    problem="negative dim")
    raw_safetensors("fractional_dim.safetensors",
                    {"a": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 16]}}, f32x4,
                    problem="non-integer dim")
    raw_safetensors("missing_offsets.safetensors",
                    {"a": {"dtype": "F32", "shape": [4]}}, f32x4, problem="entry without data_offsets")
    raw_safetensors("entry_not_object.safetensors", {"a": [1, 2]}, f32x4, problem="entry not an object")
    raw_safetensors("metadata_not_strings.safetensors",
                    {"__metadata__": {"format": "pt", "epoch": 3}, **ok}, f32x4,
                    problem="__metadata__ value not a string")


def write_malformed_checkpoints():
    a = {"a": torch.tensor([1.0, 2.0], dtype=torch.float32)}
    b = {"b": torch.tensor([3.0], dtype=torch.float32)}
    base = "malformed/checkpoints"

    write_sharded(f"{base}/shard_missing", {"model-1-of-2.safetensors": a, "model-2-of-2.safetensors": b},
                  skip={"model-2-of-2.safetensors"})
    malformed("checkpoint", path(base, "shard_missing", "x"), "index names a shard that does not exist")

    write_sharded(f"{base}/shard_dotdot", {"model-1-of-1.safetensors": a},
                  weight_map={"a": "../model-1-of-1.safetensors"})
    malformed("checkpoint", path(base, "shard_dotdot", "x"), "index shard path with ../")

    write_sharded(f"{base}/shard_slash", {"model-1-of-1.safetensors": a},
                  weight_map={"a": "sub/model-1-of-1.safetensors"})
    malformed("checkpoint", path(base, "shard_slash", "x"), "index shard path with a separator")

    write_sharded(f"{base}/wrong_shard", {"model-1-of-2.safetensors": a, "model-2-of-2.safetensors": b},
                  weight_map={"a": "model-2-of-2.safetensors", "b": "model-2-of-2.safetensors"})
    malformed("checkpoint", path(base, "wrong_shard", "x"), "tensor not in the shard the index says")

    c = {"c": torch.tensor([5.0], dtype=torch.float32)}
    write_sharded(f"{base}/unindexed", {"model-1-of-2.safetensors": a, "model-2-of-2.safetensors": {**b, **c}},
                  weight_map={"a": "model-1-of-2.safetensors", "b": "model-2-of-2.safetensors"})
    malformed("checkpoint", path(base, "unindexed", "x"), "tensor in a shard but absent from the index")

    write_sharded(f"{base}/duplicate", {"model-1-of-2.safetensors": a, "model-2-of-2.safetensors": {**a, **b}},
                  weight_map={"a": "model-1-of-2.safetensors", "b": "model-2-of-2.safetensors"})
    malformed("checkpoint", path(base, "duplicate", "x"), "same tensor name in two shards")

    write_sharded(f"{base}/index_no_weight_map", {"model-1-of-1.safetensors": a},
                  extra_index={"metadata": {}, "weights": {"a": "model-1-of-1.safetensors"}})
    malformed("checkpoint", path(base, "index_no_weight_map", "x"), "index without weight_map")

    write_sharded(f"{base}/index_value_not_string", {"model-1-of-1.safetensors": a},
                  weight_map={"a": 1})
    malformed("checkpoint", path(base, "index_value_not_string", "x"), "weight_map value not a string")

    d = path(base, "index_not_json", "model.safetensors.index.json")
    open(d, "w").write('{"weight_map": {"a": "model-1-of-1.safetensors"')
    malformed("checkpoint", d, "index is truncated JSON")

    d = path(base, "no_model", "README.md")
    open(d, "w").write("no safetensors here\n")
    malformed("checkpoint", d, "folder with neither an index nor model.safetensors")

    # Fix up the placeholder paths: a checkpoint case is named by its folder.
    for m in expected["malformed"]:
        if m["reader"] == "checkpoint":
            m["path"] = os.path.dirname(m["path"])


# ---------------------------------------------------------------- tiktoken

MERGES = [b"th", b"he", b"the", b" t", b" the", b"in", b"\xe4\xbd\xa0", b"\xe4\xbd\xa0\xe5\xa5\xbd", b"==", b"\r\n"]


def tiktoken_lines():
    tokens = [bytes([i]) for i in range(256)] + MERGES
    return [(base64.b64encode(t).decode(), r) for r, t in enumerate(tokens)], tokens


def write_tiktoken():
    lines, tokens = tiktoken_lines()
    text = "".join(f"{b} {r}\n" for b, r in lines)
    open(path("good", "tiktoken.model"), "w", newline="").write(text)
    open(path("good", "tiktoken_crlf.model"), "w", newline="").write(text.replace("\n", "\r\n"))
    open(path("good", "tiktoken_no_final_newline.model"), "w", newline="").write(text.rstrip("\n"))
    # Ranks listed out of order are still a valid permutation of 0..n-1.
    shuffled = lines[256:] + lines[:256]
    open(path("good", "tiktoken_unordered.model"), "w", newline="").write("".join(f"{b} {r}\n" for b, r in shuffled))
    # Cross-check with the tiktoken loader's own rules (base64 + split) on the good file.
    parsed = {base64.b64decode(t): int(r) for t, r in (ln.split() for ln in text.splitlines() if ln)}
    assert len(parsed) == len(tokens)
    entry = {"count": len(tokens), "tokens_hex": [t.hex() for t in tokens]}
    for name in ["tiktoken.model", "tiktoken_crlf.model", "tiktoken_no_final_newline.model"]:
        expected["tiktoken"]["good/" + name] = {**entry, "rank_order": list(range(len(tokens)))}
    expected["tiktoken"]["good/tiktoken_unordered.model"] = {**entry, "rank_order": [r for _, r in shuffled]}

    def bad(name, mutate, problem, line):
        ls = [f"{b} {r}" for b, r in lines[:12]]
        mutate(ls)
        p = path("malformed", "tiktoken", name)
        open(p, "w", newline="").write("\n".join(ls) + "\n")
        expected["malformed"].append({"reader": "tiktoken", "path": rel(p), "problem": problem, "line": line})

    def set_line(i, s):
        return lambda ls: ls.__setitem__(i, s)

    bad("bad_base64.model", set_line(2, "!!!! 2"), "invalid base64", 3)
    bad("bad_base64_length.model", set_line(2, "QUJ 2"), "base64 length not a multiple of 4", 3)
    bad("bad_base64_padding.model", set_line(2, "QR== 2"), "non-canonical base64 (stray bits)", 3)
    bad("duplicate_rank.model", set_line(5, f"{lines[5][0]} 4"), "duplicate rank", 6)
    bad("duplicate_bytes.model", set_line(5, f"{lines[4][0]} 5"), "duplicate token bytes", 6)
    bad("rank_gap.model", set_line(11, f"{lines[11][0]} 20"), "gap in ranks", 12)
    bad("non_numeric_rank.model", set_line(3, f"{lines[3][0]} abc"), "non-numeric rank", 4)
    bad("negative_rank.model", set_line(3, f"{lines[3][0]} -3"), "negative rank", 4)
    bad("huge_rank.model", set_line(3, f"{lines[3][0]} 99999999999999999999999"), "rank overflows", 4)
    bad("empty_token.model", set_line(3, " 3"), "empty token", 4)
    bad("no_separator.model", set_line(3, lines[3][0]), "line without a rank", 4)
    bad("blank_line.model", lambda ls: ls.insert(4, ""), "blank line in the middle", 5)
    p = path("malformed", "tiktoken", "empty.model")
    open(p, "w").close()
    expected["malformed"].append({"reader": "tiktoken", "path": rel(p), "problem": "no tokens", "line": 0})


# ---------------------------------------------------------------- YAML

CONFIG_YAML = """\
# Resembles audio_detokenizer/config.yaml: nested maps, lists, floats, booleans.
model:
  name: prefix_streaming_flow_matching
  dim: 1024
  depth: 16
  heads: 16
  dropout: 0.0
  use_rope: true
  causal: False
  ff_mult: 4.0
  conv_pos: [31, 3]
  layers:
    - {kind: attention, window: -1}
    - kind: conv
      kernel: 7
      bias: no
mel:
  sample_rate: 24000
  n_fft: 1024
  hop_length: 480
  n_mels: 80
  fmin: 0
  fmax: null
  mel_mean: -4.479605
  mel_std: 3.4584705
  eps: 1e-6
  clip: .inf
  floor: -.inf
  scale: 6.02e+23
  ratio: .5
training:
  lr: 0.0001
  betas: [0.9, 0.95]
  schedule: ~
  tags:
    - "true"
    - '1e-6'
    - plain text with: a colon
    - |
      block
      text
defaults: &defaults
  chunk: 150
  overlap: 0.25
stream:
  <<: *defaults
  overlap: 0.5
"""


class CoreLoader(yaml.SafeLoader):
    """PyYAML is YAML 1.1 and reads '1e-6' (no dot) as a string; Yams and OmegaConf read it as
    a float (YAML 1.2 core). Add the 1.2 float rule so expected.json matches configs as used."""


CoreLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?)$""", re.X),
    list("-+0123456789."))


def json_safe(v):
    if isinstance(v, float) and math.isinf(v):
        return {"$float": "inf" if v > 0 else "-inf"}
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [json_safe(x) for x in v]
    return v


def write_yaml():
    p = path("good", "config.yaml")
    open(p, "w").write(CONFIG_YAML)
    tree = yaml.load(CONFIG_YAML, Loader=CoreLoader)
    # Sanity checks that the resolver did what the comment says.
    assert tree["mel"]["eps"] == 1e-6 and tree["mel"]["mel_mean"] == -4.479605
    assert tree["model"]["layers"][1]["bias"] is False and tree["training"]["tags"][1] == "1e-6"
    assert tree["stream"] == {"chunk": 150, "overlap": 0.5}
    expected["yaml"]["good/config.yaml"] = json_safe(tree)

    def bad(name, text, problem):
        p = path("malformed", "yaml", name)
        open(p, "wb").write(text.encode() if isinstance(text, str) else text)
        malformed("yaml", p, problem)

    bad("syntax_error.yaml", "model:\n  dim: 4\n   heads: [1, 2\n", "syntax error")
    bad("unclosed_flow.yaml", "a: [1, 2, {b: 3}\n", "unclosed flow sequence")
    lol = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i, c in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lol.append(f"{c}: &{c} [" + ", ".join([f"*{prev}"] * 10) + "]")
    bad("billion_laughs.yaml", "\n".join(lol) + "\n", "alias bomb")
    bad("deep_nesting.yaml", "[" * 10000 + "]" * 10000 + "\n", "nesting 10,000 deep")
    bad("int_key.yaml", "layers:\n  1: attention\n  2: conv\n", "non-string key")
    bad("duplicate_key.yaml", "dim: 4\ndim: 5\n", "duplicate key")
    bad("not_utf8.yaml", b"name: caf\xe9\n", "not UTF-8")
    bad("undefined_alias.yaml", "a: *nothing\n", "undefined alias")


# ---------------------------------------------------------------- main

def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    write_good_safetensors()
    write_good_checkpoints()
    write_malformed_safetensors()
    write_malformed_checkpoints()
    write_tiktoken()
    write_yaml()
    expected["malformed"].sort(key=lambda m: m["path"])
    expected["versions"] = {"torch": torch.__version__, "numpy": np.__version__, "pyyaml": yaml.__version__}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True, allow_nan=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(OUT) for n in ns)
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    sys.exit(main())
