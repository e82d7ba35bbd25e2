use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Signature};
use crate::types::Type;

/// `uuid_v4()`: a random UUID.
pub struct UuidV4;

impl Function for UuidV4 {
    fn name(&self) -> &str {
        "uuid_v4"
    }
    fn category(&self) -> Category {
        Category::Identity
    }
    fn doc(&self) -> &'static str {
        "A random (version 4) UUID in lower-case hyphenated form, as Python's \
         `str(uuid.uuid4())`: a new one on every call, so it identifies one request, not one \
         record (a retry of the record gets another). For a key that stays the same for the \
         same record, use `uuid_v5`."
    }
    fn signature(&self) -> Signature {
        Signature::new(Vec::new(), Type::String)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "the version digit is 4",
                source: "uuid_v4()[14:15]",
                record: "{}",
                result: r#""4""#,
            },
            Example {
                title: "hyphenated, 36 characters",
                source: r#"regex_match(uuid_v4(), "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")"#,
                record: "{}",
                result: "true",
            },
        ]
    }
    fn call(&self, _args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let bytes: [u8; 16] = rand::random();
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        Ok(Value::String(id.hyphenated().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&UuidV4);
    }

    #[test]
    fn each_call_is_new() {
        let a = call(&UuidV4, vec![]);
        let b = call(&UuidV4, vec![]);
        assert!(a.is_ok());
        assert_ne!(a, b);
    }
}
