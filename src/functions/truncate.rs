use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Prepared, Signature, arg,
};
use crate::types::Type;

/// `truncate(s, max, suffix?)`: shortens a string to at most `max` characters.
pub struct Truncate;

impl Function for Truncate {
    fn name(&self) -> &str {
        "truncate"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Shortens the string to at most `max` characters (Unicode characters, not bytes), for \
         target fields with a length limit. When it is cut, `suffix` (default: none) ends the \
         result and counts toward `max`. A fractional `max` is rounded down; a negative literal \
         is a lint error, a computed negative `max` counts as 0."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::new("max", Type::Number),
                Param::opt("suffix", Type::String),
            ],
            Type::String,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a 10-character limit",
                source: "truncate(company, 10)",
                record: r#"{"company": "Analytical Engines Ltd"}"#,
                result: r#""Analytical""#,
            },
            Example {
                title: "with an ellipsis",
                source: r#"truncate("Analytical Engines Ltd", 10, "…")"#,
                record: "{}",
                result: r#""Analytica…""#,
            },
            Example {
                title: "short enough already",
                source: r#"truncate("Ada", 10, "…")"#,
                record: "{}",
                result: r#""Ada""#,
            },
        ]
    }
    fn prepare(&self, consts: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        if let Some(Some(Value::Number(n))) = consts.get(1)
            && n.as_f64().is_some_and(|n| n < 0.0)
        {
            return Err(format!("max must not be negative, got {n}"));
        }
        Ok(None)
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let s = arg::str(args, 0)?;
        let max = arg::num(args, 1)?.max(0.0).floor();
        let suffix = arg::opt_str(args, 2)?.unwrap_or("");
        let len = s.chars().count();
        if (len as f64) <= max {
            return Ok(Value::String(s.to_string()));
        }
        let max = max as usize;
        let suffix_len = suffix.chars().count();
        let out: String = if suffix_len >= max {
            suffix.chars().take(max).collect()
        } else {
            s.chars().take(max - suffix_len).chain(suffix.chars()).collect()
        };
        Ok(Value::String(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, call_dynamic};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Truncate);
    }

    #[test]
    fn limits() {
        let t = |s: &str, max: Value, suffix: &str| {
            call_dynamic(&Truncate, vec![json!(s), max, json!(suffix)]).unwrap()
        };
        assert_eq!(t("héllo", json!(2), ""), json!("hé"));
        assert_eq!(t("hello", json!(5), "..."), json!("hello"));
        assert_eq!(t("hello!", json!(5), "..."), json!("he..."));
        assert_eq!(t("hello!", json!(2), "..."), json!(".."));
        assert_eq!(t("hello", json!(2.9), ""), json!("he"));
        assert_eq!(t("hello", json!(-1), ""), json!(""));
        assert_eq!(t("hello", json!(1e300), ""), json!("hello"));
    }

    #[test]
    fn negative_literal_is_a_prepare_error() {
        let e = call(&Truncate, vec![json!("abc"), json!(-2)]).unwrap_err();
        assert_eq!(e.0, "prepare: max must not be negative, got -2");
    }
}
