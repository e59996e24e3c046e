#!/usr/bin/env bash
# Stops a versitygw started by start.sh and removes its env file (the root directory is kept for
# post-mortems until the next start under the same name).
#
#   tests/s3/stop.sh [NAME]        NAME defaults to "default"
set -euo pipefail
# shellcheck source=../lib/service.sh
. "$(dirname "$0")/../lib/service.sh"

name="${1:-default}"
cache="${RUNNEL_CACHE:-$HOME/.cache/runnel}/versitygw"
state="$cache/instances/$name"
pidfile="$state/versitygw.pid"

rm -f "$cache/instances/$name.env"
service_stop "s3-stop[$name]" "$state" "$pidfile"
