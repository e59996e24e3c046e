//! The `vm:` section: where `name:vm://IMAGE` labels find their images and what each guest is
//! given (vCPUs, memory, root disk size, boot timeout, network, images for its Docker engine),
//! section-wide and per label (`vm.labels.<name>`).
//!
//! Must not: look at images or QEMU (the backend checks what only they can), or apply the
//! `RUNNEL_VM_*` environment variables (the assembly does, over these).

use super::*;

/// The least memory a guest can boot Debian's kernel and the agent with.
const MIN_MEMORY: u64 = 128 << 20;
/// QEMU's `microvm` machine takes no more vCPUs than this here.
const MAX_CPUS: i64 = 255;

impl Reader<'_> {
    pub(super) fn vm_key(&mut self, path: &str, v: &Node) -> bool {
        match path {
            "vm.images" => set(self.string(path, v), |s| {
                let dir = s.trim();
                self.config.vm.images = (!dir.is_empty()).then(|| PathBuf::from(dir));
            }),
            "vm.share" => set(self.vm_share(path, v), |m| self.config.vm.share = m),
            "vm.virtiofsd" => set(self.string(path, v), |s| {
                let file = s.trim();
                self.config.vm.virtiofsd = (!file.is_empty()).then(|| PathBuf::from(file));
            }),
            "vm.cpus" => set(self.vm_cpus(path, v), |n| self.config.vm.settings.cpus = n),
            "vm.memory" => set(self.vm_memory(path, v), |m| {
                self.config.vm.settings.memory = m
            }),
            "vm.disk_size" => set(self.vm_disk_size(path, v), |d| {
                self.config.vm.settings.disk_size = d
            }),
            "vm.boot_timeout" => set(self.vm_boot_timeout(path, v), |d| {
                self.config.vm.settings.boot_timeout = d
            }),
            "vm.network" => set(self.vm_network(path, v), |n| {
                self.config.vm.settings.network = n
            }),
            "vm.preload_images" => set(self.strings(path, v), |l| {
                self.config.vm.settings.preload_images = l
            }),
            "vm.labels" => {
                for (label, value, _) in self.entries(path, v).unwrap_or_default() {
                    let label_path = format!("{path}.{label}");
                    let settings = self.vm_label(&label_path, value);
                    self.config.vm.labels.insert(label, settings);
                }
            }
            _ => return false,
        }
        true
    }

    /// `vm.labels.<name>`: the keys of the section a label may set for its own jobs.
    fn vm_label(&mut self, path: &str, v: &Node) -> VmLabelSettings {
        let mut own = VmLabelSettings::default();
        for (key, value, at) in self.entries(path, v).unwrap_or_default() {
            let key_path = format!("{path}.{key}");
            if value.is_null() {
                // Written without a value: the section's applies.
                continue;
            }
            match key.as_str() {
                "cpus" => own.cpus = self.vm_cpus(&key_path, value),
                "memory" => own.memory = self.vm_memory(&key_path, value),
                "disk_size" => own.disk_size = self.vm_disk_size(&key_path, value).flatten(),
                "boot_timeout" => own.boot_timeout = self.vm_boot_timeout(&key_path, value),
                "network" => own.network = self.vm_network(&key_path, value),
                "preload_images" => own.preload_images = self.strings(&key_path, value),
                _ => self.unknown(&key_path, at),
            }
        }
        own
    }

    fn vm_cpus(&mut self, path: &str, v: &Node) -> Option<u32> {
        if v.is_null() {
            return None;
        }
        let n = self.integer(path, v)?;
        match u32::try_from(n) {
            Ok(cpus) if (1..=MAX_CPUS).contains(&n) => Some(cpus),
            _ => {
                self.error(
                    v.span,
                    format!("{path}: {n} is not a number of vCPUs (1 to {MAX_CPUS})"),
                );
                None
            }
        }
    }

    /// A size such as `2GiB` or `512M`, a whole number of MiB and at least 128 MiB.
    fn vm_memory(&mut self, path: &str, v: &Node) -> Option<u64> {
        let text = self.string(path, v)?;
        if v.is_null() || text.trim().is_empty() {
            return None;
        }
        match crate::parse_size(&text) {
            Ok(bytes) if bytes < MIN_MEMORY => {
                self.error(
                    v.span,
                    format!(
                        "{path}: `{text}` is {bytes} bytes, less than the 128MiB a guest needs \
                         (write a size with its unit, e.g. 2GiB)"
                    ),
                );
                None
            }
            Ok(bytes) if bytes % (1 << 20) != 0 => {
                self.error(
                    v.span,
                    format!("{path}: `{text}` is not a whole number of MiB"),
                );
                None
            }
            Ok(bytes) => Some(bytes),
            Err(message) => {
                self.error(v.span, format!("{path}: {message}"));
                None
            }
        }
    }

    /// Empty: the image's own size (`Some(None)`); else a size of at least 64 MiB.
    fn vm_disk_size(&mut self, path: &str, v: &Node) -> Option<Option<u64>> {
        let text = self.string(path, v)?;
        if text.trim().is_empty() {
            return Some(None);
        }
        match crate::parse_size(&text) {
            Ok(bytes) if bytes < 64 << 20 => {
                self.error(
                    v.span,
                    format!(
                        "{path}: `{text}` is {bytes} bytes; a root disk needs a size such as 10GiB"
                    ),
                );
                None
            }
            Ok(bytes) => Some(Some(bytes)),
            Err(message) => {
                self.error(v.span, format!("{path}: {message}"));
                None
            }
        }
    }

    fn vm_boot_timeout(&mut self, path: &str, v: &Node) -> Option<Duration> {
        if v.is_null() {
            return None;
        }
        let timeout = self.duration(path, v)?;
        if timeout < Duration::from_secs(1) {
            self.error(
                v.span,
                format!("{path}: a boot takes seconds at least (write e.g. 3m)"),
            );
            return None;
        }
        Some(timeout)
    }

    fn vm_share(&mut self, path: &str, v: &Node) -> Option<VmShareMode> {
        if v.is_null() {
            return None;
        }
        match self.string(path, v)?.trim() {
            "auto" | "" => Some(VmShareMode::Auto),
            "virtiofs" => Some(VmShareMode::Virtiofs),
            "9p" => Some(VmShareMode::NineP),
            other => {
                self.error(
                    v.span,
                    format!("{path}: `{other}` is not `auto`, `virtiofs` or `9p`"),
                );
                None
            }
        }
    }

    fn vm_network(&mut self, path: &str, v: &Node) -> Option<VmNetworkMode> {
        if v.is_null() {
            return None;
        }
        match self.string(path, v)?.trim() {
            "restricted" => Some(VmNetworkMode::Restricted),
            "nat" => Some(VmNetworkMode::Nat),
            other => {
                self.error(
                    v.span,
                    format!("{path}: `{other}` is not `restricted` or `nat`"),
                );
                None
            }
        }
    }
}
