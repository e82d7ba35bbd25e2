use std::borrow::Cow;

use serde_json::Value;

use crate::functions::dates::{self, Format};
use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Prepared, Signature, arg,
};
use crate::types::Type;

/// `format_date(s, format)`: writes a date with a strftime pattern.
pub struct FormatDate;

impl Function for FormatDate {
    fn name(&self) -> &str {
        "format_date"
    }
    fn category(&self) -> Category {
        Category::Date
    }
    fn doc(&self) -> &'static str {
        "Reads a date or date-time as `parse_date` does without a format, and writes it with a \
         strftime `format` (`%Y-%m-%d`, `%d.%m.%Y %H:%M`, `%s` for Unix seconds, `%B` for the \
         English month name, ...). The result is in UTC; a calendar date counts as its midnight \
         UTC. A literal format is checked by `lint`; a computed invalid one is an error."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::new("format", Type::String),
            ],
            Type::String,
        )
        .fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a date for a US form",
                source: r#"format_date(start_date, "%m/%d/%Y")"#,
                record: r#"{"start_date": "2024-03-01"}"#,
                result: r#""03/01/2024""#,
            },
            Example {
                title: "epoch milliseconds (HubSpot date properties)",
                source: r#"format_date(closed_at, "%s000")"#,
                record: r#"{"closed_at": "2024-01-15T00:00:00Z"}"#,
                result: r#""1705276800000""#,
            },
            Example {
                title: "a readable date-time",
                source: r#"format_date("2024-01-15T12:30:00+02:00", "%e %B %Y, %H:%M UTC")"#,
                record: "{}",
                result: r#""15 January 2024, 10:30 UTC""#,
            },
        ]
    }
    fn prepare(&self, consts: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        Format::prepare(consts.get(1).copied().flatten())
    }
    fn call(&self, args: &[Cow<'_, Value>], cx: &CallContext<'_>) -> Result<Value, FnError> {
        let moment = dates::parse(arg::str(args, 0)?)?;
        let format = Format::for_call(cx, arg::str(args, 1)?)?;
        Ok(Value::String(format.format(moment.instant())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, call_dynamic};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&FormatDate);
    }

    #[test]
    fn formats() {
        let f = |s: &str, fmt: &str| call(&FormatDate, vec![json!(s), json!(fmt)]);
        assert_eq!(f("2024-01-15", "%H:%M"), Ok(json!("00:00")));
        assert_eq!(f("2024-01-15T10:30:00.5Z", "%S%.3f"), Ok(json!("00.500")));
        assert_eq!(f("2024-01-15", "%A"), Ok(json!("Monday")));
        assert!(f("soon", "%Y").unwrap_err().0.starts_with("not a date"));
        assert!(
            call_dynamic(&FormatDate, vec![json!("2024-01-15"), json!("%")]).is_err()
        );
    }
}
