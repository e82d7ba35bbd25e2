use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `parse_json(s)`: the value a JSON text describes.
pub struct ParseJson;

impl Function for ParseJson {
    fn name(&self) -> &str {
        "parse_json"
    }
    fn category(&self) -> Category {
        Category::Json
    }
    fn doc(&self) -> &'static str {
        "Reads JSON text (a string field holding an encoded object, say) into a value; object \
         keys keep their order. Text that is not exactly one JSON value (surrounding whitespace \
         aside) is an error naming the line and column. The result type is `any`."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::String)], Type::Any).fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "an encoded object",
                source: "parse_json(metadata)",
                record: r#"{"metadata": "{\"tier\": \"gold\", \"seats\": 25}"}"#,
                result: r#"{"tier": "gold", "seats": 25}"#,
            },
            Example {
                title: "a field of it",
                source: "parse_json(metadata).seats",
                record: r#"{"metadata": "{\"tier\": \"gold\", \"seats\": 25}"}"#,
                result: "25",
            },
            Example {
                title: "not JSON",
                source: r#"parse_json("{tier: gold}")"#,
                record: "{}",
                result: "error: not valid JSON",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        serde_json::from_str(arg::str(args, 0)?)
            .map_err(|e| FnError(format!("not valid JSON: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&ParseJson);
    }

    #[test]
    fn values() {
        assert_eq!(call(&ParseJson, vec![json!(" null ")]), Ok(json!(null)));
        assert_eq!(call(&ParseJson, vec![json!("[1, 2.5]")]), Ok(json!([1, 2.5])));
        let e = call(&ParseJson, vec![json!("{} {}")]).unwrap_err();
        assert!(e.0.starts_with("not valid JSON: trailing characters at line 1 column 4"), "{e}");
        let deep = "[".repeat(1000);
        assert!(call(&ParseJson, vec![json!(deep)]).is_err());
    }
}
