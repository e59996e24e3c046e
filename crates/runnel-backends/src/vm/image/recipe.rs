//! The image recipe: the commands that make an image's three files from its recipe, run one
//! by one with a clear error naming the step and the command that failed — the host tools
//! installed when missing (Debian's qemu-utils, busybox-static, e2fsprogs, cpio, kmod,
//! debootstrap), the kernel package fetched with `apt-get download` (kept in the cache) and
//! unpacked, a busybox initramfs with the modules Debian builds as modules and the init, the
//! root tree (`--from` a directory or tarball, else debootstrap's minbase kept as a tarball in
//! the cache), the `--with` packages installed with apt-get in a chroot, dockerd's modules and
//! start hook, `mkfs.ext4 -d` and `qemu-img convert`.
//!
//! Owns: the build directory's `.work/` (removed on every outcome, its chroot mounts first).
//! Must not: decide ids or names (`image` does).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{DOCKER_START, Extra, INIT, ImageError, Source};

mod steps;
use steps::*;

/// The modules the initramfs loads, with what they depend on: virtio over MMIO, the disk, the
/// agent's port, the network, ext4, 9p, virtiofs (and fuse, which it depends on).
const INITRAMFS_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_pci",
    "virtio_blk",
    "virtio_console",
    "virtio_net",
    "crc32c_generic",
    "ext4",
    "9pnet_virtio",
    "9p",
    "virtiofs",
];

/// The modules dockerd needs (overlay storage, the bridge network, NAT with iptables over
/// nftables), copied into the root's module tree.
const DOCKER_MODULES: &[&str] = &[
    "overlay",
    "bridge",
    "br_netfilter",
    "veth",
    "nf_conntrack",
    "nf_nat",
    "nf_tables",
    "nft_compat",
    "nft_chain_nat",
    "nft_masq",
    "xt_conntrack",
    "xt_MASQUERADE",
    "xt_addrtype",
    "xt_nat",
    "xt_tcpudp",
    "xt_mark",
    "xt_comment",
    "ip_tables",
    "iptable_nat",
    "iptable_filter",
    "ip6_tables",
    "ip6table_nat",
    "ip6table_filter",
    "nf_reject_ipv4",
    "ipt_REJECT",
];

/// What one build makes, and where.
pub(super) struct Build<'a> {
    /// Where `vmlinuz`, `initramfs` and `rootfs.qcow2` go.
    pub(super) out: &'a Path,
    /// Kernel packages and debootstrap tarballs kept between builds.
    pub(super) cache: &'a Path,
    pub(super) source: &'a Source,
    pub(super) with: &'a [Extra],
    pub(super) kernel_package: &'a str,
    /// The ext4 file system's size (`mkfs.ext4`'s, e.g. `2G`).
    pub(super) disk: &'a str,
}

impl Build<'_> {
    pub(super) fn run(&self) -> Result<(), ImageError> {
        ensure_host_tools(matches!(self.source, Source::Debootstrap { .. }))?;
        let work = WorkDir::new(self.out.join(".work"))?;
        let version = self
            .kernel_package
            .strip_prefix("linux-image-")
            .unwrap_or(self.kernel_package);
        let kernel = work.path.join("kernel");
        self.unpack_kernel(&kernel, version)?;
        let modules = Modules {
            tree: &kernel,
            version,
        };
        self.initramfs(&work.path, &modules)?;
        copy(
            &kernel.join("boot").join(format!("vmlinuz-{version}")),
            &self.out.join("vmlinuz"),
        )?;
        let root = work.path.join("rootfs");
        self.root_tree(&work.path, &root)?;
        self.install_extras(&root, &work)?;
        if self.with.contains(&Extra::Docker) {
            for module in DOCKER_MODULES {
                modules.copy_into(module, &root)?;
            }
            let target = root.join("lib/modules").join(version);
            for file in [
                "modules.order",
                "modules.builtin",
                "modules.builtin.modinfo",
            ] {
                let from = kernel.join("lib/modules").join(version).join(file);
                if from.is_file() {
                    copy(&from, &target.join(file))?;
                }
            }
            step(
                "index the root's kernel modules",
                Command::new("depmod").arg("-b").arg(&root).arg(version),
            )?;
            let hook = root.join("usr/local/lib/runnel-vm/start");
            write_executable(&hook, DOCKER_START)?;
        }
        for dir in ["runnel", "run", "etc", "proc", "sys", "dev", "tmp"] {
            create_dir(&root.join(dir))?;
        }
        write(&root.join("etc/resolv.conf"), "")?;
        write(&root.join("etc/hostname"), "runnel-vm\n")?;
        let raw = work.path.join("rootfs.img");
        step(
            "make the root file system (ext4)",
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-L", "runnel-root", "-d"])
                .arg(&root)
                .arg(&raw)
                .arg(self.disk),
        )?;
        step(
            "convert the root disk to qcow2",
            Command::new("qemu-img")
                .args(["convert", "-f", "raw", "-O", "qcow2"])
                .arg(&raw)
                .arg(self.out.join("rootfs.qcow2")),
        )?;
        work.remove()
    }

    /// The kernel package unpacked (not installed) into `into`, its modules indexed; the
    /// package kept in the cache for the next image.
    fn unpack_kernel(&self, into: &Path, version: &str) -> Result<(), ImageError> {
        let prefix = format!("{}_", self.kernel_package);
        let cached = || {
            std::fs::read_dir(self.cache)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
                })
        };
        let deb = match cached() {
            Some(deb) => deb,
            None => {
                tracing::info!(package = self.kernel_package, "fetching the kernel package");
                step(
                    "fetch the kernel package",
                    Command::new("apt-get")
                        .args(["-o", "DPkg::Lock::Timeout=600", "download", "-qq"])
                        .arg(self.kernel_package)
                        .current_dir(self.cache),
                )?;
                cached().ok_or_else(|| ImageError::Step {
                    step: "fetch the kernel package".to_owned(),
                    command: format!("apt-get download {}", self.kernel_package),
                    detail: format!("no {prefix}*.deb in {}", self.cache.display()),
                })?
            }
        };
        step(
            "unpack the kernel package",
            Command::new("dpkg-deb").arg("-x").arg(&deb).arg(into),
        )?;
        step(
            "index the kernel's modules",
            Command::new("depmod").arg("-b").arg(into).arg(version),
        )?;
        Ok(())
    }

    /// busybox (static: the initramfs has no libc), the modules in load order, the init; as a
    /// gzip'd newc cpio archive.
    fn initramfs(&self, work: &Path, modules: &Modules<'_>) -> Result<(), ImageError> {
        let dir = work.join("initramfs");
        for sub in ["bin", "dev", "proc", "sys", "newroot", "lib/modules"] {
            create_dir(&dir.join(sub))?;
        }
        let busybox = Path::new("/bin/busybox");
        let dynamic = Command::new("ldd")
            .arg(busybox)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if dynamic {
            return Err(ImageError::Step {
                step: "put busybox in the initramfs".to_owned(),
                command: "ldd /bin/busybox".to_owned(),
                detail: "/bin/busybox is dynamically linked; install busybox-static".to_owned(),
            });
        }
        copy(busybox, &dir.join("bin/busybox"))?;
        let mut order = Vec::new();
        for module in INITRAMFS_MODULES {
            modules.add_in_order(module, &dir.join("lib/modules"), &mut order)?;
        }
        write(
            &dir.join("lib/modules/order"),
            &order.iter().map(|m| format!("{m}\n")).collect::<String>(),
        )?;
        write_executable(&dir.join("init"), INIT)?;
        let archive = self.out.join("initramfs");
        let gzip_out =
            std::fs::File::create(&archive).map_err(io_step("write the initramfs", &archive))?;
        let mut cpio = Command::new("cpio")
            .args(["--null", "-o", "-H", "newc", "--quiet"])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error("pack the initramfs", "cpio"))?;
        let cpio_out = cpio.stdout.take().ok_or_else(|| ImageError::Step {
            step: "pack the initramfs".to_owned(),
            command: "cpio".to_owned(),
            detail: "no output pipe".to_owned(),
        })?;
        let gzip = Command::new("gzip")
            .arg("-1")
            .stdin(cpio_out)
            .stdout(gzip_out)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error("pack the initramfs", "gzip"))?;
        let mut names = Vec::new();
        list_tree(&dir, Path::new("."), &mut names)?;
        if let Some(mut stdin) = cpio.stdin.take() {
            for name in &names {
                stdin
                    .write_all(name.as_os_str().as_encoded_bytes())
                    .and_then(|()| stdin.write_all(b"\0"))
                    .map_err(io_step("pack the initramfs", &dir))?;
            }
        }
        finish("pack the initramfs", "cpio -o -H newc", cpio)?;
        finish("pack the initramfs", "gzip -1", gzip)?;
        Ok(())
    }

    /// The root tree in `root`: `--from`'s, else debootstrap's (its tarball kept).
    fn root_tree(&self, work: &Path, root: &Path) -> Result<(), ImageError> {
        create_dir(root)?;
        match self.source {
            Source::From(from) if from.is_dir() => {
                let mut source = from.clone().into_os_string();
                source.push("/.");
                step(
                    "copy the --from tree",
                    Command::new("cp").arg("-a").arg(source).arg(root),
                )
            }
            Source::From(tarball) => step(
                "unpack the --from tarball",
                Command::new("tar")
                    .arg("--numeric-owner")
                    .arg("-C")
                    .arg(root)
                    .arg("-xf")
                    .arg(tarball),
            ),
            Source::Debootstrap { suite } => {
                let tarball = self.cache.join(format!("debootstrap-{suite}-minbase.tar"));
                if !tarball.is_file() {
                    self.debootstrap(suite, work, &tarball)?;
                }
                step(
                    "unpack the debootstrap tarball",
                    Command::new("tar")
                        .arg("--numeric-owner")
                        .arg("-C")
                        .arg(root)
                        .arg("-xf")
                        .arg(&tarball),
                )
            }
        }
    }

    fn debootstrap(&self, suite: &str, work: &Path, tarball: &Path) -> Result<(), ImageError> {
        tracing::info!(suite, "debootstrap (minbase, a few minutes)");
        let tree = work.join("debootstrap");
        let mirror = std::env::var("RUNNEL_DEBIAN_MIRROR")
            .ok()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "http://deb.debian.org/debian".to_owned());
        step(
            "debootstrap the root",
            Command::new("debootstrap")
                .args([
                    "--variant=minbase",
                    "--components=main",
                    "--include=bash,curl,ca-certificates",
                    suite,
                ])
                .arg(&tree)
                .arg(&mirror),
        )?;
        write(
            &tree.join("etc/dpkg/dpkg.cfg.d/01-runnel-nodoc"),
            "path-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/copyright\n\
             path-exclude=/usr/share/man/*\npath-exclude=/usr/share/info/*\n\
             path-exclude=/usr/share/locale/*\n",
        )?;
        remove_matching(&tree.join("var/cache/apt/archives"), ".deb")?;
        let partial = tarball.with_extension("tar.tmp");
        step(
            "keep the debootstrap tree",
            Command::new("tar")
                .arg("--numeric-owner")
                .arg("-C")
                .arg(&tree)
                .arg("-cf")
                .arg(&partial)
                .arg("."),
        )?;
        std::fs::rename(&partial, tarball)
            .map_err(io_step("keep the debootstrap tree", tarball))?;
        remove_tree(&tree)
    }

    /// `--with`'s Debian packages the root lacks, with apt-get in a chroot (this machine's
    /// /proc, /sys and /dev mounted in it meanwhile).
    fn install_extras(&self, root: &Path, work: &WorkDir) -> Result<(), ImageError> {
        let mut packages = Vec::new();
        for extra in self.with {
            packages.extend_from_slice(match extra {
                Extra::Git => &["git"][..],
                Extra::Node => &["nodejs"][..],
                Extra::Docker => &["docker.io", "kmod", "iptables"][..],
            });
        }
        let missing: Vec<&str> = packages
            .into_iter()
            .filter(|package| {
                !Command::new("chroot")
                    .arg(root)
                    .args(["/usr/bin/dpkg", "-s", package])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if !root.join("usr/bin/apt-get").is_file() {
            return Err(ImageError::Step {
                step: format!("install {}", missing.join(" ")),
                command: "apt-get".to_owned(),
                detail: "--with needs apt-get in the root (a Debian tree)".to_owned(),
            });
        }
        tracing::info!(
            packages = %missing.join(" "),
            "installing in the root (apt-get in a chroot, a few minutes)"
        );
        copy(Path::new("/etc/resolv.conf"), &root.join("etc/resolv.conf"))?;
        let policy = root.join("usr/sbin/policy-rc.d");
        write_executable(&policy, "#!/bin/sh\nexit 101\n")?;
        {
            let _mounts = work.chroot_mounts(root)?;
            step(
                &format!("install {} in the root", missing.join(" ")),
                Command::new("chroot").arg(root).args([
                    "/bin/sh",
                    "-c",
                    &format!(
                        "apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get install \
                         -y -qq --no-install-recommends {}",
                        missing.join(" ")
                    ),
                ]),
            )?;
        }
        remove_tree(&policy)?;
        remove_matching(&root.join("var/lib/apt/lists"), "")?;
        remove_matching(&root.join("var/cache/apt/archives"), ".deb")?;
        remove_matching(&root.join("var/cache/apt"), ".bin")?;
        remove_matching(&root.join("var/log"), ".log")
    }
}

/// The kernel's module tree: where each module is and what it depends on (`modinfo`).
struct Modules<'a> {
    tree: &'a Path,
    version: &'a str,
}

impl Modules<'_> {
    /// The module's file; `None` when it is built in (or not there at all): nothing to load.
    fn file(&self, module: &str) -> Option<PathBuf> {
        let output = Command::new("modinfo")
            .arg("-b")
            .arg(self.tree)
            .args(["-k", self.version, "-F", "filename", module])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        (!path.is_empty() && path != "(builtin)" && Path::new(&path).is_file())
            .then(|| PathBuf::from(path))
    }

    fn depends(&self, file: &Path) -> Vec<String> {
        Command::new("modinfo")
            .args(["-F", "depends"])
            .arg(file)
            .stderr(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split([',', '\n'])
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `module` after what it depends on, copied into `dir` and named in `order`.
    fn add_in_order(
        &self,
        module: &str,
        dir: &Path,
        order: &mut Vec<String>,
    ) -> Result<(), ImageError> {
        let Some(file) = self.file(module) else {
            return Ok(());
        };
        let name = file_name(&file);
        if order.contains(&name) {
            return Ok(());
        }
        for dependency in self.depends(&file) {
            self.add_in_order(&dependency, dir, order)?;
        }
        copy(&file, &dir.join(&name))?;
        order.push(name);
        Ok(())
    }

    /// `module` and what it depends on, at the same paths under `root`.
    fn copy_into(&self, module: &str, root: &Path) -> Result<(), ImageError> {
        let Some(file) = self.file(module) else {
            return Ok(());
        };
        let Ok(relative) = file.strip_prefix(self.tree) else {
            return Ok(());
        };
        let target = root.join(relative);
        if target.is_file() {
            return Ok(());
        }
        for dependency in self.depends(&file) {
            self.copy_into(&dependency, root)?;
        }
        copy(&file, &target)
    }
}

/// The build's scratch directory: removed on every outcome, chroot mounts taken off first.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn new(path: PathBuf) -> Result<WorkDir, ImageError> {
        remove_tree(&path)?;
        create_dir(&path)?;
        Ok(WorkDir { path })
    }

    /// /proc, /sys and /dev of this machine in `root`, for a chroot; off again when the
    /// guard goes.
    fn chroot_mounts<'r>(&self, root: &'r Path) -> Result<ChrootMounts<'r>, ImageError> {
        let mut mounts = ChrootMounts {
            root,
            mounted: Vec::new(),
        };
        for (what, args) in [
            ("proc", &["-t", "proc", "proc"][..]),
            ("sys", &["--rbind", "/sys"][..]),
            ("dev", &["--rbind", "/dev"][..]),
        ] {
            let target = root.join(what);
            create_dir(&target)?;
            step(
                "mount /proc, /sys and /dev for the chroot",
                Command::new("mount").args(args).arg(&target),
            )?;
            mounts.mounted.push(what);
        }
        Ok(mounts)
    }

    fn remove(self) -> Result<(), ImageError> {
        let path = self.path.clone();
        drop(self);
        if path.exists() {
            remove_tree(&path)?;
        }
        Ok(())
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if mounted_under(&self.path) {
            tracing::warn!(
                dir = %self.path.display(),
                "mounts are left under the image build's directory; it is kept (remove it by hand \
                 once they are unmounted)"
            );
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

struct ChrootMounts<'r> {
    root: &'r Path,
    mounted: Vec<&'static str>,
}

impl Drop for ChrootMounts<'_> {
    fn drop(&mut self) {
        for what in self.mounted.iter().rev() {
            let target = self.root.join(what);
            let unmounted = Command::new("umount")
                .arg("-l")
                .arg(&target)
                .status()
                .is_ok_and(|s| s.success());
            if !unmounted {
                tracing::warn!(target = %target.display(), "cannot unmount the chroot's mount");
            }
        }
    }
}

/// Whether anything is mounted under `dir`.
pub(super) fn mounted_under(dir: &Path) -> bool {
    let prefix = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|text| {
            text.lines()
                .filter_map(|line| line.split(' ').nth(4))
                .any(|mount| mount.starts_with(&prefix))
        })
        .unwrap_or(true)
}

/// The host tools the recipe runs, installed from Debian when missing.
fn ensure_host_tools(debootstrap: bool) -> Result<(), ImageError> {
    let on_path = |program: &str| {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
            .any(|dir| dir.join(program).is_file())
    };
    let mut missing: Vec<&str> = [
        ("qemu-img", "qemu-utils"),
        ("mkfs.ext4", "e2fsprogs"),
        ("cpio", "cpio"),
        ("depmod", "kmod"),
        ("modinfo", "kmod"),
    ]
    .into_iter()
    .filter(|(program, _)| !on_path(program))
    .map(|(_, package)| package)
    .collect();
    if debootstrap && !on_path("debootstrap") {
        missing.push("debootstrap");
    }
    let static_busybox = Path::new("/usr/share/doc/busybox-static").exists()
        || Command::new("/bin/busybox").output().is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .contains("static")
                || String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .contains("static")
        });
    if !static_busybox {
        missing.push("busybox-static");
    }
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    tracing::info!(packages = %missing.join(" "), "installing the tools images are built with");
    let install = |update: bool| -> Result<(), ImageError> {
        if update {
            step(
                "update apt's package lists",
                Command::new("apt-get").args(["-o", "DPkg::Lock::Timeout=600", "update", "-qq"]),
            )?;
        }
        step(
            &format!("install {}", missing.join(" ")),
            Command::new("apt-get")
                .args([
                    "-o",
                    "DPkg::Lock::Timeout=600",
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                ])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    install(false).or_else(|_| install(true))
}

#[cfg(test)]
mod tests;
