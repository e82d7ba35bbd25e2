//! OAuth: `GET /services/oauth2/authorize` (the web server flow's consent) and
//! `POST /services/oauth2/token` (authorization-code and refresh-token grants).
//!
//! Reference (providers.md, Salesforce OAuth; Salesforce's "OAuth 2.0 Web Server Flow"): the
//! authorize URL is `{login}/services/oauth2/authorize?response_type=code&client_id&
//! redirect_uri&scope&state`; the code exchange answers `{access_token, refresh_token,
//! signature, scope, instance_url, id, token_type: "Bearer", issued_at}` (a refresh token
//! only when the `refresh_token` scope was granted) and a refresh the same without
//! `refresh_token` — and never `expires_in`: a session ends when a call answers 401.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use chrono::Utc;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::state::Ctx;
use super::{CLIENT_ID, CLIENT_SECRET, ORG_ID, REDIRECT_URL, REFRESH_TOKEN, USER_ID};
use crate::oauth::{self, App};
use crate::util::{form_or_json, json as reply};

const APP: App = App {
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URL,
    response_type: true,
    scope_required: false,
    refuse,
};

/// Salesforce answers a request it will not redirect with an error page naming the error;
/// the fake answers the same words as JSON.
fn refuse(error: &str, message: &str) -> Value {
    json!({"error": error, "error_description": message})
}

/// `GET /services/oauth2/authorize`: the fake consents at once (see [`crate::oauth`]).
pub(super) async fn authorize(State(shared): State<Ctx>, RawQuery(q): RawQuery) -> Response {
    oauth::authorize(&shared, &APP, q.as_deref())
}

pub(super) async fn token(State(shared): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    let f = form_or_json(&headers, &body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let oauth_err = |error: &str, desc: &str| {
        reply(
            StatusCode::BAD_REQUEST,
            json!({"error": error, "error_description": desc}),
        )
    };
    let grant = get("grant_type");
    if grant != "refresh_token" && grant != "authorization_code" {
        return oauth_err("unsupported_grant_type", "grant type not supported");
    }
    if get("client_id") != CLIENT_ID {
        return oauth_err("invalid_client_id", "client identifier invalid");
    }
    if get("client_secret") != CLIENT_SECRET {
        return oauth_err("invalid_client", "invalid client credentials");
    }
    // The refresh token the answer carries, if any.
    let refresh = if grant == "refresh_token" {
        let given = get("refresh_token");
        let issued = shared.tokens().refresh_valid(given, CLIENT_ID);
        if given != REFRESH_TOKEN && !issued {
            return oauth_err("invalid_grant", "expired access/refresh token");
        }
        if issued && shared.faults().rotate_refresh_tokens {
            shared.tokens().revoke_refresh(given);
            Some(oauth::new_refresh_token(&shared, "5Aep861", CLIENT_ID))
        } else {
            None
        }
    } else {
        match oauth::exchange(&shared, get("code"), CLIENT_ID, get("redirect_uri")) {
            Ok(g) => {
                let scopes: Vec<&str> = g.scope.split_whitespace().collect();
                // No scope asked: the connected app's (`api refresh_token`) are granted.
                (scopes.is_empty() || scopes.contains(&"refresh_token"))
                    .then(|| oauth::new_refresh_token(&shared, "5Aep861", CLIENT_ID))
            }
            Err(why) => return oauth_err("invalid_grant", why),
        }
    };
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
    let mut body = json!({
        "access_token": access,
        "signature": base64::engine::general_purpose::STANDARD.encode(sig_bytes),
        "scope": "api refresh_token",
        "instance_url": format!("http://{}/salesforce", shared.addr),
        "id": format!("https://login.salesforce.com/id/{ORG_ID}/{USER_ID}"),
        "token_type": "Bearer",
        "issued_at": Utc::now().timestamp_millis().to_string(),
    });
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    reply(StatusCode::OK, body)
}
