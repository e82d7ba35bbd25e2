use std::borrow::Cow;

use chrono::{Days, TimeDelta};
use serde_json::Value;

use crate::functions::dates::{self, Moment};
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `add_days(date, n)`: moves a date by whole days.
pub struct AddDays;

const OUT_OF_RANGE: &str = "the resulting date is out of range";

impl Function for AddDays {
    fn name(&self) -> &str {
        "add_days"
    }
    fn category(&self) -> Category {
        Category::Date
    }
    fn doc(&self) -> &'static str {
        "Adds `days` (a whole number, negative to go back) to a date or date-time read as \
         `parse_date` does without a format. A calendar date gives a calendar date, a date-time \
         an RFC 3339 date-time in UTC (days of exactly 24 hours). A fractional `days` is an \
         error."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::new("days", Type::Number),
            ],
            Type::String,
        )
        .fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a trial end date",
                source: "add_days(signup_date, 30)",
                record: r#"{"signup_date": "2024-01-15"}"#,
                result: r#""2024-02-14""#,
            },
            Example {
                title: "a week before an instant",
                source: "add_days(now(), -7)",
                record: "{}",
                result: r#""2024-01-08T10:30:00Z""#,
            },
            Example {
                title: "leap years are known",
                source: r#"add_days("2024-02-28", 1)"#,
                record: "{}",
                result: r#""2024-02-29""#,
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let moment = dates::parse(arg::str(args, 0)?)?;
        let days = arg::int(args, 1)?;
        let out_of_range = || FnError(OUT_OF_RANGE.into());
        let moved = match moment {
            Moment::Date(d) => {
                let step = Days::new(days.unsigned_abs());
                let d = if days >= 0 {
                    d.checked_add_days(step)
                } else {
                    d.checked_sub_days(step)
                };
                Moment::Date(d.ok_or_else(out_of_range)?)
            }
            Moment::Instant(t) => {
                let delta = TimeDelta::try_days(days).ok_or_else(out_of_range)?;
                Moment::Instant(t.checked_add_signed(delta).ok_or_else(out_of_range)?)
            }
        };
        Ok(moved.to_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&AddDays);
    }

    #[test]
    fn edges() {
        let a = |s: &str, n: Value| call(&AddDays, vec![json!(s), n]);
        assert_eq!(a("2024-03-01", json!(-1)), Ok(json!("2024-02-29")));
        assert_eq!(
            a("2024-01-15T23:00:00+00:00", json!(1)),
            Ok(json!("2024-01-16T23:00:00Z"))
        );
        assert_eq!(a("2024-01-15", json!(0)), Ok(json!("2024-01-15")));
        assert!(a("2024-01-15", json!(1.5)).unwrap_err().0.contains("whole number"));
        assert_eq!(a("2024-01-15", json!(1e15)).unwrap_err().0, OUT_OF_RANGE);
        assert_eq!(
            a("2024-01-15T00:00:00Z", json!(-1e15)).unwrap_err().0,
            OUT_OF_RANGE
        );
    }
}
