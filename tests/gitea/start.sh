#!/usr/bin/env bash
# Starts a throw-away Gitea for tests and writes an env file describing it.
#
#   tests/gitea/start.sh [NAME]        NAME defaults to "default"
#
# Builds Gitea first if needed (build.sh). Each start uses a FRESH state directory
# $RUNNEL_CACHE/gitea/instances/NAME/ (an instance already running under that name is stopped
# first), starts `gitea web` in the background on 127.0.0.1 with a free port, creates an admin
# user, an access token, an organisation with a repository, and an instance-wide runner
# registration token, then writes $RUNNEL_CACHE/gitea/instances/NAME.env (KEY=VALUE lines, safe to
# `source`) and prints its path on the last line of stdout.
#
# Environment:
#   RUNNEL_CACHE     cache root (default ~/.cache/runnel)
#   GITEA_PROTOCOL   http (default) or https (self-signed certificate made by `gitea cert`)
#   GITEA_VERSION    which Gitea (see build.sh; `next` = NEXT_VERSION); default the 1.26 line.
#   GITEA_HTTP_ADDR  the IPv4 address to listen on and to put in its URL (default 127.0.0.1);
#                    the tests give Docker's bridge address so job containers reach Gitea.
#                    Give instances of another version their own NAME (the tests use
#                    `next-*`): a start replaces whatever instance had that name.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/service.sh
. "$here/../lib/service.sh"
name="${1:-default}"
case "$name" in (*[!A-Za-z0-9_-]*|"") echo "gitea-start: bad instance name: $name" >&2; exit 2;; esac
protocol="${GITEA_PROTOCOL:-http}"
case "$protocol" in (http|https) ;; (*) echo "gitea-start: GITEA_PROTOCOL must be http or https" >&2; exit 2;; esac
addr="${GITEA_HTTP_ADDR:-127.0.0.1}"
case "$addr" in (*[!0-9.]*|"") echo "gitea-start: GITEA_HTTP_ADDR must be an IPv4 address" >&2; exit 2;; esac

cache="${RUNNEL_CACHE:-$HOME/.cache/runnel}/gitea"
state="$cache/instances/$name"
envfile="$cache/instances/$name.env"

log() { echo "gitea-start[$name]: $*" >&2; }

bin="$("$here/build.sh" | tail -n 1)"
version="$(basename "$bin")"; version="${version#gitea-}"
# Without the `bindata` tag Gitea reads locales, templates and options from STATIC_ROOT_PATH at
# run time (cron task names need the locale, so it does not start without them): point it at the
# module source that build.sh downloaded.
moddir="$cache/gopath/pkg/mod/code.gitea.io/gitea@$version"
[ -d "$moddir/options/locale" ] || { log "module source missing: $moddir (rerun build.sh)"; exit 1; }

"$here/stop.sh" "$name" >/dev/null 2>&1 || true
rm -rf "$state" "$envfile"
mkdir -p "$state/custom/conf" "$state/data" "$state/log"

port="$(service_free_port)" || { log "no free port found"; exit 1; }

url="$protocol://$addr:$port"
conf="$state/custom/conf/app.ini"
gitea() { "$bin" --config "$conf" --work-path "$state" "$@"; }

secret() { "$bin" generate secret "$1"; }
run_user="$(id -un)"

tls_lines=""
if [ "$protocol" = https ]; then
  (cd "$state" && "$bin" cert --host "$addr",127.0.0.1,localhost >/dev/null 2>&1)
  tls_lines="CERT_FILE = $state/cert.pem
KEY_FILE = $state/key.pem"
fi

root_line=""
if [ "$(id -u)" = 0 ]; then root_line="I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true"; fi

cat > "$conf" <<INI
APP_NAME = runnel test Gitea
RUN_MODE = prod
RUN_USER = $run_user
WORK_PATH = $state
$root_line

[server]
PROTOCOL = $protocol
HTTP_ADDR = $addr
HTTP_PORT = $port
DOMAIN = $addr
ROOT_URL = $url/
LOCAL_ROOT_URL = $url/
$tls_lines
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false
APP_DATA_PATH = $state/data
STATIC_ROOT_PATH = $moddir

[database]
DB_TYPE = sqlite3
PATH = $state/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = $state/repos
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = $(secret SECRET_KEY)
INTERNAL_TOKEN = $(secret INTERNAL_TOKEN)
PASSWORD_HASH_ALGO = pbkdf2_hi

[oauth2]
JWT_SECRET = $(secret JWT_SECRET)

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false

[mailer]
ENABLED = false

[log]
MODE = file
LEVEL = info
ROOT_PATH = $state/log

[cron.update_checker]
ENABLED = false

[actions]
ENABLED = true
DEFAULT_ACTIONS_URL = self
INI

log "starting Gitea $version on $url"
# setsid: the server must outlive the calling shell (and a test process that started it).
setsid "$bin" --config "$conf" --work-path "$state" web >"$state/log/stdout.log" 2>&1 < /dev/null &
pid=$!
echo "$pid" > "$state/gitea.pid"

curl_opts=(--silent --show-error --fail)
[ "$protocol" = https ] && curl_opts+=(--insecure)

for i in $(seq 1 240); do
  if curl "${curl_opts[@]}" -o /dev/null "$url/api/v1/version" 2>/dev/null; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then
    log "Gitea exited during start; its output:"; tail -n 30 "$state/log/stdout.log" >&2; exit 1
  fi
  [ "$i" = 240 ] && { log "Gitea did not answer within 60s"; exit 1; }
  sleep 0.25
done

user=runnel-admin
password="$(secret SECRET_KEY | cut -c1-24)"
gitea admin user create --admin --username "$user" --password "$password" \
  --email "$user@example.invalid" --must-change-password=false >/dev/null
token="$(gitea admin user generate-access-token --username "$user" --token-name runnel-tests \
  --scopes all --raw | tail -n 1)"

api() {
  local method="$1" path="$2" body="${3:-}"
  curl "${curl_opts[@]}" -X "$method" -H "Authorization: token $token" \
    -H 'Content-Type: application/json' ${body:+--data "$body"} "$url/api/v1$path"
}

org=testorg
repo=test
api POST /orgs "{\"username\":\"$org\",\"visibility\":\"public\"}" >/dev/null
api POST "/orgs/$org/repos" "{\"name\":\"$repo\",\"auto_init\":true,\"default_branch\":\"main\",\"private\":false}" >/dev/null

reg_token="$(gitea actions generate-runner-token 2>/dev/null | tail -n 1)"
if [ -z "$reg_token" ]; then
  reg_token="$(api POST /admin/actions/runners/registration-token | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')"
fi
[ -n "$reg_token" ] || { log "could not get a runner registration token"; exit 1; }

cat > "$envfile.tmp" <<ENV
GITEA_NAME=$name
GITEA_VERSION=$version
GITEA_BIN=$bin
GITEA_CONFIG=$conf
GITEA_STATE_DIR=$state
GITEA_PID=$pid
GITEA_URL=$url
GITEA_PROTOCOL=$protocol
GITEA_ADMIN_USER=$user
GITEA_ADMIN_PASSWORD=$password
GITEA_ADMIN_TOKEN=$token
GITEA_REGISTRATION_TOKEN=$reg_token
GITEA_ORG=$org
GITEA_REPO=$org/$repo
ENV
mv "$envfile.tmp" "$envfile"
log "ready: $envfile"
echo "$envfile"
