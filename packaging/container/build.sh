#!/usr/bin/env bash
# Builds the runnel container image from a runnel binary built on this machine.
# Usage: packaging/container/build.sh [--binary PATH] [--base IMAGE] [--tag TAG]
#   --binary  the runnel binary to put in (default: build it with the dist profile)
#   --base    the base image (default: runnel-test/debian:bookworm, from tests/images/build.sh;
#             debian:bookworm-slim where a registry is reachable). The binary needs the base's
#             glibc to be at least the build machine's.
#   --tag     the image tag (default: runnel:latest)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
binary="" base="runnel-test/debian:bookworm" tag="runnel:latest"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --base) base="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    *) echo "packaging/container/build.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [[ -z $binary ]]; then
  (cd "$root" && cargo build --quiet --locked --profile dist -p runnel-cli --bin runnel)
  binary="${CARGO_TARGET_DIR:-$root/target}/dist/runnel"
fi
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$here/Dockerfile" "$here/entrypoint.sh" "$context/"
cp "$binary" "$context/runnel"
docker build -q --build-arg "BASE=$base" -t "$tag" "$context" >/dev/null
echo "$tag"
