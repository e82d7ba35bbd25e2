use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `is_empty(v)`: whether a value is null, `""`, `[]` or `{}`.
pub struct IsEmpty;

/// Null, the empty string, the empty array and the empty object are empty; nothing else is
/// (not `0`, not `false`, not `" "`).
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

impl Function for IsEmpty {
    fn name(&self) -> &str {
        "is_empty"
    }
    fn category(&self) -> Category {
        Category::Null
    }
    fn doc(&self) -> &'static str {
        "Whether the value is null, the empty string, the empty array or the empty object. \
         `0`, `false` and whitespace-only strings are not empty."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::Any)], Type::Bool)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a blank field",
                source: "is_empty(company)",
                record: r#"{"company": ""}"#,
                result: "true",
            },
            Example {
                title: "a missing field",
                source: "is_empty(company)",
                record: "{}",
                result: "true",
            },
            Example {
                title: "zero is a value",
                source: "is_empty(score)",
                record: r#"{"score": 0}"#,
                result: "false",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(Value::Bool(is_empty(arg::any(args, 0))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&IsEmpty);
    }

    #[test]
    fn values() {
        for (v, empty) in [
            (json!(null), true),
            (json!(""), true),
            (json!([]), true),
            (json!({}), true),
            (json!(" "), false),
            (json!(0), false),
            (json!(false), false),
            (json!([null]), false),
        ] {
            assert_eq!(call(&IsEmpty, vec![v.clone()]), Ok(json!(empty)), "{v}");
        }
    }
}
