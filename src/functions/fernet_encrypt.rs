use std::borrow::Cow;
use std::sync::Arc;

use fernet::Fernet;
use serde_json::Value;

use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Prepared, Signature, arg,
};
use crate::types::Type;

/// `fernet_encrypt(plaintext, key)`: a Fernet token.
pub struct FernetEncrypt;

/// The message for a bad key; it never includes the key itself.
const BAD_KEY: &str = "invalid Fernet key: expected 32 bytes in URL-safe Base64";

/// The prepared state for a literal key argument.
pub(super) fn prepare_key(key: Option<&Value>) -> Result<Option<Prepared>, String> {
    match key {
        Some(Value::String(k)) => Fernet::new(k)
            .map(|f| Some(Arc::new(f) as Prepared))
            .ok_or_else(|| BAD_KEY.to_string()),
        _ => Ok(None),
    }
}

/// The key prepared from a literal, or `key` read now.
pub(super) fn key_for_call<'a>(cx: &'a CallContext<'_>, key: &str) -> Result<Cow<'a, Fernet>, FnError> {
    match cx.prepared::<Fernet>() {
        Some(f) => Ok(Cow::Borrowed(f)),
        None => Fernet::new(key)
            .map(Cow::Owned)
            .ok_or_else(|| FnError(BAD_KEY.into())),
    }
}

impl Function for FernetEncrypt {
    fn name(&self) -> &str {
        "fernet_encrypt"
    }
    fn category(&self) -> Category {
        Category::Encoding
    }
    fn doc(&self) -> &'static str {
        "Encrypts the string with a Fernet key (AES-128-CBC with an HMAC-SHA256, the format of \
         Python's `cryptography.fernet`) and returns the URL-safe Base64 token. The key is 32 \
         bytes in URL-safe Base64, as `Fernet.generate_key()` makes; take it from a secret. A \
         bad literal key is a lint error. Tokens embed the encryption time and a random IV, so \
         the result differs on every call: it is the only non-deterministic function, and \
         examples check it by decrypting it again. The state store's change detection \
         therefore compares a payload field made with it by the input record (and the rule \
         set) it came from, not by its value."
    }
    fn randomized(&self) -> bool {
        true
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("plaintext", Type::String),
                Param::new("key", Type::String),
            ],
            Type::String,
        )
        .fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a round trip",
                source: "fernet_decrypt(fernet_encrypt(ssn, key), key)",
                record: r#"{"ssn": "078-05-1120", "key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}"#,
                result: r#""078-05-1120""#,
            },
            Example {
                title: "tokens start with the version byte",
                source: r#"starts_with(fernet_encrypt("x", key), "gAAAAA")"#,
                record: r#"{"key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}"#,
                result: "true",
            },
            Example {
                title: "a key of the wrong size",
                source: r#"fernet_encrypt("x", key)"#,
                record: r#"{"key": "c2hvcnQ="}"#,
                result: "error: invalid Fernet key",
            },
        ]
    }
    fn prepare(&self, consts: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        prepare_key(consts.get(1).copied().flatten())
    }
    fn call(&self, args: &[Cow<'_, Value>], cx: &CallContext<'_>) -> Result<Value, FnError> {
        let plaintext = arg::str(args, 0)?;
        let fernet = key_for_call(cx, arg::str(args, 1)?)?;
        Ok(Value::String(fernet.encrypt(plaintext.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::fernet_decrypt::FernetDecrypt;
    use crate::functions::testing::{call, call_dynamic};
    use serde_json::json;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&FernetEncrypt);
    }

    #[test]
    fn round_trip_with_literal_and_computed_keys() {
        for text in ["", "Zürich", "x".repeat(1000).as_str()] {
            let token = call(&FernetEncrypt, vec![json!(text), json!(KEY)]).unwrap();
            assert!(token.as_str().unwrap().starts_with("gAAAAA"));
            let back = call_dynamic(&FernetDecrypt, vec![token, json!(KEY)]);
            assert_eq!(back, Ok(json!(text)));
        }
        let a = call_dynamic(&FernetEncrypt, vec![json!("x"), json!(KEY)]).unwrap();
        let b = call_dynamic(&FernetEncrypt, vec![json!("x"), json!(KEY)]).unwrap();
        assert_ne!(a, b, "a random IV per token");
    }

    #[test]
    fn bad_keys_are_reported_without_the_key() {
        let e = call(&FernetEncrypt, vec![json!("x"), json!("hunter2")]).unwrap_err();
        assert_eq!(e.0, format!("prepare: {BAD_KEY}"));
        let e = call_dynamic(&FernetEncrypt, vec![json!("x"), json!("hunter2")]).unwrap_err();
        assert!(!e.0.contains("hunter2"));
    }
}
