//! Batch creates and batch updates (`batch_create`, `batch_update`): many records in one
//! request, one result per record.
//!
//! Chunking, per-item results and isolating bad items work as for batch upserts (see
//! [`batch`](super::batch)): results are matched to the records by position (creates) or by
//! the target id they carry (updates), per-item errors by index or id, and a chunk refused as
//! a whole (400/422) is sent again without the items it names, or split in halves.
//!
//! A create is never repeated blindly: a chunk whose answer was lost (see
//! [`send`](super::send)) fails every record with `outcome_unknown`, and so does a record the
//! response says nothing about, so the engine looks them up before creating again. A chunk
//! refused as a whole was not processed, so sending its other records again is safe.

use std::collections::VecDeque;
use std::time::Instant;

use serde_json::{Map, Value};

use super::HttpConnector;
use super::batch::{self, DEFAULT_MAX_BATCH, ItemResult, Outcome};
use super::context::{Context, Part};
use crate::connect::{ConnectError, ErrorKind, UpdateItem};
use crate::plan::provider::{ObjectPlan, OperationPlan};

/// One record of a batch write: its payload, and for updates the target id.
#[derive(Clone, Copy)]
pub(super) struct WriteItem<'a> {
    pub payload: &'a Value,
    pub id: Option<&'a str>,
}

impl HttpConnector {
    pub(crate) async fn create_batch_impl(
        &self,
        object: &str,
        payloads: &[&Value],
        deadline: Option<Instant>,
    ) -> Vec<ItemResult> {
        let items: Vec<WriteItem<'_>> = payloads
            .iter()
            .map(|p| WriteItem {
                payload: p,
                id: None,
            })
            .collect();
        self.write_batch(object, "batch_create", &items, deadline)
            .await
    }

    pub(crate) async fn update_batch_impl(
        &self,
        object: &str,
        items: &[UpdateItem<'_>],
        deadline: Option<Instant>,
    ) -> Vec<ItemResult> {
        let items: Vec<WriteItem<'_>> = items
            .iter()
            .map(|i| WriteItem {
                payload: i.payload,
                id: Some(i.id),
            })
            .collect();
        let mut out = self
            .write_batch(object, "batch_update", &items, deadline)
            .await;
        // An update that reports no id wrote the record it was given.
        for (r, item) in out.iter_mut().zip(&items) {
            if let Ok(w) = r {
                w.created = Some(false);
                if w.id.is_none() {
                    w.id = item.id.map(str::to_string);
                }
            }
        }
        out
    }

    async fn write_batch(
        &self,
        object: &str,
        operation: &str,
        items: &[WriteItem<'_>],
        deadline: Option<Instant>,
    ) -> Vec<ItemResult> {
        let (obj, op) = match self.operation(object, operation) {
            Ok(x) => x,
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        };
        let creates = operation == "batch_create";
        let max = op.max_batch.unwrap_or(DEFAULT_MAX_BATCH).max(1);
        let all: Vec<usize> = (0..items.len()).collect();
        let mut queue: VecDeque<Vec<usize>> = all.chunks(max).map(<[usize]>::to_vec).collect();
        let mut out: Vec<Option<ItemResult>> = vec![None; items.len()];
        while let Some(group) = queue.pop_front() {
            match self.write_chunk(obj, op, items, &group, deadline).await {
                Outcome::Done { results, resend } => {
                    for (i, r) in results {
                        if let Some(slot) = out.get_mut(i) {
                            slot.get_or_insert(r);
                        }
                    }
                    if !resend.is_empty() && resend.len() < group.len() {
                        queue.push_front(resend);
                    }
                }
                Outcome::Split(err) => {
                    if group.len() <= 1 {
                        for i in group {
                            if let Some(slot) = out.get_mut(i) {
                                slot.get_or_insert(Err(err.clone()));
                            }
                        }
                    } else {
                        let (a, b) = group.split_at(group.len() / 2);
                        tracing::debug!(provider = %self.plan.name, op = %op.what, size = group.len(), "batch refused as a whole; splitting");
                        queue.push_front(b.to_vec());
                        queue.push_front(a.to_vec());
                    }
                }
            }
        }
        out.into_iter()
            .map(|r| match r {
                Some(Err(e)) if creates && is_missing_result(&e) => Err(may_exist(e)),
                Some(r) => r,
                None if creates => Err(may_exist(missing_result())),
                None => Err(missing_result()),
            })
            .collect()
    }

    async fn write_chunk(
        &self,
        obj: &ObjectPlan,
        op: &OperationPlan,
        items: &[WriteItem<'_>],
        group: &[usize],
        deadline: Option<Instant>,
    ) -> Outcome {
        let all_fail = |e: ConnectError| batch::all_fail(group, e);
        let creds = self.creds();
        let base = &creds.context;
        let rendered = self.render_items(
            op,
            group,
            |i| items[i].payload,
            |i| {
                let cx = Context::new(base).with("payload", Part::Json(items[i].payload));
                match items[i].id {
                    Some(id) => cx.with("id", Part::Str(id)),
                    None => cx,
                }
            },
        );
        let rendered = match rendered {
            Ok(r) => r,
            Err(e) => return all_fail(e),
        };
        let cx = write_context(items, group, base, &rendered);
        // Updates are matched by the id they carry; creates by position.
        let ids: Vec<&str> = group
            .iter()
            .map(|&i| items[i].id.unwrap_or_default())
            .collect();
        let field = if items.first().is_some_and(|i| i.id.is_some()) {
            "id"
        } else {
            ""
        };
        let shape = batch::result_shape(op, &obj.response, field);
        match self
            .run_keeping_response(obj, op, &cx, deadline, shape)
            .await
        {
            Ok(resp) => self.map_results(obj, op, field, group, &ids, &resp),
            Err(failed) => self.refused(obj, op, field, group, &ids, failed),
        }
    }
}

/// The context of one chunk over its records rendered through the `item` template (over
/// `payload`, and `id` for updates).
fn write_context<'a>(
    items: &[WriteItem<'a>],
    group: &[usize],
    base: &'a Map<String, Value>,
    rendered: &'a Part<'a>,
) -> Context<'a> {
    let mut cx = Context::new(base).with_batch(rendered, group.iter().map(|&i| items[i].payload));
    if items.iter().any(|i| i.id.is_some()) {
        cx = cx.with(
            "ids",
            Part::List(
                group
                    .iter()
                    .map(|&i| Part::Str(items[i].id.unwrap_or_default()))
                    .collect(),
            ),
        );
    }
    if let Some(&first) = group.first() {
        cx = cx.with("first", Part::Json(items[first].payload));
    }
    cx
}

const MISSING: &str = "the batch response has no result for this item";

fn missing_result() -> ConnectError {
    ConnectError::new(ErrorKind::Fatal, MISSING)
}

fn is_missing_result(e: &ConnectError) -> bool {
    e.kind == ErrorKind::Fatal && e.message == MISSING && e.status.is_none()
}

/// A record of a processed batch create that the response says nothing about may have been
/// created: it is looked up, not created again.
fn may_exist(mut e: ConnectError) -> ConnectError {
    e.kind = ErrorKind::Transient;
    e.outcome_unknown = true;
    e
}
