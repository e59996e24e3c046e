//! Images a VM job's own Docker engine starts with: saved from this machine's engine (`docker
//! save`, through its API) into the job's directory, one tarball per image, which the image's
//! start hook loads in the guest (`docker load`) and removes. With no registry reachable, this
//! is how a job's `docker build FROM …` or `docker run …` inside its VM finds its images.
//! An entry that is an absolute path names a tarball on this machine (`docker save` output,
//! compressed or not), copied as it is: no engine is needed for it.
//!
//! Must not: talk to the guest (the start hook does the loading), or keep anything beyond the
//! job's directory.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

/// Why an image could not be handed to the guest.
#[derive(Debug, thiserror::Error)]
pub enum PreloadError {
    #[error("connecting to this machine's Docker engine to save images for the VM")]
    Connect(#[source] bollard::errors::Error),
    #[error("saving image `{image}` from this machine's Docker engine")]
    Save {
        image: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("reading the image tarball {} named in the preloaded images", path.display())]
    Tarball {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Saves each of `images` from the engine at `docker_host` (else `DOCKER_HOST`, else the
/// default socket) to `dir/NN.tar`, creating `dir`; an absolute path is a tarball, copied. `optional` ones (the job's service images)
/// are saved when this machine's engine has them; the others are left for the guest to pull,
/// said in the job's set-up log.
pub(crate) async fn save(
    images: &[String],
    optional: &[String],
    docker_host: Option<&str>,
    dir: &Path,
) -> Result<(), PreloadError> {
    let optional: Vec<&String> = optional
        .iter()
        .filter(|image| !images.contains(image))
        .collect();
    if images.is_empty() && optional.is_empty() {
        return Ok(());
    }
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|source| PreloadError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    let (tarballs, images): (Vec<&String>, Vec<&String>) =
        images.iter().partition(|image| is_tarball(image));
    for (index, tarball) in tarballs.iter().enumerate() {
        let target = dir.join(format!("{index:02}.tar"));
        tokio::fs::copy(tarball, &target)
            .await
            .map_err(|source| PreloadError::Tarball {
                path: PathBuf::from(tarball),
                source,
            })?;
    }
    if images.is_empty() && optional.is_empty() {
        return Ok(());
    }
    let docker = match docker_host {
        Some(host) => bollard::Docker::connect_with_host(host),
        None => bollard::Docker::connect_with_defaults(),
    }
    .map_err(PreloadError::Connect)?;
    for (index, image) in images.iter().enumerate() {
        let index = tarballs.len() + index;
        export(&docker, image, &dir.join(format!("{index:02}.tar"))).await?;
    }
    let images_len = tarballs.len() + images.len();
    for (index, image) in optional.into_iter().enumerate() {
        let path = dir.join(format!("{:02}.tar", images_len + index));
        let saved = match docker.inspect_image(image).await {
            Ok(_) => export(&docker, image, &path).await.is_ok(),
            Err(_) => false,
        };
        if !saved {
            let _ = tokio::fs::remove_file(&path).await;
            runnel_engine::backend::setup_log(&format!(
                "Image `{image}` is not on this machine's Docker engine: the VM pulls it"
            ));
        }
    }
    Ok(())
}

/// `docker save IMAGE > path`.
async fn export(docker: &bollard::Docker, image: &str, path: &Path) -> Result<(), PreloadError> {
    let write = |source| PreloadError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = tokio::fs::File::create(path).await.map_err(write)?;
    let mut stream = docker.export_image(image);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| PreloadError::Save {
            image: image.to_owned(),
            source,
        })?;
        file.write_all(&chunk).await.map_err(write)?;
    }
    file.flush().await.map_err(write)?;
    tracing::debug!(image, file = %path.display(), "saved for the VM");
    Ok(())
}

/// Whether a preload entry names a tarball on this machine rather than an image of its
/// engine: an absolute path (no image reference starts with `/`).
fn is_tarball(entry: &str) -> bool {
    entry.starts_with('/')
}

/// `RUNNEL_VM_PRELOAD_IMAGES`'s list: image references separated by commas or white space.
pub(crate) fn parse_list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_list_takes_commas_and_white_space() {
        assert_eq!(
            super::parse_list(" runnel-test/busybox:latest,alpine:3\n postgres "),
            ["runnel-test/busybox:latest", "alpine:3", "postgres"]
        );
        assert!(super::parse_list("").is_empty());
    }

    /// Tarballs named by absolute path are copied in order before the engine's images, and
    /// need no engine; a missing one is an error naming it.
    #[tokio::test]
    async fn tarballs_are_copied_without_an_engine_and_a_missing_one_is_named() {
        let source = tempfile::tempdir().expect("tempdir");
        let (a, b) = (source.path().join("a.tar"), source.path().join("b.tar.gz"));
        std::fs::write(&a, b"first").expect("write");
        std::fs::write(&b, b"second").expect("write");
        let dir = source.path().join("job/images");
        let images = [a.display().to_string(), b.display().to_string()];
        super::save(&images, &[], Some("unix:///nonexistent/docker.sock"), &dir)
            .await
            .expect("tarballs need no engine");
        assert_eq!(std::fs::read(dir.join("00.tar")).expect("00"), b"first");
        assert_eq!(std::fs::read(dir.join("01.tar")).expect("01"), b"second");

        let missing = source.path().join("missing.tar").display().to_string();
        let error = super::save(std::slice::from_ref(&missing), &[], None, &dir)
            .await
            .expect_err("a missing tarball fails");
        assert_eq!(
            error.to_string(),
            format!("reading the image tarball {missing} named in the preloaded images")
        );
    }
}
