use std::borrow::Cow;

use serde_json::Value;

use crate::functions::common::may_be_null;
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature};
use crate::types::Type;

/// `coalesce(a, b, ...)`: the first argument that is not null.
pub struct Coalesce;

impl Function for Coalesce {
    fn name(&self) -> &str {
        "coalesce"
    }
    fn category(&self) -> Category {
        Category::Null
    }
    fn doc(&self) -> &'static str {
        "Returns the first argument that is not null, or null when all are. Only null is \
         skipped: an empty string is a value (see `default` to also replace empty values). \
         `coalesce(a, b)` is the same as `a ?? b`; `a ?| b` also skips empty values. The result is optional unless some argument \
         can never be null."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::Any)], Type::Any)
            .variadic(Param::new("fallback", Type::Any))
    }
    fn return_type(&self, args: &[Type]) -> Type {
        let mut result: Option<Type> = None;
        for t in args {
            if *t == Type::Null {
                continue;
            }
            let joined = match result {
                None => t.non_null().clone(),
                Some(r) => r.join(t.non_null()),
            };
            if !may_be_null(t) {
                return joined;
            }
            result = Some(joined);
        }
        result.map_or(Type::Null, Type::optional)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "the first phone number present",
                source: "coalesce(mobile, work_phone, home_phone)",
                record: r#"{"mobile": null, "work_phone": "+14155550100", "home_phone": "+14155550199"}"#,
                result: r#""+14155550100""#,
            },
            Example {
                title: "a constant last resort",
                source: r#"coalesce(company, "Unknown")"#,
                record: "{}",
                result: r#""Unknown""#,
            },
            Example {
                title: "an empty string is not null",
                source: r#"coalesce(company, "Unknown")"#,
                record: r#"{"company": ""}"#,
                result: r#""""#,
            },
            Example {
                title: "all null",
                source: "coalesce(a, b)",
                record: "{}",
                result: "null",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(args
            .iter()
            .find(|a| !a.is_null())
            .map_or(Value::Null, |a| a.as_ref().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, return_type};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Coalesce);
    }

    #[test]
    fn values() {
        assert_eq!(call(&Coalesce, vec![json!(null)]), Ok(json!(null)));
        assert_eq!(call(&Coalesce, vec![json!(0), json!(1)]), Ok(json!(0)));
        assert_eq!(
            call(&Coalesce, vec![json!(null), json!(null), json!([1])]),
            Ok(json!([1]))
        );
    }

    #[test]
    fn types() {
        let os = Type::optional(Type::String);
        assert_eq!(return_type(&Coalesce, &[os.clone(), Type::String]), "string");
        assert_eq!(return_type(&Coalesce, &[os.clone(), os.clone()]), "string?");
        assert_eq!(return_type(&Coalesce, &[Type::Null, Type::Number]), "number");
        assert_eq!(return_type(&Coalesce, &[Type::Null]), "null");
        assert_eq!(return_type(&Coalesce, &[Type::Any, Type::String]), "any");
        assert_eq!(
            return_type(&Coalesce, &[Type::String, Type::optional(Type::Number)]),
            "string"
        );
    }
}
