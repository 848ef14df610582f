# Sourced by scripts/failures-rabbitmq.sh and scripts/rabbitmq-cluster.sh: starts one extra
# RabbitMQ node of Debian's package on loopback, detached, with its own name, ports, data and
# log directories and no plugins, never touching the machine's own node.
#
#   start_rabbitmq_node NODE AMQP_PORT DIR [ERL_ARGS]
#
# Distribution on 127.0.0.1:(AMQP_PORT + 20000); ERL_ARGS are added to the server's Erlang
# arguments (e.g. `-setcookie`). Returns at once; the caller waits with
# `rabbitmq-diagnostics -n NODE -q ping`.
start_rabbitmq_node() {
  local node="$1" port="$2" dir="$3" erl_args="${4:-}"
  mkdir -p "$dir/mnesia" "$dir/log"
  echo '[].' >"$dir/enabled_plugins"
  : >"$dir/rabbitmq.conf"
  # Debian's scripts run the server as the rabbitmq user when started by root.
  if [ "$(id -u)" -eq 0 ] && id rabbitmq >/dev/null 2>&1; then
    chown -R rabbitmq:rabbitmq "$dir"
  fi
  RABBITMQ_NODENAME="$node" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$port" \
    RABBITMQ_DIST_PORT="$((port + 20000))" \
    RABBITMQ_MNESIA_BASE="$dir/mnesia" \
    RABBITMQ_LOG_BASE="$dir/log" \
    RABBITMQ_PID_FILE="$dir/pid" \
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} $erl_args" \
    rabbitmq-server -detached >/dev/null 2>&1 || true
}
