use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `ends_with(s, suffix)`.
pub struct EndsWith;

impl Function for EndsWith {
    fn name(&self) -> &str {
        "ends_with"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Whether the string ends with `suffix` (case-sensitive; every string ends with `\"\"`)."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::new("suffix", Type::String),
            ],
            Type::Bool,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a company domain",
                source: r#"ends_with(lower(email), "@example.com")"#,
                record: r#"{"email": "Ada@Example.com"}"#,
                result: "true",
            },
            Example {
                title: "no match",
                source: r#"ends_with("report.pdf", ".csv")"#,
                record: "{}",
                result: "false",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(Value::Bool(arg::str(args, 0)?.ends_with(arg::str(args, 1)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&EndsWith);
    }

    #[test]
    fn edges() {
        assert_eq!(call(&EndsWith, vec![json!("añ"), json!("ñ")]), Ok(json!(true)));
        assert_eq!(call(&EndsWith, vec![json!("a"), json!("")]), Ok(json!(true)));
        assert_eq!(call(&EndsWith, vec![json!(null), json!("")]), Ok(json!(null)));
    }
}
