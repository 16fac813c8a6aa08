#!/usr/bin/env bash
# Prints the directory holding the Temporal server and its SQL tool, built
# once from the go.temporal.io/server module at the version the pinned CLI
# (deploy/dev/temporal.sh, v1.5.1) embeds, into a cache later runs reuse.
# The first build takes several minutes and about 2 GB of memory.
set -euo pipefail
version="${TEMPORAL_SERVER_VERSION:-v1.29.1}"
cache="${MAILSHIFT_CACHE:-$HOME/.cache/mailshift}/temporal-server-$version"
if [ ! -x "$cache/temporal-server" ] || [ ! -x "$cache/temporal-sql-tool" ]; then
  echo "building the Temporal server $version and temporal-sql-tool (once; several minutes)..." >&2
  mkdir -p "$cache/tmp"
  GOBIN="$cache/tmp" GOFLAGS=-buildvcs=false go install \
    "go.temporal.io/server/cmd/server@$version" \
    "go.temporal.io/server/cmd/tools/sql@$version" >&2
  mv "$cache/tmp/server" "$cache/temporal-server"
  mv "$cache/tmp/sql" "$cache/temporal-sql-tool"
  rmdir "$cache/tmp"
fi
echo "$cache"
