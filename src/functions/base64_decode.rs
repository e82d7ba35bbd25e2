use std::borrow::Cow;

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

use crate::functions::bytes::{self, Form};
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `base64_decode(s)`: the text encoded in standard Base64.
pub struct Base64Decode;

/// The standard alphabet, with or without `=` padding.
const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl Function for Base64Decode {
    fn name(&self) -> &str {
        "base64_decode"
    }
    fn category(&self) -> Category {
        Category::Encoding
    }
    fn doc(&self) -> &'static str {
        "Decodes standard Base64 (alphabet with `+` and `/`; `=` padding optional; whitespace \
         such as MIME line breaks ignored) and returns the bytes as text, or with `form` \
         `\"hex\"` as hex digits (binary data cannot be a string). It is an error when the \
         input is not Base64, or the bytes are not UTF-8 text and `form` is not `\"hex\"`."
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
                title: "an encoded field",
                source: "base64_decode(note)",
                record: r#"{"note": "WsO8cmljaA=="}"#,
                result: r#""Zürich""#,
            },
            Example {
                title: "padding may be left out",
                source: r#"base64_decode("QWRh")"#,
                record: "{}",
                result: r#""Ada""#,
            },
            Example {
                title: "not Base64",
                source: r#"base64_decode("not base64!")"#,
                record: "{}",
                result: "error: not valid Base64",
            },
            Example {
                title: "binary content",
                source: r#"base64_decode("bm90IHV0Zjgg/w==")"#,
                record: "{}",
                result: "error: not UTF-8 text",
            },
            Example {
                title: "binary content as hex",
                source: r#"base64_decode("bm90IHV0Zjgg/w==", "hex")"#,
                record: "{}",
                result: r#""6e6f74207574663820ff""#,
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let text = arg::str(args, 0)?;
        let compact: String;
        let input = if text.contains(|c: char| c.is_ascii_whitespace()) {
            compact = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            compact.as_str()
        } else {
            text
        };
        let form = Form::parse(arg::opt(args, 1)).map_err(FnError)?;
        let data = ENGINE
            .decode(input)
            .map_err(|e| FnError(format!("not valid Base64: {e}")))?;
        bytes::encode(data, form)
    }
    fn prepare(
        &self,
        consts: &[Option<&Value>],
    ) -> Result<Option<crate::functions::Prepared>, String> {
        Form::check_literal(consts.get(1).copied().flatten())?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Base64Decode);
    }

    #[test]
    fn lenient_input() {
        let d = |s: &str| call(&Base64Decode, vec![json!(s)]);
        assert_eq!(d("WsO8\ncmlj\r\naA=="), Ok(json!("Zürich")));
        assert_eq!(d(""), Ok(json!("")));
        assert_eq!(d("Pz4"), Ok(json!("?>")));
        // The URL-safe alphabet is not accepted.
        assert!(d("Pz4-").is_err());
        assert!(d("QWRh=").is_err());
    }
}
