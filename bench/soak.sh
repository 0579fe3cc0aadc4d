#!/usr/bin/env bash
# Soak and faults: mixed traffic against the local cluster (deploy/local-cluster.sh: store,
# RabbitMQ, two web nodes behind HAProxy, two workers) for SOAK_SECONDS (600) at 80% of the
# peak measured just before (the second half of a minute at full speed, over the time until
# the tasks it queued were done too: what the cluster sustains, not a warm start), while
#   at 1/4 of the run  the store is killed (SIGKILL) and started again 5 s later,
#   at 1/2            RabbitMQ is restarted (stop_app, 5 s, start_app),
#   at 3/4            worker 1 is killed (SIGKILL) and started again 10 s later.
# Traffic (forge-web/benches/soak.rs), nine reads to one write: page views, searches, REST
# reads, wiki edits, ticket filings, and a git push every 5 s. Report: requests, errors by kind with when they happened
# (beside the fault times, to say why), p50/p99 per 10 s, RSS of every process at the start
# and the end, tasks lost (every task recorded during the run must complete) and writes lost
# (every acknowledged edit, ticket and push read back at the end).
#
# Usage: bench/soak.sh           (SOAK_SECONDS, SOAK_CONNECTIONS (32), SOAK_PEAK_SECONDS (60))
# Writes its report to bench/results/soak-<date>.md (and .json); takes SOAK_SECONDS + ~2 min.
# Run it alone: it restarts the machine's RabbitMQ application.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_store_binary
apt_install haproxy rabbitmq-server curl python3 git

seconds=${SOAK_SECONDS:-600}
peak_seconds=${SOAK_PEAK_SECONDS:-60}
export SOAK_CONNECTIONS=${SOAK_CONNECTIONS:-32}

echo "building (release)..." >&2
cargo build --release --bin forge
cargo bench -p forge-web --bench soak --no-run

# A store of the cluster's own (it is killed), so no FORGE_MONGODB_URI.
unset FORGE_MONGODB_URI FORGE_AMQP_URL
export CLUSTER_DIR
CLUSTER_DIR=$(mktemp -d)
export FORGE_BIN=$PWD/target/release/forge FORGE_LOG=warn
finish() { deploy/local-cluster.sh down >/dev/null 2>&1 || true; }
trap finish EXIT
deploy/local-cluster.sh up >&2
# shellcheck source=/dev/null
. "$CLUSTER_DIR/cluster.env"
token=$(cat "$CLUSTER_DIR/admin.token")
out=$CLUSTER_DIR/soak
mkdir -p "$out" bench/results

curl -sf -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -X POST -d '{"shortname":"soak","name":"Soak"}' "$PROXY_URL/rest/p"
git_url="http://admin:$token@${PROXY_URL#http://}/git/p/soak/code.git"
work=$out/work
git init -q -b main "$work"
git -C "$work" -c user.name=Soak -c user.email=soak@example.org commit -q --allow-empty -m start
git -C "$work" push -q "$git_url" HEAD:refs/heads/soak

export SOAK_BASE=$PROXY_URL SOAK_TOKEN=$token SOAK_PROJECT=soak SOAK_OUT=$out \
  SOAK_GIT_URL=$git_url SOAK_GIT_WORK=$work SOAK_MONGODB_URI=$MONGODB_URI SOAK_DB=$DB_NAME

# RSS (MB) of every process of the cluster, one "name rss" per line.
rss() {
  local f pid
  for f in "$CLUSTER_DIR"/pids/*; do
    pid=$(cat "$f")
    awk -v n="$(basename "$f")" '/^VmRSS/ { printf "%s %.1f\n", n, $2 / 1024 }' "/proc/$pid/status" 2>/dev/null || true
  done
}

# Restarts a process as it ran: same command line and environment, same pid file.
relaunch() { # $1: name, $2: saved cmdline file, $3: saved environ file
  local args=() envs=()
  mapfile -d '' args <"$2"
  mapfile -d '' envs <"$3"
  setsid env -i "${envs[@]}" "${args[@]}" </dev/null >>"$CLUSTER_DIR/logs/$1.log" 2>&1 &
  echo $! >"$CLUSTER_DIR/pids/$1"
}

kill_and_restart() { # $1: name, $2: seconds down
  local pid
  pid=$(cat "$CLUSTER_DIR/pids/$1")
  cp "/proc/$pid/cmdline" "$out/$1.cmdline"
  cp "/proc/$pid/environ" "$out/$1.environ"
  kill -KILL "$pid"
  sleep "$2"
  relaunch "$1" "$out/$1.cmdline" "$out/$1.environ"
}

echo "measuring the peak for ${peak_seconds}s..." >&2
peak=$(cargo bench -q -p forge-web --bench soak -- peak "$peak_seconds" 2>"$out/peak.log" | awk '/^PEAK/ { print $2 }')
[ -n "$peak" ] || { cat "$out/peak.log" >&2; echo "soak: no peak figure" >&2; exit 1; }
rate=$(( peak * 8 / 10 ))
echo "peak ${peak} req/s; soaking at ${rate} req/s for ${seconds}s" >&2

rss >"$out/rss-start"
start=$(date +%s)
cargo bench -q -p forge-web --bench soak -- run "$seconds" "$rate" >"$out/result.json" 2>"$out/run.log" &
driver=$!
faults=$out/faults
: >"$faults"
at() { sleep $(( start + $1 - $(date +%s) > 0 ? start + $1 - $(date +%s) : 0 )); }

at $(( seconds / 4 ))
echo "$(( $(date +%s) - start )) store killed (SIGKILL), restarted after 5 s" >>"$faults"
kill_and_restart store 5
at $(( seconds / 2 ))
echo "$(( $(date +%s) - start )) RabbitMQ restarted (stop_app, 5 s, start_app)" >>"$faults"
as_root rabbitmqctl -q stop_app
sleep 5
as_root rabbitmqctl -q start_app
at $(( seconds * 3 / 4 ))
echo "$(( $(date +%s) - start )) worker1 killed (SIGKILL), restarted after 10 s" >>"$faults"
kill_and_restart worker1 10

wait "$driver" || { tail -n 30 "$out/run.log" >&2; echo "soak: the driver failed" >&2; exit 1; }
rss >"$out/rss-end"

stamp=$(date -u +%Y%m%dT%H%MZ)
cp "$out/result.json" "bench/results/soak-$stamp.json"
python3 - "$out" "$peak" "$rate" >"bench/results/soak-$stamp.md" <<'EOF'
import json, sys
out, peak, rate = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.load(open(f"{out}/result.json"))
def rss(name):
    d = {}
    for line in open(f"{out}/{name}"):
        k, v = line.split()
        d[k] = float(v)
    return d
start, end = rss("rss-start"), rss("rss-end")
print(f"# Soak: {r['seconds']} s at {rate} req/s (80% of a measured peak of {peak} req/s)\n")
print(f"- requests: {r['requests']} ({r['rate']:.0f}/s), {r['connections']} connections")
print(f"- errors: {r['errors']}")
print(f"- latency over the run: p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms")
print(f"- writes checked: {r['writes_checked']}, lost: {r['writes_lost']}; pushes: {r['pushes']}, lost: {r['pushes_lost']}")
tasks = r["tasks"]
lost = sum(v for k, v in tasks.items() if k != "complete")
print(f"- tasks recorded during the run: {sum(tasks.values())} ({tasks}); lost (not complete): {lost}\n")
print("## Faults (seconds from the start)\n")
for line in open(f"{out}/faults"):
    print(f"- {line.strip()}")
print("\n## Errors by kind\n\n| kind | count | first (s) | last (s) |\n|---|---|---|---|")
for k, v in r["errors_by_kind"].items():
    print(f"| {k} | {v['count']} | {v['first_s']} | {v['last_s']} |")
print("\n## Per 10 s\n\n| t (s) | requests | p50 ms | p99 ms | errors |\n|---|---|---|---|---|")
for w in r["windows"]:
    print(f"| {w['t']} | {w['requests']} | {w['p50_ms']:.2f} | {w['p99_ms']:.2f} | {w['errors'] or ''} |")
print("\n## RSS (MB)\n\n| process | start | end |\n|---|---|---|")
for k in sorted(set(start) | set(end)):
    s, e = start.get(k), end.get(k)
    print(f"| {k} | {s if s is not None else '-'} | {e if e is not None else '-'} |")
EOF
cat "bench/results/soak-$stamp.md"
