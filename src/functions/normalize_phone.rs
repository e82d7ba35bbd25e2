use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use phonenumber::country::Id;
use phonenumber::{Mode, PhoneNumber};
use serde_json::Value;

use crate::functions::dates::quote;
use crate::functions::phone::{Fast, Numbering};
use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Prepared, Signature, arg,
};
use crate::types::Type;

/// `normalize_phone(s, region?)`: a phone number in E.164 form.
pub struct NormalizePhone;

/// Longer input is not a phone number; refusing it early bounds the parser's work.
const MAX_LEN: usize = 64;

fn region(code: &str) -> Result<Id, String> {
    code.trim()
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| format!("unknown region {code:?}: use a two-letter country code such as \"US\" or \"DE\""))
}

fn e164(number: &PhoneNumber) -> Option<String> {
    let mut out = String::new();
    write!(out, "{}", number.format().mode(Mode::E164)).ok()?;
    Some(out)
}

/// The phonenumber crate's answer: parse for the region, check, format.
fn with_crate(id: Id, text: &str) -> Option<String> {
    let number = phonenumber::parse(Some(id), text).ok()?;
    if !phonenumber::is_valid(&number) {
        return None;
    }
    e164(&number)
}

/// A constant region, prepared at compile time: its numbering plan compiled once for every
/// record (see `functions::phone`).
struct Region {
    id: Id,
    numbering: Option<Numbering>,
}

impl Region {
    fn new(code: &str) -> Result<Region, String> {
        let id = region(code)?;
        Ok(Region {
            id,
            numbering: Numbering::new(id.as_ref()),
        })
    }
}

impl Function for NormalizePhone {
    fn name(&self) -> &str {
        "normalize_phone"
    }
    fn category(&self) -> Category {
        Category::Identity
    }
    fn doc(&self) -> &'static str {
        "Parses a phone number as people type it (spaces, dashes, dots, parentheses, a leading \
         `+` or the region's international prefix such as `00`, `tel:` URIs) and returns it in E.164 form (`+14155550100`), using Google's \
         libphonenumber data. Numbers without a country code are read as numbers of `region` (a \
         two-letter country code, default `US`). A number that is not valid for its country is \
         an error; an extension is dropped."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::opt("region", Type::String),
            ],
            Type::String,
        )
        .fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a US number",
                source: "normalize_phone(phone)",
                record: r#"{"phone": "(415) 555-0132"}"#,
                result: r#""+14155550132""#,
            },
            Example {
                title: "a German number",
                source: r#"normalize_phone("030 901820", "DE")"#,
                record: "{}",
                result: r#""+4930901820""#,
            },
            Example {
                title: "an international number ignores the region",
                source: r#"normalize_phone("+44 20 7946 0958", "DE")"#,
                record: "{}",
                result: r#""+442079460958""#,
            },
            Example {
                title: "too short",
                source: r#"normalize_phone("555-01")"#,
                record: "{}",
                result: "error: not a valid phone number",
            },
        ]
    }
    fn prepare(&self, consts: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        match consts.get(1) {
            Some(Some(Value::String(code))) => Ok(Some(Arc::new(Region::new(code)?))),
            // The default region.
            None => Ok(Some(Arc::new(Region::new("US")?))),
            _ => Ok(None),
        }
    }
    fn call(&self, args: &[Cow<'_, Value>], cx: &CallContext<'_>) -> Result<Value, FnError> {
        let text = arg::str(args, 0)?;
        let invalid = || FnError(format!("not a valid phone number: {}", quote(text)));
        if text.len() > MAX_LEN {
            return Err(invalid());
        }
        let e164 = match (cx.prepared::<Region>(), arg::opt_str(args, 1)?) {
            (Some(r), _) => match r.numbering.as_ref().map(|n| n.e164(text)) {
                Some(Fast::Done(e164)) => e164,
                _ => with_crate(r.id, text),
            },
            (None, Some(code)) => with_crate(region(code).map_err(FnError)?, text),
            (None, None) => with_crate(Id::US, text),
        };
        e164.map(Value::String).ok_or_else(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, call_dynamic};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&NormalizePhone);
    }

    #[test]
    fn forms() {
        let p = |s: &str| call(&NormalizePhone, vec![json!(s)]);
        assert_eq!(p("415.555.0132"), Ok(json!("+14155550132")));
        assert_eq!(p("+1 415 555 0132 ext. 12"), Ok(json!("+14155550132")));
        assert_eq!(p("tel:+1-415-555-0132"), Ok(json!("+14155550132")));
        assert!(p("hello").is_err());
        assert!(p("").is_err());
        assert!(p(&"1".repeat(100)).is_err());
    }

    #[test]
    fn regions() {
        let p = |s: &str, r: &str| call_dynamic(&NormalizePhone, vec![json!(s), json!(r)]);
        assert_eq!(p("01512 3456789", "de"), Ok(json!("+4915123456789")));
        assert_eq!(p("0044 20 7946 0958", "DE"), Ok(json!("+442079460958")));
        assert!(p("4155550132", "XX").unwrap_err().0.starts_with("unknown region"));
        let e = call(&NormalizePhone, vec![json!("1"), json!("Germany")]).unwrap_err();
        assert!(e.0.starts_with("prepare: unknown region \"Germany\""));
    }
}
