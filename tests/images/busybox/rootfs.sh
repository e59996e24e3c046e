#!/usr/bin/env bash
# Writes a tarball of a tiny root file system to $1: Debian's busybox-static with one link per
# applet, a root user and /tmp. It starts in milliseconds, for fast backend tests.
set -euo pipefail
out="$1"
# Debian's busybox-static installs here; only a static build works in an empty root file system.
busybox_bin=/bin/busybox
work="$(mktemp -d "${out}.work.XXXXXX")"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,home,var/tmp}
chmod 1777 "$root/tmp" "$root/var/tmp"
cp "$busybox_bin" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
tar --numeric-owner -C "$root" -cf "$out.tmp" .
mv "$out.tmp" "$out"
