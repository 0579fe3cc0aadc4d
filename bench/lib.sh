# Start-up shared by the bench scripts that measure one tool over HTTP (forum.sh, tracker.sh,
# wiki.sh); sourced from the repository root, not run. Sourcing installs what they need (the
# store binary, wrk, curl); bench_start builds the release forge, serves it on a free port
# with a fresh data dir (removed on exit, with the files a script adds to bench_tmp), and
# makes the account `bench`, its token and its project `bench`. It sets bin, data, port,
# base, token and pid.

. scripts/lib.sh
ensure_store_binary
apt_install wrk curl

# More files to remove on exit.
bench_tmp=()

bench_cleanup() {
  kill -TERM "${pid:-}" 2>/dev/null || true
  wait "${pid:-}" 2>/dev/null || true
  rm -rf "${data:-}" ${bench_tmp[@]+"${bench_tmp[@]}"}
}

# bench_start [--admin]: the arguments go to `forge user create` for the account `bench`.
bench_start() {
  cargo build --release --bin forge
  bin=$PWD/target/release/forge
  data=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  export FORGE_DATA_DIR="$data" FORGE_BIND="127.0.0.1:$port" FORGE_LOG=warn
  unset FORGE_MONGODB_URI
  trap bench_cleanup EXIT
  "$bin" serve & pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.05; done
  echo 'bench-password-1' | "$bin" user create --username bench --email bench@example.org "$@" >/dev/null
  token=$("$bin" token create --user bench --name bench)
  base="http://127.0.0.1:$port"
  curl -sf -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -X POST -d '{"shortname":"bench","name":"Bench"}' "$base/rest/p"
}
