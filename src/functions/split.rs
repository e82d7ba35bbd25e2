use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `split(s, sep)`: splits a string into an array of strings.
pub struct Split;

impl Function for Split {
    fn name(&self) -> &str {
        "split"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Splits the string at every occurrence of `separator` (matched literally) and returns \
         the parts, empty ones included: `split(\"a,,b\", \",\")` is `[\"a\", \"\", \"b\"]` and \
         the empty string gives `[\"\"]`. An empty separator splits into characters."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::new("separator", Type::String),
            ],
            Type::array(Type::String),
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "first and last name",
                source: r#"split(name, " ")"#,
                record: r#"{"name": "Ada Lovelace"}"#,
                result: r#"["Ada", "Lovelace"]"#,
            },
            Example {
                title: "empty parts are kept",
                source: r#"split("IT,,HR", ",")"#,
                record: "{}",
                result: r#"["IT", "", "HR"]"#,
            },
            Example {
                title: "an empty separator splits into characters",
                source: r#"split("né", "")"#,
                record: "{}",
                result: r#"["n", "é"]"#,
            },
            Example {
                title: "null propagates",
                source: r#"split(missing, ",")"#,
                record: "{}",
                result: "null",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let s = arg::str(args, 0)?;
        let sep = arg::str(args, 1)?;
        let parts: Vec<Value> = if sep.is_empty() {
            s.chars().map(|c| Value::String(c.to_string())).collect()
        } else if let [b] = sep.as_bytes()
            && b.is_ascii()
        {
            // A one-byte separator is searched for as a byte, not as a substring.
            let c = char::from(*b);
            s.split(c).map(|p| Value::String(p.to_string())).collect()
        } else {
            s.split(sep).map(|p| Value::String(p.to_string())).collect()
        };
        Ok(Value::Array(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Split);
    }

    #[test]
    fn edges() {
        assert_eq!(call(&Split, vec![json!(""), json!(",")]), Ok(json!([""])));
        assert_eq!(call(&Split, vec![json!(""), json!("")]), Ok(json!([])));
        assert_eq!(
            call(&Split, vec![json!("a::b"), json!("::")]),
            Ok(json!(["a", "b"]))
        );
        assert_eq!(call(&Split, vec![json!("a,b"), json!(null)]), Ok(json!(null)));
        assert!(call(&Split, vec![json!(1), json!(",")]).is_err());
    }
}
