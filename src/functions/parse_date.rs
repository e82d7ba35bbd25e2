use std::borrow::Cow;

use serde_json::Value;

use crate::functions::dates::{self, Format};
use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Prepared, Signature, arg,
};
use crate::types::Type;

/// `parse_date(s, format?)`: a date string in canonical form.
pub struct ParseDate;

impl Function for ParseDate {
    fn name(&self) -> &str {
        "parse_date"
    }
    fn category(&self) -> Category {
        Category::Date
    }
    fn doc(&self) -> &'static str {
        "Reads a date or date-time and returns it in canonical form: `YYYY-MM-DD` when the input \
         has no time of day, otherwise RFC 3339 in UTC (`2024-01-15T10:30:00Z`, with a fraction \
         only when the input had one). Without `format`, accepts `YYYY-MM-DD`, RFC 3339 (`T` or \
         space), offsets written `+0200` (Salesforce), date-times without offset, and RFC 2822 \
         (`Mon, 15 Jan 2024 10:30:00 +0000`). With `format`, reads the input with that strftime \
         pattern (`%d/%m/%Y`, `%s` for Unix seconds, ...). A date-time without an offset is \
         taken as UTC, never as the machine's local time. Input that does not parse is an \
         error; a literal format is checked by `lint`."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::opt("format", Type::String),
            ],
            Type::String,
        )
        .fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "an offset is converted to UTC",
                source: "parse_date(created_at)",
                record: r#"{"created_at": "2024-01-15T12:30:00+02:00"}"#,
                result: r#""2024-01-15T10:30:00Z""#,
            },
            Example {
                title: "a European date",
                source: r#"parse_date(birthday, "%d/%m/%Y")"#,
                record: r#"{"birthday": "09/12/1815"}"#,
                result: r#""1815-12-09""#,
            },
            Example {
                title: "Unix seconds",
                source: r#"parse_date("1705314600", "%s")"#,
                record: "{}",
                result: r#""2024-01-15T10:30:00Z""#,
            },
            Example {
                title: "not a date",
                source: "parse_date(created_at)",
                record: r#"{"created_at": "last Tuesday"}"#,
                result: r#"error: not a date: "last Tuesday""#,
            },
        ]
    }
    fn prepare(&self, consts: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        Format::prepare(consts.get(1).copied().flatten())
    }
    fn call(&self, args: &[Cow<'_, Value>], cx: &CallContext<'_>) -> Result<Value, FnError> {
        let s = arg::str(args, 0)?;
        let moment = match arg::opt_str(args, 1)? {
            Some(fmt) => Format::for_call(cx, fmt)?.parse(s.trim())?,
            None => dates::parse(s)?,
        };
        Ok(moment.to_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, call_dynamic};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&ParseDate);
    }

    #[test]
    fn with_formats() {
        let p = |s: &str, f: &str| call(&ParseDate, vec![json!(s), json!(f)]);
        assert_eq!(
            p("15.01.2024 10:30", "%d.%m.%Y %H:%M"),
            Ok(json!("2024-01-15T10:30:00Z"))
        );
        assert_eq!(
            p("01/15/2024 08:30 -0500", "%m/%d/%Y %H:%M %z"),
            Ok(json!("2024-01-15T13:30:00Z"))
        );
        assert!(p("2024-01-15", "%d/%m/%Y").unwrap_err().0.contains("does not match"));
        assert!(p("10:30", "%H:%M").unwrap_err().0.contains("full date"));
    }

    #[test]
    fn invalid_formats() {
        let e = call(&ParseDate, vec![json!("x"), json!("%Y-%Q")]).unwrap_err();
        assert_eq!(e.0, "prepare: invalid date format \"%Y-%Q\"");
        let e = call_dynamic(&ParseDate, vec![json!("x"), json!("%Y-%Q")]).unwrap_err();
        assert_eq!(e.0, "invalid date format \"%Y-%Q\"");
    }

    #[test]
    fn default_forms() {
        let p = |s: &str| call(&ParseDate, vec![json!(s)]);
        assert_eq!(p("2024-01-15"), Ok(json!("2024-01-15")));
        assert_eq!(p("2024-01-15 10:30:00"), Ok(json!("2024-01-15T10:30:00Z")));
        assert!(p("").is_err());
    }
}
