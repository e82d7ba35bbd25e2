use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg, number};
use crate::types::Type;

/// `ceil(n)`: rounds up.
pub struct Ceil;

impl Function for Ceil {
    fn name(&self) -> &str {
        "ceil"
    }
    fn category(&self) -> Category {
        Category::Number
    }
    fn doc(&self) -> &'static str {
        "The smallest whole number not less than the value (rounds toward positive infinity: \
         `ceil(-1.5)` is -1)."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::Number)], Type::Number)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "licences needed for a head count",
                source: "ceil(employees / 25)",
                record: r#"{"employees": 51}"#,
                result: "3",
            },
            Example {
                title: "negative numbers go up",
                source: "ceil(-1.5)",
                record: "{}",
                result: "-1",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        if let Some(Value::Number(n)) = args.first().map(|a| a.as_ref())
            && !n.is_f64()
        {
            return Ok(Value::Number(n.clone()));
        }
        number(arg::num(args, 0)?.ceil())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Ceil);
    }

    #[test]
    fn values() {
        assert_eq!(call(&Ceil, vec![json!(2.1)]), Ok(json!(3)));
        assert_eq!(call(&Ceil, vec![json!(-0.5)]), Ok(json!(0)));
        assert_eq!(call(&Ceil, vec![json!(7)]), Ok(json!(7)));
    }
}
