#!/usr/bin/env bash
# The `vm` backend's test images (issue #17), through `runnel vm image build` — the one recipe
# (runnel_backends::vm::image::recipe, with this directory's init and docker-start, which runnel
# embeds) — from the Debian tree the Docker test image is made of
# (tests/images/debian/rootfs.sh: debootstrap minbase + bash, git, curl, ca-certificates,
# nodejs; its tarball cached and shared with tests/images/build.sh):
#   debian-bookworm         --with git,node (already in the tree), a 2 GiB root
#   debian-bookworm-docker  --with docker,git,node: docker.io, kmod and iptables installed with
#                           apt-get in a chroot, dockerd's kernel modules, the start hook; 4 GiB
# under ${RUNNEL_CACHE:-$HOME/.cache/runnel}/vm (content in by-id/ID, NAME a link to it; a
# recipe built before is only named again). Prints the image directory on stdout (the last
# line). RUNNEL_BIN: the runnel binary to use [default: `cargo run` of this checkout's].
# Installs Debian's qemu-system-x86 and debootstrap when missing (the recipe installs the rest).
# Usage: tests/vm/build.sh [debian-bookworm|debian-bookworm-docker]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name="${1:-debian-bookworm}"
cache_root="${RUNNEL_CACHE:-$HOME/.cache/runnel}"
cache_dir="$cache_root/vm"
mkdir -p "$cache_dir"

say() { echo "tests/vm: $*" >&2; }

case "$name" in
  debian-bookworm) with=git,node ;;
  debian-bookworm-docker) with=docker,git,node ;;
  *)
    say "unknown image '$name' (known: debian-bookworm, debian-bookworm-docker)"
    exit 2
    ;;
esac

export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [[ ${#missing[@]} -gt 0 ]]; then
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get -o DPkg::Lock::Timeout=600 update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# The Debian tree (reused when tests/images/build.sh made it already); one builder at a time.
exec 9>"$cache_dir/build.lock"
flock 9
debian_hash="$(cd "$here/../images/debian" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
tarball="$cache_root/images/debian-$debian_hash.tar"
if [[ ! -s $tarball ]]; then
  tarball="$cache_dir/debian-$debian_hash.tar"
  if [[ ! -s $tarball ]]; then
    say "building the Debian root file system (debootstrap, a few minutes)"
    "$here/../images/debian/rootfs.sh" "$tarball"
  fi
fi
exec 9>&-

if [[ -n ${RUNNEL_BIN:-} ]]; then
  runnel=("$RUNNEL_BIN")
else
  runnel=(cargo run -q --manifest-path "$here/../../Cargo.toml" -p runnel-cli --bin runnel --)
fi
"${runnel[@]}" vm image build "$name" --from "$tarball" --with "$with" --images "$cache_dir" \
  | tail -n 1
