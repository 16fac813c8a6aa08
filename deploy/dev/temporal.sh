#!/usr/bin/env bash
# Prints the path of the pinned Temporal CLI, building it once with
# `go install` into a cache that later runs reuse (the first build takes a
# few minutes and about 2 GB of memory).
set -euo pipefail
version=v1.5.1
cache="${MAILSHIFT_CACHE:-$HOME/.cache/mailshift}/temporal-$version"
bin="$cache/temporal"
if [ ! -x "$bin" ]; then
  # A binary built by an earlier layout of this cache is reused as is.
  if [ -x "$HOME/.cache/mailshift/bin/temporal" ] && "$HOME/.cache/mailshift/bin/temporal" --version 2>/dev/null | grep -q "UI 2.42"; then
    mkdir -p "$cache" && cp "$HOME/.cache/mailshift/bin/temporal" "$bin"
  else
    echo "building the Temporal CLI $version (once; a few minutes)..." >&2
    mkdir -p "$cache"
    GOBIN="$cache" GOFLAGS=-buildvcs=false go install "github.com/temporalio/cli/cmd/temporal@$version" >&2
  fi
fi
echo "$bin"
