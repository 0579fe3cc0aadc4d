#!/usr/bin/env bash
# Analytics figures (statistics), each beside its target, against a store of its own:
#   1. ingestion: 1,000,000 events through EventLog::record (the producer never lets the
#      queue overflow), events/s until flush returns, and dropped (must be 0);
#   2. aggregation: run_analytics over 1,000,000 events not aggregated yet, events/s (once
#      over the events of step 1, all of today; once over 1,000,000 spread over 365 days,
#      loaded first through the code of `forge events load`, whose rate is shown too);
#   3. /q latency: a 365-day series of one public project, anonymous, 2,000 sequential
#      requests on one keep-alive connection: p50 (target < 2 ms), p99; then wrk -t2 -c32
#      for 10 s on the same URL (throughput and latency under concurrency);
#   4. live: 1,000 WebSockets on /p/<project>/stats/live, then events for that project and
#      an aggregation run: time until the last socket got the update (target <= 1 s);
# then what the store does alone (reading events by id, guarded upserts, insert_many), the
# bounds of the figures above.
# The program is forge-web/benches/analytics.rs (release build, `cargo bench` profile); it
# makes a fresh database with 100 projects and drops it at the end.
#
# Usage: bench/analytics.sh
#   BENCH_EVENTS (1000000), BENCH_WS_CLIENTS (1000), BENCH_Q_REQUESTS (2000) to change sizes;
#   KEEP=1 keeps the store's folder. Takes a few minutes; run it alone (it uses every core).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_store_binary
apt_install wrk python3

# 1,000 sockets each way, plus the store's: more than the usual soft limit of 1,024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true

echo "building the benchmark (release)..." >&2
exe=$(cargo bench -p forge-web --bench analytics --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    try: m = json.loads(l)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "analytics":
        print(m["executable"])')
if [ -z "$exe" ] || [ ! -x "$exe" ]; then
  cargo bench -p forge-web --bench analytics --no-run # shows the error
  echo "the benchmark did not build" >&2
  exit 1
fi

work=$(mktemp -d /tmp/forge-bench-analytics.XXXXXX)
store_pid="" bench_pid=""
cleanup() {
  for p in $bench_pid $store_pid; do
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT

# The store: a fresh one on a free port, as scripts/test starts it.
secantusd-rs --host 127.0.0.1 --port 0 --storage-path "$work/store" --cache-size 1G \
  --log-level WARNING >"$work/store.log" 2>&1 &
store_pid=$!
port=""
for _ in $(seq 1 300); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/store.log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$store_pid" 2>/dev/null || { cat "$work/store.log" >&2; echo "store failed to start" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "store did not report its port" >&2; exit 1; }
export BENCH_MONGODB_URI="mongodb://127.0.0.1:$port/?directConnection=true"
export BENCH_HOLD_FILE="$work/q-url"
export FORGE_LOG="${FORGE_LOG:-warn}"

started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"$exe" >"$work/figures" &
bench_pid=$!
# While the program holds on after its own /q figures, wrk loads the same URL.
while kill -0 "$bench_pid" 2>/dev/null; do
  if [ -s "$BENCH_HOLD_FILE" ]; then
    url=$(cat "$BENCH_HOLD_FILE")
    wrk -t2 -c32 -d10s --latency "$url" >"$work/wrk" 2>&1 || true
    rm -f "$BENCH_HOLD_FILE"
  fi
  sleep 0.2
done
rc=0
wait "$bench_pid" || rc=$?
bench_pid=""
[ "$rc" -eq 0 ] || echo "the benchmark program failed (exit $rc)" >&2

if [ -s "$work/wrk" ]; then
  awk -F'\t' -v OFS='\t' '
    /Requests\/sec/ { rps = $0; sub(/.*:[ ]*/, "", rps) }
    /^ +50%/ { split($0, a, " "); p50 = a[2] }
    /^ +99%/ { split($0, a, " "); p99 = a[2] }
    /Non-2xx/ { bad = $0; sub(/.*:[ ]*/, "", bad) }
    END { if (rps != "") print "FIGURE", "/q under wrk -t2 -c32 -d10s (req/s, p50, p99)",
            rps " req/s, p50 " p50 ", p99 " p99 (bad ? ", NON-2XX " bad : ""), "-", "-" }
  ' "$work/wrk" >>"$work/figures"
fi

echo
echo "analytics benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(( $(date +%s) - started )) s"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "load:    $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after (1/5/15 min; other work on the machine skews every figure)"
echo "store:   $(secantusd-rs --version 2>&1 | head -1) (cache 1G, storage under /tmp)"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' + uncommitted changes')"
echo
grep '^FIGURE' "$work/figures" | cut -f2- | {
  printf '%s\t%s\t%s\t%s\n' "figure" "value" "target" ""
  cat
} | column -t -s $'\t'
exit "$rc"
