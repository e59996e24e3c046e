//! TLS client settings shared by both transports: rustls with the ring provider, the system's
//! root certificates, and the peer's `insecure` option (skip certificate verification).
//!
//! Owns: building a `rustls::ClientConfig`. Must not: choose ALPN protocols (each transport's
//! connector sets them: `http/1.1` for Connect, `h2` for gRPC).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Why the TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The crypto provider refused the default protocol versions (a build problem).
    #[error("cannot set up TLS protocol versions")]
    Versions(#[source] rustls::Error),
    /// The system's certificate store could not be read or holds no usable root.
    #[error(
        "cannot load the system's root certificates (install ca-certificates, or set insecure TLS)"
    )]
    Roots(#[source] std::io::Error),
}

/// A TLS client configuration without ALPN protocols; public so that the daemon's other calls
/// to Gitea (job-summary uploads) trust the same certificates.
pub fn client_config(insecure: bool) -> Result<rustls::ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Versions)?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth()
    } else {
        use hyper_rustls::ConfigBuilderExt as _;
        builder
            .with_native_roots()
            .map_err(TlsError::Roots)?
            .with_no_client_auth()
    };
    Ok(config)
}

/// Accepts any server certificate (the peer's `runner.insecure`). Handshake signatures are still
/// checked so the session keys belong to whoever sent the certificate.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
