//! Byte strings in a language of JSON values: text is its UTF-8 bytes, and binary data
//! (digests, derived keys) travels as lower-case hex, the form `sha256`, `hmac_sha256` and
//! `pbkdf2_sha256` return. The Base64 functions take a `"text"`/`"hex"` argument to say which.

use std::borrow::Cow;

use serde_json::Value;

use super::FnError;

/// How a string argument or result holds bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// The string's UTF-8 bytes.
    Text,
    /// Two hex digits per byte.
    Hex,
}

impl Form {
    /// `"text"` or `"hex"`; a missing or null argument is text.
    pub fn parse(v: Option<&Value>) -> Result<Form, String> {
        match v {
            None | Some(Value::Null) => Ok(Form::Text),
            Some(Value::String(s)) if s == "text" => Ok(Form::Text),
            Some(Value::String(s)) if s == "hex" => Ok(Form::Hex),
            Some(other) => Err(format!(
                "the byte form must be \"text\" or \"hex\", got {other}"
            )),
        }
    }

    /// Validates a literal form argument at compile time (`None` when not a literal).
    pub fn check_literal(v: Option<&Value>) -> Result<(), String> {
        match v {
            Some(v) if !v.is_null() => Form::parse(Some(v)).map(|_| ()),
            _ => Ok(()),
        }
    }
}

/// The bytes `value` holds in form `form`.
pub fn decode(value: &str, form: Form) -> Result<Cow<'_, [u8]>, FnError> {
    match form {
        Form::Text => Ok(Cow::Borrowed(value.as_bytes())),
        Form::Hex => hex::decode(value.trim())
            .map(Cow::Owned)
            .map_err(|e| FnError(format!("not hex-encoded bytes: {e}"))),
    }
}

/// `bytes` as a string in form `form`; text must be UTF-8.
pub fn encode(bytes: Vec<u8>, form: Form) -> Result<Value, FnError> {
    match form {
        Form::Hex => Ok(Value::String(hex::encode(bytes))),
        Form::Text => String::from_utf8(bytes).map(Value::String).map_err(|_| {
            FnError("the decoded bytes are not UTF-8 text; decode them as \"hex\"".into())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn forms() {
        assert_eq!(Form::parse(None), Ok(Form::Text));
        assert_eq!(Form::parse(Some(&json!("hex"))), Ok(Form::Hex));
        assert!(Form::parse(Some(&json!("base64"))).is_err());
        assert_eq!(
            decode("00ff", Form::Hex).map(|b| b.to_vec()),
            Ok(vec![0, 255])
        );
        assert!(decode("0g", Form::Hex).is_err());
        assert_eq!(encode(vec![0xc3, 0xbc], Form::Text), Ok(json!("ü")));
        assert!(encode(vec![0xff], Form::Text).is_err());
    }
}
