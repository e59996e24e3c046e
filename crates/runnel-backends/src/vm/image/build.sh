#!/usr/bin/env bash
# The vm backend's image recipe, run by `runnel vm image build` (which ships this script,
# decides the image's id from the recipe and moves the result into place). Fills $OUT with:
#   vmlinuz       the kernel of Debian's $KERNEL_PACKAGE (apt-get download, cached in $CACHE)
#   initramfs     busybox-static, the modules Debian builds as modules (virtio_mmio, virtio_blk,
#                 virtio_console, virtio_net, ext4 and its crc32c, 9p and netfs) and $RECIPE/init
#   rootfs.qcow2  the root file system, ext4 in a qcow2 file: $FROM (a directory or a tarball of
#                 a root tree), else debootstrap $SUITE (minbase + bash, curl, ca-certificates,
#                 cached as a tarball in $CACHE); plus $WITH: git, node (nodejs), docker (docker.io,
#                 kmod, iptables, the kernel modules dockerd needs and $RECIPE/docker-start as the
#                 image's start hook) installed with apt-get in a chroot when missing
# Environment: OUT, CACHE, RECIPE, KERNEL_PACKAGE, one of FROM and SUITE, WITH (comma
# separated, may be empty), DISK (the ext4 size, e.g. 2G). Installs Debian's qemu-utils,
# busybox-static, e2fsprogs, cpio, kmod and debootstrap when missing. Progress goes to stderr.
set -euo pipefail
say() { echo "runnel vm image: $*" >&2; }
: "${OUT:?}" "${CACHE:?}" "${RECIPE:?}" "${KERNEL_PACKAGE:?}" "${DISK:?}"
export PATH="$PATH:/usr/sbin:/sbin"
kernel_version="${KERNEL_PACKAGE#linux-image-}"
with=",${WITH:-},"
has() { [[ $with == *",$1,"* ]]; }

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "$@" >/dev/null \
    || { apt-get -o DPkg::Lock::Timeout=600 update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "$@" >/dev/null; }
}
missing=()
for pair in qemu-img:qemu-utils mkfs.ext4:e2fsprogs cpio:cpio depmod:kmod; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[[ -n ${SUITE:-} ]] && ! command -v debootstrap >/dev/null 2>&1 && missing+=(debootstrap)
[[ -e /usr/share/doc/busybox-static ]] || [[ -x /bin/busybox && $(/bin/busybox 2>&1 | head -1) == *static* ]] \
  || missing+=(busybox-static)
if [[ ${#missing[@]} -gt 0 ]]; then
  say "installing ${missing[*]}"
  apt_install "${missing[@]}" || { say "cannot install ${missing[*]}"; exit 1; }
fi

work="$OUT/.work"
mkdir -p "$work" "$CACHE"
root="$work/rootfs"
cleanup() {
  local mount
  for mount in proc sys dev; do
    mountpoint -q "$root/$mount" 2>/dev/null && umount -l "$root/$mount"
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Kernel and modules: the package unpacked, not installed; the .deb kept for the next image.
deb="$(ls "$CACHE/${KERNEL_PACKAGE}"_*.deb 2>/dev/null | head -1 || true)"
if [[ -z $deb ]]; then
  (cd "$CACHE" && apt-get -o DPkg::Lock::Timeout=600 download -qq "$KERNEL_PACKAGE" >/dev/null 2>&1) \
    || { say "apt-get download $KERNEL_PACKAGE failed"; exit 1; }
  deb="$(ls "$CACHE/${KERNEL_PACKAGE}"_*.deb | head -1)"
fi
dpkg-deb -x "$deb" "$work/kernel"
modules="$work/kernel/lib/modules/$kernel_version"
depmod -b "$work/kernel" "$kernel_version"

# The initramfs: busybox, the modules below with what they depend on, in load order, and init.
initramfs="$work/initramfs"
mkdir -p "$initramfs"/{bin,dev,proc,sys,newroot,lib/modules}
if ldd /bin/busybox >/dev/null 2>&1; then
  say "/bin/busybox is dynamically linked; install busybox-static"
  exit 1
fi
cp /bin/busybox "$initramfs/bin/busybox"
order="$initramfs/lib/modules/order"
: >"$order"
module_path() {
  local path
  path="$(modinfo -b "$work/kernel" -k "$kernel_version" -F filename "$1" 2>/dev/null || true)"
  # Built into the kernel (or not at all): nothing to load.
  [[ -n $path && $path != "(builtin)" && -f $path ]] && echo "$path"
  return 0
}
add_module() {
  local path deps dep
  path="$(module_path "$1")"
  [[ -n $path ]] || return 0
  grep -qxF "$(basename "$path")" "$order" && return 0
  deps="$(modinfo -F depends "$path")"
  for dep in ${deps//,/ }; do add_module "$dep"; done
  cp "$path" "$initramfs/lib/modules/"
  basename "$path" >>"$order"
}
for module in virtio_mmio virtio_pci virtio_blk virtio_console virtio_net crc32c_generic ext4 \
  9pnet_virtio 9p; do
  add_module "$module"
done
install -m 0755 "$RECIPE/init" "$initramfs/init"
(cd "$initramfs" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$OUT/initramfs"
cp "$work/kernel/boot/vmlinuz-$kernel_version" "$OUT/vmlinuz"

# The root file system.
mkdir -p "$root"
if [[ -n ${FROM:-} ]]; then
  if [[ -d $FROM ]]; then
    cp -a "$FROM/." "$root/"
  else
    tar --numeric-owner -C "$root" -xf "$FROM"
  fi
else
  : "${SUITE:?one of FROM and SUITE}"
  mirror="${RUNNEL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  base="$CACHE/debootstrap-$SUITE-minbase.tar"
  if [[ ! -s $base ]]; then
    say "debootstrap $SUITE (minbase, a few minutes)"
    mkdir "$work/debootstrap"
    debootstrap --variant=minbase --components=main --include=bash,curl,ca-certificates \
      "$SUITE" "$work/debootstrap" "$mirror" >"$work/debootstrap.log" 2>&1 \
      || { tail -n 40 "$work/debootstrap.log" >&2; say "debootstrap $SUITE failed"; exit 1; }
    cat >"$work/debootstrap/etc/dpkg/dpkg.cfg.d/01-runnel-nodoc" <<'CFG'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
CFG
    rm -rf "$work/debootstrap"/var/cache/apt/archives/*.deb "$work/debootstrap"/var/lib/apt/lists/*
    tar --numeric-owner -C "$work/debootstrap" -cf "$base.tmp" .
    mv "$base.tmp" "$base"
    rm -rf "$work/debootstrap"
  fi
  tar --numeric-owner -C "$root" -xf "$base"
fi

# --with: Debian packages, installed in a chroot when the root lacks them.
packages=()
has git && packages+=(git)
has node && packages+=(nodejs)
has docker && packages+=(docker.io kmod iptables)
wanted=()
for package in "${packages[@]}"; do
  chroot "$root" /usr/bin/dpkg -s "$package" >/dev/null 2>&1 || wanted+=("$package")
done
if [[ ${#wanted[@]} -gt 0 ]]; then
  [[ -x $root/usr/bin/apt-get ]] || { say "--with ${WITH} needs apt-get in the root (a Debian tree)"; exit 1; }
  say "installing ${wanted[*]} in the root (apt-get in a chroot, a few minutes)"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys"
  mount --rbind /dev "$root/dev"
  chroot "$root" /bin/sh -c "apt-get -qq update && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends ${wanted[*]} >/dev/null" \
    || { say "apt-get install ${wanted[*]} in the chroot failed"; exit 1; }
  for mount in proc sys dev; do umount -l "$root/$mount"; done
  rm -rf "$root"/usr/sbin/policy-rc.d "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log
fi
if has docker; then
  # The modules dockerd needs, with what they depend on, under the guest's module tree.
  copy_module() {
    local path deps dep target
    path="$(module_path "$1")"
    [[ -n $path ]] || return 0
    target="$root/${path#"$work/kernel/"}"
    [[ -f $target ]] && return 0
    deps="$(modinfo -F depends "$path")"
    for dep in ${deps//,/ }; do copy_module "$dep"; done
    mkdir -p "$(dirname "$target")"
    cp "$path" "$target"
  }
  for module in overlay bridge br_netfilter veth nf_conntrack nf_nat nf_tables nft_compat \
    nft_chain_nat nft_masq xt_conntrack xt_MASQUERADE xt_addrtype xt_nat xt_tcpudp xt_mark \
    xt_comment ip_tables iptable_nat iptable_filter ip6_tables ip6table_nat ip6table_filter \
    nf_reject_ipv4 ipt_REJECT; do
    copy_module "$module"
  done
  cp "$modules"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kernel_version/" 2>/dev/null || true
  depmod -b "$root" "$kernel_version"
  mkdir -p "$root/usr/local/lib/runnel-vm"
  install -m 0755 "$RECIPE/docker-start" "$root/usr/local/lib/runnel-vm/start"
fi
mkdir -p "$root/runnel" "$root/run" "$root/etc" "$root/proc" "$root/sys" "$root/dev" "$root/tmp"
: >"$root/etc/resolv.conf"
echo runnel-vm >"$root/etc/hostname"
mkfs.ext4 -q -F -L runnel-root -d "$root" "$work/rootfs.img" "$DISK" >/dev/null \
  || { say "mkfs.ext4 -d of the root ($DISK) failed"; exit 1; }
qemu-img convert -f raw -O qcow2 "$work/rootfs.img" "$OUT/rootfs.qcow2" \
  || { say "qemu-img convert failed"; exit 1; }
