#!/usr/bin/env bash
# Builds a single-node Kubernetes (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet, kubectl) from the Go module proxy and a static pause binary, cached outside the clone.
# Idempotent: exits at once when the binaries of the chosen version exist. Prints the bin
# directory on the last line of stdout. Takes a lock, so parallel callers build once.
#
# Environment:
#   RUNNEL_CACHE   cache root (default ~/.cache/runnel); everything goes under $RUNNEL_CACHE/k8s
#   K8S_VERSION    exact version of k8s.io/kubernetes (default: the newest v1.34.x the proxy
#                  serves). v1.35+ refuses cgroup v1 by default, which this kind of machine has.
#
# How: the proxy serves k8s.io/kubernetes as a module zip without its staging/ directory (each
# staging module has its own go.mod, so it is left out of the zip). The zip is checked by
# `go mod download` against the checksum database, copied to a writable place, and its go.mod's
# `replace k8s.io/X => ./staging/src/k8s.io/X` lines are pointed at the published k8s.io/X
# v0.MINOR.PATCH modules (the same source, published from staging for each release).
# The Go build cache lives under the k8s cache and is removed after the build (it is ~3 GB).
set -euo pipefail

cache="${RUNNEL_CACHE:-$HOME/.cache/runnel}/k8s"
mkdir -p "$cache"
log() { echo "k8s-build: $*" >&2; }

exec 9>"$cache/.build.lock"
flock 9

export GOPATH="$cache/gopath"
export GOMODCACHE="$cache/gopath/pkg/mod"
export GOCACHE="$cache/gocache"
export GOTOOLCHAIN=local
export GOWORK=off
export GOFLAGS=-mod=mod
export CGO_ENABLED=0
export GOSUMDB="${GOSUMDB:-sum.golang.org}"
[ "$GOSUMDB" = off ] && { log "GOSUMDB=off: refusing to build unverified modules"; exit 2; }
export GONOSUMDB="" GONOSUMCHECK="" GOPRIVATE="" GOINSECURE=""

command -v go >/dev/null || { log "go not found in PATH"; exit 2; }
command -v cc >/dev/null || { log "a C compiler (cc) is needed for the pause binary"; exit 2; }

version="${K8S_VERSION:-}"
if [ -z "$version" ]; then
  version="$(cd "$cache" && go list -m -versions k8s.io/kubernetes | tr ' ' '\n' \
    | grep -E '^v1\.34\.[0-9]+$' | sort -V | tail -n 1 || true)"
  [ -n "$version" ] || { log "the module proxy lists no k8s.io/kubernetes v1.34.x"; exit 2; }
fi
staging_version="v0.${version#v1.}"

bin="$cache/bin-$version"
tools="kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl"
done=1
for t in $tools pause; do [ -x "$bin/$t" ] || done=0; done
if [ "$done" = 1 ]; then
  log "cached: $bin"
  echo "$bin"
  exit 0
fi

log "building k8s.io/kubernetes $version (about 8 minutes on 2 cores the first time)"
start=$(date +%s)
dl="$(cd "$cache" && go mod download -json "k8s.io/kubernetes@$version")" || {
  log "could not download k8s.io/kubernetes@$version"; exit 2; }
srcdir="$(printf '%s\n' "$dl" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
[ -d "$srcdir" ] || { log "could not download k8s.io/kubernetes@$version"; exit 2; }

src="$cache/src-$version"
rm -rf "$src"
cp -r "$srcdir" "$src"
chmod -R u+w "$src"
rm -f "$src/go.work" "$src/go.work.sum"
# Point every staging replace at the published module of the same release.
sed -i -E "s#^([[:space:]]*(replace[[:space:]]+)?)(k8s\.io/[A-Za-z0-9._-]+)[[:space:]]+=>[[:space:]]+\./staging/src/k8s\.io/[A-Za-z0-9._-]+[[:space:]]*\$#\1\3 => \3 $staging_version#" "$src/go.mod"
if grep -q '=> \./staging' "$src/go.mod"; then
  log "go.mod still has staging replaces this script could not rewrite:"
  grep '=> \./staging' "$src/go.mod" >&2
  exit 2
fi

ldflags="-s -w"
for kv in "gitVersion=$version" "gitMajor=1" "gitMinor=$(echo "$version" | cut -d. -f2)" \
  "gitTreeState=clean" "buildDate=1970-01-01T00:00:00Z"; do
  ldflags="$ldflags -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
done

mkdir -p "$bin.tmp"
(
  cd "$src"
  go build -p "${K8S_BUILD_JOBS:-2}" -trimpath -ldflags "$ldflags" -o "$bin.tmp/" \
    ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kube-scheduler ./cmd/kubelet \
    ./cmd/kubectl
)
# The pause container's binary, static so the image needs nothing else.
cc -Os -static -o "$bin.tmp/pause" "$src/build/pause/linux/pause.c" \
  -DVERSION="\"$version\""
strip "$bin.tmp/pause" 2>/dev/null || true

rm -rf "$bin"
mv "$bin.tmp" "$bin"
rm -rf "$src" "$GOCACHE"
go clean -modcache >/dev/null 2>&1 || rm -rf "$GOMODCACHE"
log "built $bin in $(( $(date +%s) - start ))s"
echo "$bin"
