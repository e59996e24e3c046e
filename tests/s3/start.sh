#!/usr/bin/env bash
# Starts a throw-away S3 server (versitygw, posix backend) for tests and writes an env file.
#
#   tests/s3/start.sh [NAME]        NAME defaults to "default"
#
# Builds versitygw first if needed (build.sh). Each start uses a FRESH root directory
# $RUNNEL_CACHE/versitygw/instances/NAME/ (an instance already running under that name is stopped
# first), listens on 127.0.0.1 with a free port, creates the bucket `runnel-cache`, then writes
# $RUNNEL_CACHE/versitygw/instances/NAME.env (S3_ENDPOINT, S3_BUCKET, S3_REGION,
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; safe to `source`) and prints its path on the last
# line of stdout. tests/s3/stop.sh NAME stops it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/service.sh
. "$here/../lib/service.sh"
name="${1:-default}"
case "$name" in (*[!A-Za-z0-9_-]*|"") echo "s3-start: bad instance name: $name" >&2; exit 2;; esac
cache="${RUNNEL_CACHE:-$HOME/.cache/runnel}/versitygw"
state="$cache/instances/$name"
envfile="$cache/instances/$name.env"
log() { echo "s3-start[$name]: $*" >&2; }

bin="$("$here/build.sh" | tail -n 1)"
"$here/stop.sh" "$name" >/dev/null 2>&1 || true
rm -rf "$state" "$envfile"
mkdir -p "$state/root" "$state/sidecar"

port="$(service_free_port)" || { log "no free port found"; exit 1; }

access="runnel-test-access"
secret="runnel-test-secret-$RANDOM$RANDOM"
# The sidecar directory keeps metadata in files, so no extended attributes are needed.
ROOT_ACCESS_KEY_ID="$access" ROOT_SECRET_ACCESS_KEY="$secret" \
  nohup "$bin" --port "127.0.0.1:$port" --quiet posix --sidecar "$state/sidecar" "$state/root" \
  >"$state/versitygw.log" 2>&1 &
echo $! >"$state/versitygw.pid"

url="http://127.0.0.1:$port"
service_wait_ready "$state/versitygw.pid" "$state/versitygw.log" versitygw curl -s -o /dev/null "$url/" || true
status=$(curl -s -o "$state/create-bucket.txt" -w '%{http_code}' -X PUT \
  -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
  --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access:$secret" "$url/runnel-cache")
[ "$status" = 200 ] || { log "creating the bucket answered $status: $(cat "$state/create-bucket.txt")"; exit 1; }

cat >"$envfile" <<ENV
S3_ENDPOINT=$url
S3_BUCKET=runnel-cache
S3_REGION=us-east-1
AWS_ACCESS_KEY_ID=$access
AWS_SECRET_ACCESS_KEY=$secret
ENV
log "ready at $url"
echo "$envfile"
