//! Connect unary over HTTP/1.1: one POST per call, body = the serialized message.
//!
//! Owns: request headers (content type, protocol version, timeout, identity), response
//! decompression (gzip: Gitea compresses answers of 1 KiB and more) and decoding Connect's JSON
//! error bodies. Must not: retry or classify beyond producing a [`Cause`].

use std::io::Read as _;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::{Cause, Code};

/// Largest response accepted (a task with a big workflow and context is a few hundred KiB).
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// The Connect transport: a pooled HTTP/1.1 client.
#[derive(Clone)]
pub(crate) struct ConnectTransport {
    client: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl ConnectTransport {
    pub(crate) fn new(tls: rustls::ClientConfig) -> ConnectTransport {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        ConnectTransport { client }
    }

    /// Sends one call to `url` and returns the raw (decompressed) response message and the
    /// answer's headers.
    pub(crate) async fn call(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: &HeaderMap,
        timeout: Duration,
    ) -> Result<(Bytes, HeaderMap), Cause> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(url)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Cause::Transport(Box::new(e)))?;
        let request_headers = request.headers_mut();
        request_headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/proto"),
        );
        request_headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        request_headers.insert("connect-protocol-version", HeaderValue::from_static("1"));
        if let Ok(value) = HeaderValue::from_str(&timeout.as_millis().to_string()) {
            request_headers.insert("connect-timeout-ms", value);
        }
        for (name, value) in headers {
            request_headers.insert(name, value.clone());
        }

        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                let connect = e.is_connect();
                match crate::error::classify_client_failure(Box::new(e)) {
                    // hyper knows the request never left even when the IO error kind does not
                    // say so (a timeout while connecting, a name that does not resolve).
                    Cause::Transport(e) if connect => Cause::Connect(e),
                    other => other,
                }
            })?;
            let (parts, body) = response.into_parts();
            let bytes = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(Cause::Transport)?
                .to_bytes();
            Ok::<_, Cause>((parts, bytes))
        };
        let (parts, bytes) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| Cause::Timeout(timeout))??;
        let bytes = decompress(&parts.headers, bytes)?;
        if parts.status == StatusCode::OK {
            return Ok((bytes, parts.headers));
        }
        Err(error_from_response(parts.status, &parts.headers, &bytes))
    }
}

fn decompress(headers: &HeaderMap, bytes: Bytes) -> Result<Bytes, Cause> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity");
    match encoding {
        "identity" | "" => Ok(bytes),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .take(MAX_RESPONSE_BYTES as u64)
                .read_to_end(&mut out)
                .map_err(|e| Cause::Decode(Box::new(e)))?;
            Ok(Bytes::from(out))
        }
        other => Err(Cause::Decode(
            format!("unsupported content-encoding {other:?}").into(),
        )),
    }
}

#[derive(serde::Deserialize)]
struct ConnectErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

/// A non-200 answer: a Connect JSON error if the body is one, else a bare HTTP status mapped as
/// Connect clients do (so a 404 from a Gitea without the method reads as unimplemented).
pub(crate) fn error_from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Cause {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json
        && let Ok(error) = serde_json::from_slice::<ConnectErrorBody>(body)
        && let Some(code) = Code::from_connect_name(&error.code)
    {
        return Cause::from_server(code, status.as_u16(), error.message);
    }
    let excerpt: String = String::from_utf8_lossy(body).chars().take(200).collect();
    match Code::from_http_status(status.as_u16()) {
        // Not `Unauthenticated` for a bare 401: that comes from a proxy's login, not from Gitea
        // forgetting the runner, and "register again" would be the wrong advice.
        Some(Code::Unimplemented) => Cause::Unimplemented { message: excerpt },
        _ => Cause::Http {
            status: status.as_u16(),
            excerpt,
        },
    }
}
