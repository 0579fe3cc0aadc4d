#!/usr/bin/env bash
# Git hosting figures (issue 4). Generates a repository of ~20,000 commits over ~2,000 files
# (git fast-import), pushes it to a forge (release build, embedded store), then measures in one
# run: a full `git clone` through the forge (wall time; peak RSS of the forge process and of
# all its children, sampled every 20 ms), the same clone through `git http-backend` served by
# lighttpd as CGI, and `git clone --no-local file://`. Then requests/s of the tree and log pages
# with wrk -t2 -c32 -d10s.
# Usage: bench/git-clone.sh [COMMITS] [FILES]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_store_binary
apt_install wrk curl lighttpd
COMMITS=${1:-20000}
FILES=${2:-2000}

cargo build --release --bin forge
bin=$PWD/target/release/forge
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); lport=$(free_port)
export FORGE_DATA_DIR="$work/forge" FORGE_BIND="127.0.0.1:$port" FORGE_LOG=warn GIT_TERMINAL_PROMPT=0
unset FORGE_MONGODB_URI
cleanup() {
  kill -TERM "${pid:-}" "${lpid:-}" 2>/dev/null || true
  wait "${pid:-}" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "generating $COMMITS commits over $FILES files..."
git init -q --bare --initial-branch=main "$work/src.git"
python3 bench/gen_repo.py "$COMMITS" "$FILES" | git --git-dir="$work/src.git" fast-import --quiet
git --git-dir="$work/src.git" gc -q
echo "repository: $(git --git-dir="$work/src.git" rev-list --count main) commits, $(git --git-dir="$work/src.git" ls-tree -r main | wc -l) files, pack $(du -sh "$work/src.git/objects/pack" | cut -f1)"

"$bin" serve & pid=$!
until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.05; done
echo 'bench-password-1' | "$bin" user create --username bench --email bench@example.org >/dev/null
token=$("$bin" token create --user bench --name bench)
curl -sf -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"shortname":"bench","name":"Bench"}' "http://127.0.0.1:$port/rest/p"
git --git-dir="$work/src.git" push -q "http://bench:$token@127.0.0.1:$port/git/p/bench/code.git" main
# All three clones read the same repository: the one the forge stores (after its push
# housekeeping has repacked it with a bitmap).
repo=""
for d in "$work"/forge/repos/*.git; do
  [ -n "$(git --git-dir="$d" for-each-ref refs/heads)" ] && repo=$d
done
for _ in $(seq 1 600); do ls "$repo"/objects/pack/*.bitmap >/dev/null 2>&1 && break; sleep 0.2; done
ls "$repo"/objects/pack/*.bitmap >/dev/null 2>&1 || { echo "the forge did not repack the pushed repository"; exit 1; }
sleep 1

# lighttpd + git http-backend (CGI) over the same bare repository.
mkdir -p "$work/www"
cat > "$work/lighttpd.conf" <<CONF
server.document-root = "$work/www"
server.port = $lport
server.bind = "127.0.0.1"
server.modules = ("mod_alias", "mod_cgi", "mod_setenv")
alias.url = ("/git" => "$(git --exec-path)/git-http-backend")
\$HTTP["url"] =~ "^/git" {
  cgi.assign = ("" => "")
  setenv.set-environment = ("GIT_PROJECT_ROOT" => "$(dirname "$repo")", "GIT_HTTP_EXPORT_ALL" => "1")
}
CONF
lighttpd -D -f "$work/lighttpd.conf" & lpid=$!
sleep 1

rss_kib() { # RSS of a process and its descendants, leaving out the embedded store
  local total=0
  for p in $1 $(pgrep -P "$1" 2>/dev/null; for c in $(pgrep -P "$1" 2>/dev/null); do pgrep -P "$c" 2>/dev/null; done); do
    [ "$(cat /proc/$p/comm 2>/dev/null)" = "secantusd-rs" ] && continue
    total=$(( total + $(awk '/VmRSS/ {print $2}' /proc/$p/status 2>/dev/null || echo 0) ))
  done
  echo $total
}

own_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

timed_clone() { # name url server_pid
  local name=$1 url=$2 spid=${3:-} peak=0 own=0 dest="$work/clone-$1"
  rm -rf "$dest"
  local t0=$(date +%s%N)
  git clone -q --no-checkout "$url" "$dest" & local cpid=$!
  while kill -0 $cpid 2>/dev/null; do
    if [ -n "$spid" ]; then
      local r=$(rss_kib "$spid"); [ "$r" -gt "$peak" ] && peak=$r
      local o=$(own_kib "$spid"); [ "$o" -gt "$own" ] && own=$o
    fi
    sleep 0.02
  done
  wait $cpid
  local t1=$(date +%s%N)
  local ms=$(( (t1 - t0) / 1000000 ))
  [ "$(git --git-dir="$dest/.git" rev-parse refs/remotes/origin/main)" = "$(git --git-dir="$work/src.git" rev-parse main)" ] || { echo "clone $name differs"; exit 1; }
  echo "$name: ${ms} ms$( [ -n "$spid" ] && echo ", server peak RSS: server process $((own / 1024)) MiB, with its git children $((peak / 1024)) MiB")"
  eval "T_$name=$ms"
}

echo "forge idle RSS before clones: $(( $(rss_kib $pid) / 1024 )) MiB (the store process is not counted)"
for round in 1 2; do
  echo "round $round:"
  timed_clone forge "http://127.0.0.1:$port/git/p/bench/code.git" "$pid"
  timed_clone backend "http://127.0.0.1:$lport/git/$(basename "$repo")" "$lpid"
  timed_clone local "file://$repo"
done
echo "ratios (last round): forge/http-backend $(python3 -c "print(round($T_forge/$T_backend, 2))"), forge/local $(python3 -c "print(round($T_forge/$T_local, 2))")"

for page in "tree/main/dir7" "commits/main"; do
  echo "wrk -t2 -c32 -d10s /p/bench/code/$page:"
  wrk -t2 -c32 -d10s --latency "http://127.0.0.1:$port/p/bench/code/$page" | sed -n '/Latency Distribution/,/99%/p;/Requests\/sec/p;/Non-2xx/p'
done
