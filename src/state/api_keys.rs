//! Per-tenant API keys for `rulebridge serve`, kept hashed in the state store.
//!
//! A key reads `rbk_<id>_<secret>`: `rbk_` makes a leaked key recognisable (to a person and
//! to secret scanners), `<id>` (16 hex digits) finds its row and names it in `keys list` and
//! `keys revoke`, and `<secret>` is 256 random bits in unpadded base64url. Only the SHA-256
//! of the whole key is stored.
//!
//! Why a plain SHA-256 and not a password hash (Argon2, bcrypt): those are slow on purpose,
//! to make guessing a low-entropy password from its hash expensive. A 256-bit random key
//! cannot be guessed however fast the hash is, so a fast hash loses nothing, and keeps the
//! check that every request makes cheap. The stored hash is compared in constant time.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use subtle::ConstantTimeEq;

use super::{StoreError, StoreResult, now_ms};
use crate::db::Db;
use crate::secrets::Secret;

/// What every key begins with.
pub const KEY_PREFIX: &str = "rbk_";

/// Hex digits of a key id.
const ID_LEN: usize = 16;

/// Bytes of randomness in a key's secret part.
const SECRET_BYTES: usize = 32;

/// A key as `list` shows it: never the key, nor its hash.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ApiKeyInfo {
    pub id: String,
    pub tenant: String,
    pub label: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// When a request last used it (kept to the minute: see [`ApiKeys::touch`]).
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiKeyInfo {
    pub fn revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// A key just made: the only time its text exists outside the client that holds it.
#[derive(Debug)]
pub struct NewApiKey {
    pub info: ApiKeyInfo,
    /// The whole key, `rbk_<id>_<secret>` (registered for scrubbing).
    pub key: Secret,
}

/// Why a presented key was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not of the form `rbk_<id>_<secret>`.
    Malformed,
    /// No key has that id, or its secret part differs.
    Unknown,
    Revoked,
}

/// The API keys of a state store's database (migrated by [`super::SqlStore::open`]).
#[derive(Clone, Debug)]
pub struct ApiKeys {
    db: Db,
}

fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// The id of a key of the right shape.
fn id_of(key: &str) -> Option<&str> {
    let (id, secret) = key.strip_prefix(KEY_PREFIX)?.split_once('_')?;
    let secret_len = (SECRET_BYTES * 4).div_ceil(3);
    (id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit()) && secret.len() == secret_len)
        .then_some(id)
}

fn info_of(r: &AnyRow) -> ApiKeyInfo {
    ApiKeyInfo {
        id: r.try_get("id").unwrap_or_default(),
        tenant: r.try_get("tenant").unwrap_or_default(),
        label: r.try_get("label").unwrap_or_default(),
        created_at: r.try_get("created_at").unwrap_or_default(),
        last_used_at: r.try_get::<Option<i64>, _>("last_used_at").ok().flatten(),
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at").ok().flatten(),
    }
}

impl ApiKeys {
    pub fn new(db: Db) -> ApiKeys {
        ApiKeys { db }
    }

    fn err(&self, e: sqlx::Error) -> StoreError {
        StoreError::Db(self.db.error(&e))
    }

    /// Makes and stores a new key for `tenant`.
    pub async fn create(&self, tenant: &str, label: &str) -> StoreResult<NewApiKey> {
        let id = hex::encode(rand::random::<[u8; ID_LEN / 2]>());
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(rand::random::<[u8; SECRET_BYTES]>());
        let key = Secret::new(format!("{KEY_PREFIX}{id}_{secret}"));
        let created_at = now_ms();
        sqlx::query(
            "INSERT INTO rb_api_keys (id, tenant, label, hash, created_at, last_used_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, NULL, NULL)",
        )
        .bind(&id)
        .bind(tenant)
        .bind(label)
        .bind(hash(key.expose()))
        .bind(created_at)
        .execute(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(NewApiKey {
            info: ApiKeyInfo {
                id,
                tenant: tenant.to_string(),
                label: label.to_string(),
                created_at,
                last_used_at: None,
                revoked_at: None,
            },
            key,
        })
    }

    /// Every key (of one tenant, or all), oldest first.
    pub async fn list(&self, tenant: Option<&str>) -> StoreResult<Vec<ApiKeyInfo>> {
        let rows = match tenant {
            Some(t) => {
                sqlx::query(
                    "SELECT id, tenant, label, created_at, last_used_at, revoked_at FROM rb_api_keys WHERE tenant = $1 ORDER BY created_at, id",
                )
                .bind(t)
                .fetch_all(self.db.pool())
                .await
            }
            None => {
                sqlx::query(
                    "SELECT id, tenant, label, created_at, last_used_at, revoked_at FROM rb_api_keys ORDER BY created_at, id",
                )
                .fetch_all(self.db.pool())
                .await
            }
        }
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(info_of).collect())
    }

    /// Revokes the key `id`: requests with it are refused from now on. `None` when there is
    /// no such key; revoking a revoked key keeps its first revocation time.
    pub async fn revoke(&self, id: &str) -> StoreResult<Option<ApiKeyInfo>> {
        sqlx::query("UPDATE rb_api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
        let row = sqlx::query("SELECT id, tenant, label, created_at, last_used_at, revoked_at FROM rb_api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.as_ref().map(info_of))
    }

    /// The key `presented` stands for, if it is one of ours and not revoked.
    pub async fn verify(&self, presented: &str) -> StoreResult<Result<ApiKeyInfo, Refused>> {
        let Some(id) = id_of(presented) else {
            return Ok(Err(Refused::Malformed));
        };
        let row = sqlx::query(
            "SELECT id, tenant, label, created_at, last_used_at, revoked_at, hash FROM rb_api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        let Some(row) = row else {
            return Ok(Err(Refused::Unknown));
        };
        let stored: Vec<u8> = row.try_get("hash").unwrap_or_default();
        // Constant time: how much of the hash matched must not show in the answer's timing.
        if !bool::from(stored.ct_eq(&hash(presented))) {
            return Ok(Err(Refused::Unknown));
        }
        let info = info_of(&row);
        if info.revoked() {
            return Ok(Err(Refused::Revoked));
        }
        Ok(Ok(info))
    }

    /// Notes that key `id` was used now. A server calls this at most once a minute per key
    /// (a write per request would contend with the records' writes).
    pub async fn touch(&self, id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE rb_api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn keys() -> (tempfile::TempDir, ApiKeys) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = super::super::SqlStore::open(&dir.path().join("s.db").display().to_string())
            .await
            .expect("store");
        (dir, ApiKeys::new(store.db().clone()))
    }

    #[tokio::test]
    async fn a_key_opens_for_its_tenant_until_revoked() {
        let (_dir, keys) = keys().await;
        let a = keys.create("acme", "ci").await.expect("create");
        let b = keys.create("globex", "").await.expect("create");
        let text = a.key.expose();
        assert!(text.starts_with("rbk_"), "{text}");
        assert_eq!(text.len(), 4 + ID_LEN + 1 + 43);
        assert_ne!(a.key.expose(), b.key.expose());
        let got = keys.verify(text).await.expect("verify");
        assert_eq!(got.map(|i| i.tenant), Ok("acme".to_string()));
        let got = keys.verify(b.key.expose()).await.expect("verify");
        assert_eq!(got.map(|i| i.tenant), Ok("globex".to_string()));

        // The same id with another secret, a key cut short, something else.
        let mut forged = text[..text.len() - 1].to_string();
        forged.push(if text.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(keys.verify(&forged).await.ok(), Some(Err(Refused::Unknown)));
        assert_eq!(
            keys.verify(&text[..text.len() - 1]).await.ok(),
            Some(Err(Refused::Malformed))
        );
        assert_eq!(
            keys.verify("Bearer x").await.ok(),
            Some(Err(Refused::Malformed))
        );

        let revoked = keys.revoke(&a.info.id).await.expect("revoke");
        assert!(revoked.is_some_and(|r| r.revoked()));
        assert_eq!(keys.verify(text).await.ok(), Some(Err(Refused::Revoked)));
        assert!(
            keys.revoke("0000000000000000")
                .await
                .expect("revoke")
                .is_none()
        );
        assert!(keys.verify(b.key.expose()).await.is_ok_and(|r| r.is_ok()));
    }

    #[tokio::test]
    async fn the_store_keeps_a_hash_and_list_never_shows_the_key() {
        let (_dir, keys) = keys().await;
        let a = keys.create("acme", "laptop").await.expect("create");
        keys.touch(&a.info.id).await.expect("touch");
        let listed = keys.list(Some("acme")).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].label, "laptop");
        assert!(listed[0].last_used_at.is_some());
        assert!(keys.list(Some("globex")).await.expect("list").is_empty());
        let shown = serde_json::to_string(&listed).expect("json");
        // The secret is everything after the id: base64url, which may hold `_` itself.
        let secret = a
            .key
            .expose()
            .strip_prefix(&format!("{KEY_PREFIX}{}_", a.info.id))
            .expect("the key's form");
        assert_eq!(secret.len(), 43);
        assert!(!shown.contains(secret), "{shown}");
        let rows = sqlx::query("SELECT hash FROM rb_api_keys")
            .fetch_all(keys.db.pool())
            .await
            .expect("rows");
        let stored: Vec<u8> = rows[0].try_get("hash").expect("hash");
        assert_eq!(stored, hash(a.key.expose()));
        assert!(!String::from_utf8_lossy(&stored).contains(secret));
    }
}
