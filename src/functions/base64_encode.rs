use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::functions::bytes::{self, Form};
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `base64_encode(s, form?)`: standard Base64 of a string's bytes.
pub struct Base64Encode;

impl Function for Base64Encode {
    fn name(&self) -> &str {
        "base64_encode"
    }
    fn category(&self) -> Category {
        Category::Encoding
    }
    fn doc(&self) -> &'static str {
        "Encodes bytes in standard Base64 (RFC 4648 alphabet with `+` and `/`, padded with \
         `=`), e.g. for HTTP Basic credentials or APIs that take encoded payloads. The bytes \
         are the string's UTF-8 bytes, or with `form` `\"hex\"` the bytes the hex digits \
         stand for (the output of `sha256`, `hmac_sha256`, `pbkdf2_sha256`). Python's \
         `base64.b64encode(x).decode()`. See `base64url_encode` for the URL-safe alphabet."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::opt("form", Type::optional(Type::String)),
            ],
            Type::String,
        )
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
            Example {
                title: "a digest's bytes",
                source: r#"base64_encode(sha256("abc"), "hex")"#,
                record: "{}",
                result: r#""ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=""#,
            },
        ]
    }
    fn prepare(
        &self,
        consts: &[Option<&Value>],
    ) -> Result<Option<crate::functions::Prepared>, String> {
        Form::check_literal(consts.get(1).copied().flatten())?;
        Ok(None)
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let form = Form::parse(arg::opt(args, 1)).map_err(FnError)?;
        let data = bytes::decode(arg::str(args, 0)?, form)?;
        Ok(Value::String(STANDARD.encode(data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, call_dynamic};
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

    #[test]
    fn forms() {
        assert_eq!(
            call(&Base64Encode, vec![json!("fbff"), json!("hex")]),
            Ok(json!("+/8="))
        );
        assert!(call(&Base64Encode, vec![json!("x"), json!("bytes")]).is_err());
        assert!(call_dynamic(&Base64Encode, vec![json!("xyz"), json!("hex")]).is_err());
    }
}
