//! Operation templates and response extraction.
//!
//! Path, query, header and body strings of an operation are minijinja templates, compiled once
//! when the connector is built. A body string that is exactly one `{{ expression }}` stands for
//! the expression's JSON value (an object, an array, a number), not its text: with
//! `body: { properties: "{{ payload }}" }` the payload object is sent. Values written into a path
//! are percent-encoded as one path segment each.
//!
//! JSONPath queries (`id`, `results`, `item_errors`, `created`) are parsed once with
//! `jsonpath-rust`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use jsonpath_rust::parser::model::JpQuery;
use minijinja::{Environment, Error as JinjaError, ErrorKind as JinjaErrorKind, Output, State};
use serde_json::{Map, Value};

use crate::connect::{ConnectError, ErrorKind};

/// Template variables every operation may read; `HttpOptions::vars` add to them.
pub(crate) const CONTEXT_NAMES: &[&str] = &[
    "payload", "id", "key", "field", "items", "inputs", "records", "payloads", "keys", "first",
];

/// Where a template's output goes, which decides how substituted values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A URL path: each substituted value is percent-encoded as one segment.
    Path,
    /// A query value, header value or body string: written as is.
    Plain,
}

/// A compiled text template.
#[derive(Clone, Debug)]
pub(crate) enum Text {
    Literal(String),
    Template { name: String, target: Target },
}

/// A compiled body (or batch item) template.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    /// Constant JSON.
    Literal(Value),
    /// `"{{ payload }}"`, `"{{ first.tenant }}"`: the value at that place in the context.
    Lookup(Vec<String>),
    /// `"{{ expr }}"` with any other expression: rendered to JSON by minijinja.
    Expr(String),
    /// A string with text around or between its templates.
    Text(String),
    Array(Vec<Body>),
    Object(Vec<(String, Body)>),
}

/// The minijinja environments holding every template of one connector.
pub(crate) struct Templates {
    plain: Environment<'static>,
    path: Environment<'static>,
    known: BTreeSet<String>,
    count: usize,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

const JSON_FILTER: &str = "__rulebridge_json";

impl Templates {
    /// `extra`: names of caller-supplied variables (`HttpOptions::vars`).
    pub fn new<'a>(extra: impl IntoIterator<Item = &'a String>) -> Self {
        let plain = environment(Target::Plain);
        let mut known: BTreeSet<String> = CONTEXT_NAMES.iter().map(|s| s.to_string()).collect();
        known.extend(extra.into_iter().cloned());
        // minijinja's own functions (`range`, `dict`, `namespace`, ...).
        known.extend(plain.globals().map(|(name, _)| name.to_string()));
        Templates {
            plain,
            path: environment(Target::Path),
            known,
            count: 0,
        }
    }

    /// Compiles a text template (`where` names it in errors, e.g. `contact.update path`).
    pub fn text(&mut self, source: &str, target: Target, at: &str) -> Result<Text, String> {
        if !has_template_syntax(source) {
            return Ok(Text::Literal(source.to_string()));
        }
        let name = self.add(source, target, at)?;
        Ok(Text::Template { name, target })
    }

    /// Compiles a body template: every string in `value` may be a template.
    pub fn body(&mut self, value: &Value, at: &str) -> Result<Body, String> {
        Ok(match value {
            Value::String(s) => {
                if let Some(inner) = single_expression(s) {
                    match lookup_path(inner) {
                        Some(path) => {
                            self.check_root(&path[0], at)?;
                            Body::Lookup(path)
                        }
                        None => {
                            let source = format!("{{{{ ({inner}) | {JSON_FILTER} }}}}");
                            Body::Expr(self.add(&source, Target::Plain, at)?)
                        }
                    }
                } else if has_template_syntax(s) {
                    Body::Text(self.add(s, Target::Plain, at)?)
                } else {
                    Body::Literal(value.clone())
                }
            }
            Value::Array(items) => {
                let items = items
                    .iter()
                    .map(|v| self.body(v, at))
                    .collect::<Result<Vec<_>, _>>()?;
                if items.iter().all(|b| matches!(b, Body::Literal(_))) {
                    Body::Literal(value.clone())
                } else {
                    Body::Array(items)
                }
            }
            Value::Object(fields) => {
                let fields = fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.body(v, at)?)))
                    .collect::<Result<Vec<_>, String>>()?;
                if fields.iter().all(|(_, b)| matches!(b, Body::Literal(_))) {
                    Body::Literal(value.clone())
                } else {
                    Body::Object(fields)
                }
            }
            other => Body::Literal(other.clone()),
        })
    }

    fn add(&mut self, source: &str, target: Target, at: &str) -> Result<String, String> {
        self.count += 1;
        let name = format!("t{}", self.count);
        let env = match target {
            Target::Path => &mut self.path,
            Target::Plain => &mut self.plain,
        };
        env.add_template_owned(name.clone(), source.to_string())
            .map_err(|e| format!("{at}: template error: {}", jinja_message(&e)))?;
        let vars = env
            .get_template(&name)
            .map(|t| t.undeclared_variables(false))
            .map_err(|e| format!("{at}: template error: {}", jinja_message(&e)))?;
        let mut vars: Vec<String> = vars.into_iter().collect();
        vars.sort();
        for v in vars {
            self.check_root(&v, at)?;
        }
        Ok(name)
    }

    fn check_root(&self, name: &str, at: &str) -> Result<(), String> {
        if self.known.contains(name) {
            return Ok(());
        }
        let known: Vec<&str> = self.known.iter().map(String::as_str).collect();
        Err(format!(
            "{at}: template uses `{name}`, which is not available (known: {}; other values can be passed as connector variables)",
            known.join(", ")
        ))
    }

    pub fn render_text(&self, t: &Text, cx: &Context) -> Result<String, ConnectError> {
        match t {
            Text::Literal(s) => Ok(s.clone()),
            Text::Template { name, target } => {
                let env = match target {
                    Target::Path => &self.path,
                    Target::Plain => &self.plain,
                };
                render(env, name, cx)
            }
        }
    }

    pub fn render_body(&self, b: &Body, cx: &Context) -> Result<Value, ConnectError> {
        Ok(match b {
            Body::Literal(v) => v.clone(),
            Body::Lookup(path) => cx.lookup(path),
            Body::Expr(name) => {
                let text = render(&self.plain, name, cx)?;
                serde_json::from_str(&text).map_err(|e| {
                    ConnectError::new(
                        ErrorKind::Fatal,
                        format!("template did not produce JSON: {e}"),
                    )
                })?
            }
            Body::Text(name) => Value::String(render(&self.plain, name, cx)?),
            Body::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.render_body(i, cx))
                    .collect::<Result<_, _>>()?,
            ),
            Body::Object(fields) => {
                let mut out = Map::new();
                for (k, v) in fields {
                    out.insert(k.clone(), self.render_body(v, cx)?);
                }
                Value::Object(out)
            }
        })
    }
}

fn render(env: &Environment<'static>, name: &str, cx: &Context) -> Result<String, ConnectError> {
    let template = env
        .get_template(name)
        .map_err(|e| ConnectError::new(ErrorKind::Fatal, jinja_message(&e)))?;
    template.render(cx.jinja()).map_err(|e| {
        ConnectError::new(
            ErrorKind::Fatal,
            format!("template error: {}", jinja_message(&e)),
        )
    })
}

fn jinja_message(e: &JinjaError) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

fn environment(target: Target) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    match target {
        Target::Plain => env.set_formatter(|out, state, value| {
            if value.is_none() || value.is_undefined() {
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        }),
        Target::Path => env.set_formatter(path_formatter),
    }
    env.add_filter(JSON_FILTER, |v: minijinja::Value| {
        serde_json::to_string(&v)
            .map_err(|e| JinjaError::new(JinjaErrorKind::InvalidOperation, e.to_string()))
    });
    env.add_filter("soql", |v: minijinja::Value| soql_escape(&text_of(&v)));
    env
}

fn text_of(v: &minijinja::Value) -> String {
    match v.as_str() {
        Some(s) => s.to_string(),
        None if v.is_none() || v.is_undefined() => String::new(),
        None => v.to_string(),
    }
}

/// Escapes text for a SOQL string literal (`'...'`): `WHERE Email = '{{ key | soql }}'`.
pub(crate) fn soql_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
    out
}

fn path_formatter(
    out: &mut Output<'_>,
    _state: &mut State<'_, '_>,
    value: &minijinja::Value,
) -> Result<(), JinjaError> {
    if value.is_none() || value.is_undefined() {
        return Ok(());
    }
    let text = match value.as_str() {
        Some(s) => s.to_string(),
        None => value.to_string(),
    };
    out.write_str(&encode_segment(&text))
        .map_err(|e| JinjaError::new(JinjaErrorKind::WriteFailure, e.to_string()))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn has_template_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The expression of a string that is exactly one `{{ expression }}`.
fn single_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.trim_start_matches('-').trim_end_matches('-').trim();
    if inner.is_empty() || has_template_syntax(inner) || inner.contains("}}") {
        return None;
    }
    Some(inner)
}

/// `payload`, `first.tenant`: a dotted path of identifiers.
fn lookup_path(expr: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = expr.split('.').map(|p| p.trim().to_string()).collect();
    let ident = |p: &String| {
        let mut chars = p.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    (parts.iter().all(ident)
        && !parts
            .iter()
            .any(|p| p == "none" || p == "true" || p == "false"))
    .then_some(parts)
}

/// The values one request's templates read.
pub(crate) struct Context {
    json: Value,
    jinja: std::sync::OnceLock<minijinja::Value>,
}

impl Context {
    pub fn new(map: Map<String, Value>) -> Self {
        Context {
            json: Value::Object(map),
            jinja: std::sync::OnceLock::new(),
        }
    }

    fn jinja(&self) -> minijinja::Value {
        self.jinja
            .get_or_init(|| minijinja::Value::from(minijinja::value::Serde(&self.json)))
            .clone()
    }

    fn lookup(&self, path: &[String]) -> Value {
        let mut cur = &self.json;
        for p in path {
            match cur.get(p) {
                Some(v) => cur = v,
                None => return Value::Null,
            }
        }
        cur.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// JSONPath

/// A parsed JSONPath query.
pub(crate) struct Query {
    text: String,
    query: JpQuery,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Query({})", self.text)
    }
}

impl Query {
    pub fn compile(text: &str) -> Result<Query, String> {
        jsonpath_rust::parser::parse_json_path(text)
            .map(|query| Query {
                text: text.to_string(),
                query,
            })
            .map_err(|e| format!("invalid JSONPath `{text}`: {e}"))
    }

    /// Every match, in document order.
    pub fn all(&self, value: &Value) -> Vec<Value> {
        jsonpath_rust::query::js_path_process(&self.query, value)
            .map(|found| found.into_iter().map(|r| r.val().clone()).collect())
            .unwrap_or_default()
    }

    /// The first non-null match.
    pub fn first(&self, value: &Value) -> Option<Value> {
        self.all(value).into_iter().find(|v| !v.is_null())
    }
}

/// An id as text: strings as they are, numbers written out; anything else is no id.
pub(crate) fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cx(v: Value) -> Context {
        match v {
            Value::Object(m) => Context::new(m),
            _ => Context::new(Map::new()),
        }
    }

    #[test]
    fn single_expressions_keep_their_json_value() {
        let mut t = Templates::new([]);
        let body = t
            .body(
                &json!({"properties": "{{ payload }}", "n": "{{ payload.n + 1 }}", "s": "id {{ id }}", "k": 3}),
                "test",
            )
            .map_err(|e| e.to_string());
        let Ok(body) = body else { panic!("{body:?}") };
        let c = cx(json!({"payload": {"a": "x", "n": 1}, "id": 7}));
        let out = t.render_body(&body, &c).map_err(|e| e.to_string());
        assert_eq!(
            out,
            Ok(json!({"properties": {"a": "x", "n": 1}, "n": 2, "s": "id 7", "k": 3}))
        );
    }

    #[test]
    fn path_values_are_encoded() {
        let mut t = Templates::new([]);
        let p = t.text("/contacts/{{ id }}/x", Target::Path, "test");
        let Ok(p) = p else { panic!() };
        let c = cx(json!({"id": "a b/c?d"}));
        assert_eq!(
            t.render_text(&p, &c).ok().as_deref(),
            Some("/contacts/a%20b%2Fc%3Fd/x")
        );
    }

    #[test]
    fn unknown_variables_are_build_errors() {
        let mut t = Templates::new([]);
        let e = t.text("{{ tenant_id }}", Target::Plain, "user.batch_upsert header");
        assert!(e.is_err_and(|e| e.contains("`tenant_id`")));
        let mut t = Templates::new([&"tenant_id".to_string()]);
        assert!(t.text("{{ tenant_id }}", Target::Plain, "h").is_ok());
    }

    #[test]
    fn filters_and_globals() {
        let mut t = Templates::new([]);
        let q = t.text("Email = '{{ key | soql }}'", Target::Plain, "q");
        let Ok(q) = q else { panic!("{q:?}") };
        let c = cx(json!({"key": "o'brien\\x@y.com"}));
        assert_eq!(
            t.render_text(&q, &c).ok().as_deref(),
            Some("Email = 'o\\'brien\\\\x@y.com'")
        );
        assert!(
            t.text(
                "{% for i in range(2) %}{{ i }}{% endfor %}",
                Target::Plain,
                "r"
            )
            .is_ok()
        );
    }

    #[test]
    fn queries() {
        let q = Query::compile("$.results[*]");
        let Ok(q) = q else { panic!() };
        assert_eq!(q.all(&json!({"results": [1, 2]})), vec![json!(1), json!(2)]);
        assert!(Query::compile("$.x[").is_err());
        assert_eq!(id_text(&json!(12)), Some("12".into()));
    }
}
