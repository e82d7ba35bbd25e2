use std::borrow::Cow;

use serde_json::Value;

use crate::functions::fernet_encrypt::{key_for_call, prepare_key};
use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Prepared, Signature, arg,
};
use crate::types::Type;

/// `fernet_decrypt(token, key)`: the text inside a Fernet token.
pub struct FernetDecrypt;

impl Function for FernetDecrypt {
    fn name(&self) -> &str {
        "fernet_decrypt"
    }
    fn category(&self) -> Category {
        Category::Encoding
    }
    fn doc(&self) -> &'static str {
        "Decrypts a Fernet token made with the same key (by `fernet_encrypt` or Python's \
         `cryptography.fernet`) and returns the text. Tokens do not expire, but one dated more \
         than 60 seconds in the future is refused. A wrong key, a damaged token, or content \
         that is not UTF-8 text is an error; the message never includes the key or the token."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("token", Type::String),
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
                source: r#"fernet_decrypt(fernet_encrypt("4111 1111", key), key)"#,
                record: r#"{"key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}"#,
                result: r#""4111 1111""#,
            },
            Example {
                title: "a token from another key",
                source: r#"fernet_decrypt(fernet_encrypt("x", other_key), key)"#,
                record: r#"{"key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "other_key": "HwABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4="}"#,
                result: "error: cannot decrypt",
            },
            Example {
                title: "not a token",
                source: "fernet_decrypt(token, key)",
                record: r#"{"token": "hello", "key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}"#,
                result: "error: cannot decrypt",
            },
        ]
    }
    fn prepare(&self, consts: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        prepare_key(consts.get(1).copied().flatten())
    }
    fn call(&self, args: &[Cow<'_, Value>], cx: &CallContext<'_>) -> Result<Value, FnError> {
        let token = arg::str(args, 0)?;
        let fernet = key_for_call(cx, arg::str(args, 1)?)?;
        let bytes = fernet.decrypt(token.trim()).map_err(|_| {
            FnError("cannot decrypt: wrong key, or a damaged or future-dated token".into())
        })?;
        String::from_utf8(bytes)
            .map(Value::String)
            .map_err(|_| FnError("the decrypted content is not UTF-8 text".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&FernetDecrypt);
    }

    #[test]
    fn python_token() {
        // Made with Python's cryptography: Fernet(KEY)._encrypt_from_parts(b"hello", 0, bytes(16)).
        let token = "gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAGWd0uwn1ncxmt8qIH-KbuAc31AS6lXBa_NixDxpaBZ-fXQKD7Soxkut9pdoCrV6cw==";
        assert_eq!(call(&FernetDecrypt, vec![json!(token), json!(KEY)]), Ok(json!("hello")));
    }

    #[test]
    fn tampered_token() {
        let token = crate::functions::testing::call(
            &crate::functions::fernet_encrypt::FernetEncrypt,
            vec![json!("x"), json!(KEY)],
        )
        .unwrap();
        let mut t = token.as_str().unwrap().to_string();
        let last = if t.ends_with("A=") { "B=" } else { "A=" };
        t.replace_range(t.len() - 2.., last);
        let e = call(&FernetDecrypt, vec![json!(t), json!(KEY)]).unwrap_err();
        assert!(e.0.starts_with("cannot decrypt"));
        assert!(!e.0.contains(KEY));
    }
}
