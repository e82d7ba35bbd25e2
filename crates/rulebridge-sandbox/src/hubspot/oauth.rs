//! OAuth: `GET /oauth/authorize` (the connect flow's consent, `app.hubspot.com` at HubSpot)
//! and `POST /oauth/v1/token` (authorization-code and refresh-token grants).
//!
//! Reference (providers.md, HubSpot OAuth): the authorize URL is
//! `https://app.hubspot.com/oauth/authorize?client_id&redirect_uri&scope&state`; the token
//! endpoint takes a form and answers `{token_type: "bearer", access_token, refresh_token,
//! expires_in: 1800}`, and a bad grant 400 `{"error": "invalid_grant", "status": ...}`.
//! HubSpot keeps a refresh token for the life of the install (it answers the same one).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::state::Ctx;
use super::{AUTH_CODE, CLIENT_ID, CLIENT_SECRET, REDIRECT_URL, REFRESH_TOKEN};
use crate::oauth::{self, App};
use crate::util::{form_or_json, json as reply};

/// HubSpot's app: its redirect URL and the scope its authorize URL must carry.
const APP: App = App {
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URL,
    response_type: false,
    scope_required: true,
    refuse,
};

/// HubSpot shows an error page for an app or redirect it does not know; the fake answers
/// its words as JSON.
fn refuse(error: &str, message: &str) -> Value {
    json!({"status": "error", "error": error, "message": message})
}

/// `GET /oauth/authorize`: the fake consents at once (see [`crate::oauth`]).
pub(super) async fn authorize(State(shared): State<Ctx>, RawQuery(q): RawQuery) -> Response {
    oauth::authorize(&shared, &APP, q.as_deref())
}

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
    let refresh = match grant {
        "refresh_token" => {
            let given = get("refresh_token");
            let issued = shared.tokens().refresh_valid(given, CLIENT_ID);
            if given != REFRESH_TOKEN && !issued {
                return oauth_error(
                    "BAD_REFRESH_TOKEN",
                    "invalid_grant",
                    "missing or unknown refresh token",
                );
            }
            if issued && shared.faults().rotate_refresh_tokens {
                shared.tokens().revoke_refresh(given);
                oauth::new_refresh_token(&shared, "na1-", CLIENT_ID)
            } else {
                given.to_string()
            }
        }
        // The fixed code stands for a consent given outside the sandbox (tests of the grant
        // alone); codes of the authorize endpoint are single-use and bound to the redirect.
        _ if get("code") == AUTH_CODE => REFRESH_TOKEN.to_string(),
        _ => match oauth::exchange(&shared, get("code"), CLIENT_ID, get("redirect_uri")) {
            Ok(_) => oauth::new_refresh_token(&shared, "na1-", CLIENT_ID),
            Err(why) => return oauth_error("BAD_AUTH_CODE", "invalid_grant", why),
        },
    };
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
            "refresh_token": refresh,
            "access_token": access,
            "expires_in": ttl.as_secs(),
        }),
    )
}
