//! HubSpot's error bodies: `{status, message, correlationId, category, errors?}`.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::PORTAL_ID;
use crate::store::Shared;
use crate::util::json as reply;

pub(super) fn error(
    shared: &Shared,
    status: StatusCode,
    category: &str,
    message: &str,
    extra: Value,
) -> Response {
    let mut body = json!({
        "status": "error",
        "message": message,
        "correlationId": shared.uuid(),
        "category": category,
    });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    reply(status, body)
}

pub(crate) fn internal_error(shared: &Shared) -> Response {
    error(
        shared,
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_ERROR",
        "internal error",
        json!({}),
    )
}

pub(super) fn bad_json(shared: &Shared, e: &str) -> Response {
    error(
        shared,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
        &format!("Invalid input JSON: {e}"),
        json!({}),
    )
}

pub(super) fn validation(shared: &Shared, message: &str) -> Response {
    error(
        shared,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
        message,
        json!({}),
    )
}

pub(super) fn not_found(shared: &Shared) -> Response {
    error(
        shared,
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "resource not found",
        json!({}),
    )
}

pub(super) fn conflict(shared: &Shared, existing: u64) -> Response {
    error(
        shared,
        StatusCode::CONFLICT,
        "CONFLICT",
        &format!("Contact already exists. Existing ID: {existing}"),
        json!({}),
    )
}

/// One invalid property value.
#[derive(Clone, Debug)]
pub(super) struct PropError {
    pub(super) name: String,
    pub(super) code: &'static str,
    pub(super) message: String,
}

/// The 400 HubSpot sends for invalid property values: the legacy message text (a JSON list)
/// and the structured `errors`.
pub(super) fn invalid_properties(shared: &Shared, errs: &[PropError]) -> Response {
    let (message, extra) = invalid_properties_parts(errs);
    error(
        shared,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
        &message,
        extra,
    )
}

pub(super) fn invalid_properties_parts(errs: &[PropError]) -> (String, Value) {
    let legacy: Vec<Value> = errs
        .iter()
        .map(|e| {
            json!({
                "isValid": false,
                "message": e.message,
                "error": e.code,
                "name": e.name,
                "localizedErrorMessage": e.message,
                "portalId": PORTAL_ID,
            })
        })
        .collect();
    let message = format!("Property values were not valid: {}", Value::Array(legacy));
    let errors: Vec<Value> = errs
        .iter()
        .map(|e| {
            json!({
                "message": e.message,
                "code": e.code,
                "context": {"propertyName": [e.name]},
            })
        })
        .collect();
    (message, json!({ "errors": errors }))
}
