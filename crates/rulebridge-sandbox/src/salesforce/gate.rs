//! Session check and the `Sforce-Limit-Info` daily allowance in front of every data call; `GET /limits`.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use serde_json::json;

use super::errors::err_nofields;
use super::state::Ctx;
use crate::faults::RateLimited;
use crate::ratelimit::Verdict;
use crate::store::TokenCheck;
use crate::util::{bearer, json as reply};

/// Session check and API usage accounting for every data call.
pub(super) async fn gate(State(shared): State<Ctx>, req: Request, next: Next) -> Response {
    let limit = shared.limit(shared.cfg.salesforce_api_limit);
    let valid = match bearer(req.headers()) {
        Some(t) => matches!(
            shared.tokens().check("salesforce", &t),
            TokenCheck::Valid(_)
        ),
        None => false,
    };
    if !valid {
        let mut r = err_nofields(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        );
        r.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Token"));
        return r;
    }
    let verdict = shared.data().usage.check("org", limit);
    let mut resp = match verdict {
        Verdict::Allowed { .. } => next.run(req).await,
        Verdict::Limited { .. } => {
            let mut r = err_nofields(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            );
            r.extensions_mut().insert(RateLimited);
            r
        }
    };
    let used = match verdict {
        Verdict::Allowed { remaining } => limit - remaining,
        Verdict::Limited { .. } => limit,
    };
    if let Ok(v) = HeaderValue::from_str(&format!("api-usage={used}/{limit}")) {
        resp.headers_mut().insert("sforce-limit-info", v);
    }
    resp
}

pub(super) async fn limits(State(shared): State<Ctx>) -> Response {
    let limit = shared.limit(shared.cfg.salesforce_api_limit);
    let used = shared.data().usage.used("org");
    reply(
        StatusCode::OK,
        json!({"DailyApiRequests": {"Max": limit, "Remaining": limit.saturating_sub(used)}}),
    )
}
