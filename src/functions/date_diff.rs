use std::borrow::Cow;

use serde_json::Value;

use crate::functions::dates;
use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Prepared, Signature, arg,
};
use crate::types::Type;

/// `date_diff(start, end, unit?)`: whole units from one date to another.
pub struct DateDiff;

/// Seconds in a unit, for the unit names `date_diff` accepts.
fn unit_seconds(unit: &str) -> Result<i64, String> {
    Ok(match unit {
        "weeks" => 7 * 86_400,
        "days" => 86_400,
        "hours" => 3_600,
        "minutes" => 60,
        "seconds" => 1,
        _ => {
            return Err(format!(
                "unknown unit {unit:?}: use weeks, days, hours, minutes or seconds"
            ));
        }
    })
}

impl Function for DateDiff {
    fn name(&self) -> &str {
        "date_diff"
    }
    fn category(&self) -> Category {
        Category::Date
    }
    fn doc(&self) -> &'static str {
        "The number of whole `unit`s from `start` to `end` (negative when `end` is earlier), \
         counting down toward zero: 47 hours are 1 day. Both are read as `parse_date` does \
         without a format; a calendar date counts as its midnight UTC. `unit` is `days` \
         (default), `weeks`, `hours`, `minutes` or `seconds`; an unknown literal unit is a \
         lint error."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("start", Type::String),
                Param::new("end", Type::String),
                Param::opt("unit", Type::String),
            ],
            Type::Number,
        )
        .fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "days since the last contact",
                source: "date_diff(last_contacted, now())",
                record: r#"{"last_contacted": "2024-01-01T09:00:00Z"}"#,
                result: "14",
            },
            Example {
                title: "hours, negative when end is earlier",
                source: r#"date_diff("2024-01-15", "2024-01-14T12:00:00Z", "hours")"#,
                record: "{}",
                result: "-12",
            },
            Example {
                title: "an unknown unit",
                source: "date_diff(a, b, unit)",
                record: r#"{"a": "2024-01-01", "b": "2024-02-01", "unit": "months"}"#,
                result: r#"error: unknown unit "months""#,
            },
        ]
    }
    fn prepare(&self, consts: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        if let Some(Some(Value::String(unit))) = consts.get(2) {
            unit_seconds(unit)?;
        }
        Ok(None)
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let start = dates::parse(arg::str(args, 0)?)?.instant();
        let end = dates::parse(arg::str(args, 1)?)?.instant();
        let unit = unit_seconds(arg::opt_str(args, 2)?.unwrap_or("days")).map_err(FnError)?;
        // Whole seconds first: sub-second parts never make up a whole unit of their own.
        let seconds = (end - start).num_seconds();
        Ok(Value::from(seconds / unit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::call;
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&DateDiff);
    }

    #[test]
    fn units() {
        let d = |a: &str, b: &str, u: &str| call(&DateDiff, vec![json!(a), json!(b), json!(u)]);
        assert_eq!(d("2024-01-01", "2024-01-02T23:00:00Z", "days"), Ok(json!(1)));
        assert_eq!(d("2024-01-02T23:00:00Z", "2024-01-01", "days"), Ok(json!(-1)));
        assert_eq!(d("2024-01-01", "2024-01-22", "weeks"), Ok(json!(3)));
        assert_eq!(d("2024-01-01", "2024-01-01T00:01:30Z", "seconds"), Ok(json!(90)));
        assert_eq!(d("2024-01-01", "2024-01-01T00:01:30Z", "minutes"), Ok(json!(1)));
        assert_eq!(call(&DateDiff, vec![json!("2024-01-01"), json!("2025-01-01")]), Ok(json!(366)));
    }

    #[test]
    fn literal_unit_is_checked() {
        let e = call(&DateDiff, vec![json!("2024-01-01"), json!("2024-01-01"), json!("fortnights")]);
        assert!(e.unwrap_err().0.starts_with("prepare: unknown unit \"fortnights\""));
    }
}
