#!/usr/bin/env bash
# Prints the directory holding the pinned linters (staticcheck and Temporal's
# workflowcheck), building them once with `go install` into a cache that
# later runs reuse. A version bump lands in a new directory, so a stale
# binary is never picked up.
set -euo pipefail
# staticcheck v0.8 is the first line built for Go 1.26 (its go.mod says go 1.26).
staticcheck_version=v0.8.2
# The workflowcheck tagged with go.temporal.io/sdk v1.50.0.
workflowcheck_version=v0.6.0
cache="${MAILSHIFT_CACHE:-$HOME/.cache/mailshift}/lint-staticcheck-$staticcheck_version-workflowcheck-$workflowcheck_version"
if [ ! -x "$cache/staticcheck" ] || [ ! -x "$cache/workflowcheck" ]; then
  echo "building staticcheck $staticcheck_version and workflowcheck $workflowcheck_version (once)..." >&2
  mkdir -p "$cache"
  # Outside the module, so the linters' dependencies never touch go.mod.
  (cd "$cache" && GOBIN="$cache" GOFLAGS=-buildvcs=false go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version" >&2)
  (cd "$cache" && GOBIN="$cache" GOFLAGS=-buildvcs=false go install "go.temporal.io/sdk/contrib/tools/workflowcheck@$workflowcheck_version" >&2)
fi
echo "$cache"
