#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine, for the tests that need one.
# Idempotent: when `docker info` already works it only prints the version. Otherwise it installs
# Debian's docker.io when dockerd is missing, starts dockerd in the background (its log goes to
# ${RUNNEL_CACHE:-$HOME/.cache/runnel}/dockerd.log, outside the clone) and waits for the socket.
# It never pulls images: no registry is reachable here; tests/images/build.sh builds them.
set -euo pipefail

cache_dir="${RUNNEL_CACHE:-$HOME/.cache/runnel}"
log_file="$cache_dir/dockerd.log"
wait_seconds="${RUNNEL_DOCKERD_WAIT:-60}"

say() { echo "tests/docker/ensure-dockerd.sh: $*" >&2; }

print_version() {
  docker version --format 'docker engine {{.Server.Version}} (API {{.Server.APIVersion}})'
}

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  print_version
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    say "dockerd is not installed and this is not root: install docker.io (apt-get install docker.io)"
    exit 1
  fi
  say "installing docker.io"
  export DEBIAN_FRONTEND=noninteractive
  # Other jobs on this machine may hold the dpkg lock for a while: wait for it instead of failing.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends docker.io >/dev/null
fi

if [[ $(id -u) -ne 0 ]]; then
  say "the Docker daemon is not running and this is not root: start it (systemctl start docker)"
  exit 1
fi

mkdir -p "$cache_dir"
# A daemon started by an earlier run may still be coming up: only start one when none runs.
if ! pgrep -x dockerd >/dev/null 2>&1; then
  say "starting dockerd (log: $log_file)"
  # setsid: the daemon must outlive this script and the test process that called it.
  # env --default-signal: a suite started as `nohup … &` has SIGINT and SIGQUIT ignored, and
  # containers would inherit that from the engine.
  setsid env --default-signal dockerd >>"$log_file" 2>&1 </dev/null &
fi

for ((i = 0; i < wait_seconds * 4; i++)); do
  if docker info >/dev/null 2>&1; then
    print_version
    exit 0
  fi
  sleep 0.25
done

say "dockerd did not answer within ${wait_seconds}s; last lines of $log_file:"
tail -n 30 "$log_file" >&2 || true
exit 1
