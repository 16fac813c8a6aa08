#!/usr/bin/env bash
# A production-shaped Temporal cluster in the lab: the server built from
# go.temporal.io/server at the version the pinned CLI embeds (build.sh),
# its schema and SQL visibility on a private PostgreSQL, one process per
# service (frontend, history, matching, worker), mTLS to the frontend.
#   deploy/cluster/cluster.sh start DIR    lay out and start a fresh cluster in DIR
#   deploy/cluster/cluster.sh status DIR
#   deploy/cluster/cluster.sh restart DIR SERVICE [--kill]   (SERVICE: history, matching, frontend, worker, postgres)
#   deploy/cluster/cluster.sh stop DIR     stop it (DIR stays; remove it to start afresh)
# start prints the MAILSHIFT_TEMPORAL_* variables the worker and starter need.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cmd="${1:-}"; dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2
fi
cache="${MAILSHIFT_CACHE:-$HOME/.cache/mailshift}"
tool="$cache/mailcluster"
(cd "$root" && GOFLAGS=-buildvcs=false go build -o "$tool" ./cmd/mailcluster)
case "$cmd" in
start) bin="$("$here/build.sh")"; exec "$tool" start -dir "$dir" -bin "$bin" ;;
status|stop) exec "$tool" "$cmd" -dir "$dir" ;;
restart)
  svc="${3:?restart needs a SERVICE}"; shift 3
  kill=(); if [ "${1:-}" = "--kill" ]; then kill=(-kill); fi
  exec "$tool" restart -dir "$dir" -service "$svc" "${kill[@]}" ;;
*) echo "unknown command $cmd: start, status, restart or stop" >&2; exit 2 ;;
esac
