#!/usr/bin/env bash
# Writes a tarball of a minimal Debian bookworm root file system to $1 (debootstrap, variant
# minbase, plus the tools job steps expect: bash, git, curl, ca-certificates, nodejs).
# Docs, man pages, locales and apt lists are dropped to keep the image small; a dpkg exclude
# file keeps later `apt-get install`s (the postgres image) small too.
set -euo pipefail
out="$1"
mirror="${RUNNEL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
work="$(mktemp -d "${out}.work.XXXXXX")"
trap 'rm -rf "$work"' EXIT

debootstrap --variant=minbase --components=main \
  --include=bash,git,curl,ca-certificates,nodejs \
  bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 40 "$work/debootstrap.log" >&2; exit 1; }

root="$work/rootfs"
cat >"$root/etc/dpkg/dpkg.cfg.d/01-runnel-nodoc" <<'CFG'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/lintian/*
CFG
cat >"$root/etc/apt/apt.conf.d/01-runnel-small" <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
CFG
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
rm -rf "$root"/usr/share/{man,info,locale,lintian}/* "$root"/var/cache/apt/*.bin \
  "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log \
  "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
# debootstrap copies the host's resolv.conf and hostname; Docker provides its own.
: >"$root/etc/resolv.conf"
: >"$root/etc/hostname"

tar --numeric-owner -C "$root" -cf "$out.tmp" .
mv "$out.tmp" "$out"
