use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `is_null(v)`: whether a value is null (or missing).
pub struct IsNull;

impl Function for IsNull {
    fn name(&self) -> &str {
        "is_null"
    }
    fn category(&self) -> Category {
        Category::Null
    }
    fn doc(&self) -> &'static str {
        "Whether the value is null; a missing field is null. Unlike `is_empty`, `\"\"` and `[]` \
         are not null."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::Any)], Type::Bool)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a missing field",
                source: "is_null(manager)",
                record: "{}",
                result: "true",
            },
            Example {
                title: "an empty string is not null",
                source: "is_null(manager)",
                record: r#"{"manager": ""}"#,
                result: "false",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(Value::Bool(arg::any(args, 0).is_null()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&IsNull);
    }

    #[test]
    fn values() {
        assert_eq!(call(&IsNull, vec![json!(null)]), Ok(json!(true)));
        assert_eq!(call(&IsNull, vec![json!(0)]), Ok(json!(false)));
    }
}
