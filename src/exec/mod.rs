//! Running a [`Plan`](crate::plan::Plan) on records: validate → policy → map → identity key,
//! then the [`pipeline`] that sequences records by identity into a sink (a dry run, a
//! connector, or the embedder's own).
//!
//! Evaluation does no I/O and never clones the input record; each record ends in exactly one
//! [`Outcome`]. A bad record is a `failed` outcome with its reason — the others go on.

pub mod decide;
pub mod dry_run;
mod outcome;
pub mod pipeline;
mod policy;
pub mod reader;
pub mod send;

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::expr::Env;
use crate::expr::value::NULL;
use crate::functions::{Clock, SystemClock};
use crate::plan::{
    ExprAt, FlowPlan, FlowStep, LET_SLOT_BASE, LetPlan, MappingPlan, POLICY_SLOT, RECORD_SLOT,
    SECRETS_SLOT, ValuePlan,
};

pub use outcome::{FailureKind, Outcome, RecordError, Status};
pub use pipeline::{Pipeline, RunOptions, Sink, Summary};

/// Parses one input line into a record: it must be UTF-8 text holding one JSON object.
/// Errors carry the byte offset within the line.
pub fn parse_record(line: &[u8]) -> Result<Value, RecordError> {
    if let Err(e) = std::str::from_utf8(line) {
        return Err(
            RecordError::new(FailureKind::InvalidRecord, "the line is not valid UTF-8")
                .at_offset(e.valid_up_to() as u64),
        );
    }
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        let offset = offset_of(line, e.line(), e.column());
        RecordError::new(
            FailureKind::InvalidRecord,
            format!("line is not valid JSON: {e}"),
        )
        .at_offset(offset)
    })?;
    if !value.is_object() {
        return Err(RecordError::new(
            FailureKind::InvalidRecord,
            format!(
                "record must be a JSON object, got {}",
                crate::functions::type_name(&value)
            ),
        )
        .at_offset(0));
    }
    Ok(value)
}

/// The byte offset of a 1-based line and column of `text`.
fn offset_of(text: &[u8], line: usize, column: usize) -> u64 {
    let mut offset = 0usize;
    for (n, l) in text.split(|&b| b == b'\n').enumerate() {
        if n + 1 == line {
            return (offset + column.saturating_sub(1)).min(text.len()) as u64;
        }
        offset += l.len() + 1;
    }
    text.len() as u64
}

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

    let mut slots: [&Value; INLINE_SLOTS] = [&NULL; INLINE_SLOTS];
    let count = LET_SLOT_BASE + flow.lets.len();
    let run = Run { flow, record, cx };
    if count <= INLINE_SLOTS {
        slots[SECRETS_SLOT] = &cx.secrets;
        slots[RECORD_SLOT] = record;
        run.step(0, &slots[..count])
    } else {
        let mut slots: Vec<&Value> = vec![&NULL; count];
        slots[SECRETS_SLOT] = &cx.secrets;
        slots[RECORD_SLOT] = record;
        run.step(0, &slots)
    }
}

/// Binding slots held on the stack; flows with more named values use a vector.
const INLINE_SLOTS: usize = 16;

/// One record going through a flow's steps.
///
/// Each step runs in its own stack frame and binds its value by reference for the steps
/// after it, so named values read from the record borrow from it instead of copying.
struct Run<'a> {
    flow: &'a FlowPlan,
    record: &'a Value,
    cx: &'a ExecContext,
}

impl Run<'_> {
    fn step(&self, i: usize, slots: &[&Value]) -> Result<Evaluation, RecordError> {
        let env = Env {
            record: self.record,
            bindings: slots,
            clock: self.cx.clock.as_ref(),
        };
        let Some(step) = self.flow.steps.get(i) else {
            return finish(self.flow, &env);
        };
        match *step {
            FlowStep::Filter => {
                if let Some(filter) = &self.flow.filter
                    && !passes(filter, &env)?
                {
                    return Ok(Evaluation::Filtered);
                }
                self.step(i + 1, slots)
            }
            FlowStep::Policy => {
                let Some(p) = &self.flow.policy else {
                    return self.step(i + 1, slots);
                };
                let inputs = if self.flow.policy_inputs.is_empty() {
                    &p.inputs
                } else {
                    &self.flow.policy_inputs
                };
                let value = policy::evaluate_in(p, inputs, &env)?;
                let mut result = with_slot(slots, POLICY_SLOT, &value, |s| self.step(i + 1, s))?;
                // The table's result moves into the outcome once nothing borrows it.
                if let Evaluation::Mapped { policy, .. } = &mut result {
                    *policy = Some(value);
                }
                Ok(result)
            }
            FlowStep::Let(k) => {
                let Some(l) = self.flow.lets.get(k) else {
                    return self.step(i + 1, slots);
                };
                let value = l.expr.compiled.eval(&env).map_err(|e| {
                    RecordError::new(
                        FailureKind::Mapping,
                        format!("let `{}`: {}", l.name, e.message),
                    )
                    .at(&l.expr.location)
                })?;
                if let Some(ty) = &l.check
                    && !ty.accepts(&value)
                {
                    return Err(RecordError::new(
                        FailureKind::Mapping,
                        format!(
                            "let `{}`: declared `{}` but the value is {}",
                            l.name,
                            l.declared,
                            crate::functions::type_name(&value)
                        ),
                    )
                    .at(&l.expr.location));
                }
                with_slot(slots, LET_SLOT_BASE + k, value.as_ref(), |s| {
                    self.step(i + 1, s)
                })
            }
        }
    }
}

/// Runs `f` with a copy of `slots` where `slots[at]` is `value`.
fn with_slot<'v, R>(
    slots: &[&'v Value],
    at: usize,
    value: &'v Value,
    f: impl FnOnce(&[&'v Value]) -> R,
) -> R {
    if slots.len() <= INLINE_SLOTS {
        let mut inline: [&Value; INLINE_SLOTS] = [&NULL; INLINE_SLOTS];
        inline[..slots.len()].copy_from_slice(slots);
        if let Some(slot) = inline.get_mut(at) {
            *slot = value;
        }
        f(&inline[..slots.len()])
    } else {
        let mut owned = slots.to_vec();
        if let Some(slot) = owned.get_mut(at) {
            *slot = value;
        }
        f(&owned)
    }
}

/// Whether `source.filter` keeps the record.
fn passes(filter: &ExprAt, env: &Env<'_>) -> Result<bool, RecordError> {
    match eval_at(filter, env, "source.filter")?.as_ref() {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        other => Err(RecordError::new(
            FailureKind::Mapping,
            format!(
                "source.filter gave {}, not a boolean",
                crate::functions::type_name(other)
            ),
        )
        .at(&filter.location)),
    }
}

/// The mapping, required fields, identity and key, once every step has run.
fn finish(flow: &FlowPlan, env: &Env<'_>) -> Result<Evaluation, RecordError> {
    let mut payload = Map::with_capacity(flow.mapping.fields.len());
    map_into(
        &flow.mapping,
        env,
        &flow.lets,
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
        Some(k) => key_string(eval_at(k, env, "key")?.as_ref()),
        None => identity.first().cloned(),
    };

    // Filled in by the policy step.
    Ok(Evaluation::Mapped {
        payload: Value::Object(payload),
        policy: None,
        key,
        identity,
    })
}

/// Evaluates a mapping into `out`; nested mappings recurse with a dotted prefix for errors.
fn map_into(
    mapping: &MappingPlan,
    env: &Env<'_>,
    lets: &[LetPlan],
    omit_nulls: bool,
    prefix: &str,
    out: &mut Map<String, Value>,
) -> Result<(), RecordError> {
    for field in &mapping.fields {
        let value = match &field.value {
            ValuePlan::Expr(at) => eval_field(at, env, prefix, &field.target)?.into_owned(),
            ValuePlan::Const(v) => v.clone(),
            ValuePlan::Template(t) => {
                let ctx = template_context(t, env, lets);
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
                map_into(inner, env, lets, omit_nulls, &p, &mut nested)?;
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

/// The template's context: only the record fields it reads (and `policy` and named values),
/// so a record is not converted whole for every template.
fn template_context(
    t: &crate::plan::TemplatePlan,
    env: &Env<'_>,
    lets: &[LetPlan],
) -> minijinja::Value {
    use minijinja::value::Serde;
    let fields: std::collections::BTreeMap<&str, minijinja::Value> = t
        .vars
        .iter()
        .filter_map(|name| {
            let bound = if name == "policy" {
                env.bindings.get(POLICY_SLOT)
            } else {
                lets.iter()
                    .position(|l| l.name == *name)
                    .and_then(|k| env.bindings.get(LET_SLOT_BASE + k))
            };
            bound
                .copied()
                .or_else(|| env.record.get(name))
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
    let env = Env::new(record, cx.clock.as_ref());
    policy::evaluate_in(p, &p.inputs, &env)
}
