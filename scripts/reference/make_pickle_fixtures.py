#!/usr/bin/env python3
"""Writes the fixtures of the torch checkpoint reader into Tests/Fixtures/pickle/.

Run with the reference venv:  /opt/refvenv/bin/python scripts/reference/make_pickle_fixtures.py

Good checkpoints are written by torch.save itself; expected.json holds, for each tensor, the dtype,
shape and element values as computed by torch (the Swift tests compare against these, never against
their own output). Malicious and malformed files are built with Python's pickle module, zipfile and
byte edits. Everything is small (a few KB per file).

The allowlist fixtures (`allow_*.pt`, issue 12 item 12) hold one construct each that torch's
weights-only unpickler accepts by default; each is asserted here to load with
`torch.load(path, weights_only=True)`. allowlist.json records, for each, the object as torch loads it
(a tagged tree: see `tag`), the names in `_get_allowed_globals()` of the installed torch, and the
torch version. `refuse_*.pt` load in torch but our reader refuses them with a reason (quantized,
sparse, nested and meta tensors, conj/neg view bits); the new `evil_*.pt` are asserted to be refused
by torch's weights-only loader too.

Deterministic: two runs with the same torch write the same bytes (torch.save is; the hand-built
zips use fixed timestamps), except legacy_format.pt, whose pre-zip format records storage
addresses.
"""
import collections
import copyreg
import io
import json
import os
import pickle
import struct
import sys
import warnings
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
            d = v.detach()
            e = {"path": keys, "dtype": DTYPES[v.dtype], "shape": list(v.shape),
                 "contiguous": v.is_contiguous(), "parameter": isinstance(v, torch.nn.Parameter)}
            values = scalars(d)
            if values is not None:
                e["values"] = values
                # exact: decimal JSON numbers do not round-trip through every JSON parser
                e["hex"] = [float(x).hex() for x in values]
            if d.is_contiguous():
                # the tensor's bytes as torch holds them (all dtypes, also those without arithmetic)
                es, off = d.element_size(), d.storage_offset()
                e["raw"] = bytes(d.untyped_storage().tolist()[off * es:(off + d.numel()) * es]).hex()
            out.append(e)
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(x, keys + [str(k)])
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                walk(x, keys + [str(i)])
    walk(obj, [])
    expected[fname] = out


def scalars(d):
    """Row-major element values as floats (complex: real and imaginary parts interleaved, as
    torch.view_as_real); None for dtypes torch has no conversion for (float4, bits)."""
    if d.is_complex():  # viewed as its real dtype: (real, imaginary) pairs
        d = d.contiguous().view({torch.complex32: torch.float16, torch.complex64: torch.float32,
                                 torch.complex128: torch.float64}[d.dtype])
    try:
        return [float(x) for x in d.reshape(-1).double().tolist()]
    except (RuntimeError, TypeError, NotImplementedError):
        return None


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


def entry(name):
    """A zip entry with a fixed timestamp, so that the fixtures are the same bytes on every run."""
    return zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))


def write_pt(fname, pkl, storages=(), prefix="archive", byteorder=b"little", compress_pkl=False):
    with zipfile.ZipFile(path(fname), "w") as z:
        z.writestr(entry(prefix + "/data.pkl"), pkl,
                   compress_type=zipfile.ZIP_DEFLATED if compress_pkl else zipfile.ZIP_STORED)
        if byteorder is not None:
            z.writestr(entry(prefix + "/byteorder"), byteorder)
        for key, data in storages:
            z.writestr(entry(prefix + "/data/" + key), data)
        z.writestr(entry(prefix + "/version"), b"3\n")  # torch.load requires it


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
             craft({"w": TensorRef(StorageRef("0", torch.QInt8Storage, 16), 0, (2,), (1,))}), [("0", four)])
    write_pt("big_endian.pt", ok, [("0", four)], byteorder=b"big")
    write_pt("deflated_pkl.pt", ok, [("0", four)], compress_pkl=True)
    with zipfile.ZipFile(path("no_data_pkl.pt"), "w") as z:
        z.writestr(entry("archive/version"), b"3\n")

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


# ---------------------------------------------------------------------------------------------
# The allowlist (issue 12 item 12): one fixture per construct torch's weights-only unpickler
# accepts by default. Each must load with torch.load(weights_only=True); the loaded object is
# recorded in allowlist.json as a tagged tree that the Swift tests compare with what they read.

allow_values = {}
V3_DTYPES = {torch.uint16: "u16", torch.uint32: "u32", torch.uint64: "u64", torch.complex32: "c32",
             torch.float8_e5m2: "f8_e5m2", torch.float8_e4m3fn: "f8_e4m3fn",
             torch.float8_e5m2fnuz: "f8_e5m2fnuz", torch.float8_e4m3fnuz: "f8_e4m3fnuz",
             torch.float8_e8m0fnu: "f8_e8m0fnu", torch.float4_e2m1fn_x2: "f4_e2m1fn_x2",
             torch.bits8: "bits8", torch.bits16: "bits16", torch.bits1x8: "bits1x8",
             torch.bits2x4: "bits2x4", torch.bits4x2: "bits4x2"}
DTYPES.update({torch.complex64: "c64", torch.complex128: "c128"})
DTYPES.update(V3_DTYPES)


def fbits(x):
    return struct.pack(">d", x).hex()


def tag(v):
    """The loaded object as a JSON tree of [kind, ...] nodes, in the form our reader returns it:
    torch.Size is a tuple, a device its str(), a dtype/layout/qscheme/class a global by name,
    Counter/OrderedDict a dict, bytearray bytes. Sets are compared as multisets."""
    if v is None:
        return ["None"]
    if isinstance(v, bool):
        return ["bool", v]
    if isinstance(v, int):
        return ["int", str(v)]
    if isinstance(v, float):
        return ["float", fbits(v)]
    if isinstance(v, complex):
        return ["complex", fbits(v.real), fbits(v.imag)]
    if isinstance(v, str):
        return ["str", v]
    if isinstance(v, (bytes, bytearray)):
        return ["bytes", bytes(v).hex()]
    if isinstance(v, torch.Tensor):
        return ["tensor", DTYPES[v.dtype], list(v.shape), isinstance(v, torch.nn.Parameter)]
    if isinstance(v, torch.storage.TypedStorage):
        return ["storage", DTYPES[v.dtype], v.size()]
    if isinstance(v, torch.UntypedStorage):
        return ["storage", "u8", v.nbytes()]
    if isinstance(v, torch.device):
        return ["str", str(v)]
    if isinstance(v, (torch.dtype, torch.layout, torch.qscheme)):
        return ["global", str(v)]
    if isinstance(v, torch.serialization.StorageType):
        return ["global", "torch." + torch.storage._dtype_to_storage_type_map()[v.dtype]]
    if isinstance(v, type):
        return ["global", f"{v.__module__}.{v.__name__}"]
    if isinstance(v, tuple):  # torch.Size too
        return ["tuple", [tag(x) for x in v]]
    if isinstance(v, list):
        return ["list", [tag(x) for x in v]]
    if isinstance(v, (set, frozenset)):
        return ["set", [tag(x) for x in v]]
    if isinstance(v, dict):  # OrderedDict, Counter
        return ["dict", [[tag(k), tag(x)] for k, x in v.items()]]
    raise TypeError(f"no tag for {type(v)}")


def save_allowed(fname, obj, check=None):
    """torch.save, then torch.load(weights_only=True) must accept it; records tensors and the tree."""
    torch.save(obj, path(fname))
    load_allowed(fname, check)


def load_allowed(fname, check=None):
    loaded = torch.load(path(fname), weights_only=True)
    if check is not None:
        check(loaded)
    record(fname, loaded)
    allow_values[fname] = tag(loaded)


def pickle_globals(fname):
    """The GLOBAL names in a fixture's data.pkl (to assert which construct it exercises)."""
    import pickletools
    z = zipfile.ZipFile(path(fname))
    pkl = z.read([n for n in z.namelist() if n.endswith("/data.pkl")][0])
    names = set()
    for op, arg, _ in pickletools.genops(pkl):
        if op.name == "GLOBAL":
            names.add(arg.replace(" ", ".").replace("__builtin__.", "builtins."))
    return names, pkl


def pickle_ops(fname):
    """The opcode names of a fixture's data.pkl, in order."""
    import pickletools
    _, pkl = pickle_globals(fname)
    return [op.name for op, _, _ in pickletools.genops(pkl)]


def expect_globals(fname, *names):
    have, _ = pickle_globals(fname)
    missing = [n for n in names if n not in have]
    assert not missing, f"{fname}: pickle lacks {missing} (has {sorted(have)})"


class NewObjPickler(pickle._Pickler):
    """Pure-Python pickler that writes NEWOBJ for NewObj markers (cls.__new__(cls, *args) in torch)
    and storage persistent ids for StorageRef, like CraftPickler."""

    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            return ("storage", obj.stype, obj.key, "cpu", obj.numel)
        return None

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, NewObj):
            self.save_reduce(copyreg.__newobj__, (obj.cls,) + obj.args, obj=None)
            return
        super().save(obj, save_persistent_id)


class NewObj:
    def __init__(self, cls, *args):
        self.cls, self.args = cls, args


class TensorRefV1:
    """The 4-argument torch._utils._rebuild_tensor of old torch versions."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride))

    def __reduce__(self):
        return (torch._utils._rebuild_tensor, self.args)


class TensorRefBuild:
    """A tensor whose pickle ends with BUILD(state), as legacy torch wrote `Tensor.__setstate__`."""

    def __init__(self, ref, state):
        self.ref, self.state = ref, state

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.ref.args, self.state)


def short_binstring(pkl):
    """Rewrites every short BINUNICODE of ASCII text as SHORT_BINSTRING (how a Python 2 pickler
    wrote str); torch.load decodes those as utf-8 text."""
    import pickletools
    out = bytearray()
    ops = list(pickletools.genops(pkl))
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(pkl)
        if op.name == "BINUNICODE" and len(arg.encode()) < 256 and arg.isascii():
            out += b"U" + bytes([len(arg)]) + arg.encode()
        else:
            out += pkl[pos:end]
    return bytes(out)


def allowlist_fixtures():
    g = torch.Generator().manual_seed(12)

    # Every dtype torch.save writes with a legacy typed storage (torch.<T>Storage), rebuilt by
    # torch._utils._rebuild_tensor_v2.
    typed = collections.OrderedDict()
    typed["f32"] = torch.tensor([1.5, -2.0, 3.25e-8], dtype=torch.float32)
    typed["f64"] = torch.tensor([1e-300, -2.5], dtype=torch.float64)
    typed["f16"] = torch.tensor([0.5, -65504.0], dtype=torch.float16)
    typed["bf16"] = torch.tensor([1.0, -3.0e38], dtype=torch.bfloat16)
    typed["i64"] = torch.tensor([-(2**62), 7], dtype=torch.int64)
    typed["i32"] = torch.tensor([-(2**31), 2**31 - 1], dtype=torch.int32)
    typed["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    typed["i8"] = torch.tensor([-128, 5], dtype=torch.int8)
    typed["u8"] = torch.tensor([0, 200], dtype=torch.uint8)
    typed["bool"] = torch.tensor([True, False])
    typed["c64"] = torch.tensor([1 + 2j, -0.5 - 4j], dtype=torch.complex64)
    typed["c128"] = torch.tensor([[3 - 1j], [1e-200 + 1e200j]], dtype=torch.complex128)
    save_allowed("allow_typed_storages.pt", typed)
    expect_globals("allow_typed_storages.pt", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage",
                   "torch.DoubleStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.LongStorage",
                   "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage", "torch.ByteStorage",
                   "torch.BoolStorage", "torch.ComplexFloatStorage", "torch.ComplexDoubleStorage")

    # Every dtype of torch.storage._new_dtypes(): an UntypedStorage (bytes) and the dtype, rebuilt by
    # torch._utils._rebuild_tensor_v3. Built from raw bytes where torch has no constructor.
    raw = torch.tensor([0x00, 0x01, 0x38, 0x3C, 0x40, 0x7B, 0xB8, 0xC4], dtype=torch.uint8)  # no NaN in any f8
    v3 = collections.OrderedDict()
    v3["u16"] = torch.tensor([0, 65535, 1234], dtype=torch.uint16)
    v3["u32"] = torch.tensor([0, 2**32 - 1, 70000], dtype=torch.uint32)
    v3["u64"] = torch.tensor([0, 2**53, 2**63 + 2**11], dtype=torch.uint64)
    v3["c32"] = torch.tensor([1.0, 2.0, -0.5, 0.25], dtype=torch.float16).view(torch.complex32)
    for name in ["float8_e5m2", "float8_e4m3fn", "float8_e5m2fnuz", "float8_e4m3fnuz", "float4_e2m1fn_x2",
                 "bits8", "bits1x8", "bits2x4", "bits4x2"]:
        v3[name] = raw.clone().view(getattr(torch, name))
    # e8m0: 2^(byte − 127); 0xFF (NaN) left out so values compare exactly
    v3["float8_e8m0fnu"] = torch.tensor([0, 1, 127, 128, 200, 254], dtype=torch.uint8).view(torch.float8_e8m0fnu)
    v3["bits16"] = raw.clone().view(torch.bits16)
    save_allowed("allow_untyped_storages.pt", v3)
    expect_globals("allow_untyped_storages.pt", "torch._utils._rebuild_tensor_v3", "torch.storage.UntypedStorage")

    # nn.Parameter: torch._utils._rebuild_parameter, and _rebuild_parameter_with_state when it has
    # Python attributes.
    frozen = torch.nn.Parameter(torch.tensor([1.0, 2.0]), requires_grad=False)
    tagged = torch.nn.Parameter(torch.tensor([[3.0], [4.0]]))
    tagged.note = "kept by _rebuild_parameter_with_state"
    save_allowed("allow_parameter.pt", {"trainable": torch.nn.Parameter(torch.randn(2, 3, generator=g)),
                                        "frozen": frozen})
    expect_globals("allow_parameter.pt", "torch._utils._rebuild_parameter")
    save_allowed("allow_parameter_with_state.pt", {"tagged": tagged},
                 check=lambda d: d["tagged"].note == tagged.note or sys.exit("state lost"))
    expect_globals("allow_parameter_with_state.pt", "torch._utils._rebuild_parameter_with_state")

    # A tensor with a Python attribute: torch._tensor._rebuild_from_type_v2(func, torch.Tensor, args, state).
    t = torch.tensor([5.0, 6.0, 7.0])
    t.unit = "Hz"
    save_allowed("allow_tensor_with_state.pt", {"t": t})
    expect_globals("allow_tensor_with_state.pt", "torch._tensor._rebuild_from_type_v2", "torch.Tensor")

    # module.state_dict(): collections.OrderedDict, its _metadata set by BUILD.
    torch.manual_seed(12)
    net = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.BatchNorm1d(2))
    sd = net.state_dict()
    assert hasattr(sd, "_metadata")
    save_allowed("allow_state_dict_metadata.pt", sd)
    assert "BUILD" in pickle_ops("allow_state_dict_metadata.pt")

    # bytes (protocol 2: _codecs.encode(str, "latin1")) and bytearray (builtins.bytearray). An empty
    # b"" is left out: protocol 2 writes it as builtins.bytes(), which torch's list refuses (ours too).
    save_allowed("allow_bytes.pt", {"ascii": b"weights", "all": bytes(range(256)),
                                    "array": bytearray(b"\x00\x80\xffba"), "empty_array": bytearray()})
    expect_globals("allow_bytes.pt", "_codecs.encode", "builtins.bytearray")

    # Plain values and containers.
    shared = [1, 2]
    save_allowed("allow_containers.pt", collections.OrderedDict([
        ("none", None), ("true", True), ("false", False),
        ("ints", [0, 255, 256, 65535, 65536, -1, -(2**31), 2**31 - 1, 2**31, 2**63 - 1, -(2**63), 2**70, -(2**70)]),
        ("floats", [0.0, 1.5, -2.25e-300, 1e300, float("inf"), float("-inf")]),
        ("complex", complex(1.5, -2.0)),
        ("str", "plain"), ("unicode", "héllo ✓ 音"), ("empty_str", ""),
        ("tuples", [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)]),
        ("lists", [[], [None], [[[]]]]),
        ("set", {3, 1, 2}), ("empty_set", set()),
        ("dict", {"a": 1, 2: "b", (3, 4): [5], None: True, 1.5: False}),
        ("nested", {"x": [{"y": ({"z": [1, (2, {3})]},)}]}),
        ("counter", collections.Counter({"a": 3, "b": 1})),
        ("ordered", collections.OrderedDict([("z", 1), ("a", 2)])),
        ("shared", [shared, shared]),
    ]))
    expect_globals("allow_containers.pt", "builtins.set", "builtins.complex", "collections.Counter",
                   "collections.OrderedDict")

    # torch values: Size, device, every dtype, layouts (torch.serialization._get_layout), qschemes,
    # tensor and storage classes.
    # every dtype torch exposes that its allowlist names (all of them in torch 2.13)
    dtypes = sorted({v for v in vars(torch).values() if isinstance(v, torch.dtype)
                     and str(v) in allowed_globals()}, key=str)
    save_allowed("allow_torch_values.pt", collections.OrderedDict([
        ("size", torch.Size([2, 3, 4])), ("size0", torch.Size([])),
        ("devices", [torch.device("cpu"), torch.device("cuda", 1), torch.device("meta")]),
        ("dtypes", dtypes),
        ("layouts", [torch.strided, torch.sparse_coo, torch.sparse_csr]),
        ("qschemes", [torch.per_tensor_affine, torch.per_channel_symmetric]),
        ("classes", [torch.Tensor, torch.nn.Parameter, torch.FloatTensor, torch.FloatStorage,
                     torch.UntypedStorage]),
    ]))
    expect_globals("allow_torch_values.pt", "torch.Size", "torch.device", "torch.serialization._get_layout",
                   "torch.float32", "torch.per_tensor_affine", "torch.FloatTensor")

    # Storages saved by themselves (persistent ids outside a tensor).
    base = torch.tensor([1.0, 2.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage is deprecated
        save_allowed("allow_storages_as_values.pt", {"untyped": base.untyped_storage(),
                                                     "typed": torch.tensor([1, 2], dtype=torch.int16).storage()})

    # Crafted (not what current torch.save writes, but torch.load(weights_only=True) accepts it):
    four = struct.pack("<4f", 1, 2, 3, 4)
    # the 4-argument _rebuild_tensor of old torch,
    write_pt("allow_rebuild_tensor_v1.pt",
             craft({"w": TensorRefV1(StorageRef("0", torch.FloatStorage, 4), 1, (3,), (1,))}), [("0", four)])
    load_allowed("allow_rebuild_tensor_v1.pt")
    # str written as SHORT_BINSTRING (a Python 2 pickler), keys and persistent ids alike,
    ok = craft({"w": TensorRef(StorageRef("0", torch.FloatStorage, 4), 0, (2, 2), (2, 1)), "name": "py2"})
    pkl2 = short_binstring(ok)
    assert b"U\x07storage" in pkl2
    write_pt("allow_short_binstring.pt", pkl2, [("0", four)])
    assert "BINUNICODE" not in pickle_ops("allow_short_binstring.pt")
    load_allowed("allow_short_binstring.pt")
    # BUILD on a tensor with a 4-tuple state: Tensor.set_(storage, offset, size, stride) (legacy),
    write_pt("allow_build_tensor_set.pt", craft({"w": TensorRefBuild(
        TensorRef(StorageRef("0", torch.FloatStorage, 4), 0, (4,), (1,)),
        (StorageRef("0", torch.FloatStorage, 4), 1, (2,), (1,)))}), [("0", four)])
    load_allowed("allow_build_tensor_set.pt", check=lambda d: d["w"].tolist() == [2.0, 3.0] or sys.exit("set_"))
    assert "BUILD" in pickle_ops("allow_build_tensor_set.pt")
    # NEWOBJ (cls.__new__(cls, *args)): containers come out empty whatever the arguments, complex /
    # torch.Size / torch.device take them, nn.Parameter(data) is called.
    buf = io.BytesIO()
    NewObjPickler(buf, protocol=2).dump(collections.OrderedDict([
        ("ordered", NewObj(collections.OrderedDict)), ("counter", NewObj(collections.Counter)),
        ("set", NewObj(set, [1, 2])), ("bytearray", NewObj(bytearray, b"ab")),
        ("complex", NewObj(complex, 1.0, -2.0)), ("size", NewObj(torch.Size, (5, 6))),
        ("device", NewObj(torch.device, "cuda", 2)),
        ("param", NewObj(torch.nn.Parameter, TensorRef(StorageRef("0", torch.FloatStorage, 4), 0, (4,), (1,)))),
    ]))
    write_pt("allow_newobj.pt", buf.getvalue(), [("0", four)])
    assert pickle_ops("allow_newobj.pt").count("NEWOBJ") == 8
    load_allowed("allow_newobj.pt")

    # torch accepts these, our reader refuses them by name with a reason (see PickleAllowlist.refused).
    refuse = {
        "refuse_qtensor.pt": torch.quantize_per_tensor(torch.tensor([1.0, 2.0]), 0.1, 3, torch.qint8),
        "refuse_sparse.pt": torch.tensor([[0.0, 1.0], [2.0, 0.0]]).to_sparse(),
        "refuse_meta.pt": torch.empty(2, 3, device="meta"),
        "refuse_nested.pt": torch.nested.nested_tensor([torch.ones(2), torch.ones(3)]),
        "refuse_neg_bit.pt": torch._neg_view(torch.tensor([1.0, 2.0])),
        "refuse_conj_bit.pt": torch.tensor([1 + 1j]).conj(),
    }
    for fname, v in refuse.items():
        torch.save({"t": v}, path(fname))
        torch.load(path(fname), weights_only=True)

    # Refused by torch's weights-only loader too (asserted), and by ours by name.
    write_pt("evil_torch_load.pt", pickle.dumps(Evil(torch.load, "x.pt"), protocol=2))
    write_pt("evil_exec.pt", pickle.dumps(Evil(exec, "print(1)"), protocol=2))
    torch.save(torch.nn.Linear(2, 2), path("evil_whole_module.pt"))
    # frozenset: refused by torch's default list, read by ours (PickleAllowlist.beyondTorch).
    write_pt("beyond_frozenset.pt", pickle.dumps({"f": frozenset([1, 2])}, protocol=2))
    for fname in ["evil_torch_load.pt", "evil_exec.pt", "evil_whole_module.pt", "evil_os_system.pt",
                  "evil_posix_system.pt", "evil_getattr.pt", "beyond_frozenset.pt"]:
        try:
            torch.load(path(fname), weights_only=True)
        except pickle.UnpicklingError:
            continue
        raise AssertionError(f"{fname} loads in torch's weights-only mode")


def allowed_globals():
    from torch._weights_only_unpickler import _get_allowed_globals
    return sorted(_get_allowed_globals().keys())


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    good_fixtures()
    bad_fixtures()
    allowlist_fixtures()
    with open(path("expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(path("allowlist.json"), "w", encoding="utf-8") as f:
        json.dump({"torch": torch.__version__, "torch_allowed_globals": allowed_globals(),
                   "values": allow_values}, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(os.listdir(OUT))} files to {OUT}; torch {torch.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
