#!/usr/bin/env bash
# Mail in (issue 12): mails per second through `forge mail-in`, each a separate process as an
# MTA runs it (read the message, open the store, check the reply token, post the comment,
# exit). A running `forge serve` (embedded store) writes a real ticket notification; its
# `Reply-To` is the address every delivery goes to. N deliveries one after the other (as one
# MTA pipe does), then N more, 4 at once (as Postfix runs several deliveries).
# Usage: bench/mail-in.sh [N]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_store_binary
apt_install curl
n=${1:-200}

cargo build --release --bin forge
bin=$PWD/target/release/forge
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export FORGE_DATA_DIR="$data" FORGE_BIND="127.0.0.1:$port" FORGE_LOG=warn FORGE_MAIL_DOMAIN=forge.example
unset FORGE_MONGODB_URI
cleanup() { kill -TERM "${pid:-}" 2>/dev/null || true; wait "${pid:-}" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
"$bin" serve & pid=$!
until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.05; done
echo 'bench-password-1' | "$bin" user create --username bench --email bench@example.org --admin >/dev/null
echo 'bob-password-12' | "$bin" user create --username bob --email bob@example.org >/dev/null
token=$("$bin" token create --user bench --name bench)
base="http://127.0.0.1:$port"

# Bob (a developer: not held by the per-account post limit, as moderators are not) watches
# the tracker; a comment by the bench account mails him; his reply address is the target.
python3 - "$base" "$token" "$data" > "$data/reply.eml" <<'PY'
import email, glob, http.client, json, re, sys, time, urllib.parse
base, token, data = sys.argv[1:4]
u = urllib.parse.urlparse(base)
def req(method, path, body=None, headers=None):
    c = http.client.HTTPConnection(u.hostname, u.port)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse(); d = r.read()
    if r.status >= 400:
        raise SystemExit(f"{method} {path}: {r.status} {d[:300]!r}")
    return r, d
api = lambda m, p, b: req(m, p, json.dumps(b), {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
api("POST", "/rest/p", {"shortname": "bench", "name": "Bench"})
api("POST", "/rest/p/bench/admin/members", {"username": "bob", "role": "developer"})
api("POST", "/rest/p/bench/tickets/", {"summary": "Mail in target"})
cookies = {}
def keep(r):
    for k, v in r.getheaders():
        if k.lower() == "set-cookie":
            name, val = v.split(";")[0].split("=", 1); cookies[name] = val
jar = lambda: "; ".join(f"{k}={v}" for k, v in cookies.items())
def csrf(html):
    return re.search(rb'name="csrf_token" value="([^"]+)"', html).group(1).decode()
r, d = req("GET", "/auth/login"); keep(r)
form = urllib.parse.urlencode({"csrf_token": csrf(d), "username": "bob", "password": "bob-password-12"})
r, d = req("POST", "/auth/login", form, {"Cookie": jar(), "Content-Type": "application/x-www-form-urlencoded"}); keep(r)
r, d = req("GET", "/p/bench/tickets/1/", None, {"Cookie": jar()})
form = urllib.parse.urlencode({"csrf_token": csrf(d), "tool": "tickets", "action": "watch"})
req("POST", "/p/bench/_watch", form, {"Cookie": jar(), "Content-Type": "application/x-www-form-urlencoded"})
api("POST", "/rest/p/bench/tickets/1/comments", {"text": "Please reply by mail."})
for _ in range(400):
    files = glob.glob(f"{data}/mail/*.eml")
    if files: break
    time.sleep(0.05)
else:
    raise SystemExit("no notification mail was written")
m = email.message_from_binary_file(open(files[0], "rb"))
reply_to = m["Reply-To"]
sys.stdout.write(f"From: Bob <bob@example.org>\r\nTo: {reply_to}\r\nSubject: Re: {m['Subject']}\r\n"
                 f"In-Reply-To: {m['Message-ID']}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                 "Thanks, I can reproduce it.\r\n\r\nOn Mon, Forge wrote:\r\n> Please reply by mail.\r\n-- \r\nBob\r\n")
PY
echo "reply address: $(grep '^To:' "$data/reply.eml")"

deliver() { "$bin" mail-in < "$data/reply.eml"; }
export -f deliver; export bin data
deliver  # warm the file cache; must exit 0
t0=$(date +%s.%N)
for _ in $(seq 1 "$n"); do deliver; done
t1=$(date +%s.%N)
seq 1 "$n" | xargs -P 4 -I{} bash -c deliver
t2=$(date +%s.%N)
# Every delivery is a comment: the bench account's, the warm-up's, and 2N.
posted=$(python3 - "$base" <<'PY'
import json, sys, urllib.request
total, page = 0, 1
while True:
    got = json.load(urllib.request.urlopen(f"{sys.argv[1]}/rest/p/bench/tickets/1/comments?limit=100&page={page}"))["comments"]
    total += len(got); page += 1
    if len(got) < 100: break
print(total)
PY
)
python3 - "$n" "$t0" "$t1" "$t2" <<'PY'
import sys
n, t0, t1, t2 = int(sys.argv[1]), *map(float, sys.argv[2:])
print(f"forge mail-in, {n} deliveries one after the other: {n/(t1-t0):.1f} mails/s ({(t1-t0)/n*1000:.0f} ms each)")
print(f"forge mail-in, {n} deliveries 4 at once:            {n/(t2-t1):.1f} mails/s")
PY
echo "comments on the ticket: $posted (expected $((2 * n + 2)))"
