//! Running a [`Plan`](crate::plan::Plan) on records: validate → policy → map → identity key.
//!
//! Evaluation does no I/O and never clones the input record; each record ends in exactly one
//! [`Outcome`]. A bad record is a `failed` outcome with its reason — the others go on.

mod outcome;
mod policy;
mod record;
pub mod send;
pub mod stream;

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::expr::Env;
use crate::functions::{Clock, SystemClock};
use crate::plan::{ExprAt, FlowPlan, MappingPlan, ValuePlan};

pub use outcome::{FailureKind, Outcome, RecordError, Status};
pub use record::parse_record;

/// What evaluation needs besides the plan: time and resolved secrets.
#[derive(Clone)]
pub struct ExecContext {
    pub clock: Arc<dyn Clock>,
    /// Secret values by name, bound as `secrets.NAME`. Never printed: payload fields computed
    /// from them are listed in [`FlowPlan::redacted`].
    secrets: Value,
}

impl std::fmt::Debug for ExecContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&String> = self
            .secrets
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        f.debug_struct("ExecContext")
            .field("secrets", &names)
            .finish_non_exhaustive()
    }
}

impl Default for ExecContext {
    fn default() -> Self {
        ExecContext {
            clock: Arc::new(SystemClock),
            secrets: Value::Object(Map::new()),
        }
    }
}

impl ExecContext {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        ExecContext {
            clock,
            secrets: Value::Object(Map::new()),
        }
    }

    /// Adds a secret value, available to expressions as `secrets.NAME`.
    pub fn with_secret(mut self, name: &str, value: &crate::secrets::Secret) -> Self {
        if let Value::Object(m) = &mut self.secrets {
            m.insert(name.to_string(), Value::String(value.expose().to_string()));
        }
        self
    }
}

/// The result of evaluating one record, before anything is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluation {
    /// The payload to send, the policy result and identity.
    Mapped {
        payload: Value,
        policy: Option<Value>,
        /// The outcome key (flow `key`, or the first match key).
        key: Option<String>,
        /// Normalized values of the duplicate rule's match keys, in order.
        identity: Vec<String>,
    },
    /// The record was filtered out by `source.filter`.
    Filtered,
}

/// Evaluates one record against a flow.
pub fn evaluate(
    flow: &FlowPlan,
    record: &Value,
    cx: &ExecContext,
) -> Result<Evaluation, RecordError> {
    let Value::Object(fields) = record else {
        return Err(RecordError::new(
            FailureKind::InvalidRecord,
            format!(
                "record must be a JSON object, got {}",
                crate::functions::type_name(record)
            ),
        ));
    };
    for name in &flow.require {
        if fields.get(name).is_none_or(Value::is_null) {
            return Err(RecordError::new(
                FailureKind::InvalidRecord,
                format!("required field `{name}` is missing or null"),
            )
            .with_field(name));
        }
    }

    let policy = match &flow.policy {
        Some(p) => policy::evaluate(p, record, cx)?,
        None => Value::Null,
    };
    let bindings: [&Value; 3] = [&policy, &cx.secrets, record];
    let env = Env {
        record,
        bindings: &bindings,
        clock: cx.clock.as_ref(),
    };

    if let Some(filter) = &flow.filter {
        match eval_at(filter, &env, "source.filter")?.as_ref() {
            Value::Bool(true) => {}
            Value::Bool(false) | Value::Null => return Ok(Evaluation::Filtered),
            other => {
                return Err(RecordError::new(
                    FailureKind::Mapping,
                    format!(
                        "source.filter gave {}, not a boolean",
                        crate::functions::type_name(other)
                    ),
                )
                .at(&filter.location));
            }
        }
    }

    let mut payload = Map::with_capacity(flow.mapping.fields.len());
    map_into(
        &flow.mapping,
        &env,
        &policy,
        flow.omit_nulls,
        "",
        &mut payload,
    )?;

    for name in &flow.required {
        if payload.get(name).is_none_or(Value::is_null) {
            return Err(RecordError::new(
                FailureKind::Validation,
                format!("target field `{name}` is required but the mapping produced null"),
            )
            .with_field(name));
        }
    }

    let mut identity = Vec::new();
    if let Some(d) = &flow.duplicates {
        for k in &d.match_keys {
            match payload.get(k).and_then(normalize_key) {
                Some(v) => identity.push(v),
                None => {
                    return Err(RecordError::new(
                        FailureKind::InvalidRecord,
                        format!(
                            "identity key `{k}` is null or empty; the record cannot be matched"
                        ),
                    )
                    .with_field(k));
                }
            }
        }
    }

    let key = match &flow.key {
        Some(k) => key_string(eval_at(k, &env, "key")?.as_ref()),
        None => identity.first().cloned(),
    };

    let policy = flow.policy.as_ref().map(|_| policy);
    Ok(Evaluation::Mapped {
        payload: Value::Object(payload),
        policy,
        key,
        identity,
    })
}

/// Evaluates a mapping into `out`; nested mappings recurse with a dotted prefix for errors.
fn map_into(
    mapping: &MappingPlan,
    env: &Env<'_>,
    policy: &Value,
    omit_nulls: bool,
    prefix: &str,
    out: &mut Map<String, Value>,
) -> Result<(), RecordError> {
    for field in &mapping.fields {
        let value = match &field.value {
            ValuePlan::Expr(at) => eval_field(at, env, prefix, &field.target)?.into_owned(),
            ValuePlan::Const(v) => v.clone(),
            ValuePlan::Template(t) => {
                let ctx = template_context(t, env.record, policy);
                let rendered = t
                    .env
                    .get_template(&t.name)
                    .and_then(|tpl| tpl.render(ctx))
                    .map_err(|e| {
                        RecordError::new(FailureKind::Mapping, format!("template failed: {e}"))
                            .with_field(&format!("{prefix}{}", field.target))
                            .at(&field.location)
                    })?;
                Value::String(rendered)
            }
            ValuePlan::Nested(inner) => {
                let mut nested = Map::with_capacity(inner.fields.len());
                let p = format!("{prefix}{}.", field.target);
                map_into(inner, env, policy, omit_nulls, &p, &mut nested)?;
                Value::Object(nested)
            }
        };
        if omit_nulls && value.is_null() {
            continue;
        }
        out.insert(field.target.clone(), value);
    }
    Ok(())
}

/// The template's context: only the record fields it reads (and `policy`), so a record is
/// not converted whole for every template.
fn template_context(
    t: &crate::plan::TemplatePlan,
    record: &Value,
    policy: &Value,
) -> minijinja::Value {
    use minijinja::value::Serde;
    let fields: std::collections::BTreeMap<&str, minijinja::Value> = t
        .vars
        .iter()
        .filter_map(|name| {
            if name == "policy" {
                return Some((name.as_str(), minijinja::Value::from(Serde(policy))));
            }
            record
                .get(name)
                .map(|v| (name.as_str(), minijinja::Value::from(Serde(v))))
        })
        .collect();
    minijinja::Value::from(fields)
}

fn eval_field<'a>(
    at: &'a ExprAt,
    env: &Env<'a>,
    prefix: &str,
    target: &str,
) -> Result<Cow<'a, Value>, RecordError> {
    at.compiled.eval(env).map_err(|e| {
        RecordError::new(FailureKind::Mapping, e.message)
            .with_field(&format!("{prefix}{target}"))
            .at(&at.location)
    })
}

fn eval_at<'a>(at: &'a ExprAt, env: &Env<'a>, what: &str) -> Result<Cow<'a, Value>, RecordError> {
    at.compiled.eval(env).map_err(|e| {
        RecordError::new(FailureKind::Mapping, format!("{what}: {}", e.message)).at(&at.location)
    })
}

/// Identity keys compare case- and space-insensitively (e-mail addresses, codes).
pub fn normalize_key(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_lowercase())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn key_string(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The payload with secret-derived fields replaced by `***`, for output. Flows without
/// secrets in their payload pass it through untouched (no copy).
pub fn redact(flow: &FlowPlan, payload: Value) -> Value {
    if flow.redacted.is_empty() {
        return payload;
    }
    let mut out = payload;
    for path in &flow.redacted {
        let mut node = &mut out;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let Some(child) = node.as_object_mut().and_then(|m| m.get_mut(part)) else {
                break;
            };
            if parts.peek().is_none() {
                *child = Value::String("***".into());
                break;
            }
            node = child;
        }
    }
    out
}

/// Evaluates a policy table alone on a record (used by policy tests).
pub fn evaluate_policy(
    p: &crate::plan::PolicyPlan,
    record: &Value,
    cx: &ExecContext,
) -> Result<Value, RecordError> {
    policy::evaluate(p, record, cx)
}
