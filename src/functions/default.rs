use std::borrow::Cow;

use serde_json::Value;

use crate::functions::is_empty::is_empty;
use crate::functions::common::may_be_null;
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `default(value, fallback)`: `fallback` when `value` is null or empty.
pub struct Default;

impl Function for Default {
    fn name(&self) -> &str {
        "default"
    }
    fn category(&self) -> Category {
        Category::Null
    }
    fn doc(&self) -> &'static str {
        "Returns `fallback` when `value` is empty in the sense of `is_empty` (null, `\"\"`, `[]` \
         or `{}`), else `value`. Forms and CRMs often send `\"\"` for a blank field; use \
         `coalesce` or `??` to replace only null. `default(a, b)` is the same as `a ?| b`. A \
         whitespace-only string is not empty: write `default(trim(x), ...)`."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::Any),
                Param::new("fallback", Type::Any),
            ],
            Type::Any,
        )
    }
    fn return_type(&self, args: &[Type]) -> Type {
        let (Some(value), Some(fallback)) = (args.first(), args.get(1)) else {
            return Type::Any;
        };
        if *value == Type::Null {
            return fallback.clone();
        }
        let joined = value.non_null().join(fallback.non_null());
        if may_be_null(fallback) {
            Type::optional(joined)
        } else {
            joined
        }
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a blank form field",
                source: r#"default(company, "Unknown")"#,
                record: r#"{"company": ""}"#,
                result: r#""Unknown""#,
            },
            Example {
                title: "a missing field",
                source: r#"default(company, "Unknown")"#,
                record: "{}",
                result: r#""Unknown""#,
            },
            Example {
                title: "an empty list",
                source: r#"default(tags, ["untagged"])"#,
                record: r#"{"tags": []}"#,
                result: r#"["untagged"]"#,
            },
            Example {
                title: "a value is kept",
                source: "default(score, 0)",
                record: r#"{"score": 72}"#,
                result: "72",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let value = arg::any(args, 0);
        Ok(if is_empty(value) {
            arg::any(args, 1).clone()
        } else {
            value.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, return_type};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Default);
    }

    #[test]
    fn values() {
        assert_eq!(call(&Default, vec![json!(0), json!(1)]), Ok(json!(0)));
        assert_eq!(call(&Default, vec![json!(false), json!(true)]), Ok(json!(false)));
        assert_eq!(call(&Default, vec![json!(" "), json!("x")]), Ok(json!(" ")));
        assert_eq!(call(&Default, vec![json!({}), json!(null)]), Ok(json!(null)));
    }

    #[test]
    fn types() {
        let os = Type::optional(Type::String);
        assert_eq!(return_type(&Default, &[os.clone(), Type::String]), "string");
        assert_eq!(return_type(&Default, &[Type::String, os]), "string?");
        assert_eq!(return_type(&Default, &[Type::Null, Type::Number]), "number");
        assert_eq!(return_type(&Default, &[Type::Any, Type::Number]), "any");
    }
}
