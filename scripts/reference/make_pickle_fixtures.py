#!/usr/bin/env python3
"""Writes the fixtures of the torch checkpoint reader into Tests/Fixtures/pickle/.

Run with the reference venv:  /opt/refvenv/bin/python scripts/reference/make_pickle_fixtures.py

Good checkpoints are written by torch.save itself; expected.json holds, for each tensor, the dtype,
shape and element values as computed by torch (the Swift tests compare against these, never against
their own output). Malicious and malformed files are built with Python's pickle module, zipfile and
byte edits. Everything is small (a few KB per file) and deterministic.
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile
import zlib

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures", "pickle")
OUT = os.path.normpath(OUT)
DTYPES = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16", torch.float64: "f64",
          torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8",
          torch.uint8: "u8", torch.bool: "bool"}
expected = {}


def path(name):
    return os.path.join(OUT, name)


def record(fname, obj):
    """Walks obj like the Swift reader does and records every tensor with its key path."""
    out = []

    def walk(v, keys):
        if isinstance(v, torch.Tensor):
            out.append({"path": keys, "dtype": DTYPES[v.dtype], "shape": list(v.shape),
                        "contiguous": v.is_contiguous(), "parameter": isinstance(v, torch.nn.Parameter),
                        "values": [float(x) for x in v.detach().reshape(-1).double().tolist()],
                        # exact: decimal JSON numbers do not round-trip through every JSON parser
                        "hex": [float(x).hex() for x in v.detach().reshape(-1).double().tolist()]})
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(x, keys + [str(k)])
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                walk(x, keys + [str(i)])
    walk(obj, [])
    expected[fname] = out


def save_good(fname, obj, safe=True, **kw):
    torch.save(obj, path(fname), **kw)
    # Our fixtures load in torch's safe mode, except protocol 4/5 (its unpickler lacks FRAME).
    loaded = torch.load(path(fname), weights_only=safe)
    record(fname, loaded)


def good_fixtures():
    g = torch.Generator().manual_seed(0)
    sd = collections.OrderedDict()
    sd["linear.weight"] = torch.randn(3, 4, generator=g)
    sd["linear.bias"] = torch.tensor([0.5, -1.25, 3.0])
    sd["half"] = torch.tensor([1.0, -2.5, 65504.0, 6.1e-5, 0.0], dtype=torch.float16)
    sd["bf16"] = (torch.randn(2, 3, generator=g) * 100).to(torch.bfloat16)
    sd["f64"] = torch.tensor([1e-300, 3.141592653589793, -2.0], dtype=torch.float64)
    sd["i64"] = torch.tensor([[0, -1], [2**40, -(2**40)]], dtype=torch.int64)
    sd["i32"] = torch.tensor([7, -8, 2**31 - 1], dtype=torch.int32)
    sd["i16"] = torch.tensor([-32768, 32767], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127, 0], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 255, 17], dtype=torch.uint8)
    sd["mask"] = torch.tensor([True, False, True, True])
    sd["scalar"] = torch.tensor(42.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.arange(6, dtype=torch.float32).reshape(2, 3))
    save_good("state_dict.pt", sd)

    # A real module + optimizer: state_dict() carries _metadata (BUILD), Adam state has int keys.
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.LayerNorm(2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    save_good("nested.pt", {"state_dict": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
                            "name": "tiny", "generator": {"conv.weight": torch.ones(2, 1, 3)}})

    base = torch.arange(24, dtype=torch.float32)
    views = collections.OrderedDict()
    views["transposed"] = base[:12].view(3, 4).t()           # non-contiguous, offset 0
    views["shared_a"] = base[2:8]                            # offset 2
    views["shared_b"] = base[10:20].view(2, 5)               # offset 10, same storage
    views["column"] = base.view(4, 6)[:, 1]                  # stride 6, offset 1
    views["expanded"] = torch.tensor([1.0, 2.0]).unsqueeze(0).expand(3, 2)  # stride 0
    save_good("views.pt", views)

    small = collections.OrderedDict(w=torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.bfloat16),
                                    n=torch.tensor([5, 6], dtype=torch.int64))
    # Other prefixes and protocols: torch.save into a buffer names its folder "archive/".
    buf = io.BytesIO()
    torch.save(small, buf)
    open(path("archive_prefix.pt"), "wb").write(buf.getvalue())
    record("archive_prefix.pt", torch.load(path("archive_prefix.pt"), weights_only=True))
    save_good("protocol4.pt", {"model": small, "bytes": b"\x00\xffraw", "set": {1, 2}, "big": 2**70,
                               "t": (1.5, None, True, "x")}, safe=False, pickle_protocol=4)
    save_good("protocol5.pt", {"model": small}, safe=False, pickle_protocol=5)
    # The same bytes as state_dict.pt, re-packed with every ZIP64 structure.
    write_zip64(path("state_dict.pt"), path("zip64.pt"))
    record("zip64.pt", torch.load(path("zip64.pt"), weights_only=True))
    assert zipfile.ZipFile(path("zip64.pt")).testzip() is None


def write_zip64(src, dst):
    """Re-packs src with ZIP64 extras in every local and central header, all-ones sizes and offsets in
    the 32-bit fields, and a ZIP64 end record + locator (what a > 4 GiB torch.save file contains)."""
    z = zipfile.ZipFile(src)
    out = bytearray()
    central = bytearray()
    for info in z.infolist():
        data = z.read(info.filename)
        name = info.filename.encode()
        crc = zlib.crc32(data)
        offset = len(out)
        local_extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                           len(name), len(local_extra)) + name + local_extra + data
        extra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF,
                               0xFFFFFFFF, len(name), len(extra), 0, 0, 0, 0, 0xFFFFFFFF) + name + extra
    cd_offset = len(out)
    out += central
    z64 = len(out)
    n = len(z.infolist())
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(central), cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    open(dst, "wb").write(out)


# ---------------------------------------------------------------------------------------------
# Crafted checkpoints: a pickler whose persistent ids and tensors we control (for bad geometry).

class StorageRef:
    def __init__(self, key, stype, numel):
        self.key, self.stype, self.numel = key, stype, numel


class TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class CraftPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            return ("storage", obj.stype, obj.key, "cpu", obj.numel)
        return None


def write_pt(fname, pkl, storages=(), prefix="archive", byteorder=b"little", compress_pkl=False):
    with zipfile.ZipFile(path(fname), "w") as z:
        z.writestr(zipfile.ZipInfo(prefix + "/data.pkl"), pkl,
                   compress_type=zipfile.ZIP_DEFLATED if compress_pkl else zipfile.ZIP_STORED)
        if byteorder is not None:
            z.writestr(prefix + "/byteorder", byteorder)
        for key, data in storages:
            z.writestr(prefix + "/data/" + key, data)
        z.writestr(prefix + "/version", b"3\n")  # torch.load requires it


def craft(obj, proto=2):
    buf = io.BytesIO()
    CraftPickler(buf, protocol=proto).dump(obj)
    return buf.getvalue()


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def bad_fixtures():
    four = struct.pack("<4f", 1, 2, 3, 4)
    # Sanity check of the crafting path: a well-formed crafted file loads in torch.
    ok = craft({"w": TensorRef(StorageRef("0", torch.FloatStorage, 4), 0, (2, 2), (2, 1))})
    write_pt("crafted_ok.pt", ok, [("0", four)])
    record("crafted_ok.pt", torch.load(path("crafted_ok.pt"), weights_only=True))

    # Malicious globals.
    write_pt("evil_os_system.pt", b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R.")
    write_pt("evil_posix_system.pt", pickle.dumps(Evil(os.system, "echo pwned"), protocol=2))
    write_pt("evil_eval_stack_global.pt", pickle.dumps(Evil(eval, "1+1"), protocol=4))
    assert b"\x93" in pickle.dumps(Evil(eval, "1+1"), protocol=4)
    write_pt("evil_reduce_storage_type.pt", b"\x80\x02ctorch\nFloatStorage\nK\x04\x85R.")
    write_pt("evil_getattr.pt", pickle.dumps(Evil(getattr, "x"), protocol=2))

    # Bad geometry / storages.
    write_pt("storage_numel_too_big.pt",
             craft({"w": TensorRef(StorageRef("0", torch.FloatStorage, 100), 0, (2, 2), (2, 1))}), [("0", four)])
    write_pt("tensor_past_storage.pt",
             craft({"w": TensorRef(StorageRef("0", torch.FloatStorage, 4), 1, (2, 2), (2, 1))}), [("0", four)])
    write_pt("stride_past_storage.pt",
             craft({"w": TensorRef(StorageRef("0", torch.FloatStorage, 4), 0, (2, 2), (1, 3))}), [("0", four)])
    write_pt("stride_overflow.pt",
             craft({"w": TensorRef(StorageRef("0", torch.FloatStorage, 4), 0, (3, 2), (2**62, 1))}), [("0", four)])
    write_pt("storage_missing.pt",
             craft({"w": TensorRef(StorageRef("7", torch.FloatStorage, 4), 0, (4,), (1,))}), [("0", four)])
    write_pt("storage_bad_type.pt",
             craft({"w": TensorRef(StorageRef("0", torch.ComplexFloatStorage, 2), 0, (2,), (1,))}), [("0", four)])
    write_pt("big_endian.pt", ok, [("0", four)], byteorder=b"big")
    write_pt("deflated_pkl.pt", ok, [("0", four)], compress_pkl=True)
    with zipfile.ZipFile(path("no_data_pkl.pt"), "w") as z:
        z.writestr("archive/version", b"3\n")

    # Malformed pickles.
    write_pt("pkl_unterminated.pt", b"\x80\x02}q\x00(X\x01\x00\x00\x00aK\x01")
    write_pt("pkl_huge_long_binget.pt", b"\x80\x02j\xff\xff\xff\x7f.")
    write_pt("pkl_binunicode_past_end.pt", b"\x80\x02X\xff\xff\xff\x7fabc.")
    write_pt("pkl_binbytes8_past_end.pt", b"\x80\x04\x8e" + struct.pack("<Q", 2**63) + b".")
    write_pt("pkl_cycle.pt", b"\x80\x02]q\x00h\x00a.")
    write_pt("pkl_stack_underflow.pt", b"\x80\x02\x86.")
    write_pt("pkl_bad_opcode.pt", b"\x80\x02S'hi'\n.")
    write_pt("pkl_deep_nesting.pt", b"\x80\x02)" + b"\x85" * 5000 + b".")
    # 60 levels of a list holding the previous one twice: 2^60 nodes if expanded naively.
    bomb = b"\x80\x02]q\x000" + b"]h\x00h\x00\x86aq\x000" * 60 + b"h\x00."
    write_pt("pkl_shared_bomb.pt", bomb)
    write_pt("pkl_long4_huge.pt", b"\x80\x02\x8b\xff\xff\xff\x7f.")
    write_pt("pkl_protocol_9.pt", b"\x80\x09N.")

    # Broken zips, from the good state_dict.pt.
    good = open(path("state_dict.pt"), "rb").read()
    open(path("zip_truncated.pt"), "wb").write(good[: len(good) // 2])
    eocd = good.rindex(b"PK\x05\x06")
    z64 = good.rindex(b"PK\x06\x06")  # torch (miniz) always writes a ZIP64 end record
    bad = bytearray(good)
    bad[eocd + 10: eocd + 12] = struct.pack("<H", 0xFFF0)  # entry count, now disagreeing with ZIP64
    bad[eocd + 8: eocd + 10] = struct.pack("<H", 0xFFF0)
    open(path("zip_bad_eocd.pt"), "wb").write(bad)
    bad = bytearray(good)
    bad[z64 + 24: z64 + 40] = struct.pack("<QQ", 0xFFF0, 0xFFF0)  # ZIP64 entry counts
    bad[eocd + 8: eocd + 12] = struct.pack("<HH", 0xFFFF, 0xFFFF)
    open(path("zip64_bad_count.pt"), "wb").write(bad)
    bad = bytearray(good)
    bad[eocd + 16: eocd + 20] = struct.pack("<I", 0xFFFFFFFF)  # central directory offset
    bad[z64 + 48: z64 + 56] = struct.pack("<Q", 2**40)
    open(path("zip_cd_offset_past_eof.pt"), "wb").write(bad)
    bad = bytearray(good)
    bad[good.rindex(b"PK\x06\x07") + 8: good.rindex(b"PK\x06\x07") + 16] = struct.pack("<Q", 2**63)
    open(path("zip64_locator_past_eof.pt"), "wb").write(bad)
    bad = bytearray(good)
    first_name = 30  # first local header's name starts at byte 30
    bad[first_name] ^= 0x20
    open(path("zip_local_name_mismatch.pt"), "wb").write(bad)
    bad = bytearray(good)
    pkl_info = zipfile.ZipFile(path("state_dict.pt")).infolist()[0]
    data_at = pkl_info.header_offset + 30 + len(pkl_info.filename) + len(pkl_info.extra) + 0
    # the local extra may differ from the central one; find the pickle by its PROTO opcode instead
    data_at = good.index(b"\x80\x02", pkl_info.header_offset)
    bad[data_at + 5] ^= 0x01
    open(path("zip_crc_mismatch.pt"), "wb").write(bad)
    open(path("not_a_zip.pt"), "wb").write(b"this is plain text, not a checkpoint\n" * 4)
    open(path("empty.pt"), "wb").write(b"")
    torch.save({"w": torch.ones(2)}, path("legacy_format.pt"), _use_new_zipfile_serialization=False)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    good_fixtures()
    bad_fixtures()
    with open(path("expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(os.listdir(OUT))} files to {OUT}; torch {torch.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
