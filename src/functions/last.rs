use std::borrow::Cow;

use serde_json::Value;

use crate::functions::common::element_type;
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `last(array)`: the last element, null when empty.
pub struct Last;

impl Function for Last {
    fn name(&self) -> &str {
        "last"
    }
    fn category(&self) -> Category {
        Category::Collection
    }
    fn doc(&self) -> &'static str {
        "The last element of the array, or null when it is empty. Same as `values[-1]`."
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
                title: "a last name",
                source: r#"last(split(name, " "))"#,
                record: r#"{"name": "Ada King Lovelace"}"#,
                result: r#""Lovelace""#,
            },
            Example {
                title: "an empty array",
                source: "last([])",
                record: "{}",
                result: "null",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(arg::array(args, 0)?.last().cloned().unwrap_or(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, return_type};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Last);
    }

    #[test]
    fn values_and_types() {
        assert_eq!(call(&Last, vec![json!([1, null])]), Ok(json!(null)));
        assert_eq!(call(&Last, vec![json!([1, 2])]), Ok(json!(2)));
        assert_eq!(return_type(&Last, &[Type::array(Type::Number)]), "number?");
    }
}
