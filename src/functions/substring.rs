use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `substring(s, start, end?)`: a slice of a string by character positions.
pub struct Substring;

/// A position counted from the end when negative, clamped to `0..=len`; a fraction is cut off.
fn position(n: f64, len: usize) -> usize {
    let n = n.trunc();
    if n < 0.0 {
        len.saturating_sub((-n).min(len as f64) as usize)
    } else {
        n.min(len as f64) as usize
    }
}

impl Function for Substring {
    fn name(&self) -> &str {
        "substring"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Returns the characters from position `start` (inclusive, from 0) to `end` (exclusive; \
         default: the end of the string). Positions count Unicode characters, not bytes; a \
         negative position counts from the end. Positions past either end are clamped and a \
         `start` at or after `end` gives `\"\"`, so the call never fails."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::new("start", Type::Number),
                Param::opt("end", Type::Number),
            ],
            Type::String,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "the first three characters",
                source: r#"substring("Zürich", 0, 3)"#,
                record: "{}",
                result: r#""Zür""#,
            },
            Example {
                title: "the last four digits",
                source: "substring(card, -4)",
                record: r#"{"card": "4111111111111111"}"#,
                result: r#""1111""#,
            },
            Example {
                title: "out of range is clamped",
                source: r#"substring("abc", 1, 99)"#,
                record: "{}",
                result: r#""bc""#,
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let s = arg::str(args, 0)?;
        let len = s.chars().count();
        let start = position(arg::num(args, 1)?, len);
        let end = match arg::opt(args, 2) {
            Some(_) => position(arg::num(args, 2)?, len),
            None => len,
        };
        if start >= end {
            return Ok(Value::String(String::new()));
        }
        Ok(Value::String(s.chars().skip(start).take(end - start).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Substring);
    }

    fn sub(start: Value, end: Option<Value>) -> Value {
        let mut args = vec![json!("héllo"), start];
        args.extend(end);
        call(&Substring, args).unwrap()
    }

    #[test]
    fn positions() {
        assert_eq!(sub(json!(1), None), json!("éllo"));
        assert_eq!(sub(json!(1), Some(json!(2))), json!("é"));
        assert_eq!(sub(json!(-3), Some(json!(-1))), json!("ll"));
        assert_eq!(sub(json!(-99), Some(json!(1))), json!("h"));
        assert_eq!(sub(json!(3), Some(json!(1))), json!(""));
        assert_eq!(sub(json!(5), None), json!(""));
        assert_eq!(sub(json!(1.9), Some(json!(2.2))), json!("é"));
        assert_eq!(sub(json!(0), Some(json!(1e300))), json!("héllo"));
        assert_eq!(sub(json!(-1e300), None), json!("héllo"));
    }

    #[test]
    fn empty_string_and_null() {
        assert_eq!(call(&Substring, vec![json!(""), json!(-1)]), Ok(json!("")));
        assert_eq!(call(&Substring, vec![json!(null), json!(0)]), Ok(json!(null)));
    }
}
