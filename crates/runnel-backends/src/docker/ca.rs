//! The CA bundle from the config (`container.ca_bundle`, `runnel run --ca-bundle`), trusted in
//! job, service and step containers.
//!
//! The configured certificates are appended to this machine's system bundle and the result is
//! written once per backend into a directory of this runner (removed when the backend is
//! dropped; a killed runner's is removed by the next start, like its job directories). Every
//! container gets it read-only at [`CA_TARGET`], and the variables the common TLS stacks read
//! point there: `SSL_CERT_FILE` (OpenSSL, Python's ssl, Go), `CURL_CA_BUNDLE` (curl),
//! `REQUESTS_CA_BUNDLE` (Python requests), `GIT_SSL_CAINFO` (git), `NODE_EXTRA_CA_CERTS`
//! (Node, which adds it to its own store). A combined file instead of the configured one
//! alone, because `SSL_CERT_FILE` replaces the trust store: public CAs must stay trusted. The
//! machine's bundle rather than each image's, because the image's is not known before its
//! container runs (and services and actions run no setup of ours). A variable the workflow
//! sets itself wins.
//!
//! Must not: talk to Docker.

use std::path::{Path, PathBuf};

use super::error::DockerError;
use super::leftovers;
use bollard::models::{Mount, MountType};

/// Where containers see the combined bundle.
pub(crate) const CA_TARGET: &str = "/etc/runnel/ca-bundle.pem";

/// The variables pointed at [`CA_TARGET`].
pub(crate) const CA_VARIABLES: [&str; 5] = [
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "NODE_EXTRA_CA_CERTS",
];

/// System bundles of the common distributions, first found wins.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The combined bundle on this machine; its directory goes when this is dropped.
#[derive(Debug)]
pub(crate) struct CaBundle {
    dir: PathBuf,
    file: PathBuf,
}

impl CaBundle {
    /// Checks `configured` (PEM certificates) and writes the combined bundle under `root`.
    pub(crate) fn prepare(root: &Path, configured: &Path) -> Result<CaBundle, DockerError> {
        let extra =
            std::fs::read_to_string(configured).map_err(|source| DockerError::CaUnreadable {
                path: configured.to_owned(),
                source,
            })?;
        if !extra.contains("-----BEGIN CERTIFICATE-----") {
            return Err(DockerError::CaNotPem {
                path: configured.to_owned(),
            });
        }
        let mut combined = SYSTEM_BUNDLES
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default();
        if !combined.is_empty() && !combined.ends_with('\n') {
            combined.push('\n');
        }
        combined.push_str(&extra);
        let (pid, start) = leftovers::this_runner();
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let sequence = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = root.join(format!("runnel-pod-{pid}-{start}-ca{sequence}"));
        let io = |what: &Path| {
            let subject = what.display().to_string();
            move |source| DockerError::Io {
                operation: "trust the configured CA bundle",
                subject,
                source,
            }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let file = dir.join("ca-bundle.pem");
        std::fs::write(&file, combined).map_err(io(&file))?;
        // Readable by whoever a container runs as.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .and_then(|()| std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)))
            .map_err(io(&file))?;
        Ok(CaBundle { dir, file })
    }

    /// The read-only bind mount of the bundle.
    pub(crate) fn mount(&self) -> Mount {
        Mount {
            target: Some(CA_TARGET.to_owned()),
            source: Some(self.file.to_string_lossy().into_owned()),
            typ: Some(MountType::BIND),
            read_only: Some(true),
            ..Default::default()
        }
    }
}

/// `NAME=/etc/runnel/ca-bundle.pem` for each variable `env` (`NAME=value` entries) does not
/// set; to go in front of `env`.
pub(crate) fn env_entries(env: &[String]) -> Vec<String> {
    CA_VARIABLES
        .iter()
        .filter(|name| {
            !env.iter()
                .any(|entry| entry.split_once('=').is_some_and(|(key, _)| key == **name))
        })
        .map(|name| format!("{name}={CA_TARGET}"))
        .collect()
}

impl Drop for CaBundle {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), %error, "could not remove the CA bundle");
        }
    }
}
