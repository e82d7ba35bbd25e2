//! Batch lookups (`batch_search`): many values of one field in one request.
//!
//! The operation's templates read `values` (the values looked up, at most `max_batch` of
//! them) and `field`. The `results` JSONPath selects the matching records; each is attributed
//! to the value it matched by the `matched` JSONPath over the record (default: the field in
//! the record's field map, then in the record itself), compared as identity keys are: trimmed
//! and case-insensitively. A record whose value matches none is ignored.
//!
//! A lookup must not miss a record (the engine would create it a second time), so a request
//! is split in halves, and each half sent on its own, when
//! * its URL (path and query) would be longer than the operation's `max_url_length`, or
//! * the response's `total` (a JSONPath) says more records matched than the response holds
//!   (a first page only).
//!
//! A single value is sent whatever its URL length, and its first page is taken as the answer,
//! as a one-value `search` would.

use std::collections::VecDeque;
use std::time::Instant;

use serde_json::Value;

use super::batch::DEFAULT_MAX_BATCH;
use super::context::{Context, Part};
use super::send::Prepared;
use super::{HttpConnector, found, item_fields};
use crate::connect::{ConnectError, Found};
use crate::exec::normalize_key;
use crate::plan::provider::{ObjectPlan, OperationPlan};

impl HttpConnector {
    pub(crate) async fn search_many_impl(
        &self,
        object: &str,
        field: &str,
        values: &[&str],
        deadline: Option<Instant>,
    ) -> Result<Vec<(usize, Found)>, ConnectError> {
        let (obj, op) = self.operation(object, "batch_search")?;
        let keys: Vec<Option<String>> = values
            .iter()
            .map(|v| normalize_key(&Value::from(*v)))
            .collect();
        let max = op.max_batch.unwrap_or(DEFAULT_MAX_BATCH).max(1);
        let all: Vec<usize> = (0..values.len()).collect();
        let mut queue: VecDeque<Vec<usize>> = all.chunks(max).map(<[usize]>::to_vec).collect();
        let mut out = Vec::new();
        while let Some(group) = queue.pop_front() {
            let creds = self.creds();
            let cx = Context::new(&creds.context)
                .with(
                    "values",
                    Part::List(group.iter().map(|&i| Part::Str(values[i])).collect()),
                )
                .with("field", Part::Str(field));
            let req = self.prepare(op, &cx)?;
            let split = |queue: &mut VecDeque<Vec<usize>>, why: &str| {
                let (a, b) = group.split_at(group.len() / 2);
                tracing::debug!(provider = %self.plan.name, op = %op.what, size = group.len(), why, "splitting a batch lookup");
                queue.push_front(b.to_vec());
                queue.push_front(a.to_vec());
            };
            if group.len() > 1
                && let Some(limit) = op.max_url_length
                && self.target_length(&req) > limit
            {
                split(&mut queue, "URL too long");
                continue;
            }
            let resp = self
                .send(
                    &req,
                    self.limiters.get(&op.what),
                    &obj.errors,
                    deadline.map(tokio::time::Instant::from_std),
                )
                .await
                .map_err(|f| f.error)?;
            let items = match &op.results {
                Some(q) => q.all(&resp.body),
                None => match resp.body {
                    Value::Array(ref items) => items.clone(),
                    _ => Vec::new(),
                },
            };
            if group.len() > 1
                && let Some(total) = op.total.as_ref().and_then(|q| q.first(&resp.body))
                && total.as_u64().is_some_and(|t| t > items.len() as u64)
            {
                split(&mut queue, "more matches than one page");
                continue;
            }
            for item in items {
                let matched = matched_key(obj, op, field, &item);
                let f = found(&obj.response, op, item)?;
                let Some(matched) = matched else {
                    tracing::debug!(provider = %self.plan.name, op = %op.what, id = %f.id, "a result carries no value of the looked-up field");
                    continue;
                };
                for &i in &group {
                    if keys[i].as_deref() == Some(matched.as_str()) {
                        out.push((i, f.clone()));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The length of the request target (path and query) as sent.
    fn target_length(&self, req: &Prepared) -> usize {
        let full = self.url(&req.path, None);
        match url::Url::parse(&full) {
            Ok(mut u) => {
                if !req.query.is_empty() {
                    u.query_pairs_mut().extend_pairs(&req.query);
                }
                u[url::Position::BeforePath..].len()
            }
            Err(_) => full.len(),
        }
    }
}

/// The normalized value of the looked-up field in a result.
fn matched_key(obj: &ObjectPlan, op: &OperationPlan, field: &str, item: &Value) -> Option<String> {
    let v = match &op.matched {
        Some(q) => q.first(item),
        None => {
            let fields = item_fields(&obj.response, item);
            fields.get(field).or_else(|| item.get(field)).cloned()
        }
    }?;
    normalize_key(&v)
}
