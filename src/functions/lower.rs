use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{arg, CallContext, Category, Example, FnError, Function, Param, Signature};
use crate::types::Type;

/// `lower(s)`: lower-cases a string.
pub struct Lower;

impl Function for Lower {
    fn name(&self) -> &str {
        "lower"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Returns the string with every character lower-cased (Unicode-aware)."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::String)], Type::String)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "an e-mail address",
                source: r#"lower("Ada@Example.COM")"#,
                record: "{}",
                result: r#""ada@example.com""#,
            },
            Example {
                title: "a field, null propagates",
                source: "lower(missing)",
                record: "{}",
                result: "null",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(Value::String(crate::functions::lower(arg::str(args, 0)?)))
    }
}
