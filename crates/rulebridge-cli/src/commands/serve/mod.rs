//! `rulebridge serve`: the library behind HTTP.
//!
//! Routes: `/healthz`, `/metrics`, `/openapi.json`, `POST /v1/flows/{flow}/records`,
//! `GET /v1/runs/{id}`, `GET /v1/log`, `GET /v1/dlq`, `POST /v1/connections/{provider}/test`,
//! `GET /v1/providers/{provider}/fields`, OAuth connect (`/v1/oauth/{provider}/start|callback`,
//! `DELETE /v1/integrations/{provider}`, `GET /v1/integrations/status`), and the endpoints rule
//! files declare (`kind: endpoint`, with their own header-secret auth). `/v1` requests carry a
//! tenant's API key ([`auth`]). Every response body passes the secret scrubber. A record accepted is
//! sent to the end and recorded even when its client goes away or the server is asked to stop:
//! shutdown (SIGTERM, Ctrl-C) stops accepting, then waits for the records in flight.

mod auth;
mod endpoint;
mod metrics;
mod oauth;
mod openapi;
mod providers;
mod records;

pub use auth::{Rate, parse_rate, resolve_tenant, tenant_header};

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use rulebridge::Engine;
use rulebridge::exec::RunOptions;
use rulebridge::state::{ApiKeys, CredentialStore, OAuthStates, SqlStore};

use crate::common::{build, sandbox_credentials};

/// What `serve` was asked to do.
pub struct ServeArgs {
    pub listen: String,
    pub rules: PathBuf,
    pub sandbox: bool,
    pub state: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    pub record_timeout: u64,
    /// `/v1` without API keys, the tenant from `X-Tenant-ID`.
    pub no_auth: bool,
    /// Requests allowed per key (per tenant with `no_auth`).
    pub key_rate: Rate,
}

/// What every handler shares.
pub struct App {
    pub engine: Arc<Engine>,
    pub store: Arc<SqlStore>,
    pub rules_hash: String,
    pub metrics: metrics::Metrics,
    pub options: RunOptions,
    /// The endpoints the rule files declare, by their index in the plan.
    pub endpoints: Vec<endpoint::Endpoint>,
    /// Seals dead letters of records with sensitive fields (the master key, when set).
    pub input_key: Option<rulebridge::secrets::sealed::MasterKey>,
    /// Each batch of records in flight holds a read guard; shutdown takes the write lock,
    /// which waits for them.
    pub drain: Arc<tokio::sync::RwLock<()>>,
    /// API keys and the per-key rate limit.
    pub auth: auth::Auth,
    /// What a per-tenant engine (connection tests, field discovery) is built from.
    pub rules: PathBuf,
    pub sandbox: bool,
    /// Each kit's base URL in the sandbox (with `--sandbox`).
    pub sandbox_urls: Vec<(String, String)>,
    /// The tenants' credentials and OAuth tokens (when the environment holds the master key).
    pub creds: Option<Arc<CredentialStore>>,
    /// The `state` values of OAuth connections in progress.
    pub states: OAuthStates,
    /// Per (tenant, provider): when the stored tokens were issued, and their connector.
    pub oauth_connectors: OAuthConnectors,
}

/// Per (tenant, provider), see [`oauth::connector`].
type ConnectorMap = std::collections::HashMap<
    (String, String),
    (
        (i64, i64, Option<i64>),
        Arc<dyn rulebridge::connect::Connector>,
    ),
>;
pub type OAuthConnectors = std::sync::Mutex<ConnectorMap>;

impl App {
    fn oauth_connectors(&self) -> std::sync::MutexGuard<'_, ConnectorMap> {
        self.oauth_connectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// One field of a request that is not as it must be.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error answer: a status, a message and, for a request that is not valid, the fields.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub details: Vec<FieldError>,
    /// Headers of the answer (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            details: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn invalid(details: Vec<FieldError>) -> Self {
        ApiError {
            details,
            ..ApiError::new(StatusCode::BAD_REQUEST, "the request is not valid")
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if !self.details.is_empty() {
            body["details"] = json!(self.details);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<rulebridge::state::StoreError> for ApiError {
    fn from(e: rulebridge::state::StoreError) -> Self {
        ApiError::internal(format!("state store: {e}"))
    }
}

impl From<rulebridge::Error> for ApiError {
    fn from(e: rulebridge::Error) -> Self {
        match e {
            rulebridge::Error::UnknownFlow { .. } => ApiError::not_found(e.to_string()),
            e => ApiError::internal(e),
        }
    }
}

/// The routes over `app` (the declared endpoints included).
pub fn router(app: Arc<App>, max_body: usize) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::handler))
        .route("/openapi.json", get(openapi::handler))
        .route("/v1/flows/{flow}/records", post(records::post_records))
        .route("/v1/runs/{id}", get(records::get_run))
        .route("/v1/log", get(records::get_log))
        .route("/v1/dlq", get(records::get_dlq))
        .route("/v1/oauth/{provider}/start", get(oauth::start))
        .route(
            "/v1/oauth/{provider}/callback",
            get(oauth::callback).post(oauth::callback),
        )
        .route("/v1/integrations/{provider}", delete(oauth::disconnect))
        .route("/v1/integrations/status", get(oauth::status))
        .route(
            "/v1/connections/{provider}/test",
            post(providers::test_connection),
        )
        .route("/v1/providers/{provider}/fields", get(providers::fields));
    for (n, e) in app.endpoints.iter().enumerate() {
        router = router.route(&e.plan.path, endpoint::route(&e.plan.method, n));
    }
    router
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(middleware::from_fn(scrub_body))
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

async fn healthz() -> axum::Json<Value> {
    axum::Json(json!({ "status": "ok" }))
}

/// Times every request for `/metrics`.
async fn observe(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    app.metrics.request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Scrubs every response body of the secrets resolved so far (and their encodings).
async fn scrub_body(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.extensions().get::<oauth::Scrubbed>().is_some() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("a response body could not be read: {e}");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let scrubbed = match std::str::from_utf8(&bytes) {
        Ok(text) => match rulebridge::secrets::scrub::scrub(text) {
            std::borrow::Cow::Borrowed(_) => bytes,
            std::borrow::Cow::Owned(s) => s.into_bytes().into(),
        },
        // Every body served is JSON or text.
        Err(_) => bytes,
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(scrubbed))
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("Ctrl-C cannot be watched: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("SIGTERM cannot be watched: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

pub fn serve(args: ServeArgs) -> anyhow::Result<u8> {
    let addr: SocketAddr = args
        .listen
        .parse()
        .map_err(|e| anyhow::anyhow!("--listen {}: not an address and port: {e}", args.listen))?;
    if args.sandbox && args.state.is_none() && !args.no_auth {
        anyhow::bail!(
            "serve --sandbox keeps its state in a scratch file of its own, where no API key can be: \
             pass --state FILE (and `rulebridge keys create --tenant T --state FILE`), or --no-auth"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let sandbox = if args.sandbox {
        let sb = rt.block_on(rulebridge_sandbox::start(
            rulebridge_sandbox::SandboxConfig::default(),
        ))?;
        eprintln!("sandbox serving on {}", sb.url());
        Some(sb)
    } else {
        None
    };
    let mut builder = sandbox_credentials(
        Engine::builder()
            .rules_dir(&args.rules)
            .field_cache(!args.sandbox),
        args.sandbox,
    );
    let mut sandbox_urls = Vec::new();
    if let Some(sb) = &sandbox {
        for (kit, _, _) in rulebridge_sandbox::KITS {
            if let Some(url) = sb.kit_base_url(kit) {
                sandbox_urls.push((kit.to_string(), url.clone()));
                builder = builder.base_url(*kit, url);
            }
        }
        for (kit, _, _) in rulebridge_sandbox::CONNECT {
            if let Some((authorize, token)) = sb.kit_connect_urls(kit) {
                builder = builder.connect_urls(*kit, authorize, token);
            }
        }
    }
    let engine = build(builder)?;
    if let Some(sb) = &sandbox {
        let flows: Vec<String> = engine.plan().flows().map(|f| f.name.clone()).collect();
        for flow in flows {
            crate::commands::run::prepare_sandbox(&engine, sb, &flow, &rt)?;
        }
    }
    let endpoints = endpoint::load(&engine, &args.rules);
    // The built-in sandbox starts empty each time: its state lives in a file of its own.
    let scratch = (args.sandbox && args.state.is_none())
        .then(|| std::env::temp_dir().join(format!("rulebridge-serve-{}.db", std::process::id())));
    let spec = match (&args.state, &scratch) {
        (Some(s), _) => s.clone(),
        (None, Some(p)) => p.display().to_string(),
        (None, None) => crate::commands::state::DEFAULT_STATE.to_string(),
    };
    let store = rt.block_on(crate::commands::state::open(&spec))?;
    let keys = if args.no_auth {
        eprintln!(
            "warning: --no-auth: /v1 accepts requests without an API key and takes the tenant \
             from X-Tenant-ID; anyone who reaches {addr} acts as any tenant"
        );
        None
    } else {
        let keys = ApiKeys::new(store.db().clone());
        let active = rt
            .block_on(keys.list(None))?
            .iter()
            .filter(|k| !k.revoked())
            .count();
        if active == 0 {
            eprintln!(
                "no API key yet: every /v1 request is refused until one is made with \
                 `rulebridge keys create --tenant T --state {spec}`"
            );
        }
        Some(keys)
    };
    // Connection tests, field discovery and OAuth tokens use the tenant's stored credentials
    // when the master key is set; without it, OAuth connect answers 503 and everything else
    // uses the environment's credentials.
    let creds = if crate::commands::creds::has_master_key() {
        Some(rt.block_on(crate::commands::creds::unlock(&spec))?)
    } else {
        None
    };
    let options = RunOptions {
        // A request is small; many run at once.
        threads: 1,
        concurrency: 8,
        record_deadline: Some(Duration::from_secs(args.record_timeout.max(1))),
        ..RunOptions::default()
    };
    let app = Arc::new(App {
        engine: Arc::new(engine),
        store: store.clone(),
        rules_hash: crate::commands::state::rules_hash(&args.rules),
        metrics: metrics::Metrics::default(),
        options,
        endpoints,
        input_key: crate::commands::state::input_key(&rt, &store)?,
        drain: Arc::new(tokio::sync::RwLock::new(())),
        auth: auth::Auth::new(keys, args.key_rate),
        rules: args.rules.clone(),
        sandbox: args.sandbox,
        sandbox_urls,
        creds,
        states: OAuthStates::new(store.db().clone()),
        oauth_connectors: Default::default(),
    });
    let drain = app.drain.clone();
    let router = router(app, args.max_body.max(1));
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr()?;
        {
            let mut out = crate::common::stdout();
            writeln!(out, "listening on http://{local}")?;
            out.flush()?;
        }
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        eprintln!("stopping: waiting for the records in flight");
        let _all_done = drain.write().await;
        anyhow::Ok(())
    });
    rt.block_on(store.db().close());
    if let Some(p) = &scratch {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
        }
    }
    if let Some(sb) = sandbox {
        rt.block_on(sb.shutdown());
    }
    result?;
    eprintln!("stopped");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handler that echoes a secret (as a provider error would) answers with it masked, in
    /// clear and base64 alike.
    #[tokio::test]
    async fn response_bodies_are_scrubbed() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let canary = "serve-canary-3f9a1c77d2";
        rulebridge::secrets::register(canary);
        let b64 = "c2VydmUtY2FuYXJ5LTNmOWExYzc3ZDI=";
        let router: Router = Router::new()
            .route(
                "/echo",
                get(move || async move {
                    ApiError::internal(format!("provider said: bad token {canary} ({b64})"))
                }),
            )
            .layer(middleware::from_fn(scrub_body));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        let resp = reqwest::get(format!("http://{addr}/echo"))
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 500);
        let text = resp.text().await.expect("body");
        server.abort();
        assert!(!text.contains(canary), "{text}");
        assert!(!text.contains(b64), "{text}");
        assert!(text.contains(rulebridge::secrets::MASK), "{text}");
    }
}
