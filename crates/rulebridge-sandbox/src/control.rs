//! The control API under `/_sandbox`: inspect state, reset, change faults, expire tokens.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;
use serde_json::{Value, json};

use super::faults::Faults;
use super::store::Store;
use super::util::{self, json as reply, query_get, query_pairs};

pub(crate) fn router(shared: Arc<Store>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/state", get(state))
        .route("/reset", post(reset))
        .route("/faults", get(get_faults).post(set_faults))
        .route("/expire-tokens", post(expire_tokens))
        .with_state(shared)
}

async fn index(State(shared): State<Arc<Store>>) -> Response {
    let base = format!("http://{}", shared.shared().addr);
    let providers: serde_json::Map<String, Value> = super::PROVIDERS
        .iter()
        .map(|p| (p.to_string(), json!(format!("{base}/{p}"))))
        .collect();
    let credentials: serde_json::Map<String, Value> = super::CREDENTIALS
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    reply(
        StatusCode::OK,
        json!({
            "providers": providers,
            "credentials": credentials,
            "control": {
                "state": format!("GET {base}/_sandbox/state[?provider=NAME][&log=false]"),
                "reset": format!("POST {base}/_sandbox/reset"),
                "faults": format!("GET|POST {base}/_sandbox/faults"),
                "expire_tokens": format!("POST {base}/_sandbox/expire-tokens"),
            },
        }),
    )
}

async fn state(State(shared): State<Arc<Store>>, RawQuery(q): RawQuery) -> Response {
    let pairs = query_pairs(q.as_deref());
    let provider = query_get(&pairs, "provider");
    if let Some(p) = provider
        && !super::PROVIDERS.contains(&p)
    {
        return reply(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no provider {p}"), "providers": super::PROVIDERS}),
        );
    }
    let with_log = query_get(&pairs, "log") != Some("false");
    let snap = shared.snapshot(provider, with_log);
    reply(
        StatusCode::OK,
        serde_json::to_value(&snap).unwrap_or(Value::Null),
    )
}

async fn reset(State(shared): State<Arc<Store>>) -> Response {
    shared.reset();
    reply(StatusCode::OK, json!({"reset": true}))
}

async fn get_faults(State(shared): State<Arc<Store>>) -> Response {
    reply(
        StatusCode::OK,
        serde_json::to_value(shared.shared().faults()).unwrap_or(Value::Null),
    )
}

/// Merges the given fields into the fault settings in force.
async fn set_faults(State(shared): State<Arc<Store>>, body: Bytes) -> Response {
    let patch = match util::parse_json(&body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"error": "expected a JSON object of fault settings"}),
            );
        }
        Err(e) => return reply(StatusCode::BAD_REQUEST, json!({ "error": e })),
    };
    let mut current = serde_json::to_value(shared.shared().faults()).unwrap_or_else(|_| json!({}));
    if let Value::Object(c) = &mut current {
        c.extend(patch);
    }
    match serde_json::from_value::<Faults>(current) {
        Ok(f) => {
            for (name, rate) in [
                ("error_rate", f.error_rate),
                ("drop_rate", f.drop_rate),
                ("drop_after_rate", f.drop_after_rate),
            ] {
                if !(0.0..=1.0).contains(&rate) {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        json!({"error": format!("{name} must be between 0 and 1")}),
                    );
                }
            }
            if !(f.rate_limit_factor.is_finite() && f.rate_limit_factor > 0.0) {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "rate_limit_factor must be a positive number"}),
                );
            }
            shared.shared().set_faults(f.clone());
            reply(
                StatusCode::OK,
                serde_json::to_value(f).unwrap_or(Value::Null),
            )
        }
        Err(e) => reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    }
}

async fn expire_tokens(State(shared): State<Arc<Store>>) -> Response {
    let n = shared.tokens_expire_all();
    reply(StatusCode::OK, json!({ "expired": n }))
}
