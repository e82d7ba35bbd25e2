//! The Jamf Pro bootstrap API of the CRM integration guide (seed `crm-to-jamf-bootstrap.md`):
//! one encrypted request per employee.
//!
//! The request is exactly what the guide's `send_jamf_request` posts ("Step 3" and "API
//! Request Structure"): `{crm_id, request_type, payload, encrypted_key, token, checksum}`,
//! with the API secret as `token` in the body. The fake opens it the way the guide's
//! `encrypt_employee_data` ("Step 2") closes it:
//!
//! 1. key = urlsafe-base64(PBKDF2-HMAC-SHA256(vault key, `jamf_bootstrap_salt`, 100,000, 32));
//! 2. `encrypted_key` is base64 of a Fernet token under the Vault key whose plaintext is that key;
//! 3. `payload` is base64 of a Fernet token under that key whose plaintext is the JSON text;
//! 4. `checksum` is the SHA-256 hex of that text, and the text is `json.dumps(data,
//!    sort_keys=True)` of the data (the guide's "Test Encryption" recomputes it so).
//!
//! Anything else is refused with the guide's error shape `{success: false, error}` ("Error
//! Handling": 401 for the token, 400 with `error` for a bad request, "Invalid key" /
//! "Invalid token" as the error texts its client looks for).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use chrono::Utc;
use http::StatusCode;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::faults::{self, ProviderCtx};
use super::store::{Shared, Vendor, VendorData};
use super::util::{self, json as reply};

/// The API secret from Vault (`api_secret`), sent as `token` in the body.
pub const TOKEN: &str = "sandbox-jamf-bootstrap-token";
/// The Vault encryption key of the sandbox (`encryption_key`; a Fernet key, as the guide's
/// `Fernet(encryption_key.encode())` requires).
pub const ENCRYPTION_KEY: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
/// The guide's PBKDF2 parameters (Step 2).
const SALT: &[u8] = b"jamf_bootstrap_salt";
const ITERATIONS: u32 = 100_000;
/// The guide's docstring: "Request type (create, update, delete)".
const REQUEST_TYPES: &[&str] = &["create", "update", "delete"];
/// The request fields of "API Request Structure", in the guide's order.
const FIELDS: &[&str] = &[
    "crm_id",
    "request_type",
    "payload",
    "encrypted_key",
    "token",
    "checksum",
];
/// "Supported Departments": smart group and policies by department.
const DEPARTMENTS: &[(&str, &str, &[&str])] = &[
    (
        "IT",
        "IT_Computers",
        &["Admin rights", "Dev tools", "Server access"],
    ),
    ("HR", "HR_Computers", &["Basic apps", "Limited rights"]),
    (
        "Finance",
        "FINANCE_Computers",
        &["Additional encryption", "Audit"],
    ),
    (
        "Marketing",
        "MARKETING_Computers",
        &["Creative apps", "Design tools"],
    ),
    (
        "Sales",
        "SALES_Computers",
        &["CRM systems", "Mobile policies"],
    ),
    ("Default", "DEFAULT_Computers", &["Basic security policies"]),
];

#[derive(Clone, Debug)]
struct Stored {
    request_id: String,
    /// What the request asked for, decrypted: a retry encrypts anew (Fernet tokens carry a
    /// fresh IV), so the ciphertext cannot tell a replay from a reuse of the key.
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

/// The guide's error body (`response.json().get('error')`).
fn fail(status: StatusCode, error: &str) -> Response {
    reply(status, json!({"success": false, "error": error}))
}

pub(crate) fn internal_error(_: &Shared) -> Response {
    // "500: Internal server error - contact administrator".
    fail(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
}

pub(crate) fn router(shared: Ctx) -> Router {
    let ctx = ProviderCtx {
        shared: shared.shared(),
        name: "jamf-bootstrap",
        internal_error,
    };
    // The guide names two endpoints: `POST /api/request` and `GET /api/health`.
    Router::new()
        .route("/api/health", get(health))
        .route("/api/request", post(request))
        .fallback(|| async { fail(StatusCode::NOT_FOUND, "Not found") })
        .with_state(shared)
        .layer(middleware::from_fn_with_state(ctx, faults::observe))
}

/// "Test API Connectivity": `GET /api/health` answers 200.
async fn health(State(shared): State<Ctx>) -> Response {
    let n = shared.data().requests.len();
    reply(
        StatusCode::OK,
        json!({"status": "healthy", "timestamp": util::iso_ms(Utc::now()), "queued": n}),
    )
}

/// The Fernet key the guide derives from the Vault key (computed once: 100,000 rounds).
fn derived_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| derive_key(ENCRYPTION_KEY))
}

/// `base64.urlsafe_b64encode(PBKDF2HMAC(SHA256, 32, salt, 100000).derive(vault_key.encode()))`
fn derive_key(vault_key: &str) -> String {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(vault_key.as_bytes(), SALT, ITERATIONS, &mut out);
    URL_SAFE.encode(out)
}

/// Opens `base64(Fernet(key).encrypt(plain))`.
fn open(key: &str, wrapped: &str) -> Option<Vec<u8>> {
    let token = STANDARD.decode(wrapped.trim()).ok()?;
    let token = std::str::from_utf8(&token).ok()?;
    fernet::Fernet::new(key)?.decrypt(token).ok()
}

async fn request(State(shared): State<Ctx>, body: Bytes) -> Response {
    let obj = match util::parse_json(&body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return fail(
                StatusCode::BAD_REQUEST,
                "Invalid request: expected a JSON object",
            );
        }
        Err(e) => return fail(StatusCode::BAD_REQUEST, &format!("Invalid JSON: {e}")),
    };
    let text = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    // "Error Handling": a request missing fields is a 400.
    let missing: Vec<&str> = FIELDS
        .iter()
        .copied()
        .filter(|k| text(k).is_none())
        .collect();
    if !missing.is_empty() {
        return fail(
            StatusCode::BAD_REQUEST,
            &format!("Missing required fields: {}", missing.join(", ")),
        );
    }
    // "Error Handling": 401 "Authentication failed - check API token"; the client looks for
    // "Invalid token" to refresh it. The token is the body's: the guide sends no auth header.
    if text("token") != Some(TOKEN) {
        return fail(StatusCode::UNAUTHORIZED, "Invalid token");
    }
    let request_type = text("request_type").unwrap_or_default();
    if !REQUEST_TYPES.contains(&request_type) {
        return fail(
            StatusCode::BAD_REQUEST,
            &format!("Invalid request_type: {request_type} (expected create, update or delete)"),
        );
    }
    // Step 2: `encrypted_key` is the derived key under the Vault key. The client's
    // `handle_encryption_error` reacts to "Invalid key" by refreshing its Vault keys.
    let key = derived_key();
    let Some(sent_key) = open(ENCRYPTION_KEY, text("encrypted_key").unwrap_or_default()) else {
        return fail(StatusCode::BAD_REQUEST, "Invalid key");
    };
    if sent_key != key.as_bytes() {
        return fail(StatusCode::BAD_REQUEST, "Invalid key");
    }
    // Step 2: the payload is the JSON text under the derived key.
    let Some(plain) = open(key, text("payload").unwrap_or_default()) else {
        return fail(StatusCode::BAD_REQUEST, "Invalid key");
    };
    let Some((json_text, data)) = std::str::from_utf8(&plain)
        .ok()
        .and_then(|t| Some((t, serde_json::from_str::<Value>(t).ok()?)))
        .and_then(|(t, v)| Some((t, v.as_object()?.clone())))
    else {
        return fail(
            StatusCode::BAD_REQUEST,
            "Invalid payload: expected the employee data as JSON",
        );
    };
    // Step 2's checksum is over the very text encrypted; "Test Encryption" verifies it against
    // `json.dumps(data, sort_keys=True)`, so the text must be that rendering of the data.
    let checksum = text("checksum").unwrap_or_default();
    let digest = hex::encode(Sha256::digest(json_text.as_bytes()));
    let canonical = python_json(&Value::Object(data.clone()));
    if !digest.eq_ignore_ascii_case(checksum.trim()) || canonical != json_text {
        return fail(StatusCode::BAD_REQUEST, "Checksum verification failed");
    }
    let (smart_group, policies) = match check_employee(&data) {
        Ok(p) => p,
        Err(e) => return fail(StatusCode::BAD_REQUEST, &e),
    };
    let crm_id = text("crm_id").unwrap_or_default().to_string();
    let fingerprint = json!({"crm_id": crm_id, "request_type": request_type, "data": data});
    // Step 4 puts an `idempotency_key` in the employee data (the guide's test data has none):
    // the same key again is the same request. The guide does not say what a reuse of the key
    // for other data gets; the fake refuses it (409) rather than file it under the first.
    let idempotency_key = data
        .get("idempotency_key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .map(str::to_string);

    let mut st = shared.data();
    if let Some(k) = &idempotency_key
        && let Some(&i) = st.by_key.get(k)
    {
        let prior = &st.requests[i];
        if prior.fingerprint != fingerprint {
            return fail(
                StatusCode::CONFLICT,
                &format!("idempotency_key {k} was already used for a different request"),
            );
        }
        return reply(
            StatusCode::OK,
            json!({
                "success": true,
                "request_id": prior.request_id,
                "status": prior.record["status"],
                "message": "Request already received",
            }),
        );
    }
    let request_id = format!("req_{}", shared.random_string(b"0123456789abcdef", 24));
    let record = json!({
        "request_id": request_id,
        "status": "queued",
        "crm_id": crm_id,
        "request_type": request_type,
        "idempotency_key": idempotency_key,
        "checksum": checksum.trim().to_lowercase(),
        "smart_group": smart_group,
        "policies": policies,
        "employee": data,
        "received_at": util::iso_ms(Utc::now()),
    });
    let index = st.requests.len();
    if let Some(k) = idempotency_key {
        st.by_key.insert(k, index);
    }
    st.requests.push(Stored {
        request_id: request_id.clone(),
        fingerprint,
        record,
    });
    // The client reads `success` and `message` ("Test Request Flow").
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

/// Step 4's checks of the employee data, and the department's smart group and policies.
fn check_employee(data: &Map<String, Value>) -> Result<(&'static str, Vec<&'static str>), String> {
    let present = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if !["employee_id", "email", "full_name", "department"]
        .iter()
        .all(|k| present(k))
    {
        return Err("Missing required employee information".into());
    }
    let serial = data
        .get("device")
        .and_then(|d| d.get("serial"))
        .and_then(Value::as_str);
    if serial.is_none_or(str::is_empty) {
        return Err("Device serial number is required".into());
    }
    // The client maps departments outside the table to `Default` before sending; the API
    // knows only the table's.
    let department = data.get("department").and_then(Value::as_str).unwrap_or("");
    match DEPARTMENTS.iter().find(|(d, _, _)| *d == department) {
        Some((_, group, policies)) => Ok((group, policies.to_vec())),
        None => Err(format!("Unsupported department: {department}")),
    }
}

/// Python's `json.dumps(value, sort_keys=True)`: `", "` and `": "` separators, keys in code
/// point order, non-ASCII as `\uXXXX` (surrogate pairs beyond the BMP), floats as `repr`.
fn python_json(v: &Value) -> String {
    let mut out = String::new();
    write_python_json(v, &mut out);
    out
}

fn write_python_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&python_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => python_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_json(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            // Rust orders strings by UTF-8 bytes, which is code point order, as Python sorts.
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, x)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_string(k, out);
                out.push_str(": ");
                write_python_json(x, out);
            }
            out.push('}');
        }
    }
}

fn python_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='\u{7f}' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// `repr(float)`: the shortest round-trip digits, positional for exponents -4..16, else
/// `d.ddde+XX`.
fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e3".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let es = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{es}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_is_pythons() {
        // Expected texts are what CPython's json.dumps(..., sort_keys=True) prints.
        let v = json!({"b": [1, 2.5, null, true], "a": {"z": "é€😀", "y": "q\"\\\n\u{1}"}, "é": 1});
        assert_eq!(
            python_json(&v),
            r#"{"a": {"y": "q\"\\\n\u0001", "z": "\u00e9\u20ac\ud83d\ude00"}, "b": [1, 2.5, null, true], "\u00e9": 1}"#
        );
        assert_eq!(python_json(&json!({})), "{}");
        assert_eq!(python_json(&json!([])), "[]");
        for (f, repr) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (123456789012345.6, "123456789012345.6"),
            (1e22, "1e+22"),
        ] {
            assert_eq!(python_float(f), repr, "{f}");
        }
    }

    #[test]
    fn key_is_derived_as_the_guide_does() {
        // Python's hashlib.pbkdf2_hmac('sha256', b'password', b'salt', 1, 32): the argument
        // order is password, salt, rounds.
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"password", b"salt", 1, &mut out);
        assert_eq!(
            hex::encode(out),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
        assert_eq!(
            URL_SAFE.decode(derived_key()).map(|k| k.len()).ok(),
            Some(32)
        );
    }
}
