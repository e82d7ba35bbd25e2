use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `starts_with(s, prefix)`.
pub struct StartsWith;

impl Function for StartsWith {
    fn name(&self) -> &str {
        "starts_with"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Whether the string begins with `prefix` (case-sensitive; every string starts with \
         `\"\"`). Combine with `lower` for a case-insensitive test."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::new("prefix", Type::String),
            ],
            Type::Bool,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "an international number",
                source: r#"starts_with(phone, "+")"#,
                record: r#"{"phone": "+14155550100"}"#,
                result: "true",
            },
            Example {
                title: "case matters",
                source: r#"starts_with("Sales", "sa")"#,
                record: "{}",
                result: "false",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(Value::Bool(arg::str(args, 0)?.starts_with(arg::str(args, 1)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&StartsWith);
    }

    #[test]
    fn edges() {
        assert_eq!(call(&StartsWith, vec![json!("é"), json!("")]), Ok(json!(true)));
        assert_eq!(call(&StartsWith, vec![json!(""), json!("a")]), Ok(json!(false)));
        assert_eq!(call(&StartsWith, vec![json!("a"), json!(null)]), Ok(json!(null)));
    }
}
