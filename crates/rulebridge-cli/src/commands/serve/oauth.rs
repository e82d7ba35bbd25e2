//! OAuth connect and integrations: `GET /v1/oauth/{provider}/start`,
//! `GET|POST /v1/oauth/{provider}/callback`, `DELETE /v1/integrations/{provider}`,
//! `GET /v1/integrations/status`.
//!
//! The vendor knowledge (URLs, scopes, credential names) is the kit's `connect:` section. A
//! start hands out an authorize URL whose `state` is random, single-use, bound to the tenant
//! and provider, valid for [`STATE_TTL_MS`] and kept hashed in the store; the callback checks
//! it, exchanges the code and seals the tokens in the tenant's credential store, from where
//! the tenant's records are sent with them (see [`session`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use rulebridge::connect::oauth::{OAuthSession, TokenSet};
use rulebridge::state::{RunFilter, Store, TenantTokens};

use super::{ApiError, App, FieldError, resolve_tenant};

/// How long a `state` can be used: 10 minutes.
pub const STATE_TTL_MS: i64 = 10 * 60 * 1000;

/// What the token endpoint is given to answer a code exchange.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Marks a response whose body was scrubbed by its handler (which left the public parts of
/// an authorize URL as they are); the scrubbing layer passes it through.
#[derive(Clone, Copy, Debug)]
pub struct Scrubbed;

fn unavailable(message: String) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// The provider, if its kit has a `connect:` section.
fn connectable(app: &App, provider: &str) -> Result<(), ApiError> {
    match app.engine.plan().provider(provider) {
        Some(p) if p.connect().is_some() => Ok(()),
        Some(_) => Err(ApiError::not_found(format!(
            "provider `{provider}` has no OAuth connect (its kit has no `connect:` section)"
        ))),
        None => Err(ApiError::not_found(format!("no provider `{provider}`"))),
    }
}

/// The tenant's connection to `provider` in the credential store.
fn tokens(app: &App, tenant: &str, provider: &str) -> Result<TenantTokens, ApiError> {
    let creds = app.creds.clone().ok_or_else(|| {
        unavailable(format!(
            "OAuth connect keeps tokens in the encrypted credential store: start `rulebridge serve` with {} (or {}) set",
            rulebridge::state::MASTER_KEY_VAR,
            rulebridge::state::MASTER_PASSPHRASE_VAR
        ))
    })?;
    Ok(TenantTokens {
        creds,
        tenant: tenant.to_string(),
        provider: provider.to_string(),
    })
}

/// The kit's `connect:` with its references resolved (off the async threads: a reference
/// may be a Vault read).
async fn oauth_app(
    app: &Arc<App>,
    provider: &str,
) -> Result<rulebridge::connect::oauth::OAuthApp, ApiError> {
    let engine = app.engine.clone();
    let p = provider.to_string();
    tokio::task::spawn_blocking(move || engine.oauth_app(&p))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| unavailable(format!("OAuth connect is not configured: {e}")))
}

/// `GET /v1/oauth/{provider}/start`.
pub async fn start(
    State(app): State<Arc<App>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = resolve_tenant(&app, &headers).await?;
    connectable(&app, &provider)?;
    tokens(&app, &tenant, &provider)?;
    let oauth = oauth_app(&app, &provider).await?;
    let state = app
        .states
        .issue(&tenant, &provider, STATE_TTL_MS)
        .await
        .map_err(|e| ApiError::internal(format!("state store: {e}")))?;
    // The client id and redirect URI are public (RFC 6749 sections 2.2 and 3.1.2) and must
    // reach the browser as they are, even where they were read like secrets; everything else
    // is scrubbed here, and the layer leaves this body alone.
    let scrub = |s: &str| rulebridge::secrets::scrub::scrub(s).into_owned();
    let url = oauth.authorize_url_with(&state, &scrub);
    let body = json!({
        "provider": provider,
        "authorize_url": url,
        "state": state,
        "expires_in": STATE_TTL_MS / 1000,
    });
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    response.extensions_mut().insert(Scrubbed);
    Ok(response)
}

/// The callback's parameters: the query, and for a POST a JSON or form body (the seed's
/// frontend posts `{code, state}`).
fn callback_params(
    query: HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<HashMap<String, String>, ApiError> {
    let mut params = query;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(params);
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|c| c.contains("json"));
    if json {
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::invalid(vec![FieldError::new("body", format!("not JSON: {e}"))])
        })?;
        let Value::Object(m) = v else {
            return Err(ApiError::invalid(vec![FieldError::new(
                "body",
                "must be an object `{code, state}`",
            )]));
        };
        for (k, v) in m {
            if let Value::String(s) = v {
                params.insert(k, s);
            }
        }
    } else {
        params.extend(url::form_urlencoded::parse(body).into_owned());
    }
    Ok(params)
}

/// `GET|POST /v1/oauth/{provider}/callback?code&state`.
pub async fn callback(
    State(app): State<Arc<App>>,
    Path(provider): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let tenant = resolve_tenant(&app, &headers).await?;
    connectable(&app, &provider)?;
    let store = tokens(&app, &tenant, &provider)?;
    let params = callback_params(query, &headers, &body)?;
    // The vendor redirects with `error` when the user declines (RFC 6749 section 4.1.2.1).
    if let Some(e) = params.get("error") {
        let said = params
            .get("error_description")
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        return Err(bad_request(format!(
            "`{provider}` did not authorize the connection: {e}{said}"
        )));
    }
    let missing: Vec<FieldError> = ["code", "state"]
        .iter()
        .filter(|k| params.get(**k).is_none_or(|v| v.is_empty()))
        .map(|k| FieldError::new(*k, "is required"))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::invalid(missing));
    }
    let (code, state) = (&params["code"], &params["state"]);
    // The code is a credential until it is exchanged.
    rulebridge::secrets::register(code);
    match app.states.consume(state, &tenant, &provider).await {
        Ok(Ok(())) => {}
        Ok(Err(refused)) => return Err(bad_request(refused.to_string())),
        Err(e) => return Err(ApiError::internal(format!("state store: {e}"))),
    }
    let oauth = oauth_app(&app, &provider).await?;
    let tokens = oauth
        .exchange_code(code, EXCHANGE_TIMEOUT)
        .await
        .map_err(|e| {
            let status = if e.kind == rulebridge::connect::ErrorKind::Transient {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::BAD_REQUEST
            };
            ApiError::new(status, format!("`{provider}`: {}", e.message))
        })?;
    store
        .store(&tokens)
        .await
        .map_err(|e| ApiError::internal(format!("credential store: {e}")))?;
    tracing::info!(%tenant, %provider, "connected over OAuth");
    Ok(Json(json!({
        "provider": provider,
        "connected": true,
        "connected_at": tokens.connected_at,
        "expires_at": tokens.expires_at,
        "scope": tokens.scope,
    })))
}

/// `DELETE /v1/integrations/{provider}`: forgets the tenant's tokens.
pub async fn disconnect(
    State(app): State<Arc<App>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let tenant = resolve_tenant(&app, &headers).await?;
    connectable(&app, &provider)?;
    let removed = tokens(&app, &tenant, &provider)?
        .remove()
        .await
        .map_err(|e| ApiError::internal(format!("credential store: {e}")))?;
    Ok(Json(json!({
        "provider": provider,
        "connected": false,
        "disconnected": removed,
    })))
}

/// `GET /v1/integrations/status`: per provider with OAuth connect, for the tenant: whether
/// connected and since when, the latest run of a flow writing to it, and its latest failed
/// record.
pub async fn status(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let tenant = resolve_tenant(&app, &headers).await?;
    let mut out = Map::new();
    let providers: Vec<String> = app
        .engine
        .plan()
        .providers()
        .filter(|p| p.connect().is_some())
        .map(|p| p.name().to_string())
        .collect();
    for provider in providers {
        let connection = tokens(&app, &tenant, &provider)?
            .load()
            .await
            .map_err(|e| ApiError::internal(format!("credential store: {e}")))?;
        let mut last_sync: Option<rulebridge::state::Run> = None;
        let flows: Vec<String> = app
            .engine
            .plan()
            .flows()
            .filter(|f| f.provider == provider)
            .map(|f| f.name.clone())
            .collect();
        for flow in flows {
            let filter = RunFilter {
                tenant: tenant.clone(),
                flow: Some(flow),
                limit: Some(1),
            };
            if let Some(run) = app.store.runs(&filter).await?.into_iter().next()
                && last_sync
                    .as_ref()
                    .is_none_or(|l| run.started_at > l.started_at)
            {
                last_sync = Some(run);
            }
        }
        let last_error = rulebridge::state::last_failure(app.store.db(), &tenant, &provider)
            .await
            .map_err(|e| ApiError::internal(format!("state store: {e}")))?;
        out.insert(
            provider,
            json!({
                "connected": connection.is_some(),
                "connected_at": connection.as_ref().map(|t| t.connected_at),
                "expires_at": connection.as_ref().and_then(|t| t.expires_at),
                "last_sync": last_sync.map(|r| json!({
                    "run": r.id, "flow": r.flow, "status": r.status.as_str(),
                    "at": r.ended_at.unwrap_or(r.started_at), "counters": r.counters,
                })),
                "last_error": last_error,
            }),
        );
    }
    Ok(Json(json!({ "tenant": tenant, "integrations": out })))
}

/// The tenant's OAuth connection to `provider` as a session for its connector (refreshed
/// tokens are stored back), or `None` when the tenant has not connected (the kit's own
/// `auth` is used then).
pub async fn session(
    app: &Arc<App>,
    tenant: &str,
    provider: &str,
) -> Result<Option<OAuthSession>, ApiError> {
    if app.creds.is_none()
        || app
            .engine
            .plan()
            .provider(provider)
            .is_none_or(|p| p.connect().is_none())
    {
        return Ok(None);
    }
    let store = tokens(app, tenant, provider)?;
    let Some(tokens): Option<TokenSet> = store
        .load()
        .await
        .map_err(|e| ApiError::internal(format!("credential store: {e}")))?
    else {
        return Ok(None);
    };
    let oauth = oauth_app(app, provider).await?;
    Ok(Some(OAuthSession {
        app: Arc::new(oauth),
        tokens,
        sink: Some(Arc::new(store)),
    }))
}

/// The connector of a tenant's OAuth connection to `provider`, if the tenant has one: built
/// once per stored token set and kept, so the tenant's requests share its token, connections
/// and rate limit. The stored tokens are read on every call: a disconnect, a new connection or
/// tokens refreshed (by this instance or another one sharing the store) take effect at once.
pub async fn connector(
    app: &Arc<App>,
    tenant: &str,
    provider: &str,
) -> Result<Option<Arc<dyn rulebridge::connect::Connector>>, ApiError> {
    let key = (tenant.to_string(), provider.to_string());
    let Some(session) = session(app, tenant, provider).await? else {
        app.oauth_connectors().remove(&key);
        return Ok(None);
    };
    let t = &session.tokens;
    let issued = (t.connected_at, t.refreshed_at, t.expires_at);
    if let Some((at, c)) = app.oauth_connectors().get(&key)
        && *at == issued
    {
        return Ok(Some(c.clone()));
    }
    let (engine, p) = (app.engine.clone(), provider.to_string());
    // Building reads the kit's field cache files: off the runtime's threads.
    let built = tokio::task::spawn_blocking(move || engine.oauth_connector(&p, session))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    app.oauth_connectors().insert(key, (issued, built.clone()));
    Ok(Some(built))
}
