//! The Jamf Pro bootstrap API of the CRM integration guide: one encrypted request per
//! employee, idempotent by `idempotency_key`.
//!
//! The sandbox decrypts `payload` with the Vault key ([`ENCRYPTION_KEY`], a Fernet key; the
//! token may also be base64-wrapped as the guide's Python does) and checks that `checksum`
//! is the SHA-256 of the plaintext, so a request the real service could not open fails here.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use chrono::Utc;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::faults::{self, ProviderCtx};
use super::store::{Shared, Vendor, VendorData};
use super::util::{self, bearer, json as reply};

pub const TOKEN: &str = "sandbox-jamf-bootstrap-token";
/// The Vault encryption key of the sandbox (a Fernet key).
pub const ENCRYPTION_KEY: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
const REQUEST_TYPES: &[&str] = &["create", "update", "delete"];

#[derive(Clone, Debug)]
struct Stored {
    request_id: String,
    /// The request body without the token, to tell a replay from a reuse of the key.
    fingerprint: Value,
    record: Value,
}

pub(crate) struct Data {
    requests: Vec<Stored>,
    by_key: BTreeMap<String, usize>,
}

/// What this fake's handlers get: the shared part and this vendor's own state.
pub(crate) type Ctx = Vendor<Data>;

impl VendorData for Data {
    fn new() -> Data {
        Data {
            requests: Vec::new(),
            by_key: BTreeMap::new(),
        }
    }

    fn records(&self) -> BTreeMap<String, Vec<Value>> {
        let mut out = BTreeMap::new();
        out.insert(
            "requests".to_string(),
            self.requests.iter().map(|r| r.record.clone()).collect(),
        );
        out
    }
}

fn fail(status: StatusCode, error: &str) -> Response {
    reply(status, json!({"success": false, "error": error}))
}

pub(crate) fn internal_error(_: &Shared) -> Response {
    fail(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
}

pub(crate) fn router(shared: Ctx) -> Router {
    let ctx = ProviderCtx {
        shared: shared.shared(),
        name: "jamf-bootstrap",
        internal_error,
    };
    Router::new()
        .route("/api/health", get(health))
        .route("/api/request", post(request))
        .route("/api/request/{id}", get(status))
        .fallback(|| async { fail(StatusCode::NOT_FOUND, "Not found") })
        .with_state(shared)
        .layer(middleware::from_fn_with_state(ctx, faults::observe))
}

async fn health(State(shared): State<Ctx>) -> Response {
    let n = shared.data().requests.len();
    reply(
        StatusCode::OK,
        json!({"status": "healthy", "timestamp": util::iso_ms(Utc::now()), "version": "1.0.0", "queued": n}),
    )
}

fn authorized(headers: &HeaderMap, body: Option<&Map<String, Value>>) -> bool {
    // The kit sends a bearer token; the guide's Python puts it in the body as `token`.
    bearer(headers).as_deref() == Some(TOKEN)
        || body.and_then(|b| b.get("token")).and_then(Value::as_str) == Some(TOKEN)
}

/// Decrypts the payload (a Fernet token, possibly base64-wrapped).
fn decrypt(payload: &str) -> Option<Vec<u8>> {
    let f = fernet::Fernet::new(ENCRYPTION_KEY)?;
    if let Ok(plain) = f.decrypt(payload) {
        return Some(plain);
    }
    let unwrapped = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .ok()?;
    f.decrypt(std::str::from_utf8(&unwrapped).ok()?).ok()
}

async fn request(State(shared): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = util::parse_json(&body);
    let obj = match &parsed {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    };
    if !authorized(&headers, obj) {
        return fail(StatusCode::UNAUTHORIZED, "Invalid or missing API token");
    }
    let obj = match (&parsed, obj) {
        (_, Some(o)) => o.clone(),
        (Err(e), None) => return fail(StatusCode::BAD_REQUEST, &format!("Invalid JSON: {e}")),
        (Ok(_), None) => {
            return fail(
                StatusCode::BAD_REQUEST,
                "Invalid request: expected a JSON object",
            );
        }
    };
    let text = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let missing: Vec<&str> = [
        "crm_id",
        "request_type",
        "payload",
        "checksum",
        "idempotency_key",
    ]
    .into_iter()
    .filter(|k| text(k).is_none())
    .collect();
    if !missing.is_empty() {
        return fail(
            StatusCode::BAD_REQUEST,
            &format!("Missing required fields: {}", missing.join(", ")),
        );
    }
    let request_type = text("request_type").unwrap_or_default();
    if !REQUEST_TYPES.contains(&request_type) {
        return fail(
            StatusCode::BAD_REQUEST,
            &format!("Invalid request_type: {request_type} (expected create, update or delete)"),
        );
    }
    let checksum = text("checksum").unwrap_or_default();
    if checksum.len() != 64 || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
        return fail(
            StatusCode::BAD_REQUEST,
            "Invalid checksum: expected a SHA-256 hex digest",
        );
    }
    if let Some(p) = obj.get("policies")
        && !p.is_null()
        && !p.as_array().is_some_and(|a| a.iter().all(Value::is_string))
    {
        return fail(
            StatusCode::BAD_REQUEST,
            "Invalid policies: expected an array of strings",
        );
    }
    let Some(plain) = decrypt(text("payload").unwrap_or_default()) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "Decryption failed: payload is not a Fernet token for the configured key",
        );
    };
    let digest = hex::encode(Sha256::digest(&plain));
    if !digest.eq_ignore_ascii_case(checksum) {
        return fail(StatusCode::BAD_REQUEST, "Checksum verification failed");
    }
    let mut fingerprint = obj.clone();
    fingerprint.remove("token");
    let fingerprint = Value::Object(fingerprint);
    let key = text("idempotency_key").unwrap_or_default().to_string();

    let mut st = shared.data();
    if let Some(&i) = st.by_key.get(&key) {
        let prior = &st.requests[i];
        if prior.fingerprint != fingerprint {
            return fail(
                StatusCode::CONFLICT,
                &format!("idempotency_key {key} was already used for a different request"),
            );
        }
        let mut r = reply(
            StatusCode::OK,
            json!({
                "success": true,
                "request_id": prior.request_id,
                "status": prior.record["status"],
                "message": "Request already received",
            }),
        );
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return r;
    }
    let request_id = format!("req_{}", shared.random_string(b"0123456789abcdef", 24));
    let decrypted = serde_json::from_slice::<Value>(&plain)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&plain).into_owned()));
    let record = json!({
        "request_id": request_id,
        "status": "queued",
        "crm_id": text("crm_id"),
        "request_type": request_type,
        "idempotency_key": key,
        "checksum": checksum.to_lowercase(),
        "smart_group": obj.get("smart_group").cloned().unwrap_or(Value::Null),
        "policies": obj.get("policies").cloned().unwrap_or(Value::Null),
        "employee": decrypted,
        "received_at": util::iso_ms(Utc::now()),
    });
    let index = st.requests.len();
    st.by_key.insert(key, index);
    st.requests.push(Stored {
        request_id: request_id.clone(),
        fingerprint,
        record,
    });
    reply(
        StatusCode::OK,
        json!({
            "success": true,
            "request_id": request_id,
            "status": "queued",
            "message": "Request queued for processing",
        }),
    )
}

async fn status(State(shared): State<Ctx>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if !authorized(&headers, None) {
        return fail(StatusCode::UNAUTHORIZED, "Invalid or missing API token");
    }
    let st = shared.data();
    match st.requests.iter().find(|r| r.request_id == id) {
        Some(r) => {
            let rec = &r.record;
            reply(
                StatusCode::OK,
                json!({
                    "success": true,
                    "request_id": r.request_id,
                    "status": rec["status"],
                    "crm_id": rec["crm_id"],
                    "request_type": rec["request_type"],
                    "received_at": rec["received_at"],
                }),
            )
        }
        None => fail(StatusCode::NOT_FOUND, &format!("Request {id} not found")),
    }
}
