//! Connectors: how the engine reads and writes target systems.
//!
//! The engine speaks in a few semantic operations — search by identity key, create, update,
//! batch upsert — through the [`Connector`] trait. [`http`] implements it by interpreting a
//! provider file (auth, rate limits, retries, operations, error classification); an embedding
//! service may register its own connectors for systems that are not HTTP APIs.

pub mod fields;
pub mod http;
pub mod memory;
pub mod oauth;
pub mod sql;
pub mod waits;

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
    /// The request was sent but its result is unknown (the response was lost, it timed out,
    /// or a 5xx came back after the system may have processed it): a create must not be
    /// repeated without looking the record up first.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub outcome_unknown: bool,
    /// The provider's id of the failed request, where its kit says how to read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl ConnectError {
    /// An error; secrets in `message` (a provider echoing the request) are masked.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let mut message = message.into();
        crate::secrets::scrub::scrub_string(&mut message);
        ConnectError {
            kind,
            status: None,
            message,
            existing_id: None,
            field: None,
            outcome_unknown: false,
            correlation_id: None,
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
    /// Largest number of values one batch search can look up (`None`: one search per value).
    pub batch_search: Option<usize>,
    pub create: bool,
    pub update: bool,
    /// Largest batch of a native upsert by identity key (`None`: no batch upsert).
    pub batch_upsert: Option<usize>,
    /// Largest batch of a native multi-record create (`None`: one create per record).
    pub batch_create: Option<usize>,
    /// Largest batch of a native multi-record update (`None`: one update per record).
    pub batch_update: Option<usize>,
    /// Whether a create may be repeated safely after its result was lost (the provider
    /// declares an idempotency mechanism, e.g. an `Idempotency-Key` header).
    pub idempotent_create: bool,
}

/// What the engine passes into every connector call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Call {
    /// No attempt starts after it, and a retry whose wait would end after it is not made
    /// (requests already sent run to their own timeout).
    pub deadline: Option<std::time::Instant>,
}

impl Call {
    pub fn with_deadline(deadline: Option<std::time::Instant>) -> Self {
        Call { deadline }
    }
}

/// One item of a batch upsert: the identity key value and the payload.
#[derive(Clone, Debug, PartialEq)]
pub struct UpsertItem<'a> {
    pub key: &'a str,
    pub payload: &'a Value,
}

/// One item of a batch update: the target id and the fields to write.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateItem<'a> {
    pub id: &'a str,
    pub payload: &'a Value,
}

/// Reads and writes one target system. Implementations must be cheap to share (`Arc`) and
/// safe to call concurrently; pacing and retries are their business.
///
/// Retries must never repeat a create whose result is unknown (the request was sent but no
/// answer came back): such a failure is returned with [`ConnectError::outcome_unknown`] set,
/// and the engine looks the record up before it creates again.
pub trait Connector: Send + Sync {
    /// What this connector supports for `object`.
    fn capabilities(&self, object: &str) -> Capabilities;

    /// Records of `object` whose `field` equals `value` (exact match).
    fn search<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        field: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Found>, ConnectError>>;

    /// Records of `object` whose `field` equals any of `values`, each paired with the index
    /// of the value it matched. Connectors with a native batch search override this (and
    /// report [`Capabilities::batch_search`]); the default searches value by value.
    fn search_many<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        field: &'a str,
        values: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<(usize, Found)>, ConnectError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for (i, v) in values.iter().enumerate() {
                for f in self.search(call, object, field, v).await? {
                    out.push((i, f));
                }
            }
            Ok(out)
        })
    }

    /// Records of `object` whose fields equal every `(field, value)` of `criteria`: a
    /// compound match key (`project_id+title`) or a reference found by several fields.
    /// Connectors whose search filters by several fields at once override this; the default
    /// searches by the first criterion and keeps the records whose fields hold the others.
    fn search_where<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        criteria: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<Vec<Found>, ConnectError>> {
        Box::pin(async move {
            let Some((field, value)) = criteria.first() else {
                return Ok(Vec::new());
            };
            let mut found = self.search(call, object, field, value).await?;
            found.retain(|f| fields_agree(&f.fields, &criteria[1..], true));
            Ok(found)
        })
    }

    fn create<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>>;

    fn update<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        id: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>>;

    /// Creates or updates by identity key in one request; one result per item, in order. A
    /// batch refused as a whole is the connector's to split (it isolates the bad items).
    /// Only called when [`Capabilities::batch_upsert`] is set.
    fn upsert_batch<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        field: &'a str,
        items: &'a [UpsertItem<'a>],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>> {
        let _ = (call, object, field);
        Box::pin(async move { unsupported(items.len(), "batch upsert") })
    }

    /// Creates several records in one request; one result per payload, in order. Only
    /// called when [`Capabilities::batch_create`] is set.
    fn create_batch<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        payloads: &'a [&'a Value],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>> {
        let _ = (call, object);
        Box::pin(async move { unsupported(payloads.len(), "batch create") })
    }

    /// Updates several records in one request; one result per item, in order. Only called
    /// when [`Capabilities::batch_update`] is set.
    fn update_batch<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        items: &'a [UpdateItem<'a>],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>> {
        let _ = (call, object);
        Box::pin(async move { unsupported(items.len(), "batch update") })
    }
}

/// Whether a found record's fields hold every `(field, value)`, compared as identity keys are
/// (case- and space-insensitively; `5` equals `"5"`). A field the record does not show fails
/// the comparison when `strict`, and is taken on trust otherwise (the search filtered by it).
pub fn fields_agree(fields: &Value, criteria: &[(&str, &str)], strict: bool) -> bool {
    criteria.iter().all(
        |(field, value)| match fields.get(*field).filter(|v| !v.is_null()) {
            Some(v) => {
                crate::exec::normalize_key(v)
                    == crate::exec::normalize_key(&Value::String((*value).to_string()))
            }
            None => !strict,
        },
    )
}

fn unsupported(n: usize, what: &str) -> Vec<Result<Written, ConnectError>> {
    (0..n)
        .map(|_| {
            Err(ConnectError::new(
                ErrorKind::Fatal,
                format!("this connector has no {what}"),
            ))
        })
        .collect()
}
