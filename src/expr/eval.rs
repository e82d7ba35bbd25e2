//! The compiled form and its evaluation.
//!
//! Field paths over the record or a binding compile to a [`Node::Path`] that walks borrowed
//! values; only computed values are owned. Calls use a stack buffer for up to four arguments.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;

use crate::functions::{CallContext, Clock, Function, Prepared, type_name};
use crate::types::Type;

use super::ast::{BinaryOp, TextRange};
use super::error::EvalError;
use super::jsonpath::JsonPath;
use super::value::{self, NULL};

/// What an expression reads at run time.
pub struct Env<'a> {
    /// The record being mapped.
    pub record: &'a Value,
    /// Values for [`Scope::bindings`](super::Scope::bindings), by slot.
    pub bindings: &'a [&'a Value],
    /// What `now()` and relative dates read.
    pub clock: &'a dyn Clock,
}

impl<'a> Env<'a> {
    /// An environment with a record and no bindings.
    pub fn new(record: &'a Value, clock: &'a dyn Clock) -> Self {
        Env {
            record,
            bindings: &[],
            clock,
        }
    }
}

const NULL_ARG: Cow<'static, Value> = Cow::Borrowed(&Value::Null);

#[derive(Debug)]
pub(crate) enum Root {
    Record,
    Binding(usize),
}

#[derive(Debug)]
pub(crate) enum Step {
    Field(Box<str>),
    Index(i64),
}

/// How an argument is checked before the function runs.
#[derive(Debug)]
pub(crate) struct ArgRule {
    /// A null value makes the call return null (non-optional parameter).
    pub propagate_null: bool,
    /// The static type did not prove the parameter type; check the value.
    pub check: Option<Type>,
}

pub(crate) struct Call {
    pub name: String,
    pub func: Arc<dyn Function>,
    pub prepared: Option<Prepared>,
    pub args: Vec<Node>,
    pub rules: Vec<ArgRule>,
    pub range: TextRange,
    /// An argument is derived from a secret (known at compile time): errors do not quote
    /// argument values.
    pub quiet: bool,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("name", &self.name)
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub(crate) enum Node {
    Const(Value),
    /// `name.a[0].b`: constant steps from the record or a binding.
    Path {
        root: Root,
        /// The root's name, for messages.
        name: Box<str>,
        steps: Box<[Step]>,
        range: TextRange,
    },
    JsonPath(Box<JsonPath>, TextRange),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
    Field(Box<Node>, Box<str>, TextRange),
    Index(Box<Node>, Box<Node>, TextRange),
    Slice(Box<Node>, Option<Box<Node>>, Option<Box<Node>>, TextRange),
    Not(Box<Node>, TextRange),
    Neg(Box<Node>, TextRange),
    Binary(BinaryOp, Box<Node>, Box<Node>, TextRange),
    /// The range is the condition's, where its errors point.
    If(Box<Node>, Box<Node>, Box<Node>, TextRange),
    Call(Box<Call>),
    /// `"a${x}b"`.
    Interpolated(Vec<Part>),
    /// `try(a, b)`: `b` when evaluating `a` fails.
    Try(Box<Node>, Box<Node>),
}

/// A piece of an interpolated string.
#[derive(Debug)]
pub(crate) enum Part {
    Text(Box<str>),
    /// An expression and its range, where a value that is not text is reported.
    Expr(Node, TextRange),
}

impl Node {
    pub fn as_const(&self) -> Option<&Value> {
        match self {
            Node::Const(v) => Some(v),
            _ => None,
        }
    }
}

fn err<T>(range: TextRange, message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::new(range, message))
}

fn article(v: &Value) -> &'static str {
    match v {
        Value::Array(_) | Value::Object(_) => "an",
        _ => "a",
    }
}

fn path_text(name: &str, steps: &[Step]) -> String {
    let mut s = name.to_string();
    for step in steps {
        match step {
            Step::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// How the part of a path before step `i` is named in messages.
fn prefix_text(root: &Root, name: &str, steps: &[Step], i: usize) -> String {
    match root {
        Root::Binding(_) => format!("`{}`", path_text(name, &steps[..i.min(steps.len())])),
        Root::Record => match steps.first() {
            Some(Step::Field(first)) if i > 0 => {
                format!("`{}`", path_text(first, &steps[1..i.min(steps.len())]))
            }
            _ => "the record".to_string(),
        },
    }
}

pub(crate) fn eval<'a>(node: &'a Node, env: &Env<'a>) -> Result<Cow<'a, Value>, EvalError> {
    match node {
        Node::Const(v) => Ok(Cow::Borrowed(v)),
        Node::Path {
            root,
            name,
            steps,
            range,
        } => {
            let mut cur: &'a Value = match root {
                Root::Record => env.record,
                Root::Binding(slot) => match env.bindings.get(*slot) {
                    Some(v) => v,
                    None => return err(*range, format!("`{name}` is not available here")),
                },
            };
            for (i, step) in steps.iter().enumerate() {
                cur = match (step, cur) {
                    (_, Value::Null) => return Ok(Cow::Borrowed(&NULL)),
                    (Step::Field(f), Value::Object(m)) => match value::get_field(m, f) {
                        Some(v) => v,
                        None => return Ok(Cow::Borrowed(&NULL)),
                    },
                    (Step::Index(ix), Value::Array(a)) => {
                        match value::resolve_index(a.len(), *ix).and_then(|i| a.get(i)) {
                            Some(v) => v,
                            None => return Ok(Cow::Borrowed(&NULL)),
                        }
                    }
                    (Step::Field(f), other) => {
                        return err(
                            *range,
                            format!(
                                "cannot read field `{f}` of {}: it is {} {}",
                                prefix_text(root, name, steps, i),
                                article(other),
                                type_name(other)
                            ),
                        );
                    }
                    (Step::Index(ix), other) => {
                        return err(
                            *range,
                            format!(
                                "cannot index {} with [{ix}]: it is {} {}, not an array",
                                prefix_text(root, name, steps, i),
                                article(other),
                                type_name(other)
                            ),
                        );
                    }
                };
            }
            Ok(Cow::Borrowed(cur))
        }
        Node::JsonPath(q, range) => q.run(env.record).or_else(|m| err(*range, m)),
        Node::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(eval(item, env)?.into_owned());
            }
            Ok(Cow::Owned(Value::Array(out)))
        }
        Node::Object(entries) => {
            let mut out = serde_json::Map::with_capacity(entries.len());
            for (k, v) in entries {
                out.insert(k.clone(), eval(v, env)?.into_owned());
            }
            Ok(Cow::Owned(Value::Object(out)))
        }
        Node::Field(target, name, range) => {
            let t = eval(target, env)?;
            field(t, name).or_else(|m| err(*range, m))
        }
        Node::Index(target, index, range) => {
            let t = eval(target, env)?;
            let i = eval(index, env)?;
            index_value(t, &i).or_else(|m| err(*range, m))
        }
        Node::Slice(target, start, end, range) => {
            let t = eval(target, env)?;
            let bound = |b: &'a Option<Box<Node>>| -> Result<Option<i64>, EvalError> {
                let Some(b) = b else { return Ok(None) };
                let v = eval(b, env)?;
                if v.is_null() {
                    return Ok(None);
                }
                value::as_index(&v).map(Some).ok_or_else(|| {
                    EvalError::new(
                        *range,
                        format!("slice bounds must be integers, got {}", type_name(&v)),
                    )
                })
            };
            let (s, e) = (bound(start)?, bound(end)?);
            value::slice(t, s, e).or_else(|m| err(*range, m))
        }
        Node::Not(operand, range) => match eval(operand, env)?.as_ref() {
            Value::Bool(b) => Ok(Cow::Owned(Value::Bool(!b))),
            Value::Null => err(
                *range,
                "operand of `!` is null; use `?? false` to give it a default",
            ),
            other => err(
                *range,
                format!("operator `!` needs a bool, got {}", type_name(other)),
            ),
        },
        Node::Neg(operand, range) => {
            let v = eval(operand, env)?;
            value::negate(&v)
                .map(Cow::Owned)
                .or_else(|m| err(*range, m))
        }
        Node::Binary(op, a, b, range) => binary(*op, a, b, *range, env),
        Node::If(c, a, b, range) => match eval(c, env)?.as_ref() {
            Value::Bool(true) => eval(a, env),
            Value::Bool(false) => eval(b, env),
            Value::Null => err(*range, "condition is null"),
            other => err(
                *range,
                format!("condition must be a bool, got {}", type_name(other)),
            ),
        },
        Node::Interpolated(parts) => interpolate(parts, env),
        Node::Try(a, b) => match eval(a, env) {
            Ok(v) => Ok(v),
            Err(_) => eval(b, env),
        },
        Node::Call(call) => {
            let n = call.args.len();
            if n <= 4 {
                let mut buf: [Cow<'a, Value>; 4] = [NULL_ARG; 4];
                for (slot, arg) in buf.iter_mut().zip(&call.args) {
                    *slot = eval(arg, env)?;
                }
                invoke(call, &buf[..n], env)
            } else {
                let mut args = Vec::with_capacity(n);
                for arg in &call.args {
                    args.push(eval(arg, env)?);
                }
                invoke(call, &args, env)
            }
        }
    }
}

/// Builds an interpolated string; a null part makes the whole string null, as `+` does.
#[inline(never)]
fn interpolate<'a>(parts: &'a [Part], env: &Env<'a>) -> Result<Cow<'a, Value>, EvalError> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Expr(node, range) => match eval(node, env)?.as_ref() {
                Value::Null => return Ok(Cow::Borrowed(&NULL)),
                Value::String(s) => out.push_str(s),
                v @ (Value::Number(_) | Value::Bool(_)) => {
                    out.push_str(&crate::functions::scalar_text(v).unwrap_or_default());
                }
                other => {
                    return err(
                        *range,
                        format!(
                            "cannot put {} {} into a string; use to_json(...) or join(...)",
                            article(other),
                            type_name(other)
                        ),
                    );
                }
            },
        }
    }
    Ok(Cow::Owned(Value::String(out)))
}

#[inline(never)]
fn invoke<'a>(
    call: &'a Call,
    args: &[Cow<'a, Value>],
    env: &Env<'a>,
) -> Result<Cow<'a, Value>, EvalError> {
    for (i, (arg, rule)) in args.iter().zip(&call.rules).enumerate() {
        if arg.is_null() && rule.propagate_null {
            return Ok(Cow::Borrowed(&NULL));
        }
        if let Some(ty) = &rule.check
            && !ty.accepts(arg)
        {
            return err(
                call.range,
                format!(
                    "{}() argument {} expects {ty}, got {}",
                    call.name,
                    i + 1,
                    type_name(arg)
                ),
            );
        }
    }
    let cx = CallContext {
        clock: env.clock,
        prepared: call.prepared.as_ref(),
    };
    call.func.call_cow(args, &cx).map_err(|e| {
        let message = if call.quiet {
            withhold_values(&e.0, args)
        } else {
            e.0
        };
        EvalError::new(call.range, format!("{}(): {}", call.name, message))
    })
}

/// A function's error message without the argument values it quotes: every quoted text,
/// and each argument's text wherever it appears.
#[inline(never)]
fn withhold_values(message: &str, args: &[Cow<'_, Value>]) -> String {
    let mut out = String::with_capacity(message.len());
    // Quoted texts (`"..."`, escapes included) become `"***"`.
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        out.push_str("\"***\"");
        let mut escaped = false;
        for d in chars.by_ref() {
            match (escaped, d) {
                (false, '\\') => escaped = true,
                (false, '"') => break,
                _ => escaped = false,
            }
        }
    }
    let mut texts: Vec<String> = Vec::new();
    let mut collect = |v: &Value| match v {
        Value::String(s) => {
            texts.push(s.clone());
            texts.push(s.trim().to_string());
        }
        Value::Null => {}
        other => texts.push(other.to_string()),
    };
    for a in args {
        collect(a);
        match a.as_ref() {
            Value::Array(items) => items.iter().for_each(&mut collect),
            Value::Object(m) => m.values().for_each(&mut collect),
            _ => {}
        }
    }
    texts.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in texts.iter().filter(|t| t.len() >= 3) {
        if out.contains(t.as_str()) {
            out = out.replace(t.as_str(), "***");
        }
    }
    out
}

/// Marks the calls some argument of which carries a secret unsealed (`tainted` says which
/// root names do), so their errors withhold argument values.
pub(crate) fn mark_secret_calls(node: &mut Node, tainted: &dyn Fn(&str) -> bool) {
    match node {
        Node::Call(call) => {
            call.quiet = call.args.iter().any(|a| carries_secret(a, tainted));
            for a in &mut call.args {
                mark_secret_calls(a, tainted);
            }
        }
        Node::Const(_) | Node::Path { .. } | Node::JsonPath(..) => {}
        Node::Array(items) => items.iter_mut().for_each(|n| mark_secret_calls(n, tainted)),
        Node::Object(fields) => fields
            .iter_mut()
            .for_each(|(_, n)| mark_secret_calls(n, tainted)),
        Node::Field(t, _, _) | Node::Not(t, _) | Node::Neg(t, _) => mark_secret_calls(t, tainted),
        Node::Index(a, b, _) | Node::Binary(_, a, b, _) | Node::Try(a, b) => {
            mark_secret_calls(a, tainted);
            mark_secret_calls(b, tainted);
        }
        Node::Slice(t, a, b, _) => {
            mark_secret_calls(t, tainted);
            for n in [a, b].into_iter().flatten() {
                mark_secret_calls(n, tainted);
            }
        }
        Node::If(c, a, b, _) => {
            for n in [c, a, b] {
                mark_secret_calls(n, tainted);
            }
        }
        Node::Interpolated(parts) => {
            for p in parts {
                if let Part::Expr(n, _) = p {
                    mark_secret_calls(n, tainted);
                }
            }
        }
    }
}

/// Functions whose output does not reveal their secret input (hashes, MACs, ciphertexts);
/// the same list lint uses (`compile::exprs`).
pub(crate) const SEALING: &[&str] = &[
    "sha256",
    "hmac_sha256",
    "fernet_encrypt",
    "uuid_v5",
    "len",
    "is_empty",
];

/// Whether a secret can reach the node's value without passing through a sealing function.
fn carries_secret(node: &Node, tainted: &dyn Fn(&str) -> bool) -> bool {
    let carries = |n: &Node| carries_secret(n, tainted);
    match node {
        Node::Const(_) | Node::JsonPath(..) => false,
        Node::Path { name, .. } => tainted(name),
        Node::Call(call) if SEALING.contains(&call.name.as_str()) => false,
        Node::Call(call) => call.args.iter().any(carries),
        Node::Array(items) => items.iter().any(carries),
        Node::Object(fields) => fields.iter().any(|(_, n)| carries(n)),
        Node::Field(t, _, _) | Node::Not(t, _) | Node::Neg(t, _) => carries(t),
        Node::Index(a, b, _) | Node::Binary(_, a, b, _) | Node::Try(a, b) => {
            carries(a) || carries(b)
        }
        Node::Slice(t, a, b, _) => {
            carries(t) || a.as_deref().is_some_and(carries) || b.as_deref().is_some_and(carries)
        }
        Node::If(_, a, b, _) => carries(a) || carries(b),
        Node::Interpolated(parts) => parts
            .iter()
            .any(|p| matches!(p, Part::Expr(n, _) if carries(n))),
    }
}

#[inline(never)]
fn binary<'a>(
    op: BinaryOp,
    a: &'a Node,
    b: &'a Node,
    range: TextRange,
    env: &Env<'a>,
) -> Result<Cow<'a, Value>, EvalError> {
    let bool_operand = |v: &Value, side: &str| -> Result<bool, EvalError> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::Null => err(
                range,
                format!(
                    "{side} operand of `{}` is null; use `?? false` to give it a default",
                    op.symbol()
                ),
            ),
            other => err(
                range,
                format!(
                    "operator `{}` needs bools, got {}",
                    op.symbol(),
                    type_name(other)
                ),
            ),
        }
    };
    let boolean = |b: bool| Ok(Cow::Owned(Value::Bool(b)));
    match op {
        BinaryOp::And | BinaryOp::Or => {
            let l = bool_operand(eval(a, env)?.as_ref(), "left")?;
            if l == (op == BinaryOp::Or) {
                return boolean(l);
            }
            boolean(bool_operand(eval(b, env)?.as_ref(), "right")?)
        }
        BinaryOp::Coalesce => {
            let l = eval(a, env)?;
            if l.is_null() { eval(b, env) } else { Ok(l) }
        }
        BinaryOp::Otherwise => {
            let l = eval(a, env)?;
            if crate::functions::is_empty(&l) {
                eval(b, env)
            } else {
                Ok(l)
            }
        }
        BinaryOp::Eq => boolean(value::deep_eq(
            eval(a, env)?.as_ref(),
            eval(b, env)?.as_ref(),
        )),
        BinaryOp::Ne => boolean(!value::deep_eq(
            eval(a, env)?.as_ref(),
            eval(b, env)?.as_ref(),
        )),
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            let (l, r) = (eval(a, env)?, eval(b, env)?);
            value::compare(op, &l, &r)
                .map(|b| Cow::Owned(Value::Bool(b)))
                .or_else(|m| err(range, m))
        }
        BinaryOp::In => {
            let (l, r) = (eval(a, env)?, eval(b, env)?);
            value::contains(&l, &r)
                .map(|b| Cow::Owned(Value::Bool(b)))
                .or_else(|m| err(range, m))
        }
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
            let (l, r) = (eval(a, env)?, eval(b, env)?);
            value::arithmetic(op, l, r)
                .map(Cow::Owned)
                .or_else(|m| err(range, m))
        }
    }
}

/// `value.name`: null-safe; an error on anything but an object.
pub(crate) fn field<'a>(value: Cow<'a, Value>, name: &str) -> Result<Cow<'a, Value>, String> {
    match value {
        Cow::Borrowed(Value::Object(m)) => {
            Ok(Cow::Borrowed(value::get_field(m, name).unwrap_or(&NULL)))
        }
        Cow::Owned(Value::Object(mut m)) => Ok(Cow::Owned(m.remove(name).unwrap_or(Value::Null))),
        Cow::Borrowed(Value::Null) | Cow::Owned(Value::Null) => Ok(Cow::Borrowed(&NULL)),
        other => Err(format!(
            "cannot read field `{name}` of {} {}",
            article(&other),
            type_name(&other)
        )),
    }
}

/// `value[index]`: an integer into an array (negative from the end) or a string key into an
/// object; null-safe and null when out of range.
pub(crate) fn index_value<'a>(
    value: Cow<'a, Value>,
    index: &Value,
) -> Result<Cow<'a, Value>, String> {
    if value.is_null() || index.is_null() {
        return Ok(Cow::Borrowed(&NULL));
    }
    if let Value::String(key) = index {
        return match value {
            Cow::Borrowed(Value::Object(_)) | Cow::Owned(Value::Object(_)) => field(value, key),
            other => Err(format!(
                "cannot look up key \"{key}\" in {} {}",
                article(&other),
                type_name(&other)
            )),
        };
    }
    let Some(i) = value::as_index(index) else {
        return Err(format!(
            "an index must be an integer or a string key, got {}",
            type_name(index)
        ));
    };
    match value {
        Cow::Borrowed(Value::Array(a)) => Ok(Cow::Borrowed(
            value::resolve_index(a.len(), i)
                .and_then(|i| a.get(i))
                .unwrap_or(&NULL),
        )),
        Cow::Owned(Value::Array(mut a)) => Ok(Cow::Owned(match value::resolve_index(a.len(), i) {
            Some(i) if i < a.len() => a.swap_remove(i),
            _ => Value::Null,
        })),
        other => Err(format!(
            "cannot index {} {} with [{i}]; only arrays have positions",
            article(&other),
            type_name(&other)
        )),
    }
}
