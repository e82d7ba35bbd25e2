//! The credential store: per-tenant credentials sealed with AES-256-GCM
//! ([`crate::secrets::sealed`]) in the state store's database, and the
//! [`CredentialSource`] that serves them to `${secret:PROVIDER.NAME}` references.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rulebridge::state::CredentialError> {
//! use rulebridge::secrets::Secret;
//! use rulebridge::state::{CredentialStore, KeySpec, SqlStore};
//! let store = SqlStore::open(".rulebridge/state.db").await?;
//! let creds = CredentialStore::unlock(store.db().clone(), &KeySpec::from_env()?).await?;
//! creds.set("acme", "hubspot", "token", &Secret::new("pat-na1-…".into())).await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Db, DbError};
use crate::secrets::sealed::{self, MasterKey, SealError, Sealed};
use crate::secrets::{CredentialSource, Secret, SecretError};

/// The variable holding the master key (base64 of 32 bytes).
pub const MASTER_KEY_VAR: &str = "RULEBRIDGE_MASTER_KEY";
/// The variable holding a passphrase the master key is derived from (Argon2id).
pub const MASTER_PASSPHRASE_VAR: &str = "RULEBRIDGE_MASTER_PASSPHRASE";
/// The new key of `rulebridge creds rotate`.
pub const NEW_MASTER_KEY_VAR: &str = "RULEBRIDGE_NEW_MASTER_KEY";
/// The new passphrase of `rulebridge creds rotate`.
pub const NEW_MASTER_PASSPHRASE_VAR: &str = "RULEBRIDGE_NEW_MASTER_PASSPHRASE";

const SALT_SETTING: &str = "kdf_salt";

/// Why the credential store could not do something. Names the credential, never its value.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Store(#[from] super::StoreError),
    #[error(
        "no master key: set {MASTER_KEY_VAR} (base64 of 32 bytes, `rulebridge creds keygen` makes one) or {MASTER_PASSPHRASE_VAR}"
    )]
    NoKey,
    #[error("{0}")]
    Invalid(String),
}

/// Where the master key comes from.
#[derive(Clone, Debug)]
pub enum KeySpec {
    /// The key itself.
    Key(MasterKey),
    /// A passphrase; the key is derived with the store's salt.
    Passphrase(Secret),
}

impl KeySpec {
    /// `RULEBRIDGE_MASTER_KEY`, else `RULEBRIDGE_MASTER_PASSPHRASE`.
    pub fn from_env() -> Result<KeySpec, CredentialError> {
        Self::from_vars(MASTER_KEY_VAR, MASTER_PASSPHRASE_VAR)?.ok_or(CredentialError::NoKey)
    }

    /// [`KeySpec::from_env`], or `None` when neither variable is set.
    pub fn from_env_if_set() -> Result<Option<KeySpec>, CredentialError> {
        Self::from_vars(MASTER_KEY_VAR, MASTER_PASSPHRASE_VAR)
    }

    /// The new key of a rotation: `RULEBRIDGE_NEW_MASTER_KEY`, else
    /// `RULEBRIDGE_NEW_MASTER_PASSPHRASE`; `None` when neither is set.
    pub fn new_from_env() -> Result<Option<KeySpec>, CredentialError> {
        Self::from_vars(NEW_MASTER_KEY_VAR, NEW_MASTER_PASSPHRASE_VAR)
    }

    fn from_vars(key: &str, passphrase: &str) -> Result<Option<KeySpec>, CredentialError> {
        if let Some(v) = std::env::var(key).ok().filter(|v| !v.trim().is_empty()) {
            let v = Secret::new(v);
            return MasterKey::from_base64(v.expose())
                .map(|k| Some(KeySpec::Key(k)))
                .map_err(|e| CredentialError::Invalid(format!("{key}: {e}")));
        }
        Ok(std::env::var(passphrase)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| KeySpec::Passphrase(Secret::new(v))))
    }

    /// The key, deriving it with the salt of the store at `db` (made on first use).
    pub async fn key(&self, db: &Db) -> Result<MasterKey, CredentialError> {
        match self {
            KeySpec::Key(k) => Ok(k.clone()),
            KeySpec::Passphrase(p) => {
                let salt = salt(db).await?;
                let p = p.clone();
                // Argon2id takes a moment of CPU on purpose: off the async threads.
                tokio::task::spawn_blocking(move || MasterKey::derive(p.expose(), &salt))
                    .await
                    .map_err(|e| CredentialError::Invalid(format!("key derivation failed: {e}")))?
                    .map_err(CredentialError::from)
            }
        }
    }
}

/// The store's passphrase salt, written by the first caller (the others read it).
async fn salt(db: &Db) -> Result<Vec<u8>, CredentialError> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let fresh = b64.encode(sealed::new_salt());
    sqlx::query(
        "INSERT INTO rb_credential_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(SALT_SETTING)
    .bind(&fresh)
    .execute(db.pool())
    .await
    .map_err(|e| db.error(&e))?;
    let row = sqlx::query("SELECT value FROM rb_credential_settings WHERE name = $1")
        .bind(SALT_SETTING)
        .fetch_one(db.pool())
        .await
        .map_err(|e| db.error(&e))?;
    let value: String = row.try_get("value").unwrap_or_default();
    b64.decode(value.as_bytes()).map_err(|_| {
        CredentialError::Invalid(format!(
            "{}: the passphrase salt of the credential store is not base64",
            db.location()
        ))
    })
}

/// What `list` shows of a credential: where it is and when it was written, never its value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CredentialInfo {
    pub tenant: String,
    pub provider: String,
    pub name: String,
    pub key_id: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a rotation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Rotated {
    /// Records re-sealed under the new key.
    pub resealed: u64,
    /// Records already under the new key (an earlier rotation to it).
    pub current: u64,
}

/// Credentials sealed under one master key in a state store's database.
#[derive(Clone, Debug)]
pub struct CredentialStore {
    db: Db,
    key: MasterKey,
}

/// `tenant/provider/name`, as errors name a credential.
fn location(tenant: &str, provider: &str, name: &str) -> String {
    format!("credential {tenant}/{provider}/{name}")
}

fn sealed_of(row: &AnyRow) -> Sealed {
    Sealed {
        ciphertext: row.try_get("ciphertext").unwrap_or_default(),
        nonce: row.try_get("nonce").unwrap_or_default(),
        key_id: row.try_get("key_id").unwrap_or_default(),
    }
}

impl CredentialStore {
    /// The store over `db` (migrated by [`super::SqlStore::open`]) with this key.
    pub fn new(db: Db, key: MasterKey) -> CredentialStore {
        CredentialStore { db, key }
    }

    /// The store over `db` with the key `spec` gives (derived with the store's salt).
    pub async fn unlock(db: Db, spec: &KeySpec) -> Result<CredentialStore, CredentialError> {
        let key = spec.key(&db).await?;
        Ok(CredentialStore { db, key })
    }

    /// The id of the master key in use.
    pub fn key_id(&self) -> &str {
        self.key.id()
    }

    /// Where the store is (its database, without credentials).
    pub fn location(&self) -> String {
        self.db.location().to_string()
    }

    fn err(&self, e: sqlx::Error) -> CredentialError {
        CredentialError::Db(self.db.error(&e))
    }

    /// Seals and stores `value` at (tenant, provider, name), replacing what was there.
    pub async fn set(
        &self,
        tenant: &str,
        provider: &str,
        name: &str,
        value: &Secret,
    ) -> Result<(), CredentialError> {
        if name.is_empty() {
            return Err(CredentialError::Invalid(
                "a credential needs a name".to_string(),
            ));
        }
        let sealed = self.key.seal(
            &sealed::aad(tenant, provider, name),
            value.expose().as_bytes(),
        );
        let now = super::now_ms();
        sqlx::query(
            "INSERT INTO rb_credentials (tenant, provider, name, ciphertext, nonce, key_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (tenant, provider, name) DO UPDATE SET ciphertext = excluded.ciphertext, \
             nonce = excluded.nonce, key_id = excluded.key_id, updated_at = excluded.updated_at",
        )
        .bind(tenant)
        .bind(provider)
        .bind(name)
        .bind(sealed.ciphertext)
        .bind(sealed.nonce)
        .bind(sealed.key_id)
        .bind(now)
        .execute(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The value at (tenant, provider, name), `None` when there is none. A record sealed
    /// under another key or altered is an error naming it.
    pub async fn get(
        &self,
        tenant: &str,
        provider: &str,
        name: &str,
    ) -> Result<Option<Secret>, CredentialError> {
        let row = sqlx::query(
            "SELECT ciphertext, nonce, key_id FROM rb_credentials WHERE tenant = $1 AND provider = $2 AND name = $3",
        )
        .bind(tenant)
        .bind(provider)
        .bind(name)
        .fetch_optional(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        let Some(row) = row else { return Ok(None) };
        let what = location(tenant, provider, name);
        let plain = self.key.open(
            &sealed_of(&row),
            &sealed::aad(tenant, provider, name),
            &what,
        )?;
        let text = String::from_utf8(plain)
            .map_err(|_| CredentialError::Invalid(format!("{what} is not UTF-8 text")))?;
        Ok(Some(Secret::new(text)))
    }

    /// The credentials of a tenant (of one provider, or all), without their values.
    pub async fn list(
        &self,
        tenant: &str,
        provider: Option<&str>,
    ) -> Result<Vec<CredentialInfo>, CredentialError> {
        let rows = sqlx::query(
            "SELECT tenant, provider, name, key_id, created_at, updated_at FROM rb_credentials \
             WHERE tenant = $1 AND ($2 = '' OR provider = $2) ORDER BY provider, name",
        )
        .bind(tenant)
        .bind(provider.unwrap_or(""))
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| CredentialInfo {
                tenant: r.try_get("tenant").unwrap_or_default(),
                provider: r.try_get("provider").unwrap_or_default(),
                name: r.try_get("name").unwrap_or_default(),
                key_id: r.try_get("key_id").unwrap_or_default(),
                created_at: r.try_get("created_at").unwrap_or_default(),
                updated_at: r.try_get("updated_at").unwrap_or_default(),
            })
            .collect())
    }

    /// Removes one credential of a tenant's provider, or (`name: None`) all of them (a
    /// disconnect). Returns how many were removed.
    pub async fn delete(
        &self,
        tenant: &str,
        provider: &str,
        name: Option<&str>,
    ) -> Result<u64, CredentialError> {
        let done = sqlx::query(
            "DELETE FROM rb_credentials WHERE tenant = $1 AND provider = $2 AND ($3 = '' OR name = $3)",
        )
        .bind(tenant)
        .bind(provider)
        .bind(name.unwrap_or(""))
        .execute(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(done.rows_affected())
    }

    /// Re-seals every credential of every tenant under `new`, in one transaction: every
    /// record opens under the current key (or is already under `new`), or nothing changes.
    /// Returns the store under the new key.
    pub async fn rotate(
        &self,
        new: MasterKey,
    ) -> Result<(CredentialStore, Rotated), CredentialError> {
        let mut tx = self.db.begin_write().await.map_err(|e| self.err(e))?;
        let rows = sqlx::query(
            "SELECT tenant, provider, name, ciphertext, nonce, key_id FROM rb_credentials ORDER BY tenant, provider, name",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let mut done = Rotated::default();
        let now = super::now_ms();
        for row in &rows {
            let tenant: String = row.try_get("tenant").unwrap_or_default();
            let provider: String = row.try_get("provider").unwrap_or_default();
            let name: String = row.try_get("name").unwrap_or_default();
            let sealed = sealed_of(row);
            let aad = sealed::aad(&tenant, &provider, &name);
            let what = location(&tenant, &provider, &name);
            // Already under the new key: a rotation interrupted before, or repeated. It must
            // still open, so a rotation never reports a store it cannot read as done.
            if sealed.key_id == new.id() {
                new.open(&sealed, &aad, &what)?;
                done.current += 1;
                continue;
            }
            let plain = self.key.open(&sealed, &aad, &what)?;
            let fresh = new.seal(&aad, &plain);
            sqlx::query(
                "UPDATE rb_credentials SET ciphertext = $1, nonce = $2, key_id = $3, updated_at = $4 \
                 WHERE tenant = $5 AND provider = $6 AND name = $7",
            )
            .bind(fresh.ciphertext)
            .bind(fresh.nonce)
            .bind(fresh.key_id)
            .bind(now)
            .bind(&tenant)
            .bind(&provider)
            .bind(&name)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            done.resealed += 1;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok((
            CredentialStore {
                db: self.db.clone(),
                key: new,
            },
            done,
        ))
    }
}

/// How `${secret:NAME}` names a credential: `PROVIDER.NAME` (split at the first dot), or a
/// name of no provider.
pub fn split_reference(name: &str) -> (&str, &str) {
    name.split_once('.').unwrap_or(("", name))
}

/// The environment variable a credential falls back to: `PROVIDER_NAME` in capitals, other
/// characters than letters and digits as `_` (`chatwoot.api_key` → `CHATWOOT_API_KEY`).
pub fn env_name(reference: &str) -> String {
    reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The credentials of one tenant as a [`CredentialSource`]: `${secret:PROVIDER.NAME}` reads
/// the tenant's record, and without one (when enabled) the environment variable
/// [`env_name`] gives (seed per-user-crm-credentials: the user's integration, then the
/// environment, then an error). A record that does not open is an error, never a fallback.
#[derive(Clone, Debug)]
pub struct TenantCredentials {
    store: Option<Arc<CredentialStore>>,
    tenant: String,
    env_fallback: bool,
}

impl TenantCredentials {
    /// `tenant`'s credentials in `store`, falling back to the environment.
    pub fn new(store: Arc<CredentialStore>, tenant: &str) -> TenantCredentials {
        TenantCredentials {
            store: Some(store),
            tenant: tenant.to_string(),
            env_fallback: true,
        }
    }

    /// The environment alone (no master key was given, so no store can be opened).
    pub fn env_only() -> TenantCredentials {
        TenantCredentials {
            store: None,
            tenant: String::new(),
            env_fallback: true,
        }
    }

    /// Whether a missing credential is read from the environment.
    pub fn with_env_fallback(mut self, on: bool) -> TenantCredentials {
        self.env_fallback = on;
        self
    }
}

impl CredentialSource for TenantCredentials {
    fn credential<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, SecretError>> {
        Box::pin(async move {
            let (provider, key) = split_reference(name);
            if let Some(store) = &self.store
                && let Some(v) = store
                    .get(&self.tenant, provider, key)
                    .await
                    .map_err(|e| SecretError::Source(e.to_string()))?
            {
                return Ok(Some(v));
            }
            if self.env_fallback
                && let Ok(v) = std::env::var(env_name(name))
            {
                tracing::debug!(credential = name, "read from the environment");
                return Ok(Some(Secret::new(v)));
            }
            Ok(None)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_environment_names() {
        assert_eq!(
            split_reference("hubspot.refresh_token"),
            ("hubspot", "refresh_token")
        );
        assert_eq!(split_reference("a.b.c"), ("a", "b.c"));
        assert_eq!(split_reference("crm_token"), ("", "crm_token"));
        assert_eq!(env_name("chatwoot.api_key"), "CHATWOOT_API_KEY");
        assert_eq!(env_name("task-crm.client id"), "TASK_CRM_CLIENT_ID");
    }
}
