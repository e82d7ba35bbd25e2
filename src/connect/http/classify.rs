//! Error classification: a failed response (or one failed item of a batch) becomes a
//! [`ConnectError`] the engine can act on.
//!
//! The object's `errors` rules are tried first, then the provider's. A rule matches by status
//! (any, when it lists none) and by `contains` text in the raw body; its `existing_id` and
//! `message` expressions run over `{status, body, message}`. Without a matching rule:
//! 401/403 → auth, 404 → not found, 409 → duplicate, 400/422 → validation, 429 → rate limited,
//! 408/5xx → transient, anything else → fatal.

use serde_json::Value;

use crate::connect::{ConnectError, ErrorKind};
use crate::expr::{self, Compiled, Env, Scope};
use crate::functions::{Registry, SystemClock};
use crate::syntax::doc;
use crate::types::Type;

/// Longest provider message kept in a [`ConnectError`].
pub(crate) const MAX_MESSAGE: usize = 500;

/// One compiled `errors` rule.
#[derive(Debug)]
pub(crate) struct Rule {
    status: Vec<u16>,
    contains: Option<String>,
    kind: ErrorKind,
    existing_id: Option<Compiled>,
    message: Option<Compiled>,
}

/// Compiles a provider's or object's `errors` rules; `at` names them in errors.
pub(crate) fn compile_rules(
    rules: &[doc::ErrorRule],
    registry: &Registry,
    at: &str,
) -> Result<Vec<Rule>, String> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let compile = |text: &Option<doc::Spanned<String>>, what: &str| {
                text.as_ref()
                    .map(|t| compile_expr(&t.value, registry))
                    .transpose()
                    .map_err(|e| format!("{at} errors[{i}].{what}: {e}"))
            };
            Ok(Rule {
                status: r.status.clone(),
                contains: r.contains.as_ref().map(|c| c.value.clone()),
                kind: kind(r.kind.value),
                existing_id: compile(&r.existing_id, "existing_id")?,
                message: compile(&r.message, "message")?,
            })
        })
        .collect()
}

fn compile_expr(text: &str, registry: &Registry) -> Result<Compiled, String> {
    let ast = expr::parse(text).map_err(|e| e.message)?;
    let bindings = [
        ("status".to_string(), Type::Number),
        ("body".to_string(), Type::Any),
        ("message".to_string(), Type::optional(Type::String)),
    ];
    let empty = std::collections::BTreeMap::new();
    let scope = Scope {
        registry,
        record: Some(&empty),
        bindings: &bindings,
    };
    expr::compile(&ast, &scope)
        .map(|(c, _)| c)
        .map_err(|errors| {
            errors
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("; ")
        })
}

fn kind(k: doc::ErrorKind) -> ErrorKind {
    match k {
        doc::ErrorKind::Duplicate => ErrorKind::Duplicate,
        doc::ErrorKind::Validation => ErrorKind::Validation,
        doc::ErrorKind::Auth => ErrorKind::Auth,
        doc::ErrorKind::RateLimited => ErrorKind::RateLimited,
        doc::ErrorKind::Transient => ErrorKind::Transient,
        doc::ErrorKind::NotFound => ErrorKind::NotFound,
        doc::ErrorKind::Fatal => ErrorKind::Fatal,
    }
}

/// The kind of a status no rule matched.
pub(crate) fn default_kind(status: u16) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::Auth,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Duplicate,
        400 | 422 => ErrorKind::Validation,
        429 => ErrorKind::RateLimited,
        408 | 500..=599 => ErrorKind::Transient,
        _ => ErrorKind::Fatal,
    }
}

/// Classifies a failed response. `object` rules win over `provider` rules.
pub(crate) fn classify(
    object: &[Rule],
    provider: &[Rule],
    status: u16,
    text: &str,
    body: &Value,
) -> ConnectError {
    let default_message =
        provider_message(body, text).unwrap_or_else(|| format!("HTTP {status} with an empty body"));
    let rule = object
        .iter()
        .chain(provider)
        .find(|r| r.matches(status, text));
    let mut err = ConnectError::new(default_kind(status), String::new());
    err.status = Some(status);
    let mut message = default_message.clone();
    if let Some(rule) = rule {
        err.kind = rule.kind;
        let status_v = Value::from(status);
        let message_v = Value::String(default_message.clone());
        let bindings = [&status_v, body, &message_v];
        let clock = SystemClock;
        let env = Env {
            record: &Value::Null,
            bindings: &bindings,
            clock: &clock,
        };
        if let Some(e) = &rule.existing_id
            && let Ok(v) = e.eval(&env)
        {
            err.existing_id = super::operation::id_text(&v);
        }
        if let Some(e) = &rule.message
            && let Ok(v) = e.eval(&env)
        {
            match v.as_ref() {
                Value::String(s) if !s.is_empty() => message = s.clone(),
                Value::Null => {}
                other => message = other.to_string(),
            }
        }
    }
    if err.kind == ErrorKind::Validation {
        err.field = offending_field(body);
    }
    err.message = truncate(&message);
    err
}

/// Classifies one failed item of a batch response as if it had been a response of its own:
/// its status comes from the item (`status`, `statusCode`, `httpStatus`, a HubSpot `category`)
/// or is 400.
pub(crate) fn classify_item(object: &[Rule], provider: &[Rule], item: &Value) -> ConnectError {
    let status = item_status(item);
    let text = item.to_string();
    let mut err = classify(object, provider, status, &text, item);
    err.status = None;
    err
}

fn item_status(item: &Value) -> u16 {
    for key in ["status", "httpStatus", "statusCode", "code"] {
        match item.get(key) {
            Some(Value::Number(n)) => {
                if let Some(s) = n.as_u64().filter(|s| (400..600).contains(s)) {
                    return s as u16;
                }
            }
            Some(Value::String(s)) => {
                if let Ok(s) = s.parse::<u16>()
                    && (400..600).contains(&s)
                {
                    return s;
                }
            }
            _ => {}
        }
    }
    let category = item
        .get("category")
        .or_else(|| item.get("errorCode"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match category {
        "CONFLICT" | "OBJECT_ALREADY_EXISTS" => 409,
        "OBJECT_NOT_FOUND" | "NOT_FOUND" => 404,
        "RATE_LIMITS" | "RATE_LIMIT" => 429,
        "INVALID_AUTHENTICATION" | "EXPIRED_AUTHENTICATION" | "MISSING_SCOPES" => 401,
        _ => 400,
    }
}

impl Rule {
    fn matches(&self, status: u16, text: &str) -> bool {
        (self.status.is_empty() || self.status.contains(&status))
            && self
                .contains
                .as_ref()
                .is_none_or(|c| text.contains(c.as_str()))
    }
}

/// The provider's own words: `message`, the first error's message or description, `error`
/// (+ `error_description`), or the raw text.
pub(crate) fn provider_message(body: &Value, text: &str) -> Option<String> {
    let str_at = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let first_error = |v: &Value| -> Option<String> {
        let first = v.get("errors")?.get(0)?;
        str_at(first, "message")
            .or_else(|| str_at(first, "description"))
            .or_else(|| first.as_str().map(str::to_string))
    };
    let found = match body {
        Value::Object(_) => str_at(body, "message")
            .or_else(|| first_error(body))
            .or_else(|| {
                let e = str_at(body, "error")?;
                Some(match str_at(body, "error_description") {
                    Some(d) => format!("{e}: {d}"),
                    None => e,
                })
            })
            .or_else(|| str_at(body, "errors")),
        Value::Array(items) => items.first().and_then(|f| str_at(f, "message")),
        _ => None,
    };
    found
        .or_else(|| {
            let t = text.trim();
            (!t.is_empty()).then(|| t.to_string())
        })
        .map(|m| truncate(&m))
}

/// The field a validation error names, when the provider says.
fn offending_field(body: &Value) -> Option<String> {
    let first_str = |v: Option<&Value>| -> Option<String> {
        let v = v?;
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_string),
            _ => None,
        }
    };
    // Salesforce: [{fields: [..]}]; Jamf: {errors: [{field}]}; Chatwoot: {attributes: [..]};
    // HubSpot: {errors: [{context: {propertyName: [..]}}]}.
    let sf = body.get(0).and_then(|e| first_str(e.get("fields")));
    let first_error = body.get("errors").and_then(|e| e.get(0));
    sf.or_else(|| first_error.and_then(|e| first_str(e.get("field"))))
        .or_else(|| {
            first_error
                .and_then(|e| e.get("context"))
                .and_then(|c| first_str(c.get("propertyName")))
        })
        .or_else(|| first_str(body.get("attributes")))
}

/// Cuts `text` to [`MAX_MESSAGE`] characters.
pub(crate) fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_messages() {
        let e = classify(&[], &[], 404, "", &Value::Null);
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(e.message, "HTTP 404 with an empty body");
        let body = json!([{"message": "bad", "errorCode": "X", "fields": ["Email"]}]);
        let e = classify(&[], &[], 400, &body.to_string(), &body);
        assert_eq!(
            (e.kind, e.message.as_str(), e.field.as_deref()),
            (ErrorKind::Validation, "bad", Some("Email"))
        );
        let body = json!({"error": "invalid_grant", "error_description": "expired"});
        assert_eq!(
            provider_message(&body, "").as_deref(),
            Some("invalid_grant: expired")
        );
        assert_eq!(truncate(&"x".repeat(600)).chars().count(), MAX_MESSAGE + 1);
    }

    #[test]
    fn item_status_from_category() {
        assert_eq!(item_status(&json!({"category": "CONFLICT"})), 409);
        assert_eq!(item_status(&json!({"status": "error"})), 400);
        assert_eq!(item_status(&json!({"statusCode": 404})), 404);
    }
}
