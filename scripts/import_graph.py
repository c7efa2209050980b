#!/usr/bin/env python3
"""The `crate::` import graph of one crate's modules, and its cycles.

    scripts/import_graph.py [CRATE_SRC_DIR]     (default: server/src)

A module is a file (`a/b.rs` and `a/b/mod.rs` are `a::b`). An edge A -> B means A names
`crate::B...` (in a `use` or a path) or, inside `handler/`, `super::B`. Prints each
strongly connected component with more than one module (a cycle) and exits 0; the reason
each remaining cycle is accepted is given in ARCHITECTURE.md section 2.
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "server/src"
modules = {}
for dirpath, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(dirpath, f)
        rel = os.path.relpath(path, root)[:-3].split(os.sep)
        if rel[0] == "bin" or rel in (["lib"], ["main"]):
            continue
        if rel[-1] == "mod":
            rel = rel[:-1]
        modules["::".join(rel)] = path


def resolve(name):
    """The longest known module that `name` (a::b::c) starts with."""
    parts = name.split("::")
    for n in range(len(parts), 0, -1):
        cand = "::".join(parts[:n])
        if cand in modules:
            return cand
    return None


def strip_tests(text):
    """Drops `#[cfg(test)] mod tests { ... }` (test-only imports are not layering)."""
    i = text.find("#[cfg(test)]\nmod tests")
    return text if i < 0 else text[:i]


edges = {m: set() for m in modules}
for m, path in modules.items():
    text = strip_tests(open(path, encoding="utf-8").read())
    text = re.sub(r"//[^\n]*", "", text)
    names = set()
    for g in re.finditer(r"crate::([A-Za-z_][\w:]*)(::\{([^}]*)\})?", text):
        base = g.group(1).rstrip(":")
        names.add(base)
        for item in (g.group(3) or "").split(","):
            item = item.strip().split(" ")[0]
            if item and item != "self":
                names.add(base + "::" + item)
    parent = m.rsplit("::", 1)[0] if "::" in m else ""
    for g in re.finditer(r"\bsuper::([A-Za-z_][\w:]*)(::\{([^}]*)\})?", text):
        base = (parent + "::" if parent else "") + g.group(1).rstrip(":")
        names.add(base)
        for item in (g.group(3) or "").split(","):
            item = item.strip().split(" ")[0]
            if item and item != "self":
                names.add(base + "::" + item)
    for g in re.finditer(r"\buse super::\{([^}]*)\}", text):
        for item in g.group(1).split(","):
            item = item.strip().split(" ")[0]
            if item:
                names.add((parent + "::" if parent else "") + item)
    for n in names:
        target = resolve(n)
        if target and target != m:
            edges[m].add(target)
    # A parent module depends on its submodules only through `mod` (not an import).

# Tarjan's strongly connected components.
index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]
sys.setrecursionlimit(10000)


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        sccs.append(sorted(comp))


for v in sorted(modules):
    if v not in index:
        visit(v)

cycles = [c for c in sccs if len(c) > 1]
print(f"{len(modules)} modules, {sum(len(e) for e in edges.values())} import edges")
if not cycles:
    print("no cycles")
for c in sorted(cycles, key=len, reverse=True):
    print(f"cycle of {len(c)} modules: {', '.join(c)}")
    for m in c:
        inside = sorted(e for e in edges[m] if e in c)
        print(f"  {m} -> {', '.join(inside)}")
