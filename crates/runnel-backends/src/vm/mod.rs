//! The `vm` backend: each job in a microVM of its own (issue #17).
//!
//! Per job: a directory `runnel-vm-*` under the backend's root holding a qcow2 overlay over the
//! image's cached base (`IMAGES/NAME/rootfs.qcow2`, made in milliseconds), the agent socket,
//! the console log, a copy of the guest agent and the job's own directory (`job/`: workspace,
//! temp, tool cache, home, images to preload), which the guest sees at `/runnel` over
//! virtiofs (a `virtiofsd` per job, [`virtiofs`]) when a `virtiofsd` is found or `vm.share` says
//! so, else over virtio-9p. QEMU boots the `microvm` machine with the image's
//! kernel and initramfs; the initramfs mounts the overlay as the root and starts the agent
//! ([`runnel_vm_agent`]) as PID 1, which the runner talks to over a virtio-serial port. The
//! guest has QEMU's user-mode network: by default restricted (`restrict=on`), its only ways out
//! forwards of `10.0.2.100:PORT` to the runner's cache server and, for the daemon, of
//! `10.0.2.101:PORT` to its Gitea server ([`forward`]); with
//! `RUNNEL_VM_NETWORK=nat` QEMU's full NAT (the outside, and this machine's loopback at the
//! gateway `10.0.2.2`, where the cache server is then handed over). Once the agent answers, the
//! image's start hook runs (the Docker image starts its engine and loads the images
//! `preload` copied in), then the job's `services:` start in the guest's engine
//! (`services`). KVM is used only when a probe boot under it works (`/dev/kvm` on the
//! machines this was built on is PVM, which does not boot Debian's kernel: the probe times
//! out and jobs run under TCG); the probe's answer is kept beside the image, per host kernel.
//!
//! Owns: the job directory and QEMU's life (a boot that does not answer within the boot
//! timeout is killed with the console's last lines in the error; teardown kills QEMU and
//! removes the directory on every outcome), the record that lets the next start remove what a
//! killed runner left ([`leftovers`]). Must not: parse labels (the assembly hands over the
//! image name) or workflows.

mod channel;
mod config;
mod environment;
mod error;
pub mod forward;
pub mod image;
pub mod leftovers;
mod preload;
mod services;
pub mod virtiofs;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runnel_engine::backend::{BackendError, JobEnvironment, JobSpec, setup_log};
use tokio_util::sync::CancellationToken;

pub use config::{Accel, VmConfig, VmNetwork};
pub use error::VmError;
pub use leftovers::VmLeftoverReport;
pub use preload::PreloadError;
pub use virtiofs::VmShare;

use environment::VmEnvironment;
use error::into_backend;

/// Runs jobs in microVMs; the image comes with each job (from its label), and so do the
/// settings when the label has its own.
#[derive(Debug)]
pub struct VmBackend {
    config: VmConfig,
    /// Per label name (lower case, as labels match): its jobs' settings, where they differ.
    labels: std::collections::BTreeMap<String, VmConfig>,
    /// The accelerator decided (by the probe, before the first job).
    machine: tokio::sync::OnceCell<Accel>,
}

impl Image {
    /// Whether `config`'s disk size fits this image: `Some(size)` when the guest's root disk
    /// grows to it, `None` when it stays the image's; an error when it is smaller than the
    /// image's (a qcow2 overlay cannot shrink its base).
    fn check_disk_size(&self, config: &VmConfig) -> Result<Option<u64>, VmError> {
        let Some(size) = config.disk_size else {
            return Ok(None);
        };
        let base = image::qcow2_virtual_size(&self.rootfs).map_err(|source| VmError::Io {
            what: format!("read the size of {}", self.rootfs.display()),
            source,
        })?;
        if size < base {
            return Err(VmError::DiskTooSmall {
                image: self.name.clone(),
                size,
                base,
            });
        }
        Ok((size > base).then_some(size))
    }
}

/// How long a KVM probe boot may take: a kernel that boots under KVM answers in seconds.
const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// The files of one image.
pub(crate) struct Image {
    pub(crate) name: String,
    pub(crate) kernel: PathBuf,
    pub(crate) initramfs: PathBuf,
    pub(crate) rootfs: PathBuf,
}

impl VmBackend {
    pub fn new(config: VmConfig) -> VmBackend {
        VmBackend::with_labels(config, std::collections::BTreeMap::new())
    }

    /// A backend whose jobs on the labels named in `labels` get those settings (the machine's
    /// accelerator, the agent and the job root stay `config`'s).
    pub fn with_labels(
        mut config: VmConfig,
        labels: std::collections::BTreeMap<String, VmConfig>,
    ) -> VmBackend {
        let asked = config.share;
        let missing = config.resolve_share();
        let labels: std::collections::BTreeMap<String, VmConfig> = labels
            .into_iter()
            .map(|(name, mut own)| {
                own.resolve_share();
                (name.to_ascii_lowercase(), own)
            })
            .collect();
        if missing {
            tracing::warn!(
                "vm.share is virtiofs and no virtiofsd was found (vm.virtiofsd, beside runnel, \
                 PATH, the cache of tests/vm/virtiofsd.sh): VM jobs will fail"
            );
        }
        tracing::info!(
            asked = ?asked,
            "vm backend: the job's directory is shared with the guest over {}",
            config.describe_share()
        );
        let nat: Vec<&str> = std::iter::once(("", &config))
            .chain(labels.iter().map(|(name, own)| (name.as_str(), own)))
            .filter(|(_, c)| c.network == VmNetwork::Nat)
            .map(|(name, _)| {
                if name.is_empty() {
                    "every vm label"
                } else {
                    name
                }
            })
            .collect();
        if !nat.is_empty() {
            tracing::warn!(
                labels = %nat.join(", "),
                "vm network nat: VM jobs reach the outside and EVERY service listening on \
                 this machine's loopback (127.0.0.1, at the guest's gateway 10.0.2.2): Gitea, \
                 databases, Docker on a TCP port; use it only for trusted jobs"
            );
        }
        if config.network == VmNetwork::Restricted {
            tracing::info!(
                cache_forward = ?config.cache_forward,
                server_forward = ?config.server_forward.as_ref().map(forward::ServerForward::target),
                "vm backend: restricted network, the guest reaches only the cache server (at {}:PORT) \
                 and the Gitea server (at {}:PORT)",
                forward::FORWARD_ADDRESS,
                forward::SERVER_FORWARD_ADDRESS
            );
        }
        tracing::info!(
            accel = config.accel.describe(),
            cpus = config.cpus,
            memory_mib = config.memory_mib,
            disk_size = ?config.disk_size,
            images = %config.images.display(),
            probe_kvm = config.probe_kvm,
            labels_with_own_settings = labels.len(),
            "vm backend: guests run under {}{}",
            config.accel.describe(),
            if config.probe_kvm { " unless a KVM probe boot works" } else { "" }
        );
        VmBackend {
            config,
            labels,
            machine: tokio::sync::OnceCell::new(),
        }
    }

    /// The settings a job on `label` boots with: the label's own (else the backend's), under
    /// KVM when asked, or when the probe boot under KVM answered (its result kept in
    /// `IMAGE/accel-HOST_KERNEL`), else TCG.
    async fn machine(&self, label: &str, image: &Image) -> VmConfig {
        let accel = *self
            .machine
            .get_or_init(|| async {
                let accel = if self.config.probe_kvm {
                    probe_kvm(&self.config, image).await
                } else {
                    self.config.accel
                };
                tracing::info!("vm backend: guests run under {}", accel.describe());
                accel
            })
            .await;
        let mut config = self.settings_for(label).clone();
        config.accel = accel;
        config.probe_kvm = false;
        config
    }

    /// The settings of `label`'s jobs (before the accelerator is decided).
    pub fn settings_for(&self, label: &str) -> &VmConfig {
        self.labels
            .get(&label.to_ascii_lowercase())
            .unwrap_or(&self.config)
    }

    pub fn config(&self) -> &VmConfig {
        &self.config
    }

    /// Kills the QEMU processes and removes the job directories that runners which are gone
    /// left under this backend's root.
    pub fn cleanup_leftovers(&self) -> VmLeftoverReport {
        leftovers::cleanup(&self.config.root)
    }

    /// Prepares `spec` in a VM booted from `image`, with the settings of `label` (the label
    /// the job runs on).
    pub async fn prepare_image(
        &self,
        label: &str,
        image: &str,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn JobEnvironment>, BackendError> {
        let operation = || format!("prepare job {} in VM image `{image}`", spec.job_key);
        if let Some(container) = &spec.image {
            return Err(into_backend(
                operation(),
                VmError::ContainerUnsupported {
                    job_key: spec.job_key.clone(),
                    image: container.image.clone(),
                },
            ));
        }
        let image = self
            .image(image)
            .map_err(|e| into_backend(operation(), e))?;
        let config = self.machine(label, &image).await;
        let grow = image
            .check_disk_size(&config)
            .map_err(|e| into_backend(operation(), e))?;
        setup_log(&format!(
            "Booting a VM from image `{}` under {}, {} vCPU(s), {} MiB{}, the job's directory \
             over {}",
            image.name,
            config.accel.describe(),
            config.cpus,
            config.memory_mib,
            grow.map(|size| format!(", root disk grown to {} MiB", size >> 20))
                .unwrap_or_default(),
            match config.share {
                VmShare::Virtiofs => "virtiofs",
                VmShare::Auto | VmShare::NineP => "9p",
            }
        ));
        let started = Instant::now();
        let mut environment = VmEnvironment::boot(&config, &image, spec, cancel)
            .await
            .map_err(|e| into_backend(operation(), e))?;
        setup_log(&format!(
            "VM up in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        if let Err(error) = environment.run_start_hook(cancel).await {
            let _ = environment.teardown().await;
            return Err(into_backend(operation(), error));
        }
        match services::start(&environment, &image.name, &spec.services, cancel).await {
            Ok(ports) => environment.set_service_ports(ports),
            Err(error) => {
                let _ = environment.teardown().await;
                return Err(into_backend(operation(), error));
            }
        }
        Ok(Box::new(environment))
    }

    fn image(&self, name: &str) -> Result<Image, VmError> {
        let dir = self.config.images.join(name);
        let file = |file: &'static str| -> Result<PathBuf, VmError> {
            let path = dir.join(file);
            if path.is_file() && !name.contains('/') && !name.starts_with('.') {
                Ok(path)
            } else {
                Err(VmError::ImageMissing {
                    image: name.to_owned(),
                    dir: dir.clone(),
                    missing: file,
                })
            }
        };
        // Through the name to the content (`by-id/ID/`): a job keeps its image when the name is
        // pointed elsewhere meanwhile, and `runnel vm image rm` sees it in QEMU's command line.
        let canonical = |path: PathBuf| path.canonicalize().unwrap_or(path);
        Ok(Image {
            name: name.to_owned(),
            kernel: canonical(file("vmlinuz")?),
            initramfs: canonical(file("initramfs")?),
            rootfs: canonical(file("rootfs.qcow2")?),
        })
    }
}

/// Whether `image` boots under KVM here: the answer kept beside the image for this host
/// kernel, else a probe boot (no `/dev/kvm`: TCG at once).
async fn probe_kvm(config: &VmConfig, image: &Image) -> Accel {
    let kvm_usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if !kvm_usable {
        setup_log("No usable /dev/kvm: VMs run under TCG (software emulation)");
        return Accel::Tcg;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.trim().replace('/', "_"))
        .unwrap_or_default();
    let kept = image.kernel.with_file_name(format!("accel-{host}"));
    match std::fs::read_to_string(&kept).as_deref().map(str::trim) {
        Ok("kvm") => return Accel::Kvm,
        Ok("tcg") => return Accel::Tcg,
        _ => {}
    }
    setup_log(&format!(
        "Probing whether image `{}` boots under KVM (up to {} s, once per host kernel)",
        image.name,
        KVM_PROBE_TIMEOUT.as_secs()
    ));
    let probe = VmConfig {
        accel: Accel::Kvm,
        probe_kvm: false,
        boot_timeout: KVM_PROBE_TIMEOUT,
        preload: Vec::new(),
        // Only the accelerator is probed: a virtiofsd that fails must not read as "no KVM".
        share: VmShare::NineP,
        ..config.clone()
    };
    let spec = JobSpec {
        job_key: "kvm-probe".to_owned(),
        image: None,
        services: Vec::new(),
        workspace_source: None,
        labels: Vec::new(),
    };
    let accel = match VmEnvironment::boot(&probe, image, &spec, &CancellationToken::new()).await {
        Ok(environment) => {
            let _ = environment.teardown().await;
            setup_log("The KVM probe boot worked: VMs run under KVM");
            Accel::Kvm
        }
        Err(error) => {
            let text = error.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or_default()
                .trim_end_matches([':', '.']);
            tracing::info!(error = first, "KVM probe boot failed; using TCG");
            setup_log(&format!(
                "The KVM probe boot failed ({first}): VMs run under TCG (software emulation)"
            ));
            Accel::Tcg
        }
    };
    let word = match accel {
        Accel::Kvm => "kvm",
        Accel::Tcg => "tcg",
    };
    if let Err(error) = std::fs::write(&kept, word) {
        tracing::warn!(%error, file = %kept.display(), "cannot keep the KVM probe's answer");
    }
    accel
}

/// The TSC frequency the guest is told (under TCG the guest's TSC runs at the host's rate; the
/// microvm machine has no PIT or HPET to calibrate it against, and Debian's kernel hangs
/// without it).
fn tsc_khz() -> u64 {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("cpu MHz"))
                .and_then(|line| line.split(':').nth(1))
                .and_then(|mhz| mhz.trim().parse::<f64>().ok())
        })
        .filter(|mhz| *mhz > 100.0)
        .map_or(2_000_000, |mhz| (mhz * 1000.0) as u64)
}

/// QEMU's arguments for one job.
fn qemu_args(
    config: &VmConfig,
    image: &Image,
    job_dir: &Path,
    share: &Path,
    agent_dir: &Path,
) -> Result<Vec<String>, VmError> {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let (accel, cpu) = match config.accel {
        Accel::Tcg => ("tcg", "max"),
        Accel::Kvm => ("kvm", "host,-arch-capabilities"),
    };
    let mut append = format!(
        "console=ttyS0 acpi=on panic=-1 tsc_early_khz={} tsc=reliable loglevel=4",
        tsc_khz()
    );
    let virtiofs = config.share == VmShare::Virtiofs;
    if virtiofs {
        // The init mounts the job's directory over virtiofs instead of 9p.
        append.push_str(" runnel.share=virtiofs");
    }
    // vhost-user needs the guest's memory shared with virtiofsd.
    let machine = if virtiofs {
        "microvm,acpi=on,memory-backend=mem"
    } else {
        "microvm,acpi=on"
    };
    if config.disk_size.is_some() {
        // The overlay is larger than the image's file system: the init grows it.
        append.push_str(" runnel.grow");
    }
    let mut args: Vec<String> = [
        "-M",
        machine,
        "-accel",
        accel,
        "-cpu",
        cpu,
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-no-reboot",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend([
        "-smp".to_owned(),
        config.cpus.to_string(),
        "-m".to_owned(),
        config.memory_mib.to_string(),
        "-kernel".to_owned(),
        path(&image.kernel),
        "-initrd".to_owned(),
        path(&image.initramfs),
        "-append".to_owned(),
        append,
        "-drive".to_owned(),
        format!(
            "id=root,file={},format=qcow2,if=none,cache=unsafe",
            path(&job_dir.join("overlay.qcow2"))
        ),
        "-device".to_owned(),
        "virtio-blk-device,drive=root".to_owned(),
        "-fsdev".to_owned(),
        format!(
            "local,id=agentfs,path={},security_model=none,readonly=on",
            path(agent_dir)
        ),
        "-device".to_owned(),
        "virtio-9p-device,fsdev=agentfs,mount_tag=runnel-agent".to_owned(),
    ]);
    if virtiofs {
        args.extend([
            "-object".to_owned(),
            format!(
                "memory-backend-memfd,id=mem,size={}M,share=on",
                config.memory_mib
            ),
            "-chardev".to_owned(),
            format!(
                "socket,id=jobfs,path={}",
                path(&job_dir.join(virtiofs::SOCKET))
            ),
            "-device".to_owned(),
            "vhost-user-fs-device,chardev=jobfs,tag=runnel-job".to_owned(),
        ]);
    } else {
        args.extend([
            "-fsdev".to_owned(),
            format!("local,id=jobfs,path={},security_model=none", path(share)),
            "-device".to_owned(),
            "virtio-9p-device,fsdev=jobfs,mount_tag=runnel-job".to_owned(),
        ]);
    }
    args.extend([
        // User-mode networking (slirp): restricted to the cache forward, or QEMU's NAT.
        "-netdev".to_owned(),
        config.netdev()?,
        "-device".to_owned(),
        "virtio-net-device,netdev=net".to_owned(),
        "-device".to_owned(),
        "virtio-serial-device".to_owned(),
        "-chardev".to_owned(),
        format!(
            "socket,id=agent,path={},server=on,wait=off",
            path(&job_dir.join("agent.sock"))
        ),
        "-device".to_owned(),
        format!(
            "virtserialport,chardev=agent,name={}",
            runnel_vm_agent::protocol::PORT_NAME
        ),
        "-serial".to_owned(),
        format!("file:{}", path(&job_dir.join("console.log"))),
    ]);
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(accel: Accel) -> VmConfig {
        VmConfig {
            images: PathBuf::from("/images"),
            agent: PathBuf::from("/bin/agent"),
            root: PathBuf::from("/tmp"),
            qemu: PathBuf::from("qemu-system-x86_64"),
            qemu_img: PathBuf::from("qemu-img"),
            accel,
            probe_kvm: false,
            cpus: 2,
            memory_mib: 512,
            disk_size: None,
            boot_timeout: Duration::from_secs(5),
            preload: Vec::new(),
            docker_host: None,
            network: VmNetwork::Restricted,
            cache_forward: None,
            server_forward: None,
            forwarder: PathBuf::from("/usr/bin/runnel"),
            share: VmShare::NineP,
            virtiofsd: None,
        }
    }

    /// The facts the machine needs (issue #17): microvm with ACPI for the virtio-mmio devices,
    /// the TSC frequency given (no PIT or HPET under TCG), `-cpu host,-arch-capabilities` with
    /// KVM; the overlay, the two 9p shares and the agent's port.
    #[test]
    fn qemu_gets_what_debians_kernel_needs_on_a_microvm() {
        let image = Image {
            name: "debian".to_owned(),
            kernel: PathBuf::from("/images/debian/vmlinuz"),
            initramfs: PathBuf::from("/images/debian/initramfs"),
            rootfs: PathBuf::from("/images/debian/rootfs.qcow2"),
        };
        let job = Path::new("/tmp/runnel-vm-x");
        let args = qemu_args(
            &config(Accel::Tcg),
            &image,
            job,
            &job.join("job"),
            &job.join("agent"),
        )
        .expect("args");
        let text = args.join(" ");
        for expected in [
            "-M microvm,acpi=on -accel tcg -cpu max",
            "-smp 2 -m 512 -kernel /images/debian/vmlinuz -initrd /images/debian/initramfs",
            "acpi=on",
            "tsc_early_khz=",
            "file=/tmp/runnel-vm-x/overlay.qcow2,format=qcow2",
            "path=/tmp/runnel-vm-x/agent,security_model=none,readonly=on",
            "mount_tag=runnel-agent",
            "path=/tmp/runnel-vm-x/job,security_model=none",
            "mount_tag=runnel-job",
            "socket,id=agent,path=/tmp/runnel-vm-x/agent.sock,server=on,wait=off",
            "virtserialport,chardev=agent,name=runnel.agent",
            "-serial file:/tmp/runnel-vm-x/console.log",
            "-netdev user,id=net,net=10.0.2.0/24,hostname=runnel-vm,restrict=on -device",
            "-device virtio-net-device,netdev=net",
        ] {
            assert!(text.contains(expected), "{expected:?} in {text}");
        }
        let kvm = qemu_args(&config(Accel::Kvm), &image, job, job, job)
            .expect("args")
            .join(" ");
        assert!(
            kvm.contains("-accel kvm -cpu host,-arch-capabilities"),
            "{kvm}"
        );
        assert!(!text.contains("runnel.share=virtiofs"), "{text}");
    }

    /// With virtiofs: the guest's memory shared (memfd), the vhost-user device on the job's
    /// socket with the same tag, the init told; the agent's directory stays on 9p.
    #[test]
    fn virtiofs_shares_memory_and_replaces_the_jobs_9p_device() {
        let image = Image {
            name: "debian".to_owned(),
            kernel: PathBuf::from("/k"),
            initramfs: PathBuf::from("/i"),
            rootfs: PathBuf::from("/r"),
        };
        let mut config = config(Accel::Tcg);
        config.share = VmShare::Virtiofs;
        let job = Path::new("/tmp/runnel-vm-x");
        let text = qemu_args(&config, &image, job, &job.join("job"), &job.join("agent"))
            .expect("args")
            .join(" ");
        for expected in [
            "-M microvm,acpi=on,memory-backend=mem",
            "runnel.share=virtiofs",
            "-object memory-backend-memfd,id=mem,size=512M,share=on",
            "-chardev socket,id=jobfs,path=/tmp/runnel-vm-x/virtiofs.sock",
            "-device vhost-user-fs-device,chardev=jobfs,tag=runnel-job",
            "mount_tag=runnel-agent",
        ] {
            assert!(text.contains(expected), "{expected:?} in {text}");
        }
        assert!(!text.contains("fsdev=jobfs"), "{text}");
    }

    /// `auto` is virtiofs when the named `virtiofsd` exists, else 9p; `9p` never looks.
    #[test]
    fn auto_picks_virtiofs_only_with_a_virtiofsd() {
        let mut found = config(Accel::Tcg);
        found.share = VmShare::Auto;
        found.virtiofsd = Some(PathBuf::from("/bin/sh"));
        found.resolve_share();
        assert_eq!(found.share, VmShare::Virtiofs);
        let mut missing = config(Accel::Tcg);
        missing.share = VmShare::Auto;
        missing.virtiofsd = Some(PathBuf::from("/nonexistent/virtiofsd"));
        missing.resolve_share();
        assert_eq!(missing.share, VmShare::NineP);
        let mut nine = config(Accel::Tcg);
        nine.virtiofsd = Some(PathBuf::from("/bin/sh"));
        nine.resolve_share();
        assert_eq!((nine.share, nine.virtiofsd), (VmShare::NineP, None));
        let mut asked = config(Accel::Tcg);
        asked.share = VmShare::Virtiofs;
        asked.virtiofsd = Some(PathBuf::from("/nonexistent/virtiofsd"));
        assert!(asked.resolve_share(), "virtiofs asked, none found");
        assert_eq!(asked.share, VmShare::Virtiofs);
    }

    /// Restricted by default: `restrict=on` and one forward to the cache server; NAT only when
    /// asked, and the job's view of this machine's loopback follows.
    #[test]
    fn the_network_is_restricted_to_the_cache_forward_unless_nat_is_asked() {
        let mut config = config(Accel::Tcg);
        assert_eq!(
            config.netdev().expect("netdev"),
            "user,id=net,net=10.0.2.0/24,hostname=runnel-vm,restrict=on"
        );
        config.cache_forward = Some("127.0.0.1:40123".parse().expect("addr"));
        assert_eq!(
            config.netdev().expect("netdev"),
            "user,id=net,net=10.0.2.0/24,hostname=runnel-vm,restrict=on,\
             guestfwd=tcp:10.0.2.100:40123-cmd:/usr/bin/runnel __vm-forward 127.0.0.1:40123"
        );
        assert_eq!(config.host_loopback(), "10.0.2.100");
        config.forwarder = PathBuf::from("/a b/runnel");
        assert!(matches!(
            config.netdev(),
            Err(VmError::ForwarderPath { .. })
        ));
        config.network = VmNetwork::Nat;
        assert_eq!(
            config.netdev().expect("netdev"),
            "user,id=net,net=10.0.2.0/24,hostname=runnel-vm"
        );
        assert_eq!(config.host_loopback(), "10.0.2.2");
    }

    /// In daemon mode a second forward reaches the Gitea server (only its host and port), and
    /// the job is told the server's origin as the guest reaches it; with NAT a server on this
    /// machine's loopback is at the gateway, another at its own address.
    #[test]
    fn the_gitea_server_gets_a_forward_of_its_own() {
        let mut config = config(Accel::Tcg);
        assert_eq!(config.server_origin(), None);
        config.cache_forward = Some("127.0.0.1:40123".parse().expect("addr"));
        config.server_forward = forward::ServerForward::from_url("http://localhost:3000/");
        assert_eq!(
            config.netdev().expect("netdev"),
            "user,id=net,net=10.0.2.0/24,hostname=runnel-vm,restrict=on,\
             guestfwd=tcp:10.0.2.100:40123-cmd:/usr/bin/runnel __vm-forward 127.0.0.1:40123,\
             guestfwd=tcp:10.0.2.101:3000-cmd:/usr/bin/runnel __vm-forward localhost:3000"
        );
        assert_eq!(
            config.server_origin().as_deref(),
            Some("http://10.0.2.101:3000")
        );
        config.network = VmNetwork::Nat;
        assert_eq!(
            config.server_origin().as_deref(),
            Some("http://10.0.2.2:3000")
        );
        config.server_forward = forward::ServerForward::from_url("https://git.example.com");
        assert_eq!(config.server_origin(), None);
        config.network = VmNetwork::Restricted;
        assert_eq!(
            config.server_origin().as_deref(),
            Some("https://10.0.2.101:443")
        );
    }

    #[test]
    fn an_image_name_cannot_leave_the_images_directory() {
        let backend = VmBackend::new(config(Accel::Tcg));
        for name in ["../etc", "a/b", ".hidden", "missing"] {
            assert!(
                matches!(backend.image(name), Err(VmError::ImageMissing { .. })),
                "{name}"
            );
        }
    }
}
