#!/usr/bin/env bash
# deploy/docker-compose.yml's topology on one machine, without containers: the store, RabbitMQ,
# two `forge serve` nodes behind HAProxy (deploy/haproxy.cfg, the file compose mounts) and two
# `forge worker`s, all on one FORGE_DATA_DIR (repositories, attachments, the search index).
#
#   deploy/local-cluster.sh up      start it all, print the URLs and pids, leave it running
#   deploy/local-cluster.sh check   start it all, run the checks, stop it all; on the first
#                                   failure: exit 1, saying what failed (the logs are kept)
#   deploy/local-cluster.sh down    stop what `up` started (in CLUSTER_DIR, else the last `up`'s)
#
# Environment, all optional:
#   FORGE_BIN           the forge binary (default target/release/forge if built, else
#                       target/debug/forge)
#   CLUSTER_DIR         data, logs, pids, the admin's password and token (default: a new
#                       temporary directory, removed by `down` and by a passing `check`)
#   STORE_PORT WEB1_PORT WEB2_PORT PROXY_PORT
#                       loopback ports (default: free ones below the kernel's ephemeral range)
#   FORGE_MONGODB_URI   use this store, in a new database of its own (left there afterwards),
#                       instead of starting secantusd-rs (~/.cargo/bin)
#   FORGE_AMQP_URL      use this broker instead of the local RabbitMQ (started when it is not
#                       running); either way under a queue prefix of this run's own
#   FORGE_LOG           the forge processes' log filter (default info)
#   TASK_SWEEP_SECS     the workers' FORGE_TASK_SWEEP_SECS (default 10: a task record left by a
#                       web node killed between storing and publishing it runs within ~15 s)
#   CHECKS              the checks `check` runs, in order (default: all of them,
#                       "login wiki search web-stop worker-kill")
# Needs curl, haproxy (Debian: apt-get install -y haproxy) and, without FORGE_AMQP_URL,
# rabbitmq-server.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
# as_root, have_store_binary (shellcheck is not asked to follow: not this script's file)
# shellcheck source=/dev/null
. "$repo/scripts/lib.sh"

# worker-kill runs last: the first failure ends a run, and it fails while no worker takes over
# the search index writer from a dead one (the others should still be seen).
ALL_CHECKS="login wiki search web-stop worker-kill"
LAST_UP="${TMPDIR:-/tmp}/forge-local-cluster.last"
TASK_SWEEP_SECS=${TASK_SWEEP_SECS:-10}

say() { printf '%s\n' "$*"; }
note() { printf '[cluster] %s\n' "$*" >&2; }
fail() {
  printf 'FAIL %s\n' "$*"
  FAILED=1
  exit 1
}
now_ms() {
  local t=${EPOCHREALTIME/./}
  echo $((t / 1000))
}
secs_since() { # $1: a now_ms; prints the seconds since, e.g. 1.234
  local d=$(($(now_ms) - $1))
  printf '%d.%03d' $((d / 1000)) $((d % 1000))
}

# --- ports, processes ----------------------------------------------------------------------

USED_PORTS=" "
port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null || return 1
  if command -v ss >/dev/null; then
    [ -z "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ] || return 1
  fi
}
# A free loopback port below Linux's ephemeral range (32768-60999): ports there are handed to
# every outgoing connection (the store's and the broker's clients), which could take one
# between this check and the server's bind.
pick_port() { # $1: the variable to set
  local p
  for _ in $(seq 1 500); do
    p=$((20000 + RANDOM % 12000))
    case "$USED_PORTS" in *" $p "*) continue ;; esac
    if port_free "$p"; then
      USED_PORTS="$USED_PORTS$p "
      printf -v "$1" '%s' "$p"
      return
    fi
  done
  fail "start: no free port found"
}
# Keeps a port given in the environment, else picks one.
use_port() { # $1: the variable
  if [ -n "${!1:-}" ]; then USED_PORTS="$USED_PORTS${!1} "; else pick_port "$1"; fi
}

# Starts a process in a session of its own (a Ctrl-C meant for this script does not reach it;
# the trap stops it), output to logs/NAME.log, pid in pids/NAME.
start_proc() {
  local name=$1
  shift
  setsid "$@" </dev/null >>"$CLUSTER_DIR/logs/$name.log" 2>&1 &
  echo $! >"$CLUSTER_DIR/pids/$name"
}
pid_of() { cat "$CLUSTER_DIR/pids/$1" 2>/dev/null || true; }
# running NAME: whether NAME's process runs (not exited, nor exited and not yet waited for).
running() {
  local pid
  pid=$(pid_of "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" != Z ]
}
# Waits up to $2 seconds for process NAME to exit; its exit status in EXIT_STATUS when it is
# a child of this shell.
await_exit() {
  local name=$1 limit=$2 pid deadline
  pid=$(pid_of "$name")
  deadline=$(($(now_ms) + limit * 1000))
  while kill -0 "$pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do
    # A child of this shell stays a zombie (and kill -0 succeeds) until it is waited for.
    if [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ]; then break; fi
    sleep 0.05
  done
  EXIT_STATUS=""
  if ! kill -0 "$pid" 2>/dev/null || [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ]; then
    EXIT_STATUS=0
    wait "$pid" 2>/dev/null || EXIT_STATUS=$?
    return 0
  fi
  return 1
}
# Stops every process in pids/: TERM, then KILL whatever is left after $1 seconds.
stop_all() {
  local limit=${1:-15} f pid left deadline
  [ -d "$CLUSTER_DIR/pids" ] || return 0
  for f in "$CLUSTER_DIR"/pids/*; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    kill -TERM "$pid" 2>/dev/null || true
  done
  deadline=$(($(now_ms) + limit * 1000))
  while :; do
    left=0
    for f in "$CLUSTER_DIR"/pids/*; do
      [ -e "$f" ] || continue
      pid=$(cat "$f")
      if kill -0 "$pid" 2>/dev/null && [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" != Z ]; then
        left=$((left + 1))
        [ "$(now_ms)" -lt "$deadline" ] || { note "$(basename "$f") (pid $pid) ignored TERM for ${limit}s: killing it"; kill -KILL "$pid" 2>/dev/null || true; }
      fi
    done
    [ "$left" -gt 0 ] || break
    sleep 0.1
  done
  for f in "$CLUSTER_DIR"/pids/*; do
    [ -e "$f" ] || continue
    wait "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}

# --- HTTP ---------------------------------------------------------------------------------

# http METHOD URL [JSON]: HTTP_CODE and HTTP_BODY, with the admin's token.
http() {
  local method=$1 url=$2 data=${3:-} args=()
  [ -z "$data" ] || args=(-H 'Content-Type: application/json' --data-binary "$data")
  HTTP_CODE=$(curl -sS -o "$CLUSTER_DIR/http.body" -w '%{http_code}' --max-time 30 \
    -X "$method" -H "Authorization: Bearer $TOKEN" "${args[@]}" "$url" 2>>"$CLUSTER_DIR/logs/curl.log") || true
  HTTP_BODY=$(cat "$CLUSTER_DIR/http.body" 2>/dev/null || true)
}
# wait_http URL SECONDS [NAME]: until URL answers 200 (NAME's process must stay alive).
wait_http() {
  local url=$1 limit=$2 name=${3:-} deadline code
  deadline=$(($(now_ms) + limit * 1000))
  while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) || true
    [ "$code" = 200 ] && return 0
    if [ -n "$name" ] && ! running "$name"; then
      tail -n 20 "$CLUSTER_DIR/logs/$name.log" >&2 || true
      fail "start: $name exited before $url answered (log: $CLUSTER_DIR/logs/$name.log)"
    fi
    [ "$(now_ms)" -lt "$deadline" ] || fail "start: $url did not answer 200 within ${limit}s (last: $code)"
    sleep 0.1
  done
}
# count_lines NAME PATTERN: how many lines of NAME's log match (0 without a log yet).
count_lines() {
  local n
  n=$(grep -c -- "$2" "$CLUSTER_DIR/logs/$1.log" 2>/dev/null) || true
  echo "${n:-0}"
}
# wait_log NAME PATTERN SECONDS [COUNT]: until NAME's log has COUNT (default 1) lines matching.
wait_log() {
  local name=$1 pattern=$2 limit=$3 count=${4:-1} deadline
  deadline=$(($(now_ms) + limit * 1000))
  while [ "$(count_lines "$name" "$pattern")" -lt "$count" ]; do
    if ! running "$name"; then
      tail -n 20 "$CLUSTER_DIR/logs/$name.log" >&2 || true
      fail "$name exited (log: $CLUSTER_DIR/logs/$name.log)"
    fi
    [ "$(now_ms)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
# The number after "key": in a JSON body (top-level numbers only; enough for totals).
json_num() { sed -n "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p" <<<"$2" | head -n 1; }

# --- the cluster ----------------------------------------------------------------------------

# The environment of every forge process (web nodes, workers, commands): the FORGE_* names set
# here must be set for the compose services too, in docker-compose.yml or forge.env.example
# (forge-web/tests/deploy_sync.rs checks; it reads the lines between these two markers).
# BEGIN forge environment
forge_env() { # $1: the web node's port; none for workers and commands
  FORGE_ENV=(
    "FORGE_DATA_DIR=$CLUSTER_DIR/data"
    "FORGE_MONGODB_URI=$MONGODB_URI"
    "FORGE_DB_NAME=$DB_NAME"
    "FORGE_AMQP_URL=$AMQP_URL"
    "FORGE_AMQP_PREFIX=$AMQP_PREFIX"
    "FORGE_BASE_URL=$PROXY_URL"
    "FORGE_TRUSTED_PROXIES=127.0.0.1"
    "FORGE_TASK_SWEEP_SECS=$TASK_SWEEP_SECS"
    "FORGE_SHUTDOWN_DRAIN_SECS=3"
  )
  if [ -n "${1:-}" ]; then FORGE_ENV+=("FORGE_BIND=127.0.0.1:$1"); fi
}
# END forge environment

# forge_argv [PORT]: FORGE_ARGV, the command line that runs the forge binary with that
# environment and without any other FORGE_* variable of the caller's (but FORGE_LOG).
forge_argv() {
  local v
  FORGE_ARGV=(env)
  while IFS= read -r v; do
    [ "$v" = FORGE_LOG ] || FORGE_ARGV+=(-u "$v")
  done < <(compgen -e | grep '^FORGE_' || true)
  forge_env "${1:-}"
  FORGE_ARGV+=(NO_COLOR=1 "${FORGE_ENV[@]}" "$FORGE_BIN")
}
forge_cmd() { # ARGS...: a forge command (no web node's port)
  forge_argv
  "${FORGE_ARGV[@]}" "$@"
}

# The addresses deploy/haproxy.cfg reads (compose sets the same names on its `proxy`).
# BEGIN proxy environment
proxy_env() {
  PROXY_ENV=(
    "PROXY_BIND=127.0.0.1:$PROXY_PORT"
    "WEB1_ADDR=127.0.0.1:$WEB1_PORT"
    "WEB2_ADDR=127.0.0.1:$WEB2_PORT"
  )
}
# END proxy environment

start_web() { # $1: 1 or 2
  local port
  if [ "$1" = 1 ]; then port=$WEB1_PORT; else port=$WEB2_PORT; fi
  forge_argv "$port"
  start_proc "web$1" "${FORGE_ARGV[@]}" serve
}
start_worker() {
  forge_argv
  # What this script waits for in a worker's log (it consumes; which queues) is logged at
  # info: kept whatever FORGE_LOG says.
  local filter="${FORGE_LOG:-info},forge_tasks::amqp::worker=info,forge_tools::search::index=info"
  start_proc "worker$1" "${FORGE_ARGV[@]:0:${#FORGE_ARGV[@]}-1}" "FORGE_LOG=$filter" "$FORGE_BIN" worker
}
await_web() {
  local port
  if [ "$1" = 1 ]; then port=$WEB1_PORT; else port=$WEB2_PORT; fi
  wait_http "http://127.0.0.1:$port/healthz" 120 "web$1"
}
# Until HAProxy's checks have seen web$1 come up ($2: how many times it has so far).
await_proxy_up() {
  wait_log haproxy "Server web/web$1 is UP" 15 "$2" || fail "HAProxy did not see web$1 come back within 15 s"
}
ups_of() { count_lines haproxy "Server web/web$1 is UP"; }

# rabbitmqctl as root, never asking for a password (a check must not wait on one).
rmqctl() {
  if [ "$(id -u)" = 0 ]; then rabbitmqctl "$@"; else sudo -n rabbitmqctl "$@"; fi
}
rabbitmqctl_ok() { command -v rabbitmqctl >/dev/null && rmqctl -q status >/dev/null 2>&1; }

start_cluster() {
  local t0 secantus
  t0=$(now_ms)
  [ -x "$FORGE_BIN" ] || fail "start: no forge binary at $FORGE_BIN (cargo build --bin forge, or set FORGE_BIN)"
  command -v haproxy >/dev/null || fail "start: haproxy is not installed (Debian: apt-get install -y haproxy)"
  command -v curl >/dev/null || fail "start: curl is not installed"
  mkdir -p "$CLUSTER_DIR"/{data,logs,pids}
  RUN_ID=$(printf '%x%04x' "$(date +%s)" $((RANDOM)))
  use_port WEB1_PORT
  use_port WEB2_PORT
  use_port PROXY_PORT
  PROXY_URL="http://127.0.0.1:$PROXY_PORT"
  AMQP_PREFIX="cluster.$RUN_ID"
  STARTED_RABBITMQ=0

  # The store.
  EXTERNAL_STORE=${FORGE_MONGODB_URI:+1}
  if [ -n "${FORGE_MONGODB_URI:-}" ]; then
    MONGODB_URI=$FORGE_MONGODB_URI
    DB_NAME="cluster_$RUN_ID"
  else
    have_store_binary || true
    secantus=$(command -v secantusd-rs || echo "$HOME/.cargo/bin/secantusd-rs")
    [ -x "$secantus" ] || fail "start: secantusd-rs not found (scripts/run installs it), nor FORGE_MONGODB_URI set"
    use_port STORE_PORT
    start_proc store "$secantus" --host 127.0.0.1 --port "$STORE_PORT" \
      --storage-path "$CLUSTER_DIR/store" --cache-size 1G --log-level WARNING
    MONGODB_URI="mongodb://127.0.0.1:$STORE_PORT/?directConnection=true"
    DB_NAME=forge
  fi

  # The broker.
  if [ -n "${FORGE_AMQP_URL:-}" ]; then
    AMQP_URL=$FORGE_AMQP_URL
  else
    AMQP_URL="amqp://guest:guest@127.0.0.1:5672/%2f"
    if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && ! rabbitmqctl_ok; then
      command -v rabbitmq-server >/dev/null || fail "start: RabbitMQ is not installed (apt-get install -y rabbitmq-server), nor FORGE_AMQP_URL set"
      note "starting RabbitMQ (rabbitmq-server -detached)"
      as_root rabbitmq-server -detached </dev/null >>"$CLUSTER_DIR/logs/rabbitmq.log" 2>&1
      STARTED_RABBITMQ=1
      for i in $(seq 1 60); do
        rmqctl -q await_startup --timeout 60 >/dev/null 2>&1 && break
        [ "$i" = 60 ] && fail "start: RabbitMQ did not start"
        sleep 2
      done
    fi
  fi
  save_state

  if [ -z "${FORGE_MONGODB_URI:-}" ]; then
    for _ in $(seq 1 300); do
      (exec 3<>"/dev/tcp/127.0.0.1/$STORE_PORT") 2>/dev/null && break
      running store || fail "start: the store exited (log: $CLUSTER_DIR/logs/store.log)"
      sleep 0.1
    done
  fi

  # The schema, the admin and their token, before any node starts.
  forge_cmd migrate >>"$CLUSTER_DIR/logs/commands.log" 2>&1 ||
    fail "start: forge migrate failed (log: $CLUSTER_DIR/logs/commands.log)"
  ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "$ADMIN_PASSWORD" >"$CLUSTER_DIR/admin.password"
  printf '%s\n' "$ADMIN_PASSWORD" |
    forge_cmd user create --username admin --email admin@example.org --admin >>"$CLUSTER_DIR/logs/commands.log" 2>&1 ||
    fail "start: forge user create failed (log: $CLUSTER_DIR/logs/commands.log)"
  TOKEN=$(forge_cmd token create --user admin --name local-cluster 2>>"$CLUSTER_DIR/logs/commands.log" | tail -n 1) ||
    fail "start: forge token create failed (log: $CLUSTER_DIR/logs/commands.log)"
  printf '%s\n' "$TOKEN" >"$CLUSTER_DIR/admin.token"
  chmod 600 "$CLUSTER_DIR/admin.password" "$CLUSTER_DIR/admin.token"

  # Worker 1 first, alone: it takes the search index writer (and so consumes the exclusive
  # queue); then the web nodes and worker 2, which find the writer taken.
  start_worker 1
  wait_log worker1 "worker consuming" 120 || fail "start: worker 1 did not start consuming within 120 s"
  grep -q "tasks.exclusive" "$CLUSTER_DIR/logs/worker1.log" ||
    fail "start: worker 1 does not hold the search index writer (it does not consume $AMQP_PREFIX.tasks.exclusive)"
  start_web 1
  start_web 2
  start_worker 2
  await_web 1
  await_web 2
  wait_log worker2 "worker consuming" 120 || fail "start: worker 2 did not start consuming within 120 s"

  proxy_env
  env "${PROXY_ENV[@]}" haproxy -c -q -f "$here/haproxy.cfg" >>"$CLUSTER_DIR/logs/haproxy.log" 2>&1 ||
    fail "start: HAProxy refuses deploy/haproxy.cfg (log: $CLUSTER_DIR/logs/haproxy.log)"
  start_proc haproxy env "${PROXY_ENV[@]}" haproxy -f "$here/haproxy.cfg" -db
  wait_http "$PROXY_URL/healthz" 30 haproxy
  STARTUP_SECS=$(secs_since "$t0")
}

save_state() {
  {
    printf 'CLUSTER_DIR=%q\n' "$CLUSTER_DIR"
    printf 'CREATED_DIR=%q\n' "$CREATED_DIR"
    printf 'FORGE_BIN=%q\n' "$FORGE_BIN"
    printf 'MONGODB_URI=%q\n' "$MONGODB_URI"
    printf 'DB_NAME=%q\n' "$DB_NAME"
    printf 'EXTERNAL_STORE=%q\n' "$EXTERNAL_STORE"
    printf 'AMQP_URL=%q\n' "$AMQP_URL"
    printf 'AMQP_PREFIX=%q\n' "$AMQP_PREFIX"
    printf 'STARTED_RABBITMQ=%q\n' "$STARTED_RABBITMQ"
    printf 'WEB1_PORT=%q\nWEB2_PORT=%q\nPROXY_PORT=%q\nSTORE_PORT=%q\n' \
      "$WEB1_PORT" "$WEB2_PORT" "$PROXY_PORT" "${STORE_PORT:-}"
    printf 'PROXY_URL=%q\n' "$PROXY_URL"
  } >"$CLUSTER_DIR/cluster.env"
}

# The broker's vhost in AMQP_URL ("/" when the path is empty or %2f).
amqp_vhost() {
  local v=${AMQP_URL#*://}
  v=${v#*/}
  [ "$v" != "${AMQP_URL#*://}" ] || v=""
  v=${v%%\?*}
  if [ -z "$v" ] || [ "$v" = "%2f" ] || [ "$v" = "%2F" ]; then echo /; else printf '%b\n' "${v//%/\\x}"; fi
}
amqp_is_local() {
  case "$AMQP_URL" in *@127.0.0.1[:/]* | *@localhost[:/]* | amqp://127.0.0.1[:/]* | amqp://localhost[:/]*) return 0 ;; esac
  return 1
}

# Stops everything in CLUSTER_DIR (read from its cluster.env) and removes this run's queues.
teardown() {
  stop_all 15
  if [ -n "${AMQP_URL:-}" ] && amqp_is_local && rabbitmqctl_ok; then
    local vhost q p pids=()
    vhost=$(amqp_vhost)
    while IFS= read -r q; do
      rmqctl -q -p "$vhost" delete_queue "$q" >/dev/null 2>&1 &
      pids+=($!)
    done < <(rmqctl -q -p "$vhost" list_queues name 2>/dev/null | grep -F "$AMQP_PREFIX." || true)
    for p in "${pids[@]}"; do wait "$p" || true; done
    if [ "${STARTED_RABBITMQ:-0}" = 1 ]; then
      note "stopping the RabbitMQ this script started"
      rmqctl -q stop >/dev/null 2>&1 || true
    fi
  elif [ -n "${AMQP_PREFIX:-}" ]; then
    note "the broker's queues $AMQP_PREFIX.* are left on $AMQP_URL (no local rabbitmqctl)"
  fi
  if [ "${EXTERNAL_STORE:-}" = 1 ] && [ -n "${DB_NAME:-}" ]; then
    note "databases $DB_NAME and ${DB_NAME}_events are left on $MONGODB_URI"
  fi
}

print_summary() {
  say "forge cluster up ($CLUSTER_DIR, started in ${STARTUP_SECS}s)"
  say "  proxy    $PROXY_URL  (HAProxy pid $(pid_of haproxy))"
  say "  web1     http://127.0.0.1:$WEB1_PORT  (pid $(pid_of web1))"
  say "  web2     http://127.0.0.1:$WEB2_PORT  (pid $(pid_of web2))"
  say "  worker1  pid $(pid_of worker1) (search index writer)"
  say "  worker2  pid $(pid_of worker2)"
  say "  store    $MONGODB_URI  database $DB_NAME${STORE_PORT:+  (pid $(pid_of store))}"
  say "  broker   $AMQP_URL  queues $AMQP_PREFIX.*"
  say "  data     $CLUSTER_DIR/data   logs $CLUSTER_DIR/logs"
  say "  admin    user admin, password in $CLUSTER_DIR/admin.password, API token in $CLUSTER_DIR/admin.token"
}

# --- checks ---------------------------------------------------------------------------------

WEB1="" WEB2=""
PROJECT=cluster
PROJECT_MADE=0
WIKI_WORD=""

ensure_project() {
  [ "$PROJECT_MADE" = 0 ] || return 0
  http POST "$WEB1/rest/p" "{\"shortname\": \"$PROJECT\", \"name\": \"Cluster check\"}"
  [ "$HTTP_CODE" = 201 ] || fail "making project $PROJECT on web1: $HTTP_CODE $HTTP_BODY"
  PROJECT_MADE=1
}

# Log in on web1 with the form, as a browser does; stay logged in through web2 and the proxy;
# log out through the proxy and be logged out on web1.
check_login() {
  local jar=$CLUSTER_DIR/cookies.txt page csrf code who='href="/u/admin/" class="me">admin<' t0 where
  rm -f "$jar"
  page=$(curl -sS -c "$jar" -b "$jar" "$WEB1/auth/login") || fail "login: GET /auth/login on web1"
  csrf=$(sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' <<<"$page" | head -n 1)
  [ -n "$csrf" ] || fail "login: no csrf_token in web1's log-in form"
  code=$(curl -sS -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" \
    --data-urlencode "csrf_token=$csrf" --data-urlencode "username=admin" \
    --data-urlencode "password=$ADMIN_PASSWORD" --data-urlencode "next=/dashboard" "$WEB1/auth/login")
  [ "$code" = 303 ] || [ "$code" = 302 ] || fail "login: POST /auth/login on web1 answered $code, not a redirect"
  grep -q forge_session "$jar" || fail "login: web1 set no session cookie"
  for where in "$WEB1" "$WEB2" "$PROXY_URL" "$PROXY_URL"; do
    page=$(curl -sS -b "$jar" "$where/dashboard")
    grep -qF "$who" <<<"$page" || fail "login: $where/dashboard does not show admin logged in"
  done
  # Log out through the proxy with the token of a page served there.
  page=$(curl -sS -b "$jar" "$PROXY_URL/dashboard")
  csrf=$(sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' <<<"$page" | head -n 1)
  code=$(curl -sS -o /dev/null -w '%{http_code}' -b "$jar" --data-urlencode "csrf_token=$csrf" "$PROXY_URL/auth/logout")
  [ "$code" = 303 ] || [ "$code" = 302 ] || fail "login: POST /auth/logout through the proxy answered $code"
  t0=$(now_ms)
  while page=$(curl -sS -b "$jar" "$WEB1/dashboard") && grep -qF "$who" <<<"$page"; do
    [ $(($(now_ms) - t0)) -lt 2000 ] || fail "login: the session logged out through the proxy still works on web1 after 2 s"
    sleep 0.02
  done
  say "PASS login: logged in with the form on web1, then logged in on web1, web2 and the proxy; logged out through the proxy, refused on web1 after $(secs_since "$t0")s"
}

ensure_wiki() {
  [ -z "$WIKI_WORD" ] || return 0
  ensure_project
  WIKI_WORD="wiki${RUN_ID}x"
  WIKI_T0=$(now_ms)
  http PUT "$WEB1/rest/p/$PROJECT/wiki/Scale" "{\"text\": \"Written on web1: $WIKI_WORD.\"}"
  case "$HTTP_CODE" in 200 | 201) ;; *) fail "wiki: PUT /rest/p/$PROJECT/wiki/Scale on web1: $HTTP_CODE $HTTP_BODY" ;; esac
}

# A project made and a wiki page edited on web1, read on web2 within 2 s.
check_wiki() {
  ensure_wiki
  local t0
  t0=$(now_ms)
  while :; do
    http GET "$WEB2/rest/p/$PROJECT/wiki/Scale"
    [ "$HTTP_CODE" = 200 ] && grep -qF "$WIKI_WORD" <<<"$HTTP_BODY" && break
    [ $(($(now_ms) - t0)) -lt 2000 ] || fail "wiki: web2 does not serve web1's edit after 2 s ($HTTP_CODE $HTTP_BODY)"
    sleep 0.02
  done
  say "PASS wiki: project and page made on web1, the new text read on web2 after $(secs_since "$t0")s"
}

# search_total URL_BASE QUERY: SEARCH_TOTAL, the "total" of GET /rest/search (0 when not 200).
search_total() {
  http GET "$1/rest/search?q=$2"
  SEARCH_TOTAL=0
  if [ "$HTTP_CODE" = 200 ]; then SEARCH_TOTAL=$(json_num total "$HTTP_BODY"); fi
  SEARCH_TOTAL=${SEARCH_TOTAL:-0}
}

# The page edited on web1 is found from both nodes (the workers index in the background).
check_search() {
  ensure_wiki
  local n1="" n2="" t1="" t2=""
  while [ -z "$t1" ] || [ -z "$t2" ]; do
    if [ -z "$t1" ]; then
      search_total "$WEB1" "$WIKI_WORD"
      if [ "$SEARCH_TOTAL" -ge 1 ]; then t1=$(secs_since "$WIKI_T0"); n1=$SEARCH_TOTAL; fi
    fi
    if [ -z "$t2" ]; then
      search_total "$WEB2" "$WIKI_WORD"
      if [ "$SEARCH_TOTAL" -ge 1 ]; then t2=$(secs_since "$WIKI_T0"); n2=$SEARCH_TOTAL; fi
    fi
    [ $(($(now_ms) - WIKI_T0)) -lt 30000 ] ||
      fail "search: \"$WIKI_WORD\" not found after 30 s (web1: ${t1:-no}, web2: ${t2:-no}; last answer $HTTP_CODE $HTTP_BODY)"
    sleep 0.05
  done
  say "PASS search: the edit found on web1 ${t1}s and on web2 ${t2}s after it was saved ($n1 and $n2 hits)"
}

# The state counts and broker depths /nf/admin/tasks shows, on one line.
task_figures() {
  local page
  page=$(curl -sS -H "Authorization: Bearer $TOKEN" "$WEB1/nf/admin/tasks" 2>/dev/null) || true
  grep -o '>\(queued\|running\|complete\|failed\|[A-Za-z0-9._-]*tasks[a-z.0-9]*\): [0-9]*<' <<<"$page" |
    tr -d '<>' | sed "s/^$AMQP_PREFIX\.//" | paste -sd ' ' - || true
}

# Until the broker holds no task and none runs (what earlier checks queued is done), 120 s at
# most. Records left `queued` with nothing in the broker do not count (see orphaned_tasks).
await_no_tasks() {
  local t0 figures
  t0=$(now_ms)
  while :; do
    figures=$(task_figures)
    grep -qE '(running|tasks|tasks\.exclusive): [1-9]' <<<"$figures" || break
    [ $(($(now_ms) - t0)) -lt 120000 ] || fail "tasks still pending 120 s after the earlier checks: $figures"
    sleep 0.2
  done
  [ $(($(now_ms) - t0)) -lt 1000 ] || note "waited $(secs_since "$t0")s for the earlier checks' tasks"
}

# Task records that will never run: `queued`, never attempted, created more than 5 s before,
# while the broker holds no task (nothing will deliver them). One line per record: "name args
# created", from the admin page.
queued_unattempted() {
  curl -sS -H "Authorization: Bearer $TOKEN" "$WEB1/nf/admin/tasks?state=queued" 2>/dev/null |
    grep -o '<tr class="task-queued">.*' |
    sed -n 's/.*<td>\([^<]*\)<\/td><td class="muted"><code>\([^<]*\)<\/code><\/td><td>queued<\/td><td>0\/[0-9]*<\/td><td>[^<]*<\/td><td>\([^<]*\)<\/td>.*/\1 \2 (created \3)/p' |
    sed 's/&quot;/"/g; s/&#34;/"/g; s/&#x22;/"/g' || true
}
orphaned_tasks() {
  local first left t0
  await_no_tasks
  first=$(queued_unattempted | sort)
  [ -n "$first" ] || return 0
  # A process that died between storing a task and publishing it leaves such records; the
  # workers' sweep publishes them again after FORGE_TASK_SWEEP_SECS. Those still there well
  # after that will never run.
  t0=$(now_ms)
  while :; do
    left=$(comm -12 <(printf '%s\n' "$first") <(queued_unattempted | sort) || true)
    if [ -z "$left" ]; then
      note "$(wc -l <<<"$first") task record(s) stored but never published were republished by the sweep and run $(secs_since "$t0")s after the earlier tasks were done"
      return 0
    fi
    [ $(($(now_ms) - t0)) -lt $(((TASK_SWEEP_SECS * 3 + 10) * 1000)) ] || break
    sleep 0.5
  done
  printf '%s\n' "$left"
}

# file_tickets DIR LOOP COUNT URL SUMMARY_PREFIX DESCRIPTION: files COUNT tickets one after the
# other on one keep-alive connection per batch; one line per request in DIR/LOOP.log:
# "<status> <summary> <ticket number or ->".
file_tickets() {
  local dir=$1 loop=$2 count=$3 url=$4 prefix=$5 desc=$6 i=0 batch k
  while [ "$i" -lt "$count" ] && [ ! -e "$dir/stop" ]; do
    batch=$dir/batch.$loop
    : >"$batch"
    for k in 1 2 3 4 5; do
      [ "$i" -lt "$count" ] || break
      [ "$k" = 1 ] || echo next >>"$batch"
      i=$((i + 1))
      local s="$prefix-$loop-$i"
      {
        printf 'url = "%s/rest/p/%s/tickets/"\n' "$url" "$PROJECT"
        printf 'header = "Authorization: Bearer %s"\n' "$TOKEN"
        printf 'header = "Content-Type: application/json"\n'
        printf 'data = "{\\"summary\\": \\"%s\\", \\"description\\": \\"%s %s\\"}"\n' "$s" "${s//-/x}" "$desc"
        printf 'output = "%s/body.%s"\n' "$dir" "$s"
        printf 'write-out = "%%{http_code} %s\\n"\n' "$s"
        printf 'max-time = 30\n'
      } >>"$batch"
    done
    curl -sS --config "$batch" 2>>"$dir/curl.$loop.err" | while read -r code s; do
      local num
      num=$(sed -n 's/^{"ticket_num":\([0-9]*\),.*/\1/p' "$dir/body.$s" 2>/dev/null || true)
      printf '%s %s %s\n' "$code" "$s" "${num:--}"
    done >>"$dir/$loop.log" || true
  done
}
acked() { cat "$1"/*.log 2>/dev/null | grep -c '^2' || true; }

# slow_ticket DIR SUMMARY: one ticket whose body takes 2 s to arrive (sent in 10 pieces, as a
# slow client would), in flight through a signal; its line in DIR/slow.log.
slow_ticket() {
  local dir=$1 s=$2 code num
  code=$(
    {
      printf '{"summary": "%s", "description": "%s' "$s" "${s//-/x}"
      for _ in 1 2 3 4 5 6 7 8 9 10; do
        printf ' slowly'
        sleep 0.2
      done
      printf '"}'
    } | curl -sS -T - -X POST -o "$dir/body.$s" -w '%{http_code}' --max-time 30 -H 'Expect:' \
      -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
      "$PROXY_URL/rest/p/$PROJECT/tickets/" 2>>"$dir/curl.slow.err"
  ) || true
  num=$(sed -n 's/^{"ticket_num":\([0-9]*\),.*/\1/p' "$dir/body.$s" 2>/dev/null || true)
  printf '%s %s %s\n' "${code:-000}" "$s" "${num:--}" >>"$dir/slow.log"
}

# Tickets filed fast through the proxy; worker 1 (the index writer) killed with SIGKILL while
# their indexing and mail tasks are pending; every ticket must become findable with worker 2
# alone, each exactly once.
check_worker_kill() {
  ensure_project
  local dir=$CLUSTER_DIR/worker-kill n=200 loops=4 word="all${RUN_ID}x" t0 tk at_kill figures total="" bad
  rm -rf "$dir"
  mkdir -p "$dir"
  await_no_tasks
  t0=$(now_ms)
  local loop_pids=() p
  for l in $(seq 1 $loops); do
    file_tickets "$dir" "$l" $((n / loops)) "$PROXY_URL" "wk$RUN_ID" "$word" &
    loop_pids+=($!)
  done
  while [ "$(acked "$dir")" -lt $((n / 5)) ]; do
    [ $(($(now_ms) - t0)) -lt 60000 ] || fail "worker-kill: fewer than $((n / 5)) tickets filed in 60 s"
    sleep 0.02
  done
  disown "$(pid_of worker1)" 2>/dev/null || true
  kill -KILL "$(pid_of worker1)"
  tk=$(now_ms)
  at_kill=$(acked "$dir")
  await_exit worker1 5 || true
  figures=$(task_figures)
  for p in "${loop_pids[@]}"; do wait "$p" || true; done
  bad=$(cat "$dir"/*.log | grep -cv '^2' || true)
  [ "$bad" = 0 ] || fail "worker-kill: $bad of $n ticket requests failed: $(grep -hv '^2' "$dir"/*.log | head -n 5 | paste -sd ';' -)"
  [ "$(acked "$dir")" = $n ] || fail "worker-kill: $(acked "$dir") of $n tickets filed"
  local filed
  filed=$(secs_since "$t0")
  while :; do
    search_total "$PROXY_URL" "$word"
    total=$SEARCH_TOTAL
    [ "$total" -lt $n ] || break
    if [ $(($(now_ms) - tk)) -ge 30000 ]; then
      worker_kill_diagnosis "$dir" "$word" "$n" "$at_kill" "$figures" "$total"
    fi
    sleep 0.2
  done
  [ "$total" = $n ] || fail "worker-kill: search finds $total tickets for \"$word\", not $n: some are indexed twice"
  # Each ticket by its own word, from both nodes (a sample of 10).
  local l i s
  for i in $(seq 1 10); do
    l=$((RANDOM % loops + 1))
    s="wk$RUN_ID-$l-$((RANDOM % (n / loops) + 1))"
    for node in "$WEB1" "$WEB2"; do
      search_total "$node" "${s//-/x}"
      [ "$SEARCH_TOTAL" = 1 ] || fail "worker-kill: ticket $s is found $SEARCH_TOTAL times by its own word on $node"
    done
  done
  say "PASS worker-kill: $n tickets filed in ${filed}s; worker 1 killed (SIGKILL) after $at_kill, with tasks pending ($figures); all $n found by search $(secs_since "$tk")s after the kill, each once, with worker 2 alone"
  # Back to two workers for what follows.
  start_worker 1
  wait_log worker1 "worker consuming" 60 2 || fail "worker-kill: worker 1 did not restart"
}

# Why the tickets are not found: where the tasks are, and whether a restarted worker 1 finds
# them (they were stuck, not lost). Then fails.
worker_kill_diagnosis() {
  local dir=$1 word=$2 n=$3 at_kill=$4 at_kill_figures=$5 found=$6 after t1 total="" writer=""
  after=$(task_figures)
  grep -q "tasks.exclusive" <(grep "worker consuming" "$CLUSTER_DIR/logs/worker2.log") && writer=" (it consumes the exclusive queue)"
  note "worker 2's log:"
  grep -E "search|exclusive|consuming" "$CLUSTER_DIR/logs/worker2.log" | tail -n 5 >&2 || true
  t1=$(now_ms)
  start_worker 1
  while [ $(($(now_ms) - t1)) -lt 30000 ]; do
    search_total "$PROXY_URL" "$word"
    total=$SEARCH_TOTAL
    [ "$total" -lt "$n" ] || break
    sleep 0.2
  done
  fail "worker-kill: worker 1 (the search index writer) killed with SIGKILL after $at_kill of $n tickets (tasks then: $at_kill_figures); 30 s later search finds $found of $n: worker 2$writer did not take over the index writer, and the indexing tasks wait in the queue only the writer consumes (tasks now: $after). Worker 1 started again: $total of $n found $(secs_since "$t1")s later."
}

# One phase of writes through the proxy while web node NODE is stopped with SIGNAL: 4 loops of
# ticket POSTs (5 to a kept-alive connection) for 2 s, the signal, 3 s more; and 4 tickets
# whose bodies arrive slowly from 1 s to 3 s, so that the signal finds requests half read (on
# each node: the proxy takes turns). Sets PHASE_DIR,
# PHASE_BEFORE (writes acknowledged before the signal), PHASE_GONE (seconds from the signal to
# the node's exit, empty if it did not exit within the phase) and PHASE_SECS.
load_phase() {
  local name=$1 node=$2 signal=$3 loops=4 t0 pid p loop_pids=()
  PHASE_DIR=$CLUSTER_DIR/web-stop-$name
  rm -rf "$PHASE_DIR"
  mkdir -p "$PHASE_DIR"
  t0=$(now_ms)
  for l in $(seq 1 $loops); do
    file_tickets "$PHASE_DIR" "$l" 100000 "$PROXY_URL" "ws$RUN_ID$name" "load" &
    loop_pids+=($!)
  done
  sleep 1
  for l in 1 2 3 4; do
    slow_ticket "$PHASE_DIR" "ws$RUN_ID$name-slow-$l" &
    loop_pids+=($!)
    sleep 0.02
  done
  sleep 1
  PHASE_BEFORE=$(acked "$PHASE_DIR")
  pid=$(pid_of "web$node")
  # No "Killed" notice from bash for the node: it is reaped quietly.
  [ "$signal" != KILL ] || disown "$pid" 2>/dev/null || true
  kill "-$signal" "$pid"
  PHASE_T_SIGNAL=$(now_ms)
  PHASE_CLOCK=$(date +%H:%M:%S.%3N)
  PHASE_GONE=""
  while [ $(($(now_ms) - PHASE_T_SIGNAL)) -lt 3000 ]; do
    if [ -z "$PHASE_GONE" ] && ! running "web$node"; then PHASE_GONE=$(secs_since "$PHASE_T_SIGNAL"); fi
    sleep 0.05
  done
  touch "$PHASE_DIR/stop"
  for p in "${loop_pids[@]}"; do wait "$p" || true; done
  PHASE_SECS=$(secs_since "$t0")
}

# in_flight NODE CLOCK: requests HAProxy had sent to NODE that were not answered yet at CLOCK
# (HH:MM:SS.mmm, as its log writes times) and that NODE then answered, from HAProxy's log.
in_flight() {
  awk -v node="web/$1" -v at="$2" '
    function ms(t, p) { split(t, p, ":"); return ((p[1] * 60 + p[2]) * 60 + p[3]) * 1000 }
    $4 == node && $5 ~ /^[0-9-]+\/[0-9-]+\/[0-9-]+\/[0-9-]+\/[0-9]+$/ {
      split($2, d, ":"); start = ms(d[2] ":" d[3] ":" substr(d[4], 1, length(d[4]) - 1))
      split($5, t, "/"); sig = ms(at)
      if (start <= sig && sig < start + t[5]) n++
    }
    END { print n + 0 }' "$CLUSTER_DIR/logs/haproxy.log"
}

# tickets_through_proxy FILE: "number summary" of every ticket in the project, through the proxy.
tickets_through_proxy() {
  local out=$1 page=1 got
  : >"$out"
  while :; do
    http GET "$PROXY_URL/rest/p/$PROJECT/tickets/?limit=100&page=$page&sort=ticket_num"
    [ "$HTTP_CODE" = 200 ] || fail "web-stop: listing the tickets through the proxy: $HTTP_CODE $HTTP_BODY"
    got=$(grep -o '"ticket_num":[0-9]*,"summary":"[^"]*"' <<<"$HTTP_BODY" |
      sed 's/"ticket_num":\([0-9]*\),"summary":"\([^"]*\)"/\1 \2/' || true)
    [ -n "$got" ] || break
    printf '%s\n' "$got" >>"$out"
    page=$((page + 1))
  done
}

# read_back PHASE_DIR... : fails unless every write acknowledged in those phases is in the
# project's tickets, read through the proxy; leaves the listing ("number summary") in LISTING.
read_back() {
  local missing d
  LISTING=$CLUSTER_DIR/web-stop-listing.txt
  tickets_through_proxy "$LISTING"
  missing=$(for d in "$@"; do cat "$d"/*.log; done | awk '/^2/ {print $3, $2}' | sort |
    comm -23 - <(sort "$LISTING") || true)
  [ -z "$missing" ] || fail "web-stop: $(wc -l <<<"$missing") acknowledged writes are not read back through the proxy (number summary: $(head -n 5 <<<"$missing" | paste -sd ';' -))"
}
# twice PATTERN: the summaries matching PATTERN that are in LISTING more than once.
twice() { awk '{print $2}' "$LISTING" | sort | uniq -d | grep -- "$1" || true; }

# Writes through the proxy while web1 stops (SIGTERM) and, once it is back, while web2 is
# killed (SIGKILL). With SIGTERM no request may fail: the node finishes what it has in hand and
# the proxy sends the rest to web2. With SIGKILL only the requests the node had in hand may go
# wrong: the proxy answers 502 to a request that was the first on its connection, and closes a
# kept-alive connection without an answer otherwise, for the client to resend; a POST the node
# had done by then is then filed twice. Each time every acknowledged write is read back through
# the proxy (both nodes serving again), and no task the nodes queued may be left behind.
check_web_stop() {
  ensure_project
  local loops=4 term_dir kill_dir ups1 ups2 bad n msg s dups
  local term_total term_before term_secs term_gone term_inflight kill_total kill_before kill_secs
  ups1=$(ups_of 1)
  ups2=$(ups_of 2)

  # Phase 1: SIGTERM to web1 under load.
  load_phase term 1 TERM
  term_dir=$PHASE_DIR term_before=$PHASE_BEFORE term_secs=$PHASE_SECS term_gone=$PHASE_GONE
  term_inflight=$(in_flight web1 "$PHASE_CLOCK")
  term_total=$(cat "$term_dir"/*.log | wc -l)
  bad=$(cat "$term_dir"/*.log | grep -v '^2' || true)
  if [ -n "$bad" ]; then
    n=$(wc -l <<<"$bad")
    msg=$(head -n 5 <<<"$bad" | paste -sd ';' -)
    note "HAProxy's log of requests that did not end well:"
    grep -v ' ---- ' "$CLUSTER_DIR/logs/haproxy.log" | grep '"' | tail -n 10 >&2 || true
    note "web1's log after the signal:"
    tail -n 15 "$CLUSTER_DIR/logs/web1.log" | sed 's/\x1b\[[0-9;]*m//g' >&2 || true
    fail "web-stop: SIGTERM to web1 under load: $n of $term_total writes through the proxy failed (status summary number: $msg)"
  fi
  await_exit web1 40 || fail "web-stop: web1 still running 40 s after SIGTERM"
  [ "$EXIT_STATUS" = 0 ] || fail "web-stop: web1 exited with status $EXIT_STATUS after SIGTERM"
  term_gone=${term_gone:-$(secs_since "$PHASE_T_SIGNAL")}
  start_web 1
  await_web 1
  await_proxy_up 1 $((ups1 + 1))
  read_back "$term_dir"
  dups=$(twice "term-")
  [ -z "$dups" ] || fail "web-stop: SIGTERM to web1 under load: tickets filed twice: $(paste -sd ' ' - <<<"$dups")"
  say "PASS web-stop: SIGTERM to web1 after $term_before writes, with $term_inflight in its hands: $term_total writes through the proxy in ${term_secs}s, none failed, none twice, all read back; web1 answered its last ones and exited 0 ${term_gone}s after the signal, then rejoined"

  # Phase 2: SIGKILL to web2 under load.
  load_phase kill 2 KILL
  kill_dir=$PHASE_DIR kill_before=$PHASE_BEFORE kill_secs=$PHASE_SECS
  kill_total=$(cat "$kill_dir"/*.log | wc -l)
  start_web 2
  await_web 2
  await_proxy_up 2 $((ups2 + 1))
  read_back "$term_dir" "$kill_dir"
  # What went wrong must be limited to the requests web2 had in hand: one per loop, and the
  # slow ones (4) it was reading.
  local failed failed_n=0 kill_dups=0 landed=0 detail
  failed=$(cat "$kill_dir"/*.log | grep -v '^2' || true)
  dups=$(twice "kill-")
  [ -z "$dups" ] || kill_dups=$(wc -l <<<"$dups")
  if [ -n "$failed" ]; then
    failed_n=$(wc -l <<<"$failed")
    while read -r _ s _; do
      if awk -v s="$s" '$2 == s { f = 1 } END { exit !f }' "$LISTING"; then landed=$((landed + 1)); fi
    done <<<"$failed"
    detail="$failed_n failed ($(awk '{print $1}' <<<"$failed" | sort | uniq -c | awk '{printf "%s%s x%s", (NR>1?", ":""), $2, $1}'); $landed of them filed nonetheless)"
  else
    detail="none failed"
  fi
  if [ "$kill_dups" = 0 ]; then
    detail="$detail, none filed twice"
  else
    detail="$detail, $kill_dups filed twice ($(paste -sd ' ' - <<<"$dups"): done by web2, resent by the client after the proxy closed its kept-alive connection unanswered)"
  fi
  [ $((failed_n + kill_dups)) -le $((loops + 4)) ] ||
    fail "web-stop: SIGKILL to web2 under load: $detail: more than the $((loops + 4)) requests web2 can have had in hand"
  say "PASS web-stop: SIGKILL to web2 after $kill_before writes: $kill_total writes in ${kill_secs}s, $detail; all $(cat "$term_dir"/*.log "$kill_dir"/*.log | grep -c '^2') acknowledged writes of both phases read back; web2 restarted and rejoined"

  # No task left behind: a request queues its tasks as a record in the store, then a message
  # to the broker; web2 died with requests in hand.
  local orphans
  orphans=$(orphaned_tasks)
  [ -z "$orphans" ] || fail "web-stop: after SIGKILL to web2, $(wc -l <<<"$orphans") task record(s) stay queued, never attempted, with nothing in the broker to deliver them: web2 stored them and died before publishing; they will never run (and one with a dedup key would swallow every later task of its key): $(head -n 3 <<<"$orphans" | cut -c1-300 | paste -sd ';' -)"
  say "PASS web-stop: no task left behind (none queued without a message in the broker)"
}

run_checks() {
  local c t0
  WEB1="http://127.0.0.1:$WEB1_PORT"
  WEB2="http://127.0.0.1:$WEB2_PORT"
  for c in ${CHECKS:-$ALL_CHECKS}; do
    t0=$(now_ms)
    case "$c" in
      login) check_login ;;
      wiki) check_wiki ;;
      search) check_search ;;
      worker-kill) check_worker_kill ;;
      web-stop) check_web_stop ;;
      *) fail "unknown check \"$c\" (known: $ALL_CHECKS)" ;;
    esac
    note "$c took $(secs_since "$t0")s"
  done
}

# --- commands -------------------------------------------------------------------------------

default_bin() {
  if [ -x "$repo/target/release/forge" ]; then echo "$repo/target/release/forge"; else echo "$repo/target/debug/forge"; fi
}

setup_dir() {
  CREATED_DIR=0
  if [ -z "${CLUSTER_DIR:-}" ]; then
    CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/forge-cluster.XXXXXX")
    CREATED_DIR=1
  fi
  mkdir -p "$CLUSTER_DIR"
  CLUSTER_DIR=$(cd "$CLUSTER_DIR" && pwd)
  if [ -n "$(ls -A "$CLUSTER_DIR/pids" 2>/dev/null)" ]; then
    echo "$CLUSTER_DIR holds a running cluster's pids: run '$0 down' with CLUSTER_DIR=$CLUSTER_DIR first" >&2
    exit 1
  fi
}

FAILED=0
# A command that fails where nothing expected it: said, not a silent exit.
set -E
trap 'rc=$?; [ "$FAILED" = 1 ] || { FAILED=1; printf "FAIL %s: line %s: %s (exit %s)\n" "${cmd:-}" "$LINENO" "$BASH_COMMAND" "$rc"; }' ERR
cmd=${1:-}
case "$cmd" in
  up)
    FORGE_BIN=${FORGE_BIN:-$(default_bin)}
    setup_dir
    up_failed() {
      local rc=$?
      note "start failed; stopping what was started (logs: $CLUSTER_DIR/logs)"
      teardown
      exit "$rc"
    }
    trap up_failed EXIT
    trap 'exit 130' INT TERM
    start_cluster
    echo "$CLUSTER_DIR" >"$LAST_UP"
    print_summary
    say "stop it with: CLUSTER_DIR=$CLUSTER_DIR $0 down"
    trap - EXIT INT TERM
    ;;
  check)
    FORGE_BIN=${FORGE_BIN:-$(default_bin)}
    setup_dir
    on_exit() {
      local rc=$?
      trap - EXIT INT TERM
      if [ "$rc" != 0 ] || [ "$FAILED" = 1 ]; then
        for f in haproxy web1 web2 worker1 worker2; do
          [ -s "$CLUSTER_DIR/logs/$f.log" ] || continue
          note "last lines of $f's log:"
          tail -n 8 "$CLUSTER_DIR/logs/$f.log" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-400 >&2
        done
      fi
      teardown
      if [ "$rc" = 0 ] && [ "$FAILED" = 0 ] && [ "$CREATED_DIR" = 1 ]; then
        rm -rf "$CLUSTER_DIR"
      else
        note "logs kept in $CLUSTER_DIR/logs"
      fi
      exit "$rc"
    }
    trap on_exit EXIT
    trap 'exit 130' INT TERM
    t_all=$(now_ms)
    start_cluster
    say "cluster started in ${STARTUP_SECS}s (two web nodes, HAProxy, two workers; $DB_NAME on $MONGODB_URI, queues $AMQP_PREFIX.*)"
    run_checks
    say "all checks passed in $(secs_since "$t_all")s"
    ;;
  down)
    if [ -z "${CLUSTER_DIR:-}" ] && [ -f "$LAST_UP" ]; then CLUSTER_DIR=$(cat "$LAST_UP"); fi
    if [ -z "${CLUSTER_DIR:-}" ] || [ ! -f "$CLUSTER_DIR/cluster.env" ]; then
      echo "no cluster to stop: set CLUSTER_DIR to the directory 'up' printed" >&2
      exit 1
    fi
    # shellcheck source=/dev/null
    . "$CLUSTER_DIR/cluster.env"
    teardown
    if [ "${CREATED_DIR:-0}" = 1 ]; then rm -rf "$CLUSTER_DIR"; else note "$CLUSTER_DIR is kept"; fi
    [ "$(cat "$LAST_UP" 2>/dev/null)" != "$CLUSTER_DIR" ] || rm -f "$LAST_UP"
    say "stopped"
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
