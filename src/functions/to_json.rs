use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `to_json(v)`: compact JSON text of any value.
pub struct ToJson;

impl Function for ToJson {
    fn name(&self) -> &str {
        "to_json"
    }
    fn category(&self) -> Category {
        Category::Json
    }
    fn doc(&self) -> &'static str {
        "Writes any value as compact JSON text (no spaces), object keys in the order they have \
         in the record, so the same record always gives the same text: suitable for checksums \
         and for providers that take a JSON string field. Null gives `\"null\"`."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::Any)], Type::String)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "an object",
                source: "to_json(address)",
                record: r#"{"address": {"street": "12 Main St", "zip": "94103"}}"#,
                result: r#""{\"street\":\"12 Main St\",\"zip\":\"94103\"}""#,
            },
            Example {
                title: "an array literal",
                source: r#"to_json([1, "two", null])"#,
                record: "{}",
                result: r#""[1,\"two\",null]""#,
            },
            Example {
                title: "null",
                source: "to_json(missing)",
                record: "{}",
                result: r#""null""#,
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(Value::String(arg::any(args, 0).to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&ToJson);
    }

    #[test]
    fn values() {
        assert_eq!(call(&ToJson, vec![json!("a\"b")]), Ok(json!(r#""a\"b""#)));
        assert_eq!(call(&ToJson, vec![json!(1.5)]), Ok(json!("1.5")));
        assert_eq!(
            call(&ToJson, vec![json!({"z": 1, "a": {"y": [], "b": {}}})]),
            Ok(json!(r#"{"z":1,"a":{"y":[],"b":{}}}"#))
        );
    }
}
