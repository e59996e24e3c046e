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
/// default socket) to `dir/NN.tar`, creating `dir`.
pub(crate) async fn save(
    images: &[String],
    docker_host: Option<&str>,
    dir: &Path,
) -> Result<(), PreloadError> {
    if images.is_empty() {
        return Ok(());
    }
    let docker = match docker_host {
        Some(host) => bollard::Docker::connect_with_host(host),
        None => bollard::Docker::connect_with_defaults(),
    }
    .map_err(PreloadError::Connect)?;
    let write = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PreloadError::Write { path, source }
    };
    tokio::fs::create_dir_all(dir).await.map_err(write(dir))?;
    for (index, image) in images.iter().enumerate() {
        let path = dir.join(format!("{index:02}.tar"));
        let mut file = tokio::fs::File::create(&path).await.map_err(write(&path))?;
        let mut stream = docker.export_image(image);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| PreloadError::Save {
                image: image.clone(),
                source,
            })?;
            file.write_all(&chunk).await.map_err(write(&path))?;
        }
        file.flush().await.map_err(write(&path))?;
        tracing::debug!(image, file = %path.display(), "saved for the VM");
    }
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
