use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg, number};
use crate::types::Type;

/// `floor(n)`: rounds down.
pub struct Floor;

impl Function for Floor {
    fn name(&self) -> &str {
        "floor"
    }
    fn category(&self) -> Category {
        Category::Number
    }
    fn doc(&self) -> &'static str {
        "The largest whole number not greater than the value (rounds toward negative infinity: \
         `floor(-1.5)` is -2)."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::Number)], Type::Number)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "whole years",
                source: "floor(tenure_years)",
                record: r#"{"tenure_years": 4.9}"#,
                result: "4",
            },
            Example {
                title: "negative numbers go down",
                source: "floor(-1.5)",
                record: "{}",
                result: "-2",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        if let Some(Value::Number(n)) = args.first().map(|a| a.as_ref())
            && !n.is_f64()
        {
            return Ok(Value::Number(n.clone()));
        }
        number(arg::num(args, 0)?.floor())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Floor);
    }

    #[test]
    fn values() {
        assert_eq!(call(&Floor, vec![json!(2.0)]), Ok(json!(2)));
        assert_eq!(call(&Floor, vec![json!(u64::MAX)]), Ok(json!(u64::MAX)));
        assert_eq!(call(&Floor, vec![json!(-0.5)]), Ok(json!(-1)));
    }
}
