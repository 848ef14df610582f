#!/usr/bin/env bash
# Runs wa-onboard locally, without internet: RabbitMQ and Redis (installed from Debian's
# packages if missing), the Graph API simulator, a worker, the ingress and the internal API;
# then plays a customer's install -> business token -> uninstall with Meta-shaped signed
# webhooks, reading the tenant and its token through the internal API as well.
# Stays in the foreground; Ctrl-C stops what it started. DEMO_ONLY=1 stops after the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
WA_SERVICES_TEST_NODES=0 scripts/services.sh
cargo build -q -p wa-onboard
bin="${CARGO_TARGET_DIR:-target}/debug/wa-onboard"
run=.run; mkdir -p "$run"

export WA_APP_SECRET="${WA_APP_SECRET:-local-app-secret}"
export WA_VERIFY_TOKEN="${WA_VERIFY_TOKEN:-local-verify-token}"
export WA_LISTEN="${WA_LISTEN:-127.0.0.1:8080}"
export WA_METRICS_LISTEN="${WA_METRICS_LISTEN:-127.0.0.1:9090}"
export WA_GRAPH_SIM_LISTEN="${WA_GRAPH_SIM_LISTEN:-127.0.0.1:8081}"
export WA_GRAPH_BASE="${WA_GRAPH_BASE:-http://$WA_GRAPH_SIM_LISTEN}"
export WA_SYSTEM_USER_ID="${WA_SYSTEM_USER_ID:-61550000000001}"
# The app id the sample payloads (tests/fixtures) name.
export WA_APP_ID="${WA_APP_ID:-1061231232323117}"
export WA_SYSTEM_USER_TOKEN="${WA_SYSTEM_USER_TOKEN:-local-system-user-token}"
# 32 bytes, base64. Local demo only: production keys come from a secret store (WA_TOKEN_KEY_FILE).
export WA_TOKEN_KEY="${WA_TOKEN_KEY:-bG9jYWwtZGVtby1rZXktMzItYnl0ZXMtbG9uZyEhISE=}"
export WA_PARTNER_BUSINESS_IDS="${WA_PARTNER_BUSINESS_IDS:-2949482758682047}"
export WA_REDIS_PREFIX="${WA_REDIS_PREFIX:-wa-local:}"
export WA_API_LISTEN="${WA_API_LISTEN:-127.0.0.1:8090}"
# name:token pairs for the internal API. Local demo only. The demo reads through the API as
# the first caller of WA_API_TOKENS (or as `crm` with API_TOKEN when WA_API_TOKENS is unset).
api_token="${API_TOKEN:-local-crm-api-token-0123456789}"
export WA_API_TOKENS="${WA_API_TOKENS:-crm:$api_token}"
first_pair="${WA_API_TOKENS%%,*}"
api_token="${first_pair#*:}"
export RUST_LOG="${RUST_LOG:-info}"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

wait_http() { # URL NAME LOG
  for _ in $(seq 1 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "$2 not ready; see $3" >&2; exit 1
}
"$bin" graph-sim >"$run/graph-sim.log" 2>&1 & pids+=($!)
"$bin" worker >"$run/worker.log" 2>&1 & pids+=($!)
"$bin" ingress >"$run/ingress.log" 2>&1 & pids+=($!)
"$bin" api >"$run/api.log" 2>&1 & pids+=($!)
wait_http "http://$WA_METRICS_LISTEN/readyz" worker "$run/worker.log"
wait_http "http://$WA_LISTEN/readyz" ingress "$run/ingress.log"
wait_http "http://$WA_API_LISTEN/readyz" api "$run/api.log"
api() { curl -s -H "Authorization: Bearer $api_token" "http://$WA_API_LISTEN$1"; echo; }

url="http://$WA_LISTEN/webhooks/whatsapp"
waba=495709166956424
tenant() { "$bin" tenants get "$waba" 2>/dev/null || true; }
until_status() { # JQ-free: wait until the record contains the text
  for _ in $(seq 1 100); do tenant | grep -q "$1" && return 0; sleep 0.1; done
  echo "tenant never showed $1" >&2; tenant >&2; exit 1
}

echo "== handshake: GET /webhooks/whatsapp"
curl -s "$url?hub.mode=subscribe&hub.verify_token=$WA_VERIFY_TOKEN&hub.challenge=1158201444"; echo
# The fixtures, stamped with the current time so each run's events are the newest ones.
now=$(date +%s)
sed "s/\"time\": 1763900000/\"time\": $now/" tests/fixtures/partner_app_installed.json >"$run/install.json"
sed "s/\"time\": 1763990000/\"time\": $((now + 1))/" tests/fixtures/partner_app_uninstalled_bare.json >"$run/uninstall.json"
echo "== install (tests/fixtures/partner_app_installed.json)"
"$bin" send "$run/install.json" --url "$url"
until_status '"status":"active"'
echo "== the tenant, token fetched from the simulator and stored encrypted"
tenant
echo "== the same tenant through the internal API: GET /v1/tenants/$waba"
api "/v1/tenants/$waba"
echo "== its business token, audit-logged in $run/api.log: GET /v1/tenants/$waba/token"
api "/v1/tenants/$waba/token"
echo "== without a bearer (401)"
curl -s "http://$WA_API_LISTEN/v1/tenants/$waba"; echo
echo "== a wrong signature is refused"
"$bin" send tests/fixtures/partner_app_installed.json --secret wrong --url "$url" || true
echo "== uninstall without waba_info (tests/fixtures/partner_app_uninstalled_bare.json)"
"$bin" send "$run/uninstall.json" --url "$url"
until_status '"status":"uninstalled"'
tenant
echo "== token after uninstall (exit 3: none)"
"$bin" tenants token "$waba" || echo "exit $?"
echo "== and through the internal API (404)"
api "/v1/tenants/$waba/token"
echo "== queues"
rabbitmqctl -q list_queues name messages type 2>/dev/null | grep '^wa\.' || true
echo "== logs in $run/; ingress http://$WA_LISTEN/metrics, worker http://$WA_METRICS_LISTEN/metrics, api http://$WA_API_LISTEN/metrics (with the bearer)"
[ -n "${DEMO_ONLY:-}" ] && exit 0
echo "running; Ctrl-C to stop"
wait
