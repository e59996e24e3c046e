#!/usr/bin/env bash
# Starts (or finds running) a throw-away Docker registry with password auth for the image pull
# tests, and writes an env file.
#
#   tests/registry/start.sh [NAME]        NAME defaults to "default"
#
# Idempotent: when the instance NAME already runs and answers, its env file is printed again;
# concurrent calls are serialised by a lock. Otherwise a fresh registry (Debian's
# `docker-registry`, installed by install.sh when missing) listens on a free port of 127.0.0.1,
# which dockerd treats as an insecure registry by default (plain HTTP, no TLS setup), with
# htpasswd (bcrypt) auth for one user. A private Docker client config in the instance directory
# is logged in to it, so pushing (push.sh) never touches ~/.docker. Writes
# $RUNNEL_CACHE/registry/instances/NAME.env (REGISTRY=127.0.0.1:PORT, REGISTRY_USER,
# REGISTRY_PASSWORD, REGISTRY_DOCKER_CONFIG; safe to `source`) and prints its path on the last
# line of stdout. tests/registry/stop.sh NAME stops it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/service.sh
. "$here/../lib/service.sh"
name="${1:-default}"
case "$name" in (*[!A-Za-z0-9_-]*|"") echo "registry-start: bad instance name: $name" >&2; exit 2;; esac
cache="${RUNNEL_CACHE:-$HOME/.cache/runnel}/registry"
state="$cache/instances/$name"
envfile="$cache/instances/$name.env"
log() { echo "registry-start[$name]: $*" >&2; }

mkdir -p "$cache/instances"
exec 9>"$cache/instances/$name.lock"
flock 9

running() {
  [ -f "$envfile" ] && [ -f "$state/registry.pid" ] || return 1
  local pid; pid="$(cat "$state/registry.pid")"
  service_owns "$pid" "$state" || return 1
  # shellcheck disable=SC1090
  local code; code=$(. "$envfile"; curl -s -o /dev/null -w '%{http_code}' "http://$REGISTRY/v2/" || true)
  [ "$code" = 401 ]
}
if running; then
  log "already running"
  echo "$envfile"
  exit 0
fi

"$here/install.sh"
if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  log "the Docker engine does not answer: run tests/docker/ensure-dockerd.sh first"
  exit 1
fi
"$here/stop.sh" "$name" >/dev/null 2>&1 || true
rm -rf "$state" "$envfile"
mkdir -p "$state/data" "$state/docker-config"

port="$(service_free_port)" || { log "no free port found"; exit 1; }

user="runnel-test"
password="pw-$RANDOM$RANDOM$RANDOM"
htpasswd -Bbn "$user" "$password" >"$state/htpasswd"
cat >"$state/config.yml" <<CONFIG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $state/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
auth:
  htpasswd:
    realm: runnel-test
    path: $state/htpasswd
CONFIG
# Not holding the lock (fd 9) for its lifetime.
nohup docker-registry serve "$state/config.yml" >"$state/registry.log" 2>&1 9>&- &
echo $! >"$state/registry.pid"

url="http://127.0.0.1:$port"
asks_for_login() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/" || true)" = 401 ]; }
service_wait_ready "$state/registry.pid" "$state/registry.log" "the registry" asks_for_login \
  || { log "the registry does not answer at $url"; exit 1; }

registry="127.0.0.1:$port"
echo "$password" | DOCKER_CONFIG="$state/docker-config" docker login -u "$user" --password-stdin "$registry" >"$state/login.log" 2>&1 \
  || { log "docker login to $registry failed"; exit 1; }

cat >"$envfile" <<ENV
REGISTRY=$registry
REGISTRY_USER=$user
REGISTRY_PASSWORD=$password
REGISTRY_DOCKER_CONFIG=$state/docker-config
ENV
log "ready at $url"
echo "$envfile"
