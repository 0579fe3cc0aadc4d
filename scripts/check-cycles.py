#!/usr/bin/env python3
"""Finds import cycles between the modules of each crate of the workspace.

Usage: scripts/check-cycles.py [-v] [CRATE_DIR...]   (default: every crate of the workspace)

What a module is: every `.rs` file of a crate's library (`src/lib.rs` and the files reached
from it through `mod x;` declarations) is one module. Nothing is folded: a folder such as
`forge-tools/src/tools/wiki/` is several modules (its `mod.rs` and each file beside it), and
a `mod.rs` that uses a file of its folder while that file uses the `mod.rs` is a cycle like
any other. Inline modules (`mod tests { ... }`) belong to their file. Folding can be asked
for per crate in FOLD below (a folder listed there counts as one module) should a crate be
organised that way; none is today. `src/main.rs` and `src/bin/` are separate crates and are
not read.

What an edge is: module A refers to module B when A's code names a path into B, in a `use`
(including `pub use`) or anywhere in the code: `crate::b::Item`, `super::b::item()`,
`self::b::X`, or `b::x` where `b` is a module declared in A. A path goes to the file that
defines the item: `crate::b::c::Item` goes to `b/c.rs` when that file exists, and a name a
module only re-exports (`pub use inner::Item;`) is followed to where it comes from, so
`use crate::Forge` is an edge to the module defining `Forge`, not to `lib.rs`. A `mod b;`
declaration alone is not an edge (containment is not use). Comments and string literals are
ignored; method calls (`forge.tools()`) are not paths and are not seen.

Output: each strongly connected component with more than one module, with the references
that tie it together (file:line). Exit status 1 when there is any, 0 otherwise.
"""

from __future__ import annotations

import os
import re
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["forge-tools", "forge-tasks", "forge-web"]
# crate dir -> folders (module paths, `::`-separated) each counted as one module.
FOLD: dict[str, list[str]] = {}

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
KEYWORDS = {"crate", "super", "self", "Self"}


def strip_code(src: str) -> str:
    """The source with comments, string and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        nxt = src[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c == "/" and nxt == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', src[i:]) and not re.match(r"\w", src[i - 1] if i else " "):
            m = re.match(r'r(#*)"', src[i:])
            end = '"' + m.group(1)
            j = src.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == "'":
            # A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
            m = re.match(r"'(\\(u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^\\'])'", src[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Module:
    def __init__(self, path: tuple[str, ...], file: str):
        self.path = path
        self.file = file
        self.is_dir_owner = file.endswith("mod.rs") or file.endswith("lib.rs")
        with open(file, encoding="utf-8") as f:
            self.raw = f.read()
        self.code = strip_code(self.raw)
        self.children: dict[str, tuple[str, ...]] = {}
        # name -> [(target path segments, scope they are relative to, line, is a re-export)]
        self.uses: dict[str, list[tuple[list[str], tuple[str, ...], int, bool]]] = defaultdict(list)
        self.globs: list[tuple[list[str], tuple[str, ...], int, bool]] = []
        self.defined: set[str] = set()
        # (start, end, name) of each inline `mod name { ... }` block.
        self.inline: list[tuple[int, int, str]] = []
        for d in re.finditer(r"(?<![A-Za-z0-9_])mod\s+(" + IDENT + r")\s*\{", self.code):
            depth, j = 1, d.end()
            while j < len(self.code) and depth:
                depth += {"{": 1, "}": -1}.get(self.code[j], 0)
                j += 1
            self.inline.append((d.start(), j, d.group(1)))

    def scope_at(self, offset: int) -> tuple[str, ...]:
        """The module path at `offset`: the file's, plus the inline modules around it."""
        inner = [name for s, e, name in sorted(self.inline) if s <= offset < e]
        return self.path + tuple(inner)

    def line_of(self, offset: int) -> int:
        return self.code.count("\n", 0, offset) + 1


def child_file(parent: Module, name: str, attr_path: str | None) -> str | None:
    base = os.path.dirname(parent.file)
    if not parent.is_dir_owner:
        base = os.path.join(base, os.path.splitext(os.path.basename(parent.file))[0])
    if attr_path:
        p = os.path.join(os.path.dirname(parent.file), attr_path)
        return p if os.path.isfile(p) else None
    for cand in (os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")):
        if os.path.isfile(cand):
            return cand
    return None


MOD_DECL = re.compile(
    r"((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;"
)


def load_crate(crate_dir: str) -> dict[tuple[str, ...], Module]:
    lib = os.path.join(crate_dir, "src", "lib.rs")
    mods: dict[tuple[str, ...], Module] = {}
    if not os.path.isfile(lib):
        return mods
    todo = [((), lib)]
    while todo:
        path, file = todo.pop()
        m = Module(path, file)
        mods[path] = m
        for d in MOD_DECL.finditer(m.code):
            attrs, name = d.group(1), d.group(2)
            pm = re.search(r'#\[path\s*=\s*"([^"]*)"\]', m.raw[d.start() : d.end()])
            f = child_file(m, name, pm.group(1) if pm else None)
            if f:
                m.children[name] = path + (name,)
                todo.append((path + (name,), f))
    for m in mods.values():
        parse_items(m)
    return mods


def expand_use_tree(tree: str) -> list[tuple[list[str], str | None]]:
    """`a::{b, c::{self, D as E}}` -> [(path, alias)], `self` kept as a segment."""
    tree = re.sub(r"\s+", "", tree)

    def split_top(s: str) -> list[str]:
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        return parts

    def walk(prefix: list[str], s: str) -> list[tuple[list[str], str | None]]:
        out: list[tuple[list[str], str | None]] = []
        if s.startswith("::"):
            s = s[2:]
        i = s.find("{")
        if i >= 0 and s.endswith("}"):
            head = [p for p in s[:i].split("::") if p]
            for part in split_top(s[i + 1 : -1]):
                out.extend(walk(prefix + head, part))
            return out
        alias = None
        if "as" in s and re.search(r"[A-Za-z0-9_*]as[A-Za-z_]", s):
            # `aasb` after whitespace removal: split on the last `as` between identifiers.
            m = re.match(r"^(.*[A-Za-z0-9_])as(" + IDENT + r")$", s)
            if m:
                s, alias = m.group(1), m.group(2)
        out.append((prefix + [p for p in s.split("::") if p], alias))
        return out

    return walk([], tree)


USE_STMT = re.compile(r"(?<![A-Za-z0-9_])(pub(?:\s*\([^)]*\))?\s+)?use\s+([^;]*);")
DEF_ITEM = re.compile(
    r"(?<![A-Za-z0-9_])(?:fn|struct|enum|trait|type|const|static|union|mod)\s+(" + IDENT + r")"
    r"|macro_rules!\s*(" + IDENT + r")"
)


def parse_items(m: Module) -> None:
    for d in DEF_ITEM.finditer(m.code):
        m.defined.add(d.group(1) or d.group(2))
    for u in USE_STMT.finditer(m.code):
        line = m.line_of(u.start())
        scope = m.scope_at(u.start())
        reexport = u.group(1) is not None
        for segs, alias in expand_use_tree(u.group(2)):
            if not segs:
                continue
            if segs[-1] == "*":
                m.globs.append((segs[:-1], scope, line, reexport))
                continue
            if segs[-1] == "self":
                segs = segs[:-1]
                if not segs:
                    continue
            name = alias or segs[-1]
            if name != "_":
                m.uses[name].append((segs, scope, line, reexport))


class Resolver:
    def __init__(self, mods: dict[tuple[str, ...], Module]):
        self.mods = mods

    def absolute(self, here: Module, scope: tuple[str, ...], segs: list[str]) -> list[str] | None:
        """Segments written in `scope` (of module `here`) as a path from the crate root; None
        if they lead outside the crate."""
        if not segs:
            return None
        if segs[0] == "crate":
            return segs[1:]
        if segs[0] == "self":
            return list(scope) + segs[1:]
        if segs[0] == "super":
            base = list(scope)
            i = 0
            while i < len(segs) and segs[i] == "super":
                if not base:
                    return None
                base.pop()
                i += 1
            return base + segs[i:]
        if scope == here.path and segs[0] in here.children:
            return list(here.path) + segs
        return None

    def target(self, abs_segs: list[str], seen: frozenset = frozenset()) -> tuple[str, ...] | None:
        """The module defining what `crate::<abs_segs>` names."""
        path: tuple[str, ...] = ()
        i = 0
        while i < len(abs_segs) and path + (abs_segs[i],) in self.mods:
            path = path + (abs_segs[i],)
            i += 1
        if i >= len(abs_segs):
            return path
        name = abs_segs[i]
        m = self.mods[path]
        key = (path, name)
        if key in seen or name in m.defined or name in KEYWORDS:
            return path
        seen = seen | {key}
        for segs, scope, _line, _re in m.uses.get(name, []):
            a = self.absolute(m, scope, segs)
            if a is not None:
                t = self.target(a + abs_segs[i + 1 :], seen)
                if t is not None:
                    return t
        for segs, scope, _line, _re in m.globs:
            a = self.absolute(m, scope, segs)
            if a is None:
                continue
            t = self.target(a + [name], seen)
            if t is not None and t != tuple(a):
                return self.target(a + abs_segs[i:], seen)
        return path


PATH_EXPR = re.compile(r"(?<![A-Za-z0-9_:])((?:" + IDENT + r")(?:\s*::\s*" + IDENT + r")+)")


def edges_of(m: Module, res: Resolver) -> list[tuple[tuple[str, ...], int, str]]:
    found = []
    # `use` statements, each imported path.
    spans = [(u.start(), u.end()) for u in USE_STMT.finditer(m.code)]
    # The module's own code: neither `use` statements nor `mod x;` declarations.
    decls = spans + [(d.start(), d.end()) for d in MOD_DECL.finditer(m.code)]
    decls.sort()
    outside = "".join(
        m.code[a:b] for a, b in zip([0] + [e for _, e in decls], [s for s, _ in decls] + [len(m.code)])
    )
    for name, entries in list(m.uses.items()) + [("*", m.globs)]:
        for segs, scope, line, reexport in entries:
            # A re-export is a name passed through, not a use: it counts only when the
            # module's own code uses the name too.
            if reexport and (name == "*" or not re.search(r"(?<![A-Za-z0-9_])" + name + r"(?![A-Za-z0-9_])", outside)):
                continue
            a = res.absolute(m, scope, segs)
            if a is None:
                continue
            t = res.target(a)
            if t is not None:
                found.append((t, line, "use " + "::".join(segs)))
    # Paths in code.
    for p in PATH_EXPR.finditer(m.code):
        if any(s <= p.start() < e for s, e in spans):
            continue
        segs = [s.strip() for s in p.group(1).split("::")]
        if segs[0] not in ("crate", "super", "self") and segs[0] not in m.children:
            continue
        a = res.absolute(m, m.scope_at(p.start()), segs)
        if a is None:
            continue
        t = res.target(a)
        if t is not None:
            found.append((t, m.line_of(p.start()), "::".join(segs)))
    return found


def fold(path: tuple[str, ...], folds: list[tuple[str, ...]]) -> tuple[str, ...]:
    for f in folds:
        if path[: len(f)] == f:
            return f
    return path


def sccs(nodes, graph):
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def strong(v):
        work = [(v, iter(sorted(graph.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            strong(v)
    return out


def name_of(crate: str, path: tuple[str, ...]) -> str:
    return crate.replace("-", "_") + ("::" + "::".join(path) if path else "")


def check(crate_dir: str, verbose: bool) -> int:
    crate = os.path.basename(os.path.normpath(crate_dir))
    mods = load_crate(crate_dir)
    if not mods:
        print(f"{crate}: no src/lib.rs, skipped")
        return 0
    folds = [tuple(f.split("::")) for f in FOLD.get(crate, [])]
    res = Resolver(mods)
    graph: dict[tuple[str, ...], set] = defaultdict(set)
    why: dict[tuple, list[str]] = defaultdict(list)
    for m in mods.values():
        a = fold(m.path, folds)
        for t, line, text in edges_of(m, res):
            b = fold(t, folds)
            if a == b:
                continue
            graph[a].add(b)
            rel = os.path.relpath(m.file, ROOT)
            why[(a, b)].append(f"{rel}:{line} {text}")
    nodes = {fold(p, folds) for p in mods}
    cycles = [c for c in sccs(nodes, graph) if len(c) > 1]
    if verbose:
        for a in sorted(graph):
            for b in sorted(graph[a]):
                print(f"  {name_of(crate, a)} -> {name_of(crate, b)}")
    if not cycles:
        print(f"{crate}: {len(nodes)} modules, no cycles")
        return 0
    print(f"{crate}: {len(cycles)} cycle(s) among {len(nodes)} modules")
    for c in cycles:
        members = set(c)
        print("  cycle: " + ", ".join(name_of(crate, p) for p in c))
        for a in c:
            for b in sorted(graph[a] & members):
                refs = why[(a, b)]
                more = f" (+{len(refs) - 1} more)" if len(refs) > 1 else ""
                print(f"    {name_of(crate, a)} -> {name_of(crate, b)}: {refs[0]}{more}")
    return len(cycles)


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    dirs = [a for a in argv if a != "-v"] or [os.path.join(ROOT, c) for c in CRATES]
    total = sum(check(d, verbose) for d in dirs)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
