//! Operations on JSON values shared by the evaluator and constant folding.
//!
//! Operations take `Cow`s and reuse owned buffers where they can (`a + b` on an owned string
//! appends in place).

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use crate::functions::type_name;

use super::ast::BinaryOp;

/// The value missing fields and out-of-range indices evaluate to.
pub(crate) static NULL: Value = Value::Null;

/// Looks up an object field. Small objects are scanned, which beats hashing the key (records
/// hash with SipHash); large ones use the index.
#[inline]
pub fn get_field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if map.len() <= 12 {
        map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    } else {
        map.get(key)
    }
}

/// Deep equality; numbers compare numerically (`1 == 1.0`), object key order is ignored.
pub fn deep_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => cmp_numbers(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| deep_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Numeric order without losing integer precision.
pub fn cmp_numbers(a: &Number, b: &Number) -> Ordering {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x.cmp(&y);
    }
    let x = a.as_f64().unwrap_or(f64::NAN);
    let y = b.as_f64().unwrap_or(f64::NAN);
    x.partial_cmp(&y).unwrap_or(Ordering::Equal)
}

/// `< <= > >=`: `Ok(false)` when either side is null; an error for anything but two numbers or
/// two strings.
pub fn compare(op: BinaryOp, a: &Value, b: &Value) -> Result<bool, String> {
    let ord = match (a, b) {
        (Value::Null, _) | (_, Value::Null) => return Ok(false),
        (Value::Number(x), Value::Number(y)) => cmp_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => {
            return Err(format!(
                "cannot compare {} with {} using `{}`",
                type_name(a),
                type_name(b),
                op.symbol()
            ));
        }
    };
    Ok(match op {
        BinaryOp::Lt => ord == Ordering::Less,
        BinaryOp::Le => ord != Ordering::Greater,
        BinaryOp::Gt => ord == Ordering::Greater,
        BinaryOp::Ge => ord != Ordering::Less,
        BinaryOp::Eq => deep_eq(a, b),
        BinaryOp::Ne => !deep_eq(a, b),
        _ => return Err(format!("`{}` is not a comparison", op.symbol())),
    })
}

/// `needle in haystack`: element of an array, key of an object, substring of a string.
/// A null haystack contains nothing.
pub fn contains(needle: &Value, haystack: &Value) -> Result<bool, String> {
    match (haystack, needle) {
        (Value::Null, _) => Ok(false),
        (Value::Array(items), _) => Ok(items.iter().any(|v| deep_eq(v, needle))),
        (Value::Object(map), Value::String(k)) => Ok(map.contains_key(k)),
        (Value::Object(_), Value::Null) => Ok(false),
        (Value::String(s), Value::String(sub)) => Ok(s.contains(sub.as_str())),
        (Value::String(_), Value::Null) => Ok(false),
        (Value::Object(_) | Value::String(_), _) => Err(format!(
            "`in` on {} {} needs a string on the left, got {}",
            if haystack.is_object() { "an" } else { "a" },
            type_name(haystack),
            type_name(needle)
        )),
        _ => Err(format!(
            "`in` needs an array, object or string on the right, got {}",
            type_name(haystack)
        )),
    }
}

/// `+ - * / %`. A null operand makes the result null.
#[inline(never)]
pub fn arithmetic<'a>(op: BinaryOp, a: Cow<'a, Value>, b: Cow<'a, Value>) -> Result<Value, String> {
    match (a.as_ref(), b.as_ref()) {
        (Value::Null, _) | (_, Value::Null) => return Ok(Value::Null),
        (Value::Number(x), Value::Number(y)) => return number_op(op, x, y),
        _ => {}
    }
    if op == BinaryOp::Add {
        match (a, b) {
            (Cow::Owned(Value::String(mut x)), b) if b.is_string() => {
                x.push_str(b.as_str().unwrap_or_default());
                return Ok(Value::String(x));
            }
            (a, b) if a.is_string() && b.is_string() => {
                let (x, y) = (
                    a.as_str().unwrap_or_default(),
                    b.as_str().unwrap_or_default(),
                );
                let mut s = String::with_capacity(x.len() + y.len());
                s.push_str(x);
                s.push_str(y);
                return Ok(Value::String(s));
            }
            (a, b) if a.is_array() && b.is_array() => {
                let mut out = match a {
                    Cow::Owned(Value::Array(v)) => v,
                    a => a.as_array().cloned().unwrap_or_default(),
                };
                match b {
                    Cow::Owned(Value::Array(v)) => out.extend(v),
                    b => out.extend(b.as_array().into_iter().flatten().cloned()),
                }
                return Ok(Value::Array(out));
            }
            (a, b) => {
                return Err(format!(
                    "cannot add {} and {}",
                    type_name(&a),
                    type_name(&b)
                ));
            }
        }
    }
    Err(format!(
        "operator `{}` needs numbers, got {} and {}",
        op.symbol(),
        type_name(&a),
        type_name(&b)
    ))
}

/// Number arithmetic; integers stay integers while the result is exact.
pub fn number_op(op: BinaryOp, a: &Number, b: &Number) -> Result<Value, String> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        let exact = match op {
            BinaryOp::Add => x.checked_add(y),
            BinaryOp::Sub => x.checked_sub(y),
            BinaryOp::Mul => x.checked_mul(y),
            BinaryOp::Div if y == 0 => return Err("division by zero".into()),
            BinaryOp::Div => x
                .checked_rem(y)
                .filter(|r| *r == 0)
                .and_then(|_| x.checked_div(y)),
            BinaryOp::Rem if y == 0 => return Err("remainder by zero".into()),
            BinaryOp::Rem => x.checked_rem(y),
            _ => None,
        };
        if let Some(r) = exact {
            return Ok(Value::from(r));
        }
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
        return Err("number out of range".into());
    };
    let r = match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div if y == 0.0 => return Err("division by zero".into()),
        BinaryOp::Div => x / y,
        BinaryOp::Rem if y == 0.0 => return Err("remainder by zero".into()),
        BinaryOp::Rem => x % y,
        _ => return Err(format!("`{}` is not arithmetic", op.symbol())),
    };
    crate::functions::number(r).map_err(|e| e.0)
}

/// `-x`; null stays null.
pub fn negate(v: &Value) -> Result<Value, String> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::Number(n) => {
            if let Some(i) = n.as_i64().and_then(i64::checked_neg) {
                return Ok(Value::from(i));
            }
            let f = n.as_f64().ok_or("number out of range")?;
            crate::functions::number(-f).map_err(|e| e.0)
        }
        other => Err(format!("cannot negate {}", type_name(other))),
    }
}

/// Resolves a possibly negative index against a length.
pub fn resolve_index(len: usize, i: i64) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if i < 0 { len.checked_add(i)? } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

/// Turns slice bounds (negative counts from the end, clamped) into `start..end`.
pub fn slice_range(len: usize, start: Option<i64>, end: Option<i64>) -> (usize, usize) {
    let clamp = |i: i64| -> usize {
        if i < 0 {
            len.saturating_sub(usize::try_from(i.unsigned_abs()).unwrap_or(usize::MAX))
        } else {
            usize::try_from(i).unwrap_or(usize::MAX).min(len)
        }
    };
    let s = start.map_or(0, clamp);
    let e = end.map_or(len, clamp);
    (s, e.max(s))
}

/// `value[start:end]` on an array or a string (by characters).
pub fn slice<'a>(
    value: Cow<'a, Value>,
    start: Option<i64>,
    end: Option<i64>,
) -> Result<Cow<'a, Value>, String> {
    match value {
        Cow::Borrowed(Value::Null) | Cow::Owned(Value::Null) => Ok(Cow::Borrowed(&NULL)),
        Cow::Borrowed(Value::Array(items)) => {
            let (s, e) = slice_range(items.len(), start, end);
            Ok(Cow::Owned(Value::Array(items[s..e].to_vec())))
        }
        Cow::Owned(Value::Array(mut items)) => {
            let (s, e) = slice_range(items.len(), start, end);
            items.truncate(e);
            items.drain(..s);
            Ok(Cow::Owned(Value::Array(items)))
        }
        Cow::Borrowed(Value::String(text)) => {
            Ok(Cow::Owned(Value::String(slice_str(text, start, end))))
        }
        Cow::Owned(Value::String(text)) => {
            Ok(Cow::Owned(Value::String(slice_str(&text, start, end))))
        }
        other => Err(format!("cannot slice {}", type_name(&other))),
    }
}

fn slice_str(text: &str, start: Option<i64>, end: Option<i64>) -> String {
    let negative = start.is_some_and(|i| i < 0) || end.is_some_and(|i| i < 0);
    let len = if negative || end.is_none() {
        text.chars().count()
    } else {
        // Only the prefix matters; avoid counting a long string.
        end.map_or(0, |e| usize::try_from(e).unwrap_or(usize::MAX))
            .min(text.len())
    };
    let (s, e) = slice_range(len, start, end);
    text.chars().skip(s).take(e - s).collect()
}

/// An integer index or slice bound from a value.
pub fn as_index(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_numerically() {
        assert!(deep_eq(&json!(1), &json!(1.0)));
        assert!(deep_eq(&json!({"a": [1, 2]}), &json!({"a": [1.0, 2]})));
        assert!(!deep_eq(&json!(1), &json!("1")));
        assert_eq!(compare(BinaryOp::Lt, &json!(2), &json!(10)), Ok(true));
        assert_eq!(compare(BinaryOp::Lt, &json!("2"), &json!("10")), Ok(false));
        assert_eq!(compare(BinaryOp::Ge, &json!(null), &json!(1)), Ok(false));
    }

    #[test]
    fn integer_arithmetic_stays_integer() {
        let n = |v: Value| v.as_number().cloned().unwrap_or_else(|| Number::from(0));
        assert_eq!(
            number_op(BinaryOp::Div, &n(json!(6)), &n(json!(3))),
            Ok(json!(2))
        );
        assert_eq!(
            number_op(BinaryOp::Div, &n(json!(7)), &n(json!(2))),
            Ok(json!(3.5))
        );
        assert_eq!(
            number_op(BinaryOp::Add, &n(json!(0.5)), &n(json!(0.5))),
            Ok(json!(1))
        );
        assert!(number_op(BinaryOp::Rem, &n(json!(1)), &n(json!(0))).is_err());
        assert_eq!(
            number_op(BinaryOp::Add, &n(json!(i64::MAX)), &n(json!(1))),
            Ok(json!(9.223372036854776e18))
        );
    }

    #[test]
    fn slices_clamp_and_count_characters() {
        assert_eq!(slice_range(5, Some(1), None), (1, 5));
        assert_eq!(slice_range(5, Some(-2), None), (3, 5));
        assert_eq!(slice_range(5, Some(4), Some(2)), (4, 4));
        assert_eq!(slice_str("héllo", Some(0), Some(2)), "hé");
        assert_eq!(slice_str("héllo", Some(-3), None), "llo");
        assert_eq!(resolve_index(3, -1), Some(2));
        assert_eq!(resolve_index(3, 3), None);
        assert_eq!(resolve_index(3, -4), None);
    }
}
