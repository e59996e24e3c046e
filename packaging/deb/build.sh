#!/usr/bin/env bash
# Builds the runnel .deb with cargo-deb (installed once, cached outside the clone).
#
# Usage: packaging/deb/build.sh [--profile release|dev] [--deb-version V] [--out DIR] [--no-build]
#   --profile      the cargo profile whose binary is packaged (default: dist, the release build
#                  of the root Cargo.toml; cargo-deb refuses the dev profile)
#   --deb-version  the package version (default: the crate's version, plus -1)
#   --out          where the .deb goes (default: $CARGO_TARGET_DIR or target, under debian/)
#   --no-build     package the binary already built for that profile
#   --install-tool only install cargo-deb, build nothing
# Prints the path of the .deb on stdout. The package's contents are described in
# crates/runnel-cli/Cargo.toml, [package.metadata.deb].
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cargo_deb_version=3.8.0
cache="${RUNNEL_CACHE:-$HOME/.cache/runnel}"
tool_root="$cache/cargo-deb-$cargo_deb_version"

profile=dist deb_version="" out="" build=1 install_only=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --deb-version) deb_version="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --install-tool) install_only=1; shift ;;
    *) echo "packaging/deb/build.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

say() { echo "packaging/deb: $*" >&2; }

install_tool() {
  # Two builds at once (the .deb and the systemd tests run in parallel) would install into
  # the same directory: the second waits for the first, then finds the tool there.
  mkdir -p "$cache"
  exec 8>"$cache/cargo-deb.lock"
  flock 8
  if [[ ! -x $tool_root/bin/cargo-deb ]]; then
    say "installing cargo-deb $cargo_deb_version into $tool_root (once)"
    # A separate target dir: the tool's build must not evict the project's.
    CARGO_TARGET_DIR="$cache/cargo-deb-build" \
      cargo install --quiet --locked --root "$tool_root" --version "$cargo_deb_version" cargo-deb >&2
    rm -rf "$cache/cargo-deb-build"
  fi
  flock -u 8
  exec 8>&-
}
[[ -x $tool_root/bin/cargo-deb ]] || install_tool
[[ $install_only == 1 ]] && exit 0

target_dir="${CARGO_TARGET_DIR:-$root/target}"
cd "$root"
if [[ $build == 1 ]]; then
  say "building runnel ($profile)"
  cargo build --quiet --locked --profile "$profile" -p runnel-cli --bin runnel >&2
fi
args=(--no-build --profile "$profile" -p runnel-cli)
[[ -n $deb_version ]] && args+=(--deb-version "$deb_version")
out="${out:-$target_dir/debian}"
mkdir -p "$out"
args+=(--output "$out")
CARGO_TARGET_DIR="$target_dir" "$tool_root/bin/cargo-deb" "${args[@]}" | tail -n 1
