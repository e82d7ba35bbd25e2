//! Chatwoot application API: contacts of an account (create, update, get, delete, list,
//! filter, search).
//!
//! Authentication is the `api_access_token` header. The account id is part of every path and
//! differs per installation (reference "More facts", Chatwoot): the fake serves any account
//! id, each with its own contacts. E-mails are stored lowercased (as Chatwoot does before
//! validating); e-mail, identifier and phone number are unique per account.
//!
//! Only `GET /contacts/search` is throttled per account (reference: Rack::Attack throttles
//! `/contacts/search`; contact create, update and filter are not throttled per account).
//! Every request counts against the limit per client address (3000 a minute).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use http::StatusCode;
use serde_json::{Map, Value, json};

use super::faults::{self, ProviderCtx, RateLimited};
use super::ratelimit::{Rolling, Verdict};
use super::store::{Shared, Vendor, VendorData};
use super::util::{self, json as reply, query_get, query_pairs};

pub const TOKEN: &str = "sandbox-chatwoot-token";
const PAGE_SIZE: usize = 15;
/// Every account has this API inbox.
const INBOX_ID: u64 = 1;

#[derive(Clone, Debug)]
struct Contact {
    id: u64,
    name: Option<String>,
    email: Option<String>,
    phone_number: Option<String>,
    identifier: Option<String>,
    custom_attributes: Map<String, Value>,
    additional_attributes: Map<String, Value>,
    created_at: i64,
    inboxes: Vec<(u64, String)>,
}

pub(crate) struct Data {
    next_id: u64,
    accounts: BTreeMap<u64, BTreeMap<u64, Contact>>,
    search_window: Rolling,
    /// Requests per client address.
    ip_window: Rolling,
}

/// What this fake's handlers get: the shared part and this vendor's own state.
pub(crate) type Ctx = Vendor<Data>;

impl VendorData for Data {
    fn new() -> Data {
        Data {
            next_id: 1,
            accounts: BTreeMap::new(),
            search_window: Rolling::new(Duration::from_secs(60)),
            ip_window: Rolling::new(Duration::from_secs(60)),
        }
    }

    fn records(&self) -> BTreeMap<String, Vec<Value>> {
        let mut out = BTreeMap::new();
        for (account, contacts) in &self.accounts {
            out.insert(
                format!("account_{account}_contacts"),
                contacts.values().map(render).collect(),
            );
        }
        out
    }
}

fn inbox_json(id: u64) -> Value {
    json!({
        "id": id,
        "avatar_url": "",
        "channel_id": id,
        "name": "Sandbox API inbox",
        "channel_type": "Channel::Api",
        "provider": null,
    })
}

fn render(c: &Contact) -> Value {
    json!({
        "additional_attributes": c.additional_attributes,
        "availability_status": "offline",
        "email": c.email,
        "id": c.id,
        "name": c.name,
        "phone_number": c.phone_number,
        "blocked": false,
        "identifier": c.identifier,
        "thumbnail": "",
        "custom_attributes": c.custom_attributes,
        "created_at": c.created_at,
        "last_activity_at": null,
        "contact_inboxes": c.inboxes.iter().map(|(inbox, source)| json!({"source_id": source, "inbox": inbox_json(*inbox)})).collect::<Vec<_>>(),
    })
}

pub(crate) fn internal_error(_: &Shared) -> Response {
    reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"status": 500, "error": "Internal Server Error"}),
    )
}

fn not_found() -> Response {
    reply(
        StatusCode::NOT_FOUND,
        json!({"error": "Resource could not be found"}),
    )
}

fn bad_request() -> Response {
    reply(
        StatusCode::BAD_REQUEST,
        json!({"status": 400, "error": "Bad Request"}),
    )
}

fn unprocessable(messages: &[String], attributes: &[&str]) -> Response {
    reply(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"message": messages.join(", "), "attributes": attributes}),
    )
}

pub(crate) fn router(shared: Ctx) -> Router {
    let ctx = ProviderCtx {
        shared: shared.shared(),
        name: "chatwoot",
        internal_error,
    };
    Router::new()
        .route(
            "/api/v1/accounts/{account}/contacts",
            get(list).post(create),
        )
        .route("/api/v1/accounts/{account}/contacts/filter", post(filter))
        .route("/api/v1/accounts/{account}/contacts/search", get(search))
        .route(
            "/api/v1/accounts/{account}/contacts/{id}",
            get(show).put(update).delete(destroy),
        )
        .route_layer(middleware::from_fn(auth))
        .route_layer(middleware::from_fn_with_state(shared.clone(), limit_ip))
        .fallback(|| async { not_found() })
        .with_state(shared)
        .layer(middleware::from_fn_with_state(ctx, faults::observe))
}

async fn auth(req: Request, next: Next) -> Response {
    let ok = util::header_str(req.headers(), "api_access_token") == Some(TOKEN);
    if !ok {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "Invalid Access Token"}),
        );
    }
    next.run(req).await
}

/// Any numeric account id is an account of the sandbox user (reference: the id differs per
/// installation); a non-numeric one matches no route.
fn account_of(account: &str) -> Result<u64, Response> {
    account.parse::<u64>().map_err(|_| not_found())
}

/// Chatwoot's throttle answer (Rack::Attack's default).
fn throttled() -> Response {
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        [(http::header::CONTENT_TYPE, "text/plain")],
        "Retry later\n",
    )
        .into_response();
    r.extensions_mut().insert(RateLimited);
    r
}

/// Rack::Attack's throttle per client address, before authentication (reference: 3000/min
/// per IP).
async fn limit_ip(State(shared): State<Ctx>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let limit = shared.limit(shared.cfg.chatwoot_ip_rate_limit);
    let verdict = shared.data().ip_window.check(&ip, limit);
    match verdict {
        Verdict::Allowed { .. } => next.run(req).await,
        Verdict::Limited { .. } => throttled(),
    }
}

/// Rack::Attack's contact-search throttle, per account (reference: 100/min).
fn check_search_limit(shared: &Ctx, account: u64) -> Result<(), Response> {
    let limit = shared.limit(shared.cfg.chatwoot_search_rate_limit);
    match shared
        .data()
        .search_window
        .check(&account.to_string(), limit)
    {
        Verdict::Allowed { .. } => Ok(()),
        Verdict::Limited { .. } => Err(throttled()),
    }
}

fn opt_string(v: Option<&Value>) -> Option<String> {
    v.and_then(util::to_plain_string)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Applies and validates contact attributes (merging the attribute hashes), returning the
/// errors Chatwoot would report, in its model's validation order (email, identifier, phone).
fn apply(
    contacts: &BTreeMap<u64, Contact>,
    c: &mut Contact,
    body: &Map<String, Value>,
    unique: bool,
) -> Result<(), (Vec<String>, Vec<&'static str>)> {
    if body.contains_key("name") {
        c.name = opt_string(body.get("name"));
    }
    if body.contains_key("email") {
        c.email = opt_string(body.get("email")).map(|e| e.to_lowercase());
    }
    if body.contains_key("phone_number") {
        c.phone_number = opt_string(body.get("phone_number"));
    }
    if body.contains_key("identifier") {
        c.identifier = opt_string(body.get("identifier"));
    }
    for (key, target) in [
        ("custom_attributes", &mut c.custom_attributes),
        ("additional_attributes", &mut c.additional_attributes),
    ] {
        if let Some(Value::Object(m)) = body.get(key) {
            for (k, v) in m {
                target.insert(k.clone(), v.clone());
            }
        }
    }
    let mut messages = Vec::new();
    let mut attributes = Vec::new();
    let others = || contacts.values().filter(|o| o.id != c.id);
    if let Some(email) = &c.email {
        if !util::is_email(email) {
            messages.push("Email Invalid email".to_string());
            attributes.push("email");
        } else if unique && others().any(|o| o.email.as_deref() == Some(email.as_str())) {
            messages.push("Email has already been taken".to_string());
            attributes.push("email");
        }
    }
    if let Some(id) = &c.identifier
        && unique
        && others().any(|o| o.identifier.as_deref() == Some(id.as_str()))
    {
        messages.push("Identifier has already been taken".to_string());
        attributes.push("identifier");
    }
    if let Some(phone) = &c.phone_number {
        let e164 = phone.len() >= 3
            && phone.len() <= 16
            && phone.starts_with('+')
            && phone[1..].bytes().all(|b| b.is_ascii_digit())
            && !phone[1..].starts_with('0');
        if !e164 {
            messages.push("Phone number should be in e164 format".to_string());
            attributes.push("phone_number");
        } else if others().any(|o| o.phone_number.as_deref() == Some(phone.as_str())) {
            messages.push("Phone number has already been taken".to_string());
            attributes.push("phone_number");
        }
    }
    if messages.is_empty() {
        Ok(())
    } else {
        Err((messages, attributes))
    }
}

fn body_object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match util::parse_json(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(bad_request()),
    }
}

async fn create(State(shared): State<Ctx>, Path(account): Path<String>, body: Bytes) -> Response {
    let account = match account_of(&account) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let inbox = match body.get("inbox_id") {
        None | Some(Value::Null) => None,
        Some(v) => match util::to_plain_string(v).and_then(|s| s.parse::<u64>().ok()) {
            Some(INBOX_ID) => Some(INBOX_ID),
            _ => return not_found(),
        },
    };
    let source_id = inbox.map(|_| shared.uuid());
    let mut st = shared.data();
    let id = st.next_id;
    let mut c = Contact {
        id,
        name: None,
        email: None,
        phone_number: None,
        identifier: None,
        custom_attributes: Map::new(),
        additional_attributes: Map::new(),
        created_at: Utc::now().timestamp(),
        inboxes: Vec::new(),
    };
    let contacts = st.accounts.entry(account).or_default();
    if let Err((m, a)) = apply(contacts, &mut c, &body, shared.cfg.chatwoot_unique_contacts) {
        return unprocessable(&m, &a);
    }
    if let (Some(i), Some(s)) = (inbox, &source_id) {
        c.inboxes.push((i, s.clone()));
    }
    let contact = render(&c);
    contacts.insert(id, c);
    st.next_id += 1;
    reply(
        StatusCode::OK,
        json!({"payload": {
            "contact": contact,
            "contact_inbox": {"inbox": inbox.map(inbox_json), "source_id": source_id},
        }}),
    )
}

async fn update(
    State(shared): State<Ctx>,
    Path((account, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let account = match account_of(&account) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut st = shared.data();
    let contacts = st.accounts.entry(account).or_default();
    let Some(mut c) = id
        .parse::<u64>()
        .ok()
        .and_then(|n| contacts.get(&n))
        .cloned()
    else {
        return not_found();
    };
    if let Err((m, a)) = apply(contacts, &mut c, &body, shared.cfg.chatwoot_unique_contacts) {
        return unprocessable(&m, &a);
    }
    let out = render(&c);
    contacts.insert(c.id, c);
    reply(StatusCode::OK, json!({ "payload": out }))
}

async fn show(State(shared): State<Ctx>, Path((account, id)): Path<(String, String)>) -> Response {
    let account = match account_of(&account) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let st = shared.data();
    match st
        .accounts
        .get(&account)
        .and_then(|m| m.get(&id.parse::<u64>().ok()?))
    {
        Some(c) => reply(StatusCode::OK, json!({"payload": render(c)})),
        None => not_found(),
    }
}

async fn destroy(
    State(shared): State<Ctx>,
    Path((account, id)): Path<(String, String)>,
) -> Response {
    let account = match account_of(&account) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let mut st = shared.data();
    let removed = st
        .accounts
        .get_mut(&account)
        .and_then(|m| m.remove(&id.parse::<u64>().ok()?));
    match removed {
        Some(_) => StatusCode::OK.into_response(),
        None => not_found(),
    }
}

fn page_of(pairs: &[(String, String)]) -> usize {
    query_get(pairs, "page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1)
}

fn paged(list: Vec<&Contact>, page: usize) -> Response {
    let count = list.len();
    let payload: Vec<Value> = list
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(render)
        .collect();
    reply(
        StatusCode::OK,
        json!({"meta": {"count": count, "current_page": page}, "payload": payload}),
    )
}

async fn list(
    State(shared): State<Ctx>,
    Path(account): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let account = match account_of(&account) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let pairs = query_pairs(q.as_deref());
    let st = shared.data();
    let all: Vec<&Contact> = st
        .accounts
        .get(&account)
        .map(|m| m.values().collect())
        .unwrap_or_default();
    paged(all, page_of(&pairs))
}

/// `GET /contacts/search?q=`: a substring match over name, e-mail, phone and identifier.
async fn search(
    State(shared): State<Ctx>,
    Path(account): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let account = match account_of(&account) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Err(r) = check_search_limit(&shared, account) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    let needle = query_get(&pairs, "q").unwrap_or("").to_lowercase();
    let st = shared.data();
    let hits: Vec<&Contact> = st
        .accounts
        .get(&account)
        .map(|m| {
            m.values()
                .filter(|c| {
                    [&c.name, &c.email, &c.phone_number, &c.identifier]
                        .iter()
                        .filter_map(|v| v.as_deref())
                        .any(|v| v.to_lowercase().contains(&needle))
                })
                .collect()
        })
        .unwrap_or_default();
    paged(hits, page_of(&pairs))
}

struct Condition {
    key: String,
    op: String,
    values: Vec<String>,
    /// How this condition joins the next one (`and` / `or`).
    join: Option<String>,
}

const STANDARD_KEYS: &[&str] = &["name", "email", "phone_number", "identifier"];
const OPERATORS: &[&str] = &[
    "equal_to",
    "not_equal_to",
    "contains",
    "does_not_contain",
    "is_present",
    "is_not_present",
];

fn attr(c: &Contact, key: &str) -> Option<String> {
    match key {
        "name" => c.name.clone(),
        "email" => c.email.clone(),
        "phone_number" => c.phone_number.clone(),
        "identifier" => c.identifier.clone(),
        other => c
            .custom_attributes
            .get(other)
            .or_else(|| c.additional_attributes.get(other))
            .and_then(util::to_plain_string),
    }
}

fn holds(c: &Contact, cond: &Condition) -> bool {
    let v = attr(c, &cond.key);
    let fold = |s: &str| {
        if cond.key == "email" || cond.key == "name" {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    match cond.op.as_str() {
        "equal_to" => v.is_some_and(|v| cond.values.iter().any(|x| fold(x) == fold(&v))),
        "not_equal_to" => !v.is_some_and(|v| cond.values.iter().any(|x| fold(x) == fold(&v))),
        "contains" => v.is_some_and(|v| {
            cond.values
                .iter()
                .any(|x| v.to_lowercase().contains(&x.to_lowercase()))
        }),
        "does_not_contain" => !v.is_some_and(|v| {
            cond.values
                .iter()
                .any(|x| v.to_lowercase().contains(&x.to_lowercase()))
        }),
        "is_present" => v.is_some(),
        "is_not_present" => v.is_none(),
        _ => false,
    }
}

async fn filter(
    State(shared): State<Ctx>,
    Path(account): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let account = match account_of(&account) {
        Ok(a) => a,
        Err(r) => return r,
    };
    // Not throttled per account (reference "More facts", Chatwoot).
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(Value::Array(items)) = body.get("payload") else {
        return reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Invalid filter payload"}),
        );
    };
    let mut conds = Vec::new();
    for item in items {
        let key = item
            .get("attribute_key")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let op = item
            .get("filter_operator")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !STANDARD_KEYS.contains(&key.as_str())
            && !shared
                .data()
                .accounts
                .get(&account)
                .is_some_and(|m| m.values().any(|c| attr(c, &key).is_some()))
        {
            return reply(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"message": format!("Invalid attribute key - [{key}]")}),
            );
        }
        if !OPERATORS.contains(&op.as_str()) {
            return reply(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"message": format!("Invalid operator. The allowed operators for {key} are [{}].", OPERATORS.join(","))}),
            );
        }
        let values: Vec<String> = match item.get("values") {
            Some(Value::Array(a)) => a.iter().filter_map(util::to_plain_string).collect(),
            Some(v) => util::to_plain_string(v).into_iter().collect(),
            None => Vec::new(),
        };
        let join = item
            .get("query_operator")
            .and_then(Value::as_str)
            .map(str::to_lowercase);
        conds.push(Condition {
            key,
            op,
            values,
            join,
        });
    }
    let pairs = query_pairs(q.as_deref());
    let st = shared.data();
    let hits: Vec<&Contact> = st
        .accounts
        .get(&account)
        .map(|m| {
            m.values()
                .filter(|c| {
                    // Left to right, as Chatwoot chains the SQL conditions.
                    let mut acc: Option<bool> = None;
                    let mut join: Option<&str> = None;
                    for cond in &conds {
                        let h = holds(c, cond);
                        acc = Some(match (acc, join) {
                            (None, _) => h,
                            (Some(a), Some("or")) => a || h,
                            (Some(a), _) => a && h,
                        });
                        join = cond.join.as_deref();
                    }
                    acc.unwrap_or(true)
                })
                .collect()
        })
        .unwrap_or_default();
    paged(hits, page_of(&pairs))
}
