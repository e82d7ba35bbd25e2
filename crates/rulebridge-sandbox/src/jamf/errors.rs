//! Jamf Pro API errors (`{httpStatus, errors:[..]}`) and Classic API HTML pages.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::store::Shared;
use crate::util::json as reply;

pub(super) fn api_error(
    status: StatusCode,
    code: &str,
    field: Option<&str>,
    description: &str,
) -> Response {
    reply(
        status,
        json!({"httpStatus": status.as_u16(), "errors": [{"code": code, "field": field, "description": description, "id": "0"}]}),
    )
}

pub(crate) fn internal_error(_: &Shared) -> Response {
    api_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "UNEXPECTED_ERROR",
        None,
        "An unexpected error occurred",
    )
}

/// The Classic API's HTML status page.
pub(super) fn classic_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<html>\n<head>\n   <title>Status page</title>\n</head>\n<body style=\"font-family: sans-serif;\">\n<p style=\"font-size: 1.2em;font-weight: bold;margin: 1em 0px;\">{title}</p>\n<p style=\"font-size: 1.2em;font-weight: bold;margin: 1em 0px;\">{message}</p>\n<p>You can get technical details <a href=\"http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html\">here</a>.<br>\nPlease continue your visit at our <a href=\"/\">home page</a>.\n</p>\n</body>\n</html>\n"
    );
    (
        status,
        [(http::header::CONTENT_TYPE, "text/html;charset=UTF-8")],
        body,
    )
        .into_response()
}
