use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Signature, arg, type_name,
};
use crate::types::Type;

/// `len(v)`: the length of a string, array or object.
pub struct Len;

impl Function for Len {
    fn name(&self) -> &str {
        "len"
    }
    fn category(&self) -> Category {
        Category::Collection
    }
    fn doc(&self) -> &'static str {
        "The number of characters of a string (Unicode characters, not bytes), elements of an \
         array, or keys of an object. Null has length 0, so `len(tags) > 0` works on a missing \
         field; a number or boolean is an error."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::Any)], Type::Number).fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "characters, not bytes",
                source: r#"len("Zürich")"#,
                record: "{}",
                result: "6",
            },
            Example {
                title: "array elements",
                source: "len(tags)",
                record: r#"{"tags": ["vip", "new"]}"#,
                result: "2",
            },
            Example {
                title: "a missing field",
                source: "len(tags)",
                record: "{}",
                result: "0",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let n = match arg::any(args, 0) {
            Value::Null => 0,
            Value::String(s) => s.chars().count(),
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            v => {
                return Err(FnError(format!(
                    "len() needs a string, an array or an object, got {}",
                    type_name(v)
                )));
            }
        };
        Ok(Value::from(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Len);
    }

    #[test]
    fn values() {
        assert_eq!(call(&Len, vec![json!("")]), Ok(json!(0)));
        assert_eq!(call(&Len, vec![json!({"a": 1, "b": 2})]), Ok(json!(2)));
        assert_eq!(
            call(&Len, vec![json!(12)]).unwrap_err().0,
            "len() needs a string, an array or an object, got number"
        );
    }
}
