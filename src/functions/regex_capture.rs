use std::borrow::Cow;

use regex::Regex;
use serde_json::Value;

use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Prepared, Signature, arg, pattern,
};
use crate::types::Type;

/// `regex_capture(s, pattern, group?)`: a capture group of the first match.
pub struct RegexCapture;

/// The index of the group to return: `group` (a number or a name), or by default 1 when the
/// pattern has groups and 0 (the whole match) when it has none.
fn group_index(re: &Regex, group: Option<&Value>) -> Result<usize, String> {
    let count = re.captures_len();
    match group {
        None => Ok(if count > 1 { 1 } else { 0 }),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(i) if (i as usize) < count => Ok(i as usize),
            _ => Err(format!(
                "group {n} does not exist: the pattern has {} group(s)",
                count - 1
            )),
        },
        Some(Value::String(name)) => re
            .capture_names()
            .position(|n| n == Some(name.as_str()))
            .ok_or_else(|| format!("the pattern has no group named {name:?}")),
        Some(v) => Err(format!(
            "group must be a number or a name, got {}",
            crate::functions::type_name(v)
        )),
    }
}

impl Function for RegexCapture {
    fn name(&self) -> &str {
        "regex_capture"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Returns a capture group of the first match of `pattern`, or null when nothing matches \
         (or the group took no part in the match). `group` is a group number or a `(?P<name>...)` \
         name; by default it is group 1, or the whole match when the pattern has no groups. A \
         group that does not exist is an error (a lint error when pattern and group are \
         literals). Pattern syntax and compilation as for `regex_match`."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::new("pattern", Type::String),
                Param::opt("group", Type::Any),
            ],
            Type::optional(Type::String),
        )
        .fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "an id in an error message (group 1 by default)",
                source: r#"regex_capture(message, "Existing ID: (\\d+)")"#,
                record: r#"{"message": "Contact already exists. Existing ID: 5101"}"#,
                result: r#""5101""#,
            },
            Example {
                title: "a named group",
                source: r#"regex_capture(email, "@(?P<domain>.+)$", "domain")"#,
                record: r#"{"email": "ada@example.com"}"#,
                result: r#""example.com""#,
            },
            Example {
                title: "no match",
                source: r#"regex_capture("n/a", "[0-9]+")"#,
                record: "{}",
                result: "null",
            },
            Example {
                title: "a group that does not exist",
                source: r#"regex_capture("a1", pattern, 2)"#,
                record: r#"{"pattern": "([a-z])"}"#,
                result: "error: group 2 does not exist",
            },
        ]
    }
    fn prepare(&self, consts: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        let prepared = pattern::prepare(consts.get(1).copied().flatten())?;
        // With a literal pattern and a literal group, a missing group is a lint error.
        if let (Some(re), Some(Some(group))) = (
            prepared.as_ref().and_then(|p| p.downcast_ref::<Regex>()),
            consts.get(2),
        ) {
            group_index(re, Some(*group).filter(|g| !g.is_null()))?;
        }
        Ok(prepared)
    }
    fn call(&self, args: &[Cow<'_, Value>], cx: &CallContext<'_>) -> Result<Value, FnError> {
        let s = arg::str(args, 0)?;
        let re = pattern::for_call(cx, arg::str(args, 1)?)?;
        let group = group_index(&re, arg::opt(args, 2)).map_err(FnError)?;
        Ok(re
            .captures(s)
            .and_then(|c| c.get(group))
            .map_or(Value::Null, |m| Value::String(m.as_str().to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, call_dynamic};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&RegexCapture);
    }

    #[test]
    fn default_group() {
        let c = |p: &str| call(&RegexCapture, vec![json!("order 42, item 7"), json!(p)]);
        assert_eq!(c(r"\d+"), Ok(json!("42")));
        assert_eq!(c(r"item (\d+)"), Ok(json!("7")));
        assert_eq!(c(r"(x)?item"), Ok(json!(null)));
    }

    #[test]
    fn explicit_groups() {
        let c = |g: Value| call_dynamic(&RegexCapture, vec![json!("ab"), json!("(a)(b)"), g]);
        assert_eq!(c(json!(0)), Ok(json!("ab")));
        assert_eq!(c(json!(2)), Ok(json!("b")));
        assert!(c(json!(3)).unwrap_err().0.contains("has 2 group(s)"));
        assert!(c(json!(-1)).is_err());
        assert!(c(json!(1.5)).is_err());
        assert!(c(json!("nope")).unwrap_err().0.contains("no group named"));
        assert!(c(json!(true)).is_err());
        assert_eq!(c(json!(null)), Ok(json!("a")));
    }

    #[test]
    fn literal_group_is_checked_at_prepare() {
        let e = call(&RegexCapture, vec![json!("ab"), json!("(a)"), json!(4)]).unwrap_err();
        assert!(e.0.starts_with("prepare: group 4 does not exist"), "{e}");
    }
}
