#!/usr/bin/env python3
"""Structure check run by scripts/test.sh (issue 17's measures).

Fails (exit 1) when, in any crate's `src/` (tests excluded):
  * a module imports, directly or through others, a module that imports it back
    (a circle among `use crate::…` / `super::` lines of one crate);
  * a crate depends on a workspace crate above it in the layering;
  * a source file is longer than 1,200 lines;
  * a function is longer than 120 lines (outside `#[cfg(test)]` modules).
Prints what it measured so the numbers can be quoted. It reads text only; it does not
build anything.
"""
import re
import sys
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_FILE = 1200
MAX_FN = 120
# Lower layers first: a crate may depend only on crates listed before it.
LAYERS = ["herald-core", "herald-store", "herald-delivery", "herald-api", "herald",
          "herald-bench", "herald-torture"]

problems = []


def rs_files(crate_dir):
    return sorted((crate_dir / "src").rglob("*.rs"))


def module_path(src, path):
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def blank_literals(text):
    """Replaces comments, strings and char literals by spaces (newlines kept), so braces
    inside them do not count."""
    out, i, n = [], 0, len(text)

    def keep_newlines(chunk):
        return "".join("\n" if ch == "\n" else " " for ch in chunk)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(keep_newlines(text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = '"' + hashes
            j = text.find(end, i + 2 + len(hashes))
            j = n if j < 0 else j + len(end)
            out.append(keep_newlines(text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(keep_newlines(text[i:j + 1]))
            i = j + 1
        elif c == "'":
            m = re.match(r"'(?:\\.[^']*|[^'\\])'", text[i:i + 12])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_tests(text):
    """Drops `#[cfg(test)]` items (a module or a function) so they count for nothing."""
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "#[cfg(test)]":
            j = i + 1
            depth, opened = 0, False
            while j < len(lines):
                depth += lines[j].count("{") - lines[j].count("}")
                if "{" in lines[j]:
                    opened = True
                if opened and depth <= 0:
                    break
                if not opened and lines[j].rstrip().endswith(";"):
                    break
                j += 1
            out.extend([""] * (j - i + 1))
            i = j + 1
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


USE_RE = re.compile(r"\b(?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+")
USE_STMT_RE = re.compile(r"\buse\s+([^;]+);")


def expand_use_tree(tree):
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"]."""
    tree = re.sub(r"\s+as\s+[A-Za-z0-9_]+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    if "{" not in tree:
        return [tree]
    head, rest = tree.split("{", 1)
    body = rest[: rest.rfind("}")]
    items, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += (ch == "{") - (ch == "}")
        cur += ch
    items.append(cur)
    out = []
    for item in items:
        if item:
            out += [head + x if x != "self" else head.rstrip(":") for x in expand_use_tree(item)]
    return out


def imports(mod, text):
    """Module paths this module names through `crate::`, `super::` or `self::` paths, in `use`
    trees and inline (the longest module prefix is resolved by the caller)."""
    paths = []
    for m in USE_STMT_RE.finditer(text):
        paths += expand_use_tree(m.group(1))
    paths += [m.group(0) for m in USE_RE.finditer(text)]
    found = set()
    for path in paths:
        parts = [p for p in path.split("::") if p]
        if not parts or parts[0] not in ("crate", "super", "self"):
            continue
        if parts[0] == "crate":
            target = parts[1:]
        else:
            base = list(mod)
            if parts[0] == "self":
                parts = parts[1:]
            while parts and parts[0] == "super":
                base = base[:-1]
                parts = parts[1:]
            target = base + parts
        found.add(tuple(target))
    return found


def check_cycles(crate, src, files):
    mods = {module_path(src, f): f for f in files}
    graph = {}
    for mod, f in mods.items():
        text = strip_tests(blank_literals(f.read_text()))
        edges = set()
        for target in imports(mod, text):
            # the longest prefix of the path that is a module of the crate
            for n in range(len(target), 0, -1):
                if target[:n] in mods:
                    t = target[:n]
                    # a module naming its own descendants or ancestors is nesting, not a use
                    if t != mod and t[: len(mod)] != mod and mod[: len(t)] != t:
                        edges.add(t)
                    break
        graph[mod] = edges
    # Tarjan's strongly connected components
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    for comp in sccs:
        names = sorted("::".join(c) or "crate" for c in comp)
        problems.append(f"{crate}: import circle among {', '.join(names)}")
    return sum(len(e) for e in graph.values())


FN_RE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?"
                   r"(?:extern\s+\"[^\"]*\"\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)")


def long_functions(path, text):
    lines = text.split("\n")
    res = []
    i = 0
    while i < len(lines):
        m = FN_RE.match(lines[i])
        if not m:
            i += 1
            continue
        depth, opened, j = 0, False, i
        while j < len(lines):
            code = lines[j]
            if not opened and code.rstrip().endswith(";") and "{" not in code:
                break  # a declaration without a body
            depth += code.count("{") - code.count("}")
            if "{" in code:
                opened = True
            if opened and depth <= 0:
                break
            j += 1
        n = j - i + 1
        res.append((n, m.group(1), i + 1))
        i += 1  # nested fns are measured too
    return res


def main():
    longest_file, longest_fn, edges = (0, ""), (0, ""), 0
    for crate in LAYERS:
        cdir = ROOT / "crates" / crate
        if not cdir.is_dir():
            continue
        manifest = tomllib.loads((cdir / "Cargo.toml").read_text())
        deps = set(manifest.get("dependencies", {}))
        for d in deps:
            if d in LAYERS and LAYERS.index(d) >= LAYERS.index(crate):
                problems.append(f"{crate} depends on {d}, which is not below it")
        files = rs_files(cdir)
        edges += check_cycles(crate, cdir / "src", files)
        for f in files:
            text = f.read_text()
            n = text.count("\n")
            rel = f.relative_to(ROOT)
            if n > longest_file[0]:
                longest_file = (n, str(rel))
            if n > MAX_FILE:
                problems.append(f"{rel}: {n} lines (limit {MAX_FILE})")
            for length, name, line in long_functions(f, strip_tests(blank_literals(text))):
                if length > longest_fn[0]:
                    longest_fn = (length, f"{rel}:{line} {name}")
                if length > MAX_FN:
                    problems.append(f"{rel}:{line}: fn {name} is {length} lines (limit {MAX_FN})")
    print(f"structure: {edges} module imports checked; longest file {longest_file[0]} lines "
          f"({longest_file[1]}); longest function {longest_fn[0]} lines ({longest_fn[1]})")
    for p in problems:
        print("  " + p)
    if problems:
        print(f"structure: {len(problems)} problem(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
