//! Regular expressions for the `regex_*` functions: compiled once per call site when the
//! pattern is a literal, per call otherwise.

use std::borrow::Cow;
use std::sync::Arc;

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use super::{CallContext, FnError, Prepared};

/// Compiled programs larger than this are refused, so a rule cannot exhaust memory.
const SIZE_LIMIT: usize = 1 << 20;

/// Compiles a pattern (Rust `regex` syntax: no look-around or back-references, linear time).
pub fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regex {pattern:?}: {}", short(&e)))
}

/// The one-line cause of a regex error (the full text repeats the pattern with a caret).
fn short(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(text.trim())
        .to_string()
}

/// The prepared state for a literal pattern argument.
pub fn prepare(pattern: Option<&Value>) -> Result<Option<Prepared>, String> {
    match pattern {
        Some(Value::String(p)) => Ok(Some(Arc::new(compile(p)?))),
        _ => Ok(None),
    }
}

/// The regex compiled at prepare time, or `pattern` compiled now (not a literal).
pub fn for_call<'a>(cx: &'a CallContext<'_>, pattern: &str) -> Result<Cow<'a, Regex>, FnError> {
    match cx.prepared::<Regex>() {
        Some(re) => Ok(Cow::Borrowed(re)),
        None => compile(pattern).map(Cow::Owned).map_err(FnError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line() {
        let e = compile("(a").unwrap_err();
        assert_eq!(e, "invalid regex \"(a\": unclosed group");
        assert!(compile(r"\d+").is_ok());
    }
}
