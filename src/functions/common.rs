//! Helpers shared by several functions: value equality, text of scalars, result types.

use serde_json::{Number, Value};

use crate::types::Type;

/// Equality as rule authors expect it: numbers compare by value (`1 == 1.0`), containers
/// element by element, object keys in any order. (`serde_json`'s `==` tells `1` and `1.0`
/// apart.) Consistent with [`key`].
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => NumKey::of(x) == NumKey::of(y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

/// A number's identity: integers (and floats with a whole value) exactly, other floats by bits.
#[derive(PartialEq, Eq)]
enum NumKey {
    Int(i128),
    Float(u64),
}

impl NumKey {
    fn of(n: &Number) -> NumKey {
        if let Some(i) = n.as_i64() {
            NumKey::Int(i.into())
        } else if let Some(u) = n.as_u64() {
            NumKey::Int(u.into())
        } else {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // Whole floats within i128 range are exactly representable as integers.
            if f.fract() == 0.0 && f.abs() < 1e38 {
                NumKey::Int(f as i128)
            } else {
                NumKey::Float(f.to_bits())
            }
        }
    }
}

/// `to_lowercase`, without its per-character Unicode path for ASCII text (the same result).
pub(crate) fn lower(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.to_lowercase()
    }
}

/// A text key with `key(a) == key(b)` exactly when `equal(a, b)`, for hashing values.
pub fn key(v: &Value) -> String {
    let mut out = String::new();
    write_key(v, &mut out);
    out
}

fn write_key(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push('z'),
        Value::Bool(b) => out.push(if *b { 't' } else { 'f' }),
        Value::Number(n) => match NumKey::of(n) {
            NumKey::Int(i) => out.push_str(&format!("i{i};")),
            NumKey::Float(bits) => out.push_str(&format!("f{bits};")),
        },
        // Strings are length-prefixed so that no content can mimic a delimiter.
        Value::String(s) => out.push_str(&format!("s{}:{s}", s.len())),
        Value::Array(items) => {
            out.push_str(&format!("a{}[", items.len()));
            items.iter().for_each(|v| write_key(v, out));
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push_str(&format!("o{}{{", entries.len()));
            for (k, v) in entries {
                out.push_str(&format!("{}:{k}", k.len()));
                write_key(v, out);
            }
        }
    }
}

/// The text of a scalar as `to_string` and `join` render it: strings as they are, numbers
/// without a trailing `.0`, booleans as `true`/`false`. `None` for null, arrays and objects.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(match n.as_f64() {
            // `1.0` prints as `1`, like the number it is.
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => {
                format!("{}", f as i64)
            }
            _ => n.to_string(),
        }),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// The element type of an array type (`any` when unknown).
pub fn element_type(t: &Type) -> Type {
    match t.non_null() {
        Type::Array(of) => (**of).clone(),
        _ => Type::Any,
    }
}

/// The argument's array type (`array<any>` when not known to be an array); for functions
/// that return an array of the same elements.
pub fn array_type(args: &[Type]) -> Type {
    match args.first().map(Type::non_null) {
        Some(t @ Type::Array(_)) => t.clone(),
        _ => Type::array(Type::Any),
    }
}

/// Whether values of this static type may be null at run time.
pub fn may_be_null(t: &Type) -> bool {
    t.is_optional() || *t == Type::Any
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value() {
        assert!(equal(&json!(1), &json!(1.0)));
        assert!(equal(&json!([1, {"a": 2.0}]), &json!([1.0, {"a": 2}])));
        assert!(!equal(&json!(1), &json!("1")));
        assert!(!equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(equal(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!equal(&json!(-1), &json!(u64::MAX)));
        assert!(equal(&json!({"a": 1, "b": 2}), &json!({"b": 2, "a": 1})));
        // Beyond 2^53 an integer is not equal to its nearest float.
        assert!(!equal(
            &json!(9007199254740993i64),
            &json!(9007199254740992.0)
        ));
        assert!(equal(
            &json!(9007199254740992i64),
            &json!(9007199254740992.0)
        ));
    }

    #[test]
    fn keys_agree_with_equality() {
        let values = [
            json!(null),
            json!(true),
            json!(1),
            json!(1.0),
            json!(1.5),
            json!(-0.0),
            json!(0),
            json!("1"),
            json!(""),
            json!([1, "a"]),
            json!([1.0, "a"]),
            json!(["a", 1]),
            json!({"a": 1, "b": [2]}),
            json!({"b": [2.0], "a": 1}),
            json!({"a:1": 1}),
            json!(u64::MAX),
            json!(1e300),
        ];
        for a in &values {
            for b in &values {
                assert_eq!(equal(a, b), key(a) == key(b), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn scalar_text_renders_plainly() {
        assert_eq!(scalar_text(&json!(3.0)).as_deref(), Some("3"));
        assert_eq!(scalar_text(&json!(3.25)).as_deref(), Some("3.25"));
        assert_eq!(scalar_text(&json!(-7)).as_deref(), Some("-7"));
        assert_eq!(scalar_text(&json!(true)).as_deref(), Some("true"));
        assert_eq!(scalar_text(&json!(null)), None);
        assert_eq!(scalar_text(&json!([1])), None);
    }
}
