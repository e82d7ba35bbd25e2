//! The builder every outbound HTTP client of the process starts from.
//!
//! reqwest's own builder reads the platform's root certificates each time a client is built
//! (rustls-platform-verifier parses every PEM file under `/etc/ssl/certs`): about 13 ms of
//! CPU, paid by every connector an engine builds, every Vault read and every OAuth code
//! exchange. Here the roots are read once, on first use, into one TLS configuration that
//! every client shares; what reqwest would set itself (TLS 1.2 and 1.3, SNI, ALPN for
//! HTTP/2 and HTTP/1.1) is set here the same way.
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

/// Why no client could be built: the platform's root certificates did not load.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot set up TLS: {0}")]
pub struct TlsSetupError(String);

/// A client builder on the process's shared TLS configuration.
pub fn builder() -> Result<reqwest::ClientBuilder, TlsSetupError> {
    Ok(reqwest::Client::builder().tls_backend_preconfigured(tls()?.clone()))
}

/// The process's TLS configuration, made on first use. A failure is kept too: the roots
/// are not read again (the next client would fail the same way).
fn tls() -> Result<&'static rustls::ClientConfig, TlsSetupError> {
    static TLS: OnceLock<Result<rustls::ClientConfig, TlsSetupError>> = OnceLock::new();
    TLS.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // rustls also wants a process-wide provider (for servers and other crates' clients);
        // a second install is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
            .map_err(|e| TlsSetupError(e.to_string()))?;
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
}
