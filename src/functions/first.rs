use std::borrow::Cow;

use serde_json::Value;

use crate::functions::common::element_type;
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `first(array)`: the first element, null when empty.
pub struct First;

impl Function for First {
    fn name(&self) -> &str {
        "first"
    }
    fn category(&self) -> Category {
        Category::Collection
    }
    fn doc(&self) -> &'static str {
        "The first element of the array, or null when it is empty. Same as `values[0]`."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![Param::new("values", Type::array(Type::Any))],
            Type::Any,
        )
    }
    fn return_type(&self, args: &[Type]) -> Type {
        Type::optional(args.first().map_or(Type::Any, element_type))
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "the primary e-mail address",
                source: "first(emails)",
                record: r#"{"emails": ["ada@example.com", "ada@home.example"]}"#,
                result: r#""ada@example.com""#,
            },
            Example {
                title: "an empty array",
                source: "first([])",
                record: "{}",
                result: "null",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(arg::array(args, 0)?.first().cloned().unwrap_or(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, return_type};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&First);
    }

    #[test]
    fn values_and_types() {
        assert_eq!(call(&First, vec![json!([[1], 2])]), Ok(json!([1])));
        assert_eq!(call(&First, vec![json!(null)]), Ok(json!(null)));
        assert_eq!(return_type(&First, &[Type::array(Type::String)]), "string?");
        assert_eq!(return_type(&First, &[Type::Any]), "any");
    }
}
