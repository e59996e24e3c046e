//! `runnel config generate|init|get|set|add|remove`, as the Gitea runner's `config` commands:
//! which file (`-c`, else config.yaml or config.yml in the working directory, else next to the
//! binary), and writing it in one step (a temporary file renamed over it, its mode and owner
//! kept, a symbolic link's target replaced). The edits themselves are `runnel_config::edit`.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use runnel_config::edit;

use crate::Outcome;
use crate::args::{ConfigArgs, ConfigCommand};

/// The names a config file is looked for under, in order.
const DEFAULT_NAMES: [&str; 2] = ["config.yaml", "config.yml"];

pub(crate) fn run(args: &ConfigArgs) -> Result<Outcome> {
    match &args.command {
        ConfigCommand::Generate => crate::generate_config::run(),
        ConfigCommand::Init { force } => init(args.config.as_deref(), *force),
        ConfigCommand::Get { key } => {
            // The key first: a wrong key is said before a missing file.
            edit::key_shape(key)?;
            let file = find_file(args.config.as_deref())?;
            let text = read(&file)?;
            println!("{}", edit::get(&text, key)?);
            Ok(Outcome::Success)
        }
        ConfigCommand::Set(edit_args) => change(args, edit_args, edit::set),
        ConfigCommand::Add(edit_args) => change(args, edit_args, edit::add),
        ConfigCommand::Remove(edit_args) => change(args, edit_args, edit::remove),
    }
}

type Edit = fn(&str, &str, &[String]) -> Result<String, edit::EditError>;

fn change(
    args: &ConfigArgs,
    edit_args: &crate::args::ConfigEditArgs,
    apply: Edit,
) -> Result<Outcome> {
    edit::key_shape(&edit_args.key)?;
    let file = find_file(args.config.as_deref())?;
    let text = read(&file)?;
    let edited = apply(&text, &edit_args.key, &edit_args.values)?;
    if edited != text {
        write_file(&file, edited.as_bytes())?;
    }
    Ok(Outcome::Success)
}

fn read(file: &Path) -> Result<String> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
            "config file {} does not exist; create one with `runnel config init`",
            file.display()
        ),
        Err(error) => Err(error).with_context(|| format!("read {}", file.display())),
    }
}

/// `-c FILE`, else the first of config.yaml, config.yml in the working directory, then in the
/// binary's directory (said on stderr, as the Gitea runner does).
fn find_file(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(file) = given {
        return Ok(file.to_path_buf());
    }
    let mut dirs = Vec::new();
    if let Ok(dir) = std::env::current_dir() {
        dirs.push(dir);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        && !dirs.contains(&dir)
    {
        dirs.push(dir);
    }
    for dir in &dirs {
        for name in DEFAULT_NAMES {
            let candidate = dir.join(name);
            if candidate.is_file() {
                eprintln!("runnel: using config file {}", candidate.display());
                return Ok(candidate);
            }
        }
    }
    let places: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    bail!(
        "no {} found in {}; name one with -c FILE",
        DEFAULT_NAMES.join(" or "),
        places.join(" or ")
    )
}

/// Writes the minimal config to `-c FILE` or config.yaml, unless a file is there (either
/// default name, since the other would be read first or instead) and `--force` is not given.
fn init(given: Option<&Path>, force: bool) -> Result<Outcome> {
    let (file, taken): (PathBuf, Vec<PathBuf>) = match given {
        Some(file) => (file.to_path_buf(), vec![file.to_path_buf()]),
        None => (
            PathBuf::from(DEFAULT_NAMES[0]),
            DEFAULT_NAMES.iter().map(PathBuf::from).collect(),
        ),
    };
    if !force && let Some(there) = taken.iter().find(|path| path.exists()) {
        bail!(
            "config file {} already exists; pass --force to replace it",
            there.display()
        );
    }
    write_file(&file, runnel_config::MINIMAL_CONFIG.as_bytes())?;
    println!("wrote config file {}", file.display());
    Ok(Outcome::Success)
}

/// Replaces `file` in one step: a temporary file beside it, synced, given the old file's mode
/// and owner (0600 for a new one), renamed over it. A link is followed, so the file it points
/// to is the one replaced.
fn write_file(file: &Path, content: &[u8]) -> Result<()> {
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let old = std::fs::metadata(&file).ok();
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.yaml".to_owned());
    let mut temp = tempfile::Builder::new()
        .prefix(&format!("{name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .with_context(|| format!("create a temporary file in {}", dir.display()))?;
    temp.write_all(content)
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("write {}", temp.path().display()))?;
    let mode = old
        .as_ref()
        .map_or(0o600, |m| m.permissions().mode() & 0o7777);
    if let Some(old) = &old {
        // Before the mode: a change of owner can clear mode bits. A caller that may replace
        // the file but not give it away is no worse off than before.
        match std::os::unix::fs::chown(temp.path(), Some(old.uid()), Some(old.gid())) {
            Err(error) if error.kind() != std::io::ErrorKind::PermissionDenied => {
                return Err(error).with_context(|| format!("chown {}", temp.path().display()));
            }
            _ => {}
        }
    }
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", temp.path().display()))?;
    temp.persist(&file)
        .with_context(|| format!("replace {}", file.display()))?;
    Ok(())
}
