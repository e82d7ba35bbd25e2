use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `base64_encode(s)`: standard Base64 of a string's UTF-8 bytes.
pub struct Base64Encode;

impl Function for Base64Encode {
    fn name(&self) -> &str {
        "base64_encode"
    }
    fn category(&self) -> Category {
        Category::Encoding
    }
    fn doc(&self) -> &'static str {
        "Encodes the string's UTF-8 bytes in standard Base64 (RFC 4648 alphabet with `+` and \
         `/`, padded with `=`), e.g. for HTTP Basic credentials or APIs that take encoded \
         payloads."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::String)], Type::String)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "Basic credentials",
                source: r#"base64_encode("api:s3cret")"#,
                record: "{}",
                result: r#""YXBpOnMzY3JldA==""#,
            },
            Example {
                title: "non-ASCII text",
                source: "base64_encode(city)",
                record: r#"{"city": "Zürich"}"#,
                result: r#""WsO8cmljaA==""#,
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(Value::String(STANDARD.encode(arg::str(args, 0)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Base64Encode);
    }

    #[test]
    fn empty() {
        assert_eq!(call(&Base64Encode, vec![json!("")]), Ok(json!("")));
        assert_eq!(call(&Base64Encode, vec![json!("?>")]), Ok(json!("Pz4=")));
    }
}
