//! JSONPath queries (`$.a.b`, `$..id`, `$.items[?@.qty > 1]`), parsed once with
//! `jsonpath-rust` and run against the record.
//!
//! A singular query (only names and indices) yields the value it selects, or null; it is walked
//! here without allocating. Any other query yields an array of all matches.

use std::borrow::Cow;

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use serde_json::Value;

use super::value::{NULL, get_field, resolve_index};

/// A compiled query.
#[derive(Debug)]
pub(crate) enum JsonPath {
    Singular(Box<[Step]>),
    Query(Box<JpQuery>),
}

#[derive(Debug)]
pub(crate) enum Step {
    Name(String),
    Index(i64),
}

/// Why a query text was rejected: a message and, when known, the byte offset inside the query.
pub(crate) struct JsonPathError {
    pub message: String,
    pub offset: Option<usize>,
}

impl JsonPath {
    pub fn compile(text: &str) -> Result<JsonPath, JsonPathError> {
        let query = jsonpath_rust::parser::parse_json_path(text).map_err(|e| convert(text, e))?;
        let steps: Option<Vec<Step>> = query
            .segments
            .iter()
            .map(|s| match s {
                Segment::Selector(Selector::Name(n)) => Some(Step::Name(n.clone())),
                Segment::Selector(Selector::Index(i)) => Some(Step::Index(*i)),
                _ => None,
            })
            .collect();
        Ok(match steps {
            Some(steps) => JsonPath::Singular(steps.into_boxed_slice()),
            None => JsonPath::Query(Box::new(query)),
        })
    }

    pub fn is_singular(&self) -> bool {
        matches!(self, JsonPath::Singular(_))
    }

    pub fn run<'a>(&'a self, record: &'a Value) -> Result<Cow<'a, Value>, String> {
        match self {
            JsonPath::Singular(steps) => {
                let mut cur = record;
                for step in steps.iter() {
                    let next = match (step, cur) {
                        (Step::Name(n), Value::Object(m)) => get_field(m, n),
                        (Step::Index(i), Value::Array(a)) => {
                            resolve_index(a.len(), *i).and_then(|i| a.get(i))
                        }
                        _ => None,
                    };
                    match next {
                        Some(v) => cur = v,
                        None => return Ok(Cow::Borrowed(&NULL)),
                    }
                }
                Ok(Cow::Borrowed(cur))
            }
            JsonPath::Query(q) => {
                let found = jsonpath_rust::query::js_path_process(q, record)
                    .map_err(|e| format!("JSONPath query failed: {e}"))?;
                Ok(Cow::Owned(Value::Array(
                    found.into_iter().map(|r| r.val.clone()).collect(),
                )))
            }
        }
    }
}

pub(crate) fn convert(
    text: &str,
    err: jsonpath_rust::parser::errors::JsonPathError,
) -> JsonPathError {
    use jsonpath_rust::parser::errors::JsonPathError as E;
    match err {
        E::PestError(pest_err) => {
            let offset = match pest_err.location {
                pest::error::InputLocation::Pos(p) => p,
                pest::error::InputLocation::Span((s, _)) => s,
            };
            let found = text
                .get(offset..)
                .and_then(|r| r.chars().next())
                .map_or("end of the query".to_string(), |c| format!("`{c}`"));
            JsonPathError {
                message: format!("invalid JSONPath query: unexpected {found}"),
                offset: Some(offset),
            }
        }
        other => JsonPathError {
            message: format!("invalid JSONPath query: {other}"),
            offset: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(path: &str, record: &Value) -> Value {
        match JsonPath::compile(path) {
            Ok(q) => q.run(record).map(Cow::into_owned).unwrap_or(Value::Null),
            Err(e) => Value::String(e.message),
        }
    }

    #[test]
    fn singular_and_multi() {
        let r = json!({"user": {"emails": ["a@x", "b@x"]}, "items": [{"sku": "A"}, {"sku": "B"}]});
        assert_eq!(run("$.user.emails[0]", &r), json!("a@x"));
        assert_eq!(run("$.user.emails[-1]", &r), json!("b@x"));
        assert_eq!(run("$.user.missing", &r), json!(null));
        assert_eq!(run("$.items[*].sku", &r), json!(["A", "B"]));
        assert_eq!(run("$", &r), r);
        assert!(JsonPath::compile("$.items[").is_err());
    }
}
