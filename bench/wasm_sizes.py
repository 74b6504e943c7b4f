#!/usr/bin/env python3
"""Per-crate code size of a wasm module, from its `name` section and code section.

    python3 bench/wasm_sizes.py target/wasm32-unknown-unknown/release/rise_registry_broker.wasm

Cargo's release output (before wasm-bindgen and wasm-opt) keeps function names; each
function body's size is attributed to the first path segment of its (demangled) name.
Sizes are before wasm-opt, so they add up to more than the shipped module; the shares
are what matter.
"""
import os
import re
import sys
from collections import Counter


def leb(data, i):
    result = shift = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, i


def sections(data):
    i = 8
    while i < len(data):
        sid = data[i]
        size, i = leb(data, i + 1)
        yield sid, data[i:i + size]
        i += size


def main(path):
    data = open(path, "rb").read()
    imports = 0
    bodies, names = [], {}
    for sid, payload in sections(data):
        if sid == 2:  # imports: count imported functions (they shift function indices)
            n, j = leb(payload, 0)
            for _ in range(n):
                for _ in range(2):
                    ln, j = leb(payload, j)
                    j += ln
                kind = payload[j]
                j += 1
                if kind == 0:
                    imports += 1
                    _, j = leb(payload, j)
                elif kind == 1:
                    j += 1
                    flags, j = leb(payload, j)
                    _, j = leb(payload, j)
                    if flags & 1:
                        _, j = leb(payload, j)
                elif kind == 2:
                    flags, j = leb(payload, j)
                    _, j = leb(payload, j)
                    if flags & 1:
                        _, j = leb(payload, j)
                elif kind == 3:
                    j += 2
                else:
                    _, j = leb(payload, j)
        elif sid == 10:
            n, j = leb(payload, 0)
            for _ in range(n):
                size, j2 = leb(payload, j)
                bodies.append(size + (j2 - j))
                j = j2 + size
        elif sid == 0:
            ln, j = leb(payload, 0)
            if payload[j:j + ln] != b"name":
                continue
            j += ln
            while j < len(payload):
                sub = payload[j]
                size, j = leb(payload, j + 1)
                if sub == 1:
                    n, k = leb(payload, j)
                    for _ in range(n):
                        idx, k = leb(payload, k)
                        ln, k = leb(payload, k)
                        names[idx] = payload[k:k + ln].decode("utf-8", "replace")
                        k += ln
                j += size
    per_crate = Counter()
    for i, size in enumerate(bodies):
        per_crate[crate_of(names.get(imports + i, "?"))] += size
    total = sum(per_crate.values())
    print(f"| crate | code bytes (pre wasm-opt) | share |\n|---|---|---|")
    for crate, size in per_crate.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 25):
        print(f"| {crate} | {size} | {100 * size / total:.1f} % |")
    print(f"| **total** | {total} | 100 % |")
    # LARGEST=N: the N largest function bodies (V8 compiles each lazily on its first
    # call, so a huge one is paid for on the cold path).
    largest = int(os.environ.get("LARGEST", "0"))
    if largest:
        print(f"\n| function | body bytes |\n|---|---|")
        ranked = sorted(range(len(bodies)), key=lambda i: -bodies[i])[:largest]
        for i in ranked:
            print(f"| {names.get(imports + i, '?')[:110]} | {bodies[i]} |")


def crate_of(name):
    """The crate a (legacy `_ZN…` or v0 `_R…`) mangled symbol belongs to."""
    if name.startswith("_R"):  # v0: the first crate root is `C[s<disambiguator>_]<len><name>`
        m = re.search(r"C(?:s[0-9A-Za-z]*_)?(\d+)", name)
        if m:
            ln = int(m.group(1))
            return name[m.end():m.end() + ln]
    m = re.match(r"_ZN(\d+)", name)
    if m:
        ln = int(m.group(1))
        first = name[m.end():m.end() + ln]
        inner = re.match(r"_?(?:\$[A-Z]+\$|\$u20\$|mut|dyn)*([A-Za-z_][A-Za-z0-9_]*)\.\.", first)
        return inner.group(1) if inner else first
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)(?:\.\.|::)", name)
    if m:
        return m.group(1)
    return "(unmangled: intrinsics, wasm-bindgen glue)"


if __name__ == "__main__":
    main(sys.argv[1])
