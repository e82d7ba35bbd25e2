//! Batch upserts: chunking, mapping per-item results back to inputs, isolating bad items.
//!
//! Items are sent in chunks of the operation's `max_batch` (default
//! [`DEFAULT_MAX_BATCH`]). Every input gets exactly one result:
//!
//! * **Results** (the `results` JSONPath, else a top-level array or `results`) are matched to
//!   inputs by identity when each carries it (`<field>` of the result's field map — the
//!   object's `response.fields` — or of the result itself, equal to the item's key;
//!   case-insensitively, as some systems lower-case e-mails), else by position. A
//!   result with `success: false` (a collection of writes) or a `status` of `failed`/`error`
//!   (per-item status endpoints) is that item's error. The record id is the operation's `id`
//!   JSONPath over the result, else `id`/`Id`; whether it was created is the `created`
//!   JSONPath, else a boolean `new` or `created`. The `created` value may be a boolean or a
//!   status word: `created`/`new`/`inserted` mean created, `updated`/`unchanged` mean not.
//! * **Item errors** (the `item_errors` JSONPath, else `errors`) are matched to inputs by
//!   `context.ids` / `context.<field>` values equal to a key, or by an input index (`index`,
//!   `inputIndex`, `context.index`), and classified as if each were a response of its own.
//! * A chunk **refused as a whole** (400 or 422): items named by its errors fail and the others
//!   are sent again; with no item named, the chunk is split in halves, recursively, until the
//!   bad items are alone.
//! * Any other failure (auth, rate limit or transient error after the retries) is every item's
//!   error.
//! * With `batch: { group_by: ... }`, a chunk holds the items of one group only (see
//!   [`group`](super::group)); its templates read the value as `group`.

use std::collections::VecDeque;
use std::time::Instant;

use serde_json::{Map, Value};

use super::classify::classify_item;
use super::context::{Context, Part};
use super::group;
use super::operation::id_text;
use super::send::{Failed, Response};
use super::shape::Shape;
use super::{HttpConnector, item_fields, response_id};
use crate::connect::{ConnectError, ErrorKind, UpsertItem, Written};
use crate::plan::member_path::Step;
use crate::plan::provider::{ObjectPlan, OperationPlan, Query, ResponsePlan};

/// Chunk size of a batch operation without `max_batch`.
pub const DEFAULT_MAX_BATCH: usize = 100;

pub(super) type ItemResult = Result<Written, ConnectError>;

pub(super) enum Outcome {
    /// Results for (some of) the chunk's items; the rest are sent again.
    Done {
        results: Vec<(usize, ItemResult)>,
        resend: Vec<usize>,
    },
    /// Refused as a whole without saying which items: split.
    Split(ConnectError),
}

impl HttpConnector {
    pub(crate) async fn upsert_batch_impl(
        &self,
        object: &str,
        field: &str,
        items: &[UpsertItem<'_>],
        deadline: Option<Instant>,
    ) -> Vec<ItemResult> {
        let (obj, op) = match self.operation(object, "batch_upsert") {
            Ok(x) => x,
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        };
        let max = op.max_batch.unwrap_or(DEFAULT_MAX_BATCH).max(1);
        // One request per group (`batch.group_by`), cut at `max`; an item whose group cannot
        // be computed fails alone.
        let payloads: Vec<&Value> = items.iter().map(|i| i.payload).collect();
        let (chunks, ungrouped) = group::chunks(op.group_by.as_ref(), &payloads, max);
        let mut queue: VecDeque<Vec<usize>> = chunks.into();
        let mut out: Vec<Option<ItemResult>> = vec![None; items.len()];
        for (i, e) in ungrouped {
            out[i] = Some(Err(e));
        }
        while let Some(group) = queue.pop_front() {
            match self
                .send_chunk(obj, op, field, items, &group, deadline)
                .await
            {
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
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(ConnectError::new(
                        ErrorKind::Fatal,
                        "the batch response has no result for this item",
                    ))
                })
            })
            .collect()
    }

    async fn send_chunk(
        &self,
        obj: &ObjectPlan,
        op: &OperationPlan,
        field: &str,
        items: &[UpsertItem<'_>],
        group: &[usize],
        deadline: Option<Instant>,
    ) -> Outcome {
        let all_fail = |e: ConnectError| all_fail(group, e);
        let creds = self.creds();
        let base = &creds.context;
        let rendered = self.render_items(
            op,
            group,
            |i| items[i].payload,
            |i| {
                Context::new(base)
                    .with("payload", Part::Json(items[i].payload))
                    .with("key", Part::Str(items[i].key))
                    .with("field", Part::Str(field))
            },
        );
        let rendered = match rendered {
            Ok(r) => r,
            Err(e) => return all_fail(e),
        };
        let cx = match batch_context(op, field, items, group, base, &rendered) {
            Ok(cx) => cx,
            Err(e) => return all_fail(e),
        };
        let keys: Vec<&str> = group.iter().map(|&i| items[i].key).collect();
        let shape = result_shape(op, &obj.response, field);
        match self
            .run_keeping_response(obj, op, &cx, deadline, shape)
            .await
        {
            Ok(resp) => self.map_results(obj, op, field, group, &keys, &resp),
            Err(failed) => self.refused(obj, op, field, group, &keys, failed),
        }
    }

    /// A chunk that failed as a whole. A 400/422 whose body names some items fails those and
    /// sends the rest again; one that names none is split; anything else fails every item.
    pub(super) fn refused(
        &self,
        obj: &ObjectPlan,
        op: &OperationPlan,
        field: &str,
        group: &[usize],
        keys: &[&str],
        failed: Failed,
    ) -> Outcome {
        let whole = matches!(failed.error.status, Some(400 | 422));
        let Some(resp) = failed.response.filter(|_| whole) else {
            return all_fail(group, failed.error);
        };
        let mut results = Vec::new();
        let mut named = vec![false; group.len()];
        for e in item_errors(op, &resp.body) {
            for pos in error_targets(e, field, keys) {
                if !named[pos] {
                    named[pos] = true;
                    results.push((
                        group[pos],
                        Err(classify_item(&obj.errors, &self.plan.errors, e)),
                    ));
                }
            }
        }
        if results.is_empty() {
            return Outcome::Split(failed.error);
        }
        let resend = group
            .iter()
            .zip(&named)
            .filter(|(_, n)| !**n)
            .map(|(&i, _)| i)
            .collect();
        Outcome::Done { results, resend }
    }

    /// A chunk's items through the operation's `item` template over `context(i)` (each its
    /// `payload(i)` when there is no template), as one list.
    pub(super) fn render_items<'a>(
        &'a self,
        op: &'a OperationPlan,
        group: &[usize],
        payload: impl Fn(usize) -> &'a Value,
        context: impl Fn(usize) -> Context<'a>,
    ) -> Result<Part<'a>, ConnectError> {
        let mut out = Vec::with_capacity(group.len());
        for &i in group {
            out.push(match &op.item {
                Some(t) => self.plan.templates.render_body(t, &context(i))?,
                None => Part::Json(payload(i)),
            });
        }
        Ok(Part::List(out))
    }

    pub(super) fn map_results(
        &self,
        obj: &ObjectPlan,
        op: &OperationPlan,
        field: &str,
        group: &[usize],
        keys: &[&str],
        resp: &Response,
    ) -> Outcome {
        // A failed result is classified by the kit's rules, which may read any of its
        // members: then the whole answer is read.
        let whole;
        let body = if resp.projected && results(op, &resp.body).into_iter().any(failed) {
            whole = resp.whole();
            &*whole
        } else {
            &resp.body
        };
        let mut assigned: Vec<Option<ItemResult>> = vec![None; group.len()];
        // Per-item errors first: they say which item they belong to.
        let mut unplaced_errors = Vec::new();
        for e in item_errors(op, body) {
            let targets = error_targets(e, field, keys);
            for &pos in &targets {
                if assigned[pos].is_none() {
                    assigned[pos] = Some(Err(classify_item(&obj.errors, &self.plan.errors, e)));
                }
            }
            if targets.is_empty() {
                unplaced_errors.push(e);
            }
        }
        // Borrowed from the response: results are read, not copied.
        let results = results(op, body);
        let to_result = |r: &Value| -> ItemResult {
            if failed(r) {
                let first_error = r.get("errors").and_then(|e| e.get(0)).unwrap_or(r);
                return Err(classify_item(&obj.errors, &self.plan.errors, first_error));
            }
            Ok(Written {
                id: response_id(op, r),
                created: created(op, r),
            })
        };
        // By identity, when every result carries one that names a distinct open item.
        let by_identity: Option<Vec<usize>> = {
            let mut taken = vec![false; group.len()];
            results
                .iter()
                .map(|r| {
                    let pos = identity_position(&obj.response, r, field, keys, &taken)?;
                    taken[pos] = true;
                    Some(pos)
                })
                .collect()
        };
        match by_identity {
            Some(positions) if !results.is_empty() => {
                for (r, pos) in results.iter().zip(positions) {
                    if assigned[pos].is_none() {
                        assigned[pos] = Some(to_result(r));
                    }
                }
            }
            _ => {
                // By position among the items no error claimed.
                let open: Vec<usize> = (0..group.len())
                    .filter(|&p| assigned[p].is_none())
                    .collect();
                if open.len() == results.len() {
                    for (r, pos) in results.iter().zip(open) {
                        assigned[pos] = Some(to_result(r));
                    }
                } else if !results.is_empty() {
                    tracing::warn!(provider = %self.plan.name, op = %op.what, results = results.len(), open = open.len(), "batch results cannot be matched to the items");
                }
            }
        }
        // Items the response says nothing about: an error no item claimed explains them.
        let fallback = unplaced_errors
            .first()
            .map(|e| classify_item(&obj.errors, &self.plan.errors, e));
        let results = assigned
            .into_iter()
            .zip(group)
            .map(|(r, &i)| {
                let r = r.unwrap_or_else(|| {
                    Err(fallback.clone().unwrap_or_else(|| {
                        ConnectError::new(
                            ErrorKind::Fatal,
                            "the batch response has no result for this item",
                        )
                    }))
                });
                (i, r)
            })
            .collect();
        Outcome::Done {
            results,
            resend: Vec::new(),
        }
    }
}

/// A batch answer's results: the operation's `results` query, else a top-level array or
/// `results`.
fn results<'v>(op: &OperationPlan, body: &'v Value) -> Vec<&'v Value> {
    match &op.results {
        Some(q) => q.refs(body),
        None => match body {
            Value::Array(a) => a.iter().collect(),
            _ => body
                .get("results")
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default(),
        },
    }
}

/// What `map_results` reads of a successful answer, for a chunk matched by `field`: the
/// item errors whole, and of each result its flags, errors, id, `created` and identity.
/// `None` (the whole answer) when a query is not a plain member path.
pub(super) fn result_shape(
    op: &OperationPlan,
    response: &ResponsePlan,
    field: &str,
) -> Option<Shape> {
    let name = |n: &str| Step::Name(n.to_string());
    let steps = |q: &Option<Query>| q.as_ref().map(|q| q.steps().map(<[Step]>::to_vec));
    let mut paths: Vec<Vec<Step>> =
        vec![steps(&op.item_errors).unwrap_or(Some(vec![name("errors")]))?];
    let results = match steps(&op.results) {
        Some(r) => vec![r?],
        None => vec![vec![Step::All], vec![name("results"), Step::All]],
    };
    let mut item: Vec<Vec<Step>> = ["success", "status", "errors"]
        .iter()
        .map(|n| vec![name(n)])
        .collect();
    match steps(&op.id) {
        Some(id) => item.push(id?),
        None => item.push(vec![name("id")]),
    }
    match steps(&op.created) {
        Some(created) => item.push(created?),
        None => item.extend([vec![name("new")], vec![name("created")]]),
    }
    if !field.is_empty() {
        item.push(vec![name(field)]);
        if let Some(fields) = steps(&response.fields) {
            let mut path = fields?;
            path.push(name(field));
            item.push(path);
        }
    }
    for r in &results {
        for i in &item {
            paths.push(r.iter().chain(i).cloned().collect());
        }
    }
    Some(Shape::of(paths.iter().map(Vec::as_slice)))
}

/// A result that says its item failed: `success: false`, or a failed `status` word.
fn failed(r: &Value) -> bool {
    r.get("success") == Some(&Value::Bool(false)) || failed_status(r)
}

/// The context of one chunk over its rendered items (`items`, `inputs`, `records`).
fn batch_context<'a>(
    op: &OperationPlan,
    field: &'a str,
    items: &[UpsertItem<'a>],
    group: &[usize],
    base: &'a Map<String, Value>,
    rendered: &'a Part<'a>,
) -> Result<Context<'a>, ConnectError> {
    let mut cx = Context::new(base)
        .with_batch(rendered, group.iter().map(|&i| items[i].payload))
        .with(
            "keys",
            Part::List(group.iter().map(|&i| Part::Str(items[i].key)).collect()),
        )
        .with("field", Part::Str(field));
    if let Some(&first) = group.first() {
        cx = cx.with("first", Part::Json(items[first].payload));
        // Every item of a chunk has the same group value: its first item's.
        if let Some(g) = &op.group_by {
            cx = cx.with(
                "group",
                Part::Owned(group::group_value(g, items[first].payload)?),
            );
        }
    }
    Ok(cx)
}

/// Every item of a chunk fails with `e`.
pub(super) fn all_fail(group: &[usize], e: ConnectError) -> Outcome {
    Outcome::Done {
        results: group.iter().map(|&i| (i, Err(e.clone()))).collect(),
        resend: Vec::new(),
    }
}

pub(super) fn item_errors<'v>(op: &OperationPlan, body: &'v Value) -> Vec<&'v Value> {
    match &op.item_errors {
        Some(q) => q.refs(body),
        None => body
            .get("errors")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter(|e| e.is_object()).collect())
            .unwrap_or_default(),
    }
}

fn created(op: &OperationPlan, r: &Value) -> Option<bool> {
    match &op.created {
        Some(q) => q.first_ref(r).and_then(created_flag),
        None => ["new", "created"]
            .iter()
            .find_map(|k| r.get(*k).and_then(Value::as_bool)),
    }
}

/// A `created` value: a boolean, or a status word (`"created"` / `"updated"`).
fn created_flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "created" | "new" | "inserted" | "true" => Some(true),
            "updated" | "unchanged" | "existing" | "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A result whose `status` word says the item failed (`{"userId": .., "status": "failed",
/// "error": ".."}`).
fn failed_status(r: &Value) -> bool {
    r.get("status").and_then(Value::as_str).is_some_and(|s| {
        matches!(
            s.to_ascii_lowercase().as_str(),
            "failed" | "failure" | "error"
        )
    })
}

fn same_key(a: &str, b: &str) -> bool {
    a == b || a.eq_ignore_ascii_case(b)
}

/// The position of the open item a result names by its identity value.
fn identity_position(
    response: &ResponsePlan,
    r: &Value,
    field: &str,
    keys: &[&str],
    taken: &[bool],
) -> Option<usize> {
    let fields = item_fields(response, r);
    let candidates = [fields.get(field), r.get(field)];
    candidates.into_iter().flatten().find_map(|v| {
        let v = id_text(v)?;
        keys.iter()
            .enumerate()
            .find(|(p, k)| !taken[*p] && same_key(k, &v))
            .map(|(p, _)| p)
    })
}

/// The items an error names: by key in `context.ids` / `context.<field>`, or by index.
pub(super) fn error_targets(e: &Value, field: &str, keys: &[&str]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut add = |p: usize| {
        if p < keys.len() && !out.contains(&p) {
            out.push(p);
        }
    };
    let context = e.get("context");
    for named in [
        context.and_then(|c| c.get("ids")),
        context.and_then(|c| c.get(field)),
    ]
    .into_iter()
    .flatten()
    {
        let values: Vec<&Value> = match named {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        for v in values {
            if let Some(text) = id_text(v) {
                for (p, k) in keys.iter().enumerate() {
                    if same_key(k, &text) {
                        add(p);
                    }
                }
            }
        }
    }
    for index in [
        e.get("index"),
        e.get("inputIndex"),
        context.and_then(|c| c.get("index")),
    ]
    .into_iter()
    .flatten()
    {
        let values: Vec<&Value> = match index {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        for v in values {
            let n = match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            };
            if let Some(n) = n.and_then(|n| usize::try_from(n).ok()) {
                add(n);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_their_items() {
        let keys = ["a@x.com", "b@x.com", "c@x.com"];
        let e = json!({"message": "bad", "context": {"ids": ["B@x.com"]}});
        assert_eq!(error_targets(&e, "email", &keys), vec![1]);
        let e = json!({"message": "bad", "context": {"index": ["2"]}});
        assert_eq!(error_targets(&e, "email", &keys), vec![2]);
        let e = json!({"message": "bad"});
        assert!(error_targets(&e, "email", &keys).is_empty());
    }

    #[test]
    fn status_words() {
        assert_eq!(created_flag(&json!("created")), Some(true));
        assert_eq!(created_flag(&json!("Updated")), Some(false));
        assert_eq!(created_flag(&json!(true)), Some(true));
        assert_eq!(created_flag(&json!("queued")), None);
        assert!(failed_status(
            &json!({"userId": "u1", "status": "failed", "error": "x"})
        ));
        assert!(!failed_status(
            &json!({"userId": "u1", "status": "created"})
        ));
        assert!(!failed_status(&json!({"status": 500})));
    }

    #[test]
    fn results_name_their_items() {
        let keys = ["a@x.com", "b@x.com"];
        let nested = ResponsePlan {
            fields: crate::plan::provider::Query::compile("$.data").ok(),
            ..ResponsePlan::default()
        };
        let r = json!({"id": "9", "data": {"email": "b@x.com"}});
        assert_eq!(
            identity_position(&nested, &r, "email", &keys, &[false, false]),
            Some(1)
        );
        assert_eq!(
            identity_position(&nested, &r, "email", &keys, &[false, true]),
            None
        );
        // Without a field path, the result itself carries the identity.
        let flat = json!({"id": "9", "email": "A@x.com"});
        assert_eq!(
            identity_position(
                &ResponsePlan::default(),
                &flat,
                "email",
                &keys,
                &[false, false]
            ),
            Some(0)
        );
    }
}
