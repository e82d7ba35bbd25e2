use std::borrow::Cow;

use serde_json::Value;

use crate::functions::common::{equal, scalar_text};
use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Signature, arg, type_name,
};
use crate::types::Type;

/// `contains(haystack, needle)`: substring of a string, element of an array, key of an object.
pub struct Contains;

impl Function for Contains {
    fn name(&self) -> &str {
        "contains"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "For a string, whether `needle` occurs in it (case-sensitive; a number or boolean \
         needle is looked for as text). For an array, whether an element equals `needle` \
         (numbers compare by value: `1` equals `1.0`). For an object, whether it has the key \
         `needle`. A null haystack contains nothing (`false`). Any other haystack is an error."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("haystack", Type::Any),
                Param::new("needle", Type::Any),
            ],
            Type::Bool,
        )
        .fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a substring",
                source: r#"contains(title, "Engineer")"#,
                record: r#"{"title": "Senior Engineer"}"#,
                result: "true",
            },
            Example {
                title: "membership in an array",
                source: r#"contains(tags, "vip")"#,
                record: r#"{"tags": ["new", "vip"]}"#,
                result: "true",
            },
            Example {
                title: "a key of an object",
                source: r#"contains(properties, "phone")"#,
                record: r#"{"properties": {"email": "ada@example.com"}}"#,
                result: "false",
            },
            Example {
                title: "a missing list contains nothing",
                source: r#"contains(tags, "vip")"#,
                record: "{}",
                result: "false",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let needle = arg::any(args, 1);
        let found = match arg::any(args, 0) {
            Value::Null => false,
            Value::String(s) => match needle {
                Value::String(n) => s.contains(n.as_str()),
                Value::Number(_) | Value::Bool(_) => {
                    scalar_text(needle).is_some_and(|n| s.contains(&n))
                }
                Value::Null | Value::Array(_) | Value::Object(_) => false,
            },
            Value::Array(items) => items.iter().any(|v| equal(v, needle)),
            Value::Object(map) => needle.as_str().is_some_and(|k| map.contains_key(k)),
            v => {
                return Err(FnError(format!(
                    "contains() needs a string, an array or an object, got {}",
                    type_name(v)
                )));
            }
        };
        Ok(Value::Bool(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Contains);
    }

    fn c(h: Value, n: Value) -> Result<Value, FnError> {
        call(&Contains, vec![h, n])
    }

    #[test]
    fn strings() {
        assert_eq!(c(json!("abc"), json!("")), Ok(json!(true)));
        assert_eq!(c(json!("order 42"), json!(42)), Ok(json!(true)));
        assert_eq!(c(json!("abc"), json!(null)), Ok(json!(false)));
        assert_eq!(c(json!("abc"), json!(["a"])), Ok(json!(false)));
    }

    #[test]
    fn arrays_and_objects() {
        assert_eq!(c(json!([1, 2]), json!(2.0)), Ok(json!(true)));
        assert_eq!(c(json!([1, null]), json!(null)), Ok(json!(true)));
        assert_eq!(c(json!([[1, 2]]), json!([1, 2])), Ok(json!(true)));
        assert_eq!(c(json!([]), json!(1)), Ok(json!(false)));
        assert_eq!(c(json!({"a": 1}), json!("a")), Ok(json!(true)));
        assert_eq!(c(json!({"a": 1}), json!(1)), Ok(json!(false)));
        assert_eq!(c(json!(null), json!("x")), Ok(json!(false)));
    }

    #[test]
    fn other_haystacks_fail() {
        let e = c(json!(42), json!(4)).unwrap_err();
        assert_eq!(e.0, "contains() needs a string, an array or an object, got number");
        assert!(c(json!(true), json!(true)).is_err());
    }
}
