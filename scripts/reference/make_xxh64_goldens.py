"""XXH64 test vectors from the reference implementation (PyPI `xxhash`, a binding of Yann Collet's C
code). Run: python3 scripts/reference/make_xxh64_goldens.py  → Tests/Fixtures/xxh64.json"""
import json, os, xxhash
lengths = [0, 1, 3, 4, 7, 8, 9, 15, 16, 31, 32, 33, 63, 64, 65, 100, 255, 1000, 4097]
cases = []
for n in lengths:
    data = bytes((i * 31 + 7) % 256 for i in range(n))
    for seed in (0, 12345):
        cases.append({"length": n, "seed": seed, "hash": "%016x" % xxhash.xxh64(data, seed=seed).intdigest()})
out = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "xxh64.json")
json.dump({"data": "byte i = (31*i + 7) mod 256", "cases": cases}, open(out, "w"), indent=0)
print("wrote", os.path.normpath(out))
