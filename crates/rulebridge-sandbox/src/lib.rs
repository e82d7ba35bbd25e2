//! A local fake of the vendor APIs the provider kits talk to, for tests, benchmarks and demos.
//!
//! One HTTP server on `127.0.0.1` hosts every fake under its own prefix, so a provider's base
//! URL in sandbox mode is `http://127.0.0.1:PORT/<provider>`:
//!
//! | prefix | fakes |
//! | --- | --- |
//! | `/hubspot` | HubSpot CRM v3 contacts, properties, search, batch, OAuth connect and refresh |
//! | `/salesforce` | Salesforce REST v58.0 (Lead, Contact), SOQL subset, composite, OAuth connect and refresh |
//! | `/chatwoot` | Chatwoot application API contacts |
//! | `/jamf` | Jamf Pro API (tokens, departments, computers inventory) and Classic computers |
//! | `/jamf-bootstrap` | the Jamf bootstrap API of the CRM integration guide |
//! | `/usersync` | the CRM's internal user-sync endpoint |
//! | `/taskcrm` | the 5-entity project CRM API |
//! | `/_sandbox` | the control API: state, reset, faults, token expiry |
//!
//! Faults (errors, latency, dropped connections, lowered rate limits) are drawn from one
//! random generator seeded by [`SandboxConfig::seed`]: the same sequence of requests meets the
//! same faults.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use rulebridge_sandbox::{self as sandbox, SandboxConfig};
//! let sb = sandbox::start(SandboxConfig::default()).await?;
//! println!("HubSpot at {}", sb.base_url("hubspot"));
//! let state = sb.state();
//! assert!(state.records("hubspot", "contacts").is_empty());
//! sb.shutdown().await;
//! # Ok(()) }
//! ```

// Helpers return a ready vendor error response as their `Err`: that is the point of them.
#![allow(clippy::result_large_err)]

mod chatwoot;
mod control;
mod echo;
mod faults;
mod hubspot;
mod jamf;
mod jamf_bootstrap;
mod oauth;
mod ratelimit;
mod salesforce;
mod store;
mod taskcrm;
mod usersync;
mod util;
pub mod vault;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use faults::Faults;
pub use store::{EndpointStats, LogEntry, ProviderState, StateSnapshot};

use store::Store;

/// Every provider prefix the sandbox serves.
pub const PROVIDERS: &[&str] = &[
    "hubspot",
    "salesforce",
    "chatwoot",
    "jamf",
    "jamf-bootstrap",
    "usersync",
    "taskcrm",
];

/// The provider kits of `rules/providers` by name: the path of their `base_url` and of their
/// OAuth2 `token_url` (if any) on the sandbox.
pub const KITS: &[(&str, &str, Option<&str>)] = &[
    ("hubspot", "/hubspot", None),
    (
        "salesforce",
        "/salesforce/services/data/v58.0",
        Some("/salesforce/services/oauth2/token"),
    ),
    ("chatwoot", "/chatwoot/api/v1", None),
    ("jamf", "/jamf", None),
    ("jamf_bootstrap", "/jamf-bootstrap", None),
    ("usersync_crm", "/usersync", None),
    ("task_crm", "/taskcrm/api/v1", Some("/taskcrm/oauth/token")),
];

/// The kits with a `connect:` section (OAuth connect): the paths of their authorize and token
/// endpoints on the sandbox.
pub const CONNECT: &[(&str, &str, &str)] = &[
    (
        "hubspot",
        "/hubspot/oauth/authorize",
        "/hubspot/oauth/v1/token",
    ),
    (
        "salesforce",
        "/salesforce/services/oauth2/authorize",
        "/salesforce/services/oauth2/token",
    ),
];

/// The sandbox's credentials, by the environment variable the provider kits and flows in
/// `rules/` read them from, so `run --sandbox` can supply them.
pub const CREDENTIALS: &[(&str, &str)] = &[
    ("HUBSPOT_TOKEN", hubspot::STATIC_TOKEN),
    ("HUBSPOT_CLIENT_ID", hubspot::CLIENT_ID),
    ("HUBSPOT_CLIENT_SECRET", hubspot::CLIENT_SECRET),
    ("HUBSPOT_REFRESH_TOKEN", hubspot::REFRESH_TOKEN),
    ("HUBSPOT_REDIRECT_URL", hubspot::REDIRECT_URL),
    ("SALESFORCE_CLIENT_ID", salesforce::CLIENT_ID),
    ("SALESFORCE_CLIENT_SECRET", salesforce::CLIENT_SECRET),
    ("SALESFORCE_REFRESH_TOKEN", salesforce::REFRESH_TOKEN),
    ("SALESFORCE_REDIRECT_URL", salesforce::REDIRECT_URL),
    ("CHATWOOT_API_KEY", chatwoot::TOKEN),
    ("CHATWOOT_ACCOUNT_ID", "1"),
    ("JAMF_USERNAME", jamf::USERNAME),
    ("JAMF_PASSWORD", jamf::PASSWORD),
    ("JAMF_CLIENT_ID", jamf::CLIENT_ID),
    ("JAMF_CLIENT_SECRET", jamf::CLIENT_SECRET),
    ("JAMF_API_TOKEN", jamf_bootstrap::TOKEN),
    ("JAMF_ENCRYPTION_KEY", jamf_bootstrap::ENCRYPTION_KEY),
    ("INTERNAL_API_KEY", usersync::API_KEY),
    ("TASK_CRM_CLIENT_ID", taskcrm::CLIENT_ID),
    ("TASK_CRM_CLIENT_SECRET", taskcrm::CLIENT_SECRET),
];

/// How a sandbox behaves. Every limit is the vendor's documented default unless changed.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Seeds fault decisions, ids and tokens: the same requests in the same order get the
    /// same answers.
    pub seed: u64,
    pub faults: Faults,
    /// HubSpot requests per 10 s rolling window, per token (free/starter: 100).
    pub hubspot_rate_limit: u32,
    /// HubSpot CRM search requests per second, per token (4).
    pub hubspot_search_rate_limit: u32,
    /// How long a HubSpot write takes to become visible to search (the real index lags by a
    /// few seconds; zero by default so tests are quick).
    pub hubspot_search_lag: Duration,
    /// Return batch results in a shuffled (seeded) order, as HubSpot does not promise input
    /// order; clients must match results by id or e-mail.
    pub hubspot_shuffle_batch_results: bool,
    /// Chatwoot contact search (`GET /contacts/search`) requests per minute, per account
    /// (100); Chatwoot throttles no other contact endpoint per account.
    pub chatwoot_search_rate_limit: u32,
    /// Chatwoot requests per minute, per client address, on every endpoint (3000).
    pub chatwoot_ip_rate_limit: u32,
    /// Whether a contact's e-mail and identifier are unique per account, as Chatwoot
    /// validates them (422 "has already been taken"). Off, a second contact with the same
    /// e-mail is stored: tests use it to prove a client never relies on the vendor to catch
    /// its own repeated creates.
    pub chatwoot_unique_contacts: bool,
    /// Salesforce API requests per rolling 24 h (the `Sforce-Limit-Info` total; 5000).
    pub salesforce_api_limit: u32,
    /// Salesforce duplicate handling: a unique Email field (`DUPLICATE_VALUE`) or a duplicate
    /// rule (`DUPLICATES_DETECTED`).
    pub salesforce_duplicates: SalesforceDuplicates,
    /// Task CRM requests per minute, per client (100).
    pub taskcrm_rate_limit: u32,
    /// User-sync requests per 15 minutes, per client address (100).
    pub usersync_rate_limit: u32,
    /// Lifetime of issued tokens (HubSpot OAuth, Salesforce sessions, Jamf, task CRM).
    pub token_ttl: Duration,
    /// Request log entries kept per provider (oldest dropped first).
    pub log_capacity: usize,
}

/// How the Salesforce fake reports a second record with an existing e-mail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SalesforceDuplicates {
    /// `Email` is a unique field: 400 `DUPLICATE_VALUE` naming the existing record.
    #[default]
    UniqueEmail,
    /// An active duplicate rule: 400 `DUPLICATES_DETECTED` with the match result; the
    /// `Sforce-Duplicate-Rule-Header: allowSave=true` header saves anyway.
    DuplicateRule,
    /// No uniqueness at all (the out-of-the-box Lead object).
    None,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            port: 0,
            seed: 0,
            faults: Faults::default(),
            hubspot_rate_limit: 100,
            hubspot_search_rate_limit: 4,
            hubspot_search_lag: Duration::ZERO,
            hubspot_shuffle_batch_results: true,
            chatwoot_search_rate_limit: 100,
            chatwoot_ip_rate_limit: 3000,
            chatwoot_unique_contacts: true,
            salesforce_api_limit: 5000,
            salesforce_duplicates: SalesforceDuplicates::UniqueEmail,
            taskcrm_rate_limit: 100,
            usersync_rate_limit: 100,
            token_ttl: Duration::from_secs(30 * 60),
            log_capacity: 10_000,
        }
    }
}

/// A running sandbox. Dropping it stops the server (open connections are closed).
pub struct Sandbox {
    addr: SocketAddr,
    store: Arc<Store>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// Marks a response whose connection must be closed without sending it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DropConnection;

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// Starts a sandbox on 127.0.0.1.
pub async fn start(config: SandboxConfig) -> std::io::Result<Sandbox> {
    let listener = TcpListener::bind(("127.0.0.1", config.port)).await?;
    let addr = listener.local_addr()?;
    let store = Arc::new(Store::new(config, addr));
    let router = router(store.clone());
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(serve(listener, router, stopped));
    Ok(Sandbox {
        addr,
        store,
        stop,
        task: Some(task),
    })
}

/// Each fake gets only its own vendor's state; the control API gets the whole store.
fn router(store: Arc<Store>) -> Router {
    Router::new()
        .nest("/hubspot", hubspot::router(store.hubspot.clone()))
        .nest("/salesforce", salesforce::router(store.salesforce.clone()))
        .nest("/chatwoot", chatwoot::router(store.chatwoot.clone()))
        .nest("/jamf", jamf::router(store.jamf.clone()))
        .nest(
            "/jamf-bootstrap",
            jamf_bootstrap::router(store.bootstrap.clone()),
        )
        .nest("/usersync", usersync::router(store.usersync.clone()))
        .nest("/taskcrm", taskcrm::router(store.taskcrm.clone()))
        .nest("/_sandbox", control::router(store.clone()))
        .fallback(|| async {
            (
                http::StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({
                    "error": "no such sandbox provider",
                    "providers": PROVIDERS,
                })),
            )
        })
        .layer(axum::middleware::from_fn_with_state(store, echo::layer))
}

/// The accept loop: owning it lets a fault close a connection without answering.
async fn serve(listener: TcpListener, router: Router, mut stopped: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    // Out of file descriptors and the like: back off briefly.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let peer = _peer;
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                        let mut router = router.clone();
                        let mut req = req.map(axum::body::Body::new);
                        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                        async move {
                            let resp = match tower::Service::call(&mut router, req).await {
                                Ok(r) => r,
                                Err(e) => match e {},
                            };
                            if resp.extensions().get::<DropConnection>().is_some() {
                                Err(Dropped)
                            } else {
                                Ok::<_, Dropped>(resp)
                            }
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

impl Sandbox {
    /// The server's address (always 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL of one provider's fake, e.g. `http://127.0.0.1:PORT/hubspot`. Kit names
    /// (`jamf_bootstrap`, `usersync_crm`, `task_crm`) are accepted too.
    pub fn base_url(&self, provider: &str) -> String {
        let p = match provider.trim_matches('/') {
            "jamf_bootstrap" => "jamf-bootstrap",
            "usersync_crm" => "usersync",
            "task_crm" => "taskcrm",
            other => other,
        };
        format!("http://{}/{p}", self.addr)
    }

    /// The base URL a provider kit in `rules/providers` would use in sandbox mode (see
    /// [`KITS`]), e.g. `http://127.0.0.1:PORT/salesforce/services/data/v58.0`.
    pub fn kit_base_url(&self, kit: &str) -> Option<String> {
        let (_, base, _) = KITS.iter().find(|(k, _, _)| *k == kit)?;
        Some(format!("http://{}{base}", self.addr))
    }

    /// The token URL of a kit with OAuth2 auth (Salesforce, task CRM), in sandbox mode.
    pub fn kit_token_url(&self, kit: &str) -> Option<String> {
        let (_, _, token) = KITS.iter().find(|(k, _, _)| *k == kit)?;
        token.map(|t| format!("http://{}{t}", self.addr))
    }

    /// The authorize and token URLs of a kit's `connect:` section in sandbox mode (see
    /// [`CONNECT`]).
    pub fn kit_connect_urls(&self, kit: &str) -> Option<(String, String)> {
        let (_, authorize, token) = CONNECT.iter().find(|(k, _, _)| *k == kit)?;
        Some((
            format!("http://{}{authorize}", self.addr),
            format!("http://{}{token}", self.addr),
        ))
    }

    /// A snapshot of every provider's records, counters and request log.
    pub fn state(&self) -> StateSnapshot {
        self.store.snapshot(None, true)
    }

    /// Forgets every record, counter, issued token and rate-limit window, restores the
    /// configured faults and re-seeds the random generator.
    pub fn reset(&self) {
        self.store.reset();
    }

    /// The fault settings in force.
    pub fn faults(&self) -> Faults {
        self.store.shared().faults()
    }

    /// Replaces the fault settings (the random sequence continues).
    pub fn set_faults(&self, faults: Faults) {
        self.store.shared().set_faults(faults);
    }

    /// Makes every issued token expire now; returns how many there were.
    pub fn expire_tokens(&self) -> usize {
        self.store.tokens_expire_all()
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
