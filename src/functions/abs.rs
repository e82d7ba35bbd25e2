use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg, number};
use crate::types::Type;

/// `abs(n)`: the absolute value.
pub struct Abs;

impl Function for Abs {
    fn name(&self) -> &str {
        "abs"
    }
    fn category(&self) -> Category {
        Category::Number
    }
    fn doc(&self) -> &'static str {
        "The absolute value of a number: its distance from zero."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::Number)], Type::Number)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a refund as a positive amount",
                source: "abs(amount)",
                record: r#"{"amount": -49.9}"#,
                result: "49.9",
            },
            Example {
                title: "a positive number is unchanged",
                source: "abs(3)",
                record: "{}",
                result: "3",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        // Integers stay exact (beyond 2^53 they would lose digits as f64).
        if let Some(Value::Number(n)) = args.first().map(|a| a.as_ref()) {
            if n.is_u64() {
                return Ok(Value::Number(n.clone()));
            }
            if let Some(i) = n.as_i64() {
                return Ok(Value::from(i.unsigned_abs()));
            }
        }
        number(arg::num(args, 0)?.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Abs);
    }

    #[test]
    fn values() {
        assert_eq!(call(&Abs, vec![json!(-0.0)]), Ok(json!(0)));
        assert_eq!(call(&Abs, vec![json!(i64::MIN)]), Ok(json!(9223372036854775808u64)));
        assert_eq!(call(&Abs, vec![json!(-9007199254740993i64)]), Ok(json!(9007199254740993i64)));
        assert_eq!(call(&Abs, vec![json!(u64::MAX)]), Ok(json!(u64::MAX)));
    }
}
