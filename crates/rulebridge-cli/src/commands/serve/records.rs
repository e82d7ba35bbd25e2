//! `/v1`: records into a flow, and the runs, changelog and dead letters of the store.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use rulebridge::Outcome;
use rulebridge::exec::send::SendOptions;
use rulebridge::state::{ChangeFilter, Counters, RunStart, Store};
use rulebridge::syntax::doc::OnMatch;

use super::{ApiError, App, FieldError, resolve_tenant};

/// What a batch of records came to.
pub struct Sent {
    /// The store's run (none for a dry run).
    pub run_id: Option<String>,
    /// One per record, in input order.
    pub outcomes: Vec<Outcome>,
    pub counters: Counters,
}

/// `duplicatePolicy` as the hubspot-salesforce seed spells it.
pub fn parse_policy(text: &str) -> Option<OnMatch> {
    match text {
        "skip" => Some(OnMatch::Skip),
        "update" => Some(OnMatch::Update),
        "create_new" => Some(OnMatch::CreateNew),
        _ => None,
    }
}

/// `true`/`false` (and `1`/`0`) of a query parameter.
fn parse_bool(field: &str, text: &str) -> Result<bool, FieldError> {
    match text {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(FieldError::new(field, "must be true or false")),
    }
}

/// The records of a body: one object, or an array of objects.
pub fn records_of(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(vec![FieldError::new("body", format!("not JSON: {e}"))]))?;
    let records = match value {
        Value::Array(items) => items,
        v @ Value::Object(_) => vec![v],
        _ => {
            return Err(ApiError::invalid(vec![FieldError::new(
                "body",
                "must be a record (a JSON object) or an array of records",
            )]));
        }
    };
    let bad: Vec<FieldError> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.is_object())
        .map(|(i, _)| FieldError::new(format!("[{i}]"), "a record must be a JSON object"))
        .collect();
    if !bad.is_empty() {
        return Err(ApiError::invalid(bad));
    }
    Ok(records)
}

/// Sends (or dry-runs) `records` through `flow` for `tenant`, as `run` does: through the
/// ledger, each outcome in the changelog, failures in the dead letters, as a run of its own.
/// Runs as a task of its own holding the drain guard, so a client that goes away or a
/// shutdown does not cut a batch short.
pub async fn send_records(
    app: &Arc<App>,
    tenant: &str,
    flow: &str,
    records: Vec<Value>,
    dry_run: bool,
    on_match: Option<OnMatch>,
) -> Result<Sent, ApiError> {
    let mut input = Vec::new();
    for r in &records {
        serde_json::to_writer(&mut input, r).map_err(ApiError::internal)?;
        input.push(b'\n');
    }
    let guard = app.drain.clone().read_owned().await;
    let (app, tenant, flow) = (app.clone(), tenant.to_string(), flow.to_string());
    // The pipeline's future is not `Send`: it runs on a blocking thread of its own.
    let handle = tokio::runtime::Handle::current();
    let task = tokio::task::spawn_blocking(move || {
        let _guard = guard;
        let result = handle.block_on(run_batch(&app, &tenant, &flow, input, dry_run, on_match));
        if let (Ok(sent), Some(plan)) = (&result, app.engine.plan().find_flow(&flow)) {
            app.metrics.records(&flow, &plan.provider, &sent.outcomes);
        }
        result
    });
    task.await
        .map_err(|e| ApiError::internal(format!("the batch did not finish: {e}")))?
}

async fn run_batch(
    app: &Arc<App>,
    tenant: &str,
    flow: &str,
    input: Vec<u8>,
    dry_run: bool,
    on_match: Option<OnMatch>,
) -> Result<Sent, ApiError> {
    let engine = app.engine.clone();
    let options = app.options.clone();
    let input = std::io::Cursor::new(input);
    if dry_run {
        let flow = flow.to_string();
        // Building a runner may read secrets (a blocking call for some sources).
        let pipeline = tokio::task::spawn_blocking(move || {
            engine.runner(&flow).map(|r| r.dry_run_pipeline(options))
        })
        .await
        .map_err(ApiError::internal)??;
        let (_, mut outcomes): (_, Vec<Outcome>) = pipeline
            .run(input, Vec::new(), |_| {})
            .await
            .map_err(ApiError::internal)?;
        outcomes.sort_by_key(|o| o.index);
        let mut counters = Counters::default();
        for o in &outcomes {
            counters.add(o.status.as_str());
        }
        return Ok(Sent {
            run_id: None,
            outcomes,
            counters,
        });
    }
    let start = RunStart {
        tenant: tenant.to_string(),
        flow: app
            .engine
            .plan()
            .find_flow(flow)
            .map_or_else(|| flow.to_string(), |f| f.name.clone()),
        rules_hash: app.rules_hash.clone(),
        input: None,
    };
    let run = app.store.begin_run(&start).await?;
    let run_id = run.id.clone();
    let send = SendOptions {
        on_match,
        ..SendOptions::default()
    };
    let store: Arc<dyn Store> = app.store.clone();
    let flow_name = flow.to_string();
    // A tenant who connected the target over OAuth is sent with their own tokens.
    let connector = match app
        .engine
        .plan()
        .find_flow(flow)
        .map(|f| f.provider.clone())
    {
        Some(p) => super::oauth::connector(app, tenant, &p).await?,
        None => None,
    };
    let (pipeline, recorder) = tokio::task::spawn_blocking(move || match connector {
        Some(connector) => {
            engine.recorded_sender_through(&flow_name, connector, options, send, store, run, false)
        }
        None => engine.recorded_sender(&flow_name, options, send, store, run, false),
    })
    .await
    .map_err(ApiError::internal)??;
    let beat = {
        let store = app.store.clone();
        let run_id = run_id.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                if let Err(e) = store.heartbeat(&run_id).await {
                    tracing::warn!("state store: heartbeat failed: {e}");
                }
            }
        })
    };
    let recorder = recorder.with_input_key(app.input_key.clone());
    let output = recorder.output(Vec::<Outcome>::new(), tokio::runtime::Handle::current());
    let result = pipeline.run(input, output, |_| {}).await;
    beat.abort();
    let (_, output) = result.map_err(ApiError::internal)?;
    let counters = output.counters();
    app.store
        .finish_run(&run_id, counters, output.checkpoint())
        .await?;
    let mut outcomes = output.into_inner();
    outcomes.sort_by_key(|o| o.index);
    Ok(Sent {
        run_id: Some(run_id),
        outcomes,
        counters,
    })
}

/// `POST /v1/flows/{flow}/records[?dry_run=true][&duplicatePolicy=skip|update|create_new]`.
pub async fn post_records(
    State(app): State<Arc<App>>,
    Path(flow): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let tenant = resolve_tenant(&app, &headers).await?;
    let Some(plan) = app.engine.plan().find_flow(&flow) else {
        return Err(ApiError::not_found(format!("no flow `{flow}`")));
    };
    let mut problems = Vec::new();
    let mut dry_run = false;
    let mut on_match = None;
    for (k, v) in &query {
        match k.as_str() {
            "dry_run" | "dryRun" => match parse_bool(k, v) {
                Ok(b) => dry_run = b,
                Err(e) => problems.push(e),
            },
            "duplicatePolicy" => match parse_policy(v) {
                Some(_) if plan.duplicates.is_none() => problems.push(FieldError::new(
                    k,
                    format!("flow `{}` has no duplicate rule to override", plan.name),
                )),
                Some(p) => on_match = Some(p),
                None => problems.push(FieldError::new(
                    k,
                    "must be one of skip, update, create_new",
                )),
            },
            _ => problems.push(FieldError::new(
                k,
                "unknown parameter (dry_run, duplicatePolicy)",
            )),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    let records = records_of(&body)?;
    let sent = send_records(&app, &tenant, &plan.name, records, dry_run, on_match).await?;
    Ok(Json(json!({
        "flow": plan.name,
        "run": sent.run_id,
        "dry_run": dry_run,
        "counters": sent.counters,
        "outcomes": sent.outcomes,
    })))
}

/// `GET /v1/runs/{id}`.
pub async fn get_run(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let tenant = resolve_tenant(&app, &headers).await?;
    match app.store.run(&id).await? {
        // Another tenant's run is as absent as one that never was.
        Some(run) if run.tenant == tenant => Ok(Json(json!(run))),
        _ => Err(ApiError::not_found(format!("no run `{id}`"))),
    }
}

/// `GET /v1/log?flow=&key=&status=&run=&since=&limit=`: the changelog, newest first.
pub async fn get_log(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let mut filter = ChangeFilter {
        tenant: resolve_tenant(&app, &headers).await?,
        limit: Some(100),
        ..ChangeFilter::default()
    };
    let mut problems = Vec::new();
    for (k, v) in query {
        match k.as_str() {
            "flow" => filter.flow = Some(v),
            "key" => filter.record_key = Some(v),
            "status" => match v.as_str() {
                "created" | "updated" | "unchanged" | "skipped" | "failed" => {
                    filter.action = Some(v)
                }
                _ => problems.push(FieldError::new(
                    k,
                    "must be one of created, updated, unchanged, skipped, failed",
                )),
            },
            "run" => filter.run_id = Some(v),
            "since" => match crate::commands::state::parse_since(&v) {
                Ok(ms) => filter.since = Some(ms),
                Err(e) => problems.push(FieldError::new(k, e.to_string())),
            },
            "limit" => match v.parse::<u32>() {
                Ok(n) if (1..=10_000).contains(&n) => filter.limit = Some(n),
                _ => problems.push(FieldError::new(k, "must be a number from 1 to 10000")),
            },
            _ => problems.push(FieldError::new(
                k,
                "unknown parameter (flow, key, status, run, since, limit)",
            )),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    let changes = app.store.changes(&filter).await?;
    Ok(Json(json!({ "changes": changes })))
}

/// `GET /v1/dlq?flow=`: the dead letters, oldest first (without their input).
pub async fn get_dlq(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let tenant = resolve_tenant(&app, &headers).await?;
    let mut flow = None;
    for (k, v) in query {
        match k.as_str() {
            "flow" => flow = Some(v),
            _ => {
                return Err(ApiError::invalid(vec![FieldError::new(
                    k,
                    "unknown parameter (flow)",
                )]));
            }
        }
    }
    let letters = app.store.dead_letters(&tenant, flow.as_deref()).await?;
    Ok(Json(json!({ "dead_letters": letters })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_one_record_or_an_array_of_them() {
        assert_eq!(records_of(br#"{"a":1}"#).map(|r| r.len()).ok(), Some(1));
        assert_eq!(
            records_of(br#"[{"a":1},{}]"#).map(|r| r.len()).ok(),
            Some(2)
        );
        let e = records_of(br#"[{"a":1}, 3, "x"]"#).err();
        let fields: Vec<String> = e
            .map(|e| e.details.into_iter().map(|d| d.field).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["[1]", "[2]"]);
        assert!(records_of(b"42").is_err());
        assert!(records_of(b"{").is_err());
    }

    #[test]
    fn duplicate_policies() {
        assert_eq!(parse_policy("skip"), Some(OnMatch::Skip));
        assert_eq!(parse_policy("create_new"), Some(OnMatch::CreateNew));
        assert_eq!(parse_policy("merge"), None);
    }
}
