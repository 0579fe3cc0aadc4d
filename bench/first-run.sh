#!/usr/bin/env bash
# First-run cost of `scripts/run`: the time from a clean clone on a machine that has only the
# Rust toolchain (and the crates.io download cache) to the first 200 on /healthz, then the
# time of a second start (everything built), and the size of the release binary.
#
# Nothing built before is reused: the clone goes to a temporary folder, the forge builds into
# its own CARGO_TARGET_DIR, and the store server (secantusd-rs) is installed into its own
# `cargo install --root` (CARGO_INSTALL_ROOT, which scripts/lib.sh looks in and puts first on
# PATH), so both are compiled from scratch. Downloads come from ~/.cargo/registry when cached;
# set FRESH_CARGO_HOME=1 to use an empty CARGO_HOME and count the downloads too.
#
# Usage: bench/first-run.sh [REPO]
#   REPO  what to clone (default: this clone; only committed work is measured)
#
# Takes ~15 minutes of every core: run it alone. Needs git, curl, awk and python3 (scripts/run
# installs cmake with apt if missing). Stops the forge and removes its temporary folders at the
# end (keeps them with KEEP=1).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="${1:-$here}"
work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT

git clone --quiet --no-local "$repo" "$work/forge"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export CARGO_TARGET_DIR="$work/target" CARGO_INSTALL_ROOT="$work/store-root"
export FORGE_BIND="127.0.0.1:$port" FORGE_LOG=warn
unset FORGE_MONGODB_URI FORGE_CONFIG FORGE_DATA_DIR FORGE_AMQP_URL
if [ -n "${FRESH_CARGO_HOME:-}" ]; then
  # cargo and rustc stay reachable through the rustup proxies already on PATH.
  export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin" CARGO_HOME="$work/cargo-home"
fi

# Starts scripts/run in the clone (it execs the forge, so $pid ends up being the forge) and
# sets $elapsed to the seconds until /healthz answers.
time_to_healthz() {
  local log=$1 t0 t1
  t0=$(date +%s%N)
  (cd "$work/forge" && exec scripts/run) >"$log" 2>&1 &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$log" >&2
      echo "scripts/run exited before /healthz answered (log: $log)" >&2
      pid=""
      KEEP=1
      exit 1
    fi
    sleep 0.2
  done
  t1=$(date +%s%N)
  elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
}

stop_forge() {
  kill -TERM "$pid"
  wait "$pid" || true
  pid=""
}

time_to_healthz "$work/first-run.log"
first=$elapsed
stop_forge
time_to_healthz "$work/second-run.log"
second=$elapsed
stop_forge

echo "commit:            $(git -C "$work/forge" rev-parse --short HEAD)"
echo "cores:             $(nproc)"
echo "first run:         ${first} s (clone to /healthz 200: store + forge release build, start)"
echo "second run:        ${second} s (nothing to build: start only)"
echo "release binary:    $(du -h "$CARGO_TARGET_DIR/release/forge" | cut -f1)"
echo "store binary:      $(du -h "$CARGO_INSTALL_ROOT/bin/secantusd-rs" | cut -f1)"
