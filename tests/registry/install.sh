#!/usr/bin/env bash
# Installs what tests/registry/start.sh needs, from Debian's packages: the distribution registry
# (`docker-registry`) and `htpasswd` (`apache2-utils`, for the bcrypt password file). Idempotent:
# does nothing when both are there. Needs root (or sudo) the first time.
set -euo pipefail

log() { echo "registry-install: $*" >&2; }

if command -v docker-registry >/dev/null && command -v htpasswd >/dev/null; then
  exit 0
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
log "installing docker-registry and apache2-utils"
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  docker-registry apache2-utils >/dev/null
# The package's own service (port 5000, auth files under /etc/docker/registry) is not used.
command -v docker-registry >/dev/null && command -v htpasswd >/dev/null
