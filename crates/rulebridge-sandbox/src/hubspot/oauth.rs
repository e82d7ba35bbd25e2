//! `POST /oauth/v1/token`: refresh-token and authorization-code grants.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::state::Ctx;
use super::{AUTH_CODE, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN};
use crate::util::{form_or_json, json as reply};

pub(super) async fn token(State(shared): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    let f = form_or_json(&headers, &body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let oauth_error = |status: &str, error: &str, message: &str| {
        reply(
            StatusCode::BAD_REQUEST,
            json!({
                "status": status,
                "message": message,
                "correlationId": shared.uuid(),
                "error": error,
                "error_description": message,
            }),
        )
    };
    let grant = get("grant_type");
    if grant != "refresh_token" && grant != "authorization_code" {
        return oauth_error(
            "BAD_GRANT_TYPE",
            "unsupported_grant_type",
            "grant_type must be one of authorization_code, refresh_token",
        );
    }
    if get("client_id") != CLIENT_ID {
        return oauth_error(
            "BAD_CLIENT_ID",
            "invalid_client",
            "missing or unknown client id",
        );
    }
    if get("client_secret") != CLIENT_SECRET {
        return oauth_error(
            "BAD_CLIENT_SECRET",
            "invalid_client",
            "missing or invalid client secret",
        );
    }
    if grant == "refresh_token" && get("refresh_token") != REFRESH_TOKEN {
        return oauth_error(
            "BAD_REFRESH_TOKEN",
            "invalid_grant",
            "missing or unknown refresh token",
        );
    }
    if grant == "authorization_code" && get("code") != AUTH_CODE {
        return oauth_error(
            "BAD_AUTH_CODE",
            "invalid_grant",
            "missing or unknown auth code",
        );
    }
    let access = format!(
        "CN{}",
        shared.random_string(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            62
        )
    );
    let ttl = shared.cfg.token_ttl;
    shared.tokens().issue("hubspot", &access, CLIENT_ID, ttl);
    reply(
        StatusCode::OK,
        json!({
            "token_type": "bearer",
            "refresh_token": REFRESH_TOKEN,
            "access_token": access,
            "expires_in": ttl.as_secs(),
        }),
    )
}
