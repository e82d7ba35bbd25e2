//! The CRM's internal user-sync endpoint (`POST /api/internal/sync/users`), as the wrapper
//! user-sync guide (seed `wrapper-user-sync.md`) specifies and its reference Express handler
//! behaves.
//!
//! Behaviours kept from the reference handler: an update changes only name, isActive, roles
//! and permissions; a value longer than its column fails that user alone. The request schema
//! is checked like the guide's Joi schema (first error only), except that unknown keys are
//! allowed.
//!
//! One request carries one tenant ("Headers": `X-Tenant-ID` is the tenant; "Request Body":
//! `tenant.id`; reference "User sync": `X-Tenant-ID` equals `tenant.id`): a request whose two
//! disagree is refused, and users are stored and matched under that tenant. The users table's
//! `email UNIQUE` ("Database Schema") still holds across tenants: an e-mail another tenant
//! already has fails that user with the database's unique-violation error.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};

use super::faults::{self, ProviderCtx, RateLimited};
use super::ratelimit::{Rolling, Verdict, retry_after_secs};
use super::store::{Shared, Vendor, VendorData};
use super::util::{self, json as reply};

pub const API_KEY: &str = "sandbox-internal-key";
const WINDOW: Duration = Duration::from_secs(15 * 60);

pub(crate) struct Data {
    next_id: u64,
    users: BTreeMap<u64, Value>,
    window: Rolling,
}

/// What this fake's handlers get: the shared part and this vendor's own state.
pub(crate) type Ctx = Vendor<Data>;

impl VendorData for Data {
    fn new() -> Data {
        Data {
            next_id: 1,
            users: BTreeMap::new(),
            window: Rolling::new(WINDOW),
        }
    }

    fn records(&self) -> BTreeMap<String, Vec<Value>> {
        let mut out = BTreeMap::new();
        out.insert("users".to_string(), self.users.values().cloned().collect());
        out
    }
}

fn fail(status: StatusCode, error: &str) -> Response {
    reply(
        status,
        json!({"success": false, "error": error, "timestamp": util::iso_ms(Utc::now())}),
    )
}

pub(crate) fn internal_error(_: &Shared) -> Response {
    fail(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
}

pub(crate) fn router(shared: Ctx) -> Router {
    let ctx = ProviderCtx {
        shared: shared.shared(),
        name: "usersync",
        internal_error,
    };
    Router::new()
        .route("/api/internal/sync/users", post(sync))
        .route_layer(middleware::from_fn_with_state(shared.clone(), limit))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                [(http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot POST</pre>\n</body>\n</html>\n",
            )
                .into_response()
        })
        .with_state(shared)
        .layer(middleware::from_fn_with_state(ctx, faults::observe))
}

/// express-rate-limit in front of the route: per client address, legacy headers.
async fn limit(State(shared): State<Ctx>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let max = shared.limit(shared.cfg.usersync_rate_limit);
    let (verdict, used) = {
        let mut st = shared.data();
        let v = st.window.check(&ip, max);
        (v, st.window.used(&ip))
    };
    let reset = Utc::now().timestamp() as u64 + WINDOW.as_secs();
    let mut resp = match verdict {
        Verdict::Allowed { .. } => next.run(req).await,
        Verdict::Limited { retry_after } => {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                [(http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "Too many sync requests, please try again later",
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs(retry_after).to_string()) {
                r.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
            r.extensions_mut().insert(RateLimited);
            r
        }
    };
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", max as u64),
        ("x-ratelimit-remaining", max.saturating_sub(used) as u64),
        ("x-ratelimit-reset", reset),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            h.insert(name, v);
        }
    }
    resp
}

/// Joi's first complaint about the body, as `(message, path, type)`.
fn check_schema(body: &Value) -> Option<(String, Vec<Value>, &'static str)> {
    let required = |path: &[Value], label: &str| {
        Some((
            format!("\"{label}\" is required"),
            path.to_vec(),
            "any.required",
        ))
    };
    let Some(obj) = body.as_object() else {
        return Some((
            "\"value\" must be of type object".into(),
            vec![],
            "object.base",
        ));
    };
    match obj.get("operation") {
        None => return required(&[json!("operation")], "operation"),
        Some(Value::String(_)) => {}
        Some(_) => {
            return Some((
                "\"operation\" must be a string".into(),
                vec![json!("operation")],
                "string.base",
            ));
        }
    }
    match obj.get("tenant") {
        None => return required(&[json!("tenant")], "tenant"),
        Some(Value::Object(t)) => {
            for key in ["id", "name"] {
                match t.get(key) {
                    None => {
                        return required(&[json!("tenant"), json!(key)], &format!("tenant.{key}"));
                    }
                    Some(Value::String(s)) if !s.is_empty() => {}
                    Some(Value::String(_)) => {
                        return Some((
                            format!("\"tenant.{key}\" is not allowed to be empty"),
                            vec![json!("tenant"), json!(key)],
                            "string.empty",
                        ));
                    }
                    Some(_) => {
                        return Some((
                            format!("\"tenant.{key}\" must be a string"),
                            vec![json!("tenant"), json!(key)],
                            "string.base",
                        ));
                    }
                }
            }
        }
        Some(_) => {
            return Some((
                "\"tenant\" must be of type object".into(),
                vec![json!("tenant")],
                "object.base",
            ));
        }
    }
    let users = match obj.get("users") {
        None => return required(&[json!("users")], "users"),
        Some(Value::Array(u)) => u,
        Some(_) => {
            return Some((
                "\"users\" must be an array".into(),
                vec![json!("users")],
                "array.base",
            ));
        }
    };
    for (i, u) in users.iter().enumerate() {
        let Some(u) = u.as_object() else {
            return Some((
                format!("\"users[{i}]\" must be of type object"),
                vec![json!("users"), json!(i)],
                "object.base",
            ));
        };
        match u.get("email") {
            None => {
                return required(
                    &[json!("users"), json!(i), json!("email")],
                    &format!("users[{i}].email"),
                );
            }
            Some(Value::String(e)) if util::is_email(e) => {}
            Some(_) => {
                return Some((
                    format!("\"users[{i}].email\" must be a valid email"),
                    vec![json!("users"), json!(i), json!("email")],
                    "string.email",
                ));
            }
        }
        match u.get("name") {
            None => {
                return required(
                    &[json!("users"), json!(i), json!("name")],
                    &format!("users[{i}].name"),
                );
            }
            Some(Value::String(n)) if !n.is_empty() => {}
            Some(_) => {
                return Some((
                    format!("\"users[{i}].name\" must be a non-empty string"),
                    vec![json!("users"), json!(i), json!("name")],
                    "string.base",
                ));
            }
        }
    }
    None
}

/// Column widths of the users table: a longer value fails that user.
fn too_long(u: &Value, tenant: &str) -> Option<String> {
    let limits = [
        ("email", 255),
        ("name", 255),
        ("kindeUserId", 255),
        ("department", 100),
        ("title", 100),
    ];
    for (k, n) in limits {
        if u.get(k)
            .and_then(Value::as_str)
            .is_some_and(|s| s.chars().count() > n)
        {
            return Some(format!("value too long for type character varying({n})"));
        }
    }
    (tenant.chars().count() > 255)
        .then(|| "value too long for type character varying(255)".to_string())
}

async fn sync(State(shared): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    if util::header_str(&headers, "x-internal-api-key") != Some(API_KEY) {
        return fail(StatusCode::UNAUTHORIZED, "Unauthorized - Invalid API key");
    }
    for h in ["x-tenant-id", "x-sync-source"] {
        if util::header_str(&headers, h).is_none_or(|v| v.trim().is_empty()) {
            let name = if h == "x-tenant-id" {
                "X-Tenant-ID"
            } else {
                "X-Sync-Source"
            };
            return fail(
                StatusCode::BAD_REQUEST,
                &format!("Missing required header: {name}"),
            );
        }
    }
    // express.json() only parses JSON bodies; anything else leaves the body empty.
    let is_json = util::header_str(&headers, "content-type")
        .is_some_and(|c| c.to_ascii_lowercase().contains("json"));
    let body = if is_json {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => v,
            Err(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    [(http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Bad Request</pre>\n</body>\n</html>\n",
                )
                    .into_response();
            }
        }
    } else {
        json!({})
    };
    if let Some((message, path, kind)) = check_schema(&body) {
        let label = path
            .iter()
            .map(|p| match p {
                Value::Number(n) => format!("[{n}]"),
                other => format!(".{}", other.as_str().unwrap_or("")),
            })
            .collect::<String>()
            .trim_start_matches('.')
            .to_string();
        return reply(
            StatusCode::BAD_REQUEST,
            json!({
                "success": false,
                "error": "Invalid request format",
                "details": [{"message": message, "path": path, "type": kind, "context": {"label": label, "key": path.last()}}],
            }),
        );
    }
    let operation = body["operation"].as_str().unwrap_or("").to_string();
    let tenant_id = body["tenant"]["id"].as_str().unwrap_or("").to_string();
    // The guide's "Error Response Format", status 400 ("Validation Failures").
    let header_tenant = util::header_str(&headers, "x-tenant-id").unwrap_or("");
    if header_tenant != tenant_id {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({
                "success": false,
                "error": "Tenant mismatch: X-Tenant-ID does not match tenant.id",
                "timestamp": util::iso_ms(Utc::now()),
                "details": format!("X-Tenant-ID is {header_tenant:?}, tenant.id is {tenant_id:?}"),
            }),
        );
    }
    let tenant_name = body["tenant"]["name"].as_str().unwrap_or("").to_string();
    let users = body["users"].as_array().cloned().unwrap_or_default();
    let now = util::iso_ms(Utc::now());
    let mut results = Vec::new();
    let mut st = shared.data();
    for u in &users {
        let user_id = u.get("id").cloned().unwrap_or(Value::Null);
        if let Some(e) = too_long(u, &tenant_id) {
            results.push(json!({"userId": user_id, "status": "failed", "error": e}));
            continue;
        }
        let email = u["email"].as_str().unwrap_or("");
        let holder = st
            .users
            .iter()
            .find(|(_, r)| r["email"].as_str() == Some(email))
            .map(|(id, r)| (*id, r["tenantId"].as_str() == Some(tenant_id.as_str())));
        let existing = match holder {
            Some((id, true)) => Some(id),
            // Another tenant's user: creating it here violates `email UNIQUE`.
            Some((_, false)) => {
                results.push(json!({"userId": user_id, "status": "failed", "error": "duplicate key value violates unique constraint \"users_email_key\""}));
                continue;
            }
            None => None,
        };
        match existing {
            Some(id) => {
                if let Some(r) = st.users.get_mut(&id) {
                    r["name"] = u["name"].clone();
                    r["isActive"] = u.get("isActive").cloned().unwrap_or(Value::Null);
                    r["roles"] = u.get("roles").cloned().unwrap_or(Value::Null);
                    r["permissions"] = u.get("permissions").cloned().unwrap_or(Value::Null);
                    r["lastSyncedAt"] = json!(now);
                    r["updatedAt"] = json!(now);
                }
                results.push(json!({"userId": user_id, "status": "updated", "crmUserId": id, "message": "User updated successfully"}));
            }
            None => {
                let id = st.next_id;
                st.next_id += 1;
                let field = |k: &str, default: Value| match u.get(k) {
                    Some(Value::Null) | None => default,
                    Some(v) => v.clone(),
                };
                st.users.insert(
                    id,
                    json!({
                        "id": id,
                        "email": email,
                        "name": u["name"],
                        "kindeUserId": field("kindeUserId", Value::Null),
                        "tenantId": tenant_id,
                        "isActive": field("isActive", json!(true)),
                        "isAdmin": field("isAdmin", json!(false)),
                        "department": field("department", Value::Null),
                        "title": field("title", Value::Null),
                        "roles": field("roles", json!([])),
                        "permissions": field("permissions", json!([])),
                        "syncedFrom": "wrapper",
                        "lastSyncedAt": now,
                        "createdAt": now,
                        "updatedAt": now,
                    }),
                );
                results.push(json!({"userId": user_id, "status": "created", "crmUserId": id, "message": "User created successfully"}));
            }
        }
    }
    let failed = results.iter().filter(|r| r["status"] == "failed").count();
    reply(
        StatusCode::OK,
        json!({
            "success": true,
            "message": format!("Synced {} users", users.len()),
            "results": results,
            "tenant": {"id": tenant_id, "name": tenant_name},
            "metadata": {
                "operation": operation,
                "syncedAt": now,
                "totalUsers": users.len(),
                "successful": users.len() - failed,
                "failed": failed,
            },
        }),
    )
}
