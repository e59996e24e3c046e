#!/usr/bin/env bash
# Builds Gitea (module code.gitea.io/gitea, v1.26.x) from the Go module proxy and caches the
# binary outside the clone. Idempotent: exits at once when the cached binary for the chosen
# version exists. Prints the binary's path on the last line of stdout.
#
# Environment:
#   RUNNEL_CACHE    cache root (default ~/.cache/runnel); everything goes under $RUNNEL_CACHE/gitea
#   GITEA_VERSION   exact version (default: the newest v1.26.x the proxy serves)
#
# Why a wrapper module: `go install module@version` refuses modules whose go.mod has `replace`
# directives, and Gitea's has some. Building it as a dependency of a tiny local module whose go.mod
# repeats those `replace` (and `godebug`) lines gives the same dependency graph as Gitea's own build.
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

gomod="$(cd "$cache" && go mod download -json "code.gitea.io/gitea@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
if [ ! -f "$gomod" ]; then
  log "could not download code.gitea.io/gitea@$version"
  exit 2
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

mkdir -p "$cache/bin"
(
  cd "$wrap"
  go build -trimpath -tags 'sqlite sqlite_unlock_notify' \
    -ldflags "-s -w -X main.Version=${version#v}" \
    -o "$bin.tmp" code.gitea.io/gitea
)
mv "$bin.tmp" "$bin"
log "built $bin in $(( $(date +%s) - start ))s"
echo "$bin"
