#!/usr/bin/env bash
# Wiki figures (issue 3): requests/s and latency of viewing a 2 KB and a 50 KB markdown page
# (wrk -t2 -c32 -d10s, rendered HTML cached after the first view), the first (uncached) view
# of the 50 KB page, and the time to save an edit (200 sequential REST saves).
# Render time without the cache: cargo bench -p forge-tools --bench render
# Usage: bench/wiki.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_start

python3 - "$base" "$token" <<'PY'
import json, sys, time, statistics, urllib.request
base, token = sys.argv[1], sys.argv[2]
block = ("## Section\n\nSome *prose* with a [Home] link and a [Missing] page, `inline code`, and a "
         "link to [the docs](https://example.org/docs). More words follow so paragraphs look real.\n\n"
         "- first item\n- second item with **bold**\n\n| Name | Value |\n|------|-------|\n| alpha | 1 |\n\n"
         "```rust\nfn main() {\n    let total: u32 = (1..10).sum();\n}\n```\n\n")
def page(n):
    s = "[TOC]\n\n# Title\n\n"
    while len(s) < n:
        s += block
    return s
def put(name, text, base_version):
    req = urllib.request.Request(f"{base}/rest/p/bench/wiki/{name}", method="PUT",
        data=json.dumps({"text": text, "base_version": base_version}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)["version"]
put("Small", page(2048), 0)
put("Large", page(50 * 1024), 0)
def get(path):
    t = time.perf_counter()
    with urllib.request.urlopen(base + path) as r:
        r.read()
    return (time.perf_counter() - t) * 1000
print(f"first view of the 50 KB page (render, cache miss): {get('/p/bench/wiki/Large/'):.1f} ms")
print(f"second view of the 50 KB page (cache hit): {get('/p/bench/wiki/Large/'):.1f} ms")
v = put("Edited", "start", 0)
times = []
for i in range(200):
    t = time.perf_counter()
    v = put("Edited", page(2048) + f"\nedit {i}\n", v)
    times.append((time.perf_counter() - t) * 1000)
times.sort()
print(f"save an edit (2 KB page, REST PUT, 200 sequential): mean {statistics.mean(times):.1f} ms, "
      f"p50 {times[100]:.1f} ms, p99 {times[197]:.1f} ms")
PY

for p in Small Large; do
  echo "wrk -t2 -c32 -d10s /p/bench/wiki/$p/ (anonymous):"
  wrk -t2 -c32 -d10s --latency "$base/p/bench/wiki/$p/" | sed -n '/Latency Distribution/,/99%/p;/Requests\/sec/p;/Non-2xx/p'
done
