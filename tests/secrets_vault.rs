//! `${vault:MOUNT/PATH#KEY}` against the sandbox's fake Vault (KV v2, token and AppRole,
//! namespaces), the TTL cache, and a refused Vault-held key read again once.

mod http_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_support::{Reply, options, provider, serve, simple};
use rulebridge::connect::http::{HttpConnector, HttpOptions};
use rulebridge::connect::{Call, Connector, ErrorKind};
use rulebridge::secrets::{Resolver, Secret, SecretError, SecretRef, VaultConfig};
use rulebridge_sandbox::vault::{FakeVault, ROLE_ID, ROOT_TOKEN, SECRET_ID};
use serde_json::json;

fn vault_ref(text: &str) -> SecretRef {
    SecretRef::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn with_token(vault: &FakeVault) -> VaultConfig {
    VaultConfig {
        addr: Some(vault.addr()),
        token: Some(Secret::new(ROOT_TOKEN.into())),
        ..Default::default()
    }
}

async fn read(r: &Resolver, text: &str) -> Result<String, String> {
    r.resolve(&vault_ref(text), Path::new("."))
        .await
        .map(|s| s.expose().to_string())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn reads_a_kv2_key_with_a_token_and_caches_it() {
    let vault = FakeVault::start(None).await.expect("start the fake Vault");
    vault.put(
        "secret",
        "jamf-bootstrap-prod",
        json!({"encryption_key": "k-1", "api_secret": "s-1"}),
    );
    let r = Resolver::new().with_vault(with_token(&vault));
    let key = "${vault:secret/jamf-bootstrap-prod#encryption_key}";
    assert_eq!(read(&r, key).await.as_deref(), Ok("k-1"));
    vault.put(
        "secret",
        "jamf-bootstrap-prod",
        json!({"encryption_key": "k-2"}),
    );
    assert_eq!(
        read(&r, key).await.as_deref(),
        Ok("k-1"),
        "cached within the TTL"
    );
    assert_eq!(vault.reads("secret", "jamf-bootstrap-prod"), 1);
    assert!(r.invalidate(&vault_ref(key)));
    assert_eq!(read(&r, key).await.as_deref(), Ok("k-2"), "read again");

    let missing = read(&r, "${vault:secret/jamf-bootstrap-prod#nope}").await;
    assert!(
        missing
            .as_ref()
            .is_err_and(|e| e.contains("has no key `nope`")),
        "{missing:?}"
    );
    let absent = read(&r, "${vault:secret/elsewhere#k}").await;
    assert!(
        absent
            .as_ref()
            .is_err_and(|e| e.contains("no secret at secret/elsewhere")),
        "{absent:?}"
    );
    let bad_token = Resolver::new().with_vault(VaultConfig {
        token: Some(Secret::new("hvs.wrong-token".into())),
        ..with_token(&vault)
    });
    let refused = read(&bad_token, key).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("HTTP 403: permission denied")),
        "{refused:?}"
    );
    assert!(!refused.unwrap_or_default().contains("hvs.wrong-token"));
}

#[tokio::test]
async fn a_stale_value_is_read_again() {
    let vault = FakeVault::start(None).await.expect("start the fake Vault");
    vault.put("kv", "crm", json!({"token": "t-1"}));
    let r = Resolver::new()
        .with_vault(with_token(&vault))
        .with_ttl(Duration::ZERO);
    read(&r, "${vault:kv/crm#token}").await.ok();
    read(&r, "${vault:kv/crm#token}").await.ok();
    assert_eq!(vault.reads("kv", "crm"), 2);
}

#[tokio::test]
async fn logs_in_with_approle_and_again_when_the_token_is_revoked() {
    let vault = FakeVault::start(None).await.expect("start the fake Vault");
    vault.put("secret", "crm", json!({"token": "t-1"}));
    let config = VaultConfig {
        addr: Some(vault.addr()),
        approle: Some((Secret::new(ROLE_ID.into()), Secret::new(SECRET_ID.into()))),
        ..Default::default()
    };
    let r = Resolver::new()
        .with_vault(config.clone())
        .with_ttl(Duration::ZERO);
    assert_eq!(
        read(&r, "${vault:secret/crm#token}").await.as_deref(),
        Ok("t-1")
    );
    assert_eq!(
        read(&r, "${vault:secret/crm#token}").await.as_deref(),
        Ok("t-1")
    );
    assert_eq!(vault.logins(), 1, "the login token is kept");
    vault.revoke_logins();
    assert_eq!(
        read(&r, "${vault:secret/crm#token}").await.as_deref(),
        Ok("t-1")
    );
    assert_eq!(vault.logins(), 2);

    let wrong = Resolver::new().with_vault(VaultConfig {
        approle: Some((
            Secret::new(ROLE_ID.into()),
            Secret::new("not-the-secret-id".into()),
        )),
        ..config
    });
    let e = read(&wrong, "${vault:secret/crm#token}").await;
    assert!(e.as_ref().is_err_and(|e| e.contains("AppRole login failed: HTTP 400: invalid role or secret ID")), "{e:?}");
}

#[tokio::test]
async fn sends_the_namespace() {
    let vault = FakeVault::start(Some("admin"))
        .await
        .expect("start the fake Vault");
    vault.put("secret", "crm", json!({"token": "t-ns"}));
    let without = Resolver::new().with_vault(with_token(&vault));
    let e = read(&without, "${vault:secret/crm#token}").await;
    assert!(e.is_err_and(|e| e.contains("permission denied")));
    let with = Resolver::new().with_vault(VaultConfig {
        namespace: Some("admin".into()),
        ..with_token(&vault)
    });
    assert_eq!(
        read(&with, "${vault:secret/crm#token}").await.as_deref(),
        Ok("t-ns")
    );
}

#[tokio::test]
async fn no_vault_address_is_a_clear_error() {
    let r = Resolver::new().with_vault(VaultConfig::default());
    let e = r
        .resolve(&vault_ref("${vault:secret/crm#token}"), Path::new("."))
        .await;
    assert!(
        matches!(&e, Err(SecretError::NotSet(m)) if m.contains("VAULT_ADDR")),
        "{e:?}"
    );
}

/// The Jamf seed's "Invalid key": the provider refuses a key that was rotated in Vault; the
/// connector forgets it, reads it again and sends once more. (Building a connector reads
/// Vault synchronously, blocking its thread: the fake needs a worker of its own.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_vault_key_is_read_again_and_the_request_sent_once_more() {
    let vault = FakeVault::start(None).await.expect("start the fake Vault");
    vault.put("secret", "crm", json!({"token": "old-key"}));
    let server = serve(|s, _| match s.header("authorization") {
        Some("Bearer new-key") => Reply::json(201, json!({"id": "7"})),
        _ => Reply::json(401, json!({"success": false, "error": "Invalid key"})),
    })
    .await;
    let resolver = Arc::new(Resolver::new().with_vault(with_token(&vault)));
    let plan = provider(&simple(
        r#"{ type: bearer, token: "${vault:secret/crm#token}" }"#,
        "",
    ));
    let opts = HttpOptions {
        resolver: Some(resolver.clone()),
        ..options(&server, &[])
    };
    let c = HttpConnector::new(&plan, opts).expect("build the connector");
    // Rotated in Vault after the connector read it.
    vault.put("secret", "crm", json!({"token": "new-key"}));
    let w = c
        .create(&Call::default(), "contact", &json!({"email": "a@x.com"}))
        .await;
    assert_eq!(w.map(|w| w.id), Ok(Some("7".into())));
    assert_eq!(
        server.to("/contacts").len(),
        2,
        "refused once, then sent again"
    );
    assert_eq!(vault.reads("secret", "crm"), 2);

    // Still refused after the re-read: one more attempt only, then the auth error.
    vault.put("secret", "crm", json!({"token": "wrong-again"}));
    let refused = HttpConnector::new(
        &plan,
        HttpOptions {
            resolver: Some(Arc::new(Resolver::new().with_vault(with_token(&vault)))),
            ..options(&server, &[])
        },
    )
    .expect("build the connector")
    .create(&Call::default(), "contact", &json!({"email": "b@x.com"}))
    .await;
    assert_eq!(refused.err().map(|e| e.kind), Some(ErrorKind::Auth));
    assert_eq!(server.to("/contacts").len(), 4);
}
