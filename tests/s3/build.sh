#!/usr/bin/env bash
# Builds versitygw (module github.com/versity/versitygw, an S3-compatible server with a posix
# backend) from the Go module proxy and caches the binary outside the clone. Idempotent: exits at
# once when the cached binary for the chosen version exists. Prints the binary's path on the last
# line of stdout.
#
# Environment:
#   RUNNEL_CACHE        cache root (default ~/.cache/runnel); everything goes under $RUNNEL_CACHE/versitygw
#   VERSITYGW_VERSION   exact version (default: the newest v1.x the proxy serves)
set -euo pipefail

cache="${RUNNEL_CACHE:-$HOME/.cache/runnel}/versitygw"
mkdir -p "$cache"
export GOPATH="$cache/gopath"
export GOMODCACHE="$cache/gopath/pkg/mod"
export GOCACHE="$cache/gocache"
export GOTOOLCHAIN=local
export CGO_ENABLED=0

log() { echo "versitygw-build: $*" >&2; }

if ! command -v go >/dev/null; then
  log "go not found in PATH (needed to build versitygw)"
  exit 2
fi

version="${VERSITYGW_VERSION:-}"
if [ -z "$version" ]; then
  version="$(cd "$cache" && go list -m -versions github.com/versity/versitygw | tr ' ' '\n' | grep -E '^v1\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1 || true)"
  if [ -z "$version" ]; then
    log "the module proxy lists no github.com/versity/versitygw v1.x"
    exit 2
  fi
fi

bin="$cache/bin/versitygw-$version"
if [ -x "$bin" ]; then
  log "cached: $bin"
  echo "$bin"
  exit 0
fi

log "building github.com/versity/versitygw $version (takes a few minutes the first time)"
start=$(date +%s)
gobin="$cache/gobin-$version"
rm -rf "$gobin"
mkdir -p "$gobin" "$cache/bin"
GOBIN="$gobin" go install "github.com/versity/versitygw/cmd/versitygw@$version"
mv "$gobin/versitygw" "$bin"
rm -rf "$gobin"
# Only the binary is kept: the module and build caches (~800 MB) are not needed to run it.
go clean -cache -modcache >/dev/null 2>&1 || true
log "built in $(( $(date +%s) - start ))s: $bin"
echo "$bin"
