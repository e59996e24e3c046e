//! The vm backend's images on disk: where they are, and what a qcow2 file says of its size.

use std::io::Read;
use std::path::{Path, PathBuf};

/// `${RUNNEL_CACHE:-$HOME/.cache/runnel}/vm`: where images are unless `vm.images` or
/// `RUNNEL_VM_IMAGES` say otherwise.
pub fn default_images_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let cache = var("RUNNEL_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        var("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(".cache/runnel")
    });
    cache.join("vm")
}

/// The virtual size of a qcow2 file (its header's big-endian size at byte 24), in bytes.
pub fn qcow2_virtual_size(path: &Path) -> std::io::Result<u64> {
    let mut header = [0u8; 32];
    std::fs::File::open(path)?.read_exact(&mut header)?;
    if &header[..4] != b"QFI\xfb" {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a qcow2 file",
        ));
    }
    let mut size = [0u8; 8];
    size.copy_from_slice(&header[24..32]);
    Ok(u64::from_be_bytes(size))
}
