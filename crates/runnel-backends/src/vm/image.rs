//! The vm backend's images on disk (`runnel vm image build|ls|rm`), content-addressed: an
//! image's recipe (its root — a Debian suite to debootstrap, or the digest of a tree or tarball
//! given with `--from` — the `--with` extras, the kernel package, the recipe's own code, the
//! init and the start hook, runnel's version) hashed with SHA-256 into an id; the image is
//! built under `IMAGES/by-id/ID/` and `IMAGES/NAME` is a symbolic link to it. Building a recipe
//! whose id is there already only points the name at it; a label `vm://NAME` reads the image
//! through the name. The build's commands are [`recipe`]'s.
//!
//! Owns: the layout under the images directory (`by-id/`, `cache/` for kernel packages,
//! debootstrap tarballs and tree digests, names, `.lock`). Must not: boot anything.

mod recipe;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// The recipe's code (hashed into every id; its tests are not), the initramfs's init and the
/// Docker image's start hook.
const RECIPE_CODE: [&str; 2] = [
    include_str!("image/recipe.rs"),
    include_str!("image/recipe/steps.rs"),
];
const INIT: &str = include_str!("../../../../tests/vm/init");
const DOCKER_START: &str = include_str!("../../../../tests/vm/docker-start");

/// Where an image's root file system comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--debootstrap SUITE`: Debian's minbase of that suite (plus bash, curl, ca-certificates).
    Debootstrap { suite: String },
    /// `--from PATH`: a directory holding a root tree, or a tarball of one.
    From(PathBuf),
}

/// What goes into an image besides its root (`--with`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Extra {
    /// Debian's docker.io, the kernel modules dockerd needs and the start hook that runs it.
    Docker,
    /// Debian's git.
    Git,
    /// Debian's nodejs (what JavaScript actions run with).
    Node,
}

impl Extra {
    pub fn name(self) -> &'static str {
        match self {
            Extra::Docker => "docker",
            Extra::Git => "git",
            Extra::Node => "node",
        }
    }

    /// One of `docker`, `git`, `node`.
    pub fn parse(text: &str) -> Result<Extra, ImageError> {
        match text.trim() {
            "docker" => Ok(Extra::Docker),
            "git" => Ok(Extra::Git),
            "node" | "nodejs" => Ok(Extra::Node),
            other => Err(ImageError::UnknownExtra {
                extra: other.to_owned(),
            }),
        }
    }
}

/// How to build one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub source: Source,
    pub with: Vec<Extra>,
}

/// One image `ls` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub name: String,
    /// The content's id; `None` for an image directory of the layout before ids (a directory
    /// under the name itself).
    pub id: Option<String>,
    /// Bytes of its files.
    pub size: u64,
    /// When its content was built.
    pub created: SystemTime,
}

/// What `build` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub id: String,
    /// `IMAGES/NAME`, the path labels read the image through.
    pub dir: PathBuf,
    /// The content was there already: only the name was (re)pointed.
    pub reused: bool,
}

/// What `remove` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The content's id, when it was removed with the name (no other name had it).
    pub content: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "`{name}` is not an image name (letters, digits, `.`, `_` and `-`, not starting with \
         `.` or `-`; `by-id` and `cache` are taken)"
    )]
    BadName { name: String },
    #[error("`{extra}` is not something an image can be built with (docker, git, node)")]
    UnknownExtra { extra: String },
    #[error("no image `{name}` in {}", images.display())]
    NotFound { name: String, images: PathBuf },
    #[error("image `{name}` is in use by a running VM (pid {pid}); remove it when its job is done")]
    InUse { name: String, pid: u32 },
    #[error("--from {}: no such directory or file", path.display())]
    FromMissing { path: PathBuf },
    #[error("no linux-image-*-amd64 package is known to apt (`apt-cache depends linux-image-amd64`){}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    NoKernelPackage { detail: Option<String> },
    #[error("{step}: `{command}` failed: {detail}")]
    Step {
        step: String,
        command: String,
        detail: String,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
    let what = what.into();
    move |source| ImageError::Io { what, source }
}

/// The images under one directory.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    pub fn new(root: impl Into<PathBuf>) -> ImageStore {
        ImageStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Builds `recipe` as `name` unless its content is there already, then points `name` at
    /// it. The recipe's progress goes to this process's stderr. Blocks (minutes for a new
    /// image); one build at a time per images directory.
    pub fn build(&self, name: &str, recipe: &Recipe) -> Result<Built, ImageError> {
        check_name(name)?;
        let kernel = kernel_package()?;
        self.build_with_kernel(name, recipe, &kernel)
    }

    /// [`ImageStore::build`] with the kernel package decided.
    fn build_with_kernel(
        &self,
        name: &str,
        recipe: &Recipe,
        kernel: &str,
    ) -> Result<Built, ImageError> {
        check_name(name)?;
        std::fs::create_dir_all(self.root.join("by-id"))
            .map_err(io(format!("create {}", self.root.join("by-id").display())))?;
        std::fs::create_dir_all(self.cache_dir())
            .map_err(io(format!("create {}", self.cache_dir().display())))?;
        let _lock = self.lock()?;
        let source = match &recipe.source {
            Source::Debootstrap { suite } => SourceKey::Suite(suite.clone()),
            Source::From(path) => SourceKey::Tree(self.tree_digest(path)?),
        };
        let lines = recipe_lines(&source, &recipe.with, kernel);
        let id = recipe_id(&lines);
        let content = self.root.join("by-id").join(&id);
        if is_complete(&content) {
            self.point(name, &id)?;
            tracing::info!(name, id, "image content present: name pointed at it");
            return Ok(Built {
                id,
                dir: self.root.join(name),
                reused: true,
            });
        }
        let building = self
            .root
            .join("by-id")
            .join(format!(".build-{id}-{}", std::process::id()));
        remove_path(&building)?;
        std::fs::create_dir_all(&building).map_err(io(format!("create {}", building.display())))?;
        tracing::info!(name, id, "building the image");
        let built = recipe::Build {
            out: &building,
            cache: &self.cache_dir(),
            source: &recipe.source,
            with: &recipe.with,
            kernel_package: kernel,
            disk: if recipe.with.contains(&Extra::Docker) {
                "4G"
            } else {
                "2G"
            },
        }
        .run();
        if let Err(error) = built {
            remove_build_dir(&building);
            return Err(error);
        }
        std::fs::write(building.join("recipe"), lines.join("\n") + "\n")
            .map_err(io(format!("write {}", building.join("recipe").display())))?;
        remove_path(&content)?;
        std::fs::rename(&building, &content)
            .map_err(io(format!("move the image into {}", content.display())))?;
        self.point(name, &id)?;
        Ok(Built {
            id,
            dir: self.root.join(name),
            reused: false,
        })
    }

    /// The images, by name.
    pub fn list(&self) -> Result<Vec<ImageInfo>, ImageError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ImageError::Io {
                    what: format!("list {}", self.root.display()),
                    source,
                });
            }
        };
        let mut images = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if check_name(&name).is_err() {
                continue;
            }
            let path = entry.path();
            if !path.join("vmlinuz").is_file() {
                continue;
            }
            let id = self.id_of(&name);
            let created = std::fs::metadata(path.join("recipe"))
                .or_else(|_| std::fs::metadata(path.join("rootfs.qcow2")))
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            images.push(ImageInfo {
                name,
                id,
                size: dir_size(&path),
                created,
            });
        }
        images.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(images)
    }

    /// Removes `name`, and its content when no other name points at it; refuses while a VM
    /// booted from that content runs (seen in QEMU's command line).
    pub fn remove(&self, name: &str) -> Result<Removed, ImageError> {
        check_name(name)?;
        if !self.root.is_dir() {
            return Err(ImageError::NotFound {
                name: name.to_owned(),
                images: self.root.clone(),
            });
        }
        let _lock = self.lock()?;
        let path = self.root.join(name);
        let link = std::fs::symlink_metadata(&path).map_err(|_| ImageError::NotFound {
            name: name.to_owned(),
            images: self.root.clone(),
        })?;
        let id = self.id_of(name);
        let shared = id
            .as_ref()
            .is_some_and(|id| self.names_of(id).iter().any(|other| other.as_str() != name));
        if !shared {
            // The content goes with the name: not while a VM runs from it.
            let content = match &id {
                Some(id) => self.root.join("by-id").join(id),
                None => path.clone(),
            };
            if let Some(pid) = vm_using(&content) {
                return Err(ImageError::InUse {
                    name: name.to_owned(),
                    pid,
                });
            }
        }
        if link.file_type().is_symlink() {
            std::fs::remove_file(&path).map_err(io(format!("remove {}", path.display())))?;
        } else {
            remove_path(&path)?;
        }
        let content = match (&id, shared) {
            (Some(id), false) => {
                remove_path(&self.root.join("by-id").join(id))?;
                Some(id.clone())
            }
            _ => None,
        };
        Ok(Removed { content })
    }

    /// The id `name` points at (`None`: not a link into `by-id/`).
    fn id_of(&self, name: &str) -> Option<String> {
        let target = std::fs::read_link(self.root.join(name)).ok()?;
        let mut parts = target.components().rev();
        let id = parts.next()?.as_os_str().to_str()?.to_owned();
        let parent = parts.next()?.as_os_str().to_str()?;
        (parent == "by-id" && is_id(&id)).then_some(id)
    }

    /// The names pointing at content `id`.
    fn names_of(&self, id: &str) -> Vec<String> {
        std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| self.id_of(name).as_deref() == Some(id))
            .collect()
    }

    /// `NAME` → `by-id/ID`, replacing what the name was (a link, or an image directory of the
    /// layout before ids), atomically for a link.
    fn point(&self, name: &str, id: &str) -> Result<(), ImageError> {
        let previous = self.id_of(name).filter(|previous| previous != id);
        self.link(name, id)?;
        // The content the name left, when no other name has it and no VM runs from it (a
        // rebuild after a recipe change would otherwise leave hundreds of MB behind).
        if let Some(previous) = previous
            && self.names_of(&previous).is_empty()
        {
            let content = self.root.join("by-id").join(&previous);
            match vm_using(&content) {
                Some(pid) => tracing::info!(
                    id = previous,
                    pid,
                    "the image's previous content is kept: a VM runs from it"
                ),
                None => remove_path(&content)?,
            }
        }
        Ok(())
    }

    /// `NAME` → `by-id/ID`.
    fn link(&self, name: &str, id: &str) -> Result<(), ImageError> {
        let path = self.root.join(name);
        if let Ok(meta) = std::fs::symlink_metadata(&path)
            && meta.is_dir()
        {
            remove_path(&path)?;
        }
        let temp = self
            .root
            .join(format!(".{name}.link-{}", std::process::id()));
        let _ = std::fs::remove_file(&temp);
        std::os::unix::fs::symlink(Path::new("by-id").join(id), &temp)
            .map_err(io(format!("link {}", temp.display())))?;
        std::fs::rename(&temp, &path).map_err(io(format!("point {} at {id}", path.display())))
    }

    fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    fn lock(&self) -> Result<nix::fcntl::Flock<std::fs::File>, ImageError> {
        std::fs::create_dir_all(&self.root)
            .map_err(io(format!("create {}", self.root.display())))?;
        let path = self.root.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(format!("open {}", path.display())))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, errno)| {
            ImageError::Io {
                what: format!("lock {}", path.display()),
                source: std::io::Error::from(errno),
            }
        })
    }

    /// The digest of `--from`'s tree: of every file's path, mode and content (links: their
    /// target) for a directory; of the bytes for a tarball, kept in `cache/` by path, size,
    /// inode and modification time (a Debian tarball is hundreds of MB).
    fn tree_digest(&self, path: &Path) -> Result<String, ImageError> {
        let meta = std::fs::metadata(path).map_err(|_| ImageError::FromMissing {
            path: path.to_owned(),
        })?;
        if meta.is_dir() {
            let mut hasher = Sha256::new();
            hash_tree(path, Path::new(""), &mut hasher)?;
            return Ok(hex(&hasher.finalize()));
        }
        use std::os::unix::fs::MetadataExt;
        let canonical = path
            .canonicalize()
            .map_err(io(format!("resolve {}", path.display())))?;
        let key = hex(&Sha256::digest(format!(
            "{}\n{}\n{}\n{}.{}",
            canonical.display(),
            meta.len(),
            meta.ino(),
            meta.mtime(),
            meta.mtime_nsec()
        )));
        let kept = self.cache_dir().join(format!("digest-{}", &key[..32]));
        if let Ok(digest) = std::fs::read_to_string(&kept)
            && is_hex(digest.trim())
        {
            return Ok(digest.trim().to_owned());
        }
        let mut file = std::fs::File::open(path).map_err(io(format!("open {}", path.display())))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buffer)
                .map_err(io(format!("read {}", path.display())))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        let digest = hex(&hasher.finalize());
        let _ = std::fs::write(&kept, &digest);
        Ok(digest)
    }
}

/// A tree's identity as the recipe names it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SourceKey {
    Suite(String),
    Tree(String),
}

/// The lines an image's id is the hash of (kept in the image as `recipe`).
fn recipe_lines(source: &SourceKey, with: &[Extra], kernel: &str) -> Vec<String> {
    let mut with: Vec<Extra> = with.to_vec();
    with.sort();
    with.dedup();
    let with: Vec<&str> = with.iter().map(|e| e.name()).collect();
    let sha = |text: &str| hex(&Sha256::digest(text.as_bytes()));
    vec![
        "runnel vm image recipe 1".to_owned(),
        format!("runnel {}", env!("CARGO_PKG_VERSION")),
        match source {
            SourceKey::Suite(suite) => format!("root debootstrap {suite}"),
            SourceKey::Tree(digest) => format!("root tree {digest}"),
        },
        format!("with {}", with.join(",")),
        format!("kernel {kernel}"),
        format!("recipe {}", sha(&RECIPE_CODE.concat())),
        format!("init {}", sha(INIT)),
        format!("start-hook {}", sha(DOCKER_START)),
    ]
}

/// The id of a recipe: 32 hex digits of the SHA-256 of its lines.
fn recipe_id(lines: &[String]) -> String {
    hex(&Sha256::digest(lines.join("\n").as_bytes()))[..32].to_owned()
}

fn is_id(text: &str) -> bool {
    text.len() == 32 && is_hex(text)
}

fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A name labels can use: one path component, not hidden, not the store's own.
fn check_name(name: &str) -> Result<(), ImageError> {
    let fine = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !matches!(name, "by-id" | "cache");
    if fine {
        Ok(())
    } else {
        Err(ImageError::BadName {
            name: name.to_owned(),
        })
    }
}

/// Built to the end: the three files and the recipe.
fn is_complete(dir: &Path) -> bool {
    ["vmlinuz", "initramfs", "rootfs.qcow2", "recipe"]
        .iter()
        .all(|file| dir.join(file).is_file())
}

fn remove_path(path: &Path) -> Result<(), ImageError> {
    match std::fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(meta) if meta.is_dir() => {
            std::fs::remove_dir_all(path).map_err(io(format!("remove {}", path.display())))
        }
        Ok(_) => std::fs::remove_file(path).map_err(io(format!("remove {}", path.display()))),
    }
}

/// Removes a failed build's directory, unless something is still mounted under it (the
/// recipe's chroot binds this machine's /dev and /sys; its own exit unmounts them): then it is
/// left, with a warning, rather than deleting through the mount.
fn remove_build_dir(dir: &Path) {
    let mounted = recipe::mounted_under(dir);
    if mounted {
        tracing::warn!(
            dir = %dir.display(),
            "a failed image build left mounts under its directory; remove it by hand once unmounted"
        );
        return;
    }
    if let Err(error) = remove_path(dir) {
        tracing::warn!(%error, "cannot remove a failed image build");
    }
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn hash_tree(root: &Path, relative: &Path, hasher: &mut Sha256) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = root.join(relative);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map_err(io(format!("read {}", dir.display())))?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    entries.sort();
    for name in entries {
        let relative = relative.join(&name);
        let path = root.join(&relative);
        let meta =
            std::fs::symlink_metadata(&path).map_err(io(format!("read {}", path.display())))?;
        let mode = meta.permissions().mode();
        hasher.update(format!("{}\0{mode:o}\0", relative.display()).as_bytes());
        if meta.file_type().is_symlink() {
            let target =
                std::fs::read_link(&path).map_err(io(format!("read {}", path.display())))?;
            hasher.update(target.as_os_str().as_encoded_bytes());
        } else if meta.is_dir() {
            hash_tree(root, &relative, hasher)?;
        } else if meta.is_file() {
            let mut file =
                std::fs::File::open(&path).map_err(io(format!("open {}", path.display())))?;
            std::io::copy(&mut file, hasher).map_err(io(format!("read {}", path.display())))?;
        }
        hasher.update(b"\n");
    }
    Ok(())
}

/// The package `linux-image-amd64` depends on (its version names the module tree), asking apt
/// to update its lists once when it knows none.
fn kernel_package() -> Result<String, ImageError> {
    if let Some(package) = std::env::var("RUNNEL_VM_KERNEL_PACKAGE")
        .ok()
        .filter(|p| !p.trim().is_empty())
    {
        return Ok(package.trim().to_owned());
    }
    let ask = || -> Result<Option<String>, ImageError> {
        let output = Command::new("apt-cache")
            .args(["depends", "linux-image-amd64"])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| ImageError::NoKernelPackage {
                detail: Some(format!("cannot run apt-cache: {source}")),
            })?;
        Ok(kernel_dependency(&String::from_utf8_lossy(&output.stdout)))
    };
    if let Some(package) = ask()? {
        return Ok(package);
    }
    let _ = Command::new("apt-get")
        .args(["-o", "DPkg::Lock::Timeout=600", "update", "-qq"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status();
    ask()?.ok_or(ImageError::NoKernelPackage { detail: None })
}

/// `Depends: linux-image-6.1.0-57-amd64` in `apt-cache depends` output.
fn kernel_dependency(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let package = line.trim().strip_prefix("Depends: ")?.trim();
        let version = package.strip_prefix("linux-image-")?;
        (version.starts_with(|c: char| c.is_ascii_digit()) && package.ends_with("-amd64"))
            .then(|| package.to_owned())
    })
}

/// A running QEMU whose command line names a file under `content` (canonical path).
fn vm_using(content: &Path) -> Option<u32> {
    let needle = content
        .canonicalize()
        .unwrap_or_else(|_| content.to_owned());
    let needle = format!("{}/", needle.display());
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline);
            (cmdline.starts_with("qemu-system") && cmdline.contains(&needle)).then_some(pid)
        })
}

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

#[cfg(test)]
mod tests;
