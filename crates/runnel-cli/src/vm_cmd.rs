//! `runnel vm image build|ls|rm`: the arguments to `runnel_backends::vm::image`'s store, its
//! answers printed.
//!
//! Owns: which images directory (flag, environment, config) and the printing. Must not: know
//! the store's layout or the recipe.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use runnel_backends::vm::image::{Extra, ImageStore, Recipe, Source};

use crate::Outcome;
use crate::args::{VmArgs, VmCommand, VmImageCommand, VmImagesDir};
use crate::cache_cmd::human_size;

pub(crate) fn run(args: VmArgs, global_config: Option<PathBuf>) -> Result<Outcome> {
    let VmCommand::Image(command) = args.command;
    match command {
        VmImageCommand::Build {
            name,
            from,
            debootstrap,
            with,
            dir,
        } => {
            let store = store(dir, global_config)?;
            let source = match from {
                Some(path) => Source::From(path),
                None => Source::Debootstrap {
                    suite: debootstrap.unwrap_or_else(|| "bookworm".to_owned()),
                },
            };
            let with = with
                .iter()
                .filter(|w| !w.trim().is_empty())
                .map(|w| Extra::parse(w))
                .collect::<Result<Vec<_>, _>>()?;
            // The recipe's progress (a new image takes minutes).
            crate::common::init_logging("info");
            let started = Instant::now();
            let built = store
                .build(&name, &Recipe { source, with })
                .with_context(|| format!("building VM image `{name}`"))?;
            if built.reused {
                eprintln!(
                    "runnel: VM image `{name}` is up to date (id {})",
                    short(&built.id)
                );
            } else {
                eprintln!(
                    "runnel: built VM image `{name}` (id {}) in {:.0} s",
                    short(&built.id),
                    started.elapsed().as_secs_f64()
                );
            }
            println!("{}", built.dir.display());
        }
        VmImageCommand::Ls { dir } => {
            let store = store(dir, global_config)?;
            let images = store.list()?;
            let width = images
                .iter()
                .map(|i| i.name.len())
                .max()
                .unwrap_or(4)
                .max(4);
            println!("{:width$}  {:12}  {:>10}  CREATED", "NAME", "ID", "SIZE");
            for image in images {
                let created = image
                    .created
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| {
                        runnel_cache::rfc3339_seconds(
                            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                        )
                    })
                    .unwrap_or_default();
                println!(
                    "{:width$}  {:12}  {:>10}  {created}",
                    image.name,
                    image.id.as_deref().map_or("-", short),
                    human_size(image.size)
                );
            }
        }
        VmImageCommand::Rm { name, dir } => {
            let store = store(dir, global_config)?;
            let removed = store
                .remove(&name)
                .with_context(|| format!("removing VM image `{name}`"))?;
            match removed.content {
                Some(id) => println!("removed {name} and its content {}", short(&id)),
                None => println!("removed {name}"),
            }
        }
    }
    Ok(Outcome::Success)
}

/// The images directory: `--images`, else `RUNNEL_VM_IMAGES`, else the config's `vm.images`,
/// else the default (as the vm backend finds it).
fn store(dir: VmImagesDir, global_config: Option<PathBuf>) -> Result<ImageStore> {
    if let Some(images) = dir.images {
        return Ok(ImageStore::new(images));
    }
    if let Some(images) = std::env::var_os("RUNNEL_VM_IMAGES").filter(|v| !v.is_empty()) {
        return Ok(ImageStore::new(images));
    }
    if let Some(path) = dir.config.or(global_config)
        && let Some(images) = crate::common::load_config(&path)?.vm.images
    {
        return Ok(ImageStore::new(images));
    }
    Ok(ImageStore::new(
        runnel_backends::vm::image::default_images_dir(),
    ))
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
