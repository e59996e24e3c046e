#!/usr/bin/env bash
# Pushes a local image to a registry started by start.sh, then removes the local tag of the
# pushed reference (not SOURCE), so the next use of the reference must pull it.
#
#   tests/registry/push.sh SOURCE REPOSITORY[:TAG] [NAME]
#
# SOURCE is a local image (e.g. runnel-test/busybox); the pushed reference is
# $REGISTRY/REPOSITORY[:TAG] of instance NAME (default "default"), printed on the last line.
# Uses the instance's private Docker client config, never ~/.docker.
set -euo pipefail

source_image="${1:?usage: push.sh SOURCE REPOSITORY[:TAG] [NAME]}"
target="${2:?usage: push.sh SOURCE REPOSITORY[:TAG] [NAME]}"
name="${3:-default}"
envfile="${RUNNEL_CACHE:-$HOME/.cache/runnel}/registry/instances/$name.env"
[ -f "$envfile" ] || { echo "registry-push: no running instance $name (tests/registry/start.sh $name)" >&2; exit 1; }
# shellcheck disable=SC1090
. "$envfile"
reference="$REGISTRY/$target"
docker tag "$source_image" "$reference"
if ! DOCKER_CONFIG="$REGISTRY_DOCKER_CONFIG" docker push "$reference" >/dev/null; then
  docker rmi "$reference" >/dev/null 2>&1 || true
  echo "registry-push: pushing $reference failed" >&2
  exit 1
fi
docker rmi "$reference" >/dev/null
echo "$reference"
