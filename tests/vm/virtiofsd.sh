#!/usr/bin/env bash
# Installs virtiofsd (the Rust one, crate `virtiofsd` from crates.io) for the vm backend's
# virtiofs share (issue #17), outside the clone: ${RUNNEL_CACHE:-$HOME/.cache/runnel}/virtiofsd,
# the binary at bin/virtiofsd. Idempotent (a built binary is kept; one installer at a time, under
# a lock). Installs Debian's libseccomp-dev and libcap-ng-dev, which the crate links, when
# missing. Prints the binary's path on the last line of stdout.
#
# Environment:
#   RUNNEL_CACHE        cache root (default ~/.cache/runnel)
#   VIRTIOFSD_VERSION   a version for `cargo install --version` (default: 1.14.0, the one tested)
set -euo pipefail

root="${RUNNEL_CACHE:-$HOME/.cache/runnel}/virtiofsd"
mkdir -p "$root"
bin="$root/bin/virtiofsd"

say() { echo "tests/vm/virtiofsd: $*" >&2; }

exec 9>"$root/install.lock"
flock 9
if [[ -x $bin ]]; then
  say "cached: $bin"
  echo "$bin"
  exit 0
fi

missing=()
for package in libseccomp-dev libcap-ng-dev pkg-config; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get -o DPkg::Lock::Timeout=600 update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null; }
fi

version=()
version=(--version "${VIRTIOFSD_VERSION:-1.14.0}")
say "building virtiofsd from crates.io (a few minutes the first time)"
start=$(date +%s)
# Its own target directory, removed afterwards: only the binary is kept.
CARGO_TARGET_DIR="$root/target" cargo install virtiofsd --locked "${version[@]}" --root "$root" -j 2 >&2
rm -rf "$root/target"
say "built in $(( $(date +%s) - start ))s: $bin"
echo "$bin"
