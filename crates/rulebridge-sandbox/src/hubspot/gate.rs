//! Authentication and rate limits in front of every CRM call.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::json;

use super::errors::error;
use super::state::Ctx;
use super::{DAILY_LIMIT, PORTAL_ID, STATIC_TOKEN};
use crate::faults::RateLimited;
use crate::ratelimit::Verdict;
use crate::store::TokenCheck;
use crate::util::bearer;

/// Authentication and rate limits for every CRM call.
pub(super) async fn gate(State(shared): State<Ctx>, req: Request, next: Next) -> Response {
    let is_search = req.uri().path().ends_with("/search");
    let (subject, private_app) = match bearer(req.headers()) {
        None => {
            return error(
                &shared,
                StatusCode::UNAUTHORIZED,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports both API Key and OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                json!({}),
            );
        }
        Some(t) if t == STATIC_TOKEN => ("private-app".to_string(), true),
        Some(t) => match shared.tokens().check("hubspot", &t) {
            TokenCheck::Valid(s) => (s, false),
            TokenCheck::Expired(ago) => {
                let mins = ago.as_secs() / 60;
                return error(
                    &shared,
                    StatusCode::UNAUTHORIZED,
                    "EXPIRED_AUTHENTICATION",
                    &format!(
                        "The OAuth token used to make this call expired {mins} minute(s) ago."
                    ),
                    json!({"context": {"expire time": [ago.as_secs().to_string()]}}),
                );
            }
            TokenCheck::Unknown => {
                return error(
                    &shared,
                    StatusCode::UNAUTHORIZED,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports both API Key and OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    json!({}),
                );
            }
        },
    };
    let max = shared.limit(shared.cfg.hubspot_rate_limit);
    let search_max = shared.limit(shared.cfg.hubspot_search_rate_limit);
    let group = format!("publicapi:{subject}:{PORTAL_ID}");
    let (verdict, daily_used) = {
        let mut st = shared.data();
        if is_search
            && matches!(
                st.search_window.check(&subject, search_max),
                Verdict::Limited { .. }
            )
        {
            drop(st);
            let mut r = error(
                &shared,
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITS",
                "You have reached your secondly limit.",
                json!({"errorType": "RATE_LIMIT", "policyName": "SECONDLY", "groupName": group}),
            );
            r.extensions_mut().insert(RateLimited);
            return r;
        }
        let v = st.window.check(&subject, max);
        let used = st.daily_used.entry(subject.clone()).or_default();
        if matches!(v, Verdict::Allowed { .. }) {
            *used += 1;
        }
        (v, *used)
    };
    let remaining = match verdict {
        Verdict::Allowed { remaining } => remaining,
        Verdict::Limited { .. } => {
            let mut r = error(
                &shared,
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITS",
                "You have reached your ten_secondly_rolling limit.",
                json!({"errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING", "groupName": group}),
            );
            r.extensions_mut().insert(RateLimited);
            add_limit_headers(r.headers_mut(), max, 0, private_app, daily_used);
            return r;
        }
    };
    let mut resp = next.run(req).await;
    // The search endpoints do not send the rate-limit headers.
    if !is_search {
        add_limit_headers(resp.headers_mut(), max, remaining, private_app, daily_used);
    }
    resp
}

pub(super) fn add_limit_headers(
    h: &mut HeaderMap,
    max: u32,
    remaining: u32,
    private_app: bool,
    daily: u32,
) {
    let num =
        |n: u32| HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"));
    h.insert("x-hubspot-ratelimit-max", num(max));
    h.insert("x-hubspot-ratelimit-remaining", num(remaining));
    h.insert(
        "x-hubspot-ratelimit-interval-milliseconds",
        HeaderValue::from_static("10000"),
    );
    // The daily headers are only sent to private apps.
    if private_app {
        h.insert("x-hubspot-ratelimit-daily", num(DAILY_LIMIT));
        h.insert(
            "x-hubspot-ratelimit-daily-remaining",
            num(DAILY_LIMIT.saturating_sub(daily)),
        );
    }
}
