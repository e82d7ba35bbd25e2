//! `POST /services/oauth2/token`: the refresh-token flow.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use chrono::Utc;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::state::Ctx;
use super::{CLIENT_ID, CLIENT_SECRET, ORG_ID, REFRESH_TOKEN, USER_ID};
use crate::util::{form_or_json, json as reply};

pub(super) async fn token(State(shared): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    let f = form_or_json(&headers, &body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let oauth_err = |error: &str, desc: &str| {
        reply(
            StatusCode::BAD_REQUEST,
            json!({"error": error, "error_description": desc}),
        )
    };
    if get("grant_type") != "refresh_token" {
        return oauth_err("unsupported_grant_type", "grant type not supported");
    }
    if get("client_id") != CLIENT_ID {
        return oauth_err("invalid_client_id", "client identifier invalid");
    }
    if get("client_secret") != CLIENT_SECRET {
        return oauth_err("invalid_client", "invalid client credentials");
    }
    if get("refresh_token") != REFRESH_TOKEN {
        return oauth_err("invalid_grant", "expired access/refresh token");
    }
    let access = format!(
        "{}!{}",
        &ORG_ID[..15],
        shared.random_string(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._",
            96
        )
    );
    shared
        .tokens()
        .issue("salesforce", &access, CLIENT_ID, shared.cfg.token_ttl);
    use base64::Engine;
    let sig_bytes: Vec<u8> = shared.random_u64().to_be_bytes().repeat(4);
    reply(
        StatusCode::OK,
        json!({
            "access_token": access,
            "signature": base64::engine::general_purpose::STANDARD.encode(sig_bytes),
            "scope": "api refresh_token",
            "instance_url": format!("http://{}/salesforce", shared.addr),
            "id": format!("https://login.salesforce.com/id/{ORG_ID}/{USER_ID}"),
            "token_type": "Bearer",
            "issued_at": Utc::now().timestamp_millis().to_string(),
        }),
    )
}
