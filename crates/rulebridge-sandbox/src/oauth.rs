//! The OAuth 2.0 authorization-code flow both CRM fakes share (RFC 6749 section 4.1): the
//! authorize endpoint a user's browser is sent to, and the code exchange of the token
//! endpoints.
//!
//! The fakes consent on the user's behalf: where the vendor shows a login and consent page
//! (HubSpot's app install screen, Salesforce's "Allow Access?"), the fake answers at once with
//! the redirect a user's approval leads to. What the vendors check before that page is
//! checked here: the client id, the redirect URI registered for the app (an exact match),
//! and for Salesforce `response_type=code`.

use std::time::{Duration, Instant};

use axum::response::Response;
use http::{StatusCode, header};
use serde_json::{Value, json};

use crate::store::{CodeGrant, CodeRefusal, Vendor};
use crate::util::{json as reply, query_get, query_pairs};

/// How long an authorization code can be exchanged (Salesforce: 15 minutes; HubSpot does
/// not say; both are single-use).
pub(crate) const CODE_TTL: Duration = Duration::from_secs(10 * 60);

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// One vendor's registered app and how its authorize endpoint reads a request.
pub(crate) struct App {
    pub client_id: &'static str,
    /// The redirect URI registered for the app.
    pub redirect_uri: &'static str,
    /// Salesforce requires `response_type=code`; HubSpot's URL has no such parameter.
    pub response_type: bool,
    /// HubSpot refuses an authorize URL without `scope`; Salesforce grants the app's.
    pub scope_required: bool,
    /// The vendor's error body for a request it will not redirect (bad client or URI).
    pub refuse: fn(&str, &str) -> Value,
}

/// `GET .../authorize?client_id&redirect_uri&scope&state[&response_type=code]`: a 302 to
/// `redirect_uri?code=..&state=..` (the fake consents), or an error.
pub(crate) fn authorize<D>(vendor: &Vendor<D>, app: &App, query: Option<&str>) -> Response {
    let pairs = query_pairs(query);
    let get = |k: &str| query_get(&pairs, k).unwrap_or("");
    let refuse =
        |error: &str, message: &str| reply(StatusCode::BAD_REQUEST, (app.refuse)(error, message));
    if get("client_id") != app.client_id {
        return refuse("invalid_client_id", "client identifier invalid");
    }
    let redirect_uri = get("redirect_uri");
    if redirect_uri != app.redirect_uri {
        return refuse(
            "redirect_uri_mismatch",
            "redirect_uri must match a redirect URI registered for the app",
        );
    }
    let state = query_get(&pairs, "state");
    // The redirect URI is trusted from here on: errors go back to it (section 4.1.2.1).
    if app.response_type && get("response_type") != "code" {
        return redirect(
            redirect_uri,
            &[
                ("error", "unsupported_response_type"),
                ("error_description", "response type must be code"),
            ],
            state,
        );
    }
    let scope = get("scope");
    if app.scope_required && scope.trim().is_empty() {
        return redirect(
            redirect_uri,
            &[
                ("error", "invalid_scope"),
                ("error_description", "scope is required"),
            ],
            state,
        );
    }
    let code = vendor.random_string(ALPHABET, 40);
    vendor.tokens().issue_code(
        &code,
        CodeGrant {
            client_id: app.client_id.to_string(),
            redirect_uri: redirect_uri.to_string(),
            scope: scope.to_string(),
            expires: Instant::now() + CODE_TTL,
        },
    );
    redirect(redirect_uri, &[("code", &code)], state)
}

fn redirect(to: &str, params: &[(&str, &str)], state: Option<&str>) -> Response {
    let mut url = match url::Url::parse(to) {
        Ok(u) => u,
        Err(_) => {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request", "error_description": "redirect_uri is not a URL"}),
            );
        }
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    let mut r = reply(StatusCode::FOUND, json!({}));
    if let Ok(v) = http::HeaderValue::from_str(url.as_str()) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A code exchange's answer: the grant, or the `error_description` of an `invalid_grant`.
pub(crate) fn exchange<D>(
    vendor: &Vendor<D>,
    code: &str,
    client_id: &str,
    redirect_uri: &str,
) -> Result<CodeGrant, &'static str> {
    vendor
        .tokens()
        .take_code(code, client_id, redirect_uri)
        .map_err(|r| match r {
            CodeRefusal::Unknown => "authorization code is unknown or was already used",
            CodeRefusal::Expired => "authorization code expired",
            CodeRefusal::Mismatch => {
                "authorization code was issued to another client or redirect_uri"
            }
        })
}

/// A new refresh token for `client_id`, remembered as live.
pub(crate) fn new_refresh_token<D>(vendor: &Vendor<D>, prefix: &str, client_id: &str) -> String {
    let token = format!("{prefix}{}", vendor.random_string(ALPHABET, 48));
    vendor.tokens().issue_refresh(&token, client_id);
    token
}
