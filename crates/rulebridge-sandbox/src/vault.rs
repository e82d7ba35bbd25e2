//! A fake HashiCorp Vault: the KV secrets engine version 2 and AppRole login, written from
//! Vault's API reference (developer.hashicorp.com/vault/api-docs):
//!
//! * `GET /v1/{mount}/data/{path}` with `X-Vault-Token` → `{"data": {"data": {..},
//!   "metadata": {"version", "created_time", ..}}}`; 404 `{"errors": []}` for a path with no
//!   secret; 403 `{"errors": ["permission denied"]}` for a missing or unknown token
//!   (api-docs/secret/kv/kv-v2, "Read secret version");
//! * `POST /v1/auth/approle/login` with `{"role_id", "secret_id"}` → `{"auth": {"client_token",
//!   "accessor", "policies", "lease_duration", "renewable"}}`; 400 `{"errors": ["invalid role or
//!   secret ID"]}` otherwise (api-docs/auth/approle, "Login with AppRole");
//! * `X-Vault-Namespace`: when the fake is given a namespace, requests without that header are
//!   refused with 403 `permission denied`, as Vault does for a path outside the namespace.
//!
//! Served on its own listener (Vault clients use a bare origin, `VAULT_ADDR`), so it is
//! started with [`FakeVault::start`] rather than as a prefix of the sandbox.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The fake's root token (the value of `VAULT_TOKEN` in tests).
pub const ROOT_TOKEN: &str = "hvs.sandbox-root-token";
/// An AppRole the fake accepts.
pub const ROLE_ID: &str = "sandbox-role-id";
pub const SECRET_ID: &str = "sandbox-secret-id";

#[derive(Default)]
struct VaultState {
    /// `mount/path` → versions of the secret's data (last is current).
    secrets: BTreeMap<String, Vec<Value>>,
    /// Tokens issued by AppRole logins.
    tokens: Vec<String>,
    namespace: Option<String>,
    /// Reads served, by `mount/path`.
    reads: BTreeMap<String, usize>,
    logins: usize,
}

/// A running fake Vault on 127.0.0.1.
pub struct FakeVault {
    addr: SocketAddr,
    state: Arc<Mutex<VaultState>>,
    task: tokio::task::JoinHandle<()>,
}

fn lock(m: &Mutex<VaultState>) -> std::sync::MutexGuard<'_, VaultState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeVault {
    /// Starts it on a free port. `namespace`: require `X-Vault-Namespace` to be this.
    pub async fn start(namespace: Option<&str>) -> std::io::Result<FakeVault> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(VaultState {
            namespace: namespace.map(str::to_string),
            ..Default::default()
        }));
        let app = Router::new()
            .route("/v1/auth/approle/login", post(login))
            .route("/v1/{mount}/data/{*path}", get(read))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeVault { addr, state, task })
    }

    /// The value for `VAULT_ADDR`.
    pub fn addr(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a new version of the secret at `mount/path` (like `vault kv put`).
    pub fn put(&self, mount: &str, path: &str, data: Value) {
        lock(&self.state)
            .secrets
            .entry(format!("{mount}/{path}"))
            .or_default()
            .push(data);
    }

    /// How often `mount/path` was read.
    pub fn reads(&self, mount: &str, path: &str) -> usize {
        lock(&self.state)
            .reads
            .get(&format!("{mount}/{path}"))
            .copied()
            .unwrap_or(0)
    }

    /// How many AppRole logins succeeded.
    pub fn logins(&self) -> usize {
        lock(&self.state).logins
    }

    /// Revokes every token issued by a login (they expire), as `vault token revoke` does.
    pub fn revoke_logins(&self) {
        lock(&self.state).tokens.clear();
    }
}

impl Drop for FakeVault {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn errors(status: StatusCode, list: &[&str]) -> Response {
    (status, Json(json!({ "errors": list }))).into_response()
}

fn namespace_ok(st: &VaultState, headers: &HeaderMap) -> bool {
    match &st.namespace {
        None => true,
        Some(ns) => headers
            .get("x-vault-namespace")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_matches('/') == ns.trim_matches('/')),
    }
}

async fn login(
    State(state): State<Arc<Mutex<VaultState>>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let mut st = lock(&state);
    if !namespace_ok(&st, &headers) {
        return errors(StatusCode::FORBIDDEN, &["permission denied"]);
    }
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    if field("role_id") != ROLE_ID || field("secret_id") != SECRET_ID {
        return errors(StatusCode::BAD_REQUEST, &["invalid role or secret ID"]);
    }
    st.logins += 1;
    let token = format!("hvs.approle-token-{}", st.logins);
    st.tokens.push(token.clone());
    Json(json!({
        "request_id": format!("login-{}", st.logins),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": null,
        "wrap_info": null,
        "warnings": null,
        "auth": {
            "client_token": token,
            "accessor": format!("accessor-{}", st.logins),
            "policies": ["default", "read-secrets"],
            "token_policies": ["default", "read-secrets"],
            "metadata": { "role_name": "sandbox" },
            "lease_duration": 1200,
            "renewable": true,
        }
    }))
    .into_response()
}

async fn read(
    State(state): State<Arc<Mutex<VaultState>>>,
    Path((mount, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut st = lock(&state);
    let token = headers
        .get("x-vault-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let known = token == ROOT_TOKEN || st.tokens.iter().any(|t| t == token);
    if !known || !namespace_ok(&st, &headers) {
        return errors(StatusCode::FORBIDDEN, &["permission denied"]);
    }
    let key = format!("{mount}/{}", path.trim_matches('/'));
    *st.reads.entry(key.clone()).or_default() += 1;
    let Some(versions) = st.secrets.get(&key) else {
        return errors(StatusCode::NOT_FOUND, &[]);
    };
    let version = versions.len();
    let data = versions.last().cloned().unwrap_or(Value::Null);
    Json(json!({
        "request_id": format!("read-{version}"),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": {
            "data": data,
            "metadata": {
                "created_time": "2026-01-01T00:00:00.000000Z",
                "custom_metadata": null,
                "deletion_time": "",
                "destroyed": false,
                "version": version,
            }
        },
        "wrap_info": null,
        "warnings": null,
        "auth": null,
    }))
    .into_response()
}
