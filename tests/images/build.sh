#!/usr/bin/env bash
# Builds the images the tests use, locally (no registry is reachable here):
#   debian    runnel-test/debian:bookworm   debootstrap minbase + bash, git, curl, ca-certificates, nodejs
#   busybox   runnel-test/busybox           Debian's busybox-static; starts in milliseconds
#   postgres  runnel-test/postgres          Debian's postgresql on the Debian image (service tests)
#   systemd   runnel-test/systemd           systemd as PID 1 on the Debian image (packaging tests;
#                                           built only when named: the test that needs it asks)
# Usage: tests/images/build.sh [NAME...]   (no NAME: all of them)
#
# Idempotent and cached: each image carries the label runnel-test.recipe=<hash of its recipe
# directory (and its base's hash)>; an image whose label matches is kept, a changed recipe rebuilds.
# Root file system tarballs are kept in ${RUNNEL_CACHE:-$HOME/.cache/runnel}/images/, outside
# the clone, so a rebuilt Docker engine gets its images back in seconds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache_dir="${RUNNEL_CACHE:-$HOME/.cache/runnel}/images"
mkdir -p "$cache_dir"

say() { echo "tests/images: $*" >&2; }

declare -A tags=(
  [debian]=runnel-test/debian:bookworm
  [busybox]=runnel-test/busybox:latest
  [postgres]=runnel-test/postgres:latest
  [systemd]=runnel-test/systemd:latest
)
all_names=(busybox debian postgres)

# Hash of a recipe directory: file names and contents, in a stable order.
recipe_hash() {
  (cd "$here/$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

current_label() {
  docker image inspect --format '{{ index .Config.Labels "runnel-test.recipe" }}' "$1" 2>/dev/null || true
}

ensure_host_package() {
  local command="$1" package="$2"
  if ! command -v "$command" >/dev/null 2>&1; then
    say "installing $package"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends "$package" >/dev/null \
      || { apt-get -o DPkg::Lock::Timeout=600 update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
          --no-install-recommends "$package" >/dev/null; }
  fi
}

# import NAME HASH CMD: builds the rootfs tarball (cached) with NAME/rootfs.sh and imports it.
import_rootfs() {
  local name="$1" hash="$2" cmd="$3" tarball="$cache_dir/$1-$2.tar"
  if [[ ! -s $tarball ]]; then
    say "building the $name root file system (cached in $tarball)"
    "$here/$name/rootfs.sh" "$tarball"
  fi
  docker import \
    --change "CMD $cmd" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL runnel-test.recipe=$hash" \
    "$tarball" "${tags[$name]}" >/dev/null
  # Tarballs of older recipes are dead weight.
  find "$cache_dir" -maxdepth 1 -name "$name-*.tar" ! -name "$name-$hash.tar" -delete
}

build_one() {
  local name="$1" hash
  case "$name" in
    debian | busybox) hash="$(recipe_hash "$name")" ;;
    # A derived image is stale when its base's recipe changed too.
    postgres | systemd) hash="$( (recipe_hash "$name"; recipe_hash debian) | sha256sum | cut -c1-16)" ;;
    *) say "unknown image '$name' (known: ${all_names[*]} systemd)"; exit 2 ;;
  esac
  if [[ $(current_label "${tags[$name]}") == "$hash" ]]; then
    say "${tags[$name]} is up to date"
    return
  fi
  local started=$SECONDS
  case "$name" in
    debian)
      ensure_host_package debootstrap debootstrap
      import_rootfs debian "$hash" '["bash"]'
      ;;
    busybox)
      ensure_host_package busybox busybox-static
      [[ -x /bin/busybox ]] || ensure_host_package /bin/busybox busybox-static
      import_rootfs busybox "$hash" '["sh"]'
      ;;
    postgres | systemd)
      build_one debian
      docker build -q --label "runnel-test.recipe=$hash" -t "${tags[$name]}" "$here/$name" >/dev/null
      ;;
  esac
  say "built ${tags[$name]} in $((SECONDS - started))s"
}

if ! docker info >/dev/null 2>&1; then
  say "no Docker engine answers; run tests/docker/ensure-dockerd.sh first"
  exit 1
fi

# Two test runs building at once would race on the same tarballs and tags.
exec 9>"$cache_dir/build.lock"
flock 9

names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=("${all_names[@]}")
for name in "${names[@]}"; do
  build_one "$name"
done
