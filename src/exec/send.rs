//! Sending records to a target system: identity lookup, the duplicate decision, and writes
//! through a [`Connector`], with bounded concurrency and outcomes in input order.
//!
//! Per record: evaluate → (skip | fail) or → look up existing records by the duplicate rule's
//! match keys, in order → decide by `on_match` / `on_multiple` → create or update. A create that
//! the target refuses as a duplicate (another writer got there first) becomes an update of the
//! existing record (a merge into it under `on_match: merge`), never a second record. Records sharing an identity key with an earlier
//! record of the same input fail without being sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::connect::{
    Capabilities, ConnectError, Connector, ErrorKind, Found, UpsertItem, Written,
};
use crate::plan::{DuplicatePlan, FlowPlan};
use crate::syntax::doc::{OnMatch, OnMultiple};

use super::stream::Summary;
use super::{Evaluation, ExecContext, FailureKind, Outcome, RecordError, Status};

/// How a run sends.
#[derive(Clone, Debug)]
pub struct SendOptions {
    /// Records (or batches) in flight at once.
    pub concurrency: usize,
    /// Time allowed for one record, all retries included; after it the record fails as
    /// `transient` and no new request is started for it.
    pub record_deadline: Option<Duration>,
    /// Include the (redacted) payload in each outcome.
    pub include_payload: bool,
    /// Use the target's batch upsert when the flow allows it (`on_match: update`, one match
    /// key).
    pub batch: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            concurrency: 8,
            record_deadline: Some(Duration::from_secs(120)),
            include_payload: false,
            batch: true,
        }
    }
}

/// Sends the records of one flow through one connector. Cheap to clone (shared parts).
#[derive(Clone)]
pub struct Sender {
    flow: Arc<FlowPlan>,
    cx: ExecContext,
    connector: Arc<dyn Connector>,
    options: SendOptions,
    caps: Capabilities,
}

/// A record after evaluation, before sending.
enum Prepared {
    Done(Outcome),
    Mapped(Mapped),
}

impl Prepared {
    fn index_and_key(&self) -> (usize, Option<String>) {
        match self {
            Prepared::Done(o) => (o.index, o.key.clone()),
            Prepared::Mapped(m) => (m.index, m.key.clone()),
        }
    }
}

struct Mapped {
    index: usize,
    key: Option<String>,
    payload: Value,
    policy: Option<Value>,
    identity: Vec<String>,
}

impl Sender {
    pub fn new(
        flow: Arc<FlowPlan>,
        cx: ExecContext,
        connector: Arc<dyn Connector>,
        options: SendOptions,
    ) -> Self {
        let caps = connector.capabilities(&flow.object);
        Sender {
            flow,
            cx,
            connector,
            options,
            caps,
        }
    }

    /// Whether records go in batch upserts rather than one by one.
    pub fn batch_size(&self) -> Option<usize> {
        let d = self.flow.duplicates.as_ref()?;
        let fits = self.options.batch && d.on_match == OnMatch::Update && d.match_keys.len() == 1;
        self.caps.batch_upsert.filter(|n| fits && *n > 1)
    }

    /// Sends one record (no duplicate check against other records).
    pub async fn send_one(&self, index: usize, record: &Value) -> Outcome {
        match self.prepare(index, record) {
            Prepared::Done(o) => o,
            Prepared::Mapped(m) => self.send_mapped(m).await,
        }
    }

    /// Sends every NDJSON line of `input`, writing one outcome line per record to `out` in
    /// input order. Must run inside a Tokio runtime: each batch (or record) is sent on its own
    /// task, at most `concurrency` at a time.
    pub async fn run<R, W>(
        &self,
        input: R,
        mut out: W,
        mut progress: impl FnMut(usize),
    ) -> std::io::Result<Summary>
    where
        R: AsyncBufRead + Unpin,
        W: std::io::Write,
    {
        let group = self.batch_size().unwrap_or(1);
        let me = Arc::new(self.clone());
        let mut lines = input.lines();
        let mut first_of: HashMap<(usize, String), usize> = HashMap::new();
        let mut index = 0usize;
        let prepared = futures::stream::poll_fn(move |cx| {
            // Reading and evaluating are cheap and ordered; only sending is concurrent.
            let next = std::pin::Pin::new(&mut lines).poll_next_line(cx);
            next.map(|r| match r {
                Ok(Some(line)) => Some(Ok(line)),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            })
        })
        .filter(|l| futures::future::ready(!matches!(l, Ok(s) if s.trim().is_empty())))
        .map(|line| {
            let i = index;
            index += 1;
            let p = match line {
                Err(e) => Prepared::Done(Outcome::failed(i, None, RecordError::new(FailureKind::InvalidRecord, format!("input could not be read: {e}")))),
                Ok(line) => match serde_json::from_str::<Value>(&line) {
                    Ok(record) => self.prepare(i, &record),
                    Err(e) => Prepared::Done(Outcome::failed(i, None, RecordError::new(FailureKind::InvalidRecord, format!("line is not valid JSON: {e}")))),
                },
            };
            match p {
                Prepared::Mapped(m) => {
                    let keys: Vec<(usize, String)> = m.identity.iter().cloned().enumerate().collect();
                    if let Some(first) = keys.iter().find_map(|k| first_of.get(k)) {
                        let err = RecordError::new(
                            FailureKind::DuplicateKey,
                            format!("identity key already used by record {first} of this input; not sent twice"),
                        );
                        Prepared::Done(Outcome::failed(m.index, m.key, err))
                    } else {
                        for k in keys {
                            first_of.insert(k, m.index);
                        }
                        Prepared::Mapped(m)
                    }
                }
                done => done,
            }
        })
        .ready_chunks(group)
        .map(|chunk| {
            // Each group is sent on its own task as soon as it is formed, so evaluating the
            // next records never holds up requests and responses in flight.
            let keys: Vec<(usize, Option<String>)> = chunk.iter().map(Prepared::index_and_key).collect();
            let me = me.clone();
            let task = tokio::spawn(async move { me.send_group(chunk).await });
            async move {
                task.await.unwrap_or_else(|e| {
                    // A failed task must not lose records: each gets an outcome saying so.
                    keys.into_iter()
                        .map(|(i, key)| {
                            let err = RecordError::new(FailureKind::Rejected, format!("internal error while sending: {e}"));
                            Outcome::failed(i, key, err)
                        })
                        .collect()
                })
            }
        })
        .buffered(self.options.concurrency.max(1));

        let mut summary = Summary::default();
        let mut outcomes = std::pin::pin!(prepared);
        while let Some(group) = outcomes.next().await {
            for o in group {
                summary.add(o.status);
                serde_json::to_writer(&mut out, &o).map_err(std::io::Error::other)?;
                out.write_all(b"\n")?;
            }
            progress(summary.total);
        }
        out.flush()?;
        Ok(summary)
    }

    fn prepare(&self, index: usize, record: &Value) -> Prepared {
        match super::evaluate(&self.flow, record, &self.cx) {
            Ok(Evaluation::Mapped {
                payload,
                policy,
                key,
                identity,
            }) => Prepared::Mapped(Mapped {
                index,
                key,
                payload,
                policy,
                identity,
            }),
            Ok(Evaluation::Filtered) => Prepared::Done(Outcome::filtered(index)),
            Err(e) => Prepared::Done(Outcome::failed(index, None, e)),
        }
    }

    /// Sends a group of consecutive records: one batch upsert, or one record.
    async fn send_group(&self, group: Vec<Prepared>) -> Vec<Outcome> {
        let mut done = Vec::with_capacity(group.len());
        let mut mapped = Vec::new();
        for p in group {
            match p {
                Prepared::Done(o) => done.push(o),
                Prepared::Mapped(m) => mapped.push(m),
            }
        }
        if self.batch_size().is_some() && !mapped.is_empty() {
            done.extend(self.send_batch(mapped).await);
        } else {
            for m in mapped {
                done.push(self.send_mapped(m).await);
            }
        }
        done.sort_by_key(|o| o.index);
        done
    }

    async fn send_batch(&self, mapped: Vec<Mapped>) -> Vec<Outcome> {
        let field = self
            .flow
            .duplicates
            .as_ref()
            .and_then(|d| d.match_keys.first())
            .cloned()
            .unwrap_or_default();
        let items: Vec<UpsertItem<'_>> = mapped
            .iter()
            .map(|m| UpsertItem {
                key: m.identity.first().map(String::as_str).unwrap_or_default(),
                payload: &m.payload,
            })
            .collect();
        let call = self
            .connector
            .upsert_batch(&self.flow.object, &field, &items);
        let results = match self.options.record_deadline {
            Some(d) => tokio::time::timeout(d, call)
                .await
                .unwrap_or_else(|_| (0..items.len()).map(|_| Err(deadline_error(d))).collect()),
            None => call.await,
        };
        let mut results = results.into_iter();
        mapped
            .into_iter()
            .map(|m| {
                let r = results.next().unwrap_or_else(|| {
                    Err(ConnectError::new(
                        ErrorKind::Fatal,
                        "the target returned no result for this record",
                    ))
                });
                match r {
                    Ok(w) => {
                        let status = if w.created == Some(false) {
                            Status::Updated
                        } else {
                            Status::Created
                        };
                        self.done(m, status, w.id, None)
                    }
                    Err(e) => self.failed(m, RecordError::from_target("upsert", &e)),
                }
            })
            .collect()
    }

    async fn send_mapped(&self, m: Mapped) -> Outcome {
        match self.options.record_deadline {
            Some(d) => {
                let (index, key) = (m.index, m.key.clone());
                match tokio::time::timeout(d, self.write(m)).await {
                    Ok(o) => o,
                    Err(_) => Outcome::failed(
                        index,
                        key,
                        RecordError::from_target("write", &deadline_error(d)),
                    ),
                }
            }
            None => self.write(m).await,
        }
    }

    /// Lookup, decision and write for one record.
    async fn write(&self, m: Mapped) -> Outcome {
        let Some(rule) = &self.flow.duplicates else {
            return self.create(m).await;
        };
        let found = match self.lookup(rule, &m).await {
            Ok(found) => found,
            Err(e) => return self.failed(m, RecordError::from_target("lookup", &e)),
        };
        let chosen = match found.len() {
            0 => return self.create(m).await,
            1 => found.into_iter().next(),
            n => match rule.on_multiple {
                OnMultiple::Fail => {
                    let err = RecordError::new(
                        FailureKind::MultipleMatches,
                        format!("{n} target records match the identity key; on_multiple: fail"),
                    );
                    return self.failed(m, err);
                }
                OnMultiple::First => pick_first(found),
                OnMultiple::MostRecent => pick_most_recent(found),
            },
        };
        let Some(existing) = chosen else {
            return self.create(m).await;
        };
        match rule.on_match {
            OnMatch::Skip => {
                let id = Some(existing.id);
                self.done_with_reason(
                    m,
                    Status::Skipped,
                    id,
                    "a matching record exists; on_match: skip",
                )
            }
            OnMatch::CreateNew => self.create(m).await,
            OnMatch::Update => self.update(m, &existing.id, None).await,
            OnMatch::Merge => {
                let fill = blanks_only(&m.payload, &existing.fields);
                if fill.as_object().is_some_and(|f| f.is_empty()) {
                    let id = Some(existing.id);
                    return self.done_with_reason(
                        m,
                        Status::Skipped,
                        id,
                        "nothing to merge: the target has every field",
                    );
                }
                self.update(m, &existing.id, Some(fill)).await
            }
        }
    }

    /// Tries the match keys in order; the first that finds records decides.
    async fn lookup(&self, rule: &DuplicatePlan, m: &Mapped) -> Result<Vec<Found>, ConnectError> {
        if !self.caps.search {
            return Ok(Vec::new());
        }
        for (field, value) in rule.match_keys.iter().zip(&m.identity) {
            let found = self
                .connector
                .search(&self.flow.object, field, value)
                .await?;
            if !found.is_empty() {
                return Ok(found);
            }
        }
        Ok(Vec::new())
    }

    async fn create(&self, m: Mapped) -> Outcome {
        match self.connector.create(&self.flow.object, &m.payload).await {
            Ok(w) => self.done(m, Status::Created, w.id, None),
            // Someone created it meanwhile: merge into it when the flow merges (which needs its
            // fields, so it must be found).
            Err(e)
                if e.kind == ErrorKind::Duplicate
                    && self
                        .flow
                        .duplicates
                        .as_ref()
                        .is_some_and(|d| d.on_match == OnMatch::Merge) =>
            {
                self.merge_after_duplicate(m, &e).await
            }
            // Someone created it meanwhile: update that record instead of making a second one.
            Err(e) if e.kind == ErrorKind::Duplicate && self.flow.duplicates.is_some() => {
                let existing = match e.existing_id.clone() {
                    Some(id) => Some(id),
                    None => match self.flow.duplicates.as_ref() {
                        Some(rule) => match self.lookup(rule, &m).await {
                            Ok(found) => pick_first(found).map(|f| f.id),
                            Err(e2) => {
                                return self.failed(
                                    m,
                                    RecordError::from_target("lookup after a duplicate", &e2),
                                );
                            }
                        },
                        None => None,
                    },
                };
                match existing {
                    Some(id)
                        if self
                            .flow
                            .duplicates
                            .as_ref()
                            .is_some_and(|d| d.on_match == OnMatch::Skip) =>
                    {
                        self.done_with_reason(
                            m,
                            Status::Skipped,
                            Some(id),
                            "a matching record exists; on_match: skip",
                        )
                    }
                    Some(id) => self.update(m, &id, None).await,
                    None => self.failed(m, RecordError::from_target("create", &e)),
                }
            }
            Err(e) => self.failed(m, RecordError::from_target("create", &e)),
        }
    }

    /// A create refused as a duplicate under `on_match: merge`: fill the blanks of the record
    /// that got there first. It must be found (its fields decide what is filled); a record the
    /// lookup cannot see yet is not overwritten: the record fails with the duplicate error.
    async fn merge_after_duplicate(&self, m: Mapped, e: &ConnectError) -> Outcome {
        let Some(rule) = self.flow.duplicates.as_ref() else {
            return self.failed(m, RecordError::from_target("create", e));
        };
        let found = match self.lookup(rule, &m).await {
            Ok(found) => found,
            Err(e2) => {
                return self.failed(m, RecordError::from_target("lookup after a duplicate", &e2));
            }
        };
        let named = e
            .existing_id
            .as_ref()
            .and_then(|id| found.iter().position(|f| &f.id == id));
        let existing = match named {
            Some(i) => found.into_iter().nth(i),
            None => pick_first(found),
        };
        let Some(existing) = existing else {
            return self.failed(m, RecordError::from_target("create", e));
        };
        let fill = blanks_only(&m.payload, &existing.fields);
        if fill.as_object().is_some_and(|f| f.is_empty()) {
            let id = Some(existing.id);
            return self.done_with_reason(
                m,
                Status::Skipped,
                id,
                "nothing to merge: the target has every field",
            );
        }
        self.update(m, &existing.id, Some(fill)).await
    }

    async fn update(&self, m: Mapped, id: &str, partial: Option<Value>) -> Outcome {
        let payload = partial.as_ref().unwrap_or(&m.payload);
        match self.connector.update(&self.flow.object, id, payload).await {
            Ok(Written { id: new_id, .. }) => {
                let target = new_id.or_else(|| Some(id.to_string()));
                self.done(m, Status::Updated, target, None)
            }
            Err(e) => self.failed(m, RecordError::from_target("update", &e)),
        }
    }

    fn done(
        &self,
        m: Mapped,
        status: Status,
        target_id: Option<String>,
        reason: Option<String>,
    ) -> Outcome {
        let payload = self
            .options
            .include_payload
            .then(|| super::redact(&self.flow, m.payload.clone()));
        Outcome {
            index: m.index,
            key: m.key,
            status,
            target_id,
            payload,
            policy: m.policy,
            reason,
            error: None,
        }
    }

    fn done_with_reason(
        &self,
        m: Mapped,
        status: Status,
        target_id: Option<String>,
        reason: &str,
    ) -> Outcome {
        self.done(m, status, target_id, Some(reason.to_string()))
    }

    fn failed(&self, m: Mapped, error: RecordError) -> Outcome {
        let mut o = Outcome::failed(m.index, m.key, error);
        o.policy = m.policy;
        o
    }
}

fn deadline_error(d: Duration) -> ConnectError {
    ConnectError::new(
        ErrorKind::Transient,
        format!("the record's deadline of {}s passed", d.as_secs_f64()),
    )
}

/// The record with the lowest id: deterministic whatever order the target returns.
fn pick_first(mut found: Vec<Found>) -> Option<Found> {
    found.sort_by(|a, b| match (a.id.parse::<u64>(), b.id.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.id.cmp(&b.id),
    });
    found.into_iter().next()
}

/// The most recently modified record; ties (or no timestamps) fall back to the lowest id.
fn pick_most_recent(found: Vec<Found>) -> Option<Found> {
    let latest = found.iter().filter_map(|f| f.updated_at.clone()).max();
    match latest {
        Some(t) => pick_first(
            found
                .into_iter()
                .filter(|f| f.updated_at.as_deref() == Some(t.as_str()))
                .collect(),
        ),
        None => pick_first(found),
    }
}

/// The payload fields whose value in the existing record is missing, null or empty (an empty
/// string, object or list: "set only if empty"). `existing` is the connector's flat field map.
fn blanks_only(payload: &Value, current: &Value) -> Value {
    let Some(fields) = payload.as_object() else {
        return payload.clone();
    };
    let out: Map<String, Value> = fields
        .iter()
        .filter(|(k, _)| match current.get(k.as_str()) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            // A contact created without attributes holds `{}`: nothing to keep.
            Some(Value::Object(o)) => o.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn found(id: &str, at: Option<&str>) -> Found {
        Found {
            id: id.into(),
            updated_at: at.map(String::from),
            fields: json!({}),
        }
    }

    #[test]
    fn first_is_the_lowest_id() {
        let f = pick_first(vec![
            found("12", None),
            found("9", None),
            found("100", None),
        ]);
        assert_eq!(f.map(|f| f.id), Some("9".into()));
    }

    #[test]
    fn most_recent_wins_then_lowest_id() {
        let f = pick_most_recent(vec![
            found("3", Some("2024-01-02T00:00:00Z")),
            found("2", Some("2024-01-03T00:00:00Z")),
            found("1", Some("2024-01-03T00:00:00Z")),
        ]);
        assert_eq!(f.map(|f| f.id), Some("1".into()));
    }

    #[test]
    fn merge_fills_only_blanks() {
        let payload = json!({"email": "a@b.co", "phone": "+1", "city": "Oslo"});
        let existing = json!({"email": "a@b.co", "phone": "", "city": "Bergen"});
        assert_eq!(blanks_only(&payload, &existing), json!({"phone": "+1"}));
        let payload = json!({"custom_attributes": {"plan": "pro"}, "tags": ["a"]});
        let existing = json!({"id": "1", "custom_attributes": {}, "tags": []});
        assert_eq!(blanks_only(&payload, &existing), payload);
    }
}
