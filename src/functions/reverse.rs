use std::borrow::Cow;

use serde_json::Value;

use crate::functions::common::array_type;
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `reverse(array)`: the elements in reverse order.
pub struct Reverse;

impl Function for Reverse {
    fn name(&self) -> &str {
        "reverse"
    }
    fn category(&self) -> Category {
        Category::Collection
    }
    fn doc(&self) -> &'static str {
        "The array with its elements in reverse order; `reverse(sort(x))` sorts descending."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![Param::new("values", Type::array(Type::Any))],
            Type::array(Type::Any),
        )
    }
    fn return_type(&self, args: &[Type]) -> Type {
        array_type(args)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "newest first",
                source: "reverse(events)",
                record: r#"{"events": ["created", "updated", "closed"]}"#,
                result: r#"["closed", "updated", "created"]"#,
            },
            Example {
                title: "descending order",
                source: "reverse(sort([3, 1, 2]))",
                record: "{}",
                result: "[3, 2, 1]",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(Value::Array(
            arg::array(args, 0)?.iter().rev().cloned().collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Reverse);
    }

    #[test]
    fn values() {
        assert_eq!(call(&Reverse, vec![json!([])]), Ok(json!([])));
        assert_eq!(call(&Reverse, vec![json!([[1, 2], 3])]), Ok(json!([3, [1, 2]])));
    }
}
