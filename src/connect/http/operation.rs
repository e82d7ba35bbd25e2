//! Rendering an operation's compiled templates (see [`crate::plan::provider`]) over one
//! request's values, and reading ids out of responses.
//!
//! A body string that is exactly one `{{ expression }}` stands for the expression's JSON value
//! (an object, an array, a number), not its text: with `body: { properties: "{{ payload }}" }`
//! the payload object is sent. Values written into a path are percent-encoded as one path
//! segment each.

use minijinja::Environment;
use serde_json::Value;

use super::context::{Context, Part};
use crate::connect::{ConnectError, ErrorKind};
use crate::plan::provider::{Body, Templates, Text};

impl Text {
    /// Whether the rendered text may hold a secret.
    pub(crate) fn reads_secrets(&self) -> bool {
        matches!(self, Text::Template { secret: true, .. })
    }
}

impl Templates {
    pub(crate) fn render_text(&self, t: &Text, cx: &Context<'_>) -> Result<String, ConnectError> {
        match t {
            Text::Literal(s) => Ok(s.clone()),
            Text::Template { name, target, .. } => render(self.env(*target), name, cx),
        }
    }

    /// Renders a body: values the context borrows stay borrowed, so a batch of payloads is
    /// serialized from where it lies.
    pub(crate) fn render_body<'a>(
        &'a self,
        b: &'a Body,
        cx: &Context<'a>,
    ) -> Result<Part<'a>, ConnectError> {
        Ok(match b {
            Body::Literal(v) => Part::Json(v),
            Body::Lookup(path) => cx.lookup(path),
            Body::Expr(name) => {
                let text = render(&self.plain, name, cx)?;
                Part::Owned(serde_json::from_str(&text).map_err(|e| {
                    ConnectError::new(
                        ErrorKind::Fatal,
                        format!("template did not produce JSON: {e}"),
                    )
                })?)
            }
            Body::Text(name) => Part::Owned(Value::String(render(&self.plain, name, cx)?)),
            Body::Array(items) => Part::List(
                items
                    .iter()
                    .map(|i| self.render_body(i, cx))
                    .collect::<Result<_, _>>()?,
            ),
            Body::Object(fields) => Part::Fields(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.as_str(), self.render_body(v, cx)?)))
                    .collect::<Result<_, ConnectError>>()?,
            ),
        })
    }
}

fn render(
    env: &Environment<'static>,
    name: &str,
    cx: &Context<'_>,
) -> Result<String, ConnectError> {
    let template = env
        .get_template(name)
        .map_err(|e| ConnectError::new(ErrorKind::Fatal, jinja_message(&e)))?;
    template.render(cx.jinja()).map_err(|e| {
        ConnectError::new(
            ErrorKind::Fatal,
            format!("template error: {}", jinja_message(&e)),
        )
    })
}

fn jinja_message(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// An id as text: strings as they are, numbers written out; anything else is no id.
pub(crate) fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::provider::{Target, lookup_path, single_expression};
    use serde_json::json;

    static NO_VARIABLES: std::sync::LazyLock<serde_json::Map<String, Value>> =
        std::sync::LazyLock::new(serde_json::Map::new);

    fn cx(v: Value) -> Context<'static> {
        let mut cx = Context::new(&NO_VARIABLES);
        if let Value::Object(m) = v {
            for (k, v) in m {
                cx = cx.with(k, Part::Owned(v));
            }
        }
        cx
    }

    #[test]
    fn single_expressions_keep_their_json_value() {
        let mut t = Templates::default();
        let Ok(n) = t.add("{{ (payload.n + 1) | __rulebridge_json }}", Target::Plain) else {
            panic!()
        };
        let Ok(s) = t.add("id {{ id }}", Target::Plain) else {
            panic!()
        };
        assert_eq!(single_expression("{{ payload }}"), Some("payload"));
        let Some(path) = lookup_path("payload") else {
            panic!()
        };
        let body = Body::Object(vec![
            ("properties".into(), Body::Lookup(path)),
            ("n".into(), Body::Expr(n)),
            ("s".into(), Body::Text(s)),
            ("k".into(), Body::Literal(json!(3))),
        ]);
        let c = cx(json!({"payload": {"a": "x", "n": 1}, "id": 7}));
        let out = t
            .render_body(&body, &c)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::to_value(b).map_err(|e| e.to_string()));
        assert_eq!(
            out,
            Ok(json!({"properties": {"a": "x", "n": 1}, "n": 2, "s": "id 7", "k": 3}))
        );
    }

    #[test]
    fn path_values_are_encoded() {
        let mut t = Templates::default();
        let Ok(name) = t.add("/contacts/{{ id }}/x", Target::Path) else {
            panic!()
        };
        let p = Text::Template {
            name,
            target: Target::Path,
            secret: false,
        };
        let c = cx(json!({"id": "a b/c?d"}));
        assert_eq!(
            t.render_text(&p, &c).ok().as_deref(),
            Some("/contacts/a%20b%2Fc%3Fd/x")
        );
    }

    #[test]
    fn soql_filter() {
        let mut t = Templates::default();
        let Ok(name) = t.add("Email = '{{ key | soql }}'", Target::Plain) else {
            panic!()
        };
        let q = Text::Template {
            name,
            target: Target::Plain,
            secret: false,
        };
        let c = cx(json!({"key": "o'brien\\x@y.com"}));
        assert_eq!(
            t.render_text(&q, &c).ok().as_deref(),
            Some("Email = 'o\\'brien\\\\x@y.com'")
        );
        assert_eq!(id_text(&json!(12)), Some("12".into()));
    }
}
