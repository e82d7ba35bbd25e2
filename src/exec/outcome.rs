//! Per-record outcomes, in the shape the CLI prints as NDJSON.

use serde::Serialize;
use serde_json::Value;

use crate::span::Location;

/// What happened to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Updated,
    Skipped,
    /// Written before with the same payload (the state store says so): no request.
    Unchanged,
    Failed,
    /// Evaluated without sending (dry run).
    DryRun,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Updated => "updated",
            Status::Skipped => "skipped",
            Status::Unchanged => "unchanged",
            Status::Failed => "failed",
            Status::DryRun => "dry_run",
        }
    }
}

/// Why a record failed, in categories an operator can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The input line is not a JSON object, misses a required field, or has no identity key.
    InvalidRecord,
    /// The input line is larger than the maximum record size; it was not read.
    TooLarge,
    /// An expression, template or policy failed on this record.
    Mapping,
    /// The policy table rejected the record (e.g. two rows matched under `unique`).
    Policy,
    /// A required target field came out null.
    Validation,
    /// Another record in the same input has the same identity key.
    DuplicateKey,
    /// Several target records match the identity key and `on_multiple: fail`.
    MultipleMatches,
    /// The target system says the record already exists, and it could not be updated instead.
    Duplicate,
    /// The target system refused the credentials (after a refresh).
    Auth,
    /// Still rate limited after the retries.
    RateLimited,
    /// A temporary failure (5xx, timeout, dropped connection) that outlived the retries, or
    /// the record's deadline passed.
    Transient,
    /// The target record to update no longer exists.
    NotFound,
    /// The target system refused the request for another reason.
    Rejected,
    /// The state store failed, so the write could not be recorded; nothing was sent.
    State,
    /// A reference (`ref:`) found no record of the referenced object, or several (`field`
    /// names the reference).
    UnresolvedReference,
}

/// A per-record failure: kind, reason, and where in the rules it happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordError {
    pub kind: FailureKind,
    pub message: String,
    /// The target field being produced, e.g. `firstname` or `address.city`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `file:line:col` of the rule that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// HTTP status of the target system's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The target system's own message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_message: Option<String>,
    /// Types and input position, for the failures that have them; boxed so the common
    /// error stays small. Serialized as top-level `expected`, `actual`, `offset`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Box<ErrorDetail>>,
}

/// The parts of a [`RecordError`] only some failures have.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ErrorDetail {
    /// The declared type the value should have had (e.g. `string`, `array<string>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// The type the value actually had (e.g. `object`, `array<number>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// Byte offset in the input line where it stopped making sense (bad UTF-8, bad JSON,
    /// a duplicate key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    /// The provider's id of the failed request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl RecordError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        RecordError {
            kind,
            message: message.into(),
            field: None,
            at: None,
            status: None,
            provider_message: None,
            detail: None,
        }
    }

    /// A failure reported by the target system while doing `what` (e.g. `create`).
    pub fn from_target(what: &str, e: &crate::connect::ConnectError) -> Self {
        use crate::connect::ErrorKind as K;
        let kind = match e.kind {
            K::Duplicate => FailureKind::Duplicate,
            K::Validation => FailureKind::Validation,
            K::Auth => FailureKind::Auth,
            K::RateLimited => FailureKind::RateLimited,
            K::Transient => FailureKind::Transient,
            K::NotFound => FailureKind::NotFound,
            K::Fatal => FailureKind::Rejected,
        };
        RecordError {
            kind,
            message: format!("{what} failed: {e}"),
            field: e.field.clone(),
            at: None,
            status: e.status,
            provider_message: Some(e.message.clone()),
            detail: e.correlation_id.clone().map(|c| {
                Box::new(ErrorDetail {
                    correlation_id: Some(c),
                    ..ErrorDetail::default()
                })
            }),
        }
    }

    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }

    pub fn at(mut self, location: &Location) -> Self {
        self.at = Some(location.to_string());
        self
    }

    /// Records the declared and the actual type of a value that did not fit.
    pub fn with_types(mut self, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        let d = self.detail.get_or_insert_default();
        d.expected = Some(expected.into());
        d.actual = Some(actual.into());
        self
    }

    /// Records the byte offset in the input line.
    pub fn with_offset(mut self, offset: usize) -> Self {
        self.detail.get_or_insert_default().offset = Some(offset);
        self
    }

    /// The declared type a value should have had.
    pub fn expected(&self) -> Option<&str> {
        self.detail.as_ref()?.expected.as_deref()
    }

    /// The type the value had instead.
    pub fn actual(&self) -> Option<&str> {
        self.detail.as_ref()?.actual.as_deref()
    }

    /// The byte offset in the input line.
    pub fn offset(&self) -> Option<usize> {
        self.detail.as_ref()?.offset
    }

    /// The provider's id of the failed request.
    pub fn correlation_id(&self) -> Option<&str> {
        self.detail.as_ref()?.correlation_id.as_deref()
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Mapping failures name the target field and the rule; other kinds say it in the text.
        if let (FailureKind::Mapping, Some(field)) = (self.kind, &self.field) {
            write!(f, "mapping.{field}")?;
            if let Some(at) = &self.at {
                write!(f, " at {at}")?;
            }
            write!(f, ": ")?;
        } else if let Some(at) = &self.at {
            write!(f, "at {at}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for RecordError {}

/// The outcome of one input record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// Position in the input, from 0.
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RecordError>,
    /// What the state store records beyond what is printed; set only when a run keeps state.
    #[serde(skip)]
    pub provenance: Option<Box<Provenance>>,
}

/// Where an outcome came from: the input line, the record's identity and how long its write
/// took, for the changelog and the dead letters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Provenance {
    /// The input line as read.
    pub source: Option<Box<[u8]>>,
    /// The ledger identity (match keys' values, or the record key).
    pub identity: Option<String>,
    /// Wall time of the sink call that wrote the record.
    pub duration_ms: Option<u64>,
    /// The payload sent (redacted), when the flow keeps payloads in its audit trail.
    pub payload: Option<String>,
}

impl Outcome {
    /// Masks every resolved secret (and its encodings) in the outcome's strings: the process
    /// boundary's last check (see [`crate::secrets::scrub`]). Outcomes are scrubbed before
    /// they reach an [`Output`](super::pipeline::Output) or a caller.
    pub fn scrub(&mut self) {
        self.scrub_with(&crate::secrets::scrubber());
    }

    /// [`Outcome::scrub`] with a given scrubber.
    pub fn scrub_with(&mut self, s: &crate::secrets::Scrubber) {
        if s.is_empty() {
            return;
        }
        let opt = |o: &mut Option<String>| {
            if let Some(v) = o {
                s.scrub_string(v);
            }
        };
        opt(&mut self.key);
        opt(&mut self.target_id);
        opt(&mut self.reason);
        if let Some(p) = &mut self.payload {
            s.scrub_value(p);
        }
        if let Some(p) = &mut self.policy {
            s.scrub_value(p);
        }
        if let Some(e) = &mut self.error {
            s.scrub_string(&mut e.message);
            opt(&mut e.field);
            opt(&mut e.provider_message);
            // Read from the provider's body too: a vendor may echo anything there.
            if let Some(d) = &mut e.detail {
                opt(&mut d.correlation_id);
            }
        }
        if let Some(p) = &mut self.provenance {
            opt(&mut p.identity);
            opt(&mut p.payload);
        }
    }

    /// A record that `source.filter` left out.
    pub fn filtered(index: usize) -> Self {
        Outcome {
            index,
            key: None,
            status: Status::Skipped,
            target_id: None,
            payload: None,
            policy: None,
            reason: Some("filtered out by source.filter".into()),
            error: None,
            provenance: None,
        }
    }

    /// A record that was not sent, and why (`blank_line`, `superseded`, ...).
    pub fn skipped(index: usize, reason: &str) -> Self {
        Outcome {
            index,
            key: None,
            status: Status::Skipped,
            target_id: None,
            payload: None,
            policy: None,
            reason: Some(reason.to_string()),
            error: None,
            provenance: None,
        }
    }

    pub fn failed(index: usize, key: Option<String>, error: RecordError) -> Self {
        Outcome {
            index,
            key,
            status: Status::Failed,
            target_id: None,
            payload: None,
            policy: None,
            reason: None,
            error: Some(error),
            provenance: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_reaches_what_the_provider_said_and_what_the_store_keeps() {
        let secret = "s3cr3t-token-value";
        let s = crate::secrets::Scrubber::new([secret]);
        let mut e = RecordError::new(FailureKind::Auth, format!("bad token {secret}"));
        e.provider_message = Some(format!("echo: {secret}"));
        e.detail = Some(Box::new(ErrorDetail {
            correlation_id: Some(format!("id-{secret}")),
            ..ErrorDetail::default()
        }));
        let mut o = Outcome::failed(0, None, e);
        o.provenance = Some(Box::new(Provenance {
            identity: Some(secret.into()),
            payload: Some(format!("{{\"t\":\"{secret}\"}}")),
            ..Provenance::default()
        }));
        o.scrub_with(&s);
        let text = format!("{o:?}");
        assert!(!text.contains(secret), "{text}");
        assert_eq!(
            o.error.as_ref().and_then(|e| e.correlation_id()),
            Some("id-***")
        );
    }
}
