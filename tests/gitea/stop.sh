#!/usr/bin/env bash
# Stops a Gitea started by start.sh and removes its env file (the state directory is kept for
# post-mortems until the next start under the same name).
#
#   tests/gitea/stop.sh [NAME]        NAME defaults to "default"
set -euo pipefail
# shellcheck source=../lib/service.sh
. "$(dirname "$0")/../lib/service.sh"

name="${1:-default}"
cache="${RUNNEL_CACHE:-$HOME/.cache/runnel}/gitea"
state="$cache/instances/$name"
pidfile="$state/gitea.pid"

rm -f "$cache/instances/$name.env"
service_stop "gitea-stop[$name]" "$state" "$pidfile"
[ -z "$stopped" ] || echo "gitea-stop[$name]: stopped $stopped" >&2
