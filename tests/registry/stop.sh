#!/usr/bin/env bash
# Stops a registry started by start.sh and removes its env file (the data directory is kept for
# post-mortems until the next start under the same name).
#
#   tests/registry/stop.sh [NAME]        NAME defaults to "default"
set -euo pipefail

name="${1:-default}"
cache="${RUNNEL_CACHE:-$HOME/.cache/runnel}/registry"
state="$cache/instances/$name"
pidfile="$state/registry.pid"

rm -f "$cache/instances/$name.env"
[ -f "$pidfile" ] || { echo "registry-stop[$name]: not running" >&2; exit 0; }
pid="$(cat "$pidfile")"
rm -f "$pidfile"
# Only signal the process if it is still the registry of this state directory (PIDs are reused).
if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$state"; then
  kill "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  echo "registry-stop[$name]: stopped $pid" >&2
fi
