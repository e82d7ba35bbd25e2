//! HTTPS through the process's shared TLS configuration: a server on 127.0.0.1 with a
//! certificate from a test CA (`tests/fixtures/tls`), which this process trusts through
//! `SSL_CERT_FILE` as it would any platform root. Its own test binary: the roots are read
//! once per process, so the variable must be set before the first client is built.

mod http_support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_support::{provider, simple};
use rulebridge::connect::http::{HttpConnector, HttpOptions};
use rulebridge::connect::{Call, Connector, ErrorKind};
use rulebridge::secrets::Secret;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// An HTTPS server on 127.0.0.1 presenting `cert`; every request is answered with a
/// created contact. Returns its port and the number of requests it answered.
async fn https_server(cert: &str, key: &str) -> (u16, Arc<AtomicUsize>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture(cert))
        .expect("read the certificate")
        .collect::<Result<_, _>>()
        .expect("parse the certificate");
    let key = PrivateKeyDer::from_pem_file(fixture(key)).expect("read the key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("the server's certificate");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let port = listener.local_addr().expect("local address").port();
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = answered.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                // A refused handshake ends here: the client saw the certificate and left.
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // One request per connection, its body small: the head and the body arrive
                // before the client waits for the answer.
                while !complete(&request) {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let body = r#"{"id":"501"}"#;
                let reply = format!(
                    "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, answered)
}

/// Whether `bytes` hold a request's head and its `content-length` of body.
fn complete(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some(end) = text.find("\r\n\r\n") else {
        return false;
    };
    let length = text[..end]
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    bytes.len() >= end + 4 + length
}

fn connector(port: u16) -> HttpConnector {
    let plan = provider(&simple(r#"{ type: bearer, token: "${env:TOKEN}" }"#, ""));
    let options = HttpOptions {
        base_url: Some(format!("https://localhost:{port}")),
        secrets: [("TOKEN".to_string(), Secret::new("t0ken".to_string()))].into(),
        read_env: false,
        ..HttpOptions::default()
    };
    HttpConnector::new(&plan, options).expect("build the connector")
}

#[tokio::test]
async fn connectors_share_one_tls_configuration_that_verifies_the_server() {
    // SAFETY: the only test of this binary, before any thread reads the environment.
    unsafe { std::env::set_var("SSL_CERT_FILE", fixture("ca.pem")) };
    let (port, answered) = https_server("localhost.pem", "localhost.key").await;

    // Several connectors, each with its own client, all on the one configuration.
    for n in 0..3 {
        let created = connector(port)
            .create(
                &Call::default(),
                "contact",
                &json!({"email": format!("a{n}@example.com")}),
            )
            .await
            .expect("a create over HTTPS");
        assert_eq!(created.id.as_deref(), Some("501"));
    }
    assert_eq!(answered.load(Ordering::SeqCst), 3);

    // A certificate from a CA the process does not trust is refused before any request, at
    // once: no retry can change the answer.
    let (untrusted, seen) = https_server("untrusted.pem", "untrusted.key").await;
    let refused = connector(untrusted)
        .create(
            &Call::default(),
            "contact",
            &json!({"email": "b@example.com"}),
        )
        .await
        .expect_err("an untrusted certificate");
    assert_eq!(seen.load(Ordering::SeqCst), 0);
    assert_eq!(refused.kind, ErrorKind::Fatal, "{refused:?}");
    assert!(refused.message.contains("UnknownIssuer"), "{refused:?}");
    assert!(
        !refused.message.contains("t0ken"),
        "the error holds no secret: {}",
        refused.message
    );
}
