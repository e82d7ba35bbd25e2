use std::borrow::Cow;

use serde_json::Value;

use crate::functions::common::scalar_text;
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `join(values, sep?)`: joins array elements into one string.
pub struct Join;

impl Function for Join {
    fn name(&self) -> &str {
        "join"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Joins the elements of an array with `separator` between them (default: nothing). \
         Numbers and booleans are written as text, arrays and objects as compact JSON, and null \
         elements are skipped, so optional name parts can be joined without stray separators."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("values", Type::array(Type::Any)),
                Param::opt("separator", Type::String),
            ],
            Type::String,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "name parts, a missing middle name is skipped",
                source: r#"join([first, middle, last], " ")"#,
                record: r#"{"first": "Ada", "middle": null, "last": "Lovelace"}"#,
                result: r#""Ada Lovelace""#,
            },
            Example {
                title: "the rest of a split name",
                source: r#"join(split("Ada King Lovelace", " ")[1:], " ")"#,
                record: "{}",
                result: r#""King Lovelace""#,
            },
            Example {
                title: "numbers, no separator",
                source: "join([1, 2.5, true])",
                record: "{}",
                result: r#""12.5true""#,
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let values = arg::array(args, 0)?;
        let sep = arg::opt_str(args, 1)?.unwrap_or("");
        let mut out = String::new();
        let mut first = true;
        for v in values {
            let text = match v {
                Value::Null => continue,
                // Strings are copied straight into the result.
                Value::String(s) => Cow::Borrowed(s.as_str()),
                Value::Array(_) | Value::Object(_) => Cow::Owned(v.to_string()),
                _ => Cow::Owned(scalar_text(v).unwrap_or_default()),
            };
            if !first {
                out.push_str(sep);
            }
            first = false;
            out.push_str(&text);
        }
        Ok(Value::String(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Join);
    }

    #[test]
    fn edges() {
        assert_eq!(call(&Join, vec![json!([]), json!(",")]), Ok(json!("")));
        assert_eq!(
            call(&Join, vec![json!([null, "a", null]), json!(",")]),
            Ok(json!("a"))
        );
        assert_eq!(
            call(&Join, vec![json!([{"a": 1}, [2]]), json!(";")]),
            Ok(json!(r#"{"a":1};[2]"#))
        );
        assert_eq!(call(&Join, vec![json!(null), json!(",")]), Ok(json!(null)));
    }
}
