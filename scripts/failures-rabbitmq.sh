#!/usr/bin/env bash
# Starts the RabbitMQ node that the failure tests (crates/cli/tests/failures) stop and start,
# when it is not running, and waits until it takes AMQP connections. A node of its own
# (default wa-failures@localhost, AMQP on 127.0.0.1:5673, distribution on 127.0.0.1:25673),
# with its data and logs under WA_FAILURES_RABBITMQ_BASE and no plugins, so stopping it never
# disturbs the machine's RabbitMQ or the tests that use it. Safe to run again; also starts the
# node's application when a test left it stopped.
set -euo pipefail
# shellcheck source=scripts/rabbitmq-node.sh
. "$(dirname "$0")/rabbitmq-node.sh"

node="${WA_FAILURES_RABBITMQ_NODE:-wa-failures@localhost}"
port="${WA_FAILURES_AMQP_PORT:-5673}"
base="${WA_FAILURES_RABBITMQ_BASE:-${TMPDIR:-/tmp}/wa-failures-rabbitmq}"

ping() { rabbitmq-diagnostics -n "$node" -q ping >/dev/null 2>&1; }
amqp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

if ! ping; then
  echo "failures-rabbitmq: starting $node on 127.0.0.1:$port (data in $base)"
  start_rabbitmq_node "$node" "$port" "$base"
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
