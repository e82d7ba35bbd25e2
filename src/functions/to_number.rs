use std::borrow::Cow;

use serde_json::Value;

use crate::functions::dates::quote;
use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Signature, arg, number, type_name,
};
use crate::types::Type;

/// `to_number(v)`: a number from a string, a number or a boolean.
pub struct ToNumber;

/// Parses decimal text: integers exactly (within 64 bits), anything else as a double.
fn parse(text: &str) -> Result<Value, FnError> {
    if let Ok(i) = text.parse::<i64>() {
        return Ok(Value::from(i));
    }
    if let Ok(u) = text.parse::<u64>() {
        return Ok(Value::from(u));
    }
    // Rust also reads "inf" and "NaN", which are not numbers a record can hold.
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => number(f),
        _ => Err(FnError(format!("not a number: {}", quote(text)))),
    }
}

impl Function for ToNumber {
    fn name(&self) -> &str {
        "to_number"
    }
    fn category(&self) -> Category {
        Category::Number
    }
    fn doc(&self) -> &'static str {
        "Converts a value to a number. Strings are trimmed and read as decimal numbers, with an \
         optional sign, fraction and exponent (`\" 42 \"`, `\"-3.5\"`, `\"1e3\"`); thousands \
         separators, hexadecimal, `inf` and `NaN` are errors. A blank string gives null (forms \
         send `\"\"` for an empty number field). Numbers are returned unchanged, `true` and \
         `false` give 1 and 0, null stays null; arrays and objects are errors."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![Param::new("value", Type::Any)],
            Type::optional(Type::Number),
        )
        .fallible()
    }
    fn return_type(&self, args: &[Type]) -> Type {
        match args.first() {
            Some(Type::Number | Type::Bool) => Type::Number,
            _ => Type::optional(Type::Number),
        }
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a padded string",
                source: "to_number(employees)",
                record: r#"{"employees": " 42 "}"#,
                result: "42",
            },
            Example {
                title: "a decimal with an exponent",
                source: r#"to_number("2.5e3")"#,
                record: "{}",
                result: "2500",
            },
            Example {
                title: "a blank string",
                source: r#"to_number("")"#,
                record: "{}",
                result: "null",
            },
            Example {
                title: "not a number",
                source: "to_number(employees)",
                record: r#"{"employees": "about 40"}"#,
                result: r#"error: not a number: "about 40""#,
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        match arg::any(args, 0) {
            Value::Null => Ok(Value::Null),
            Value::Number(n) => Ok(Value::Number(n.clone())),
            Value::Bool(b) => Ok(Value::from(u8::from(*b))),
            Value::String(s) if s.trim().is_empty() => Ok(Value::Null),
            Value::String(s) => parse(s.trim()),
            v => Err(FnError(format!(
                "cannot convert {} to a number",
                type_name(v)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, return_type};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&ToNumber);
    }

    fn n(v: Value) -> Result<Value, FnError> {
        call(&ToNumber, vec![v])
    }

    #[test]
    fn strings() {
        assert_eq!(n(json!("3.5")), Ok(json!(3.5)));
        assert_eq!(n(json!("+7")), Ok(json!(7)));
        assert_eq!(n(json!("-0012")), Ok(json!(-12)));
        assert_eq!(n(json!(".5")), Ok(json!(0.5)));
        assert_eq!(n(json!("1.0")), Ok(json!(1)));
        assert_eq!(n(json!("18446744073709551615")), Ok(json!(u64::MAX)));
        assert_eq!(n(json!("9223372036854775807")), Ok(json!(i64::MAX)));
        assert_eq!(n(json!(" \t ")), Ok(json!(null)));
        for bad in ["abc", "1,000", "0x10", "inf", "NaN", "1e999", "1 2", "1_000"] {
            let e = n(json!(bad)).unwrap_err();
            assert!(e.0.starts_with("not a number"), "{bad}: {e}");
        }
    }

    #[test]
    fn other_values() {
        assert_eq!(n(json!(2.25)), Ok(json!(2.25)));
        assert_eq!(n(json!(true)), Ok(json!(1)));
        assert_eq!(n(json!(false)), Ok(json!(0)));
        assert_eq!(n(json!(null)), Ok(json!(null)));
        assert_eq!(
            n(json!([1])).unwrap_err().0,
            "cannot convert array to a number"
        );
    }

    #[test]
    fn types() {
        assert_eq!(return_type(&ToNumber, &[Type::Bool]), "number");
        assert_eq!(return_type(&ToNumber, &[Type::String]), "number?");
    }
}
