//! The credential store against a real SQLite file and, when `RULEBRIDGE_TEST_POSTGRES` names
//! a server, a fresh database on a real PostgreSQL: sealing with real keys, tampering, wrong
//! keys, rotation, passphrases, tenant isolation and `${secret:..}` resolution.

use std::path::Path;
use std::sync::Arc;

use rulebridge::secrets::sealed::MasterKey;
use rulebridge::secrets::{CredentialSource, Resolver, Secret, SecretRef};
use rulebridge::state::*;

async fn open(spec: &str, key: &MasterKey) -> (SqlStore, CredentialStore) {
    let store = SqlStore::open(spec).await.unwrap();
    let creds = CredentialStore::new(store.db().clone(), key.clone());
    (store, creds)
}

fn s(v: &str) -> Secret {
    Secret::new(v.to_string())
}

async fn value(c: &CredentialStore, t: &str, p: &str, n: &str) -> Option<String> {
    c.get(t, p, n)
        .await
        .unwrap()
        .map(|v| v.expose().to_string())
}

#[tokio::test]
async fn values_round_trip_sealed_at_rest() {
    for at in rulebridge::testing::store_backends("credential")
        .await
        .unwrap()
    {
        let (backend, spec) = (at.backend, at.spec.clone());
        let key = MasterKey::generate();
        let (store, creds) = open(&spec, &key).await;
        creds
            .set("acme", "hubspot", "token", &s("pat-na1-canary-7f3a"))
            .await
            .unwrap();
        assert_eq!(
            value(&creds, "acme", "hubspot", "token").await.as_deref(),
            Some("pat-na1-canary-7f3a"),
            "{backend}"
        );
        assert_eq!(value(&creds, "acme", "hubspot", "other").await, None);
        // What the database holds: no plaintext, a 12-byte nonce, the key's id.
        let rows: Vec<(Vec<u8>, Vec<u8>, String)> =
            sqlx::query_as("SELECT ciphertext, nonce, key_id FROM rb_credentials")
                .fetch_all(store.db().pool())
                .await
                .unwrap();
        assert_eq!(rows.len(), 1, "{backend}");
        let (ct, nonce, key_id) = &rows[0];
        assert!(!ct.windows(6).any(|w| w == b"canary"), "{backend}");
        assert_eq!(nonce.len(), 12);
        assert_eq!(key_id, key.id());
        // A second write of the same value draws a new nonce.
        creds
            .set("acme", "hubspot", "token", &s("pat-na1-canary-7f3a"))
            .await
            .unwrap();
        let again: (Vec<u8>,) = sqlx::query_as("SELECT nonce FROM rb_credentials")
            .fetch_one(store.db().pool())
            .await
            .unwrap();
        assert_ne!(&again.0, nonce, "{backend}");
        // Replacing keeps one row, with the new value.
        creds
            .set("acme", "hubspot", "token", &s("second"))
            .await
            .unwrap();
        assert_eq!(
            value(&creds, "acme", "hubspot", "token").await.as_deref(),
            Some("second")
        );
        let listed = creds.list("acme", None).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].provider.as_str(), listed[0].name.as_str()),
            ("hubspot", "token")
        );
        assert!(listed[0].updated_at >= listed[0].created_at);
        assert_eq!(
            creds
                .delete("acme", "hubspot", Some("token"))
                .await
                .unwrap(),
            1
        );
        assert_eq!(value(&creds, "acme", "hubspot", "token").await, None);
    }
}

#[tokio::test]
async fn tampered_and_wrong_key_records_are_errors_naming_them() {
    for at in rulebridge::testing::store_backends("credential")
        .await
        .unwrap()
    {
        let (backend, spec) = (at.backend, at.spec.clone());
        let key = MasterKey::generate();
        let (store, creds) = open(&spec, &key).await;
        creds
            .set("acme", "chatwoot", "api_key", &s("cw-secret"))
            .await
            .unwrap();
        creds
            .set("acme", "chatwoot", "account_id", &s("17"))
            .await
            .unwrap();
        // Another key: named as such.
        let other = CredentialStore::new(store.db().clone(), MasterKey::generate());
        let err = other
            .get("acme", "chatwoot", "api_key")
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("credential acme/chatwoot/api_key was sealed with master key")
                && err.contains(key.id()),
            "{backend}: {err}"
        );
        // A flipped ciphertext byte.
        sqlx::query("UPDATE rb_credentials SET ciphertext = $1 WHERE name = 'api_key'")
            .bind({
                let (ct,): (Vec<u8>,) =
                    sqlx::query_as("SELECT ciphertext FROM rb_credentials WHERE name = 'api_key'")
                        .fetch_one(store.db().pool())
                        .await
                        .unwrap();
                let mut ct = ct;
                ct[0] ^= 0x40;
                ct
            })
            .execute(store.db().pool())
            .await
            .unwrap();
        let err = creds
            .get("acme", "chatwoot", "api_key")
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("credential acme/chatwoot/api_key does not decrypt"),
            "{backend}: {err}"
        );
        // A valid ciphertext copied to another row does not open there.
        let (ct, nonce): (Vec<u8>, Vec<u8>) = sqlx::query_as(
            "SELECT ciphertext, nonce FROM rb_credentials WHERE name = 'account_id'",
        )
        .fetch_one(store.db().pool())
        .await
        .unwrap();
        sqlx::query("UPDATE rb_credentials SET ciphertext = $1, nonce = $2 WHERE name = 'api_key'")
            .bind(ct)
            .bind(nonce)
            .execute(store.db().pool())
            .await
            .unwrap();
        assert_eq!(
            value(&creds, "acme", "chatwoot", "account_id")
                .await
                .as_deref(),
            Some("17")
        );
        let err = creds
            .get("acme", "chatwoot", "api_key")
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("does not decrypt"), "{backend}: {err}");
    }
}

#[tokio::test]
async fn tenants_never_see_use_or_overwrite_each_other() {
    for at in rulebridge::testing::store_backends("credential")
        .await
        .unwrap()
    {
        let (backend, spec) = (at.backend, at.spec.clone());
        let key = MasterKey::generate();
        let (_store, creds) = open(&spec, &key).await;
        let creds = Arc::new(creds);
        creds
            .set("tenant-a", "hubspot", "token", &s("a-token"))
            .await
            .unwrap();
        creds
            .set("tenant-b", "hubspot", "token", &s("b-token"))
            .await
            .unwrap();
        // B's write under the same provider and name left A's value alone.
        assert_eq!(
            value(&creds, "tenant-a", "hubspot", "token")
                .await
                .as_deref(),
            Some("a-token"),
            "{backend}"
        );
        // Lists and deletes are per tenant.
        assert_eq!(creds.list("tenant-a", None).await.unwrap().len(), 1);
        assert!(
            creds
                .list("tenant-a", None)
                .await
                .unwrap()
                .iter()
                .all(|c| c.tenant == "tenant-a")
        );
        assert_eq!(creds.delete("tenant-b", "hubspot", None).await.unwrap(), 1);
        assert_eq!(
            value(&creds, "tenant-a", "hubspot", "token")
                .await
                .as_deref(),
            Some("a-token")
        );
        // A tenant with none gets none (not another tenant's), and with the environment
        // fallback off, nothing at all.
        let c = TenantCredentials::new(creds.clone(), "tenant-c").with_env_fallback(false);
        assert!(c.credential("hubspot.token").await.unwrap().is_none());
        let a = TenantCredentials::new(creds.clone(), "tenant-a");
        assert_eq!(
            a.credential("hubspot.token")
                .await
                .unwrap()
                .map(|v| v.expose().to_string())
                .as_deref(),
            Some("a-token")
        );
    }
}

#[tokio::test]
async fn secret_references_resolve_per_tenant_then_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("state.db").display().to_string();
    let key = MasterKey::generate();
    let (_store, creds) = open(&spec, &key).await;
    let creds = Arc::new(creds);
    creds
        .set("acme", "rbtestkit", "api_key", &s("acme-stored-key"))
        .await
        .unwrap();
    // SAFETY: this test binary sets no other variable of this name, and the value is read
    // only below.
    unsafe { std::env::set_var("RBTESTKIT_API_KEY", "env-fallback-key") };
    let r = SecretRef::parse("${secret:rbtestkit.api_key}").unwrap();
    let acme = Resolver::new()
        .with_credential_source(Arc::new(TenantCredentials::new(creds.clone(), "acme")));
    let globex = Resolver::new()
        .with_credential_source(Arc::new(TenantCredentials::new(creds.clone(), "globex")));
    let got = acme.resolve(&r, Path::new(".")).await.unwrap();
    assert_eq!(got.expose(), "acme-stored-key");
    // Resolved values are masked in everything printed.
    assert_eq!(
        rulebridge::secrets::scrubber().scrub("key=acme-stored-key"),
        format!("key={}", rulebridge::secrets::MASK)
    );
    let got = globex.resolve(&r, Path::new(".")).await.unwrap();
    assert_eq!(got.expose(), "env-fallback-key");
    let missing = SecretRef::parse("${secret:rbtestkit.nothing}").unwrap();
    let err = globex.resolve(&missing, Path::new(".")).await.err();
    assert!(
        err.is_some_and(|e| e.to_string().contains("rbtestkit.nothing")),
        "a missing credential names itself"
    );
}

#[tokio::test]
async fn rotation_reseals_everything_or_nothing() {
    for at in rulebridge::testing::store_backends("credential")
        .await
        .unwrap()
    {
        let (backend, spec) = (at.backend, at.spec.clone());
        let old = MasterKey::generate();
        let (store, creds) = open(&spec, &old).await;
        for (t, n) in [("a", "x"), ("a", "y"), ("b", "x")] {
            creds
                .set(t, "hubspot", n, &s(&format!("{t}-{n}-value")))
                .await
                .unwrap();
        }
        let new = MasterKey::generate();
        let (rotated, done) = creds.rotate(new.clone()).await.unwrap();
        assert_eq!(
            done,
            Rotated {
                resealed: 3,
                current: 0
            },
            "{backend}"
        );
        assert_eq!(rotated.key_id(), new.id());
        assert_eq!(
            value(&rotated, "b", "hubspot", "x").await.as_deref(),
            Some("b-x-value")
        );
        assert!(creds.get("a", "hubspot", "x").await.is_err(), "old key");
        let ids: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT key_id FROM rb_credentials")
            .fetch_all(store.db().pool())
            .await
            .unwrap();
        assert_eq!(ids, vec![(new.id().to_string(),)]);
        // Again to the same key: nothing to do.
        let (_, again) = rotated.rotate(new.clone()).await.unwrap();
        assert_eq!(
            again,
            Rotated {
                resealed: 0,
                current: 3
            }
        );
        // A record the current key cannot open stops the rotation; nothing changed.
        rotated
            .set("c", "hubspot", "x", &s("c-value"))
            .await
            .unwrap();
        sqlx::query("UPDATE rb_credentials SET nonce = $1 WHERE tenant = 'c'")
            .bind(vec![0u8; 12])
            .execute(store.db().pool())
            .await
            .unwrap();
        let third = MasterKey::generate();
        let err = rotated
            .rotate(third.clone())
            .await
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("credential c/hubspot/x does not decrypt")),
            "{backend}: {err:?}"
        );
        assert_eq!(
            value(&rotated, "a", "hubspot", "y").await.as_deref(),
            Some("a-y-value"),
            "rolled back"
        );
    }
}

#[tokio::test]
async fn passphrase_keys_use_the_stores_salt() {
    for at in rulebridge::testing::store_backends("credential")
        .await
        .unwrap()
    {
        let (backend, spec) = (at.backend, at.spec.clone());
        let store = SqlStore::open(&spec).await.unwrap();
        let pass = KeySpec::Passphrase(s("correct horse battery staple"));
        let a = CredentialStore::unlock(store.db().clone(), &pass)
            .await
            .unwrap();
        a.set("t", "p", "n", &s("v")).await.unwrap();
        // Another process on the same store derives the same key from the same salt.
        let again = SqlStore::open(&spec).await.unwrap();
        let b = CredentialStore::unlock(again.db().clone(), &pass)
            .await
            .unwrap();
        assert_eq!(a.key_id(), b.key_id(), "{backend}");
        assert_eq!(value(&b, "t", "p", "n").await.as_deref(), Some("v"));
        let wrong = CredentialStore::unlock(again.db().clone(), &KeySpec::Passphrase(s("nope")))
            .await
            .unwrap();
        assert!(wrong.get("t", "p", "n").await.is_err());
        // Another store has another salt: the same passphrase is another key.
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = SqlStore::open(&dir.path().join("s.db").display().to_string())
            .await
            .unwrap();
        let c = CredentialStore::unlock(elsewhere.db().clone(), &pass)
            .await
            .unwrap();
        assert_ne!(c.key_id(), a.key_id());
    }
}
