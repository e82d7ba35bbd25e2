use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `values(object)`: the values of an object.
pub struct Values;

impl Function for Values {
    fn name(&self) -> &str {
        "values"
    }
    fn category(&self) -> Category {
        Category::Collection
    }
    fn doc(&self) -> &'static str {
        "The values of an object, in the order of its keys in the record."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![Param::new("value", Type::Object)],
            Type::array(Type::Any),
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "all phone numbers of a contact",
                source: "values(phones)",
                record: r#"{"phones": {"work": "+14155550100", "mobile": "+14155550199"}}"#,
                result: r#"["+14155550100", "+14155550199"]"#,
            },
            Example {
                title: "an empty object",
                source: "values({})",
                record: "{}",
                result: "[]",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(Value::Array(arg::object(args, 0)?.values().cloned().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Values);
    }

    #[test]
    fn order_is_kept() {
        assert_eq!(
            call(&Values, vec![json!({"z": 1, "a": [2]})]),
            Ok(json!([1, [2]]))
        );
    }
}
