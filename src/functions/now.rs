use std::borrow::Cow;

use chrono::SecondsFormat;
use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Signature};
use crate::types::Type;

/// `now()`: the current instant, from the engine's clock.
pub struct Now;

impl Function for Now {
    fn name(&self) -> &str {
        "now"
    }
    fn category(&self) -> Category {
        Category::Date
    }
    fn doc(&self) -> &'static str {
        "The current instant as RFC 3339 in UTC, to the second (`2024-01-15T10:30:00Z`). It comes \
         from the engine's clock, which tests, `rulebridge test` and examples fix at \
         2024-01-15T10:30:00Z, so results stay reproducible. A payload field computed from it \
         alone (`now()`, `format_date(now(), \"%Y-%m-%d\")`) is a time stamp: the state \
         store's change detection leaves it out, so a record whose other fields are as last \
         written stays `unchanged`. One that also reads the record, such as \
         `date_diff(signed_up, now())`, is compared."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![], Type::String)
    }
    fn reads_clock(&self) -> bool {
        true
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a sync timestamp (the test clock)",
                source: "now()",
                record: "{}",
                result: r#""2024-01-15T10:30:00Z""#,
            },
            Example {
                title: "today's date",
                source: r#"format_date(now(), "%Y-%m-%d")"#,
                record: "{}",
                result: r#""2024-01-15""#,
            },
        ]
    }
    fn call(&self, _args: &[Cow<'_, Value>], cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(Value::String(
            cx.clock.now().to_rfc3339_opts(SecondsFormat::Secs, true),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::FixedClock;
    use chrono::DateTime;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Now);
    }

    #[test]
    fn uses_the_clock_to_the_second() {
        let clock = FixedClock(DateTime::from_timestamp(1_000_000_000, 999_000_000).unwrap());
        let cx = CallContext {
            clock: &clock,
            prepared: None,
        };
        assert_eq!(
            Now.call(&[], &cx),
            Ok(Value::String("2001-09-09T01:46:40Z".into()))
        );
    }
}
