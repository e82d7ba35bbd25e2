use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Prepared, Signature, arg,
};
use crate::types::Type;

/// `pad_start(s, width, fill?)`: pads a string on the left to a minimum width.
pub struct PadStart;

/// Longest result `pad_start` builds, so a bad width cannot allocate gigabytes.
const MAX_WIDTH: f64 = 10_000.0;

impl Function for PadStart {
    fn name(&self) -> &str {
        "pad_start"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Prepends `fill` (default: a space; repeated and cut as needed) until the string is \
         `width` characters long, e.g. for zero-padded ids. A string already that long is \
         returned unchanged, never cut. Widths above 10000 are treated as 10000; an empty `fill` \
         is a lint error when literal and leaves the string unchanged otherwise."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::new("width", Type::Number),
                Param::opt("fill", Type::String),
            ],
            Type::String,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a zero-padded employee number",
                source: r#"pad_start(to_string(employee_id), 6, "0")"#,
                record: r#"{"employee_id": 4217}"#,
                result: r#""004217""#,
            },
            Example {
                title: "already wide enough",
                source: r#"pad_start("1234567", 6, "0")"#,
                record: "{}",
                result: r#""1234567""#,
            },
            Example {
                title: "spaces by default",
                source: r#"pad_start("7", 3)"#,
                record: "{}",
                result: r#""  7""#,
            },
        ]
    }
    fn prepare(&self, consts: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        if let Some(Some(Value::String(fill))) = consts.get(2)
            && fill.is_empty()
        {
            return Err("fill must not be empty".to_string());
        }
        Ok(None)
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let s = arg::str(args, 0)?;
        let width = arg::num(args, 1)?.clamp(0.0, MAX_WIDTH) as usize;
        let fill = arg::opt_str(args, 2)?.unwrap_or(" ");
        let len = s.chars().count();
        if len >= width || fill.is_empty() {
            return Ok(Value::String(s.to_string()));
        }
        let mut out: String = fill.chars().cycle().take(width - len).collect();
        out.push_str(s);
        Ok(Value::String(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, call_dynamic};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&PadStart);
    }

    #[test]
    fn padding() {
        let p = |s: &str, w: Value, f: &str| {
            call_dynamic(&PadStart, vec![json!(s), w, json!(f)]).unwrap()
        };
        assert_eq!(p("5", json!(4), "ab"), json!("aba5"));
        assert_eq!(p("é", json!(3), "0"), json!("00é"));
        assert_eq!(p("x", json!(-3), "0"), json!("x"));
        assert_eq!(p("x", json!(2), ""), json!("x"));
        assert_eq!(p("x", json!(1e12), "0").as_str().map(str::len), Some(10_000));
    }

    #[test]
    fn empty_literal_fill_is_a_prepare_error() {
        let e = call(&PadStart, vec![json!("x"), json!(3), json!("")]).unwrap_err();
        assert_eq!(e.0, "prepare: fill must not be empty");
    }
}
