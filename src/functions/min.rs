use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Signature, type_name,
};
use crate::types::Type;

/// `min(a, b, ...)` or `min(array)`: the smallest number.
pub struct Min;

/// The numbers `min`/`max` compare: the elements of a single array argument, else the
/// arguments; nulls are skipped, anything else that is not a number is an error.
pub(super) fn numbers<'v>(name: &str, args: &'v [Cow<'_, Value>]) -> Result<Vec<&'v Value>, FnError> {
    let values: Vec<&Value> = match args {
        [single] => match single.as_ref() {
            Value::Array(items) => items.iter().collect(),
            v => vec![v],
        },
        _ => args.iter().map(|a| a.as_ref()).collect(),
    };
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        match v {
            Value::Null => {}
            Value::Number(_) => out.push(v),
            _ => {
                return Err(FnError(format!(
                    "{name}() compares numbers, got {}",
                    type_name(v)
                )));
            }
        }
    }
    Ok(out)
}

/// The number whose `f64` value `better` prefers; the first wins ties, and the value is
/// returned as given (integers stay integers).
pub(super) fn pick(values: Vec<&Value>, better: fn(f64, f64) -> bool) -> Value {
    let mut best: Option<(&Value, f64)> = None;
    for v in values {
        let Some(n) = v.as_f64() else { continue };
        if best.is_none_or(|(_, b)| better(n, b)) {
            best = Some((v, n));
        }
    }
    best.map_or(Value::Null, |(v, _)| v.clone())
}

/// `number` when some argument is a number that cannot be null (a lone array may be empty,
/// so it gives `number?`).
pub(super) fn result_type(args: &[Type]) -> Type {
    let certain = match args {
        [single] => *single == Type::Number,
        _ => args.contains(&Type::Number),
    };
    if certain {
        Type::Number
    } else {
        Type::optional(Type::Number)
    }
}

impl Function for Min {
    fn name(&self) -> &str {
        "min"
    }
    fn category(&self) -> Category {
        Category::Number
    }
    fn doc(&self) -> &'static str {
        "The smallest of the numbers given as arguments (`min(a, b, c)`) or as the elements of a \
         single array (`min(prices)`). Null values are skipped, as in SQL aggregates; with no \
         number left the result is null. Any other value (a string, say) is an error: convert \
         with `to_number` first."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![Param::new("values", Type::Any)],
            Type::optional(Type::Number),
        )
        .variadic(Param::new("more", Type::optional(Type::Number)))
        .fallible()
    }
    fn return_type(&self, args: &[Type]) -> Type {
        result_type(args)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "the lower of two fields",
                source: "min(list_price, offer_price)",
                record: r#"{"list_price": 120, "offer_price": 99.5}"#,
                result: "99.5",
            },
            Example {
                title: "over an array, nulls skipped",
                source: "min(scores)",
                record: r#"{"scores": [72, null, 64, 90]}"#,
                result: "64",
            },
            Example {
                title: "nothing to compare",
                source: "min([])",
                record: "{}",
                result: "null",
            },
            Example {
                title: "a string is an error",
                source: "min(prices)",
                record: r#"{"prices": [1, "2"]}"#,
                result: "error: min() compares numbers, got string",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(pick(numbers("min", args)?, |n, best| n < best))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, return_type};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Min);
    }

    #[test]
    fn values() {
        assert_eq!(call(&Min, vec![json!(3), json!(1), json!(2)]), Ok(json!(1)));
        assert_eq!(call(&Min, vec![json!(5)]), Ok(json!(5)));
        assert_eq!(call(&Min, vec![json!(null), json!(2)]), Ok(json!(2)));
        assert_eq!(call(&Min, vec![json!(null)]), Ok(json!(null)));
        assert_eq!(call(&Min, vec![json!(1.0), json!(1)]), Ok(json!(1.0)));
        assert_eq!(call(&Min, vec![json!([-1, -1.5])]), Ok(json!(-1.5)));
        assert!(call(&Min, vec![json!("1")]).is_err());
        assert!(call(&Min, vec![json!([[1]])]).is_err());
        // Arrays are only unpacked when alone.
        assert!(call(&Min, vec![json!([1]), json!(2)]).is_err());
    }

    #[test]
    fn types() {
        assert_eq!(return_type(&Min, &[Type::Number, Type::Number]), "number");
        assert_eq!(return_type(&Min, &[Type::Number]), "number");
        assert_eq!(
            return_type(&Min, &[Type::Number, Type::optional(Type::Number)]),
            "number"
        );
        assert_eq!(
            return_type(&Min, &[Type::Any, Type::optional(Type::Number)]),
            "number?"
        );
        assert_eq!(return_type(&Min, &[Type::array(Type::Number)]), "number?");
    }
}
