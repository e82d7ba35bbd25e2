use std::borrow::Cow;

use serde_json::Value;

use crate::functions::dates::quote;
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `normalize_email(s)`: an e-mail address trimmed, lower-cased and checked.
pub struct NormalizeEmail;

/// Characters that cannot appear unquoted in an address (quoted local parts are not accepted).
fn forbidden(c: char) -> bool {
    if c.is_ascii() {
        // The same test for ASCII (its white space and controls are all at or below the
        // space, or DEL), without a search of the list per character.
        return matches!(
            c as u8,
            0..=b' ' | 0x7f | b'<' | b'>' | b'(' | b')' | b'[' | b']' | b'\\' | b',' | b';' | b':' | b'"'
        );
    }
    c.is_whitespace() || c.is_control()
}

/// Whether `s` (already trimmed and lower-cased) has the shape `local@domain.tld`.
fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && !(if s.is_ascii() {
            s.bytes().any(|b| forbidden(char::from(b)))
        } else {
            s.contains(forbidden)
        })
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty() && !label.starts_with('-') && !label.ends_with('-')
        })
}

impl Function for NormalizeEmail {
    fn name(&self) -> &str {
        "normalize_email"
    }
    fn category(&self) -> Category {
        Category::Identity
    }
    fn doc(&self) -> &'static str {
        "Trims and lower-cases an e-mail address so that it can be used as an identity key \
         (`match: [email]`), and checks its shape: one `@`, a non-empty local part of at most \
         64 characters, a domain of dot-separated labels with at least one dot, and no spaces, \
         quotes, brackets or commas. Anything else is an error, \"not an email address\". \
         Nothing else is rewritten: Gmail dots and `+tags` are kept, as they may matter to \
         other providers."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::String)], Type::String).fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a typed address",
                source: "normalize_email(email)",
                record: r#"{"email": "  Ada.Lovelace+CRM@Example.COM "}"#,
                result: r#""ada.lovelace+crm@example.com""#,
            },
            Example {
                title: "a display name is not an address",
                source: "normalize_email(email)",
                record: r#"{"email": "Ada <ada@example.com>"}"#,
                result: "error: not an email address",
            },
            Example {
                title: "a missing domain",
                source: r#"normalize_email("ada@localhost")"#,
                record: "{}",
                result: "error: not an email address",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let raw = arg::str(args, 0)?;
        let email = crate::functions::lower(raw.trim());
        if looks_like_email(&email) {
            Ok(Value::String(email))
        } else {
            Err(FnError(format!("not an email address: {}", quote(raw))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&NormalizeEmail);
    }

    #[test]
    fn forbidden_is_the_unicode_test() {
        let slow = |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"".contains(c);
        for c in (0..0x3100).filter_map(char::from_u32) {
            assert_eq!(forbidden(c), slow(c), "{c:?}");
        }
    }

    #[test]
    fn shapes() {
        for ok in ["a@b.co", "first.last@sub.example.org", "x_y-z@ex-ample.com", "ü@exämple.de"] {
            assert_eq!(call(&NormalizeEmail, vec![json!(ok)]), Ok(json!(ok)), "{ok}");
        }
        for bad in [
            "", "@example.com", "ada@", "ada", "ada@@example.com", "a@b@example.com",
            "ada @example.com", "ada@example..com", "ada@.example.com", "ada@example.com.",
            "ada@-example.com", "\"ada\"@example.com", "ada,bob@example.com",
        ] {
            let e = call(&NormalizeEmail, vec![json!(bad)]).unwrap_err();
            assert!(e.0.starts_with("not an email address"), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(call(&NormalizeEmail, vec![json!(long)]).is_err());
    }
}
