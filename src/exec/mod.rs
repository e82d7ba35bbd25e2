//! Running a [`Plan`](crate::plan::Plan) on records: validate → policy → map → identity key,
//! then the [`pipeline`] that sequences records by identity into a sink (a dry run, a
//! connector, or the embedder's own).
//!
//! Evaluation does no I/O and never clones the input record; each record ends in exactly one
//! [`Outcome`]. A bad record is a `failed` outcome with its reason — the others go on.

pub mod decide;
pub mod dry_run;
mod known;
pub mod ledger;
pub mod ndjson;
mod outcome;
pub mod pipeline;
mod policy;
pub mod reader;
mod record;
pub mod refs;
mod rendered;
mod returns;
pub mod send;

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::expr::Env;
use crate::expr::value::{NULL, get_field};
use crate::functions::{Clock, SystemClock};
use crate::plan::{
    ExprAt, FieldPlan, FlowPlan, FlowStep, InputField, LET_SLOT_BASE, LetPlan, MappingPlan,
    POLICY_SLOT, RECORD_SLOT, SECRETS_SLOT, TargetCheck, ValuePlan,
};

pub use outcome::{ErrorDetail, FailureKind, Outcome, Provenance, RecordError, Status};
pub use pipeline::{Pipeline, RunOptions, Sink, Summary};
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
        if get_field(fields, name).is_none_or(Value::is_null) {
            return Err(RecordError::new(
                FailureKind::InvalidRecord,
                format!("required field `{name}` is missing or null"),
            )
            .with_field(name));
        }
    }
    for f in &flow.input_fields {
        check_input(f, get_field(fields, &f.name), flow)?;
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
    let payload = map_object(&flow.mapping, env, &flow.lets, flow.omit_nulls, "")?;

    for name in &flow.required {
        if get_field(&payload, name).is_none_or(Value::is_null) {
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
            match identity_value(flow, &payload, k) {
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

/// Evaluates a mapping into an object; nested mappings recurse with a dotted prefix for
/// errors.
///
/// When the target names are distinct (always, for a mapping written in YAML), the object
/// starts as a copy of [`MappingPlan::keys`] and each value goes to its field's position:
/// the copy carries every name's hash, so no name is hashed per record. Nulls left out
/// under `omit_nulls` are removed at the end, in one pass. The object is the same as
/// inserting the fields one by one.
fn map_object(
    mapping: &MappingPlan,
    env: &Env<'_>,
    lets: &[LetPlan],
    omit_nulls: bool,
    prefix: &str,
) -> Result<Map<String, Value>, RecordError> {
    let Some(keys) = &mapping.keys else {
        let mut out = Map::with_capacity(mapping.fields.len());
        for field in &mapping.fields {
            let value = map_field(field, env, lets, omit_nulls, prefix)?;
            if !(omit_nulls && value.is_null()) {
                out.insert(field.target.clone(), value);
            }
        }
        return Ok(out);
    };
    let mut out = keys.clone();
    let mut nulls = false;
    for (field, slot) in mapping.fields.iter().zip(out.values_mut()) {
        *slot = map_field(field, env, lets, omit_nulls, prefix)?;
        nulls |= slot.is_null();
    }
    if omit_nulls && nulls {
        out.retain(|_, v| !v.is_null());
    }
    Ok(out)
}

/// One field's value, checked against the target field.
fn map_field(
    field: &FieldPlan,
    env: &Env<'_>,
    lets: &[LetPlan],
    omit_nulls: bool,
    prefix: &str,
) -> Result<Value, RecordError> {
    let value = match &field.value {
        ValuePlan::Expr(at) => eval_field(at, env, prefix, &field.target)?.into_owned(),
        ValuePlan::Const(v) => v.clone(),
        ValuePlan::Template(t) => {
            if let Some(text) = t
                .simple
                .as_ref()
                .and_then(|s| s.render(|name| template_var(name, env, lets)))
            {
                Value::String(text)
            } else {
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
        }
        ValuePlan::Ref(r) => refs::evaluate(r, env, &format!("{prefix}{}", field.target))?,
        ValuePlan::Nested(inner) => {
            let p = format!("{prefix}{}.", field.target);
            Value::Object(map_object(inner, env, lets, omit_nulls, &p)?)
        }
    };
    if let Some(check) = &field.check {
        check_target(check, &value, prefix, field)?;
    }
    Ok(value)
}

/// An input field that does not match the flow's declared `record` fails the record before
/// anything reads it: mapping `[1, 2]` with a rule written for strings would produce wrong data.
fn check_input(f: &InputField, value: Option<&Value>, flow: &FlowPlan) -> Result<(), RecordError> {
    let record = flow.record.as_deref().unwrap_or("record");
    let fail = |message: String| {
        RecordError::new(FailureKind::InvalidRecord, message)
            .with_field(&f.name)
            .at(&f.location)
    };
    match value {
        None | Some(Value::Null) => {
            if f.required {
                return Err(fail(format!(
                    "required field `{}` is missing or null (record `{record}` declares it required)",
                    f.name
                ))
                .with_types(f.declared.clone(), "null"));
            }
        }
        Some(v) => {
            if !f.ty.accepts(v) {
                let actual = describe_type(v);
                return Err(fail(format!(
                    "field `{}` is declared `{}` in record `{record}` but is {actual}",
                    f.name, f.declared
                ))
                .with_types(f.declared.clone(), actual));
            }
            if !f.options.is_empty()
                && let Value::String(s) = v
                && !f.options.iter().any(|o| o == s)
            {
                return Err(fail(format!(
                    "`{s}` is not an option of field `{}` of record `{record}` (allowed: {})",
                    f.name,
                    f.options.join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// A value the target field's declaration does not allow fails the record here, before it
/// is sent: the target would reject it, or worse, store it coerced.
fn check_target(
    check: &TargetCheck,
    value: &Value,
    prefix: &str,
    field: &FieldPlan,
) -> Result<(), RecordError> {
    let name = || format!("{prefix}{}", field.target);
    if value.is_null() {
        if check.required {
            return Err(RecordError::new(
                FailureKind::Validation,
                format!(
                    "target field `{}` is declared required but the mapping produced null",
                    name()
                ),
            )
            .with_field(&name())
            .with_types(check.declared.clone(), "null")
            .at(&field.location));
        }
        return Ok(());
    }
    if let Some(ty) = &check.ty
        && !ty.non_null().accepts(value)
    {
        let actual = describe_type(value);
        return Err(RecordError::new(
            FailureKind::Validation,
            format!(
                "target field `{}` is declared `{}` but the mapping produced {actual}",
                name(),
                check.declared
            ),
        )
        .with_field(&name())
        .with_types(check.declared.clone(), actual)
        .at(&field.location));
    }
    if !check.options.is_empty()
        && let Value::String(s) = value
        && !check.options.iter().any(|o| o == s)
    {
        return Err(RecordError::new(
            FailureKind::Validation,
            format!(
                "`{s}` is not an option of enum field `{}` (allowed: {})",
                name(),
                check.options.join(", ")
            ),
        )
        .with_field(&name())
        .at(&field.location));
    }
    Ok(())
}

/// The type of a value for messages: like [`Type::of`](crate::types::Type::of), but an
/// array of mixed items lists them (`array<number|string>`) instead of saying `array`.
fn describe_type(value: &Value) -> String {
    use crate::types::Type;
    let ty = Type::of(value);
    match (&ty, value) {
        (Type::Array(item), Value::Array(items)) if **item == Type::Any && !items.is_empty() => {
            let mut names: Vec<String> = items.iter().map(describe_type).collect();
            names.sort();
            names.dedup();
            format!("array<{}>", names.join("|"))
        }
        _ => ty.to_string(),
    }
}

/// A template variable's value: `policy`, a named value, or else the record's field.
fn template_var<'v>(name: &str, env: &Env<'v>, lets: &[LetPlan]) -> Option<&'v Value> {
    let bound = if name == "policy" {
        env.bindings.get(POLICY_SLOT)
    } else {
        lets.iter()
            .position(|l| l.name == *name)
            .and_then(|k| env.bindings.get(LET_SLOT_BASE + k))
    };
    bound.copied().or_else(|| match env.record {
        Value::Object(m) => get_field(m, name),
        _ => None,
    })
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
            template_var(name, env, lets).map(|v| (name.as_str(), minijinja::Value::from(Serde(v))))
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

/// The identity value of match key `key`: the normalized field, the fields of a compound key
/// (`project_id+title`) joined, an unresolved reference as its JSON text (one source key
/// stands for one referenced record). `None` when a field is null or empty.
fn identity_value(flow: &FlowPlan, payload: &Map<String, Value>, key: &str) -> Option<String> {
    let one = |field: &str| {
        let v = get_field(payload, field)?;
        match v {
            Value::Object(_) if flow.ref_field(field).is_some() => Some(v.to_string()),
            _ => normalize_key(v),
        }
    };
    if !key.contains('+') {
        return one(key);
    }
    let parts: Option<Vec<String>> = key.split('+').map(one).collect();
    parts.map(|p| p.join("\u{1f}"))
}

/// Identity keys compare case- and space-insensitively (e-mail addresses, codes).
pub fn normalize_key(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| crate::functions::lower(t))
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
    let mut out = payload;
    for path in &flow.redacted {
        if let Some((parent, last)) = parent_of(&mut out, path)
            && let Some(child) = parent.get_mut(last)
        {
            *child = Value::String("***".into());
        }
    }
    out
}

/// The bytes the ledger hashes to tell a changed record: the payload as JSON, without the
/// fields computed from the clock alone ([`FlowPlan::stamps`]) and the randomized ones
/// ([`FlowPlan::randomized`]). For the latter, `basis` (a hash of the input line) and
/// `rules` (the rule set's hash) stand in: such a record counts as changed when its input
/// or the rules that encrypt it did.
pub fn change_bytes(
    flow: &FlowPlan,
    payload: &Value,
    basis: Option<&str>,
    rules: &str,
) -> serde_json::Result<Vec<u8>> {
    if flow.stamps.is_empty() && flow.randomized.is_empty() {
        return serde_json::to_vec(payload);
    }
    let skip: Vec<&str> = flow
        .stamps
        .iter()
        .chain(&flow.randomized)
        .map(String::as_str)
        .collect();
    let mut bytes = serde_json::to_vec(&Without {
        value: payload,
        skip,
    })?;
    if !flow.randomized.is_empty() {
        for part in [basis.unwrap_or_default(), rules] {
            bytes.push(0x1e);
            bytes.extend_from_slice(part.as_bytes());
        }
    }
    Ok(bytes)
}

/// A JSON value serialized without the fields at the dotted paths `skip` (relative to the
/// value), as the value with those fields removed would be, but without copying it.
struct Without<'a> {
    value: &'a Value,
    skip: Vec<&'a str>,
}

impl serde::Serialize for Without<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Value::Object(map) = self.value else {
            return self.value.serialize(s);
        };
        let mut out = s.serialize_map(None)?;
        for (key, value) in map {
            if self.skip.iter().any(|p| p == key) {
                continue;
            }
            // The paths below this key, relative to its value (none for most keys: no
            // allocation then).
            let below: Vec<&str> = self
                .skip
                .iter()
                .filter_map(|p| p.strip_prefix(key.as_str())?.strip_prefix('.'))
                .collect();
            if below.is_empty() {
                out.serialize_entry(key, value)?;
            } else {
                out.serialize_entry(key, &Without { value, skip: below })?;
            }
        }
        out.end()
    }
}

/// The object holding the field at the dotted `path`, and the field's name in it.
fn parent_of<'v, 'p>(
    value: &'v mut Value,
    path: &'p str,
) -> Option<(&'v mut serde_json::Map<String, Value>, &'p str)> {
    let (head, last) = match path.rsplit_once('.') {
        Some((head, last)) => (Some(head), last),
        None => (None, path),
    };
    let mut node = value;
    for part in head.into_iter().flat_map(|h| h.split('.')) {
        node = node.as_object_mut()?.get_mut(part)?;
    }
    Some((node.as_object_mut()?, last))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn skipped_fields_serialize_as_the_payload_without_them() {
        let payload = json!({
            "a": 1, "at": "now", "meta": {"day": "d", "keep": [1, {"day": 2}], "daytime": 3},
            "other": {"day": 4}, "s": "x"
        });
        let skip = vec!["at", "meta.day", "missing.field", "s.not_an_object"];
        let got = serde_json::to_string(&Without {
            value: &payload,
            skip,
        });
        // In the payload's order, as written without those fields.
        assert_eq!(
            got.ok().as_deref(),
            Some(r#"{"a":1,"meta":{"keep":[1,{"day":2}],"daytime":3},"other":{"day":4},"s":"x"}"#)
        );
    }

    const PROVIDER: &str = r#"
kind: provider
name: crm
base_url: https://crm.example.com
objects:
  contact:
    fields:
      email: { type: email, required: true }
      name: string
      tags: "array<string>"
      stage: { type: enum, options: [lead, customer] }
      meta: object
    operations:
      create: { method: POST, path: /contacts }
"#;

    /// Evaluates `record` through a flow whose mapping is `mapping` (YAML), from an
    /// undeclared record so every field is `any` to the type checker.
    fn run(mapping: &str, record: Value) -> Result<Evaluation, RecordError> {
        let rules = format!(
            "{PROVIDER}---\nkind: flow\nname: f\ntarget: {{ provider: crm, object: contact }}\nmapping:\n{mapping}\n"
        );
        let engine = crate::Engine::builder()
            .rules_str("rules.yaml", rules)
            .build()
            .unwrap_or_else(|e| panic!("rules do not build: {e}"));
        let runner = engine.runner("f").unwrap_or_else(|e| panic!("{e}"));
        evaluate(runner.flow(), &record, runner.context())
    }

    fn failure(mapping: &str, record: Value) -> RecordError {
        match run(mapping, record) {
            Err(e) => e,
            Ok(ev) => panic!("expected a failure, got {ev:?}"),
        }
    }

    #[test]
    fn values_of_the_wrong_type_fail_naming_field_types_and_rule() {
        let mapping = "  email: email\n  name: name";
        for (value, actual) in [
            (json!({"first": "Ada"}), "object"),
            (json!([1, 2]), "array<number>"),
            (json!(42), "number"),
        ] {
            let e = failure(mapping, json!({"email": "a@b.co", "name": value}));
            assert_eq!(e.kind, FailureKind::Validation);
            assert_eq!(e.field.as_deref(), Some("name"));
            assert_eq!(e.expected(), Some("string"));
            assert_eq!(e.actual(), Some(actual));
            assert_eq!(e.at.as_deref(), Some("rules.yaml:21:3"), "{e}");
            assert!(e.message.contains("declared `string`"), "{e}");
        }
        let ok = run(mapping, json!({"email": "a@b.co", "name": "Ada"}));
        assert!(matches!(ok, Ok(Evaluation::Mapped { .. })), "{ok:?}");
        // A non-required field may be null (it clears or is left out).
        assert!(run(mapping, json!({"email": "a@b.co", "name": null})).is_ok());
    }

    #[test]
    fn array_items_and_objects_are_checked() {
        let mapping = "  email: email\n  tags: tags\n  meta: meta";
        let e = failure(mapping, json!({"email": "a@b.co", "tags": ["a", 2]}));
        assert_eq!(e.field.as_deref(), Some("tags"));
        assert_eq!(e.expected(), Some("array<string>"));
        assert_eq!(e.actual(), Some("array<number|string>"));
        let e = failure(mapping, json!({"email": "a@b.co", "meta": "x"}));
        assert_eq!(e.actual(), Some("string"));
        let ok = run(
            mapping,
            json!({"email": "a@b.co", "tags": ["a"], "meta": {"k": 1}}),
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn provider_required_fields_may_not_be_null_or_omitted() {
        let e = failure("  email: email", json!({"name": "no e-mail"}));
        assert_eq!(e.kind, FailureKind::Validation);
        assert_eq!(e.field.as_deref(), Some("email"));
        assert!(e.message.contains("required"), "{e}");
        assert_eq!(e.at.as_deref(), Some("rules.yaml:20:3"));
        // omit_nulls would otherwise drop it silently.
        let rules_mapping = "  email: email\noptions: { omit_nulls: true }";
        let e = failure(rules_mapping, json!({"email": null}));
        assert_eq!(e.field.as_deref(), Some("email"));
    }

    #[test]
    fn enum_values_outside_the_options_fail() {
        let mapping = "  email: email\n  stage: stage";
        let e = failure(mapping, json!({"email": "a@b.co", "stage": "prospect"}));
        assert_eq!(e.field.as_deref(), Some("stage"));
        assert!(e.message.contains("lead, customer"), "{e}");
        assert!(run(mapping, json!({"email": "a@b.co", "stage": "lead"})).is_ok());
    }

    const RECORD: &str = r#"
---
kind: record
name: lead
fields:
  email: { type: string, required: true }
  name: string
  tags: "array<string>"
  stage: { type: enum, options: [new, old] }
  extra: any
---
kind: flow
name: f
source: { record: lead }
target: { provider: crm, object: contact }
mapping:
  email: email
  name: name
  tags: tags
"#;

    fn run_declared(record: Value) -> Result<Evaluation, RecordError> {
        let engine = crate::Engine::builder()
            .rules_str("rules.yaml", format!("{PROVIDER}{RECORD}"))
            .build()
            .unwrap_or_else(|e| panic!("rules do not build: {e}"));
        let runner = engine.runner("f").unwrap_or_else(|e| panic!("{e}"));
        // `extra` is an optional `any`: nothing to check.
        let checked: Vec<&str> = runner
            .flow()
            .input_fields
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(checked, ["email", "name", "tags", "stage"]);
        evaluate(runner.flow(), &record, runner.context())
    }

    #[test]
    fn input_fields_are_checked_against_the_declared_record() {
        for (record, field, actual) in [
            (
                json!({"email": "a@b.co", "tags": [1, 2]}),
                "tags",
                "array<number>",
            ),
            (
                json!({"email": "a@b.co", "name": {"first": "Ada"}}),
                "name",
                "object",
            ),
            (json!({"email": 7}), "email", "number"),
            (json!({"name": "Ada"}), "email", "null"),
            (json!({"email": null}), "email", "null"),
        ] {
            let e = match run_declared(record.clone()) {
                Err(e) => e,
                Ok(ev) => panic!("{record} passed: {ev:?}"),
            };
            assert_eq!(e.kind, FailureKind::InvalidRecord, "{e}");
            assert_eq!(e.field.as_deref(), Some(field), "{e}");
            assert_eq!(e.actual(), Some(actual), "{e}");
            assert!(
                e.at.as_deref()
                    .is_some_and(|a| a.starts_with("rules.yaml:")),
                "{e}"
            );
        }
        let e = run_declared(json!({"email": "a@b.co", "stage": "newer"}));
        assert!(
            matches!(e, Err(RecordError { ref field, .. }) if field.as_deref() == Some("stage")),
            "{e:?}"
        );
        let ok = run_declared(
            json!({"email": "a@b.co", "name": null, "tags": ["x"], "stage": "new", "extra": [1], "undeclared": 1}),
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn statically_fitting_fields_need_no_runtime_check() {
        let rules = format!(
            "{PROVIDER}---\nkind: flow\nname: f\ntarget: {{ provider: crm, object: contact }}\nmapping:\n  email: {{ value: a@b.co }}\n  name: to_string(x)\n  tags: {{ value: [a] }}\n"
        );
        let engine = crate::Engine::builder()
            .rules_str("rules.yaml", rules)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let runner = engine.runner("f").unwrap_or_else(|e| panic!("{e}"));
        let checks: Vec<(&str, bool)> = runner
            .flow()
            .mapping
            .fields
            .iter()
            .map(|f| (f.target.as_str(), f.check.is_some()))
            .collect();
        assert_eq!(checks, [("email", false), ("name", false), ("tags", false)]);
    }
}
