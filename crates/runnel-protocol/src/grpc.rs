//! gRPC over HTTP/2 with tonic: cleartext with prior knowledge (h2c) for `http://`, TLS with
//! ALPN `h2` for `https://`. Gitea's runner endpoint answers gRPC directly on both.
//!
//! Owns: the tonic channel (one multiplexed HTTP/2 connection, opened lazily and re-opened after
//! failures), metadata, and turning a tonic status into a [`Cause`]. Must not: retry.

use std::time::Duration;

use http::uri::PathAndQuery;
use http::{HeaderMap, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use crate::error::{Cause, Code};

/// The gRPC transport.
#[derive(Clone)]
pub(crate) struct GrpcTransport {
    channel: Channel,
}

impl GrpcTransport {
    /// `origin` is `scheme://authority` of the server; paths are passed per call.
    pub(crate) fn new(
        origin: &Uri,
        tls: rustls::ClientConfig,
        connect_timeout: Duration,
    ) -> Result<GrpcTransport, tonic::transport::Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http2()
            .wrap_connector(http);
        let endpoint = Endpoint::from_shared(origin.to_string())?
            .tcp_nodelay(true)
            // Keep-alive pings notice a dead connection (a restarted Gitea) before the next call
            // hangs on it.
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(false);
        Ok(GrpcTransport {
            channel: endpoint.connect_with_connector_lazy(connector),
        })
    }

    /// Sends one unary call to `path` (the full path, mount point included); returns the
    /// message and the answer's initial metadata as headers.
    pub(crate) async fn call<Req, Resp>(
        &self,
        path: &str,
        message: Req,
        headers: &HeaderMap,
        timeout: Duration,
    ) -> Result<(Resp, HeaderMap), Cause>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let path = PathAndQuery::try_from(path).map_err(|e| Cause::Transport(Box::new(e)))?;
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        for (name, value) in headers {
            let key = MetadataKey::from_bytes(name.as_str().as_bytes());
            let value = MetadataValue::try_from(value.as_bytes());
            if let (Ok(key), Ok(value)) = (key, value) {
                request.metadata_mut().insert(key, value);
            }
        }
        let mut grpc = tonic::client::Grpc::new(self.channel.clone())
            .accept_compressed(CompressionEncoding::Gzip);
        let exchange = async {
            grpc.ready()
                .await
                .map_err(|e| classify_transport(Box::new(e)))?;
            grpc.unary(
                request,
                path,
                tonic_prost::ProstCodec::<Req, Resp>::default(),
            )
            .await
            .map(|response| {
                let (metadata, message, _) = response.into_parts();
                (message, metadata.into_headers())
            })
            .map_err(from_status)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| Cause::Timeout(timeout))?
    }
}

fn classify_transport(error: crate::error::BoxError) -> Cause {
    crate::error::classify_client_failure(error)
}

/// A status with a source error came from the client side (connection, HTTP/2); one without
/// came from the server, or from a non-gRPC HTTP answer that tonic mapped to a code.
fn from_status(status: tonic::Status) -> Cause {
    if std::error::Error::source(&status).is_some() {
        return classify_transport(Box::new(status));
    }
    match Code::from_grpc(status.code()) {
        Some(code) => Cause::from_server(code, 200, status.message().to_owned()),
        None => Cause::Decode("gRPC status OK without a message".into()),
    }
}
