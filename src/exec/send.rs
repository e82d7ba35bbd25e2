//! The sending sink: look up, decide ([`decide`](super::decide::decide)), write through a
//! [`Connector`].
//!
//! A group of jobs (records of distinct identities) goes out in as few requests as the
//! connector allows: one batch upsert when the flow updates by one key and the target has a
//! native upsert; otherwise one batch search per match key, then batch creates and batch
//! updates (or one request per record where the target has no batch operation).
//!
//! Writes are never doubled. A create whose result is unknown (the response was lost, it
//! timed out, a 5xx came back after the system may have processed it) is not repeated until
//! the record has been looked up again: if it is there, it was our create (`created`); a
//! repeated create that the target refuses as a duplicate was ours too. A create the target
//! refuses as a duplicate of someone else's record is decided again against that record.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::connect::{
    Call, Capabilities, ConnectError, Connector, ErrorKind, Found, UpdateItem, UpsertItem, Written,
};
use crate::plan::{DuplicatePlan, FlowPlan};
use crate::syntax::doc::OnMatch;

use super::decide::{Decision, decide};
use super::pipeline::{Completion, Job, Sink, Wrote};
use super::refs::{self, Resolver, Unresolved};
use super::{Outcome, RecordError, Status};

/// How a flow sends.
#[derive(Clone, Debug)]
pub struct SendOptions {
    /// Include the (redacted) payload in each outcome.
    pub include_payload: bool,
    /// Use the target's batch operations (upsert, search, create, update) where it has them.
    pub batch: bool,
    /// Creates with an unknown result are verified and repeated at most this many times.
    pub unknown_create_attempts: u32,
    /// What happens to a record the target already holds, instead of the flow's
    /// `duplicates.on_match` (a per-request override, e.g. `duplicatePolicy` of `serve`);
    /// `None` keeps the flow's rule. Sends through the connector sink, with or without the
    /// ledger ([`Engine::sender`](crate::Engine::sender),
    /// [`Engine::recorded_sender`](crate::Engine::recorded_sender)).
    pub on_match: Option<OnMatch>,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            include_payload: false,
            batch: true,
            unknown_create_attempts: 3,
            on_match: None,
        }
    }
}

/// Writes a flow's records through a connector.
pub struct ConnectorSink {
    flow: Arc<FlowPlan>,
    connector: Arc<dyn Connector>,
    options: SendOptions,
    caps: Capabilities,
    /// Resolves the flow's references (`ref:`), with the run's cache; `None` without any.
    refs: Option<Resolver>,
    /// The flow's duplicate rule, with `on_match` as [`SendOptions::on_match`] says.
    duplicates: Option<DuplicatePlan>,
}

impl ConnectorSink {
    pub fn new(flow: Arc<FlowPlan>, connector: Arc<dyn Connector>, options: SendOptions) -> Self {
        let mut caps = connector.capabilities(&flow.object);
        if !options.batch {
            caps.batch_search = None;
            caps.batch_upsert = None;
            caps.batch_create = None;
            caps.batch_update = None;
        }
        let refs = (!flow.refs.is_empty()).then(|| Resolver::new(connector.clone()));
        let duplicates = flow.duplicates.clone().map(|d| DuplicatePlan {
            on_match: options.on_match.unwrap_or(d.on_match),
            ..d
        });
        ConnectorSink {
            duplicates,
            flow,
            connector,
            options,
            caps,
            refs,
        }
    }

    /// Resolves the flow's references from the state store's id map before searching.
    pub fn with_id_map(mut self, ids: refs::IdMap) -> Self {
        self.refs = self.refs.map(|r| r.with_id_map(ids));
        self
    }

    /// Batch upserts by the one match key, when the flow updates on match.
    fn upserts(&self) -> Option<usize> {
        let d = self.duplicates.as_ref()?;
        // A compound key or one on a reference is not one value an upsert can key by.
        let fits = d.on_match == OnMatch::Update
            && d.match_keys.len() == 1
            && !d.match_keys.iter().any(|k| self.by_criteria(k));
        self.caps.batch_upsert.filter(|n| fits && *n > 1)
    }

    fn object(&self) -> &str {
        &self.flow.object
    }

    async fn write_group(&self, jobs: Vec<Job>) -> Vec<Completion> {
        // Step 1: references, resolved for the whole group before anything is looked up.
        let (jobs, mut done) = self.resolve_references(jobs).await;
        if jobs.is_empty() {
            return done;
        }
        done.extend(self.write_resolved(jobs).await);
        done
    }

    /// Replaces the references in each job's payload with the ids they point at, all jobs
    /// at once (the resolver's cache makes equal references one search). Jobs whose
    /// references cannot be resolved are done here: `unresolved_reference`, or the failed
    /// search.
    async fn resolve_references(&self, jobs: Vec<Job>) -> (Vec<Job>, Vec<Completion>) {
        let Some(resolver) = &self.refs else {
            return (jobs, Vec::new());
        };
        let flow = &self.flow;
        let results = futures::future::join_all(jobs.into_iter().map(|mut job| async move {
            let call = Call::with_deadline(job.deadline);
            let r = resolver.resolve(&call, flow, &mut job.payload).await;
            (job, r)
        }))
        .await;
        let mut ready = Vec::with_capacity(results.len());
        let mut done = Vec::new();
        for (job, r) in results {
            match r {
                Ok(()) => ready.push(job),
                Err(Unresolved::Missing(e)) => done.push(self.failed(job, e)),
                Err(Unresolved::Failed(e)) => done.push(self.failure(job, "reference lookup", &e)),
            }
        }
        (ready, done)
    }

    /// Step 2: look up, decide and write a group whose references are resolved.
    async fn write_resolved(&self, jobs: Vec<Job>) -> Vec<Completion> {
        // An upsert by the identity key updates what an earlier record of this input wrote
        // as well: no need to decide against the prior write.
        if self.upserts().is_some() {
            return self.upsert_group(jobs).await;
        }
        let call = call_for(&jobs);
        let (mut found, lookup_errors) = self.lookup(&call, &jobs).await;
        let mut done = Vec::with_capacity(jobs.len());
        let mut creates = Vec::new();
        let mut updates = Vec::new();
        for (i, job) in jobs.into_iter().enumerate() {
            if let Some(e) = &lookup_errors[i] {
                done.push(self.failure(job, "lookup", e));
                continue;
            }
            let f = std::mem::take(&mut found[i]);
            if job.maybe_created && !f.is_empty() {
                // An earlier attempt's create landed after all.
                let id = f.into_iter().next().map(|f| f.id);
                done.push(self.success(job, Status::Created, id, None));
                continue;
            }
            match decide(self.duplicates.as_ref(), &f, false, &job.payload) {
                Decision::Create => creates.push(job),
                Decision::Update { id, partial } => updates.push((job, id, partial)),
                Decision::Skip { id, reason } => {
                    done.push(self.success(job, Status::Skipped, id, Some(reason)))
                }
                Decision::Fail(e) => done.push(self.failed(job, e)),
            }
        }
        done.extend(self.create_all(&call, creates).await);
        done.extend(self.update_all(&call, updates).await);
        done
    }

    /// Finds what matches each job's identity: its prior write, or a search per match key in
    /// order (batched where the target can), the first key that finds records deciding.
    async fn lookup(
        &self,
        call: &Call,
        jobs: &[Job],
    ) -> (Vec<Vec<Found>>, Vec<Option<ConnectError>>) {
        let mut found: Vec<Vec<Found>> = vec![Vec::new(); jobs.len()];
        let mut errors: Vec<Option<ConnectError>> = vec![None; jobs.len()];
        let Some(rule) = &self.duplicates else {
            return (found, errors);
        };
        let mut todo: Vec<usize> = Vec::new();
        for (i, j) in jobs.iter().enumerate() {
            match &j.prior {
                Some(p) => found[i].push(p.clone()),
                None => todo.push(i),
            }
        }
        if !self.caps.search {
            return (found, errors);
        }
        for (k, field) in rule.match_keys.iter().enumerate() {
            if todo.is_empty() {
                break;
            }
            if self.by_criteria(field) {
                // A compound key, or one on a reference: one search per job, by its payload.
                for &i in &todo {
                    match self.search_key(call, &jobs[i], field).await {
                        Ok(f) => found[i] = f,
                        Err(e) => errors[i] = Some(e),
                    }
                }
                todo.retain(|&i| found[i].is_empty() && errors[i].is_none());
                continue;
            }
            let per = self.caps.batch_search.unwrap_or(1).max(1);
            for part in todo.chunks(per) {
                let values: Vec<&str> = part
                    .iter()
                    .map(|&i| jobs[i].identity.get(k).map_or("", String::as_str))
                    .collect();
                let result = if part.len() == 1 {
                    self.connector
                        .search(call, self.object(), field, values[0])
                        .await
                        .map(|f| f.into_iter().map(|f| (0, f)).collect())
                } else {
                    self.connector
                        .search_many(call, self.object(), field, &values)
                        .await
                };
                match result {
                    Ok(hits) => {
                        for (v, f) in hits {
                            if let Some(&i) = part.get(v) {
                                found[i].push(f);
                            }
                        }
                    }
                    Err(e) => {
                        for &i in part {
                            errors[i] = Some(e.clone());
                        }
                    }
                }
            }
            todo.retain(|&i| found[i].is_empty() && errors[i].is_none());
        }
        (found, errors)
    }

    async fn create_all(&self, call: &Call, jobs: Vec<Job>) -> Vec<Completion> {
        if jobs.is_empty() {
            return Vec::new();
        }
        let results = self.create_requests(call, &jobs).await;
        let mut batch: Vec<(Job, Result<Written, ConnectError>)> =
            jobs.into_iter().zip(results).collect();
        let mut done = Vec::with_capacity(batch.len());
        let mut attempts = 1;
        // Creates whose result is unknown are looked up together (one batch search per
        // group, not one per record) before any is created again.
        loop {
            let mut unknown: Vec<(Job, ConnectError)> = Vec::new();
            for (mut job, r) in batch.drain(..) {
                match r {
                    Err(e) if self.verifiable(&e) => {
                        job.maybe_created = true;
                        unknown.push((job, e));
                    }
                    r => done.push(self.after_create(job, r).await),
                }
            }
            if unknown.is_empty() {
                break;
            }
            // Looked up at the target, not from a prior write: what decided to create did
            // not count that one.
            let jobs: Vec<Job> = unknown
                .iter()
                .map(|(j, _)| Job {
                    prior: None,
                    ..j.clone()
                })
                .collect();
            let (found, errors) = self.lookup(call, &jobs).await;
            let mut again = Vec::new();
            for (((job, e), found), lookup_error) in unknown.into_iter().zip(found).zip(errors) {
                if let Some(e2) = lookup_error {
                    // The end-of-run pass looks again before creating.
                    done.push(self.failure(job, "lookup after an unknown create", &e2));
                } else if let Some(f) = found.into_iter().next() {
                    // It landed: our create.
                    done.push(self.success(job, Status::Created, Some(f.id), None));
                } else if attempts >= self.options.unknown_create_attempts {
                    done.push(self.failure(job, "create", &e));
                } else {
                    again.push(job);
                }
            }
            if again.is_empty() {
                break;
            }
            attempts += 1;
            let results = self.create_requests(call, &again).await;
            batch = again.into_iter().zip(results).collect();
        }
        done
    }

    /// A create error whose record may exist, and can be looked up by the duplicate rule.
    fn verifiable(&self, e: &ConnectError) -> bool {
        e.outcome_unknown
            && e.kind != ErrorKind::Duplicate
            && !self.caps.idempotent_create
            && self.caps.search
            && self.duplicates.is_some()
    }

    /// One create per job, in batches where the target has them.
    async fn create_requests(
        &self,
        call: &Call,
        jobs: &[Job],
    ) -> Vec<Result<Written, ConnectError>> {
        match self.caps.batch_create {
            Some(max) if jobs.len() > 1 && max > 1 => {
                let mut results = Vec::with_capacity(jobs.len());
                for part in jobs.chunks(max) {
                    let payloads: Vec<&Value> = part.iter().map(|j| &j.payload).collect();
                    let mut r = self
                        .connector
                        .create_batch(call, self.object(), &payloads)
                        .await;
                    r.resize_with(part.len(), no_result);
                    results.extend(r);
                }
                results
            }
            _ => {
                let mut results = Vec::with_capacity(jobs.len());
                for j in jobs {
                    results.push(self.connector.create(call, self.object(), &j.payload).await);
                }
                results
            }
        }
    }

    /// The outcome of a create, looking the record up again where the result is unknown or
    /// the target refused it as a duplicate.
    async fn after_create(
        &self,
        mut job: Job,
        mut result: Result<Written, ConnectError>,
    ) -> Completion {
        let mut attempts = 1;
        loop {
            let e = match result {
                Ok(w) => return self.success(job, Status::Created, w.id, None),
                Err(e) => e,
            };
            let call = Call::with_deadline(job.deadline);
            if e.kind == ErrorKind::Duplicate {
                if job.maybe_created {
                    // Our own earlier create, refused on the repeat.
                    let id = match e.existing_id.clone() {
                        Some(id) => Some(id),
                        None => self
                            .find(&call, &job)
                            .await
                            .ok()
                            .and_then(|f| f.into_iter().next())
                            .map(|f| f.id),
                    };
                    return self.success(job, Status::Created, id, None);
                }
                return self.after_duplicate(&call, job, &e).await;
            }
            if !e.outcome_unknown || self.caps.idempotent_create {
                return self.failure(job, "create", &e);
            }
            // The create may have landed: look before creating again.
            if self.duplicates.is_none() || !self.caps.search {
                let mut err = RecordError::from_target("create", &e);
                err.message = format!(
                    "{}; the record may have been created, and without a duplicate rule to look it up by it is not sent again",
                    err.message
                );
                return Completion::Done {
                    outcome: self.failed_outcome(job, err),
                    written: None,
                };
            }
            job.maybe_created = true;
            match self.find(&call, &job).await {
                Ok(found) if !found.is_empty() => {
                    let id = found.into_iter().next().map(|f| f.id);
                    return self.success(job, Status::Created, id, None);
                }
                Ok(_) if attempts < self.options.unknown_create_attempts => {
                    attempts += 1;
                    result = self
                        .connector
                        .create(&call, self.object(), &job.payload)
                        .await;
                }
                Ok(_) => return self.failure(job, "create", &e),
                // The lookup failed too: the end-of-run pass looks again before creating.
                Err(e2) => return self.failure(job, "lookup after an unknown create", &e2),
            }
        }
    }

    /// Someone else's record has this identity: decide again against it.
    async fn after_duplicate(&self, call: &Call, job: Job, e: &ConnectError) -> Completion {
        let mut found = match self.find(call, &job).await {
            Ok(f) => f,
            Err(e2) => return self.failure(job, "lookup after a duplicate", &e2),
        };
        if let Some(id) = &e.existing_id {
            // The target named the record: that one decides, even where search lags behind.
            match found.iter().position(|f| &f.id == id) {
                Some(i) => found = vec![found.swap_remove(i)],
                None => {
                    found = vec![Found {
                        id: id.clone(),
                        updated_at: None,
                        fields: Value::Object(Default::default()),
                    }]
                }
            }
        }
        match decide(self.duplicates.as_ref(), &found, true, &job.payload) {
            Decision::Update { id, partial } => {
                let payload = partial.as_ref().unwrap_or(&job.payload);
                match self
                    .connector
                    .update(call, self.object(), &id, payload)
                    .await
                {
                    Ok(w) => self.success(job, Status::Updated, w.id.or(Some(id)), None),
                    Err(e) => self.failure(job, "update", &e),
                }
            }
            Decision::Skip { id, reason } => self.success(job, Status::Skipped, id, Some(reason)),
            Decision::Create => self.failure(job, "create", e),
            Decision::Fail(mut err) => {
                err.status = e.status;
                err.provider_message = Some(e.message.clone());
                self.failed(job, err)
            }
        }
    }

    /// A search by the job's match keys, in order.
    async fn find(&self, call: &Call, job: &Job) -> Result<Vec<Found>, ConnectError> {
        let Some(rule) = self.duplicates.as_ref().filter(|_| self.caps.search) else {
            return Ok(Vec::new());
        };
        for (field, value) in rule.match_keys.iter().zip(&job.identity) {
            let found = if self.by_criteria(field) {
                self.search_key(call, job, field).await?
            } else {
                self.connector
                    .search(call, self.object(), field, value)
                    .await?
            };
            if !found.is_empty() {
                return Ok(found);
            }
        }
        Ok(Vec::new())
    }

    /// Whether match key `key` is looked up by its fields' payload values rather than its
    /// identity value.
    fn by_criteria(&self, key: &str) -> bool {
        key.contains('+') || self.flow.ref_field(key).is_some()
    }

    /// A search by the payload values of match key `key` (see [`Self::by_criteria`]).
    async fn search_key(
        &self,
        call: &Call,
        job: &Job,
        key: &str,
    ) -> Result<Vec<Found>, ConnectError> {
        let criteria = refs::key_criteria(&self.flow, key, &job.payload).unwrap_or_default();
        refs::search_by_criteria(self.connector.as_ref(), call, self.object(), &criteria).await
    }

    async fn update_all(
        &self,
        call: &Call,
        items: Vec<(Job, String, Option<Value>)>,
    ) -> Vec<Completion> {
        if items.is_empty() {
            return Vec::new();
        }
        let results = match self.caps.batch_update {
            Some(max) if items.len() > 1 && max > 1 => {
                let mut results = Vec::with_capacity(items.len());
                for part in items.chunks(max) {
                    let batch: Vec<UpdateItem<'_>> = part
                        .iter()
                        .map(|(j, id, partial)| UpdateItem {
                            id,
                            payload: partial.as_ref().unwrap_or(&j.payload),
                        })
                        .collect();
                    let mut r = self
                        .connector
                        .update_batch(call, self.object(), &batch)
                        .await;
                    r.resize_with(part.len(), no_result);
                    results.extend(r);
                }
                results
            }
            _ => {
                let mut results = Vec::with_capacity(items.len());
                for (j, id, partial) in &items {
                    let payload = partial.as_ref().unwrap_or(&j.payload);
                    results.push(
                        self.connector
                            .update(call, self.object(), id, payload)
                            .await,
                    );
                }
                results
            }
        };
        items
            .into_iter()
            .zip(results)
            .map(|((job, id, _), r)| match r {
                Ok(w) => self.success(job, Status::Updated, w.id.or(Some(id)), None),
                Err(e) => self.failure(job, "update", &e),
            })
            .collect()
    }

    async fn upsert_group(&self, jobs: Vec<Job>) -> Vec<Completion> {
        let field = self
            .flow
            .duplicates
            .as_ref()
            .and_then(|d| d.match_keys.first())
            .cloned()
            .unwrap_or_default();
        let call = call_for(&jobs);
        let items: Vec<UpsertItem<'_>> = jobs
            .iter()
            .map(|j| UpsertItem {
                key: j.identity.first().map(String::as_str).unwrap_or_default(),
                payload: &j.payload,
            })
            .collect();
        let mut results = self
            .connector
            .upsert_batch(&call, self.object(), &field, &items)
            .await;
        drop(items);
        results.resize_with(jobs.len(), no_result);
        jobs.into_iter()
            .zip(results)
            .map(|(job, r)| match r {
                Ok(w) => {
                    let status = if w.created == Some(false) {
                        Status::Updated
                    } else {
                        Status::Created
                    };
                    self.success(job, status, w.id, None)
                }
                Err(e) => self.failure(job, "upsert", &e),
            })
            .collect()
    }

    fn success(
        &self,
        job: Job,
        status: Status,
        target_id: Option<String>,
        reason: Option<String>,
    ) -> Completion {
        // A skipped record leaves the target as it was: later records look it up themselves.
        let writes = target_id.is_some() && status != Status::Skipped;
        let (payload, fields) = match (self.options.include_payload, writes) {
            (true, true) => (Some(job.payload.clone()), Some(job.payload)),
            (true, false) => (Some(job.payload), None),
            // The payload moves into what the target now holds: nothing else needs it.
            (false, true) => (None, Some(job.payload)),
            (false, false) => (None, None),
        };
        let payload = payload.map(|p| super::redact(&self.flow, p));
        let written = target_id.clone().zip(fields).map(|(id, fields)| {
            let fields = match &job.prior {
                // What an earlier record of this input wrote, overlaid with this one.
                Some(p) => overlay(&p.fields, fields),
                None => fields,
            };
            Wrote {
                identity: job.identity,
                found: Found {
                    id,
                    updated_at: None,
                    fields,
                },
                origin: job.origin,
            }
        });
        Completion::Done {
            outcome: Outcome {
                index: job.index,
                key: job.key,
                status,
                target_id,
                payload,
                policy: job.policy,
                reason,
                error: None,
                provenance: None,
            },
            written,
        }
    }

    /// A failure reported by the target: transient ones get another pass at the end of the
    /// run (not rate limits: a spent allowance is not back minutes later).
    fn failure(&self, job: Job, what: &str, e: &ConnectError) -> Completion {
        let err = RecordError::from_target(what, e);
        let transient = e.kind == ErrorKind::Transient;
        if transient && job.pass == 0 {
            let outcome = self.failed_outcome(job.clone(), err);
            return Completion::Retry {
                job: Box::new(job),
                outcome,
            };
        }
        Completion::Done {
            outcome: self.failed_outcome(job, err),
            written: None,
        }
    }

    fn failed(&self, job: Job, err: RecordError) -> Completion {
        Completion::Done {
            outcome: self.failed_outcome(job, err),
            written: None,
        }
    }

    fn failed_outcome(&self, job: Job, err: RecordError) -> Outcome {
        let mut o = Outcome::failed(job.index, job.key, err);
        o.policy = job.policy;
        o
    }
}

impl Sink for ConnectorSink {
    fn group_size(&self) -> usize {
        if let Some(n) = self.upserts() {
            return n;
        }
        [
            self.caps.batch_search,
            self.caps.batch_create,
            self.caps.batch_update,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(1)
        .max(1)
    }

    fn write(&self, jobs: Vec<Job>) -> BoxFuture<'_, Vec<Completion>> {
        Box::pin(self.write_group(jobs))
    }

    /// An upsert by the identity key writes without deciding against a prior write.
    fn reads_prior(&self) -> bool {
        self.upserts().is_none()
    }
}

/// One call context for a group: its earliest deadline.
fn call_for(jobs: &[Job]) -> Call {
    Call::with_deadline(jobs.iter().filter_map(|j| j.deadline).min())
}

fn no_result() -> Result<Written, ConnectError> {
    Err(ConnectError::new(
        ErrorKind::Fatal,
        "the target returned no result for this record",
    ))
}

/// `base` with the fields of `top` written over it.
fn overlay(base: &Value, top: Value) -> Value {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            let mut out = b.clone();
            out.extend(t);
            Value::Object(out)
        }
        (_, top) => top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::FailureKind;
    use serde_json::json;

    #[test]
    fn overlay_writes_over_the_base() {
        assert_eq!(
            overlay(&json!({"a": 1, "b": 2}), json!({"b": 3, "c": 4})),
            json!({"a": 1, "b": 3, "c": 4})
        );
    }

    #[test]
    fn unknown_kinds_map_to_failures() {
        let e = ConnectError::new(ErrorKind::Transient, "x");
        assert_eq!(
            RecordError::from_target("create", &e).kind,
            FailureKind::Transient
        );
    }
}
