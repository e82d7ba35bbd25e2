//! Error classification: a failed response (or one failed item of a batch) becomes a
//! [`ConnectError`] the engine can act on.
//!
//! The object's `errors` rules are tried first, then the provider's. A rule matches by status
//! (any, when it lists none) and by `contains` text in the raw body; its `existing_id`,
//! `message` and `field` expressions run over `{status, body, message}`. Without a matching
//! rule:
//! 401/403 → auth, 404 → not found, 409 → duplicate, 400/422 → validation, 429 → rate limited,
//! 408/5xx → transient, anything else → fatal.

use serde_json::Value;

use crate::connect::{ConnectError, ErrorKind};
use crate::expr::Env;
use crate::functions::SystemClock;
use crate::plan::provider::ErrorRulePlan;

/// Longest provider message kept in a [`ConnectError`].
pub(crate) const MAX_MESSAGE: usize = 500;

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
    object: &[ErrorRulePlan],
    provider: &[ErrorRulePlan],
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
        if let Some(e) = &rule.field
            && let Ok(v) = e.eval(&env)
        {
            err.field = v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
        }
        if let Some(e) = &rule.correlation_id
            && let Ok(v) = e.eval(&env)
        {
            err.correlation_id = super::operation::id_text(&v);
        }
    }
    // Providers echo the request in error bodies (a bad token, a form body): mask it
    // before the message goes anywhere, and before truncating could cut a value in two.
    err.message = truncate(&crate::secrets::scrub::scrub(&message));
    err
}

/// Classifies one failed item of a batch response as if it had been a response of its own:
/// its status comes from the item (`status`, `statusCode`, `httpStatus`, `code`) or is 400.
/// Kits recognise other ways of saying it (an error `category`) with `contains` rules.
pub(crate) fn classify_item(
    object: &[ErrorRulePlan],
    provider: &[ErrorRulePlan],
    item: &Value,
) -> ConnectError {
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
    400
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
            (ErrorKind::Validation, "bad", None)
        );
        let body = json!({"error": "invalid_grant", "error_description": "expired"});
        assert_eq!(
            provider_message(&body, "").as_deref(),
            Some("invalid_grant: expired")
        );
        assert_eq!(truncate(&"x".repeat(600)).chars().count(), MAX_MESSAGE + 1);
    }

    #[test]
    fn item_status() {
        assert_eq!(super::item_status(&json!({"category": "CONFLICT"})), 400);
        assert_eq!(super::item_status(&json!({"status": "error"})), 400);
        assert_eq!(super::item_status(&json!({"statusCode": 404})), 404);
    }
}
