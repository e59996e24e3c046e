//! Images a VM job's own Docker engine starts with: saved from this machine's engine (`docker
//! save`, through its API) into the job's directory, one tarball per image, which the image's
//! start hook loads in the guest (`docker load`) and removes. With no registry reachable, this
//! is how a job's `docker build FROM …` or `docker run …` inside its VM finds its images.
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
    #[error("writing {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Saves each of `images` from the engine at `docker_host` (else `DOCKER_HOST`, else the
/// default socket) to `dir/NN.tar`, creating `dir`. `optional` ones (the job's service images)
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
    let docker = match docker_host {
        Some(host) => bollard::Docker::connect_with_host(host),
        None => bollard::Docker::connect_with_defaults(),
    }
    .map_err(PreloadError::Connect)?;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|source| PreloadError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    for (index, image) in images.iter().enumerate() {
        export(&docker, image, &dir.join(format!("{index:02}.tar"))).await?;
    }
    for (index, image) in optional.into_iter().enumerate() {
        let path = dir.join(format!("{:02}.tar", images.len() + index));
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
}
