//! Date parsing and formatting shared by the date functions.
//!
//! A date value is a string: `YYYY-MM-DD` for a calendar date, RFC 3339 in UTC
//! (`2024-01-15T10:30:00Z`) for an instant. Inputs without an offset are taken as UTC, so the
//! same record always gives the same result whatever the machine's time zone.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::{CallContext, FnError, Prepared};

/// A parsed date value: a calendar date or an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    Date(NaiveDate),
    Instant(DateTime<Utc>),
}

impl Moment {
    /// The canonical string: `YYYY-MM-DD` or RFC 3339 in UTC (fractional seconds only when
    /// present).
    pub fn to_value(self) -> Value {
        Value::String(match self {
            Moment::Date(d) => d.format("%Y-%m-%d").to_string(),
            Moment::Instant(t) => rfc3339(t),
        })
    }

    /// The instant; a calendar date is its midnight UTC.
    pub fn instant(self) -> DateTime<Utc> {
        match self {
            Moment::Date(d) => d.and_time(chrono::NaiveTime::MIN).and_utc(),
            Moment::Instant(t) => t,
        }
    }
}

/// RFC 3339 in UTC with a `Z`, e.g. `2024-01-15T10:30:00Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Naive date-times accepted without a format, all taken as UTC.
const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
];

/// Parses the forms business systems commonly send: `2024-01-15`, RFC 3339
/// (`2024-01-15T10:30:00+02:00`), the same with a `+0200` offset (Salesforce), without an
/// offset (UTC), and RFC 2822 (`Mon, 15 Jan 2024 10:30:00 +0000`).
pub fn parse(text: &str) -> Result<Moment, FnError> {
    let text = text.trim();
    // RFC 3339 first: the common form, parsed without interpreting a format string. No text
    // is both a date-time and a bare date, so the order does not change any result.
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(Moment::Instant(t.with_timezone(&Utc)));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(Moment::Date(d));
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Ok(Moment::Instant(t.with_timezone(&Utc)));
    }
    for fmt in NAIVE_FORMATS {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, fmt) {
            return Ok(Moment::Instant(t.and_utc()));
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(text) {
        return Ok(Moment::Instant(t.with_timezone(&Utc)));
    }
    Err(FnError(format!("not a date: {}", quote(text))))
}

/// A compiled strftime format.
#[derive(Clone)]
pub struct Format(pub Vec<Item<'static>>);

impl Format {
    pub fn compile(fmt: &str) -> Result<Format, String> {
        StrftimeItems::new(fmt)
            .parse_to_owned()
            .map(Format)
            .map_err(|_| format!("invalid date format {fmt:?}"))
    }

    /// The format the call site compiled at prepare time (a literal format), or `fmt`
    /// compiled now.
    pub fn for_call<'a>(cx: &'a CallContext<'_>, fmt: &str) -> Result<Cow<'a, Format>, FnError> {
        match cx.prepared::<Format>() {
            Some(f) => Ok(Cow::Borrowed(f)),
            None => Format::compile(fmt).map(Cow::Owned).map_err(FnError),
        }
    }

    /// The prepared state for a literal format argument (`None` when not a literal).
    pub fn prepare(fmt: Option<&Value>) -> Result<Option<Prepared>, String> {
        match fmt {
            Some(Value::String(s)) => Ok(Some(Arc::new(Format::compile(s)?))),
            _ => Ok(None),
        }
    }

    /// Parses `text` with this format: an instant when it has a time (no offset: UTC), else
    /// a calendar date.
    pub fn parse(&self, text: &str) -> Result<Moment, FnError> {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, text, self.0.iter())
            .map_err(|e| FnError(format!("{} does not match the format: {e}", quote(text))))?;
        if let Ok(t) = parsed.to_datetime() {
            return Ok(Moment::Instant(t.with_timezone(&Utc)));
        }
        if let Ok(t) = parsed.to_naive_datetime_with_offset(0) {
            return Ok(Moment::Instant(t.and_utc()));
        }
        parsed
            .to_naive_date()
            .map(Moment::Date)
            .map_err(|_| FnError(format!("{} does not contain a full date", quote(text))))
    }

    pub fn format(&self, t: DateTime<Utc>) -> Result<String, FnError> {
        let mut out = String::new();
        write!(out, "{}", t.format_with_items(self.0.iter()))
            .map_err(|_| FnError("the date cannot be written in this format".into()))?;
        Ok(out)
    }
}

/// Quotes a value for an error message, cut short so a huge field does not flood the log.
pub fn quote(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut:?}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(text: &str) -> String {
        match parse(text) {
            Ok(m) => m.to_value().as_str().unwrap_or_default().to_string(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn parses_common_forms() {
        assert_eq!(show("2024-01-15"), "2024-01-15");
        assert_eq!(show(" 2024-01-15T10:30:00Z "), "2024-01-15T10:30:00Z");
        assert_eq!(show("2024-01-15T12:30:00+02:00"), "2024-01-15T10:30:00Z");
        assert_eq!(show("2024-01-15 12:30:00+02:00"), "2024-01-15T10:30:00Z");
        assert_eq!(show("2024-01-15t10:30:00z"), "2024-01-15T10:30:00Z");
        assert_eq!(show("2024-01-15T10:30:00.250Z"), "2024-01-15T10:30:00.250Z");
        assert_eq!(show("2024-01-15T10:30:00.000+0000"), "2024-01-15T10:30:00Z");
        assert_eq!(show("2024-01-15 10:30:00"), "2024-01-15T10:30:00Z");
        assert_eq!(show("2024-01-15T10:30"), "2024-01-15T10:30:00Z");
        assert_eq!(
            show("Mon, 15 Jan 2024 10:30:00 +0000"),
            "2024-01-15T10:30:00Z"
        );
        assert!(show("2024-02-30").starts_with("error: not a date"));
        assert!(show("yesterday").starts_with("error"));
    }

    #[test]
    fn formats_parse_dates_and_instants() {
        let f = Format::compile("%d/%m/%Y").unwrap();
        assert_eq!(
            f.parse("15/01/2024").unwrap(),
            Moment::Date(NaiveDate::from_ymd_opt(2024, 1, 15).unwrap())
        );
        let f = Format::compile("%s").unwrap();
        assert_eq!(
            rfc3339(f.parse("1705314600").unwrap().instant()),
            "2024-01-15T10:30:00Z"
        );
        assert!(Format::compile("%Q").is_err());
        assert!(Format::compile("%H:%M").unwrap().parse("10:30").is_err());
    }

    #[test]
    fn quote_cuts_long_text() {
        assert_eq!(quote("ab"), "\"ab\"");
        assert!(quote(&"x".repeat(100)).ends_with("\"..."));
    }
}
