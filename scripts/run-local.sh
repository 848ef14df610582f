#!/usr/bin/env bash
# Runs wa-onboard locally: RabbitMQ and Redis (installed from Debian's packages if missing),
# then the ingress, and sends Meta-shaped signed webhooks to show them accepted.
# Stays in the foreground; Ctrl-C stops what it started. DEMO_ONLY=1 stops after the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
cargo build -q -p wa-onboard
bin=target/debug/wa-onboard
run=.run; mkdir -p "$run"

export WA_APP_SECRET="${WA_APP_SECRET:-local-app-secret}"
export WA_VERIFY_TOKEN="${WA_VERIFY_TOKEN:-local-verify-token}"
export WA_LISTEN="${WA_LISTEN:-127.0.0.1:8080}"
export RUST_LOG="${RUST_LOG:-info}"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$bin" ingress >"$run/ingress.log" 2>&1 & pids+=($!)
for _ in $(seq 1 50); do
  curl -fs "http://$WA_LISTEN/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "http://$WA_LISTEN/readyz" >/dev/null || { echo "ingress not ready; see $run/ingress.log" >&2; exit 1; }

echo "== handshake: GET /webhooks/whatsapp"
curl -s "http://$WA_LISTEN/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=$WA_VERIFY_TOKEN&hub.challenge=1158201444"; echo
for f in partner_app_installed batch_mixed partner_app_uninstalled; do
  echo "== send tests/fixtures/$f.json"
  "$bin" send "tests/fixtures/$f.json" --url "http://$WA_LISTEN/webhooks/whatsapp"
done
echo "== a wrong signature is refused"
"$bin" send tests/fixtures/partner_app_installed.json --secret wrong --url "http://$WA_LISTEN/webhooks/whatsapp" || true
echo "== queues"
rabbitmqctl -q list_queues name messages type 2>/dev/null | grep '^wa\.' || true
echo "== logs in $run/; metrics at http://$WA_LISTEN/metrics"
[ -n "${DEMO_ONLY:-}" ] && exit 0
echo "running; Ctrl-C to stop"
wait
