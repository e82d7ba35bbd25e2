use std::borrow::Cow;

use serde_json::Value;

use crate::functions::common::element_type;
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `flatten(array)`: splices nested arrays into their parent, one level deep.
pub struct Flatten;

impl Function for Flatten {
    fn name(&self) -> &str {
        "flatten"
    }
    fn category(&self) -> Category {
        Category::Collection
    }
    fn doc(&self) -> &'static str {
        "Replaces every element that is an array by its elements, one level deep (apply twice \
         for two levels). Other elements, null included, are kept as they are."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![Param::new("values", Type::array(Type::Any))],
            Type::array(Type::Any),
        )
    }
    fn return_type(&self, args: &[Type]) -> Type {
        let elements = args.first().map_or(Type::Any, element_type);
        Type::array(match elements {
            Type::Array(inner) => *inner,
            Type::Optional(inner) => match *inner {
                Type::Array(of) => Type::optional(*of),
                other => Type::optional(other),
            },
            other => other,
        })
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "policies from several groups",
                source: "flatten([group_policies, extra_policies])",
                record: r#"{"group_policies": ["Basic apps", "Audit"], "extra_policies": ["Dev tools"]}"#,
                result: r#"["Basic apps", "Audit", "Dev tools"]"#,
            },
            Example {
                title: "one level only",
                source: "flatten([1, [2, [3]]])",
                record: "{}",
                result: "[1, 2, [3]]",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let mut out = Vec::new();
        for v in arg::array(args, 0)? {
            match v {
                Value::Array(items) => out.extend(items.iter().cloned()),
                other => out.push(other.clone()),
            }
        }
        Ok(Value::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, return_type};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Flatten);
    }

    #[test]
    fn values_and_types() {
        assert_eq!(call(&Flatten, vec![json!([[], null, []])]), Ok(json!([null])));
        let aas = Type::array(Type::array(Type::String));
        assert_eq!(return_type(&Flatten, &[aas]), "array<string>");
        assert_eq!(return_type(&Flatten, &[Type::array(Type::Number)]), "array<number>");
        assert_eq!(return_type(&Flatten, &[Type::Any]), "array");
    }
}
