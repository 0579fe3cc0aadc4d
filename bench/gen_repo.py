#!/usr/bin/env python3
"""Writes a git fast-import stream of N commits over F files to stdout (deterministic).

Each commit changes a few files with a few lines each, so history and trees grow like a real
project's. Usage: gen_repo.py COMMITS FILES | git fast-import --quiet
"""
import sys

commits, files = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
state = {}
mark = 0
seed = 12345

def rnd():
    global seed
    seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
    return seed

for c in range(commits):
    changed = {}
    for _ in range(3 if c else files):
        f = rnd() % files if c else _
        lines = state.get(f, [])
        lines = lines[-40:] + [f"line {c}-{rnd() % 100000} of file {f}: some words to make it look like code();"]
        state[f] = lines
        changed[f] = lines
    out.write(b"commit refs/heads/main\n")
    ts = 1600000000 + c * 60
    out.write(f"committer Bench <bench@example.org> {ts} +0000\n".encode())
    msg = f"change {c}\n".encode()
    out.write(b"data %d\n%s" % (len(msg), msg))
    for f, lines in changed.items():
        data = ("\n".join(lines) + "\n").encode()
        out.write(f"M 100644 inline dir{f % 50}/file{f}.txt\n".encode())
        out.write(b"data %d\n%s\n" % (len(data), data))
    out.write(b"\n")
