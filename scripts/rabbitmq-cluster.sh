#!/usr/bin/env bash
# Starts a 3-node RabbitMQ cluster on loopback for the cluster tests and the scaling bench,
# when it is not running, joins the nodes, and waits until every node takes AMQP connections
# and sees the other two. Nodes wa-c1@localhost, wa-c2@localhost, wa-c3@localhost
# (WA_CLUSTER_NODE_PREFIX), AMQP on 127.0.0.1:5681..5683 (WA_CLUSTER_AMQP_PORT, the first
# one), distribution on 127.0.0.1:25681..25683, no plugins (management off), data and logs
# under WA_CLUSTER_RABBITMQ_BASE/<node>. A node of the machine's RabbitMQ is never touched.
#
# The nodes share one Erlang cookie: Debian's scripts run every node and rabbitmqctl as the
# rabbitmq user, so they all read that user's ~/.erlang.cookie (RABBITMQ_ERLANG_COOKIE is
# deprecated in 3.10). Set WA_CLUSTER_COOKIE to pass one with -setcookie instead, to the
# servers and to the CLI tools alike.
#
# Safe to run again: a running node is left as it is, a stopped application is started, a
# node not yet in the cluster is joined to the first one.
set -euo pipefail
# shellcheck source=scripts/rabbitmq-node.sh
. "$(dirname "$0")/rabbitmq-node.sh"

prefix="${WA_CLUSTER_NODE_PREFIX:-wa-c}"
first_port="${WA_CLUSTER_AMQP_PORT:-5681}"
base="${WA_CLUSTER_RABBITMQ_BASE:-${TMPDIR:-/tmp}/wa-cluster-rabbitmq}"
nodes=("${prefix}1@localhost" "${prefix}2@localhost" "${prefix}3@localhost")

cookie_args=""
if [ -n "${WA_CLUSTER_COOKIE:-}" ]; then
  cookie_args="-setcookie ${WA_CLUSTER_COOKIE}"
fi
export RABBITMQ_CTL_ERL_ARGS="$cookie_args"

ctl() { rabbitmqctl -n "$1" -q "${@:2}"; }
ping() { rabbitmq-diagnostics -n "$1" -q ping >/dev/null 2>&1; }
amqp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
running_nodes() {
  # The running nodes as the node sees them (cluster_status's JSON, without jq).
  rabbitmq-diagnostics -n "$1" -q cluster_status --formatter json 2>/dev/null |
    sed -n 's/.*"running_nodes":\[\([^]]*\)\].*/\1/p'
}
in_cluster() { # node, other: whether node's cluster counts other among its members
  rabbitmq-diagnostics -n "$1" -q cluster_status --formatter json 2>/dev/null |
    sed -n 's/.*"disk_nodes":\[\([^]]*\)\].*/\1/p' | grep -q "\"$2\""
}

start_node() { # index
  local node="${nodes[$1]}" port=$((first_port + $1)) dir="$base/${nodes[$1]%@*}"
  if ping "$node"; then
    return 0
  fi
  echo "rabbitmq-cluster: starting $node on 127.0.0.1:$port (data in $dir)"
  start_rabbitmq_node "$node" "$port" "$dir" "$cookie_args"
}

wait_ping() { # node
  for _ in $(seq 1 120); do
    ping "$1" && return 0
    sleep 1
  done
  echo "rabbitmq-cluster: $1 does not answer ping within 120 s (logs in $base)" >&2
  exit 1
}

for i in 0 1 2; do start_node "$i"; done
for i in 0 1 2; do wait_ping "${nodes[$i]}"; done

# A test that failed half-way may have left an application stopped.
for i in 0 1 2; do
  amqp_open $((first_port + i)) || ctl "${nodes[$i]}" start_app >/dev/null 2>&1 || true
done

# Join the second and third node to the first, unless they already are.
for i in 1 2; do
  node="${nodes[$i]}"
  if ! in_cluster "$node" "${nodes[0]}"; then
    echo "rabbitmq-cluster: joining $node to ${nodes[0]}"
    ctl "$node" stop_app
    ctl "$node" reset
    ctl "$node" join_cluster "${nodes[0]}" >/dev/null 2>&1
    ctl "$node" start_app
  fi
done

for _ in $(seq 1 120); do
  up=0
  for i in 0 1 2; do
    running="$(running_nodes "${nodes[$i]}")"
    if amqp_open $((first_port + i)) &&
      [ "$(tr ',' '\n' <<<"$running" | grep -c "${prefix}[123]@localhost")" -eq 3 ]; then
      up=$((up + 1))
    fi
  done
  if [ "$up" -eq 3 ]; then
    echo "rabbitmq-cluster: ${nodes[*]} joined, AMQP on 127.0.0.1:$first_port..$((first_port + 2))"
    exit 0
  fi
  sleep 1
done
echo "rabbitmq-cluster: the cluster did not form within 120 s (logs in $base)" >&2
exit 1
