//! JSONPath queries made of member names and wildcards only (`$.results[*]`, `$.id`,
//! `$.properties.email`): most of what kits ask of every result of a batch. They are run
//! directly over the value; the general evaluator builds every match's path as text, a few
//! allocations per result.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Step {
    /// `.name`: the member of an object.
    Name(String),
    /// `[*]` or `.*`: every element of an array, every member value of an object.
    All,
}

/// The steps of `text` when it is `$` followed by `.name`, `.*` and `[*]` only (names of
/// ASCII letters, digits and `_`, not starting with a digit); anything else is left to the
/// general evaluator.
pub(crate) fn parse(text: &str) -> Option<Vec<Step>> {
    let mut rest = text.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[*]").or_else(|| rest.strip_prefix(".*")) {
            steps.push(Step::All);
            rest = r;
            continue;
        }
        let r = rest.strip_prefix('.')?;
        let end = r
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(r.len());
        let name = &r[..end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        steps.push(Step::Name(name.to_string()));
        rest = &r[end..];
    }
    Some(steps)
}

/// Every node the steps select from `value`, in document order (as RFC 9535 orders them).
pub(crate) fn select<'v>(steps: &[Step], value: &'v Value, out: &mut Vec<&'v Value>) {
    match steps.split_first() {
        None => out.push(value),
        Some((Step::Name(n), rest)) => {
            if let Some(child) = value.as_object().and_then(|m| m.get(n)) {
                select(rest, child, out);
            }
        }
        Some((Step::All, rest)) => match value {
            Value::Array(items) => items.iter().for_each(|c| select(rest, c, out)),
            Value::Object(m) => m.values().for_each(|c| select(rest, c, out)),
            _ => {}
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_names_and_wildcards_are_simple() {
        assert_eq!(
            parse("$.results[*].id"),
            Some(vec![
                Step::Name("results".into()),
                Step::All,
                Step::Name("id".into())
            ])
        );
        assert_eq!(parse("$.*"), Some(vec![Step::All]));
        assert_eq!(parse("$"), Some(vec![]));
        for general in [
            "$..id",
            "$.a[0]",
            "$['a']",
            "$.a[?@.b]",
            "$.1a",
            "$.a.",
            "results",
            "$.a b",
            "$.length()",
        ] {
            assert_eq!(parse(general), None, "{general}");
        }
    }

    /// Both evaluators select the same nodes in the same order.
    #[test]
    fn agrees_with_the_general_evaluator() {
        let docs = [
            json!({"results": [{"id": "1", "properties": {"email": "a@x.com"}, "new": true},
                               {"id": 2, "properties": {"email": null}}, 7, [1, 2]],
                   "errors": [], "id": null, "nested": {"b": {"c": [3]}, "a": 1}}),
            json!([{"id": "x"}, {"id": "y"}]),
            json!("text"),
            json!(null),
        ];
        let queries = [
            "$",
            "$.results[*]",
            "$.results[*].id",
            "$.results[*].properties.email",
            "$.results.*",
            "$.nested.*",
            "$.nested[*][*]",
            "$[*].id",
            "$.id",
            "$.missing",
            "$.errors[*]",
            "$.*.*",
        ];
        for doc in &docs {
            for q in queries {
                let Some(steps) = parse(q) else {
                    panic!("{q} is simple")
                };
                let mut fast = Vec::new();
                select(&steps, doc, &mut fast);
                let Ok(general) = jsonpath_rust::parser::parse_json_path(q) else {
                    panic!("{q} parses")
                };
                let slow: Vec<&Value> = jsonpath_rust::query::js_path_process(&general, doc)
                    .map(|found| found.into_iter().map(|r| r.val()).collect())
                    .unwrap_or_default();
                assert_eq!(fast, slow, "{q} over {doc}");
            }
        }
    }
}
