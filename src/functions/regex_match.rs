use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Prepared, Signature, arg, pattern,
};
use crate::types::Type;

/// `regex_match(s, pattern)`: whether a regular expression matches somewhere in the string.
pub struct RegexMatch;

impl Function for RegexMatch {
    fn name(&self) -> &str {
        "regex_match"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Whether `pattern` matches anywhere in the string; anchor it with `^...$` to match the \
         whole string. Patterns use Rust `regex` syntax (no look-around or back-references; \
         matching takes linear time); in a string literal a backslash is doubled, so the regex \
         `\\d+` is written `\"\\\\d+\"`. A literal pattern is compiled once and checked by `lint`; \
         a computed one is compiled on each call and an invalid one is an error."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::new("pattern", Type::String),
            ],
            Type::Bool,
        )
        .fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a whole-string check",
                source: r#"regex_match(zip, "^\\d{5}$")"#,
                record: r#"{"zip": "94103"}"#,
                result: "true",
            },
            Example {
                title: "case-insensitive, anywhere",
                source: r#"regex_match(title, "(?i)manager")"#,
                record: r#"{"title": "Sales Manager, EMEA"}"#,
                result: "true",
            },
            Example {
                title: "an invalid literal pattern is a lint error",
                source: r#"regex_match(name, "(unclosed")"#,
                record: "{}",
                result: "error: invalid regex \"(unclosed\": unclosed group",
            },
            Example {
                title: "an invalid pattern from a field",
                source: r#"regex_match("x", pattern)"#,
                record: r#"{"pattern": "(unclosed"}"#,
                result: "error: invalid regex",
            },
        ]
    }
    fn prepare(&self, consts: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        pattern::prepare(consts.get(1).copied().flatten())
    }
    fn call(&self, args: &[Cow<'_, Value>], cx: &CallContext<'_>) -> Result<Value, FnError> {
        let s = arg::str(args, 0)?;
        let re = pattern::for_call(cx, arg::str(args, 1)?)?;
        Ok(Value::Bool(re.is_match(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, call_dynamic};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&RegexMatch);
    }

    #[test]
    fn literal_and_computed_patterns() {
        let args = || vec![json!("abc123"), json!(r"\d+")];
        assert_eq!(call(&RegexMatch, args()), Ok(json!(true)));
        assert_eq!(call_dynamic(&RegexMatch, args()), Ok(json!(true)));
        assert_eq!(
            call(&RegexMatch, vec![json!("abc"), json!("^b")]),
            Ok(json!(false))
        );
    }

    #[test]
    fn invalid_literal_is_a_prepare_error() {
        let e = RegexMatch.prepare(&[None, Some(&json!("(a"))]).err();
        assert_eq!(e.as_deref(), Some("invalid regex \"(a\": unclosed group"));
        let e = call_dynamic(&RegexMatch, vec![json!("a"), json!("(a")]).unwrap_err();
        assert!(e.0.contains("unclosed group"), "{e}");
    }
}
