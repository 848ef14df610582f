#!/usr/bin/env bash
# Installs RabbitMQ and Redis from Debian's packages when they are missing, starts them on
# loopback when they are not running, and waits until both answer; then starts the failure
# tests' own RabbitMQ node (scripts/failures-rabbitmq.sh), the Redis Cluster and TLS Redis
# (scripts/redis-cluster.sh) and the 3-node RabbitMQ cluster (scripts/rabbitmq-cluster.sh) of
# the cluster tests. WA_SERVICES_TEST_NODES=0 skips those test-only nodes (scripts/run-local.sh
# needs one RabbitMQ and one Redis). Safe to run again.
set -euo pipefail

need=()
command -v rabbitmq-server >/dev/null 2>&1 || need+=(rabbitmq-server)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if ((${#need[@]})); then
  echo "services: installing ${need[*]}"
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Debian's wrapper starts every RabbitMQ node through `su rabbitmq`, whose PAM session
# leaves the soft file limit at 1024. Quorum queues hold files open and the test suites
# declare hundreds: past the limit a node accepts TCP connections but never answers the AMQP
# handshake. The environment file every node sources raises the soft limit to the hard one.
env_conf=/etc/rabbitmq/rabbitmq-env.conf
if [ "$(id -u)" -eq 0 ] && ! grep -qs 'wa-onboard: file limit' "$env_conf"; then
  mkdir -p /etc/rabbitmq
  printf '%s\n' 'ulimit -S -n "$(ulimit -H -n)" 2>/dev/null || true  # wa-onboard: file limit' >>"$env_conf"
fi

if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "services: starting redis"
  redis-server --daemonize yes --bind 127.0.0.1 --appendonly yes --dir /tmp >/dev/null
fi

if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  echo "services: starting rabbitmq"
  # Debian's package does not start the server inside a container.
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached >/dev/null 2>&1 || true
fi

for _ in $(seq 1 120); do
  if rabbitmq-diagnostics -q ping >/dev/null 2>&1 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    echo "services: rabbitmq $(rabbitmqctl version 2>/dev/null) and redis $(redis-server --version | awk '{print $3}') are up"
    if [ "${WA_SERVICES_TEST_NODES:-1}" = 0 ]; then
      exit 0
    fi
    # The failure tests' own node, which they stop and start: never the one above.
    "$(dirname "$0")/failures-rabbitmq.sh"
    # 3 masters + 3 replicas on 127.0.0.1:7001-7006, and TLS Redis on 127.0.0.1:6380.
    "$(dirname "$0")/redis-cluster.sh"
    # wa-c1..3@localhost on 5681..5683 (WA_CLUSTER_AMQP_URL for the tests).
    "$(dirname "$0")/rabbitmq-cluster.sh"
    exit 0
  fi
  sleep 1
done
echo "services: RabbitMQ or Redis did not come up within 120 s" >&2
exit 1
