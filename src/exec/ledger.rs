//! A run that keeps state: the ledger around the sink, the changelog and dead letters after
//! the outcomes.
//!
//! [`LedgerSink`] wraps any sink. Before a group goes out it reads the ledger: a record whose
//! payload is the one last written is `unchanged` and makes no request; the others are
//! claimed (`pending`), given the target id the ledger or the id map knows (so an update needs
//! no search), and marked as possibly created where an earlier process died with the write in
//! flight (so it is looked up before anything is created again). After the group, each write
//! is settled (`done` or `failed`) with its payload hash and target id.
//!
//! [`StoreOutput`] wraps the outcome writer: every outcome becomes a changelog row, a failure
//! a dead letter (a success clears one), and each batch is stored with the run's counters and
//! checkpoint in one transaction, so a resumed run continues exactly where the store says.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::Value;

use crate::connect::Found;
use crate::plan::FlowPlan;
use crate::secrets::sealed::MasterKey;
use crate::state::{
    Change, Claim, Claiming, Counters, Entry, EntryState, Failure, InputForm, Report, Run, Scope,
    Settle, Store, StoreError, StoreResult, Target, dead_letter_aad, hash_bytes, identity_of,
    now_ms,
};
use crate::syntax::doc::OnMatch;

use super::pipeline::{Completion, Job, Output, Sink, Wrote};
use super::{FailureKind, Outcome, RecordError, Status};

/// How long a record another live run holds is waited for before it fails, at most (its
/// deadline ends the wait sooner).
const BUSY_WAIT: Duration = Duration::from_secs(60);

/// What one run records: the store, the run, and where its flow writes.
#[derive(Clone)]
pub struct Recorder {
    store: Arc<dyn Store>,
    run: Run,
    scope: Scope,
    target: Target,
    flow: Arc<FlowPlan>,
    /// Send every record, even those unchanged since their last write.
    full: bool,
    /// A skip records its payload as settled (the flow always skips a record it finds, so
    /// the same payload need not be looked up again). Not so under a per-send duplicate
    /// policy: a later send with the flow's own policy must still write it.
    settle_skips: bool,
    /// Seals the input of a failed record whose declared fields include sensitive ones.
    input_key: Option<Arc<MasterKey>>,
}

impl Recorder {
    pub fn new(store: Arc<dyn Store>, run: Run, flow: Arc<FlowPlan>, full: bool) -> Self {
        Recorder {
            scope: Scope {
                tenant: run.tenant.clone(),
                flow: flow.name.clone(),
            },
            target: Target {
                tenant: run.tenant.clone(),
                provider: flow.provider.clone(),
                object: flow.object.clone(),
            },
            store,
            run,
            flow,
            full,
            settle_skips: true,
            input_key: None,
        }
    }

    /// Dead letters of a flow whose record declares `sensitive` fields keep their input
    /// sealed under `key`. Without a key those fields' values are not kept at all.
    pub fn with_input_key(mut self, key: Option<MasterKey>) -> Self {
        self.input_key = key.map(Arc::new);
        self
    }

    /// The input line of a failed record as the dead-letter queue keeps it.
    fn kept_input(&self, id: &str, source: &[u8]) -> (Vec<u8>, InputForm) {
        let sensitive = &self.flow.sensitive_input;
        if sensitive.is_empty() {
            return (source.to_vec(), InputForm::Plain);
        }
        if let Some(key) = &self.input_key {
            let aad = dead_letter_aad(&self.scope.tenant, &self.scope.flow, id);
            return (key.seal(&aad, source).to_bytes(), InputForm::Sealed);
        }
        // No key: the record's other fields stay inspectable, the sensitive ones are gone.
        let kept = match serde_json::from_slice::<Value>(source) {
            Ok(Value::Object(mut m)) => {
                for f in sensitive {
                    if let Some(v) = m.get_mut(f) {
                        *v = Value::Null;
                    }
                }
                serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        (kept, InputForm::Redacted)
    }

    /// For a send whose duplicate policy overrides the flow's
    /// ([`SendOptions::on_match`](crate::exec::send::SendOptions::on_match)): a skip leaves
    /// the payload last written as the one the ledger knows.
    pub fn with_policy_override(mut self) -> Self {
        self.settle_skips = false;
        self
    }

    pub fn run(&self) -> &Run {
        &self.run
    }

    /// `inner` behind the ledger.
    pub fn sink(&self, inner: Arc<dyn Sink>) -> LedgerSink {
        LedgerSink {
            rec: self.clone(),
            inner,
            expect_unchanged: AtomicBool::new(false),
        }
    }

    /// `inner` followed by the changelog, the dead letters and the run's checkpoints, stored
    /// from `handle`'s runtime (the writer runs on a thread of its own).
    pub fn output<O: Output>(&self, inner: O, handle: tokio::runtime::Handle) -> StoreOutput<O> {
        StoreOutput {
            rec: self.clone(),
            inner,
            handle,
            report: Report {
                run_id: self.run.id.clone(),
                scope: self.scope.clone(),
                checkpoint: self.run.checkpoint,
                counters: self.run.counters,
                ..Report::default()
            },
            last_flush: Instant::now(),
            storing: None,
        }
    }
}

/// The ledger's identity of a job: its match keys' values, or its record key.
fn identity(job: &Job) -> Option<String> {
    if !job.identity.is_empty() {
        Some(identity_of(&job.identity))
    } else {
        job.key.clone()
    }
}

/// A sink behind the ledger (see the module docs).
pub struct LedgerSink {
    rec: Recorder,
    inner: Arc<dyn Sink>,
    /// The last group was mostly unchanged records: read entries before claiming.
    expect_unchanged: AtomicBool,
}

/// A job waiting for its claim: its identity (none: not tracked) and payload hash.
type Pending = (Job, Option<String>, String);

/// A job on its way through the ledger.
struct Tracked {
    job: Job,
    identity: String,
    hash: String,
    /// Its prior came from the ledger or the id map, not from the target: if the target no
    /// longer has that record, it is looked up afresh once.
    stored_prior: bool,
}

impl LedgerSink {
    fn fail(&self, job: Job, message: String) -> Completion {
        let err = RecordError::new(FailureKind::State, message);
        Completion::Done {
            outcome: Outcome::failed(job.index, job.key, err),
            written: None,
        }
    }

    /// Whether a stored target id can stand in for a search: `merge` needs the target's
    /// current fields, which only a search returns.
    fn prior_from_store(&self) -> bool {
        self.rec
            .flow
            .duplicates
            .as_ref()
            .is_some_and(|d| d.on_match != OnMatch::Merge)
    }

    async fn write_tracked(&self, jobs: Vec<Job>) -> Vec<Completion> {
        let store = &self.rec.store;
        let scope = &self.rec.scope;
        let mut done = Vec::with_capacity(jobs.len());
        let mut todo = Vec::with_capacity(jobs.len());
        for job in jobs {
            let Some(id) = identity(&job) else {
                // Nothing to key the ledger by: sent as it comes.
                todo.push((job, None, String::new()));
                continue;
            };
            let hash = match super::change_bytes(
                &self.rec.flow,
                &job.payload,
                job.basis.as_deref(),
                &self.rec.run.rules_hash,
            ) {
                Ok(bytes) => hash_bytes(&bytes),
                Err(e) => {
                    done.push(self.fail(job, format!("the payload cannot be hashed: {e}")));
                    continue;
                }
            };
            todo.push((job, Some(id), hash));
        }
        let (untracked, mut todo): (Vec<_>, Vec<_>) =
            todo.into_iter().partition(|(_, id, _)| id.is_none());
        let mut send: Vec<Tracked> = Vec::with_capacity(todo.len());
        let waited_since = Instant::now();
        let (mut claimed, mut kept) = (0usize, 0usize);
        while !todo.is_empty() {
            // Where the last groups were mostly unchanged (a re-run), the entries are read
            // first and only what changed is claimed; otherwise the claim alone tells.
            if !self.rec.full && self.expect_unchanged.load(Ordering::Relaxed) {
                match self.unchanged_first(todo).await {
                    Ok((rest, same)) => {
                        kept += same.len();
                        done.extend(same);
                        todo = rest;
                    }
                    Err((rest, msg)) => {
                        done.extend(rest.into_iter().map(|(j, _, _)| self.fail(j, msg.clone())));
                        break;
                    }
                }
                if todo.is_empty() {
                    break;
                }
            }
            let claims: Vec<Claiming> = todo
                .iter()
                .map(|(j, id, hash)| Claiming {
                    identity: id.clone().unwrap_or_default(),
                    record_key: j.key.clone(),
                    hash: (!self.rec.full).then(|| hash.clone()),
                })
                .collect();
            let run_id = self.rec.run.id.clone();
            let results = match detached(store, scope, move |st, sc| {
                Box::pin(async move { st.claim(&sc, &run_id, &claims).await })
            })
            .await
            {
                Ok(r) => r,
                Err(e) => {
                    let msg = format!("state store: {e}");
                    done.extend(todo.into_iter().map(|(j, _, _)| self.fail(j, msg.clone())));
                    break;
                }
            };
            for ((mut job, id, hash), result) in std::mem::take(&mut todo).into_iter().zip(results)
            {
                let id = id.unwrap_or_default();
                match result {
                    Claim::Claimed {
                        was_pending,
                        target_id,
                    } => {
                        claimed += 1;
                        let mut stored_prior = false;
                        match target_id {
                            Some(tid) if job.prior.is_none() && self.prior_from_store() => {
                                job.prior = Some(stored_found(tid));
                                stored_prior = true;
                            }
                            Some(_) => {}
                            // An earlier process may have created it and died before
                            // recording the id: look it up before creating again.
                            None if was_pending => job.maybe_created = true,
                            None => {}
                        }
                        send.push(Tracked {
                            job,
                            identity: id,
                            hash,
                            stored_prior,
                        });
                    }
                    Claim::Unchanged(e) => {
                        kept += 1;
                        let status = self.unchanged_status(&e);
                        done.push(unchanged(job, id, status, e.target_id));
                    }
                    Claim::Busy => {
                        let out_of_time = job.deadline.is_some_and(|d| Instant::now() >= d)
                            || waited_since.elapsed() > BUSY_WAIT;
                        if out_of_time {
                            let err = RecordError::new(
                                FailureKind::Transient,
                                "another run is writing this record and did not finish in time; it was not sent",
                            );
                            done.push(Completion::Done {
                                outcome: Outcome::failed(job.index, job.key, err),
                                written: None,
                            });
                        } else {
                            todo.push((job, Some(id), hash));
                        }
                    }
                }
            }
            if !todo.is_empty() {
                // Another run holds these: look again once it has had time to settle them.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if claimed + kept > 0 {
            self.expect_unchanged
                .store(kept > claimed, Ordering::Relaxed);
        }
        self.with_id_map(&mut send).await;

        let started = Instant::now();
        let audit = self.rec.flow.audit_payloads;
        let mut tracked_by_index: std::collections::HashMap<
            usize,
            (String, String, Option<String>),
        > = send
            .iter()
            .map(|t| {
                let payload = audit.then(|| audited(&self.rec.flow, &t.job.payload));
                (t.job.index, (t.identity.clone(), t.hash.clone(), payload))
            })
            .collect();
        // Jobs whose stored id may be stale keep a copy to look up afresh.
        let mut retry_copies: std::collections::HashMap<usize, (Job, String)> = send
            .iter()
            .filter(|t| t.stored_prior)
            .filter_map(|t| {
                let mut j = t.job.clone();
                let stale_id = j.prior.take()?.id;
                Some((t.job.index, (j, stale_id)))
            })
            .collect();
        let mut jobs: Vec<Job> = send.into_iter().map(|t| t.job).collect();
        jobs.extend(untracked.into_iter().map(|(j, _, _)| j));
        let mut completions = if jobs.is_empty() {
            Vec::new()
        } else {
            self.inner.write(jobs).await
        };
        // A stored id the target no longer has: forget it and decide again by a search.
        let stale: Vec<usize> = completions
            .iter()
            .filter_map(|c| match c {
                Completion::Done { outcome, .. }
                    if outcome
                        .error
                        .as_ref()
                        .is_some_and(|e| e.kind == FailureKind::NotFound)
                        && retry_copies.contains_key(&outcome.index) =>
                {
                    Some(outcome.index)
                }
                _ => None,
            })
            .collect();
        if !stale.is_empty() {
            let mut again = Vec::new();
            completions.retain(|c| match c {
                Completion::Done { outcome, .. } => !stale.contains(&outcome.index),
                _ => true,
            });
            let mut gone = Vec::new();
            for i in &stale {
                if let Some((j, stale_id)) = retry_copies.remove(i) {
                    again.push(j);
                    gone.push(stale_id);
                }
            }
            let target = self.rec.target.clone();
            let forgotten = detached(&self.rec.store, &self.rec.scope, move |st, _| {
                Box::pin(async move { st.forget_ids(&target, &gone).await })
            })
            .await;
            if let Err(e) = forgotten {
                tracing::warn!("state store: stale target ids were not forgotten: {e}");
            }
            completions.extend(self.inner.write(again).await);
        }
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);

        // Settle what was written; a job coming back for the end-of-run pass stays pending.
        let mut settled = Vec::with_capacity(completions.len());
        for c in &mut completions {
            let Completion::Done { outcome, .. } = c else {
                continue;
            };
            let Some((identity, hash, payload)) = tracked_by_index.remove(&outcome.index) else {
                continue;
            };
            let p = outcome.provenance.get_or_insert_default();
            p.identity = Some(identity.clone());
            p.duration_ms = Some(ms);
            p.payload = payload;
            let (word, hash) = match outcome.status {
                Status::Created => ("created", Some(hash)),
                Status::Updated => ("updated", Some(hash)),
                Status::Skipped => ("skipped", self.rec.settle_skips.then_some(hash)),
                Status::Unchanged => ("unchanged", Some(hash)),
                _ => ("failed", None),
            };
            let ids = match (&self.rec.flow.duplicates, &outcome.target_id) {
                (Some(d), Some(_)) if word != "failed" => d
                    .match_keys
                    .iter()
                    .zip(identity.split('\u{1f}'))
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.clone(), v.to_string()))
                    .collect(),
                _ => Vec::new(),
            };
            settled.push(Settle {
                identity,
                record_key: outcome.key.clone(),
                outcome: word,
                hash,
                target_id: outcome.target_id.clone(),
                ids,
            });
        }
        let (target, run_id, count) = (
            self.rec.target.clone(),
            self.rec.run.id.clone(),
            settled.len(),
        );
        let result = detached(&self.rec.store, &self.rec.scope, move |st, sc| {
            Box::pin(async move { st.settle(&sc, &target, &run_id, &settled).await })
        })
        .await;
        if let Err(e) = result {
            // The writes happened; their entries stay pending, so the next run looks the
            // records up instead of writing them again.
            tracing::warn!("state store: the outcome of {count} record(s) was not recorded: {e}");
        }
        done.extend(completions);
        done
    }

    /// The status of a record left unchanged: what this same run did with it if it is
    /// resuming, `unchanged` otherwise.
    fn unchanged_status(&self, e: &Entry) -> Status {
        match (e.run_id.as_deref(), e.outcome.as_deref()) {
            (Some(r), Some("created")) if r == self.rec.run.id => Status::Created,
            (Some(r), Some("updated")) if r == self.rec.run.id => Status::Updated,
            (Some(r), Some("skipped")) if r == self.rec.run.id => Status::Skipped,
            _ => Status::Unchanged,
        }
    }

    /// Reads the entries of `todo` and completes those unchanged since their last write;
    /// returns the rest, or all of them with the store's error.
    async fn unchanged_first(
        &self,
        todo: Vec<Pending>,
    ) -> Result<(Vec<Pending>, Vec<Completion>), (Vec<Pending>, String)> {
        let ids: Vec<String> = todo
            .iter()
            .map(|(_, id, _)| id.clone().unwrap_or_default())
            .collect();
        let entries = match detached(&self.rec.store, &self.rec.scope, move |st, sc| {
            Box::pin(async move { st.entries(&sc, &ids).await })
        })
        .await
        {
            Ok(e) => e,
            Err(e) => return Err((todo, format!("state store: {e}"))),
        };
        let (mut rest, mut same) = (Vec::with_capacity(todo.len()), Vec::new());
        for ((job, id, hash), entry) in todo.into_iter().zip(entries) {
            match entry {
                Some(e) if e.state == EntryState::Done && e.done_hash.as_deref() == Some(&hash) => {
                    let status = self.unchanged_status(&e);
                    same.push(unchanged(job, id.unwrap_or_default(), status, e.target_id));
                }
                _ => rest.push((job, id, hash)),
            }
        }
        Ok((rest, same))
    }

    /// Gives jobs the ledger knew nothing about the target id another flow recorded for the
    /// same object and match key.
    async fn with_id_map(&self, send: &mut [Tracked]) {
        if !self.prior_from_store() || !self.inner.reads_prior() {
            return;
        }
        let Some(field) = self
            .rec
            .flow
            .duplicates
            .as_ref()
            .and_then(|d| d.match_keys.first())
        else {
            return;
        };
        let want: Vec<usize> = send
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                t.job.prior.is_none() && !t.job.maybe_created && !t.job.identity.is_empty()
            })
            .map(|(i, _)| i)
            .collect();
        if want.is_empty() {
            return;
        }
        let values: Vec<String> = want
            .iter()
            .map(|&i| send[i].job.identity[0].clone())
            .collect();
        let (target, field) = (self.rec.target.clone(), field.clone());
        let found = detached(&self.rec.store, &self.rec.scope, move |st, _| {
            Box::pin(async move { st.ids(&target, &field, &values).await })
        })
        .await;
        let Ok(ids) = found else {
            // Only a shortcut: without it the sink searches.
            return;
        };
        for (&i, id) in want.iter().zip(ids) {
            if let Some(id) = id {
                send[i].job.prior = Some(stored_found(id));
                send[i].stored_prior = true;
            }
        }
    }
}

/// Runs a store call as a task of its own. The driver stops polling the sink while the
/// outcome writer is behind, and the writer needs a connection to catch up: a call that held
/// one without being polled would leave the writer waiting for it (a deadlock until the pool
/// times out). A task finishes and returns its connection whoever waits for it.
pub(crate) async fn detached<T: Send + 'static>(
    store: &Arc<dyn Store>,
    scope: &Scope,
    call: impl FnOnce(Arc<dyn Store>, Scope) -> BoxFuture<'static, StoreResult<T>> + Send + 'static,
) -> StoreResult<T> {
    let task = tokio::spawn(call(store.clone(), scope.clone()));
    task.await.unwrap_or_else(|e| {
        Err(StoreError::Invalid(format!(
            "a state store task failed: {e}"
        )))
    })
}

/// A payload as the changelog keeps it: fields computed from secrets and fields the object
/// marks `sensitive` masked.
fn audited(flow: &FlowPlan, payload: &Value) -> String {
    let mut p = super::redact(flow, payload.clone());
    if let Value::Object(m) = &mut p {
        for f in &flow.sensitive_payload {
            if let Some(v) = m.get_mut(f) {
                *v = Value::String(crate::secrets::MASK.into());
            }
        }
    }
    p.to_string()
}

fn stored_found(id: String) -> Found {
    Found {
        id,
        updated_at: None,
        fields: Value::Object(Default::default()),
    }
}

fn unchanged(job: Job, identity: String, status: Status, target_id: Option<String>) -> Completion {
    let written = target_id.clone().map(|id| Wrote {
        identity: job.identity.clone(),
        found: stored_found(id),
        origin: job.origin,
    });
    let mut outcome = Outcome {
        index: job.index,
        key: job.key,
        status,
        target_id,
        payload: None,
        policy: job.policy,
        reason: None,
        error: None,
        provenance: None,
    };
    outcome.provenance.get_or_insert_default().identity = Some(identity);
    Completion::Done { outcome, written }
}

impl Sink for LedgerSink {
    fn group_size(&self) -> usize {
        self.inner.group_size()
    }

    fn window(&self) -> Option<usize> {
        self.inner.window()
    }

    fn write(&self, jobs: Vec<Job>) -> BoxFuture<'_, Vec<Completion>> {
        Box::pin(self.write_tracked(jobs))
    }

    fn reads_prior(&self) -> bool {
        self.inner.reads_prior()
    }
}

/// Outcomes stored at most this often (and at the end), with the run's checkpoint.
const FLUSH_EVERY: Duration = Duration::from_millis(500);
const FLUSH_ROWS: usize = 1000;

/// An output followed by the store (see the module docs).
pub struct StoreOutput<O> {
    rec: Recorder,
    inner: O,
    handle: tokio::runtime::Handle,
    report: Report,
    last_flush: Instant,
    /// The report being stored while the next one fills: at most one in flight, so reports
    /// reach the store in order and memory stays bounded.
    storing: Option<tokio::task::JoinHandle<crate::state::StoreResult<()>>>,
}

impl<O: Output> StoreOutput<O> {
    /// The run's counters so far.
    pub fn counters(&self) -> Counters {
        self.report.counters
    }

    /// Records reported so far, in input order (the checkpoint).
    pub fn checkpoint(&self) -> u64 {
        self.report.checkpoint
    }

    pub fn into_inner(self) -> O {
        self.inner
    }

    /// Waits for the report in flight, if any.
    fn settle_stored(&mut self) -> io::Result<()> {
        let Some(task) = self.storing.take() else {
            return Ok(());
        };
        match self.handle.block_on(task) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io::Error::other(format!("state store: {e}"))),
            Err(e) => Err(io::Error::other(format!("state store: a task failed: {e}"))),
        }
    }

    /// Hands the report so far to the store, after the previous one is stored; the writer
    /// goes on with the next outcomes meanwhile.
    fn flush(&mut self) -> io::Result<()> {
        self.settle_stored()?;
        let next = Report {
            run_id: self.report.run_id.clone(),
            scope: self.report.scope.clone(),
            checkpoint: self.report.checkpoint,
            counters: self.report.counters,
            ..Report::default()
        };
        let report = std::mem::replace(&mut self.report, next);
        self.last_flush = Instant::now();
        let store = self.rec.store.clone();
        self.storing = Some(
            self.handle
                .spawn(async move { store.report(&report).await }),
        );
        Ok(())
    }
}

impl<O: Output> Output for StoreOutput<O> {
    fn outcome(&mut self, o: &Outcome) -> io::Result<()> {
        self.inner.outcome(o)?;
        let rec = &self.rec;
        let p = o.provenance.as_deref();
        let source_hash = p.and_then(|p| p.source.as_deref()).map(hash_bytes);
        let identity = p.and_then(|p| p.identity.clone());
        let change = Change {
            run_id: rec.run.id.clone(),
            index: o.index as u64,
            tenant: rec.scope.tenant.clone(),
            flow: rec.scope.flow.clone(),
            record_key: o.key.clone(),
            identity: identity.clone(),
            action: o.status.as_str().to_string(),
            provider: rec.target.provider.clone(),
            object: rec.target.object.clone(),
            target_id: o.target_id.clone(),
            http_status: o.error.as_ref().and_then(|e| e.status),
            correlation_id: o
                .error
                .as_ref()
                .and_then(|e| e.correlation_id().map(String::from)),
            duration_ms: p.and_then(|p| p.duration_ms),
            error_kind: o
                .error
                .as_ref()
                .and_then(|e| serde_json::to_value(e.kind).ok())
                .and_then(|v| v.as_str().map(String::from)),
            error: o.error.as_ref().map(|e| e.to_string()),
            payload: p
                .and_then(|p| p.payload.as_deref())
                .map(|text| crate::secrets::scrub::scrub(text).into_owned()),
            source_hash: source_hash.clone(),
            at: now_ms(),
        };
        match (&o.error, p.and_then(|p| p.source.as_deref())) {
            (Some(e), Some(source)) => {
                let id = source_hash.clone().unwrap_or_default();
                let (input, input_form) = rec.kept_input(&id, source);
                self.report.failures.push(Failure {
                    change: change.clone(),
                    rule_at: e.at.clone(),
                    provider_message: e.provider_message.clone(),
                    input,
                    input_form,
                })
            }
            (None, _) if o.status != Status::Skipped || identity.is_some() => {
                if let Some(h) = source_hash {
                    self.report.cleared.push((h, identity));
                }
            }
            _ => {}
        }
        // The changelog records what was done; an unchanged record did nothing (the run's
        // counters and the snapshot still account for it).
        if o.status != Status::Unchanged {
            self.report.changes.push(change);
        }
        self.report.counters.add(o.status.as_str());
        self.report.checkpoint = self.report.checkpoint.max(o.index as u64 + 1);
        if self.report.changes.len() >= FLUSH_ROWS || self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.flush()?;
        self.settle_stored()?;
        self.inner.finish()
    }
}
