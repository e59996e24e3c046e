#!/usr/bin/env bash
# Builds Gitea from the Go module proxy and caches the binary outside the clone. Idempotent: exits
# at once when the cached binary for the chosen version exists. Prints the binary's path on the
# last line of stdout.
#
# Environment:
#   RUNNEL_CACHE    cache root (default ~/.cache/runnel); everything goes under $RUNNEL_CACHE/gitea
#   GITEA_VERSION   exact version of code.gitea.io/gitea (default: the newest v1.26.x the proxy
#                   serves), e.g. v1.27.3; `next` = the version in NEXT_VERSION beside this script
#                   (the newer Gitea the test suite also runs against)
#
# Two ways to build, chosen by the module path the version's go.mod declares:
# - `code.gitea.io/gitea` (<= 1.26): `go install module@version` refuses modules whose go.mod has
#   `replace` directives, and Gitea's has some. Building it as a dependency of a tiny local module
#   whose go.mod repeats those `replace` (and `godebug`) lines gives the same dependency graph as
#   Gitea's own build.
# - anything else (>= 1.27 declares `gitea.dev`, so it cannot be required as code.gitea.io/gitea):
#   the proxy still serves the version's zip under the old path. `go mod download` fetches it and
#   checks it against the checksum database (reached through the proxy), and the extracted source
#   is built as the main module: its own go.mod, replace lines and go.sum apply unchanged.
set -euo pipefail

cache="${RUNNEL_CACHE:-$HOME/.cache/runnel}/gitea"
mkdir -p "$cache"
export GOPATH="$cache/gopath"
export GOMODCACHE="$cache/gopath/pkg/mod"
export GOCACHE="$cache/gocache"
export GOTOOLCHAIN=local
export GOFLAGS=-mod=mod
export CGO_ENABLED="${CGO_ENABLED:-1}"

log() { echo "gitea-build: $*" >&2; }

if ! command -v go >/dev/null; then
  log "go not found in PATH (Go >= 1.25 is needed to build Gitea)"
  exit 2
fi

version="${GITEA_VERSION:-}"
if [ "$version" = next ]; then
  version="$(tr -d '[:space:]' < "$(dirname "$0")/NEXT_VERSION")"
fi
if [ -z "$version" ]; then
  # Newest 1.26 patch; from v1.27 the module path moved to a host the proxy refuses.
  version="$(cd "$cache" && go list -m -versions code.gitea.io/gitea | tr ' ' '\n' | grep -E '^v1\.26\.[0-9]+$' | sort -V | tail -n 1 || true)"
  if [ -z "$version" ]; then
    log "the module proxy lists no code.gitea.io/gitea v1.26.x"
    exit 2
  fi
fi

bin="$cache/bin/gitea-$version"
if [ -x "$bin" ]; then
  log "cached: $bin"
  echo "$bin"
  exit 0
fi

log "building code.gitea.io/gitea $version (takes several minutes the first time)"
start=$(date +%s)

# Never build an unverified zip: keep the checksum database on even if the caller turned it off.
export GOSUMDB="${GOSUMDB:-sum.golang.org}"
[ "$GOSUMDB" = off ] && { log "GOSUMDB=off: refusing to build an unverified Gitea"; exit 2; }
export GONOSUMDB="" GONOSUMCHECK="" GOPRIVATE="" GOINSECURE=""

dl="$(cd "$cache" && go mod download -json "code.gitea.io/gitea@$version")" || {
  log "could not download code.gitea.io/gitea@$version"; exit 2; }
field() { printf '%s\n' "$dl" | sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p"; }
gomod="$(field GoMod)"
srcdir="$(field Dir)"
sum="$(field Sum)"
if [ ! -f "$gomod" ] || [ ! -d "$srcdir" ] || [ -z "$sum" ]; then
  log "could not download code.gitea.io/gitea@$version"
  exit 2
fi
zip="$(field Zip)"
# `go mod download` checks a zip against the checksum database when it first downloads it; check
# again here (the zip may have been put into the cache earlier): hash it as go.sum's `h1:` does
# and compare with the checksum database's record, asked through the module proxy.
if command -v python3 >/dev/null && command -v curl >/dev/null && [ -f "$zip" ]; then
  proxy="$(go env GOPROXY | tr ',|' '\n\n' | grep -E '^https?://' | head -n 1)"
  want="$(curl -fsS --max-time 30 "$proxy/sumdb/$GOSUMDB/lookup/code.gitea.io/gitea@$version" 2>/dev/null \
    | awk -v v="$version" '$1 == "code.gitea.io/gitea" && $2 == v { print $3 }' | head -n 1 || true)"
  have="$(python3 - "$zip" <<'PY'
import base64, hashlib, sys, zipfile
lines = []
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in sorted(i.filename for i in z.infolist() if not i.is_dir()):
        lines.append("%s  %s\n" % (hashlib.sha256(z.read(name)).hexdigest(), name))
print("h1:" + base64.b64encode(hashlib.sha256("".join(lines).encode()).digest()).decode())
PY
)"
  if [ -z "$want" ]; then
    log "checksum database not reachable through $proxy; relying on go's own check ($sum)"
  elif [ "$have" != "$want" ] || [ "$sum" != "$want" ]; then
    log "checksum mismatch for code.gitea.io/gitea@$version: zip $have, go $sum, sumdb $want"
    exit 2
  else
    log "module zip matches the checksum database: $want"
  fi
else
  log "module zip verified by go mod download against $GOSUMDB: $sum"
fi
modpath="$(sed -n 's/^module[[:space:]]\{1,\}\([^[:space:]]*\).*/\1/p' "$gomod" | head -n 1)"

mkdir -p "$cache/bin"
ldflags="-s -w -X main.Version=${version#v} -X 'main.Tags=sqlite sqlite_unlock_notify'"

if [ "$modpath" != code.gitea.io/gitea ]; then
  # Main-module build from a writable copy of the verified source (the module cache is
  # read-only, and the build must not touch the copy start.sh serves as STATIC_ROOT_PATH).
  log "go.mod declares module $modpath: building the downloaded source as the main module"
  src="$cache/src-$version"
  rm -rf "$src"
  cp -r "$srcdir" "$src"
  chmod -R u+w "$src"
  # Its `gitea.dev/...` requirements come from their `code.gitea.io/...` aliases, each checked
  # to be byte-identical to what Gitea's go.sum pins (substitute.py).
  command -v python3 >/dev/null || { log "python3 is needed to build Gitea $version"; exit 2; }
  proxy="$(go env GOPROXY | tr ',|' '\n\n' | grep -E '^https?://' | head -n 1)"
  nosumdb="$(python3 "$(dirname "$0")/substitute.py" "$src" "$proxy")"
  (
    cd "$src"
    GONOSUMDB="$nosumdb" GOFLAGS=-mod=mod go build -trimpath -tags 'sqlite sqlite_unlock_notify' \
      -ldflags "$ldflags" -o "$bin.tmp" .
  )
  rm -rf "$src"
  mv "$bin.tmp" "$bin"
  printf '%s %s\n' "$version" "$sum" > "$bin.sum"
  log "built $bin in $(( $(date +%s) - start ))s"
  echo "$bin"
  exit 0
fi

wrap="$cache/wrapper-$version"
rm -rf "$wrap"
mkdir -p "$wrap"
{
  echo "module runnel.test/gitea-build"
  echo
  # Same language version as Gitea so the same godebug defaults apply.
  grep -E '^go [0-9]' "$gomod"
  echo
  echo "require code.gitea.io/gitea $version"
  echo
  # Repeat every `replace` and `godebug` directive, single-line or block form.
  awk '
    /^(replace|godebug)[[:space:]]*\($/ { inblock = 1; print; next }
    inblock { print; if ($0 ~ /^\)/) { inblock = 0; print "" } ; next }
    /^(replace|godebug)[[:space:]]/ { print }
  ' "$gomod"
} > "$wrap/go.mod"

if grep -E '=>[[:space:]]*\.' "$wrap/go.mod" >/dev/null; then
  log "Gitea's go.mod has a local-path replace; this script does not handle it"
  exit 2
fi

(
  cd "$wrap"
  go build -trimpath -tags 'sqlite sqlite_unlock_notify' \
    -ldflags "$ldflags" \
    -o "$bin.tmp" code.gitea.io/gitea
)
mv "$bin.tmp" "$bin"
printf '%s %s\n' "$version" "$sum" > "$bin.sum"
log "built $bin in $(( $(date +%s) - start ))s"
echo "$bin"
