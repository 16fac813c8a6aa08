#!/usr/bin/env bash
# Starts (start) or stops (stop) the Temporal dev server with mailshift's
# search attributes registered and the UI on :8233.
#   DEV_DIR (default .mailshift-dev) holds its pid and log;
#   TEMPORAL_DB, when set, keeps history in that SQLite file across restarts.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dev="${DEV_DIR:-.mailshift-dev}"
port="${TEMPORAL_PORT:-7233}"
ui="${TEMPORAL_UI_PORT:-8233}"
mkdir -p "$dev"
case "${1:-start}" in
start)
  temporal="$("$here/temporal.sh")"
  if "$temporal" operator cluster health --address "127.0.0.1:$port" >/dev/null 2>&1; then
    echo "a Temporal server already answers on 127.0.0.1:$port (a stack left by DEMO_KEEP=1? run: make demo-stop)" >&2
    exit 1
  fi
  args=(server start-dev --ip 127.0.0.1 --port "$port" --ui-port "$ui" --log-level warn
    --search-attribute MigrationPlan=Keyword --search-attribute MigrationDomain=Keyword --search-attribute MigrationStage=Keyword)
  if [ -n "${TEMPORAL_DB:-}" ]; then args+=(--db-filename "$TEMPORAL_DB"); fi
  nohup "$temporal" "${args[@]}" >"$dev/temporal.log" 2>&1 &
  echo $! >"$dev/temporal.pid"
  for _ in $(seq 1 120); do
    if "$temporal" operator cluster health --address "127.0.0.1:$port" >/dev/null 2>&1; then
      echo "Temporal dev server on 127.0.0.1:$port, UI on http://localhost:$ui"
      exit 0
    fi
    if ! kill -0 "$(cat "$dev/temporal.pid")" 2>/dev/null; then
      echo "Temporal dev server exited; its log:" >&2; tail -20 "$dev/temporal.log" >&2; exit 1
    fi
    sleep 0.5
  done
  echo "Temporal dev server did not become healthy in 60 s; see $dev/temporal.log" >&2
  exit 1 ;;
stop)
  stopped=0
  for f in "$dev/worker.pid" "$dev/temporal.pid"; do
    if [ -f "$f" ]; then
      pid="$(cat "$f")"
      if kill "$pid" 2>/dev/null; then
        stopped=$((stopped + 1))
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      fi
      rm -f "$f"
    fi
  done
  echo "stopped $stopped process(es) of $dev" ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
