//! Templates simple enough to render without minijinja: text and `{{ name }}` or
//! `{{ name or 'default' }}` parts. Rendering one through minijinja's VM costs more than the
//! rest of a small mapping; this form renders the same text directly, and gives up (the
//! caller renders with minijinja) for any value whose minijinja text it does not reproduce.

use serde_json::Value;

/// A template of literal text and plain variables, recognized when the flow is compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct SimpleTemplate {
    parts: Vec<SimplePart>,
}

#[derive(Debug, Clone, PartialEq)]
enum SimplePart {
    Text(String),
    /// `{{ name }}`, or `{{ name or 'default' }}`.
    Var {
        name: String,
        default: Option<String>,
    },
}

impl SimpleTemplate {
    /// The simple form of `source`, when it has one: no blocks, comments, filters, whitespace
    /// control or trailing newline (minijinja drops one), only `{{ name }}` and
    /// `{{ name or 'text' }}` expressions.
    pub fn parse(source: &str) -> Option<SimpleTemplate> {
        if source.ends_with('\n') {
            return None;
        }
        let mut parts = Vec::new();
        let mut rest = source;
        loop {
            let (text, after) = match rest.find("{{") {
                Some(at) => (&rest[..at], Some(&rest[at + 2..])),
                None => (rest, None),
            };
            if ["{%", "%}", "{#", "#}", "}}"]
                .iter()
                .any(|m| text.contains(m))
            {
                return None;
            }
            if !text.is_empty() {
                parts.push(SimplePart::Text(text.to_string()));
            }
            let Some(after) = after else { break };
            let end = after.find("}}")?;
            parts.push(variable(&after[..end])?);
            rest = &after[end + 2..];
        }
        Some(SimpleTemplate { parts })
    }

    /// The rendered text, reading variables through `lookup` (`None`: undefined). `None` when a
    /// variable holds anything but a string or null: minijinja's own rendering of numbers,
    /// booleans and containers is then used.
    pub fn render<'v>(&self, lookup: impl Fn(&str) -> Option<&'v Value>) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                SimplePart::Text(t) => out.push_str(t),
                SimplePart::Var { name, default } => {
                    // Undefined and none render as nothing and are false for `or`, like "".
                    let text = match lookup(name) {
                        None | Some(Value::Null) => "",
                        Some(Value::String(s)) => s.as_str(),
                        Some(_) => return None,
                    };
                    match default {
                        Some(d) if text.is_empty() => out.push_str(d),
                        _ => out.push_str(text),
                    }
                }
            }
        }
        Some(out)
    }
}

/// `name` or `name or 'text'` (blanks around), as inside `{{ }}`.
fn variable(inner: &str) -> Option<SimplePart> {
    // `{{-` and `-}}` trim whitespace; `{{ a }}` needs its blanks to be blanks only.
    if inner.starts_with('-') || inner.ends_with('-') || inner.starts_with('+') {
        return None;
    }
    let inner = inner.trim_matches(|c: char| c == ' ' || c == '\t');
    let (name, default) = match inner.split_once(" or ") {
        Some((name, lit)) => (name.trim_end_matches(' '), Some(literal(lit.trim())?)),
        None => (inner, None),
    };
    is_plain_name(name).then(|| SimplePart::Var {
        name: name.to_string(),
        default,
    })
}

/// A quoted string without escapes or the other quote's kind inside.
fn literal(text: &str) -> Option<String> {
    let quote = text.chars().next().filter(|q| *q == '\'' || *q == '"')?;
    let body = text.strip_prefix(quote)?.strip_suffix(quote)?;
    (!body.contains(['\'', '"', '\\'])).then(|| body.to_string())
}

/// An identifier that minijinja reads as a variable (not a constant such as `none`).
fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    let starts = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    starts
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(
            name,
            "true"
                | "false"
                | "none"
                | "True"
                | "False"
                | "None"
                | "and"
                | "or"
                | "not"
                | "in"
                | "is"
                | "if"
                | "else"
                | "loop"
                | "self"
                | "super"
                | "namespace"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// minijinja configured as the compiler configures it.
    fn minijinja(source: &str, ctx: &Value) -> String {
        let mut env = minijinja::Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_formatter(|out, state, value| {
            if value.is_none() {
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        env.render_str(source, minijinja::Value::from(minijinja::value::Serde(ctx)))
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn renders_as_minijinja_does() {
        let templates = [
            "Lead from {{ source or 'web' }}",
            "{{ name }} <{{email}}>",
            "{{ a or \"x y\" }}-{{ b }}",
            "plain text, no variables",
            "",
            "{{a}}{{b}}",
            "& <b>{{ a }}</b>",
        ];
        let contexts = [
            json!({}),
            json!({"source": "webinar", "name": "Ada", "email": "a@b.co", "a": "1", "b": "<&>"}),
            json!({"source": "", "name": null, "a": "", "b": ""}),
            json!({"source": null, "a": null, "b": "é"}),
        ];
        for t in templates {
            let simple = SimpleTemplate::parse(t);
            assert!(simple.is_some(), "{t} should be simple");
            for ctx in &contexts {
                let fast = simple.as_ref().and_then(|s| s.render(|n| ctx.get(n)));
                assert_eq!(fast, Some(minijinja(t, ctx)), "{t} on {ctx}");
            }
        }
    }

    #[test]
    fn other_values_are_left_to_minijinja() {
        let t = SimpleTemplate::parse("n={{ n }}");
        for v in [
            json!({"n": 1.0}),
            json!({"n": true}),
            json!({"n": [1]}),
            json!({"n": {}}),
        ] {
            assert_eq!(t.as_ref().and_then(|s| s.render(|n| v.get(n))), None);
        }
    }

    #[test]
    fn anything_else_is_not_simple() {
        for t in [
            "{% if a %}x{% endif %}",
            "{# note #}",
            "{{ a | upper }}",
            "{{ a.b }}",
            "{{ a[0] }}",
            "{{- a }}",
            "{{ a -}}",
            "{{ none }}",
            "{{ a or b }}",
            "{{ a or 'it''s' }}",
            "{{ a or 'x\\n' }}",
            "{{ a ~ b }}",
            "{{ 'x' }}",
            "a }} b",
            "{{ a",
            "line\n",
            "{{ a or 'x' or 'y' }}",
        ] {
            assert_eq!(SimpleTemplate::parse(t), None, "{t}");
        }
    }
}
