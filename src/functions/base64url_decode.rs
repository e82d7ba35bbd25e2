use std::borrow::Cow;

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

use crate::functions::bytes::{self, Form};
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `base64url_decode(s, form?)`: the bytes encoded in URL-safe Base64.
pub struct Base64UrlDecode;

/// The URL-safe alphabet, with or without `=` padding (JWTs leave it out).
const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl Function for Base64UrlDecode {
    fn name(&self) -> &str {
        "base64url_decode"
    }
    fn category(&self) -> Category {
        Category::Encoding
    }
    fn doc(&self) -> &'static str {
        "Decodes URL-safe Base64 (`-` and `_`; `=` padding optional) and returns the bytes as \
         text, or with `form` `\"hex\"` as hex digits (for binary data such as a Fernet key's \
         32 bytes). It is an error when the input is not URL-safe Base64, or the bytes are not \
         UTF-8 text and `form` is not `\"hex\"`."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::opt("form", Type::optional(Type::String)),
            ],
            Type::String,
        )
        .fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "text",
                source: r#"base64url_decode("Pz5-")"#,
                record: "{}",
                result: r#""?>~""#,
            },
            Example {
                title: "a key's bytes, as hex",
                source: r#"base64url_decode("-_8", "hex")"#,
                record: "{}",
                result: r#""fbff""#,
            },
            Example {
                title: "the standard alphabet is not URL-safe",
                source: r#"base64url_decode("+/8=")"#,
                record: "{}",
                result: "error: not valid URL-safe Base64",
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
        let data = ENGINE
            .decode(arg::str(args, 0)?.trim())
            .map_err(|e| FnError(format!("not valid URL-safe Base64: {e}")))?;
        bytes::encode(data, form)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Base64UrlDecode);
    }

    #[test]
    fn round_trip() {
        let key = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
        let hex = call(&Base64UrlDecode, vec![json!(key), json!("hex")]).unwrap();
        assert_eq!(hex.as_str().map(str::len), Some(64));
        let back = call(
            &crate::functions::base64url_encode::Base64UrlEncode,
            vec![hex, json!("hex")],
        );
        assert_eq!(back, Ok(json!(key)));
        assert!(call(&Base64UrlDecode, vec![json!("_w")]).is_err_and(|e| e.0.contains("UTF-8")));
    }
}
