use std::borrow::Cow;
// The struct below shadows the prelude's `ToString` trait, whose method is still needed.
use std::string::ToString as _;

use serde_json::Value;

use crate::functions::common::{may_be_null, scalar_text};
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `to_string(v)`: the text of a value.
pub struct ToString;

impl Function for ToString {
    fn name(&self) -> &str {
        "to_string"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Converts a value to text: strings unchanged, numbers in plain decimal without a \
         trailing `.0` (`3.0` → `\"3\"`), booleans as `\"true\"`/`\"false\"`, arrays and objects \
         as compact JSON. Null stays null (use `to_json` to get `\"null\"`)."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![Param::new("value", Type::Any)],
            Type::optional(Type::String),
        )
    }
    fn return_type(&self, args: &[Type]) -> Type {
        match args.first() {
            Some(t) if !may_be_null(t) => Type::String,
            _ => Type::optional(Type::String),
        }
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a numeric id for a text field",
                source: "to_string(id)",
                record: r#"{"id": 1042}"#,
                result: r#""1042""#,
            },
            Example {
                title: "a boolean",
                source: "to_string(active)",
                record: r#"{"active": true}"#,
                result: r#""true""#,
            },
            Example {
                title: "null stays null",
                source: "to_string(missing)",
                record: "{}",
                result: "null",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let v = arg::any(args, 0);
        Ok(match v {
            Value::Null => Value::Null,
            Value::Array(_) | Value::Object(_) => Value::String(v.to_string()),
            _ => scalar_text(v).map_or(Value::Null, Value::String),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, return_type};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&ToString);
    }

    #[test]
    fn values() {
        assert_eq!(call(&ToString, vec![json!(2.50)]), Ok(json!("2.5")));
        assert_eq!(call(&ToString, vec![json!(-0.0)]), Ok(json!("0")));
        assert_eq!(call(&ToString, vec![json!("x")]), Ok(json!("x")));
        assert_eq!(
            call(&ToString, vec![json!({"b": 1, "a": [true]})]),
            Ok(json!(r#"{"b":1,"a":[true]}"#))
        );
    }

    #[test]
    fn types() {
        assert_eq!(return_type(&ToString, &[Type::Number]), "string");
        assert_eq!(return_type(&ToString, &[Type::Any]), "string?");
        assert_eq!(
            return_type(&ToString, &[Type::optional(Type::Number)]),
            "string?"
        );
    }
}
