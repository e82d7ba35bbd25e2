use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg, number};
use crate::types::Type;

/// `round(n, digits?)`: rounds half away from zero.
pub struct Round;

/// Digits beyond this do not change an `f64`.
const MAX_DIGITS: f64 = 15.0;

/// Rounds `n` to `digits` decimal places, half away from zero, on the decimal value `n` is
/// written as: `round(2.675, 2)` is 2.68 although the double nearest 2.675 is just below it.
fn round(n: f64, digits: i32) -> f64 {
    if digits == 0 {
        return n.round();
    }
    // Shifting the decimal point in the shortest text form avoids the error `n * 10^digits`
    // would add; `{}` never uses exponent notation for f64, so appending one is valid.
    let shifted: f64 = format!("{n}e{digits}").parse().unwrap_or(n);
    format!("{}e{}", shifted.round(), -digits)
        .parse()
        .unwrap_or(n)
}

impl Function for Round {
    fn name(&self) -> &str {
        "round"
    }
    fn category(&self) -> Category {
        Category::Number
    }
    fn doc(&self) -> &'static str {
        "Rounds to `digits` decimal places (default 0), halves away from zero \
         (`round(2.5)` is 3, `round(-2.5)` is -3). It rounds the decimal number as written, so \
         `round(2.675, 2)` is 2.68. A negative `digits` rounds to tens, hundreds, ...; a \
         fractional one is cut to a whole number, and values beyond ±15 act as ±15."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::Number),
                Param::opt("digits", Type::Number),
            ],
            Type::Number,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "to a whole number",
                source: "round(score)",
                record: r#"{"score": 79.5}"#,
                result: "80",
            },
            Example {
                title: "money",
                source: "round(amount, 2)",
                record: r#"{"amount": 2.675}"#,
                result: "2.68",
            },
            Example {
                title: "to hundreds",
                source: "round(1234, -2)",
                record: "{}",
                result: "1200",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let n = arg::num(args, 0)?;
        let digits = match arg::opt(args, 1) {
            Some(_) => arg::num(args, 1)?.trunc().clamp(-MAX_DIGITS, MAX_DIGITS) as i32,
            None => 0,
        };
        number(round(n, digits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Round);
    }

    fn r(n: Value, d: Value) -> Value {
        call(&Round, vec![n, d]).unwrap()
    }

    #[test]
    fn rounding() {
        assert_eq!(r(json!(2.5), json!(0)), json!(3));
        assert_eq!(r(json!(-2.5), json!(0)), json!(-3));
        assert_eq!(r(json!(1.005), json!(2)), json!(1.01));
        assert_eq!(r(json!(-1.005), json!(2)), json!(-1.01));
        assert_eq!(r(json!(0.1 + 0.2), json!(2)), json!(0.3));
        assert_eq!(r(json!(1.23456), json!(3)), json!(1.235));
        assert_eq!(r(json!(150), json!(-2)), json!(200));
        assert_eq!(r(json!(42), json!(2)), json!(42));
        assert_eq!(r(json!(1.5), json!(1.9)), json!(1.5));
        assert_eq!(r(json!(1e300), json!(2)), json!(1e300));
        assert_eq!(r(json!(1.25), json!(99)), json!(1.25));
        assert_eq!(r(json!(5e-324), json!(15)), json!(0));
        assert_eq!(call(&Round, vec![json!(0.4)]), Ok(json!(0)));
    }
}
