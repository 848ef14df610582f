#!/usr/bin/env bash
# Starts the RabbitMQ node that the failure tests (crates/cli/tests/failures) stop and start,
# when it is not running, and waits until it takes AMQP connections. A node of its own
# (default wa-failures@localhost, AMQP on 127.0.0.1:5673, distribution on 127.0.0.1:25673),
# with its data and logs under WA_FAILURES_RABBITMQ_BASE and no plugins, so stopping it never
# disturbs the machine's RabbitMQ or the tests that use it. Safe to run again; also starts the
# node's application when a test left it stopped.
set -euo pipefail

node="${WA_FAILURES_RABBITMQ_NODE:-wa-failures@localhost}"
port="${WA_FAILURES_AMQP_PORT:-5673}"
base="${WA_FAILURES_RABBITMQ_BASE:-${TMPDIR:-/tmp}/wa-failures-rabbitmq}"

ping() { rabbitmq-diagnostics -n "$node" -q ping >/dev/null 2>&1; }
amqp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

if ! ping; then
  echo "failures-rabbitmq: starting $node on 127.0.0.1:$port (data in $base)"
  mkdir -p "$base/mnesia" "$base/log"
  echo '[].' >"$base/enabled_plugins"
  : >"$base/rabbitmq.conf"
  # Debian's scripts run the server as the rabbitmq user when started by root.
  if [ "$(id -u)" -eq 0 ] && id rabbitmq >/dev/null 2>&1; then
    chown -R rabbitmq:rabbitmq "$base"
  fi
  RABBITMQ_NODENAME="$node" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$port" \
    RABBITMQ_DIST_PORT="$((port + 20000))" \
    RABBITMQ_MNESIA_BASE="$base/mnesia" \
    RABBITMQ_LOG_BASE="$base/log" \
    RABBITMQ_PID_FILE="$base/pid" \
    RABBITMQ_CONFIG_FILE="$base/rabbitmq.conf" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$base/advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    rabbitmq-server -detached >/dev/null 2>&1 || true
fi

for _ in $(seq 1 120); do
  if ping; then
    # A test that failed half-way may have left the application stopped.
    amqp_open || rabbitmqctl -n "$node" -q start_app >/dev/null 2>&1 || true
    if amqp_open; then
      echo "failures-rabbitmq: $node takes AMQP on 127.0.0.1:$port"
      exit 0
    fi
  fi
  sleep 1
done
echo "failures-rabbitmq: $node did not come up within 120 s (logs in $base/log)" >&2
exit 1
