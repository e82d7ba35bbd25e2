//! The endpoints rule files declare (`kind: endpoint`): authenticate, check, turn the body
//! into records and a tenant, send them through the flow, and answer with the declared
//! mapping of the outcomes.

use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use rulebridge::functions::SystemClock;
use rulebridge::plan::endpoint::{EndpointPlan, eval, eval_map};
use rulebridge::secrets::{Secret, SecretRef};

use super::records::send_records;
use super::{ApiError, App, FieldError, tenant_header};

/// An endpoint with its secret, resolved when the server starts.
pub struct Endpoint {
    pub plan: Arc<EndpointPlan>,
    pub key: Option<Secret>,
    /// Why it cannot serve (its key could not be read).
    pub disabled: Option<String>,
}

/// The plan's endpoints with their keys (each registered with the scrubber). An endpoint
/// whose key cannot be read is served as 503 (never open), with a warning now.
pub fn load(engine: &rulebridge::Engine, rules: &Path) -> Vec<Endpoint> {
    let base = if rules.is_dir() {
        rules.to_path_buf()
    } else {
        rules.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let mut out = Vec::new();
    for plan in engine.plan().endpoints() {
        let key = match &plan.auth {
            None => Ok(None),
            Some(a) => SecretRef::parse(&a.secret)
                .and_then(|r| r.resolve(&base).map_err(|e| e.to_string()))
                .map(|secret| {
                    rulebridge::secrets::register(secret.expose());
                    Some(secret)
                })
                .map_err(|e| format!("its key {} cannot be read: {e}", a.secret)),
        };
        let (key, disabled) = match key {
            Ok(k) => (k, None),
            Err(why) => {
                eprintln!(
                    "warning: endpoint {} ({} {}) answers 503: {why}",
                    plan.name, plan.method, plan.path
                );
                (None, Some(why))
            }
        };
        out.push(Endpoint {
            plan: plan.clone(),
            key,
            disabled,
        });
    }
    out
}

/// Equal bytes, compared in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The request headers as an object of lower-case names.
fn headers_value(headers: &HeaderMap) -> Value {
    let mut m = Map::new();
    for (name, value) in headers {
        if let Ok(v) = value.to_str() {
            m.insert(name.as_str().to_string(), Value::String(v.to_string()));
        }
    }
    Value::Object(m)
}

/// The value at a dotted path of `body`.
fn at_path<'v>(body: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(body, |v, seg| v.get(seg))
        .filter(|v| !v.is_null())
}

fn answer(status: StatusCode, body: Map<String, Value>) -> Response {
    (status, Json(Value::Object(body))).into_response()
}

fn eval_failed(e: impl std::fmt::Display) -> Response {
    ApiError::internal(format!("the endpoint's mapping failed: {e}")).into_response()
}

/// A 400 in the endpoint's words (its `invalid` mapping), with the fields.
fn invalid(plan: &EndpointPlan, context: &mut Value, errors: Vec<FieldError>) -> Response {
    if plan.invalid.is_empty() {
        return ApiError::invalid(errors).into_response();
    }
    context["errors"] = json!(errors);
    match eval_map(&plan.invalid, context, &SystemClock) {
        Ok(m) => answer(StatusCode::BAD_REQUEST, m),
        Err(e) => eval_failed(e),
    }
}

/// Answers a request to endpoint `n` of the plan.
pub async fn handle(app: Arc<App>, n: usize, headers: HeaderMap, body: Bytes) -> Response {
    let Some(endpoint) = app.endpoints.get(n) else {
        return ApiError::not_found("no such endpoint").into_response();
    };
    let plan = &endpoint.plan;
    if let Some(why) = &endpoint.disabled {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("endpoint {} is not available: {why}", plan.name),
        )
        .into_response();
    }
    let mut context = json!({ "headers": headers_value(&headers) });
    if let (Some(auth), Some(key)) = (&plan.auth, &endpoint.key) {
        let given = headers
            .get(auth.header.as_str())
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !same(given, key.expose().as_bytes()) {
            if auth.unauthorized.is_empty() {
                return answer(
                    StatusCode::UNAUTHORIZED,
                    Map::from_iter([("error".to_string(), json!("unauthorized"))]),
                );
            }
            return match eval_map(&auth.unauthorized, &context, &SystemClock) {
                Ok(m) => answer(StatusCode::UNAUTHORIZED, m),
                Err(e) => eval_failed(e),
            };
        }
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let errors = vec![FieldError::new("body", format!("not JSON: {e}"))];
            return invalid(plan, &mut context, errors);
        }
    };
    let mut errors = Vec::new();
    for h in &plan.require_headers {
        let present = headers
            .get(h.as_str())
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !v.trim().is_empty());
        if !present {
            errors.push(FieldError::new(h.clone(), "the header is required"));
        }
    }
    for p in &plan.require_body {
        if at_path(&body, p).is_none() {
            errors.push(FieldError::new(p.clone(), "the field is required"));
        }
    }
    context["body"] = body;
    if !errors.is_empty() {
        return invalid(plan, &mut context, errors);
    }
    let tenant = match &plan.tenant {
        Some(e) => match eval(e, &context, &SystemClock) {
            Ok(Value::String(t)) if !t.trim().is_empty() => t,
            Ok(Value::Null) => match tenant_header(&headers) {
                Ok(t) => t.unwrap_or_default(),
                Err(e) => return e.into_response(),
            },
            Ok(_) => {
                let errors = vec![FieldError::new("tenant", "must be a non-empty string")];
                return invalid(plan, &mut context, errors);
            }
            Err(e) => return eval_failed(e),
        },
        None => match tenant_header(&headers) {
            Ok(t) => t.unwrap_or_default(),
            Err(e) => return e.into_response(),
        },
    };
    context["tenant"] = Value::String(tenant.clone());
    let field = plan
        .records
        .source
        .strip_prefix("body.")
        .unwrap_or(&plan.records.source)
        .to_string();
    let items = match eval(&plan.records, &context, &SystemClock) {
        Ok(Value::Array(items)) => items,
        Ok(_) => {
            let errors = vec![FieldError::new(field, "must be an array of objects")];
            return invalid(plan, &mut context, errors);
        }
        Err(e) => return eval_failed(e),
    };
    let bad: Vec<FieldError> = items
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.is_object())
        .map(|(i, _)| FieldError::new(format!("{field}[{i}]"), "must be an object"))
        .collect();
    if !bad.is_empty() {
        return invalid(plan, &mut context, bad);
    }
    let extra = match eval_map(&plan.with, &context, &SystemClock) {
        Ok(m) => m,
        Err(e) => return eval_failed(e),
    };
    let records: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut r = item.clone();
            if let Value::Object(m) = &mut r {
                for (k, v) in &extra {
                    m.insert(k.clone(), v.clone());
                }
            }
            r
        })
        .collect();
    let sent = match send_records(&app, &tenant, &plan.flow, records, false, None).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let mut results = Vec::with_capacity(sent.outcomes.len());
    for (item, outcome) in items.iter().zip(&sent.outcomes) {
        let status = plan.status_word(outcome.status.as_str()).to_string();
        let cx = json!({
            "body": context["body"],
            "headers": context["headers"],
            "tenant": tenant,
            "input": item,
            "outcome": outcome,
            "status": status,
        });
        match eval_map(&plan.result, &cx, &SystemClock) {
            Ok(m) => results.push(Value::Object(m)),
            Err(e) => return eval_failed(e),
        }
    }
    context["results"] = Value::Array(results);
    context["counters"] = json!(sent.counters);
    context["run"] = json!(sent.run_id);
    match eval_map(&plan.response, &context, &SystemClock) {
        Ok(m) => answer(StatusCode::OK, m),
        Err(e) => eval_failed(e),
    }
}

/// The axum handler of endpoint `n`.
pub fn route(method: &str, n: usize) -> axum::routing::MethodRouter<Arc<App>> {
    let handler = move |State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes| async move {
        handle(app, n, headers, body).await
    };
    match method {
        "PUT" => axum::routing::put(handler),
        "PATCH" => axum::routing::patch(handler),
        _ => axum::routing::post(handler),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whole() {
        assert!(same(b"key-2024", b"key-2024"));
        assert!(!same(b"key-2024", b"key-2025"));
        assert!(!same(b"key", b"key-2024"));
        assert!(!same(b"", b"k"));
    }

    #[test]
    fn dotted_paths() {
        let body = json!({"tenant": {"id": "t", "name": null}, "users": []});
        assert!(at_path(&body, "tenant.id").is_some());
        assert!(at_path(&body, "tenant.name").is_none());
        assert!(at_path(&body, "users").is_some());
        assert!(at_path(&body, "operation").is_none());
    }
}
