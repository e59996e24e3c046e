#!/usr/bin/env bash
# Stops a registry started by start.sh and removes its env file (the data directory is kept for
# post-mortems until the next start under the same name).
#
#   tests/registry/stop.sh [NAME]        NAME defaults to "default"
set -euo pipefail
# shellcheck source=../lib/service.sh
. "$(dirname "$0")/../lib/service.sh"

name="${1:-default}"
cache="${RUNNEL_CACHE:-$HOME/.cache/runnel}/registry"
state="$cache/instances/$name"
pidfile="$state/registry.pid"

rm -f "$cache/instances/$name.env"
service_stop "registry-stop[$name]" "$state" "$pidfile"
[ -z "$stopped" ] || echo "registry-stop[$name]: stopped $stopped" >&2
