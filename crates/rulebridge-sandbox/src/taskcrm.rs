//! The project CRM API of the bidirectional-sync guide: projects, tasks, users, clients and
//! comments with CRUD, the guide's sub-resources, OAuth2 client credentials and a
//! 100 requests/minute limit per client.
//!
//! The guide documents the client side only; the server's shapes here are the sandbox's
//! (`{data, total, page, per_page}` lists, 409 on unique fields, 422 on validation).

use std::collections::BTreeMap;

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{NaiveDate, Utc};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};

use super::faults::{self, ProviderCtx, RateLimited};
use super::ratelimit::{Rolling, Verdict, retry_after_secs};
use super::store::{Shared, TokenCheck, Vendor, VendorData};
use super::util::{self, bearer, form_or_json, json as reply, query_get, query_pairs};

pub const CLIENT_ID: &str = "sandbox-client";
pub const CLIENT_SECRET: &str = "sandbox-secret";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str(usize),
    Email,
    Enum(&'static [&'static str]),
    Int,
    Date,
    Bool,
}

struct FieldSpec {
    name: &'static str,
    kind: Kind,
    required: bool,
    unique: bool,
    default: Option<&'static str>,
    /// The collection an id must exist in (`entity` for comments' entity_id).
    references: Option<&'static str>,
}

const fn fs(name: &'static str, kind: Kind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: false,
        unique: false,
        default: None,
        references: None,
    }
}

const PROJECT_STATUS: &[&str] = &["planning", "active", "on_hold", "completed", "cancelled"];
const PRIORITY: &[&str] = &["low", "medium", "high", "critical"];
const TASK_STATUS: &[&str] = &["todo", "in_progress", "review", "done"];
const ROLES: &[&str] = &["admin", "manager", "member", "viewer"];
const ENTITY_TYPES: &[&str] = &["project", "task", "client"];

const PROJECT: &[FieldSpec] = &[
    FieldSpec {
        required: true,
        ..fs("name", Kind::Str(200))
    },
    fs("description", Kind::Str(5000)),
    FieldSpec {
        default: Some("planning"),
        ..fs("status", Kind::Enum(PROJECT_STATUS))
    },
    FieldSpec {
        default: Some("medium"),
        ..fs("priority", Kind::Enum(PRIORITY))
    },
    FieldSpec {
        references: Some("clients"),
        ..fs("client_id", Kind::Int)
    },
    FieldSpec {
        unique: true,
        ..fs("external_id", Kind::Str(100))
    },
    fs("start_date", Kind::Date),
    fs("end_date", Kind::Date),
];

const TASK: &[FieldSpec] = &[
    FieldSpec {
        required: true,
        ..fs("title", Kind::Str(200))
    },
    fs("description", Kind::Str(5000)),
    FieldSpec {
        required: true,
        references: Some("projects"),
        ..fs("project_id", Kind::Int)
    },
    FieldSpec {
        references: Some("users"),
        ..fs("assignee_id", Kind::Int)
    },
    FieldSpec {
        default: Some("todo"),
        ..fs("status", Kind::Enum(TASK_STATUS))
    },
    FieldSpec {
        default: Some("medium"),
        ..fs("priority", Kind::Enum(PRIORITY))
    },
    fs("due_date", Kind::Date),
];

const USER: &[FieldSpec] = &[
    FieldSpec {
        required: true,
        unique: true,
        ..fs("email", Kind::Email)
    },
    FieldSpec {
        required: true,
        ..fs("name", Kind::Str(200))
    },
    FieldSpec {
        default: Some("member"),
        ..fs("role", Kind::Enum(ROLES))
    },
    FieldSpec {
        default: Some("true"),
        ..fs("is_active", Kind::Bool)
    },
];

const CLIENT: &[FieldSpec] = &[
    FieldSpec {
        required: true,
        ..fs("name", Kind::Str(200))
    },
    fs("email", Kind::Email),
    fs("phone", Kind::Str(40)),
    fs("company", Kind::Str(200)),
    fs("industry", Kind::Str(100)),
    FieldSpec {
        unique: true,
        ..fs("external_id", Kind::Str(100))
    },
];

const COMMENT: &[FieldSpec] = &[
    FieldSpec {
        required: true,
        ..fs("content", Kind::Str(10000))
    },
    FieldSpec {
        required: true,
        ..fs("entity_type", Kind::Enum(ENTITY_TYPES))
    },
    FieldSpec {
        required: true,
        references: Some("entity"),
        ..fs("entity_id", Kind::Int)
    },
    FieldSpec {
        references: Some("users"),
        ..fs("author_id", Kind::Int)
    },
];

const ENTITIES: &[(&str, &str, &[FieldSpec])] = &[
    ("projects", "project", PROJECT),
    ("tasks", "task", TASK),
    ("users", "user", USER),
    ("clients", "client", CLIENT),
    ("comments", "comment", COMMENT),
];

fn entity(name: &str) -> Option<(&'static str, &'static str, &'static [FieldSpec])> {
    ENTITIES.iter().copied().find(|(n, _, _)| *n == name)
}

const READ_ONLY: &[&str] = &["id", "created_at", "updated_at"];

pub(crate) struct Data {
    next: BTreeMap<&'static str, u64>,
    rows: BTreeMap<&'static str, BTreeMap<u64, Value>>,
    window: Rolling,
}

/// What this fake's handlers get: the shared part and this vendor's own state.
pub(crate) type Ctx = Vendor<Data>;

impl VendorData for Data {
    fn new() -> Data {
        Data {
            next: BTreeMap::new(),
            rows: ENTITIES
                .iter()
                .map(|(n, _, _)| (*n, BTreeMap::new()))
                .collect(),
            window: Rolling::new(Duration::from_secs(60)),
        }
    }

    fn records(&self) -> BTreeMap<String, Vec<Value>> {
        self.rows
            .iter()
            .map(|(k, v)| (k.to_string(), v.values().cloned().collect()))
            .collect()
    }
}

impl Data {
    fn exists(&self, collection: &str, id: u64) -> bool {
        self.rows
            .get(collection)
            .is_some_and(|m| m.contains_key(&id))
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    reply(status, json!({"error": code, "message": message}))
}

pub(crate) fn internal_error(_: &Shared) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "An unexpected error occurred",
    )
}

fn not_found(singular: &str, id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("{} {id} not found", capitalize(singular)),
    )
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn invalid(details: Vec<(String, String)>) -> Response {
    reply(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "error": "validation_error",
            "message": "Validation failed",
            "details": details.into_iter().map(|(f, m)| json!({"field": f, "message": m})).collect::<Vec<_>>(),
        }),
    )
}

pub(crate) fn router(shared: Ctx) -> Router {
    let ctx = ProviderCtx {
        shared: shared.shared(),
        name: "taskcrm",
        internal_error,
    };
    let api = Router::new()
        .route("/api/v1/{entity}", get(list).post(create))
        .route(
            "/api/v1/{entity}/{id}",
            get(show).put(update).delete(destroy),
        )
        .route(
            "/api/v1/{entity}/{id}/{sub}",
            get(sub_list).patch(sub_patch),
        )
        .route_layer(middleware::from_fn_with_state(shared.clone(), gate));
    Router::new()
        .route("/oauth/token", post(token))
        .route(
            "/api/v1/health",
            get(|| async { reply(StatusCode::OK, json!({"status": "ok"})) }),
        )
        .merge(api)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "No such endpoint") })
        .with_state(shared)
        .layer(middleware::from_fn_with_state(ctx, faults::observe))
}

async fn token(State(shared): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    let f = form_or_json(&headers, &body);
    let (id, secret) = match util::basic(&headers) {
        Some(c) => c,
        None => (
            f.get("client_id").cloned().unwrap_or_default(),
            f.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    if f.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"}),
        );
    }
    if id != CLIENT_ID || secret != CLIENT_SECRET {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
        );
    }
    let access = format!(
        "tcrm_{}",
        shared.random_string(b"abcdefghijklmnopqrstuvwxyz0123456789", 40)
    );
    let ttl = shared.cfg.token_ttl;
    shared.tokens().issue("taskcrm", &access, CLIENT_ID, ttl);
    reply(
        StatusCode::OK,
        json!({"access_token": access, "token_type": "Bearer", "expires_in": ttl.as_secs(), "scope": "read write"}),
    )
}

/// Bearer check, then the per-client limit with its headers.
async fn gate(State(shared): State<Ctx>, req: Request, next: Next) -> Response {
    let subject = match bearer(req.headers()).map(|t| shared.tokens().check("taskcrm", &t)) {
        Some(TokenCheck::Valid(s)) => s,
        Some(TokenCheck::Expired(_)) => {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "Access token expired",
            );
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\", error_description=\"The access token expired\""),
            );
            return r;
        }
        _ => {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Missing or invalid access token",
            );
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    };
    let max = shared.limit(shared.cfg.taskcrm_rate_limit);
    let (verdict, used) = {
        let mut st = shared.data();
        let v = st.window.check(&subject, max);
        (v, st.window.used(&subject))
    };
    let mut resp = match verdict {
        Verdict::Allowed { .. } => next.run(req).await,
        Verdict::Limited { retry_after } => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                &format!("Rate limit exceeded: {max} requests per minute"),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs(retry_after).to_string()) {
                r.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
            r.extensions_mut().insert(RateLimited);
            r
        }
    };
    let reset = match verdict {
        Verdict::Limited { retry_after } => retry_after_secs(retry_after),
        Verdict::Allowed { .. } => 60,
    };
    for (name, value) in [
        ("x-ratelimit-limit", max as u64),
        ("x-ratelimit-remaining", max.saturating_sub(used) as u64),
        ("x-ratelimit-reset", reset),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match util::parse_json(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Request body must be a JSON object",
        )),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("Malformed JSON: {e}"),
        )),
    }
}

/// Validates `input` for `collection` (merged over `existing` on update) and returns the
/// new row without id and timestamps.
fn check(
    st: &Data,
    collection: &'static str,
    singular: &str,
    spec: &[FieldSpec],
    input: &Map<String, Value>,
    existing: Option<(u64, &Value)>,
) -> Result<Map<String, Value>, Response> {
    let mut row: Map<String, Value> = existing
        .and_then(|(_, v)| v.as_object().cloned())
        .unwrap_or_default();
    for k in READ_ONLY {
        row.remove(*k);
    }
    let mut details = Vec::new();
    for (k, v) in input {
        if READ_ONLY.contains(&k.as_str()) {
            continue;
        }
        if !spec.iter().any(|f| f.name == k) {
            details.push((k.clone(), "is not a recognized field".to_string()));
            continue;
        }
        row.insert(k.clone(), v.clone());
    }
    for f in spec {
        let v = row.get(f.name).cloned().unwrap_or(Value::Null);
        let blank = v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty());
        if blank {
            if f.required {
                details.push((f.name.to_string(), "is required".to_string()));
            } else if existing.is_none()
                && let Some(d) = f.default
            {
                row.insert(
                    f.name.to_string(),
                    if f.kind == Kind::Bool {
                        json!(d == "true")
                    } else {
                        json!(d)
                    },
                );
            } else {
                row.insert(f.name.to_string(), Value::Null);
            }
            continue;
        }
        let problem = match f.kind {
            Kind::Str(max) => match v.as_str() {
                Some(s) if s.chars().count() > max => {
                    Some(format!("must be at most {max} characters"))
                }
                Some(_) => None,
                None => Some("must be a string".to_string()),
            },
            Kind::Email => match v.as_str() {
                Some(s) if util::is_email(s) => None,
                _ => Some("must be a valid email address".to_string()),
            },
            Kind::Enum(options) => match v.as_str() {
                Some(s) if options.contains(&s) => None,
                _ => Some(format!("must be one of: {}", options.join(", "))),
            },
            Kind::Int => match v.as_u64() {
                Some(_) => None,
                None => Some("must be a positive integer".to_string()),
            },
            Kind::Date => match v.as_str() {
                Some(s) if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() => None,
                _ => Some("must be a date (YYYY-MM-DD)".to_string()),
            },
            Kind::Bool => (!v.is_boolean()).then(|| "must be true or false".to_string()),
        };
        if let Some(p) = problem {
            details.push((f.name.to_string(), p));
            continue;
        }
        if let (Some(target), Some(id)) = (f.references, v.as_u64()) {
            let target = if target == "entity" {
                match row.get("entity_type").and_then(Value::as_str) {
                    Some("project") => "projects",
                    Some("task") => "tasks",
                    Some("client") => "clients",
                    _ => continue,
                }
            } else {
                target
            };
            if !st.exists(target, id) {
                let singular = entity(target).map(|e| e.1).unwrap_or(target);
                details.push((
                    f.name.to_string(),
                    format!("{singular} {id} does not exist"),
                ));
            }
        }
    }
    if !details.is_empty() {
        return Err(invalid(details));
    }
    let me = existing.map(|(id, _)| id);
    for f in spec.iter().filter(|f| f.unique) {
        let Some(v) = row.get(f.name).and_then(Value::as_str) else {
            continue;
        };
        let clash = st.rows.get(collection).and_then(|m| {
            m.iter().find(|(id, r)| {
                Some(**id) != me
                    && r.get(f.name).and_then(Value::as_str).is_some_and(|x| {
                        if f.kind == Kind::Email {
                            x.eq_ignore_ascii_case(v)
                        } else {
                            x == v
                        }
                    })
            })
        });
        if let Some((id, _)) = clash {
            return Err(reply(
                StatusCode::CONFLICT,
                json!({
                    "error": "conflict",
                    "message": format!("A {singular} with {} {v} already exists", f.name),
                    "field": f.name,
                    "existing_id": id,
                }),
            ));
        }
    }
    Ok(row)
}

fn lookup(name: &str) -> Result<(&'static str, &'static str, &'static [FieldSpec]), Response> {
    entity(name).ok_or_else(|| error(StatusCode::NOT_FOUND, "not_found", "No such endpoint"))
}

async fn create(State(shared): State<Ctx>, Path(name): Path<String>, body: Bytes) -> Response {
    let (collection, singular, spec) = match lookup(&name) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let input = match parse_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut st = shared.data();
    let mut row = match check(&st, collection, singular, spec, &input, None) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let next = st.next.entry(collection).or_insert(1);
    let id = *next;
    *next += 1;
    let now = util::iso_ms(Utc::now());
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    out.append(&mut row);
    out.insert("created_at".into(), json!(now));
    out.insert("updated_at".into(), json!(now));
    let out = Value::Object(out);
    st.rows
        .entry(collection)
        .or_default()
        .insert(id, out.clone());
    reply(StatusCode::CREATED, out)
}

fn parse_id(s: &str) -> Option<u64> {
    s.parse().ok()
}

async fn show(State(shared): State<Ctx>, Path((name, id)): Path<(String, String)>) -> Response {
    let (collection, singular, _) = match lookup(&name) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let st = shared.data();
    match parse_id(&id).and_then(|n| st.rows.get(collection)?.get(&n)) {
        Some(r) => reply(StatusCode::OK, r.clone()),
        None => not_found(singular, &id),
    }
}

fn apply_update(
    shared: &Ctx,
    collection: &'static str,
    singular: &'static str,
    spec: &'static [FieldSpec],
    id: &str,
    input: &Map<String, Value>,
) -> Response {
    let mut st = shared.data();
    let Some((n, existing)) =
        parse_id(id).and_then(|n| st.rows.get(collection)?.get(&n).cloned().map(|r| (n, r)))
    else {
        return not_found(singular, id);
    };
    let mut row = match check(&st, collection, singular, spec, input, Some((n, &existing))) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let mut out = Map::new();
    out.insert("id".into(), json!(n));
    out.append(&mut row);
    out.insert(
        "created_at".into(),
        existing.get("created_at").cloned().unwrap_or(Value::Null),
    );
    out.insert("updated_at".into(), json!(util::iso_ms(Utc::now())));
    let out = Value::Object(out);
    st.rows
        .entry(collection)
        .or_default()
        .insert(n, out.clone());
    reply(StatusCode::OK, out)
}

async fn update(
    State(shared): State<Ctx>,
    Path((name, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (collection, singular, spec) = match lookup(&name) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let input = match parse_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    apply_update(&shared, collection, singular, spec, &id, &input)
}

async fn destroy(State(shared): State<Ctx>, Path((name, id)): Path<(String, String)>) -> Response {
    let (collection, singular, _) = match lookup(&name) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let mut st = shared.data();
    match parse_id(&id).and_then(|n| st.rows.get_mut(collection)?.remove(&n)) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => not_found(singular, &id),
    }
}

fn page_of(rows: Vec<Value>, pairs: &[(String, String)]) -> Result<Response, Response> {
    let page = query_get(pairs, "page").unwrap_or("1").parse::<usize>();
    let per_page = query_get(pairs, "per_page")
        .unwrap_or("20")
        .parse::<usize>();
    let (page, per_page) = match (page, per_page) {
        (Ok(p), Ok(n)) if p >= 1 && (1..=100).contains(&n) => (p, n),
        _ => {
            return Err(invalid(vec![(
                "per_page".into(),
                "page must be >= 1 and per_page between 1 and 100".into(),
            )]));
        }
    };
    let total = rows.len();
    let data: Vec<Value> = rows
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    Ok(reply(
        StatusCode::OK,
        json!({"data": data, "total": total, "page": page, "per_page": per_page}),
    ))
}

fn matches_filters(row: &Value, spec: &[FieldSpec], pairs: &[(String, String)]) -> bool {
    pairs
        .iter()
        .filter(|(k, _)| spec.iter().any(|f| f.name == k) || k == "id")
        .all(|(k, v)| match row.get(k) {
            Some(Value::String(s)) => s.eq_ignore_ascii_case(v),
            Some(Value::Null) | None => v.is_empty() || v == "null",
            Some(other) => util::to_plain_string(other).as_deref() == Some(v.as_str()),
        })
}

async fn list(
    State(shared): State<Ctx>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let (collection, _, spec) = match lookup(&name) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let pairs = query_pairs(q.as_deref());
    let st = shared.data();
    let rows: Vec<Value> = st
        .rows
        .get(collection)
        .map(|m| {
            m.values()
                .filter(|r| matches_filters(r, spec, &pairs))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    page_of(rows, &pairs).unwrap_or_else(|e| e)
}

/// `GET /projects/{id}/tasks`, `/users/{id}/tasks`, `/users/{id}/projects`,
/// `/clients/{id}/projects`.
async fn sub_list(
    State(shared): State<Ctx>,
    Path((name, id, sub)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let pairs = query_pairs(q.as_deref());
    let (collection, singular, _) = match lookup(&name) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let st = shared.data();
    let Some(n) = parse_id(&id).filter(|n| st.exists(collection, *n)) else {
        return not_found(singular, &id);
    };
    let field_is = |r: &Value, f: &str| r.get(f).and_then(Value::as_u64) == Some(n);
    let rows: Vec<Value> = match (collection, sub.as_str()) {
        ("projects", "tasks") => st.rows["tasks"]
            .values()
            .filter(|r| field_is(r, "project_id"))
            .cloned()
            .collect(),
        ("users", "tasks") => st.rows["tasks"]
            .values()
            .filter(|r| field_is(r, "assignee_id"))
            .cloned()
            .collect(),
        ("users", "projects") => {
            let projects: std::collections::BTreeSet<u64> = st.rows["tasks"]
                .values()
                .filter(|r| field_is(r, "assignee_id"))
                .filter_map(|r| r.get("project_id").and_then(Value::as_u64))
                .collect();
            st.rows["projects"]
                .iter()
                .filter(|(pid, _)| projects.contains(pid))
                .map(|(_, r)| r.clone())
                .collect()
        }
        ("clients", "projects") => st.rows["projects"]
            .values()
            .filter(|r| field_is(r, "client_id"))
            .cloned()
            .collect(),
        _ => return error(StatusCode::NOT_FOUND, "not_found", "No such endpoint"),
    };
    page_of(rows, &pairs).unwrap_or_else(|e| e)
}

/// `PATCH /tasks/{id}/assign {assignee_id}` and `PATCH /tasks/{id}/status {status}`.
async fn sub_patch(
    State(shared): State<Ctx>,
    Path((name, id, sub)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    if name != "tasks" || !(sub == "assign" || sub == "status") {
        return error(StatusCode::NOT_FOUND, "not_found", "No such endpoint");
    }
    let input = match parse_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let field = if sub == "assign" {
        "assignee_id"
    } else {
        "status"
    };
    let Some(v) = input.get(field) else {
        return invalid(vec![(field.into(), "is required".into())]);
    };
    let mut only = Map::new();
    only.insert(field.into(), v.clone());
    apply_update(&shared, "tasks", "task", TASK, &id, &only)
}
