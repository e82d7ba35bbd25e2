//! Error answers that echo the request, as many vendors do for a bad token or a malformed
//! body (`{"message": "invalid token: Bearer ...", "request": {...}}`).
//!
//! With [`Faults::echo_errors`](crate::Faults::echo_errors) on, every answer of status 400 or
//! more gets a body that repeats the request in full — method, URL with its query, every
//! header (`Authorization` included) and the body (JSON, or an OAuth form as sent) — and the
//! original answer. The message leads with the echo, so a client that copies the vendor's
//! message into its own errors copies the credentials too: what the secret-masking tests
//! check rulebridge never lets out.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::store::Store;

/// Requests and answers larger than this are not echoed (nor buffered).
const MAX_ECHO: usize = 1 << 20;

pub(crate) async fn layer(State(store): State<Arc<Store>>, req: Request, next: Next) -> Response {
    if !store.shared().faults().echo_errors {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_ECHO).await else {
        return (
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "request too large to echo",
        )
            .into_response();
    };
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        headers.insert(
            name.as_str().to_string(),
            Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        );
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let request = json!({
        "method": parts.method.as_str(),
        "url": parts.uri.to_string(),
        "headers": Value::Object(headers.clone()),
        "body": serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text.clone())),
    });
    let resp = next
        .run(Request::from_parts(parts.clone(), Body::from(bytes)))
        .await;
    if resp.status().as_u16() < 400 {
        return resp;
    }
    let (mut rparts, rbody) = resp.into_parts();
    let original = to_bytes(rbody, MAX_ECHO).await.unwrap_or_default();
    let original = String::from_utf8_lossy(&original).into_owned();
    let echo = format!(
        "request refused: {} {} headers={} body={text} answer={original}",
        parts.method,
        parts.uri,
        Value::Object(headers.clone())
    );
    // Every field clients read a vendor's message from carries the echo.
    let echoed = json!({
        "message": echo,
        "error": echo,
        "error_description": echo,
        "errors": [{ "message": echo }],
        "request": request,
        "response": serde_json::from_str::<Value>(&original).unwrap_or(Value::String(original.clone())),
    });
    rparts.headers.remove(http::header::CONTENT_LENGTH);
    rparts.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(rparts, Body::from(echoed.to_string()))
}
