use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use crate::functions::common::array_type;
use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Signature, arg, type_name,
};
use crate::types::Type;

/// `sort(array)`: numbers or strings in ascending order.
pub struct Sort;

/// What the non-null elements of an array are.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Number,
    String,
}

fn kind(v: &Value) -> Result<Option<Kind>, FnError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(_) => Ok(Some(Kind::Number)),
        Value::String(_) => Ok(Some(Kind::String)),
        _ => Err(FnError(format!(
            "sort() sorts numbers or strings, got {}",
            type_name(v)
        ))),
    }
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x
                .as_f64()
                .unwrap_or(f64::NAN)
                .total_cmp(&y.as_f64().unwrap_or(f64::NAN)),
        },
        // Mixed kinds were rejected before sorting.
        _ => Ordering::Equal,
    }
}

impl Function for Sort {
    fn name(&self) -> &str {
        "sort"
    }
    fn category(&self) -> Category {
        Category::Collection
    }
    fn doc(&self) -> &'static str {
        "The array in ascending order: numbers by value, or strings by Unicode code point \
         (so `\"B\"` sorts before `\"a\"`; use `lower` first for a case-insensitive order). Null \
         elements go last. Equal elements keep their order. Mixing numbers and strings, or \
         sorting booleans, arrays or objects, is an error."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![Param::new("values", Type::array(Type::Any))],
            Type::array(Type::Any),
        )
        .fallible()
    }
    fn return_type(&self, args: &[Type]) -> Type {
        array_type(args)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "group names",
                source: "sort(groups)",
                record: r#"{"groups": ["Sales", "IT", "Finance"]}"#,
                result: r#"["Finance", "IT", "Sales"]"#,
            },
            Example {
                title: "numbers, nulls last",
                source: "sort([10, null, 9.5, -1])",
                record: "{}",
                result: "[-1, 9.5, 10, null]",
            },
            Example {
                title: "mixed kinds",
                source: r#"sort([1, "2"])"#,
                record: "{}",
                result: "error: sort() cannot compare numbers with strings",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let values = arg::array(args, 0)?;
        let mut seen: Option<Kind> = None;
        for v in values {
            match (seen, kind(v)?) {
                (_, None) => {}
                (None, k) => seen = k,
                (Some(a), Some(b)) if a != b => {
                    return Err(FnError(
                        "sort() cannot compare numbers with strings".into(),
                    ));
                }
                _ => {}
            }
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(compare);
        Ok(Value::Array(sorted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, return_type};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Sort);
    }

    #[test]
    fn values() {
        let s = |v: Value| call(&Sort, vec![v]);
        assert_eq!(s(json!([])), Ok(json!([])));
        assert_eq!(s(json!(["b", "B", "a", "é"])), Ok(json!(["B", "a", "b", "é"])));
        assert_eq!(s(json!([2, 1.0, 1, -0.5])), Ok(json!([-0.5, 1.0, 1, 2])));
        assert_eq!(
            s(json!([9007199254740993i64, 9007199254740992i64])),
            Ok(json!([9007199254740992i64, 9007199254740993i64]))
        );
        assert_eq!(s(json!([null, null])), Ok(json!([null, null])));
        assert_eq!(
            s(json!(["a", null, 1])).unwrap_err().0,
            "sort() cannot compare numbers with strings"
        );
        assert_eq!(
            s(json!([true])).unwrap_err().0,
            "sort() sorts numbers or strings, got bool"
        );
        assert_eq!(
            return_type(&Sort, &[Type::array(Type::Number)]),
            "array<number>"
        );
    }
}
