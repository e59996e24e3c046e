#!/usr/bin/env bash
# Builds the `vm` backend's base image for the tests (issue #17), cached and idempotent:
#   ${RUNNEL_CACHE:-$HOME/.cache/runnel}/vm/NAME/
#     vmlinuz      Debian's kernel (linux-image-*-amd64, fetched with apt-get download)
#     initramfs    busybox-static + the virtio/ext4/9p/virtio_net modules Debian builds as
#                  modules + init (which also configures the user-mode network)
#     rootfs.qcow2 the root file system: tests/images/debian's recipe (debootstrap minbase +
#                  bash, git, curl, ca-certificates, nodejs) as ext4 in a qcow2 file; each job
#                  boots a qcow2 overlay over it
#     recipe       hash of this directory's files, the image name and the kernel version: a
#                  changed recipe rebuilds
# Usage: tests/vm/build.sh [NAME]
#   debian-bookworm         the root above (2 GiB)
#   debian-bookworm-docker  the same plus Debian's docker.io (dockerd, containerd, runc,
#                           iptables) and kmod installed in a chroot (apt-get, cached as a
#                           tarball beside the Debian one), the kernel modules dockerd needs
#                           (overlay, bridge, br_netfilter, veth, netfilter/nftables/iptables
#                           NAT) copied into its /lib/modules, and `docker-start` as the image's
#                           start hook (/usr/local/lib/runnel-vm/start); 4 GiB
# Prints the image directory on stdout. Installs Debian's qemu-system-x86, qemu-utils,
# busybox-static, e2fsprogs, cpio, kmod and debootstrap when missing. Later this becomes
# `runnel vm image build`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name="${1:-debian-bookworm}"
cache_root="${RUNNEL_CACHE:-$HOME/.cache/runnel}"
cache_dir="$cache_root/vm"
mkdir -p "$cache_dir"

say() { echo "tests/vm: $*" >&2; }

case "$name" in
  debian-bookworm) docker=0 disk=2G ;;
  debian-bookworm-docker) docker=1 disk=4G ;;
  *)
    say "unknown image '$name' (known: debian-bookworm, debian-bookworm-docker)"
    exit 2
    ;;
esac

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "$@" >/dev/null \
    || { apt-get -o DPkg::Lock::Timeout=600 update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "$@" >/dev/null; }
}

ensure_host_packages() {
  local missing=() pair
  for pair in qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils mkfs.ext4:e2fsprogs \
    cpio:cpio depmod:kmod debootstrap:debootstrap; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "${pair%%:*}" >/dev/null 2>&1 \
      || missing+=("${pair#*:}")
  done
  [[ -x /bin/busybox && $(/bin/busybox 2>&1 | head -1) == *static* ]] || [[ -e /usr/share/doc/busybox-static ]] \
    || missing+=(busybox-static)
  if [[ ${#missing[@]} -gt 0 ]]; then
    say "installing ${missing[*]}"
    apt_install "${missing[@]}"
  fi
}

# Two test runs building at once would race on the same files.
exec 9>"$cache_dir/build.lock"
flock 9
export PATH="$PATH:/usr/sbin:/sbin"
ensure_host_packages

# The kernel package linux-image-amd64 points at (its version names the module tree).
kernel_package="$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)"
if [[ -z $kernel_package ]]; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  kernel_package="$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)"
fi
[[ -n $kernel_package ]] || { say "no linux-image-*-amd64 package known to apt"; exit 1; }
kernel_version="${kernel_package#linux-image-}"

recipe="$( (cd "$here" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum;
  cd "$here/../images/debian" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum;
  echo "$name $kernel_version") | sha256sum | cut -c1-16)"
image_dir="$cache_dir/$name"
if [[ -s $image_dir/recipe && $(cat "$image_dir/recipe") == "$recipe" \
  && -s $image_dir/vmlinuz && -s $image_dir/initramfs && -s $image_dir/rootfs.qcow2 ]]; then
  say "$name is up to date ($image_dir)"
  echo "$image_dir"
  exit 0
fi

started=$SECONDS
work="$(mktemp -d "$cache_dir/build.XXXXXX")"
# A chroot's mounts come off before its files go.
cleanup() {
  local mount
  for mount in proc sys dev; do
    mountpoint -q "$work/rootfs/$mount" 2>/dev/null && umount -l "$work/rootfs/$mount"
  done
  rm -rf "$work"
}
trap cleanup EXIT
say "building $name with kernel $kernel_version (cached in $image_dir)"

# Kernel and modules: the package unpacked, not installed.
(cd "$work" && apt-get -o DPkg::Lock::Timeout=600 download -qq "$kernel_package" >/dev/null)
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
modules="$work/kernel/lib/modules/$kernel_version"
depmod -b "$work/kernel" "$kernel_version"

# The initramfs: busybox, the modules below with what they depend on, in load order, and init.
initramfs="$work/initramfs"
mkdir -p "$initramfs"/{bin,dev,proc,sys,newroot,lib/modules}
# The initramfs has no libc: a dynamic busybox (Debian's `busybox`, not `busybox-static`) would
# not start.
if ldd /bin/busybox >/dev/null 2>&1; then
  say "/bin/busybox is dynamically linked; install busybox-static"
  exit 1
fi
cp /bin/busybox "$initramfs/bin/busybox"
wanted=(virtio_mmio virtio_pci virtio_blk virtio_console virtio_net crc32c_generic ext4 9pnet_virtio 9p)
order="$initramfs/lib/modules/order"
: >"$order"
add_module() {
  local module="$1" path deps dep
  path="$(modinfo -b "$work/kernel" -k "$kernel_version" -F filename "$module" 2>/dev/null || true)"
  # Built into the kernel (or not at all): nothing to load.
  [[ -n $path && $path != "(builtin)" && -f $path ]] || return 0
  grep -qxF "$(basename "$path")" "$order" && return 0
  deps="$(modinfo -F depends "$path")"
  for dep in ${deps//,/ }; do add_module "$dep"; done
  cp "$path" "$initramfs/lib/modules/"
  basename "$path" >>"$order"
}
for module in "${wanted[@]}"; do add_module "$module"; done
# A module and what it depends on, copied into the guest root's module tree (same paths).
copy_module() {
  local module="$1" path deps dep target
  path="$(modinfo -b "$work/kernel" -k "$kernel_version" -F filename "$module" 2>/dev/null || true)"
  [[ -n $path && $path != "(builtin)" && -f $path ]] || return 0
  target="$root/${path#"$work/kernel/"}"
  [[ -f $target ]] && return 0
  deps="$(modinfo -F depends "$path")"
  for dep in ${deps//,/ }; do copy_module "$dep"; done
  mkdir -p "$(dirname "$target")"
  cp "$path" "$target"
}
cp "$here/init" "$initramfs/init"
chmod 0755 "$initramfs/init"
(cd "$initramfs" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$work/initramfs.img"

# The root file system: the Debian test image's recipe (its tarball reused when tests/images
# built it already), as ext4.
debian_hash="$(cd "$here/../images/debian" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
tarball="$cache_root/images/debian-$debian_hash.tar"
if [[ ! -s $tarball ]]; then
  tarball="$cache_dir/debian-$debian_hash.tar"
  if [[ ! -s $tarball ]]; then
    say "building the Debian root file system (debootstrap, a few minutes)"
    "$here/../images/debian/rootfs.sh" "$tarball"
  fi
fi
mkdir "$work/rootfs"
root="$work/rootfs"
if ((docker)); then
  # Docker's engine installed into the Debian root in a chroot, kept as a tarball of its own.
  docker_tarball="$cache_dir/debian-docker-$(echo "$debian_hash docker.io kmod iptables" | sha256sum | cut -c1-16).tar"
  if [[ ! -s $docker_tarball ]]; then
    say "installing docker.io into the root file system (apt-get in a chroot, a few minutes)"
    tar --numeric-owner -C "$root" -xf "$tarball"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    chroot "$root" /bin/sh -c 'apt-get -qq update && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends docker.io kmod iptables >/dev/null' \
      || { say "apt-get in the chroot failed"; exit 1; }
    for mount in proc sys dev; do umount -l "$root/$mount"; done
    rm -rf "$root"/usr/sbin/policy-rc.d "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
      "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log
    : >"$root/etc/resolv.conf"
    tar --numeric-owner -C "$root" -cf "$docker_tarball.tmp" .
    mv "$docker_tarball.tmp" "$docker_tarball"
  else
    tar --numeric-owner -C "$root" -xf "$docker_tarball"
  fi
  # The modules dockerd needs, with what they depend on, under the guest's module tree.
  for module in overlay bridge br_netfilter veth nf_conntrack nf_nat nf_tables nft_compat \
    nft_chain_nat nft_masq xt_conntrack xt_MASQUERADE xt_addrtype xt_nat xt_tcpudp xt_mark \
    xt_comment ip_tables iptable_nat iptable_filter ip6_tables ip6table_nat ip6table_filter \
    nf_reject_ipv4 ipt_REJECT; do
    copy_module "$module"
  done
  cp "$modules"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kernel_version/" 2>/dev/null || true
  depmod -b "$root" "$kernel_version"
  mkdir -p "$root/usr/local/lib/runnel-vm"
  install -m 0755 "$here/docker-start" "$root/usr/local/lib/runnel-vm/start"
else
  tar --numeric-owner -C "$root" -xf "$tarball"
fi
mkdir -p "$work/rootfs/runnel" "$work/rootfs/run"
echo runnel-vm >"$work/rootfs/etc/hostname"
# stdout carries only the image directory: mke2fs says "Creating regular file …" there
# even with -q (a test once read that line as part of the directory).
mkfs.ext4 -q -F -L runnel-root -d "$work/rootfs" "$work/rootfs.img" "$disk" >&2
qemu-img convert -f raw -O qcow2 "$work/rootfs.img" "$work/rootfs.qcow2"

rm -rf "$image_dir.new"
mkdir -p "$image_dir.new"
cp "$work/kernel/boot/vmlinuz-$kernel_version" "$image_dir.new/vmlinuz"
mv "$work/initramfs.img" "$image_dir.new/initramfs"
mv "$work/rootfs.qcow2" "$image_dir.new/rootfs.qcow2"
echo "$recipe" >"$image_dir.new/recipe"
rm -rf "$image_dir"
mv "$image_dir.new" "$image_dir"
say "built $name in $((SECONDS - started)) s"
echo "$image_dir"
