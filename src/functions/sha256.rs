use std::borrow::Cow;

use serde_json::Value;
use sha2::{Digest, Sha256 as Hasher};

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `sha256(s)`: the SHA-256 digest of a string, in hex.
pub struct Sha256;

impl Function for Sha256 {
    fn name(&self) -> &str {
        "sha256"
    }
    fn category(&self) -> Category {
        Category::Encoding
    }
    fn doc(&self) -> &'static str {
        "The SHA-256 digest of the string's UTF-8 bytes, as 64 lower-case hex digits: a checksum \
         for a payload, or a stable key derived from identifying fields. To hash a whole \
         object, hash its JSON: `sha256(to_json(payload))` (keys stay in record order)."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::String)], Type::String)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a known digest",
                source: r#"sha256("abc")"#,
                record: "{}",
                result: r#""ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad""#,
            },
            Example {
                title: "a payload checksum",
                source: "sha256(to_json(payload))",
                record: r#"{"payload": {"id": 1}}"#,
                result: r#""037c9214eef74cc3887f3a4f085b4e17d76280dafd273b0ee160c09c4ba1cfd4""#,
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let digest = Hasher::digest(arg::str(args, 0)?.as_bytes());
        Ok(Value::String(hex::encode(digest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Sha256);
    }

    #[test]
    fn digests() {
        assert_eq!(
            call(&Sha256, vec![json!("")]),
            Ok(json!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
        );
        assert_eq!(
            call(&Sha256, vec![json!(r#"{"id":1}"#)]),
            Ok(json!("037c9214eef74cc3887f3a4f085b4e17d76280dafd273b0ee160c09c4ba1cfd4"))
        );
    }
}
