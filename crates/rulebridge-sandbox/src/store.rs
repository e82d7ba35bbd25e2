//! In-memory state. [`Shared`] is what every fake may use (configuration, fault engine, request
//! log, random generator); each vendor's records and issued tokens live in its own
//! [`Vendor`] handle, so one vendor's fake cannot read or write another's data. The [`Store`]
//! holds every vendor's state for the control API (snapshot, reset, token expiry).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::faults::{FaultEngine, Faults};
use super::{
    SandboxConfig, chatwoot, hubspot, jamf, jamf_bootstrap, salesforce, taskcrm, usersync,
};

/// Locks a mutex, ignoring poisoning: a panicked request must not take the sandbox down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What every fake shares: configuration, faults, accounting and the seeded generator. No
/// vendor data lives here.
pub(crate) struct Shared {
    pub cfg: SandboxConfig,
    pub addr: SocketAddr,
    pub started: Instant,
    pub started_at: DateTime<Utc>,
    faults: Mutex<FaultEngine>,
    metrics: Mutex<Metrics>,
    rng: Mutex<StdRng>,
}

/// One vendor's state: created empty, rendered for `GET /_sandbox/state`.
pub(crate) trait VendorData: Send + 'static {
    fn new() -> Self;
    /// Stored records by collection, in id order.
    fn records(&self) -> BTreeMap<String, Vec<Value>>;
}

/// What one vendor's handlers get: the shared part (by `Deref`), its own data and its own
/// issued tokens.
pub(crate) struct Vendor<D> {
    shared: Arc<Shared>,
    data: Arc<Mutex<D>>,
    tokens: Arc<Mutex<Tokens>>,
}

impl<D> Clone for Vendor<D> {
    fn clone(&self) -> Self {
        Vendor {
            shared: self.shared.clone(),
            data: self.data.clone(),
            tokens: self.tokens.clone(),
        }
    }
}

impl<D> Deref for Vendor<D> {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl<D: VendorData> Vendor<D> {
    fn new(shared: Arc<Shared>) -> Vendor<D> {
        Vendor {
            shared,
            data: Arc::new(Mutex::new(D::new())),
            tokens: Arc::new(Mutex::new(Tokens::default())),
        }
    }

    fn reset(&self) {
        *lock(&self.data) = D::new();
        *lock(&self.tokens) = Tokens::default();
    }

    fn records(&self) -> BTreeMap<String, Vec<Value>> {
        lock(&self.data).records()
    }
}

impl<D> Vendor<D> {
    /// This vendor's records.
    pub fn data(&self) -> MutexGuard<'_, D> {
        lock(&self.data)
    }

    /// Tokens this vendor's token endpoints issued.
    pub fn tokens(&self) -> MutexGuard<'_, Tokens> {
        lock(&self.tokens)
    }

    /// The shared part alone (for the fault middleware).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }
}

/// Every vendor's state, for the control API. Vendor handlers never see it.
pub(crate) struct Store {
    shared: Arc<Shared>,
    pub hubspot: Vendor<hubspot::Data>,
    pub salesforce: Vendor<salesforce::Data>,
    pub chatwoot: Vendor<chatwoot::Data>,
    pub jamf: Vendor<jamf::Data>,
    pub bootstrap: Vendor<jamf_bootstrap::Data>,
    pub usersync: Vendor<usersync::Data>,
    pub taskcrm: Vendor<taskcrm::Data>,
}

impl Store {
    pub fn new(cfg: SandboxConfig, addr: SocketAddr) -> Store {
        let shared = Arc::new(Shared {
            faults: Mutex::new(FaultEngine::new(cfg.faults.clone(), cfg.seed)),
            metrics: Mutex::new(Metrics::default()),
            rng: Mutex::new(StdRng::seed_from_u64(cfg.seed ^ 0x05ee_d1d5)),
            started: Instant::now(),
            started_at: Utc::now(),
            addr,
            cfg,
        });
        Store {
            hubspot: Vendor::new(shared.clone()),
            salesforce: Vendor::new(shared.clone()),
            chatwoot: Vendor::new(shared.clone()),
            jamf: Vendor::new(shared.clone()),
            bootstrap: Vendor::new(shared.clone()),
            usersync: Vendor::new(shared.clone()),
            taskcrm: Vendor::new(shared.clone()),
            shared,
        }
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    pub fn reset(&self) {
        let s = &self.shared;
        *lock(&s.faults) = FaultEngine::new(s.cfg.faults.clone(), s.cfg.seed);
        *lock(&s.metrics) = Metrics::default();
        *lock(&s.rng) = StdRng::seed_from_u64(s.cfg.seed ^ 0x05ee_d1d5);
        self.hubspot.reset();
        self.salesforce.reset();
        self.chatwoot.reset();
        self.jamf.reset();
        self.bootstrap.reset();
        self.usersync.reset();
        self.taskcrm.reset();
    }

    /// Expires every live token of every vendor now; returns how many there were.
    pub fn tokens_expire_all(&self) -> usize {
        [
            &self.hubspot.tokens,
            &self.salesforce.tokens,
            &self.chatwoot.tokens,
            &self.jamf.tokens,
            &self.bootstrap.tokens,
            &self.usersync.tokens,
            &self.taskcrm.tokens,
        ]
        .iter()
        .map(|t| lock(t).expire_all())
        .sum()
    }

    /// Every provider's records and counters (or one provider's).
    pub fn snapshot(&self, only: Option<&str>, with_log: bool) -> StateSnapshot {
        let mut providers = BTreeMap::new();
        let metrics = lock(&self.shared.metrics).clone();
        for &name in super::PROVIDERS {
            if only.is_some_and(|o| o != name) {
                continue;
            }
            let records = match name {
                "hubspot" => self.hubspot.records(),
                "salesforce" => self.salesforce.records(),
                "chatwoot" => self.chatwoot.records(),
                "jamf" => self.jamf.records(),
                "jamf-bootstrap" => self.bootstrap.records(),
                "usersync" => self.usersync.records(),
                "taskcrm" => self.taskcrm.records(),
                _ => BTreeMap::new(),
            };
            let m = metrics.providers.get(name).cloned().unwrap_or_default();
            providers.insert(
                name.to_string(),
                ProviderState {
                    records,
                    requests: m.requests,
                    rate_limited: m.rate_limited,
                    injected_errors: m.injected_errors,
                    dropped: m.dropped,
                    endpoints: m.endpoints,
                    log: if with_log {
                        m.log.into_iter().collect()
                    } else {
                        Vec::new()
                    },
                },
            );
        }
        StateSnapshot {
            started_at: self
                .shared
                .started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            faults: self.shared.faults(),
            providers,
        }
    }
}

impl Shared {
    pub fn faults(&self) -> Faults {
        lock(&self.faults).settings().clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        lock(&self.faults).set(faults);
    }

    pub fn fault_engine(&self) -> MutexGuard<'_, FaultEngine> {
        lock(&self.faults)
    }

    /// A configured limit lowered by the fault settings' `rate_limit_factor` (never below 1).
    pub fn limit(&self, base: u32) -> u32 {
        let factor = lock(&self.faults).settings().rate_limit_factor;
        if !(factor.is_finite()) || factor <= 0.0 {
            return 1;
        }
        ((base as f64 * factor).floor() as u32).max(1)
    }

    /// A fresh (seeded) UUID in the usual v4 layout.
    pub fn uuid(&self) -> String {
        let bytes: [u8; 16] = lock(&self.rng).random();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// `len` random characters from `alphabet`.
    pub fn random_string(&self, alphabet: &[u8], len: usize) -> String {
        let mut rng = lock(&self.rng);
        (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
            .collect()
    }

    pub fn random_u64(&self) -> u64 {
        lock(&self.rng).random()
    }

    pub fn elapsed_ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_millis() as u64
    }

    pub fn record(&self, provider: &str, entry: LogEntry) {
        let cap = self.cfg.log_capacity;
        lock(&self.metrics).record(provider, entry, cap);
    }

    pub fn next_seq(&self) -> u64 {
        lock(&self.metrics).next_seq()
    }
}

// ---------------------------------------------------------------------------------------------
// tokens

/// Tokens issued by the fakes' token endpoints, and the authorization codes and refresh
/// tokens of their OAuth connect flows.
#[derive(Default)]
pub(crate) struct Tokens {
    map: HashMap<String, TokenInfo>,
    codes: HashMap<String, CodeGrant>,
    /// Refresh tokens issued by an authorization-code exchange, by value: the client.
    refresh: HashMap<String, String>,
}

/// What an authorization code was issued for (RFC 6749 section 4.1.2): the token request
/// must name the same client and redirect URI, once, before it expires.
#[derive(Clone, Debug)]
pub(crate) struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub expires: Instant,
}

/// Why a code exchange is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CodeRefusal {
    /// Never issued, or already exchanged (a code is single-use).
    Unknown,
    Expired,
    /// Issued to another client or for another redirect URI.
    Mismatch,
}

#[derive(Clone, Debug)]
pub(crate) struct TokenInfo {
    pub provider: &'static str,
    /// Who the token belongs to (client id, user name, ...).
    pub subject: String,
    pub expires: Instant,
    pub revoked: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    Valid(String),
    /// Expired this long ago.
    Expired(Duration),
    Unknown,
}

impl Tokens {
    pub fn issue(&mut self, provider: &'static str, token: &str, subject: &str, ttl: Duration) {
        self.map.insert(
            token.to_string(),
            TokenInfo {
                provider,
                subject: subject.to_string(),
                expires: Instant::now() + ttl,
                revoked: false,
            },
        );
    }

    pub fn check(&self, provider: &str, token: &str) -> TokenCheck {
        match self.map.get(token) {
            Some(t) if t.provider == provider && !t.revoked => {
                let now = Instant::now();
                if now >= t.expires {
                    TokenCheck::Expired(now - t.expires)
                } else {
                    TokenCheck::Valid(t.subject.clone())
                }
            }
            _ => TokenCheck::Unknown,
        }
    }

    pub fn revoke(&mut self, token: &str) -> bool {
        match self.map.get_mut(token) {
            Some(t) if !t.revoked => {
                t.revoked = true;
                true
            }
            _ => false,
        }
    }

    /// Issues a single-use authorization code.
    pub fn issue_code(&mut self, code: &str, grant: CodeGrant) {
        self.codes.insert(code.to_string(), grant);
    }

    /// Exchanges a code: it is gone afterwards whatever the answer, so a code seen by
    /// someone else cannot be tried again (RFC 6749 section 10.5).
    pub fn take_code(
        &mut self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
    ) -> Result<CodeGrant, CodeRefusal> {
        let grant = self.codes.remove(code).ok_or(CodeRefusal::Unknown)?;
        if Instant::now() >= grant.expires {
            return Err(CodeRefusal::Expired);
        }
        if grant.client_id != client_id || grant.redirect_uri != redirect_uri {
            return Err(CodeRefusal::Mismatch);
        }
        Ok(grant)
    }

    /// Remembers a refresh token issued to `client_id`.
    pub fn issue_refresh(&mut self, token: &str, client_id: &str) {
        self.refresh
            .insert(token.to_string(), client_id.to_string());
    }

    /// Whether `token` is a live refresh token of `client_id`.
    pub fn refresh_valid(&self, token: &str, client_id: &str) -> bool {
        self.refresh.get(token).is_some_and(|c| c == client_id)
    }

    /// Revokes a refresh token (a rotation replaced it).
    pub fn revoke_refresh(&mut self, token: &str) {
        self.refresh.remove(token);
    }

    /// Expires every live token now; returns how many there were.
    pub fn expire_all(&mut self) -> usize {
        let now = Instant::now();
        let past = now.checked_sub(Duration::from_millis(1)).unwrap_or(now);
        let mut n = 0;
        for t in self.map.values_mut() {
            if !t.revoked && t.expires > now {
                t.expires = past;
                n += 1;
            }
        }
        n
    }
}

// ---------------------------------------------------------------------------------------------
// metrics

#[derive(Clone, Default)]
struct Metrics {
    seq: u64,
    providers: BTreeMap<String, ProviderMetrics>,
}

#[derive(Clone, Default)]
struct ProviderMetrics {
    requests: u64,
    rate_limited: u64,
    injected_errors: u64,
    dropped: u64,
    endpoints: BTreeMap<String, EndpointStats>,
    log: VecDeque<LogEntry>,
}

impl Metrics {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn record(&mut self, provider: &str, entry: LogEntry, cap: usize) {
        let p = self.providers.entry(provider.to_string()).or_default();
        p.requests += 1;
        let ep = p.endpoints.entry(entry.endpoint.clone()).or_default();
        ep.requests += 1;
        if let Some(s) = entry.status {
            *ep.statuses.entry(s.to_string()).or_default() += 1;
        }
        if entry.rate_limited {
            p.rate_limited += 1;
            ep.rate_limited += 1;
        }
        match entry.fault.as_deref() {
            Some("error") => {
                p.injected_errors += 1;
                ep.injected_errors += 1;
            }
            Some("drop") | Some("drop_after") => {
                p.dropped += 1;
                ep.dropped += 1;
            }
            _ => {}
        }
        if cap > 0 {
            while p.log.len() >= cap {
                p.log.pop_front();
            }
            p.log.push_back(entry);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// snapshot (also the JSON of `GET /_sandbox/state`)

/// What the sandbox holds and has seen.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StateSnapshot {
    /// When the sandbox started (RFC 3339); log entries count milliseconds from here.
    pub started_at: String,
    pub faults: Faults,
    /// By provider prefix (`hubspot`, `salesforce`, ...).
    pub providers: BTreeMap<String, ProviderState>,
}

/// One provider's records and traffic.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProviderState {
    /// Stored records by collection (`contacts`, `Lead`, `users`, ...), in id order.
    pub records: BTreeMap<String, Vec<Value>>,
    /// Requests received (including those answered by a fault).
    pub requests: u64,
    /// Requests refused by a rate limit (429, or Salesforce's 403 `REQUEST_LIMIT_EXCEEDED`).
    pub rate_limited: u64,
    /// Requests answered by an injected 5xx.
    pub injected_errors: u64,
    /// Connections closed by fault injection.
    pub dropped: u64,
    /// By `METHOD /route/{param}` (`unmatched` for unknown paths).
    pub endpoints: BTreeMap<String, EndpointStats>,
    /// The most recent requests, oldest first (`GET /_sandbox/state?log=false` omits it).
    #[serde(default)]
    pub log: Vec<LogEntry>,
}

/// Counters of one endpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EndpointStats {
    pub requests: u64,
    /// Responses by status code ("201": 3).
    pub statuses: BTreeMap<String, u64>,
    pub rate_limited: u64,
    pub injected_errors: u64,
    pub dropped: u64,
}

/// One request as the sandbox saw it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LogEntry {
    /// Order of arrival across all providers.
    pub seq: u64,
    /// Arrival time (RFC 3339, milliseconds).
    pub at: String,
    /// Arrival in milliseconds since the sandbox started.
    pub elapsed_ms: u64,
    pub method: String,
    /// The path below the provider prefix, with the query.
    pub path: String,
    pub endpoint: String,
    /// None when the connection was dropped without a response.
    pub status: Option<u16>,
    /// `error`, `drop` or `drop_after` when a fault answered (`panic` if a handler failed,
    /// which is a sandbox bug).
    pub fault: Option<String>,
    pub rate_limited: bool,
    /// Time spent answering, injected latency included.
    pub duration_ms: u64,
}

impl StateSnapshot {
    pub fn provider(&self, name: &str) -> Option<&ProviderState> {
        self.providers.get(name)
    }

    /// The records of one collection (empty when there are none).
    pub fn records(&self, provider: &str, collection: &str) -> &[Value] {
        self.providers
            .get(provider)
            .and_then(|p| p.records.get(collection))
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }
}

impl ProviderState {
    /// The largest number of requests that arrived within any `window` (optionally only those
    /// of one endpoint, e.g. `POST /crm/v3/objects/contacts/search`).
    pub fn max_requests_in_window(&self, window: Duration, endpoint: Option<&str>) -> usize {
        let mut times: Vec<u64> = self
            .log
            .iter()
            .filter(|e| endpoint.is_none_or(|ep| e.endpoint == ep))
            .map(|e| e.elapsed_ms)
            .collect();
        times.sort_unstable();
        let w = window.as_millis() as u64;
        let mut best = 0;
        let mut start = 0;
        for end in 0..times.len() {
            while times[end].saturating_sub(times[start]) >= w {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best
    }

    /// How many requests got this status.
    pub fn count_status(&self, status: u16) -> u64 {
        let key = status.to_string();
        self.endpoints
            .values()
            .map(|e| e.statuses.get(&key).copied().unwrap_or(0))
            .sum()
    }
}
