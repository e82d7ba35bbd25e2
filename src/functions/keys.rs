use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `keys(object)`: the keys of an object.
pub struct Keys;

impl Function for Keys {
    fn name(&self) -> &str {
        "keys"
    }
    fn category(&self) -> Category {
        Category::Collection
    }
    fn doc(&self) -> &'static str {
        "The keys of an object, in the order they appear in the record."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![Param::new("value", Type::Object)],
            Type::array(Type::String),
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "custom field names",
                source: "keys(custom_fields)",
                record: r#"{"custom_fields": {"tier": "gold", "region": "EMEA"}}"#,
                result: r#"["tier", "region"]"#,
            },
            Example {
                title: "an empty object",
                source: "keys({})",
                record: "{}",
                result: "[]",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(Value::Array(
            arg::object(args, 0)?
                .keys()
                .map(|k| Value::String(k.clone()))
                .collect(),
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
        crate::functions::testing::run_examples(&Keys);
    }

    #[test]
    fn order_is_kept() {
        assert_eq!(
            call(&Keys, vec![json!({"z": 1, "a": 2, "m": 3})]),
            Ok(json!(["z", "a", "m"]))
        );
        assert!(call(&Keys, vec![json!([1])]).is_err());
    }
}
