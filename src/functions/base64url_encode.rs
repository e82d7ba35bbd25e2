use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use serde_json::Value;

use crate::functions::bytes::{self, Form};
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `base64url_encode(s, form?)`: URL-safe Base64 of a string's bytes.
pub struct Base64UrlEncode;

impl Function for Base64UrlEncode {
    fn name(&self) -> &str {
        "base64url_encode"
    }
    fn category(&self) -> Category {
        Category::Encoding
    }
    fn doc(&self) -> &'static str {
        "Encodes bytes in URL-safe Base64 (RFC 4648 §5: `-` and `_` instead of `+` and `/`, \
         padded with `=`), as Python's `base64.urlsafe_b64encode` does; Fernet keys are written \
         this way. The bytes are the string's UTF-8 bytes, or with `form` `\"hex\"` the bytes \
         the hex digits stand for (the output of `sha256`, `hmac_sha256`, `pbkdf2_sha256`)."
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
                title: "text with URL-unsafe Base64",
                source: r#"base64url_encode("?>~")"#,
                record: "{}",
                result: r#""Pz5-""#,
            },
            Example {
                title: "a Fernet key from 32 derived bytes",
                source: r#"base64url_encode(pbkdf2_sha256("secret", "salt", 1000, 32), "hex")"#,
                record: "{}",
                result: r#""qN-JnzxPIE2WfgrWPAkph8EAVeuwF7PZ0ordIY1Peq0=""#,
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
        Ok(Value::String(URL_SAFE.encode(data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Base64UrlEncode);
    }

    #[test]
    fn alphabet_and_padding() {
        assert_eq!(
            call(&Base64UrlEncode, vec![json!("fbff"), json!("hex")]),
            Ok(json!("-_8="))
        );
        assert_eq!(call(&Base64UrlEncode, vec![json!("")]), Ok(json!("")));
    }
}
