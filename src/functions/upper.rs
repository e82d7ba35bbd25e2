use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `upper(s)`: upper-cases a string.
pub struct Upper;

impl Function for Upper {
    fn name(&self) -> &str {
        "upper"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Returns the string with every character upper-cased (Unicode-aware: `ß` becomes `SS`)."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::String)], Type::String)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a country code",
                source: r#"upper("de")"#,
                record: "{}",
                result: r#""DE""#,
            },
            Example {
                title: "a field",
                source: "upper(state)",
                record: r#"{"state": "ca"}"#,
                result: r#""CA""#,
            },
            Example {
                title: "null propagates",
                source: "upper(missing)",
                record: "{}",
                result: "null",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let s = arg::str(args, 0)?;
        // ASCII text has the same upper case without the per-character Unicode path.
        Ok(Value::String(if s.is_ascii() {
            s.to_ascii_uppercase()
        } else {
            s.to_uppercase()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Upper);
    }

    #[test]
    fn unicode() {
        assert_eq!(call(&Upper, vec![json!("straße")]), Ok(json!("STRASSE")));
        assert_eq!(call(&Upper, vec![json!(null)]), Ok(json!(null)));
    }
}
