use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `trim(s)`: removes leading and trailing whitespace.
pub struct Trim;

impl Function for Trim {
    fn name(&self) -> &str {
        "trim"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Removes whitespace (spaces, tabs, line breaks, and other Unicode white space such as \
         no-break spaces) from both ends of the string. Inner whitespace is kept."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::String)], Type::String)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a padded form field",
                source: "trim(name)",
                record: r#"{"name": "  Ada Lovelace \n"}"#,
                result: r#""Ada Lovelace""#,
            },
            Example {
                title: "nested in another call",
                source: "lower(trim(email))",
                record: r#"{"email": " Ada@Example.com "}"#,
                result: r#""ada@example.com""#,
            },
            Example {
                title: "null propagates",
                source: "trim(missing)",
                record: "{}",
                result: "null",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(Value::String(arg::str(args, 0)?.trim().to_string()))
    }
    fn call_cow<'a>(
        &self,
        args: &[Cow<'a, Value>],
        cx: &CallContext<'_>,
    ) -> Result<Cow<'a, Value>, FnError> {
        if let Some(Cow::Borrowed(v @ Value::String(s))) = args.first()
            && s.trim().len() == s.len()
        {
            return Ok(Cow::Borrowed(*v));
        }
        self.call(args, cx).map(Cow::Owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Trim);
    }

    #[test]
    fn trims_unicode_whitespace() {
        assert_eq!(call(&Trim, vec![json!("\u{a0}x y\t")]), Ok(json!("x y")));
        assert_eq!(call(&Trim, vec![json!("   ")]), Ok(json!("")));
    }
}
