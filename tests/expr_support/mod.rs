//! Shared helpers for the expression tests: a registry with small test functions, a fixed
//! record schema, fixture reading and error rendering with carets.

#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rulebridge::expr::TextRange;
use rulebridge::functions::{
    CallContext, Category, FnError, Function, Param, Prepared, Registry, Signature,
};
use rulebridge::types::Type;
use serde_json::Value;

type Body = fn(&[Cow<'_, Value>], &CallContext<'_>) -> Result<Value, FnError>;
type Prepare = fn(&[Option<&Value>]) -> Result<Option<Prepared>, String>;

/// A function defined by plain fn pointers, for tests.
pub struct TestFn {
    name: &'static str,
    sig: fn() -> Signature,
    body: Body,
    prepare: Option<Prepare>,
    returns: Option<fn(&[Type]) -> Type>,
}

impl Function for TestFn {
    fn name(&self) -> &str {
        self.name
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "test function"
    }
    fn signature(&self) -> Signature {
        (self.sig)()
    }
    fn return_type(&self, args: &[Type]) -> Type {
        match self.returns {
            Some(f) => f(args),
            None => self.signature().returns,
        }
    }
    fn prepare(&self, consts: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        match self.prepare {
            Some(p) => p(consts),
            None => Ok(None),
        }
    }
    fn call(&self, args: &[Cow<'_, Value>], cx: &CallContext<'_>) -> Result<Value, FnError> {
        (self.body)(args, cx)
    }
}

fn s<'a>(args: &'a [Cow<'_, Value>], i: usize) -> Result<&'a str, FnError> {
    args.get(i)
        .and_then(|v| v.as_str())
        .ok_or_else(|| FnError::new(format!("argument {} must be a string", i + 1)))
}

fn f(name: &'static str, sig: fn() -> Signature, body: Body) -> TestFn {
    TestFn {
        name,
        sig,
        body,
        prepare: None,
        returns: None,
    }
}

/// `lower` (builtin) plus: `upper`, `split`, `join`, `len`, `coalesce`, `first`, `matches`
/// (prepares a regex from a constant pattern), `now`, `fail`.
pub fn registry() -> Registry {
    let mut r = Registry::builtin();
    let fns = vec![
        f(
            "upper",
            || Signature::new(vec![Param::new("value", Type::String)], Type::String),
            |a, _| Ok(Value::String(s(a, 0)?.to_uppercase())),
        ),
        f(
            "split",
            || {
                Signature::new(
                    vec![
                        Param::new("value", Type::String),
                        Param::new("separator", Type::String),
                    ],
                    Type::array(Type::String),
                )
            },
            |a, _| {
                Ok(Value::Array(
                    s(a, 0)?
                        .split(s(a, 1)?)
                        .map(|p| Value::String(p.to_string()))
                        .collect(),
                ))
            },
        ),
        f(
            "join",
            || {
                Signature::new(
                    vec![
                        Param::new("items", Type::array(Type::String)),
                        Param::opt("separator", Type::optional(Type::String)),
                    ],
                    Type::String,
                )
            },
            |a, _| {
                let sep = a.get(1).and_then(|v| v.as_str()).unwrap_or("");
                let items: Vec<&str> = a
                    .first()
                    .and_then(|v| v.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                Ok(Value::String(items.join(sep)))
            },
        ),
        f(
            "len",
            || Signature::new(vec![Param::new("value", Type::Any)], Type::Number),
            |a, _| match a.first().map(|v| v.as_ref()) {
                Some(Value::String(s)) => Ok(Value::from(s.chars().count())),
                Some(Value::Array(v)) => Ok(Value::from(v.len())),
                Some(Value::Object(m)) => Ok(Value::from(m.len())),
                Some(Value::Null) => Ok(Value::from(0)),
                _ => Err(FnError::new("len needs a string, array or object")),
            },
        ),
        f(
            "coalesce",
            || {
                Signature::new(vec![], Type::Any)
                    .variadic(Param::new("values", Type::optional(Type::Any)))
            },
            |a, _| {
                Ok(a.iter()
                    .find(|v| !v.is_null())
                    .map(|v| v.as_ref().clone())
                    .unwrap_or(Value::Null))
            },
        ),
        TestFn {
            returns: Some(|args| match args.first() {
                Some(Type::Array(t)) => Type::optional((**t).clone()),
                _ => Type::Any,
            }),
            ..f(
                "first",
                || Signature::new(vec![Param::new("items", Type::array(Type::Any))], Type::Any),
                |a, _| {
                    Ok(a.first()
                        .and_then(|v| v.as_array())
                        .and_then(|v| v.first())
                        .cloned()
                        .unwrap_or(Value::Null))
                },
            )
        },
        TestFn {
            prepare: Some(|consts| match consts.get(1) {
                Some(Some(Value::String(p))) => regex::Regex::new(p)
                    .map(|re| Some(Arc::new(re) as Prepared))
                    .map_err(|e| {
                        format!(
                            "invalid regular expression: {}",
                            e.to_string().lines().last().unwrap_or_default()
                        )
                    }),
                _ => Ok(None),
            }),
            ..f(
                "matches",
                || {
                    Signature::new(
                        vec![
                            Param::new("value", Type::String),
                            Param::new("pattern", Type::String),
                        ],
                        Type::Bool,
                    )
                    .fallible()
                },
                |a, cx| {
                    let text = s(a, 0)?;
                    if let Some(re) = cx.prepared::<regex::Regex>() {
                        return Ok(Value::Bool(re.is_match(text)));
                    }
                    let re =
                        regex::Regex::new(s(a, 1)?).map_err(|e| FnError::new(e.to_string()))?;
                    Ok(Value::Bool(re.is_match(text)))
                },
            )
        },
        f(
            "now",
            || Signature::new(vec![], Type::String),
            |_, cx| Ok(Value::String(cx.clock.now().to_rfc3339())),
        ),
        f(
            "fail",
            || Signature::new(vec![Param::new("message", Type::String)], Type::Any).fallible(),
            |a, _| Err(FnError::new(s(a, 0)?)),
        ),
    ];
    for func in fns {
        r.register(Arc::new(func));
    }
    r
}

/// The record schema used by the check fixtures.
pub fn schema() -> BTreeMap<String, Type> {
    let t = |s: &str| Type::parse(s).unwrap_or(Type::Any);
    [
        ("email", t("string")),
        ("name", t("string")),
        ("nick", t("string?")),
        ("age", t("number")),
        ("score", t("number?")),
        ("vip", t("bool")),
        ("tags", t("array<string>")),
        ("items", t("array<object>")),
        ("user", t("object")),
        ("data", t("any")),
        ("dept", t("string")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Bindings available to the check fixtures.
pub fn bindings() -> Vec<(String, Type)> {
    vec![
        ("policy".to_string(), Type::Object),
        ("secrets".to_string(), Type::Object),
    ]
}

/// The fixture's lines that hold something: blank lines and `#` comments are skipped.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
}

/// Reads a file and splits `<record JSON>\n---\n<body>`.
pub fn read_with_record(path: &Path) -> (Value, String) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (record, body) = text.split_once("\n---\n").unwrap_or(("{}", text.as_str()));
    let record = serde_json::from_str(record)
        .unwrap_or_else(|e| panic!("{}: bad record JSON: {e}", path.display()));
    (record, body.to_string())
}

/// `^^^` under the range of a one-line source, indented by `indent`.
pub fn caret(src: &str, range: TextRange, indent: &str) -> String {
    let col = |off: u32| {
        let mut end = (off as usize).min(src.len());
        while end > 0 && !src.is_char_boundary(end) {
            end -= 1;
        }
        src[..end].chars().count()
    };
    let (start, end) = (col(range.start), col(range.end));
    format!(
        "{indent}{}{}",
        " ".repeat(start),
        "^".repeat(end.saturating_sub(start).max(1))
    )
}

/// An error under its source line.
pub fn render_error(
    src: &str,
    range: TextRange,
    head: &str,
    label: Option<&str>,
    help: Option<&str>,
) -> String {
    let mut out = format!("  {head}\n    {src}\n{}", caret(src, range, "    "));
    if let Some(l) = label {
        out.push(' ');
        out.push_str(l);
    }
    if let Some(h) = help {
        out.push_str(&format!("\n    help: {h}"));
    }
    out
}
