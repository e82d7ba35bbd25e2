use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `replace(s, from, to)`: replaces every literal occurrence of a substring.
pub struct Replace;

impl Function for Replace {
    fn name(&self) -> &str {
        "replace"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Replaces every occurrence of `from` (matched literally, case-sensitively) with `to`. An \
         empty `from` leaves the string unchanged. Use `regex_replace` for patterns."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::new("from", Type::String),
                Param::new("to", Type::String),
            ],
            Type::String,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "every occurrence",
                source: r#"replace("a-b-c", "-", "/")"#,
                record: "{}",
                result: r#""a/b/c""#,
            },
            Example {
                title: "removing a prefix",
                source: r#"replace(id, "CRM-", "")"#,
                record: r#"{"id": "CRM-1042"}"#,
                result: r#""1042""#,
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let s = arg::str(args, 0)?;
        let from = arg::str(args, 1)?;
        let to = arg::str(args, 2)?;
        if from.is_empty() {
            return Ok(Value::String(s.to_string()));
        }
        Ok(Value::String(s.replace(from, to)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Replace);
    }

    #[test]
    fn empty_from_is_a_no_op() {
        assert_eq!(
            call(&Replace, vec![json!("abc"), json!(""), json!("x")]),
            Ok(json!("abc"))
        );
        assert_eq!(
            call(&Replace, vec![json!("aaa"), json!("aa"), json!("b")]),
            Ok(json!("ba"))
        );
    }
}
