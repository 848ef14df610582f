#!/usr/bin/env bash
# Starts, on loopback and from Debian's redis-server only, the Redis the cluster and TLS tests
# use, when it is not running, and waits until it answers. Safe to run again; also restarts a
# node a test killed (it rejoins the cluster, as a replica of the node promoted in its place).
#
# - A Redis Cluster of 3 masters and 3 replicas on 127.0.0.1:7001-7006 (the first port is
#   WA_REDIS_CLUSTER_PORT), data under WA_REDIS_CLUSTER_BASE (default
#   ${TMPDIR:-/tmp}/wa-redis-cluster/<port>): AOF with `appendfsync everysec`, and a node
#   timeout of 2 s so a killed master's replica is promoted within a few seconds.
# - A standalone Redis speaking only TLS on 127.0.0.1:6380 (WA_REDIS_TLS_PORT), with a CA and
#   a server certificate for 127.0.0.1/localhost made by openssl under <base>/tls (the tests
#   trust <base>/tls/ca.crt; clients need no certificate).
#
# `--reset` stops these nodes and removes their data first (a cluster that cannot be
# repaired, e.g. after its data directory was partly deleted).
set -euo pipefail

first="${WA_REDIS_CLUSTER_PORT:-7001}"
tls_port="${WA_REDIS_TLS_PORT:-6380}"
base="${WA_REDIS_CLUSTER_BASE:-${TMPDIR:-/tmp}/wa-redis-cluster}"
ports=()
for i in 0 1 2 3 4 5; do ports+=("$((first + i))"); done
tls="$base/tls"

cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }
up() { cli "$1" ping >/dev/null 2>&1; }
tls_cli() { redis-cli -h 127.0.0.1 -p "$tls_port" --tls --cacert "$tls/ca.crt" "$@"; }

if [ "${1:-}" = "--reset" ]; then
  for p in "${ports[@]}"; do cli "$p" shutdown nosave >/dev/null 2>&1 || true; done
  tls_cli shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$base"
fi

if ! command -v openssl >/dev/null 2>&1; then
  echo "redis-cluster: installing openssl"
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq openssl >/dev/null
fi

# --- the cluster's nodes ---------------------------------------------------------------
for p in "${ports[@]}"; do
  up "$p" && continue
  echo "redis-cluster: starting node 127.0.0.1:$p"
  mkdir -p "$base/$p"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$p" --dir "$base/$p" \
    --logfile "$base/$p/redis.log" --pidfile "$base/$p/redis.pid" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --cluster-replica-validity-factor 0 \
    --appendonly yes --appendfsync everysec --save '' >/dev/null
done
for p in "${ports[@]}"; do
  for _ in $(seq 1 100); do up "$p" && break; sleep 0.1; done
  up "$p" || { echo "redis-cluster: node $p did not start (log: $base/$p/redis.log)" >&2; exit 1; }
done

info() { cli "$first" cluster info 2>/dev/null | tr -d '\r'; }
if info | grep -q '^cluster_slots_assigned:0$'; then
  echo "redis-cluster: creating the cluster (3 masters, 3 replicas)"
  addrs=()
  for p in "${ports[@]}"; do addrs+=("127.0.0.1:$p"); done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
fi

# Ready: every node says `ok`, knows all six, and three masters serve slots, each with a replica.
healthy() {
  local p masters
  for p in "${ports[@]}"; do
    cli "$p" cluster info 2>/dev/null | tr -d '\r' | grep -q '^cluster_state:ok$' || return 1
    cli "$p" cluster info 2>/dev/null | tr -d '\r' | grep -q '^cluster_known_nodes:6$' || return 1
  done
  masters=$(cli "$first" cluster nodes | awk '$3 ~ /master/ && $3 !~ /fail/ && $9 != "" {print $1}')
  [ "$(echo "$masters" | wc -w)" -eq 3 ] || return 1
  for m in $masters; do
    cli "$first" cluster nodes | awk -v m="$m" '$4 == m && $3 !~ /fail/ && $8 == "connected"' | grep -q . || return 1
  done
}
for _ in $(seq 1 300); do healthy && break; sleep 0.2; done
if ! healthy; then
  echo "redis-cluster: the cluster is not healthy after 60 s:" >&2
  cli "$first" cluster nodes >&2 || true
  exit 1
fi
echo "redis-cluster: 3 masters + 3 replicas on 127.0.0.1:${ports[0]}-${ports[5]}, cluster_state:ok"

# --- TLS --------------------------------------------------------------------------------
if [ ! -s "$tls/server.crt" ]; then
  echo "redis-cluster: making a CA and a server certificate in $tls"
  mkdir -p "$tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=wa-onboard test CA" -keyout "$tls/ca.key" -out "$tls/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$tls/server.ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
    -CAcreateserial -days 3650 -extfile "$tls/server.ext" -out "$tls/server.crt" 2>/dev/null
  chmod 600 "$tls"/*.key
fi
tls_up() { tls_cli ping >/dev/null 2>&1; }
if ! tls_up; then
  echo "redis-cluster: starting TLS redis on 127.0.0.1:$tls_port"
  redis-server --daemonize yes --bind 127.0.0.1 --port 0 --tls-port "$tls_port" \
    --tls-cert-file "$tls/server.crt" --tls-key-file "$tls/server.key" \
    --tls-ca-cert-file "$tls/ca.crt" --tls-auth-clients no \
    --dir "$tls" --logfile "$tls/redis.log" --pidfile "$tls/redis.pid" --save '' >/dev/null
fi
for _ in $(seq 1 100); do tls_up && break; sleep 0.1; done
tls_up || { echo "redis-cluster: TLS redis did not start (log: $tls/redis.log)" >&2; exit 1; }
echo "redis-cluster: TLS redis on rediss://127.0.0.1:$tls_port (CA $tls/ca.crt)"
