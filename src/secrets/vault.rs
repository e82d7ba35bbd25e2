//! Reading `${vault:mount/path#key}` from HashiCorp Vault's KV secrets engine, version 2.
//!
//! From Vault's API reference (developer.hashicorp.com/vault/api-docs):
//!
//! * read a secret: `GET /v1/{mount}/data/{path}` with the token in `X-Vault-Token`; the
//!   answer is `{"data": {"data": {KEY: VALUE, ..}, "metadata": {..}}}` (api-docs/secret/kv/kv-v2,
//!   "Read secret version");
//! * Vault Enterprise and HCP namespaces: the `X-Vault-Namespace` header (a missing one makes
//!   Vault answer `{"errors":["permission denied"]}`);
//! * AppRole login: `POST /v1/auth/approle/login` with `{"role_id", "secret_id"}`, answered with
//!   `{"auth": {"client_token", "lease_duration", ..}}` (api-docs/auth/approle, "Login with
//!   AppRole");
//! * errors are `{"errors": [MESSAGE, ..]}` with a 4xx/5xx status.
//!
//! The address, token and namespace come from Vault's own environment variables
//! (`VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_NAMESPACE`); without a token, `VAULT_ROLE_ID` and
//! `VAULT_SECRET_ID` log in through AppRole. A token from a login is kept and used again until
//! Vault refuses it (403), then the login is repeated once.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;

use super::{Secret, SecretError};

/// How to reach Vault.
#[derive(Clone, Default)]
pub struct VaultConfig {
    /// `VAULT_ADDR`, e.g. `https://vault.example.com:8200`.
    pub addr: Option<String>,
    /// `VAULT_TOKEN`.
    pub token: Option<Secret>,
    /// `VAULT_NAMESPACE`, sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// `VAULT_ROLE_ID` and `VAULT_SECRET_ID`: AppRole login when there is no token.
    pub approle: Option<(Secret, Secret)>,
    /// Per-request timeout (10 s by default).
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultConfig")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("namespace", &self.namespace)
            .field("approle", &self.approle.as_ref().map(|_| "***"))
            .finish()
    }
}

impl VaultConfig {
    /// From `VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_NAMESPACE`, `VAULT_ROLE_ID`, `VAULT_SECRET_ID`.
    pub fn from_env() -> Self {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        VaultConfig {
            addr: var("VAULT_ADDR"),
            token: var("VAULT_TOKEN").map(Secret::new),
            namespace: var("VAULT_NAMESPACE"),
            approle: var("VAULT_ROLE_ID")
                .zip(var("VAULT_SECRET_ID"))
                .map(|(r, s)| (Secret::new(r), Secret::new(s))),
            timeout: None,
        }
    }
}

/// A Vault client for KV v2 reads (one per resolver; keeps the AppRole token).
pub(crate) struct VaultClient {
    config: VaultConfig,
    /// The token from the last AppRole login.
    login_token: Mutex<Option<Secret>>,
}

impl VaultClient {
    pub fn new(config: VaultConfig) -> Self {
        VaultClient {
            config,
            login_token: Mutex::new(None),
        }
    }

    /// A client per read: reads are rare (values are cached), and one may run on a runtime
    /// of its own that ends with it (see `Resolver::resolve_blocking`), taking a shared
    /// client's pooled connections along.
    fn http(&self) -> Result<reqwest::Client, SecretError> {
        crate::http_client::builder()
            .map_err(|e| SecretError::Source(format!("Vault: {e}")))?
            .timeout(self.config.timeout.unwrap_or(Duration::from_secs(10)))
            .build()
            .map_err(|_| SecretError::Source("Vault: cannot create an HTTP client".into()))
    }

    fn addr(&self) -> Result<String, SecretError> {
        self.config
            .addr
            .as_deref()
            .map(|a| a.trim_end_matches('/').to_string())
            .ok_or_else(|| {
                SecretError::NotSet(
                    "Vault: VAULT_ADDR is not set (the address of the Vault server)".into(),
                )
            })
    }

    fn request(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.namespace {
            Some(ns) => rb.header("X-Vault-Namespace", ns),
            None => rb,
        }
    }

    /// The token: `VAULT_TOKEN`, else one from an AppRole login (cached; `fresh` logs in again).
    async fn token(&self, fresh: bool) -> Result<Secret, SecretError> {
        if let Some(t) = &self.config.token {
            return Ok(t.clone());
        }
        let Some((role_id, secret_id)) = &self.config.approle else {
            return Err(SecretError::NotSet(
                "Vault: no token (set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole)"
                    .into(),
            ));
        };
        let mut cached = self.login_token.lock().await;
        if !fresh && let Some(t) = cached.as_ref() {
            return Ok(t.clone());
        }
        let url = format!("{}/v1/auth/approle/login", self.addr()?);
        let body = serde_json::json!({
            "role_id": role_id.expose(),
            "secret_id": secret_id.expose(),
        });
        let resp = self
            .request(self.http()?.post(url))
            .json(&body)
            .send()
            .await
            .map_err(|e| unreachable_vault(&e))?;
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            return Err(SecretError::Source(format!(
                "Vault AppRole login failed: HTTP {status}{}",
                vault_errors(&answer)
            )));
        }
        let token = answer
            .pointer("/auth/client_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                SecretError::Source("Vault AppRole login answered without auth.client_token".into())
            })?;
        let token = Secret::new(token.to_string());
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Reads `key` of the KV v2 secret at `mount`/`path`.
    pub async fn read(&self, mount: &str, path: &str, key: &str) -> Result<Secret, SecretError> {
        let what = format!("vault:{mount}/{path}#{key}");
        let url = format!(
            "{}/v1/{}/data/{}",
            self.addr()?,
            mount.trim_matches('/'),
            path.trim_matches('/')
        );
        let http = self.http()?;
        let mut relogged = false;
        loop {
            let token = self.token(relogged).await?;
            let resp = self
                .request(http.get(&url))
                .header("X-Vault-Token", token.expose())
                .send()
                .await
                .map_err(|e| unreachable_vault(&e))?;
            let status = resp.status().as_u16();
            let answer: Value = resp.json().await.unwrap_or(Value::Null);
            // A login token that expired: log in again, once.
            if status == 403 && !relogged && self.config.token.is_none() {
                relogged = true;
                continue;
            }
            return match status {
                200..=299 => {
                    let data = answer.pointer("/data/data");
                    match data.and_then(|d| d.get(key)) {
                        Some(Value::String(s)) => Ok(Secret::new(s.clone())),
                        Some(Value::Null) | None => Err(SecretError::NotSet(format!(
                            "{what}: the secret has no key `{key}`"
                        ))),
                        Some(other) => Ok(Secret::new(other.to_string())),
                    }
                }
                404 => Err(SecretError::NotSet(format!(
                    "{what}: no secret at {mount}/{path} (or it was deleted)"
                ))),
                s => Err(SecretError::Source(format!(
                    "{what}: Vault answered HTTP {s}{}",
                    vault_errors(&answer)
                ))),
            };
        }
    }
}

/// Vault's `errors` list, as `: a; b` (scrubbed, as every message is on its way out).
fn vault_errors(answer: &Value) -> String {
    let list: Vec<&str> = answer
        .get("errors")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if list.is_empty() {
        String::new()
    } else {
        format!(": {}", super::scrub::scrub(&list.join("; ")))
    }
}

fn unreachable_vault(e: &reqwest::Error) -> SecretError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    SecretError::Source(format!("Vault: {what}"))
}
