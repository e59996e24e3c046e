//! Putting a staged archive into the bucket: one PUT, or a multipart upload in parts of
//! [`PART_SIZE`] (aborted when a part fails).
//!
//! Owns: cutting the archive stream into parts and the multipart requests. Must not: decide
//! object names or write markers (the store does).

use std::io;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::*;

impl S3Store {
    /// Puts the staged archive as `object`, in parts if it is large.
    pub(super) async fn upload(&self, object: &str, archive: ByteStream) -> Result<(), StoreError> {
        let mut archive = PartReader {
            stream: archive,
            carry: Bytes::new(),
        };
        let first = archive.next_part().await.map_err(|source| StoreError::Io {
            op: "reading the staged archive for",
            path: PathBuf::from(object),
            source,
        })?;
        if first.len() < PART_SIZE {
            let url = self
                .bucket
                .put_object(Some(&self.credentials), object)
                .sign(SIGNATURE_TTL);
            self.exchange(Method::PUT, url, &[], first)
                .await
                .map_err(remote("uploading", object))?;
            return Ok(());
        }
        let url = self
            .bucket
            .create_multipart_upload(Some(&self.credentials), object)
            .sign(SIGNATURE_TTL);
        let (_, body) = self
            .exchange(Method::POST, url, &[], Bytes::new())
            .await
            .map_err(remote("starting a multipart upload of", object))?;
        let created = rusty_s3::actions::CreateMultipartUpload::parse_response(
            &String::from_utf8_lossy(&body),
        )
        .map_err(|e| {
            remote("starting a multipart upload of", object)(S3Error::Response {
                detail: e.to_string(),
            })
        })?;
        let upload_id = created.upload_id().to_owned();
        let result = self.upload_parts(object, &upload_id, first, archive).await;
        if result.is_err() {
            let url = self
                .bucket
                .abort_multipart_upload(Some(&self.credentials), object, &upload_id)
                .sign(SIGNATURE_TTL);
            if let Err(e) = self.exchange(Method::DELETE, url, &[], Bytes::new()).await {
                tracing::warn!(object, error = %e, "aborting a failed multipart upload");
            }
        }
        result
    }

    async fn upload_parts(
        &self,
        object: &str,
        upload_id: &str,
        first: Bytes,
        mut archive: PartReader,
    ) -> Result<(), StoreError> {
        let mut etags: Vec<String> = Vec::new();
        let mut part = first;
        while !part.is_empty() {
            let number = u16::try_from(etags.len() + 1).map_err(|_| StoreError::TooLarge {
                size: (etags.len() * PART_SIZE) as u64,
                limit: (10_000 * PART_SIZE) as u64,
            })?;
            let url = self
                .bucket
                .upload_part(Some(&self.credentials), object, number, upload_id)
                .sign(SIGNATURE_TTL);
            let (headers, _) = self
                .exchange(Method::PUT, url, &[], part)
                .await
                .map_err(remote("uploading a part of", object))?;
            let etag = headers
                .get(http::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    remote("uploading a part of", object)(S3Error::Response {
                        detail: "no ETag on an uploaded part".to_owned(),
                    })
                })?;
            etags.push(etag.to_owned());
            part = archive.next_part().await.map_err(|source| StoreError::Io {
                op: "reading the staged archive for",
                path: PathBuf::from(object),
                source,
            })?;
        }
        let action = self.bucket.complete_multipart_upload(
            Some(&self.credentials),
            object,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(SIGNATURE_TTL);
        let body = action.body();
        self.exchange(Method::POST, url, &[], Bytes::from(body))
            .await
            .map_err(remote("completing the upload of", object))?;
        Ok(())
    }
}

/// Cuts a stream into parts of exactly [`PART_SIZE`] bytes (the last may be shorter).
struct PartReader {
    stream: ByteStream,
    carry: Bytes,
}

impl PartReader {
    /// The next part; empty at the end of the stream.
    async fn next_part(&mut self) -> Result<Bytes, io::Error> {
        let mut part = BytesMut::with_capacity(PART_SIZE.min(1 << 20));
        part.extend_from_slice(&std::mem::take(&mut self.carry));
        while part.len() < PART_SIZE {
            match self.stream.next().await {
                Some(chunk) => part.extend_from_slice(&chunk?),
                None => break,
            }
        }
        if part.len() > PART_SIZE {
            self.carry = part.split_off(PART_SIZE).freeze();
        }
        Ok(part.freeze())
    }
}
