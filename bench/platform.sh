#!/usr/bin/env bash
# Platform figures (issue 2): time from `forge serve` (embedded store, no configuration) to the
# first 200 on /healthz; idle RSS of the forge (IDLE_SECS, 15, after start); RSS of the forge
# and, separately, of the store process after one page view; and
# requests/s of a public project's home page with wrk (-t2 -c32 -d10s).
# Usage: bench/platform.sh        (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_store_binary
apt_install wrk curl

cargo build --release --bin forge
bin=target/release/forge
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export FORGE_DATA_DIR="$data" FORGE_BIND="127.0.0.1:$port" FORGE_LOG=warn
unset FORGE_MONGODB_URI
cleanup() { kill -TERM "${pid:-}" 2>/dev/null || true; wait "${pid:-}" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

t0=$(date +%s%N)
"$bin" serve & pid=$!
until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.01; done
t1=$(date +%s%N)
echo "start to first 200 (embedded store, empty data dir): $(( (t1 - t0) / 1000000 )) ms"

# Idle: nothing asked of it but /healthz. Most of an idle node's RSS is the binary's code,
# which the kernel maps in page-cache folios, so the figure moves by a few MB with how the file
# got into the cache: for figures to compare, drop the cache first (as root:
# sync; echo 3 > /proc/sys/vm/drop_caches).
rss() { awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$1/status"; }
sleep "${IDLE_SECS:-15}"
echo "idle RSS ${IDLE_SECS:-15} s after start: forge $(rss "$pid")"

echo 'bench-password-1' | "$bin" user create --username bench --email bench@example.org >/dev/null
token=$("$bin" token create --user bench --name bench)
curl -sf -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"shortname":"bench","name":"Bench project","summary":"A public project for benchmarks"}' \
  "http://127.0.0.1:$port/rest/p"
curl -sf -o /dev/null "http://127.0.0.1:$port/p/bench/"

sleep 2
store_pid=$(pgrep -f "secantusd-rs.*$data" | head -1)
echo "RSS after one page view: forge $(rss "$pid"), store (secantusd-rs) $(rss "$store_pid")"

echo "wrk -t2 -c32 -d10s /p/bench/ (anonymous, public project):"
wrk -t2 -c32 -d10s --latency "http://127.0.0.1:$port/p/bench/" | sed -n '/Latency Distribution/,/Transfer/p;/Requests\/sec/p'
echo "RSS after load: forge $(rss "$pid"), store $(rss "$store_pid")"
