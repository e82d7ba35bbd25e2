//! The builder every outbound HTTP client of the process starts from.
//!
//! reqwest's own builder reads the platform's root certificates each time a client is built
//! (rustls-platform-verifier parses every PEM file under `/etc/ssl/certs`: 18.6 M
//! instructions, 15% of a one-record run of the CLI), for every connector an engine builds,
//! every Vault read and every OAuth code exchange. Here every client shares one TLS
//! configuration, and its verifier reads the roots once, at the first certificate it checks:
//! a run that only speaks plain HTTP (the sandbox, a service on the same host) never reads
//! them. What reqwest would set itself (TLS 1.2 and 1.3, SNI, ALPN for HTTP/2 and
//! HTTP/1.1) is set here the same way.
//!
//! ```
//! // Configure it as any reqwest builder, then build.
//! let client = rulebridge::http_client::builder()
//!     .unwrap()
//!     .connect_timeout(std::time::Duration::from_secs(5))
//!     .build()
//!     .unwrap();
//! # drop(client);
//! ```

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use rustls_platform_verifier::Verifier;

/// Why no client could be built: the platform's root certificates did not load.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot set up TLS: {0}")]
pub struct TlsSetupError(String);

/// A client builder on the process's shared TLS configuration.
pub fn builder() -> Result<reqwest::ClientBuilder, TlsSetupError> {
    Ok(reqwest::Client::builder().tls_backend_preconfigured(tls()?.clone()))
}

/// The process's TLS configuration, made on first use.
fn tls() -> Result<&'static rustls::ClientConfig, TlsSetupError> {
    static TLS: OnceLock<Result<rustls::ClientConfig, TlsSetupError>> = OnceLock::new();
    TLS.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // rustls also wants a process-wide provider (for servers and other crates' clients);
        // a second install is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let verifier = PlatformRoots {
            provider: provider.clone(),
            loaded: OnceLock::new(),
        };
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|e| TlsSetupError(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // What reqwest's builder sets for a client that speaks both versions.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// The platform's verifier, made at the first certificate to check. A failure to read the
/// roots is kept (they are not read again) and refuses every certificate with its reason.
#[derive(Debug)]
struct PlatformRoots {
    provider: Arc<CryptoProvider>,
    loaded: OnceLock<Result<Verifier, rustls::Error>>,
}

impl PlatformRoots {
    fn verifier(&self) -> Result<&Verifier, rustls::Error> {
        self.loaded
            .get_or_init(|| Verifier::new(self.provider.clone()))
            .as_ref()
            .map_err(|e| {
                rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
                    TlsSetupError(e.to_string()),
                ))))
            })
    }
}

impl ServerCertVerifier for PlatformRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls13_signature(message, cert, dss)
    }

    /// Asked for the client's first message, before any certificate: the provider's
    /// algorithms, which are what the platform's verifier answers too.
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_is_made_once_and_offers_both_http_versions() {
        let first = tls().unwrap();
        let second = tls().unwrap();
        assert!(std::ptr::eq(first, second));
        assert_eq!(
            first.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert!(first.enable_sni);
    }

    #[test]
    fn clients_build_on_the_shared_configuration() {
        for _ in 0..3 {
            builder().unwrap().build().unwrap();
        }
    }

    #[test]
    fn the_roots_are_read_at_the_first_certificate_not_before() {
        let roots = PlatformRoots {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            loaded: OnceLock::new(),
        };
        assert!(!roots.supported_verify_schemes().is_empty());
        assert!(roots.loaded.get().is_none());
        // Not a certificate at all: refused, after the roots were read.
        let refused = roots.verify_server_cert(
            &CertificateDer::from(vec![0u8; 4]),
            &[],
            &ServerName::try_from("localhost").unwrap(),
            &[],
            UnixTime::now(),
        );
        assert!(refused.is_err());
        assert!(roots.loaded.get().is_some());
    }
}
