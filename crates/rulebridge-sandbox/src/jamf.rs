//! Jamf Pro: bearer tokens (Basic or client credentials), departments, computers inventory,
//! and creating computers through the Classic API (XML in, HTML errors out).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::Utc;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::faults::{self, ProviderCtx};
use super::store::{Shared, TokenCheck, lock};
use super::util::{self, bearer, form_or_json, json as reply, query_get, query_pairs};

pub const USERNAME: &str = "sandbox";
pub const PASSWORD: &str = "sandbox-password";
pub const CLIENT_ID: &str = "sandbox-jamf-client";
pub const CLIENT_SECRET: &str = "sandbox-jamf-secret";

#[derive(Clone, Debug, Default)]
struct Computer {
    id: u64,
    udid: String,
    name: String,
    serial: String,
    platform: String,
    /// userAndLocation, in the Jamf Pro API's field names.
    location: BTreeMap<&'static str, Value>,
}

const LOCATION_FIELDS: &[&str] = &[
    "username",
    "realname",
    "email",
    "position",
    "phone",
    "departmentId",
    "buildingId",
    "room",
];

pub(crate) struct Data {
    next_department: u64,
    departments: BTreeMap<u64, String>,
    next_computer: u64,
    computers: BTreeMap<u64, Computer>,
}

impl Data {
    pub fn new() -> Data {
        Data {
            next_department: 1,
            departments: BTreeMap::new(),
            next_computer: 1,
            computers: BTreeMap::new(),
        }
    }

    pub fn records(&self) -> BTreeMap<String, Vec<Value>> {
        let mut out = BTreeMap::new();
        out.insert(
            "departments".to_string(),
            self.departments
                .iter()
                .map(|(id, name)| json!({"id": id.to_string(), "name": name}))
                .collect(),
        );
        out.insert(
            "computers".to_string(),
            self.computers
                .values()
                .map(|c| render(c, &ALL_SECTIONS))
                .collect(),
        );
        out
    }
}

const ALL_SECTIONS: [&str; 3] = ["GENERAL", "HARDWARE", "USER_AND_LOCATION"];

fn render(c: &Computer, sections: &[&str]) -> Value {
    let mut o = json!({
        "id": c.id.to_string(),
        "udid": c.udid,
        "general": null,
        "hardware": null,
        "userAndLocation": null,
    });
    if sections.contains(&"GENERAL") {
        o["general"] = json!({
            "name": c.name,
            "platform": c.platform,
            "managementId": format!("{:08x}-0000-4000-8000-{:012x}", c.id, c.id),
            "remoteManagement": {"managed": true},
        });
    }
    if sections.contains(&"HARDWARE") {
        o["hardware"] = json!({"serialNumber": c.serial, "model": null});
    }
    if sections.contains(&"USER_AND_LOCATION") {
        let mut loc = Map::new();
        for f in LOCATION_FIELDS {
            loc.insert(
                f.to_string(),
                c.location.get(f).cloned().unwrap_or(Value::Null),
            );
        }
        o["userAndLocation"] = Value::Object(loc);
    }
    o
}

fn api_error(status: StatusCode, code: &str, field: Option<&str>, description: &str) -> Response {
    reply(
        status,
        json!({"httpStatus": status.as_u16(), "errors": [{"code": code, "field": field, "description": description, "id": "0"}]}),
    )
}

pub(crate) fn internal_error(_: &Shared) -> Response {
    api_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "UNEXPECTED_ERROR",
        None,
        "An unexpected error occurred",
    )
}

/// The Classic API's HTML status page.
fn classic_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<html>\n<head>\n   <title>Status page</title>\n</head>\n<body style=\"font-family: sans-serif;\">\n<p style=\"font-size: 1.2em;font-weight: bold;margin: 1em 0px;\">{title}</p>\n<p style=\"font-size: 1.2em;font-weight: bold;margin: 1em 0px;\">{message}</p>\n<p>You can get technical details <a href=\"http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html\">here</a>.<br>\nPlease continue your visit at our <a href=\"/\">home page</a>.\n</p>\n</body>\n</html>\n"
    );
    (
        status,
        [(http::header::CONTENT_TYPE, "text/html;charset=UTF-8")],
        body,
    )
        .into_response()
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let ctx = ProviderCtx {
        shared: shared.clone(),
        name: "jamf",
        internal_error,
    };
    let protected = Router::new()
        .route("/api/v1/auth/keep-alive", post(keep_alive))
        .route("/api/v1/auth/invalidate-token", post(invalidate))
        .route(
            "/api/v1/departments",
            get(list_departments).post(create_department),
        )
        .route(
            "/api/v1/departments/{id}",
            get(get_department)
                .put(put_department)
                .delete(delete_department),
        )
        .route("/api/v1/computers-inventory", get(inventory))
        .route("/api/v1/computers-inventory/{id}", get(inventory_one))
        .route(
            "/api/v1/computers-inventory-detail/{id}",
            get(detail).patch(patch_detail),
        )
        .route(
            "/JSSResource/computers/id/{id}",
            post(classic_create).get(classic_get),
        )
        .route(
            "/JSSResource/computers/serialnumber/{serial}",
            get(classic_get_serial),
        )
        .route_layer(middleware::from_fn_with_state(shared.clone(), auth));
    Router::new()
        .route("/api/v1/auth/token", post(token))
        .route("/api/oauth/token", post(oauth_token))
        .merge(protected)
        .fallback(|| async { api_error(StatusCode::NOT_FOUND, "NOT_FOUND", None, "Not Found") })
        .with_state(shared)
        .layer(middleware::from_fn_with_state(ctx, faults::observe))
}

async fn auth(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let valid = bearer(req.headers())
        .map(|t| matches!(lock(&shared.tokens).check("jamf", &t), TokenCheck::Valid(_)))
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

fn issue(shared: &Shared, subject: &str) -> (String, String) {
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
    lock(&shared.tokens).issue("jamf", &token, subject, ttl);
    (token, util::iso_ms(exp))
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
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

async fn oauth_token(
    State(shared): State<Arc<Shared>>,
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

async fn keep_alive(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(old) = bearer(&headers) else {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
            None,
            "Unauthorized",
        );
    };
    let subject = match lock(&shared.tokens).check("jamf", &old) {
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
    lock(&shared.tokens).revoke(&old);
    let (token, expires) = issue(&shared, &subject);
    reply(StatusCode::OK, json!({"token": token, "expires": expires}))
}

async fn invalidate(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(t) = bearer(&headers) {
        lock(&shared.tokens).revoke(&t);
    }
    StatusCode::NO_CONTENT.into_response()
}

// ---------------------------------------------------------------------------------------------
// departments

fn page_params(pairs: &[(String, String)]) -> Result<(usize, usize), Response> {
    let page = query_get(pairs, "page").unwrap_or("0").parse::<usize>();
    let size = query_get(pairs, "page-size")
        .unwrap_or("100")
        .parse::<usize>();
    match (page, size) {
        (Ok(p), Ok(s)) if (1..=2000).contains(&s) => Ok((p, s)),
        _ => Err(api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            Some("page-size"),
            "page must be >= 0 and page-size between 1 and 2000",
        )),
    }
}

async fn list_departments(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let pairs = query_pairs(q.as_deref());
    let (page, size) = match page_params(&pairs) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let filter = match query_get(&pairs, "filter").map(parse_rsql).transpose() {
        Ok(f) => f,
        Err(e) => return e,
    };
    if let Some(f) = &filter
        && let Some(bad) = f.fields().find(|k| *k != "name" && *k != "id")
    {
        return invalid_filter_field(bad);
    }
    let st = lock(&shared.jamf);
    let all: Vec<Value> = st
        .departments
        .iter()
        .map(|(id, name)| json!({"id": id.to_string(), "name": name}))
        .filter(|d| {
            filter
                .as_ref()
                .is_none_or(|f| f.eval(&|k| d.get(k).and_then(Value::as_str).map(str::to_string)))
        })
        .collect();
    let total = all.len();
    let results: Vec<Value> = all.into_iter().skip(page * size).take(size).collect();
    reply(
        StatusCode::OK,
        json!({"totalCount": total, "results": results}),
    )
}

fn department_name(body: &[u8]) -> Result<String, Response> {
    let v = util::parse_json(body)
        .map_err(|e| api_error(StatusCode::BAD_REQUEST, "INVALID_JSON", None, &e))?;
    match v.get("name").and_then(Value::as_str).map(str::trim) {
        Some(n) if !n.is_empty() => Ok(n.to_string()),
        _ => Err(api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            Some("name"),
            "name must not be blank",
        )),
    }
}

async fn create_department(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let name = match department_name(&body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let mut st = lock(&shared.jamf);
    if st
        .departments
        .values()
        .any(|d| d.eq_ignore_ascii_case(&name))
    {
        return api_error(
            StatusCode::BAD_REQUEST,
            "DUPLICATE_FIELD",
            Some("name"),
            &format!("duplicate name: {name}"),
        );
    }
    let id = st.next_department;
    st.next_department += 1;
    st.departments.insert(id, name);
    reply(
        StatusCode::CREATED,
        json!({"id": id.to_string(), "href": format!("http://{}/jamf/api/v1/departments/{id}", shared.addr)}),
    )
}

fn department_404(id: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "INVALID_ID",
        Some("id"),
        &format!("Department with id {id} does not exist"),
    )
}

async fn get_department(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let st = lock(&shared.jamf);
    match id.parse::<u64>().ok().and_then(|n| st.departments.get(&n)) {
        Some(name) => reply(StatusCode::OK, json!({"id": id, "name": name})),
        None => department_404(&id),
    }
}

async fn put_department(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let name = match department_name(&body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let mut st = lock(&shared.jamf);
    let Some(n) = id
        .parse::<u64>()
        .ok()
        .filter(|n| st.departments.contains_key(n))
    else {
        return department_404(&id);
    };
    if st
        .departments
        .iter()
        .any(|(k, d)| *k != n && d.eq_ignore_ascii_case(&name))
    {
        return api_error(
            StatusCode::BAD_REQUEST,
            "DUPLICATE_FIELD",
            Some("name"),
            &format!("duplicate name: {name}"),
        );
    }
    st.departments.insert(n, name.clone());
    reply(StatusCode::OK, json!({"id": id, "name": name}))
}

async fn delete_department(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut st = lock(&shared.jamf);
    match id
        .parse::<u64>()
        .ok()
        .and_then(|n| st.departments.remove(&n))
    {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => department_404(&id),
    }
}

// ---------------------------------------------------------------------------------------------
// RSQL subset: `field==value`, `!=`, `*` wildcards, `;`/`and` binding tighter than `,`/`or`.

#[derive(Debug)]
struct Rsql {
    /// OR of ANDs of (field, negated, value).
    any: Vec<Vec<(String, bool, String)>>,
}

impl Rsql {
    fn fields(&self) -> impl Iterator<Item = &str> {
        self.any.iter().flatten().map(|(f, _, _)| f.as_str())
    }

    fn eval(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        self.any.iter().any(|all| {
            all.iter().all(|(f, neg, v)| {
                let hit = get(f).is_some_and(|s| wildcard(&v.to_lowercase(), &s.to_lowercase()));
                hit != *neg
            })
        })
    }
}

fn wildcard(p: &str, t: &str) -> bool {
    let p: Vec<char> = p.chars().collect();
    let t: Vec<char> = t.chars().collect();
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

fn split_top(s: &str, seps: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && let Some(sep) = seps.iter().find(|sep| rest.starts_with(**sep)) {
            out.push(std::mem::take(&mut cur));
            rest = &rest[sep.len()..];
            continue;
        }
        cur.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out.push(cur);
    out
}

fn parse_rsql(s: &str) -> Result<Rsql, Response> {
    let bad = || {
        api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_RSQL_FILTER",
            Some("filter"),
            &format!("Invalid RSQL filter: {s}"),
        )
    };
    let mut any = Vec::new();
    for disj in split_top(s, &[",", " or "]) {
        let mut all = Vec::new();
        for conj in split_top(&disj, &[";", " and "]) {
            let conj = conj.trim();
            let (field, neg, value) = if let Some((f, v)) = conj.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = conj.split_once("==") {
                (f, false, v)
            } else {
                return Err(bad());
            };
            let field = field.trim();
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            if field.is_empty() || field.contains(char::is_whitespace) {
                return Err(bad());
            }
            all.push((field.to_string(), neg, value.to_string()));
        }
        any.push(all);
    }
    Ok(Rsql { any })
}

fn invalid_filter_field(field: &str) -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        "INVALID_RSQL_FILTER_FIELD",
        Some("filter"),
        &format!("{field} is not a valid filter field"),
    )
}

// ---------------------------------------------------------------------------------------------
// computers inventory

const FILTER_FIELDS: &[&str] = &[
    "id",
    "udid",
    "general.name",
    "general.platform",
    "hardware.serialNumber",
    "userAndLocation.username",
    "userAndLocation.email",
    "userAndLocation.realname",
];

fn field_of(c: &Computer, f: &str) -> Option<String> {
    match f {
        "id" => Some(c.id.to_string()),
        "udid" => Some(c.udid.clone()),
        "general.name" => Some(c.name.clone()),
        "general.platform" => Some(c.platform.clone()),
        "hardware.serialNumber" => Some(c.serial.clone()),
        other => other
            .strip_prefix("userAndLocation.")
            .and_then(|k| c.location.get(k))
            .and_then(util::to_plain_string),
    }
}

fn sections(pairs: &[(String, String)]) -> Result<Vec<&'static str>, Response> {
    let mut out = Vec::new();
    for (k, v) in pairs.iter().filter(|(k, _)| k == "section") {
        let _ = k;
        match ALL_SECTIONS.iter().find(|s| **s == v.as_str()) {
            Some(s) => out.push(*s),
            None => {
                return Err(api_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELD",
                    Some("section"),
                    &format!("Invalid section: {v}"),
                ));
            }
        }
    }
    if out.is_empty() {
        out.push("GENERAL");
    }
    Ok(out)
}

async fn inventory(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let pairs = query_pairs(q.as_deref());
    let (page, size) = match page_params(&pairs) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let secs = match sections(&pairs) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let filter = match query_get(&pairs, "filter").map(parse_rsql).transpose() {
        Ok(f) => f,
        Err(e) => return e,
    };
    if let Some(f) = &filter
        && let Some(bad) = f.fields().find(|k| !FILTER_FIELDS.contains(k))
    {
        return invalid_filter_field(bad);
    }
    let st = lock(&shared.jamf);
    let mut hits: Vec<&Computer> = st
        .computers
        .values()
        .filter(|c| filter.as_ref().is_none_or(|f| f.eval(&|k| field_of(c, k))))
        .collect();
    // Jamf's default sort is general.name ascending.
    hits.sort_by(|a, b| {
        a.name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then(a.id.cmp(&b.id))
    });
    let total = hits.len();
    let results: Vec<Value> = hits
        .into_iter()
        .skip(page * size)
        .take(size)
        .map(|c| render(c, &secs))
        .collect();
    reply(
        StatusCode::OK,
        json!({"totalCount": total, "results": results}),
    )
}

fn computer_404(id: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "INVALID_ID",
        Some("id"),
        &format!("Computer with id {id} does not exist"),
    )
}

async fn inventory_one(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let pairs = query_pairs(q.as_deref());
    let secs = match sections(&pairs) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let st = lock(&shared.jamf);
    match id.parse::<u64>().ok().and_then(|n| st.computers.get(&n)) {
        Some(c) => reply(StatusCode::OK, render(c, &secs)),
        None => computer_404(&id),
    }
}

async fn detail(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let st = lock(&shared.jamf);
    match id.parse::<u64>().ok().and_then(|n| st.computers.get(&n)) {
        Some(c) => reply(StatusCode::OK, render(c, &ALL_SECTIONS)),
        None => computer_404(&id),
    }
}

async fn patch_detail(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let body = match util::parse_json(&body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "INVALID_JSON",
                None,
                "expected a JSON object",
            );
        }
        Err(e) => return api_error(StatusCode::BAD_REQUEST, "INVALID_JSON", None, &e),
    };
    let mut st = lock(&shared.jamf);
    let Some(mut c) = id
        .parse::<u64>()
        .ok()
        .and_then(|n| st.computers.get(&n))
        .cloned()
    else {
        return computer_404(&id);
    };
    if let Some(general) = body.get("general").and_then(Value::as_object)
        && let Some(name) = general.get("name").and_then(Value::as_str)
    {
        if name.trim().is_empty() {
            return api_error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                Some("general.name"),
                "name must not be blank",
            );
        }
        c.name = name.to_string();
    }
    if let Some(loc) = body.get("userAndLocation") {
        let Some(loc) = loc.as_object() else {
            return api_error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                Some("userAndLocation"),
                "userAndLocation must be an object",
            );
        };
        for (k, v) in loc {
            let Some(field) = LOCATION_FIELDS.iter().find(|f| **f == k.as_str()) else {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELD",
                    Some(&format!("userAndLocation.{k}")),
                    &format!("Unrecognized field \"{k}\""),
                );
            };
            if *field == "departmentId" && !v.is_null() {
                let dep = util::to_plain_string(v).unwrap_or_default();
                let known = dep
                    .parse::<u64>()
                    .ok()
                    .is_some_and(|n| st.departments.contains_key(&n));
                if !known && dep != "-1" {
                    return api_error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_FIELD",
                        Some("userAndLocation.departmentId"),
                        &format!("Department with id {dep} does not exist"),
                    );
                }
                c.location.insert(field, json!(dep));
                continue;
            }
            c.location.insert(field, v.clone());
        }
    }
    let out = render(&c, &ALL_SECTIONS);
    st.computers.insert(c.id, c);
    reply(StatusCode::OK, out)
}

// ---------------------------------------------------------------------------------------------
// Classic API

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The inner text of the first `<tag>` inside `scope` (`<tag/>` is empty).
fn xml_text(scope: &str, tag: &str) -> Option<String> {
    if scope.contains(&format!("<{tag}/>")) || scope.contains(&format!("<{tag} />")) {
        return Some(String::new());
    }
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = scope.find(&open)? + open.len();
    let end = scope[start..].find(&close)? + start;
    Some(xml_unescape(scope[start..end].trim()))
}

fn xml_section<'a>(doc: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = doc.find(&open)? + open.len();
    let end = doc[start..].find(&close)? + start;
    Some(&doc[start..end])
}

/// Rough well-formedness: one `<computer>` root with balanced tags.
fn well_formed(doc: &str) -> bool {
    let body = doc.trim();
    let body = match body.strip_prefix("<?xml") {
        Some(rest) => match rest.find("?>") {
            Some(i) => rest[i + 2..].trim(),
            None => return false,
        },
        None => body,
    };
    if !(body.starts_with("<computer>") && body.ends_with("</computer>")) {
        return false;
    }
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find('<') {
        let Some(j) = rest[i..].find('>') else {
            return false;
        };
        let tag = &rest[i + 1..i + j];
        rest = &rest[i + j + 1..];
        if tag.ends_with('/') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop() != Some(name.trim()) {
                return false;
            }
        } else {
            stack.push(tag.split_whitespace().next().unwrap_or(""));
        }
    }
    stack.is_empty()
}

async fn classic_create(
    State(shared): State<Arc<Shared>>,
    Path(_id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(doc) = std::str::from_utf8(&body) else {
        return classic_page(StatusCode::BAD_REQUEST, "Bad Request");
    };
    if !well_formed(doc) {
        return classic_page(StatusCode::BAD_REQUEST, "Error in XML file");
    }
    let general = xml_section(doc, "general").unwrap_or("");
    let location = xml_section(doc, "location").unwrap_or("");
    let name = xml_text(general, "name").unwrap_or_default();
    if name.is_empty() {
        return classic_page(StatusCode::CONFLICT, "Error: Problem with computer name");
    }
    let serial = xml_text(general, "serial_number").unwrap_or_default();
    let udid = xml_text(general, "udid")
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| shared.uuid().to_uppercase());
    let mut st = lock(&shared.jamf);
    if !serial.is_empty()
        && st
            .computers
            .values()
            .any(|c| c.serial.eq_ignore_ascii_case(&serial))
    {
        return classic_page(StatusCode::CONFLICT, "Error: Duplicate serial number");
    }
    if st
        .computers
        .values()
        .any(|c| c.udid.eq_ignore_ascii_case(&udid))
    {
        return classic_page(StatusCode::CONFLICT, "Error: Duplicate UDID");
    }
    let mut loc = BTreeMap::new();
    for (xml, api) in [
        ("username", "username"),
        ("realname", "realname"),
        ("real_name", "realname"),
        ("email_address", "email"),
        ("position", "position"),
        ("phone", "phone"),
        ("room", "room"),
    ] {
        if let Some(v) = xml_text(location, xml).filter(|v| !v.is_empty()) {
            loc.insert(api, json!(v));
        }
    }
    if let Some(dep) = xml_text(location, "department").filter(|d| !d.is_empty()) {
        match st
            .departments
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(&dep))
        {
            Some((id, _)) => {
                loc.insert("departmentId", json!(id.to_string()));
            }
            None => {
                return classic_page(
                    StatusCode::CONFLICT,
                    "Error: Problem with department in location",
                );
            }
        }
    }
    let id = st.next_computer;
    st.next_computer += 1;
    st.computers.insert(
        id,
        Computer {
            id,
            udid,
            name,
            serial,
            platform: xml_text(general, "platform")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "Mac".into()),
            location: loc,
        },
    );
    (
        StatusCode::CREATED,
        [(http::header::CONTENT_TYPE, "text/xml;charset=UTF-8")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><computer><id>{id}</id></computer>"),
    )
        .into_response()
}

fn classic_xml(c: &Computer, departments: &BTreeMap<u64, String>) -> Response {
    let loc = |k: &str| {
        c.location
            .get(k)
            .and_then(util::to_plain_string)
            .map(|s| xml_escape(&s))
            .unwrap_or_default()
    };
    let department = c
        .location
        .get("departmentId")
        .and_then(util::to_plain_string)
        .and_then(|d| d.parse::<u64>().ok())
        .and_then(|d| departments.get(&d))
        .map(|d| xml_escape(d))
        .unwrap_or_default();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><computer><general><id>{}</id><name>{}</name><serial_number>{}</serial_number><udid>{}</udid><platform>{}</platform></general><location><username>{}</username><realname>{}</realname><real_name>{}</real_name><email_address>{}</email_address><position>{}</position><phone>{}</phone><department>{department}</department><room>{}</room></location></computer>",
        c.id,
        xml_escape(&c.name),
        xml_escape(&c.serial),
        xml_escape(&c.udid),
        xml_escape(&c.platform),
        loc("username"),
        loc("realname"),
        loc("realname"),
        loc("email"),
        loc("position"),
        loc("phone"),
        loc("room"),
    );
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "text/xml;charset=UTF-8")],
        xml,
    )
        .into_response()
}

fn classic_404() -> Response {
    classic_page(
        StatusCode::NOT_FOUND,
        "The server has not found anything matching the request URI",
    )
}

async fn classic_get(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let st = lock(&shared.jamf);
    match id.parse::<u64>().ok().and_then(|n| st.computers.get(&n)) {
        Some(c) => classic_xml(c, &st.departments),
        None => classic_404(),
    }
}

async fn classic_get_serial(
    State(shared): State<Arc<Shared>>,
    Path(serial): Path<String>,
) -> Response {
    let st = lock(&shared.jamf);
    match st
        .computers
        .values()
        .find(|c| c.serial.eq_ignore_ascii_case(&serial))
    {
        Some(c) => classic_xml(c, &st.departments),
        None => classic_404(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsql() {
        let f = parse_rsql("general.name==\"Mac-1\";hardware.serialNumber==C02*,udid==x")
            .ok()
            .unwrap();
        assert_eq!(f.any.len(), 2);
        let get = |k: &str| match k {
            "general.name" => Some("mac-1".to_string()),
            "hardware.serialNumber" => Some("C02ABC".to_string()),
            _ => None,
        };
        assert!(f.eval(&get));
        assert!(parse_rsql("general.name").is_err());
    }

    #[test]
    fn xml() {
        let doc = "<?xml version=\"1.0\"?><computer><general><name>A &amp; B</name><serial_number>S1</serial_number></general><location><username/></location></computer>";
        assert!(well_formed(doc));
        assert_eq!(
            xml_text(xml_section(doc, "general").unwrap(), "name").as_deref(),
            Some("A & B")
        );
        assert_eq!(
            xml_text(xml_section(doc, "location").unwrap(), "username").as_deref(),
            Some("")
        );
        assert!(!well_formed("<computer><general></computer>"));
        assert!(!well_formed("not xml"));
    }
}
