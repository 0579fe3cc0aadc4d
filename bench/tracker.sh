#!/usr/bin/env bash
# Tracker figures (issue 11): filing tickets (1,000 sequential REST creates; 32 concurrent
# for 10 s), the ticket list of a 10,000-ticket tracker with a filter and a sort (REST and
# page, wrk -t2 -c32 -d10s: p50/p99), and one ticket's page with comments.
# The same ticket against Fossil's: ../shared/bench/peers (forge_ticket / fossil_ticket).
# Usage: bench/tracker.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_start --admin
api() { curl -sf -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -X "$1" -d "$3" "$base$2"; }
api POST /rest/p/bench/admin/tools '{"kind":"tracker","mount":"big"}'
api POST /rest/p/bench/admin/tools '{"kind":"tracker","mount":"burst"}'

python3 - "$base" "$token" <<'PY'
import http.client, json, random, statistics, sys, time, urllib.parse
base, token = sys.argv[1], sys.argv[2]
u = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(u.hostname, u.port)
H = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
def call(method, path, body=None):
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=H)
    r = conn.getresponse(); data = r.read()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
    return json.loads(data) if data else None
# 1,000 sequential creates on one kept-alive connection.
t0 = time.perf_counter(); lat = []
for i in range(1000):
    t = time.perf_counter()
    call("POST", "/rest/p/bench/tickets/", {"summary": f"Sequential ticket {i}", "description": "Steps to reproduce:\n\n1. start\n2. crash", "labels": ["bug"]})
    lat.append((time.perf_counter() - t) * 1000)
dt = time.perf_counter() - t0; lat.sort()
print(f"create, 1,000 sequential (REST, one connection): {1000/dt:.0f} tickets/s, p50 {lat[500]:.1f} ms, p99 {lat[990]:.1f} ms")
# Comments on ticket 1, for the ticket page.
for i in range(5):
    call("POST", "/rest/p/bench/tickets/1/comments", {"text": f"Comment {i}: *still* happens with [#2] on version 1.{i}."})
# A 10,000-ticket tracker, by import (numbers 1..10,000).
rnd = random.Random(7)
statuses = ["open", "unread", "accepted", "pending", "closed", "wont-fix"]
labels = ["bug", "ui", "docs", "perf", "security", "build"]
people = ["alice", "bob", "carol", "dave", None]
words = "crash slow broken missing typo layout memory leak timeout error button page login search export".split()
tickets = [{
    "ticket_num": n,
    "summary": " ".join(rnd.choice(words) for _ in range(5)).capitalize() + f" #{n}",
    "description": " ".join(rnd.choice(words) for _ in range(15)),
    "status": rnd.choice(statuses),
    "labels": rnd.sample(labels, rnd.randint(0, 3)),
    "assigned_to": None,
    "reported_by": "bench",
    "custom_fields": {"_milestone": rnd.choice(["1.0", "2.0", "3.0"])},
    "votes_up": rnd.randint(0, 20),
} for n in range(1, 10001)]
t = time.perf_counter(); done = 0
# Five files of 2,000 (one file must fit the JSON body limit, FORGE_MAX_FORM_BYTES).
for i in range(0, 10000, 2000):
    export = {"milestones": [{"name": m} for m in ["1.0", "2.0", "3.0"]],
              "open_status_names": "open unread accepted pending", "closed_status_names": "closed wont-fix",
              "tickets": tickets[i:i + 2000]}
    done += call("POST", "/rest/p/bench/big/_import", export)["tickets"]
print(f"import 10,000 tickets (Allura JSON, 5 requests of 2,000): {time.perf_counter() - t:.1f} s ({done} tickets)")
PY

# Reads are measured once the background work of the writes above (search indexing,
# watchers' mail) is done: the search finds all 1,000 sequential tickets.
for _ in $(seq 1 600); do
  n=$(curl -sf "$base/rest/search?q=Sequential&type=ticket" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
  [ "$n" = 1000 ] && break; sleep 0.5
done
sleep 2
echo "one list request, 10,000 tickets, status:open label:bug sorted by summary: $(curl -s -o /dev/null -w '%{time_total}' "$base/rest/p/bench/big/?q=status%3Aopen+label%3Abug&sort=summary") s"
q='q=status%3Aopen+label%3Abug&sort=summary'
for path in "/rest/p/bench/big/?$q" "/p/bench/big/?$q" "/p/bench/tickets/1/"; do
  echo "wrk -t2 -c32 -d10s $path (anonymous):"
  wrk -t2 -c32 -d10s --latency "$base$path" | sed -n '/Latency Distribution/,/99%/p;/Requests\/sec/p;/Non-2xx/p'
done

lua=$(mktemp --suffix=.lua)
bench_tmp+=("$lua")
cat > "$lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"summary":"Concurrent ticket","labels":["load"]}'
LUA
echo "create, 32 concurrent for 10 s (wrk -t2 -c32, REST POST):"
wrk -t2 -c32 -d10s --latency -s "$lua" "$base/rest/p/bench/burst/" | sed -n '/Latency Distribution/,/99%/p;/Requests\/sec/p;/Non-2xx/p'
made=$(curl -sf -H "Authorization: Bearer $token" "$base/rest/p/bench/burst/?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
echo "  tickets created: $made (numbers 1..$made, each once: $(curl -sf -H "Authorization: Bearer $token" "$base/rest/p/bench/burst/?limit=1&sort=ticket_num+desc" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tickets"][0]["ticket_num"])') is the highest)"

