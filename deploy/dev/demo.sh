#!/usr/bin/env bash
# The demo: Temporal dev server + UI, a worker running the embedded
# platform, and the starter applying a 5-account plan with auto-confirm.
# DEMO_KEEP=1 leaves everything running to explore the UI.
# TEMPORAL_PORT (default 7233) and TEMPORAL_UI_PORT (default 8233) move the
# dev server, and the worker, the starter and the printed UI address with
# it; DEV_DIR (default .mailshift-dev) holds pids, logs and the report.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEV_DIR="${DEV_DIR:-.mailshift-dev}"
export TEMPORAL_PORT="${TEMPORAL_PORT:-7233}" TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
temporal_addr="127.0.0.1:$TEMPORAL_PORT"
ui="http://localhost:$TEMPORAL_UI_PORT"
mkdir -p "$DEV_DIR" bin
go build -o bin/ ./worker ./starter
cleanup() {
  if [ "${DEMO_KEEP:-}" = "1" ]; then
    echo "DEMO_KEEP=1: stack left running (UI $ui); stop it with: make demo-stop DEV_DIR=$DEV_DIR"
  else
    deploy/dev/server.sh stop
  fi
}
trap cleanup EXIT
deploy/dev/server.sh start
rm -f "$DEV_DIR/dev.json"
nohup bin/worker --temporal "$temporal_addr" --dev --dev-dir "$DEV_DIR" --log-format console --log-level warn >"$DEV_DIR/worker.log" 2>&1 &
echo $! >"$DEV_DIR/worker.pid"
for _ in $(seq 1 120); do
  [ -f "$DEV_DIR/dev.json" ] && break
  kill -0 "$(cat "$DEV_DIR/worker.pid")" 2>/dev/null || { echo "worker exited:" >&2; tail -20 "$DEV_DIR/worker.log" >&2; exit 1; }
  sleep 0.5
done
[ -f "$DEV_DIR/dev.json" ] || { echo "worker did not start its platform in 60 s; see $DEV_DIR/worker.log" >&2; exit 1; }
plan="demo-$(date +%H%M%S)"
bin/starter --temporal "$temporal_addr" --dev-dir "$DEV_DIR" plan deploy/dev/demo-plan.csv --plan-id "$plan" --auto-confirm --dns-interval 2s --wait --timeout 10m
echo
echo "All 5 accounts migrated. Watch them in the Temporal UI:"
echo "  $ui/namespaces/default/workflows?query=MigrationPlan%3D%22$plan%22"
echo "Report: bin/starter --temporal $temporal_addr report --plan $plan --format csv"
bin/starter --temporal "$temporal_addr" report --plan "$plan" --format csv >"$DEV_DIR/report-$plan.csv"
echo "  (written to $DEV_DIR/report-$plan.csv)"
