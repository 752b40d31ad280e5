#!/usr/bin/env bash
# Two keygate nodes behind HAProxy on loopback, sharing one Postgres database
# and one Redis (README, "Running several nodes"). It starts everything,
# shows a key created on one node working through the load balancer on both,
# revoked on the other node, and the cluster surviving a node's death; then
# it stops everything and drops its database.
#
#   examples/cluster/run.sh
#
# Needs: go, haproxy, python3 (the upstream), Postgres on 127.0.0.1:5432
# (trust auth for user postgres, or set PG=<server URL>) and Redis on
# 127.0.0.1:6379 — what .ci/run sets up.
set -euo pipefail
cd "$(dirname "$0")/../.."
PG=${PG:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
DB=keygate_example_$$
DSN=${PG%%/postgres\?*}/$DB?sslmode=disable
TOKEN=example-admin-token-0123456789
LB=127.0.0.1:18080
dir=$(mktemp -d)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$PG" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }
admin() { curl -sS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' "$@"; }
status() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "http://$LB/"; }

say "building keygate; database $DB"
go build -o "$dir/keygate" .
psql "$PG" -qc "CREATE DATABASE $DB"

python3 -m http.server 18090 --bind 127.0.0.1 --directory "$dir" >/dev/null 2>&1 &
pids+=($!)

for n in 1 2; do
  cat >"$dir/node$n.yaml" <<YAML
proxy:  {listen: "127.0.0.1:1808$n", upstreams: ["http://127.0.0.1:18090"]}
admin:  {listen: "127.0.0.1:1908$n", token: "$TOKEN"}
store:  {driver: postgres, dsn: "$DSN", max_conns: 5}
limiter: {backend: redis, redis_addr: "127.0.0.1:6379"}
rate_limits:
  personal: {limit: 5, window: 1m}
log: {level: warn}
YAML
done

say "starting both nodes at the same moment on the empty database"
for n in 1 2; do
  "$dir/keygate" serve --config "$dir/node$n.yaml" 2>"$dir/node$n.log" &
  pids+=($!)
done
node1=${pids[1]}
for n in 1 2; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:1908$n/readyz" >/dev/null && break; sleep 0.1; done
  echo "node$n /readyz: $(curl -s "http://127.0.0.1:1908$n/readyz")"
done

cat >"$dir/haproxy.cfg" <<CFG
global
  log stderr format raw local0 warning
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend api
  bind $LB
  default_backend keygate
backend keygate
  balance roundrobin
  option httpchk GET /readyz
  default-server inter 500ms fall 2 rise 2
  server node1 127.0.0.1:18081 check port 19081
  server node2 127.0.0.1:18082 check port 19082
CFG
haproxy -f "$dir/haproxy.cfg" -db >"$dir/haproxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://$LB/" && break; sleep 0.1; done
sleep 1.2 # two passed health checks bring the servers up

say "a user and a key, created on node 1"
user=alice-$$ # limits stay in Redis after the run: a fresh owner each time
admin -X PUT "http://127.0.0.1:19081/v1/users/$user" -d '{"email":"alice@example.com"}' >/dev/null
key=$(admin -X POST http://127.0.0.1:19081/v1/keys -d "{\"user_id\":\"$user\"}")
tok=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' <<<"$key")
id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$key")
echo "key $id"

say "7 requests through HAProxy (round robin over both nodes; the limit of 5 a minute is shared in Redis)"
for i in $(seq 7); do printf '%s ' "$(status "$tok")"; done; echo

say "usage adds up across the nodes (asked of node 2)"
sleep 1.5
admin "http://127.0.0.1:19082/v1/usage?key_id=$id&interval=day" | python3 -c 'import json,sys; u=json.load(sys.stdin); print("total", u["total"])'

say "a second key; archived on node 2, refused at once on both nodes"
read -r id2 tok2 < <(admin -X POST http://127.0.0.1:19082/v1/keys -d '{}' | python3 -c 'import json,sys; k=json.load(sys.stdin); print(k["id"], k["token"])')
printf 'before: %s %s\n' "$(status "$tok2")" "$(status "$tok2")"
admin -X POST "http://127.0.0.1:19082/v1/keys/$id2/archive" >/dev/null
printf 'after:  %s %s\n' "$(status "$tok2")" "$(status "$tok2")"

say "node 1 killed (SIGKILL): HAProxy sends everything to node 2"
tok3=$(admin -X POST http://127.0.0.1:19082/v1/keys -d '{}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
kill -9 "$node1"; wait "$node1" 2>/dev/null || true
sleep 1.5 # two failed health checks take node 1 out
for i in $(seq 4); do printf '%s ' "$(status "$tok3")"; done; echo

say "done; stopping everything and dropping $DB"
