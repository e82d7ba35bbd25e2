use std::borrow::Cow;

use serde_json::Value;

use crate::functions::min::{numbers, pick, result_type};
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature};
use crate::types::Type;

/// `max(a, b, ...)` or `max(array)`: the largest number.
pub struct Max;

impl Function for Max {
    fn name(&self) -> &str {
        "max"
    }
    fn category(&self) -> Category {
        Category::Number
    }
    fn doc(&self) -> &'static str {
        "The largest of the numbers given as arguments (`max(a, b, c)`) or as the elements of a \
         single array (`max(scores)`). Null values are skipped; with no number left the result \
         is null. Any other value is an error. `max(0, x)` clamps `x` at zero."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![Param::new("values", Type::Any)],
            Type::optional(Type::Number),
        )
        .variadic(Param::new("more", Type::optional(Type::Number)))
        .fallible()
    }
    fn return_type(&self, args: &[Type]) -> Type {
        result_type(args)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "clamp at zero",
                source: "max(0, balance)",
                record: r#"{"balance": -12.5}"#,
                result: "0",
            },
            Example {
                title: "over an array",
                source: "max(scores)",
                record: r#"{"scores": [72, null, 64, 90]}"#,
                result: "90",
            },
            Example {
                title: "a missing field is skipped",
                source: "max(score, 50)",
                record: "{}",
                result: "50",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(pick(numbers("max", args)?, |n, best| n > best))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Max);
    }

    #[test]
    fn values() {
        assert_eq!(call(&Max, vec![json!(3), json!(10), json!(2)]), Ok(json!(10)));
        assert_eq!(call(&Max, vec![json!([])]), Ok(json!(null)));
        assert_eq!(call(&Max, vec![json!([2, 2.0])]), Ok(json!(2)));
        assert_eq!(
            call(&Max, vec![json!(true)]).unwrap_err().0,
            "max() compares numbers, got bool"
        );
    }
}
