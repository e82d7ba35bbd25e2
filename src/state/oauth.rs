//! OAuth connect in the state store: the `state` values of authorizations in progress
//! ([`OAuthStates`], CSRF protection per RFC 6749 section 10.12), and a tenant's tokens in the
//! credential store ([`TenantTokens`]).
//!
//! A state is 32 random bytes (base64url), kept as its SHA-256 only, bound to one tenant and
//! one provider, good for one callback, and expired after its time to live.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::credentials::{CredentialError, CredentialStore};
use crate::connect::oauth::{TokenSet, TokenSink};
use crate::db::Db;
use crate::secrets::Secret;

/// The credential (tenant, provider, `oauth`) holding a connection's tokens, as one sealed
/// JSON value so an access token and the refresh token it came with are replaced together.
pub const OAUTH_CREDENTIAL: &str = "oauth";

/// Why a callback's `state` is refused. The messages are what the API answers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateRefused {
    #[error("unknown `state`: it was not issued by this server (or was altered)")]
    Unknown,
    #[error("this `state` was already used: start the connection again")]
    Used,
    #[error("this `state` expired: start the connection again")]
    Expired,
    #[error("this `state` was issued for another tenant")]
    OtherTenant,
    #[error("this `state` was issued for `{0}`, not this provider")]
    OtherProvider(String),
}

fn hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// The states of authorizations in progress, in the state store's database.
#[derive(Clone, Debug)]
pub struct OAuthStates {
    db: Db,
}

impl OAuthStates {
    /// Over `db` (migrated by [`super::SqlStore::open`]).
    pub fn new(db: Db) -> OAuthStates {
        OAuthStates { db }
    }

    fn err(&self, e: sqlx::Error) -> CredentialError {
        CredentialError::Db(self.db.error(&e))
    }

    /// A new state for (tenant, provider), valid for `ttl_ms`. States expired a day ago or
    /// more are removed on the way.
    pub async fn issue(
        &self,
        tenant: &str,
        provider: &str,
        ttl_ms: i64,
    ) -> Result<String, CredentialError> {
        use base64::Engine as _;
        let bytes: [u8; 32] = rand::random();
        let state = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = super::now_ms();
        sqlx::query("DELETE FROM rb_oauth_states WHERE expires_at < $1")
            .bind(now - 86_400_000)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
        sqlx::query(
            "INSERT INTO rb_oauth_states (state_hash, tenant, provider, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash(&state))
        .bind(tenant)
        .bind(provider)
        .bind(now)
        .bind(now.saturating_add(ttl_ms))
        .execute(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(state)
    }

    /// Uses `state` for (tenant, provider): `Ok(Ok(()))` once, for the tenant and provider it
    /// was issued for, before it expires. A state presented by another tenant or for another
    /// provider is refused and stays usable by its own (a stranger cannot burn it).
    pub async fn consume(
        &self,
        state: &str,
        tenant: &str,
        provider: &str,
    ) -> Result<Result<(), StateRefused>, CredentialError> {
        let h = hash(state);
        let row = sqlx::query(
            "SELECT tenant, provider, expires_at, used_at FROM rb_oauth_states WHERE state_hash = $1",
        )
        .bind(&h)
        .fetch_optional(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        let Some(row) = row else {
            return Ok(Err(StateRefused::Unknown));
        };
        let owner: String = row.try_get("tenant").unwrap_or_default();
        let for_provider: String = row.try_get("provider").unwrap_or_default();
        let expires_at: i64 = row.try_get("expires_at").unwrap_or(0);
        let used_at: Option<i64> = row.try_get("used_at").unwrap_or(None);
        let now = super::now_ms();
        if owner != tenant {
            return Ok(Err(StateRefused::OtherTenant));
        }
        if for_provider != provider {
            return Ok(Err(StateRefused::OtherProvider(for_provider)));
        }
        if used_at.is_some() {
            return Ok(Err(StateRefused::Used));
        }
        if now >= expires_at {
            return Ok(Err(StateRefused::Expired));
        }
        // Two callbacks racing with one state: one update wins.
        let done = sqlx::query(
            "UPDATE rb_oauth_states SET used_at = $1 WHERE state_hash = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(&h)
        .execute(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StateRefused::Used)
        })
    }
}

/// A tenant's connection to one provider in the credential store: read, stored, removed, and
/// as the [`TokenSink`] of its sessions.
#[derive(Clone, Debug)]
pub struct TenantTokens {
    pub creds: Arc<CredentialStore>,
    pub tenant: String,
    pub provider: String,
}

impl TenantTokens {
    /// The stored tokens, if the tenant is connected.
    pub async fn load(&self) -> Result<Option<TokenSet>, CredentialError> {
        let Some(v) = self
            .creds
            .get(&self.tenant, &self.provider, OAUTH_CREDENTIAL)
            .await?
        else {
            return Ok(None);
        };
        TokenSet::from_json(v.expose()).map(Some).map_err(|e| {
            CredentialError::Invalid(format!("{}/{}: {e}", self.tenant, self.provider))
        })
    }

    /// Seals and stores `tokens`, replacing what was there.
    pub async fn store(&self, tokens: &TokenSet) -> Result<(), CredentialError> {
        self.creds
            .set(
                &self.tenant,
                &self.provider,
                OAUTH_CREDENTIAL,
                &Secret::new(tokens.to_json()),
            )
            .await
    }

    /// Removes the connection; whether there was one.
    pub async fn remove(&self) -> Result<bool, CredentialError> {
        Ok(self
            .creds
            .delete(&self.tenant, &self.provider, Some(OAUTH_CREDENTIAL))
            .await?
            > 0)
    }
}

/// The refresh locks of the connections of this process, by store, tenant and provider.
type Locks = std::sync::Mutex<HashMap<(String, String, String), Arc<tokio::sync::Mutex<()>>>>;
static REFRESH_LOCKS: std::sync::OnceLock<Locks> = std::sync::OnceLock::new();

impl TokenSink for TenantTokens {
    fn save<'a>(&'a self, tokens: &'a TokenSet) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.store(tokens).await.map_err(|e| e.to_string()) })
    }

    fn current<'a>(&'a self) -> BoxFuture<'a, Result<Option<TokenSet>, String>> {
        Box::pin(async move { self.load().await.map_err(|e| e.to_string()) })
    }

    fn refresh_lock(&self) -> Option<Arc<tokio::sync::Mutex<()>>> {
        let locks = REFRESH_LOCKS.get_or_init(Default::default);
        let mut locks = locks.lock().unwrap_or_else(|e| e.into_inner());
        let key = (
            self.creds.location(),
            self.tenant.clone(),
            self.provider.clone(),
        );
        Some(locks.entry(key).or_default().clone())
    }
}

/// The latest failed record of a tenant's flows writing to `provider` (for an integration's
/// status): when, which flow and run, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LastFailure {
    pub at: i64,
    pub flow: String,
    pub run_id: String,
    pub kind: Option<String>,
    pub message: Option<String>,
    pub http_status: Option<i64>,
}

/// [`LastFailure`] from the changelog of the store at `db`.
pub async fn last_failure(
    db: &Db,
    tenant: &str,
    provider: &str,
) -> Result<Option<LastFailure>, CredentialError> {
    let row = sqlx::query(
        "SELECT at, flow, run_id, error_kind, error, http_status FROM rb_changelog \
         WHERE tenant = $1 AND provider = $2 AND action = 'failed' ORDER BY at DESC, run_id DESC LIMIT 1",
    )
    .bind(tenant)
    .bind(provider)
    .fetch_optional(db.pool())
    .await
    .map_err(|e| CredentialError::Db(db.error(&e)))?;
    Ok(row.map(|r| LastFailure {
        at: r.try_get("at").unwrap_or(0),
        flow: r.try_get("flow").unwrap_or_default(),
        run_id: r.try_get("run_id").unwrap_or_default(),
        kind: r.try_get("error_kind").unwrap_or(None),
        message: r.try_get("error").unwrap_or(None),
        http_status: r.try_get("http_status").unwrap_or(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, super::super::SqlStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.db");
        let s = super::super::SqlStore::open(&path.display().to_string())
            .await
            .expect("store");
        (dir, s)
    }

    #[tokio::test]
    async fn a_state_is_single_use_and_bound_to_its_tenant_and_provider() {
        let (_dir, s) = store().await;
        let states = OAuthStates::new(s.db().clone());
        let st = states
            .issue("acme", "hubspot", 60_000)
            .await
            .expect("issued");
        assert!(st.len() >= 43, "{st}");
        let other = states
            .issue("acme", "hubspot", 60_000)
            .await
            .expect("issued");
        assert_ne!(st, other);
        let use_ = |s: String, t: &'static str, p: &'static str| {
            let states = states.clone();
            async move { states.consume(&s, t, p).await.expect("store") }
        };
        assert_eq!(
            use_(st.clone(), "beta", "hubspot").await,
            Err(StateRefused::OtherTenant)
        );
        assert_eq!(
            use_(st.clone(), "acme", "salesforce").await,
            Err(StateRefused::OtherProvider("hubspot".into()))
        );
        let mut tampered = st.clone();
        tampered.replace_range(0..1, if st.starts_with('A') { "B" } else { "A" });
        assert_eq!(
            use_(tampered, "acme", "hubspot").await,
            Err(StateRefused::Unknown)
        );
        // Refusals above did not use it up.
        assert_eq!(use_(st.clone(), "acme", "hubspot").await, Ok(()));
        assert_eq!(use_(st, "acme", "hubspot").await, Err(StateRefused::Used));
        let expired = states.issue("acme", "hubspot", -1).await.expect("issued");
        assert_eq!(
            use_(expired, "acme", "hubspot").await,
            Err(StateRefused::Expired)
        );
        // Only the hash is stored.
        let rows: Vec<String> = sqlx::query("SELECT state_hash FROM rb_oauth_states")
            .fetch_all(s.db().pool())
            .await
            .expect("rows")
            .iter()
            .map(|r| r.try_get("state_hash").unwrap_or_default())
            .collect();
        assert!(rows.iter().all(|h| h.len() == 64 && h != &other));
    }
}
