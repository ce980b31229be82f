#!/usr/bin/env bash
# Runs the whole of Tollgate on this machine: the Temporal dev server with its Web UI,
# the TalentLMS simulator, the worker and the starter, with demo course links and one
# demo purchase. Everything lives under .tollgate/; Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_temporal

PROFILE=${TOLLGATE_PROFILE:-debug}
cargo build --locked --bins $([ "$PROFILE" = release ] && echo --release)
BIN=target/$PROFILE

mkdir -p .tollgate
export TOLLGATE_DB=${TOLLGATE_DB:-.tollgate/tollgate.db}
export TOLLGATE_HOTTOK=${TOLLGATE_HOTTOK:-dev-hottok}
export TOLLGATE_API_TOKEN=${TOLLGATE_API_TOKEN:-dev-api-token}
export TOLLGATE_DASHBOARD_TOKEN=${TOLLGATE_DASHBOARD_TOKEN:-dev-dashboard-token}
export TOLLGATE_HTTP_ADDR=${TOLLGATE_HTTP_ADDR:-127.0.0.1:8088}
export TALENTLMS_URL=${TALENTLMS_URL:-http://127.0.0.1:8089}
export TALENTLMS_API_KEY=${TALENTLMS_API_KEY:-dev-talentlms-key}
export TEMPORAL_ADDRESS=${TEMPORAL_ADDRESS:-127.0.0.1:7233}
export TOLLGATE_LINK_POLL=${TOLLGATE_LINK_POLL:-10s}
export TOLLGATE_WORKER_METRICS_ADDR=${TOLLGATE_WORKER_METRICS_ADDR:-127.0.0.1:9464}

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# shellcheck disable=SC2046
temporal server start-dev --ip 127.0.0.1 --port 7233 --ui-port 8233 \
  --db-filename .tollgate/temporal.db --log-level warn $(search_attribute_flags) \
  --dynamic-config-value matching.enableFairness=true \
  > .tollgate/temporal.log 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
  temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 && break
  sleep 0.2
done
temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null || { echo "Temporal did not start; see .tollgate/temporal.log"; exit 1; }

SIMULATOR_ADDR=127.0.0.1:8089 "$BIN/tollgate-simulator" > .tollgate/simulator.log 2>&1 & pids+=($!)
"$BIN/tollgate-worker" > .tollgate/worker.log 2>&1 & pids+=($!)
"$BIN/tollgate-starter" serve > .tollgate/starter.log 2>&1 & pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://$TOLLGATE_HTTP_ADDR/healthz" >/dev/null && break; sleep 0.1; done

# Demo links: lifetime, a one-year term, and a monthly subscription with 3 days of grace.
"$BIN/tollgate-starter" links add --product 1001 --course 101 --policy lifetime >/dev/null
"$BIN/tollgate-starter" links add --product 1002 --course 102 --policy fixed_term --term 365d >/dev/null
"$BIN/tollgate-starter" links add --product 1003 --course 103 --course 104 --policy subscription --grace 3d >/dev/null

# The revenue schedules (daily rollup, hourly reconciliation) on Temporal.
"$BIN/tollgate-starter" schedules apply >/dev/null

# One demo purchase, straight through the webhook.
now=$(($(date +%s) * 1000))
curl -sf -X POST "http://$TOLLGATE_HTTP_ADDR/webhooks/hotmart" -H "X-HOTMART-HOTTOK: $TOLLGATE_HOTTOK" \
  -H 'content-type: application/json' -d @- >/dev/null <<JSON
{"id":"demo-$now","creation_date":$now,"event":"PURCHASE_APPROVED","version":"2.0.0",
 "data":{"product":{"id":1001,"name":"Demo course"},
  "buyer":{"email":"demo.student@example.com","name":"Demo Student","first_name":"Demo","last_name":"Student"},
  "purchase":{"transaction":"HPDEMO$now","status":"APPROVED","approved_date":$now,
   "price":{"value":197.00,"currency_value":"BRL"}},
  "commissions":[{"value":180.53,"source":"PRODUCER","currency_value":"BRL"}]}}
JSON

cat <<EOF_MSG

Tollgate is running (logs in .tollgate/*.log):
  Temporal Web UI   http://127.0.0.1:8233   (search: BuyerEmail = 'demo.student@example.com')
  Webhook           POST http://$TOLLGATE_HTTP_ADDR/webhooks/hotmart   (X-HOTMART-HOTTOK: $TOLLGATE_HOTTOK)
  Health            http://$TOLLGATE_HTTP_ADDR/healthz   readiness: http://$TOLLGATE_HTTP_ADDR/readyz
  Staff console     http://$TOLLGATE_HTTP_ADDR/console   (sign in with $TOLLGATE_API_TOKEN)
  Metrics           http://$TOLLGATE_HTTP_ADDR/metrics (starter)   http://$TOLLGATE_WORKER_METRICS_ADDR/metrics (worker)
  Staff API         http://$TOLLGATE_HTTP_ADDR/docs   (Authorization: Bearer $TOLLGATE_API_TOKEN)
  TalentLMS sim     $TALENTLMS_URL/api/v1/   state: $TALENTLMS_URL/_sim/state
  Student status    $BIN/tollgate-starter status --email demo.student@example.com
  Dashboard         http://$TOLLGATE_HTTP_ADDR/dashboard?token=$TOLLGATE_DASHBOARD_TOKEN
  Revenue rows      $BIN/tollgate-starter revenue rows
  Schedules         Temporal UI -> Schedules (tollgate-revenue-rollup, tollgate-revenue-reconcile)

Press Ctrl-C to stop.
EOF_MSG
wait
