//! Connectors: how the engine reads and writes target systems.
//!
//! The engine speaks in a few semantic operations — search by identity key, create, update,
//! batch upsert — through the [`Connector`] trait. [`http`] implements it by interpreting a
//! provider file (auth, rate limits, retries, operations, error classification); an embedding
//! service may register its own connectors for systems that are not HTTP APIs.

pub mod fields;
pub mod http;

use std::fmt;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

/// A record found by a search.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub id: String,
    /// Last modification time (RFC 3339) when the system reports it; used by
    /// `on_multiple: most_recent`.
    pub updated_at: Option<String>,
    /// The record's flat field map (used by `on_match: merge`); the HTTP connector extracts it
    /// by the kit's `response.fields` path, so no vendor shape reaches the engine.
    pub fields: Value,
}

/// The result of a successful write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The target record's id, when the system returns it.
    pub id: Option<String>,
    /// For upserts: whether the record was created (`true`) or updated (`false`), if known.
    pub created: Option<bool>,
}

/// Why an operation failed, in categories the engine acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The record already exists (`existing_id` says which, when the system tells).
    Duplicate,
    /// The system rejected the data (which field, when known).
    Validation,
    /// Credentials were refused, even after a refresh.
    Auth,
    /// Still rate limited after the retries.
    RateLimited,
    /// A temporary failure (5xx, timeout, dropped connection) that outlived the retries.
    Transient,
    NotFound,
    /// Anything else: not worth retrying.
    Fatal,
}

/// A failed operation, with the provider's own words kept.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConnectError {
    pub kind: ErrorKind,
    /// HTTP status, when there was a response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The provider's message (or the transport error).
    pub message: String,
    /// For duplicates: the id of the record that already exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_id: Option<String>,
    /// For validation errors: the offending field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ConnectError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ConnectError {
            kind,
            status: None,
            message: message.into(),
            existing_id: None,
            field: None,
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} (HTTP {s}): {}", kind_name(self.kind), self.message),
            None => write!(f, "{}: {}", kind_name(self.kind), self.message),
        }
    }
}

impl std::error::Error for ConnectError {}

fn kind_name(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::Duplicate => "duplicate",
        ErrorKind::Validation => "validation",
        ErrorKind::Auth => "auth",
        ErrorKind::RateLimited => "rate_limited",
        ErrorKind::Transient => "transient",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Fatal => "fatal",
    }
}

/// What a connector can do for one object; the engine plans lookups and writes from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub search: bool,
    pub create: bool,
    pub update: bool,
    /// Largest batch of a native upsert by identity key (`None`: no batch upsert).
    pub batch_upsert: Option<usize>,
}

/// One item of a batch upsert: the identity key value and the payload.
#[derive(Clone, Debug, PartialEq)]
pub struct UpsertItem<'a> {
    pub key: &'a str,
    pub payload: &'a Value,
}

/// Reads and writes one target system. Implementations must be cheap to share (`Arc`) and
/// safe to call concurrently; pacing and retries are their business.
pub trait Connector: Send + Sync {
    /// What this connector supports for `object`.
    fn capabilities(&self, object: &str) -> Capabilities;

    /// Records of `object` whose `field` equals `value` (exact match).
    fn search<'a>(
        &'a self,
        object: &'a str,
        field: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Found>, ConnectError>>;

    fn create<'a>(
        &'a self,
        object: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>>;

    fn update<'a>(
        &'a self,
        object: &'a str,
        id: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>>;

    /// Creates or updates by identity key in one request; one result per item, in order. A
    /// batch refused as a whole is the connector's to split (it isolates the bad items).
    fn upsert_batch<'a>(
        &'a self,
        object: &'a str,
        field: &'a str,
        items: &'a [UpsertItem<'a>],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>>;
}
