//! The vm backend's settings (`VmConfig`: accelerator, limits, network, share, forwards),
//! read from the environment over the `vm:` section, and what follows from them for QEMU's
//! command line: the share decided, the guest's network (`-netdev`) and where a guest reaches
//! this machine's loopback and the Gitea server.
//!
//! Must not: start processes or touch a job's directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{VmError, VmShare, forward, image, preload, virtiofs};

/// How QEMU runs the guest's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Software emulation: works everywhere, several times slower.
    Tcg,
    /// Hardware virtualisation through `/dev/kvm`.
    Kvm,
}

impl Accel {
    /// How the runner says it at start.
    pub fn describe(self) -> &'static str {
        match self {
            Accel::Tcg => "TCG (software emulation)",
            Accel::Kvm => "KVM",
        }
    }
}

/// What the guest's user-mode network reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmNetwork {
    /// `restrict=on`: nothing of this machine or beyond, except the forwards of
    /// [`forward::FORWARD_ADDRESS`] to the runner's cache server and of
    /// [`forward::SERVER_FORWARD_ADDRESS`] to a daemon's Gitea server (the default).
    Restricted,
    /// QEMU's NAT: the outside (registries, Gitea), and every service listening on this
    /// machine's loopback at the gateway `10.0.2.2` (`RUNNEL_VM_NETWORK=nat`).
    Nat,
}

/// Settings of the vm backend.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// Where images are: `IMAGES/NAME/{vmlinuz,initramfs,rootfs.qcow2}`.
    pub images: PathBuf,
    /// The guest agent binary (`runnel-vm-agent`), copied into each job's directory.
    pub agent: PathBuf,
    /// Under which job directories are made.
    pub root: PathBuf,
    pub qemu: PathBuf,
    pub qemu_img: PathBuf,
    pub accel: Accel,
    /// Boot the image under KVM once before the first job and use KVM when that works
    /// (`accel` is then only the fallback).
    pub probe_kvm: bool,
    pub cpus: u32,
    pub memory_mib: u32,
    /// The guest's root disk grows to this many bytes (the overlay's size; the guest's init
    /// grows its file system); `None`: the image's size.
    pub disk_size: Option<u64>,
    /// A guest whose agent has not answered by then is killed.
    pub boot_timeout: Duration,
    /// Images saved from this machine's Docker engine into each job's directory, which an
    /// image with Docker's engine loads before the first step.
    pub preload: Vec<String>,
    /// The engine to save them from (`None`: `DOCKER_HOST`, else the default socket).
    pub docker_host: Option<String>,
    pub network: VmNetwork,
    /// On the restricted network: where the guest's connections to
    /// [`forward::FORWARD_ADDRESS`]`:PORT` go (the cache server, on this machine's loopback;
    /// the port is the same). `None`: no forward, the guest reaches nothing.
    pub cache_forward: Option<SocketAddr>,
    /// The Gitea server a daemon's jobs use (`actions/checkout`, artifacts): on the restricted
    /// network forwarded from [`forward::SERVER_FORWARD_ADDRESS`]`:PORT`; with NAT, a server on
    /// this machine's loopback is reached at the gateway. `None` (`runnel run`): no forward.
    pub server_forward: Option<forward::ServerForward>,
    /// The program QEMU runs per forwarded connection with `__vm-forward ADDR` (the running
    /// `runnel`).
    pub forwarder: PathBuf,
    /// How the job's directory reaches the guest; `Auto` is decided when the backend is made
    /// ([`VmBackend::with_labels`]): `Virtiofs` when a `virtiofsd` is found, else `NineP`.
    pub share: VmShare,
    /// The `virtiofsd` binary (`vm.virtiofsd`); `None`: looked for ([`virtiofs::find`]).
    pub virtiofsd: Option<PathBuf>,
}

impl VmConfig {
    /// The settings from the environment, else the defaults: [`VmConfig::defaults`] with
    /// [`VmConfig::apply_env`].
    pub fn from_env() -> VmConfig {
        let mut config = VmConfig::defaults();
        config.apply_env();
        config
    }

    /// The defaults, and the settings only the environment gives: images in
    /// `${RUNNEL_CACHE:-$HOME/.cache/runnel}/vm` (where `runnel vm image build` builds them);
    /// the agent `$RUNNEL_VM_AGENT`, else `runnel-vm-agent` beside the running executable;
    /// `RUNNEL_VM_ACCEL`: `tcg`, `kvm`, or (the default) a KVM probe boot deciding; 1 vCPU,
    /// 1024 MiB, the image's disk size, a boot timeout of 180 s (a TCG boot on a loaded
    /// machine is slow), no images to preload, the restricted network. The cache forward is
    /// the assembly's to set (it knows the server's port).
    pub fn defaults() -> VmConfig {
        let agent = env_var("RUNNEL_VM_AGENT")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|exe| exe.parent().map(|dir| dir.join("runnel-vm-agent")))
                    .unwrap_or_else(|| PathBuf::from("runnel-vm-agent"))
            });
        let (accel, probe_kvm) = match env_var("RUNNEL_VM_ACCEL")
            .as_deref()
            .and_then(|v| v.to_str())
        {
            Some("kvm") => (Accel::Kvm, false),
            Some("tcg") => (Accel::Tcg, false),
            _ => (Accel::Tcg, true),
        };
        VmConfig {
            images: image::default_images_dir(),
            agent,
            root: std::env::temp_dir(),
            qemu: PathBuf::from("qemu-system-x86_64"),
            qemu_img: PathBuf::from("qemu-img"),
            accel,
            probe_kvm,
            cpus: 1,
            memory_mib: 1024,
            disk_size: None,
            boot_timeout: Duration::from_secs(180),
            preload: Vec::new(),
            docker_host: None,
            network: VmNetwork::Restricted,
            cache_forward: None,
            server_forward: None,
            forwarder: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("runnel")),
            share: VmShare::Auto,
            virtiofsd: None,
        }
    }

    /// The environment's settings over these (they win over `config.yaml`'s `vm:` section):
    /// `RUNNEL_VM_IMAGES`, `RUNNEL_VM_CPUS`, `RUNNEL_VM_MEMORY_MIB`, `RUNNEL_VM_BOOT_TIMEOUT`
    /// in seconds, `RUNNEL_VM_PRELOAD_IMAGES` (images separated by commas or spaces) and
    /// `RUNNEL_VM_NETWORK` (`restricted` or `nat`), `RUNNEL_VM_SHARE` (`auto`, `virtiofs`
    /// or `9p`) and `RUNNEL_VM_VIRTIOFSD` (a path). Unset or empty variables change nothing; a
    /// value that is not a positive number is ignored with a warning.
    pub fn apply_env(&mut self) {
        let number = |name: &str| {
            let value = env_var(name)?;
            let parsed = value
                .to_str()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .filter(|n| *n > 0);
            if parsed.is_none() {
                tracing::warn!(
                    variable = name,
                    value = %value.to_string_lossy(),
                    "not a positive whole number: ignored"
                );
            }
            parsed
        };
        if let Some(images) = env_var("RUNNEL_VM_IMAGES") {
            self.images = PathBuf::from(images);
        }
        if let Some(cpus) = number("RUNNEL_VM_CPUS") {
            self.cpus = cpus;
        }
        if let Some(memory) = number("RUNNEL_VM_MEMORY_MIB") {
            self.memory_mib = memory;
        }
        if let Some(seconds) = number("RUNNEL_VM_BOOT_TIMEOUT") {
            self.boot_timeout = Duration::from_secs(u64::from(seconds));
        }
        if let Some(list) = env_var("RUNNEL_VM_PRELOAD_IMAGES") {
            self.preload = preload::parse_list(&list.to_string_lossy());
        }
        if let Some(share) = env_var("RUNNEL_VM_SHARE") {
            match share.to_str().and_then(VmShare::parse) {
                Some(share) => self.share = share,
                None => tracing::warn!(
                    value = %share.to_string_lossy(),
                    "RUNNEL_VM_SHARE is not `auto`, `virtiofs` or `9p`: ignored"
                ),
            }
        }
        if let Some(path) = env_var("RUNNEL_VM_VIRTIOFSD") {
            self.virtiofsd = Some(PathBuf::from(path));
        }
        match env_var("RUNNEL_VM_NETWORK")
            .as_deref()
            .and_then(|v| v.to_str())
        {
            Some("nat") => self.network = VmNetwork::Nat,
            Some("restricted") => self.network = VmNetwork::Restricted,
            None => {}
            Some(other) => {
                tracing::warn!(
                    value = other,
                    "RUNNEL_VM_NETWORK is neither `restricted` nor `nat`: using `restricted`"
                );
                self.network = VmNetwork::Restricted;
            }
        }
    }
}

/// An environment variable that is set and not empty.
fn env_var(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// The guest's user-mode network; the initramfs gives the guest `.15`, QEMU answers DNS at
/// `.3`.
const GUEST_NETWORK: &str = "10.0.2.0/24";
/// The guest's gateway, which QEMU's NAT maps onto this machine's loopback.
pub(crate) const GUEST_GATEWAY: &str = "10.0.2.2";

impl VmConfig {
    /// Decides `auto` (virtiofs when a `virtiofsd` is found, else 9p) and where `virtiofsd`
    /// is; `virtiofs` with none found keeps the setting (or `virtiofsd`), so each job fails
    /// naming it. Returns whether that happened (virtiofs asked, none found).
    pub(super) fn resolve_share(&mut self) -> bool {
        let found = match self.share {
            VmShare::NineP => None,
            VmShare::Auto | VmShare::Virtiofs => virtiofs::find(self.virtiofsd.as_deref()),
        };
        match (self.share, found) {
            (VmShare::NineP, _) | (VmShare::Auto, None) => {
                self.share = VmShare::NineP;
                self.virtiofsd = None;
            }
            (_, Some(path)) => {
                self.share = VmShare::Virtiofs;
                self.virtiofsd = Some(path);
            }
            (VmShare::Virtiofs, None) => {
                if self.virtiofsd.is_none() {
                    self.virtiofsd = Some(PathBuf::from("virtiofsd"));
                }
                return true;
            }
        }
        false
    }

    /// How the runner says the share at start.
    pub(super) fn describe_share(&self) -> String {
        match (self.share, &self.virtiofsd) {
            (VmShare::Virtiofs, Some(path)) => format!("virtiofs ({})", path.display()),
            _ => "9p".to_owned(),
        }
    }

    /// Where a job of this backend reaches this machine's loopback (the cache server): the
    /// forward's address on the restricted network, the gateway with NAT.
    pub(crate) fn host_loopback(&self) -> &'static str {
        match self.network {
            VmNetwork::Restricted => forward::FORWARD_ADDRESS,
            VmNetwork::Nat => GUEST_GATEWAY,
        }
    }

    /// Where a job of this backend reaches the Gitea server (its origin, `http://HOST:PORT`)
    /// when not at the server's own address: the server forward on the restricted network; the
    /// gateway with NAT when the server is on this machine's loopback. `None`: at its own.
    pub(crate) fn server_origin(&self) -> Option<String> {
        let server = self.server_forward.as_ref()?;
        match self.network {
            VmNetwork::Restricted => Some(server.guest_origin(forward::SERVER_FORWARD_ADDRESS)),
            VmNetwork::Nat if server.is_loopback() => Some(server.guest_origin(GUEST_GATEWAY)),
            VmNetwork::Nat => None,
        }
    }

    /// QEMU's `-netdev` value.
    pub(super) fn netdev(&self) -> Result<String, VmError> {
        let mut netdev = format!("user,id=net,net={GUEST_NETWORK},hostname=runnel-vm");
        if self.network == VmNetwork::Restricted {
            netdev.push_str(",restrict=on");
            let cache = self
                .cache_forward
                .map(|target| (forward::FORWARD_ADDRESS, target.port(), target.to_string()));
            let server = self.server_forward.as_ref().map(|server| {
                (
                    forward::SERVER_FORWARD_ADDRESS,
                    server.port,
                    server.target(),
                )
            });
            for (address, port, target) in cache.into_iter().chain(server) {
                let rule = forward::guestfwd_option(&self.forwarder, address, port, &target)
                    .ok_or_else(|| VmError::ForwarderPath {
                        path: self.forwarder.clone(),
                    })?;
                netdev.push(',');
                netdev.push_str(&rule);
            }
        }
        Ok(netdev)
    }
}
