use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Prepared, Signature, arg, pattern,
};
use crate::types::Type;

/// `regex_replace(s, pattern, replacement)`: replaces every match of a regular expression.
pub struct RegexReplace;

impl Function for RegexReplace {
    fn name(&self) -> &str {
        "regex_replace"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Replaces every match of `pattern` with `replacement`, in which `$1` or `${name}` insert \
         a capture group and `$$` a literal `$` (write `${1}x`, not `$1x`, when a letter or digit \
         follows). Pattern syntax and compilation as for `regex_match`."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::new("pattern", Type::String),
                Param::new("replacement", Type::String),
            ],
            Type::String,
        )
        .fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "keep only digits",
                source: r#"regex_replace(phone, "[^0-9]", "")"#,
                record: r#"{"phone": "(415) 555-0100"}"#,
                result: r#""4155550100""#,
            },
            Example {
                title: "collapse runs of whitespace",
                source: r#"regex_replace("Ada   King   Lovelace", "[[:space:]]+", " ")"#,
                record: "{}",
                result: r#""Ada King Lovelace""#,
            },
            Example {
                title: "reorder with groups",
                source: r#"regex_replace("Lovelace, Ada", "^([A-Za-z]+), ([A-Za-z]+)$", "$2 $1")"#,
                record: "{}",
                result: r#""Ada Lovelace""#,
            },
        ]
    }
    fn prepare(&self, consts: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        pattern::prepare(consts.get(1).copied().flatten())
    }
    fn call(&self, args: &[Cow<'_, Value>], cx: &CallContext<'_>) -> Result<Value, FnError> {
        let s = arg::str(args, 0)?;
        let re = pattern::for_call(cx, arg::str(args, 1)?)?;
        let replacement = arg::str(args, 2)?;
        Ok(Value::String(re.replace_all(s, replacement).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, call_dynamic};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&RegexReplace);
    }

    #[test]
    fn groups_and_dollars() {
        let r = |s: &str, p: &str, t: &str| call(&RegexReplace, vec![json!(s), json!(p), json!(t)]);
        assert_eq!(r("a1b2", r"(\d)", "<${1}>"), Ok(json!("a<1>b<2>")));
        assert_eq!(r("price 5", r"(\d)", "$$$1"), Ok(json!("price $5")));
        assert_eq!(
            r("2024-01-15", r"(?P<y>\d+)-(?P<m>\d+)-(?P<d>\d+)", "$d.$m.$y"),
            Ok(json!("15.01.2024"))
        );
        assert_eq!(r("no match", r"\d", "x"), Ok(json!("no match")));
        assert!(
            call_dynamic(&RegexReplace, vec![json!("a"), json!("["), json!("")]).is_err()
        );
    }
}
