//! Tokens: `POST /api/v1/auth/token` (Basic), keep-alive, invalidation, and client credentials.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::Utc;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::errors::{api_error, classic_page};
use super::state::Ctx;
use super::{CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME};
use crate::store::TokenCheck;
use crate::util::{self, bearer, form_or_json, json as reply};

pub(super) async fn auth(State(shared): State<Ctx>, req: Request, next: Next) -> Response {
    let valid = bearer(req.headers())
        .map(|t| matches!(shared.tokens().check("jamf", &t), TokenCheck::Valid(_)))
        .unwrap_or(false);
    if valid {
        return next.run(req).await;
    }
    if req.uri().path().starts_with("/JSSResource") {
        return classic_page(
            StatusCode::UNAUTHORIZED,
            "The request requires user authentication",
        );
    }
    api_error(
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
        None,
        "Unauthorized",
    )
}

pub(super) fn issue(shared: &Ctx, subject: &str) -> (String, String) {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let ttl = shared.cfg.token_ttl;
    let exp = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
    let header = b64.encode(br#"{"alg":"HS256"}"#);
    let payload = b64.encode(
        json!({
            "token-uuid": shared.uuid(),
            "sub": subject,
            "aud": "sandbox",
            "exp": exp.timestamp(),
        })
        .to_string(),
    );
    let sig = shared.random_string(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        43,
    );
    let token = format!("{header}.{payload}.{sig}");
    shared.tokens().issue("jamf", &token, subject, ttl);
    (token, util::iso_ms(exp))
}

pub(super) async fn token(State(shared): State<Ctx>, headers: HeaderMap) -> Response {
    match util::basic(&headers) {
        Some((u, p)) if u == USERNAME && p == PASSWORD => {
            let (token, expires) = issue(&shared, USERNAME);
            reply(StatusCode::OK, json!({"token": token, "expires": expires}))
        }
        _ => reply(
            StatusCode::UNAUTHORIZED,
            json!({"httpStatus": 401, "errors": []}),
        ),
    }
}

pub(super) async fn oauth_token(
    State(shared): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = form_or_json(&headers, &body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    if get("grant_type") != "client_credentials" {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "unsupported_grant_type"}),
        );
    }
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return reply(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
    }
    let (token, _) = issue(&shared, CLIENT_ID);
    reply(
        StatusCode::OK,
        json!({
            "access_token": token,
            "scope": "api-role:sandbox",
            "token_type": "Bearer",
            "expires_in": shared.cfg.token_ttl.as_secs().saturating_sub(1),
        }),
    )
}

pub(super) async fn keep_alive(State(shared): State<Ctx>, headers: HeaderMap) -> Response {
    let Some(old) = bearer(&headers) else {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
            None,
            "Unauthorized",
        );
    };
    let subject = match shared.tokens().check("jamf", &old) {
        TokenCheck::Valid(s) => s,
        _ => {
            return api_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_TOKEN",
                None,
                "Unauthorized",
            );
        }
    };
    shared.tokens().revoke(&old);
    let (token, expires) = issue(&shared, &subject);
    reply(StatusCode::OK, json!({"token": token, "expires": expires}))
}

pub(super) async fn invalidate(State(shared): State<Ctx>, headers: HeaderMap) -> Response {
    if let Some(t) = bearer(&headers) {
        shared.tokens().revoke(&t);
    }
    StatusCode::NO_CONTENT.into_response()
}
