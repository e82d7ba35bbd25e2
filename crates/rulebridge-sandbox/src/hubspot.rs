//! HubSpot CRM v3: contacts (CRUD, search, batch), contact properties, OAuth refresh.
//!
//! Authentication: `Authorization: Bearer sandbox-hubspot-token` (a private-app token, never
//! expires) or an access token from `POST /oauth/v1/token`. Rate limits are per app (the
//! private app, or the OAuth client), as at HubSpot: a rolling 10 s window for every CRM call
//! plus a per-second limit on search.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};
use http::{HeaderMap, HeaderValue, StatusCode};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::{Map, Value, json};

use super::faults::{self, ProviderCtx, RateLimited};
use super::ratelimit::{Rolling, Verdict};
use super::store::{Shared, TokenCheck, lock};
use super::util::{self, bearer, form_or_json, json as reply, query_get, query_pairs};

pub const STATIC_TOKEN: &str = "sandbox-hubspot-token";
pub const CLIENT_ID: &str = "sandbox-hubspot-client";
pub const CLIENT_SECRET: &str = "sandbox-hubspot-secret";
pub const REFRESH_TOKEN: &str = "sandbox-hubspot-refresh";
/// The authorization code the fake's OAuth endpoint accepts.
pub const AUTH_CODE: &str = "sandbox-hubspot-code";
const PORTAL_ID: u64 = 4_000_001;
const BATCH_LIMIT: usize = 100;
const SEARCH_LIMIT: usize = 200;
const SEARCH_MAX_GROUPS: usize = 5;
const SEARCH_MAX_FILTERS_PER_GROUP: usize = 6;
const SEARCH_MAX_FILTERS: usize = 18;
const SEARCH_MAX_RESULTS: usize = 10_000;
const DAILY_LIMIT: u32 = 250_000;
const DEFAULT_PROPERTIES: &[&str] = &[
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
];

// ---------------------------------------------------------------------------------------------
// state

pub(crate) struct Data {
    next_id: u64,
    contacts: BTreeMap<u64, Contact>,
    archived: BTreeMap<u64, Contact>,
    window: Rolling,
    search_window: Rolling,
    daily_used: HashMap<String, u32>,
}

#[derive(Clone, Debug)]
struct Contact {
    id: u64,
    props: BTreeMap<String, String>,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    /// When the latest write happened (search sees it after `hubspot_search_lag`).
    written: Instant,
    archived_at: Option<DateTime<Utc>>,
}

impl Data {
    pub fn new() -> Data {
        Data {
            next_id: 1001,
            contacts: BTreeMap::new(),
            archived: BTreeMap::new(),
            window: Rolling::new(Duration::from_secs(10)),
            search_window: Rolling::new(Duration::from_secs(1)),
            daily_used: HashMap::new(),
        }
    }

    pub fn records(&self) -> BTreeMap<String, Vec<Value>> {
        let mut out = BTreeMap::new();
        out.insert(
            "contacts".to_string(),
            self.contacts.values().map(|c| render(c, None)).collect(),
        );
        if !self.archived.is_empty() {
            out.insert(
                "archived_contacts".to_string(),
                self.archived.values().map(|c| render(c, None)).collect(),
            );
        }
        out
    }

    fn by_email(&self, email: &str) -> Option<u64> {
        self.contacts
            .values()
            .find(|c| {
                c.props
                    .get("email")
                    .is_some_and(|e| e.eq_ignore_ascii_case(email.trim()))
            })
            .map(|c| c.id)
    }

    /// Resolves `id` by record id or, with `idProperty=email`, by e-mail.
    fn resolve(&self, id: &str, id_property: Option<&str>) -> Option<u64> {
        match id_property {
            Some("email") => self.by_email(id),
            None | Some("hs_object_id") => id
                .parse::<u64>()
                .ok()
                .filter(|n| self.contacts.contains_key(n)),
            Some(_) => None,
        }
    }

    fn create(&mut self, props: BTreeMap<String, String>) -> &Contact {
        let id = self.next_id;
        self.next_id += 1;
        let now = Utc::now();
        let mut c = Contact {
            id,
            props: BTreeMap::new(),
            created: now,
            updated: now,
            written: Instant::now(),
            archived_at: None,
        };
        for (k, v) in props {
            if !v.is_empty() {
                c.props.insert(k, v);
            }
        }
        stamp(&mut c);
        self.contacts.entry(id).or_insert(c)
    }

    fn update(&mut self, id: u64, props: BTreeMap<String, String>) -> Option<&Contact> {
        let c = self.contacts.get_mut(&id)?;
        for (k, v) in props {
            if v.is_empty() {
                c.props.remove(&k);
            } else {
                c.props.insert(k, v);
            }
        }
        c.updated = Utc::now().max(c.created);
        c.written = Instant::now();
        stamp(c);
        Some(c)
    }
}

fn stamp(c: &mut Contact) {
    c.props.insert("hs_object_id".into(), c.id.to_string());
    c.props.insert("createdate".into(), iso(c.created));
    c.props.insert("lastmodifieddate".into(), iso(c.updated));
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The object as the API returns it: every property a string (or null when requested but
/// unset).
fn render(c: &Contact, props: Option<&[String]>) -> Value {
    let mut properties = Map::new();
    match props {
        Some(list) => {
            for p in list {
                properties.insert(
                    p.clone(),
                    c.props.get(p).map(|v| json!(v)).unwrap_or(Value::Null),
                );
            }
        }
        None => {
            for (k, v) in &c.props {
                properties.insert(k.clone(), json!(v));
            }
        }
    }
    let mut o = json!({
        "id": c.id.to_string(),
        "properties": properties,
        "createdAt": iso(c.created),
        "updatedAt": iso(c.updated),
        "archived": c.archived_at.is_some(),
    });
    if let Some(at) = c.archived_at {
        o["archivedAt"] = json!(iso(at));
    }
    o
}

/// What a read returns by default: HubSpot's default contact properties.
fn default_props() -> Vec<String> {
    DEFAULT_PROPERTIES.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// property definitions

struct PropDef {
    name: &'static str,
    label: &'static str,
    ty: &'static str,
    field_type: &'static str,
    group: &'static str,
    options: &'static [(&'static str, &'static str)],
    read_only: bool,
    custom: bool,
}

const LIFECYCLE: &[(&str, &str)] = &[
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
];

const LEAD_STATUS: &[(&str, &str)] = &[
    ("NEW", "New"),
    ("OPEN", "Open"),
    ("IN_PROGRESS", "In Progress"),
    ("OPEN_DEAL", "Open Deal"),
    ("UNQUALIFIED", "Unqualified"),
    ("ATTEMPTED_TO_CONTACT", "Attempted to Contact"),
    ("CONNECTED", "Connected"),
    ("BAD_TIMING", "Bad Timing"),
];

const fn prop(
    name: &'static str,
    label: &'static str,
    ty: &'static str,
    field_type: &'static str,
) -> PropDef {
    PropDef {
        name,
        label,
        ty,
        field_type,
        group: "contactinformation",
        options: &[],
        read_only: false,
        custom: false,
    }
}

const PROPERTIES: &[PropDef] = &[
    prop("address", "Street Address", "string", "text"),
    prop("city", "City", "string", "text"),
    prop("company", "Company Name", "string", "text"),
    prop("country", "Country/Region", "string", "text"),
    PropDef {
        read_only: true,
        ..prop("createdate", "Create Date", "datetime", "date")
    },
    prop("email", "Email", "string", "text"),
    prop("firstname", "First Name", "string", "text"),
    PropDef {
        custom: true,
        group: "conversioninformation",
        ..prop("form_submitted_at", "Form submitted at", "datetime", "date")
    },
    PropDef {
        options: LEAD_STATUS,
        group: "sales_properties",
        ..prop("hs_lead_status", "Lead Status", "enumeration", "radio")
    },
    PropDef {
        read_only: true,
        ..prop("hs_object_id", "Record ID", "number", "number")
    },
    prop("jobtitle", "Job Title", "string", "text"),
    PropDef {
        read_only: true,
        ..prop("lastmodifieddate", "Last Modified Date", "datetime", "date")
    },
    prop("lastname", "Last Name", "string", "text"),
    PropDef {
        custom: true,
        ..prop("lead_owner_team", "Lead owner team", "string", "text")
    },
    PropDef {
        custom: true,
        ..prop("lead_source", "Lead source", "string", "text")
    },
    PropDef {
        options: LIFECYCLE,
        ..prop("lifecyclestage", "Lifecycle Stage", "enumeration", "radio")
    },
    prop(
        "mobilephone",
        "Mobile Phone Number",
        "string",
        "phonenumber",
    ),
    prop("phone", "Phone Number", "string", "phonenumber"),
    prop("state", "State/Region", "string", "text"),
    PropDef {
        custom: true,
        ..prop("tags", "Tags", "string", "text")
    },
    prop("website", "Website URL", "string", "text"),
    prop("zip", "Postal Code", "string", "text"),
];

fn prop_def(name: &str) -> Option<&'static PropDef> {
    PROPERTIES.iter().find(|p| p.name == name)
}

fn render_prop(p: &PropDef, created: &str) -> Value {
    let options: Vec<Value> = p
        .options
        .iter()
        .enumerate()
        .map(|(i, (value, label))| {
            json!({"label": label, "value": value, "displayOrder": i, "hidden": false})
        })
        .collect();
    let mut o = json!({
        "updatedAt": created,
        "createdAt": created,
        "name": p.name,
        "label": p.label,
        "type": p.ty,
        "fieldType": p.field_type,
        "description": "",
        "groupName": p.group,
        "options": options,
        "displayOrder": -1,
        "calculated": false,
        "externalOptions": false,
        "hasUniqueValue": false,
        "hidden": false,
        "modificationMetadata": {
            "archivable": p.custom,
            "readOnlyDefinition": !p.custom,
            "readOnlyValue": p.read_only,
        },
        "formField": !p.read_only,
        "dataSensitivity": "non_sensitive",
    });
    if !p.custom {
        o["hubspotDefined"] = json!(true);
    }
    o
}

// ---------------------------------------------------------------------------------------------
// errors

fn error(
    shared: &Shared,
    status: StatusCode,
    category: &str,
    message: &str,
    extra: Value,
) -> Response {
    let mut body = json!({
        "status": "error",
        "message": message,
        "correlationId": shared.uuid(),
        "category": category,
    });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    reply(status, body)
}

pub(crate) fn internal_error(shared: &Shared) -> Response {
    error(
        shared,
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_ERROR",
        "internal error",
        json!({}),
    )
}

fn bad_json(shared: &Shared, e: &str) -> Response {
    error(
        shared,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
        &format!("Invalid input JSON: {e}"),
        json!({}),
    )
}

fn validation(shared: &Shared, message: &str) -> Response {
    error(
        shared,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
        message,
        json!({}),
    )
}

fn not_found(shared: &Shared) -> Response {
    error(
        shared,
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "resource not found",
        json!({}),
    )
}

fn conflict(shared: &Shared, existing: u64) -> Response {
    error(
        shared,
        StatusCode::CONFLICT,
        "CONFLICT",
        &format!("Contact already exists. Existing ID: {existing}"),
        json!({}),
    )
}

/// One invalid property value.
#[derive(Clone, Debug)]
struct PropError {
    name: String,
    code: &'static str,
    message: String,
}

/// The 400 HubSpot sends for invalid property values: the legacy message text (a JSON list)
/// and the structured `errors`.
fn invalid_properties(shared: &Shared, errs: &[PropError]) -> Response {
    let (message, extra) = invalid_properties_parts(errs);
    error(
        shared,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
        &message,
        extra,
    )
}

fn invalid_properties_parts(errs: &[PropError]) -> (String, Value) {
    let legacy: Vec<Value> = errs
        .iter()
        .map(|e| {
            json!({
                "isValid": false,
                "message": e.message,
                "error": e.code,
                "name": e.name,
                "localizedErrorMessage": e.message,
                "portalId": PORTAL_ID,
            })
        })
        .collect();
    let message = format!("Property values were not valid: {}", Value::Array(legacy));
    let errors: Vec<Value> = errs
        .iter()
        .map(|e| {
            json!({
                "message": e.message,
                "code": e.code,
                "context": {"propertyName": [e.name]},
            })
        })
        .collect();
    (message, json!({ "errors": errors }))
}

// ---------------------------------------------------------------------------------------------
// property validation

/// Checks and normalizes `{name: value}` into stored strings ("" clears a property).
fn validate_props(input: &Value) -> Result<BTreeMap<String, String>, Vec<PropError>> {
    let Some(obj) = input.as_object() else {
        return Err(vec![PropError {
            name: "properties".into(),
            code: "INVALID_INPUT",
            message: "properties must be an object of property names to values".into(),
        }]);
    };
    let mut out = BTreeMap::new();
    let mut errs = Vec::new();
    for (name, v) in obj {
        let Some(def) = prop_def(name) else {
            errs.push(PropError {
                name: name.clone(),
                code: "PROPERTY_DOESNT_EXIST",
                message: format!("Property \"{name}\" does not exist"),
            });
            continue;
        };
        if def.read_only {
            errs.push(PropError {
                name: name.clone(),
                code: "READ_ONLY_VALUE",
                message: format!("\"{name}\" is a read only property; its value cannot be set."),
            });
            continue;
        }
        let value = util::to_plain_string(v).unwrap_or_default();
        let value = if def.ty == "string" {
            value
        } else {
            value.trim().to_string()
        };
        if value.is_empty() {
            out.insert(name.clone(), String::new());
            continue;
        }
        match def.ty {
            _ if def.name == "email" => {
                if !util::is_email(value.trim()) {
                    errs.push(PropError {
                        name: name.clone(),
                        code: "INVALID_EMAIL",
                        message: format!("Email address {value} is invalid"),
                    });
                    continue;
                }
                out.insert(name.clone(), value.trim().to_string());
            }
            "enumeration" => {
                if !def.options.iter().any(|(o, _)| *o == value) {
                    let allowed: Vec<&str> = def.options.iter().map(|(o, _)| *o).collect();
                    errs.push(PropError {
                        name: name.clone(),
                        code: "INVALID_OPTION",
                        message: format!(
                            "{value} was not one of the allowed options: [{}]",
                            allowed.join(", ")
                        ),
                    });
                    continue;
                }
                out.insert(name.clone(), value);
            }
            "datetime" => match parse_datetime(&value) {
                Some(t) => {
                    out.insert(name.clone(), t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
                }
                None => errs.push(PropError {
                    name: name.clone(),
                    code: "INVALID_DATE",
                    message: format!(
                        "{value} is not a valid datetime (use epoch milliseconds or ISO 8601)"
                    ),
                }),
            },
            _ => {
                out.insert(name.clone(), value);
            }
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// Epoch milliseconds, RFC 3339, or a date (midnight UTC).
fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(ms) = s.parse::<i64>() {
        return Utc.timestamp_millis_opt(ms).single();
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    None
}

// ---------------------------------------------------------------------------------------------
// router

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let crm = Router::new()
        .route(
            "/crm/v3/objects/contacts",
            post(create_contact).get(list_contacts),
        )
        .route(
            "/crm/v3/objects/contacts/{id}",
            get(get_contact).patch(patch_contact).delete(delete_contact),
        )
        .route("/crm/v3/objects/contacts/search", post(search))
        .route("/crm/v3/objects/contacts/batch/{action}", post(batch))
        .route("/crm/v3/properties/contacts", get(list_properties))
        .route("/crm/v3/properties/contacts/{name}", get(get_property))
        .route_layer(middleware::from_fn_with_state(shared.clone(), gate));
    let ctx = ProviderCtx {
        shared: shared.clone(),
        name: "hubspot",
        internal_error,
    };
    Router::new()
        .route("/oauth/v1/token", post(token))
        .merge(crm)
        .fallback(fallback)
        .with_state(shared)
        .layer(middleware::from_fn_with_state(ctx, faults::observe))
}

async fn fallback(State(shared): State<Arc<Shared>>) -> Response {
    not_found(&shared)
}

/// Authentication and rate limits for every CRM call.
async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let is_search = req.uri().path().ends_with("/search");
    let (subject, private_app) = match bearer(req.headers()) {
        None => {
            return error(
                &shared,
                StatusCode::UNAUTHORIZED,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports both API Key and OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                json!({}),
            );
        }
        Some(t) if t == STATIC_TOKEN => ("private-app".to_string(), true),
        Some(t) => match lock(&shared.tokens).check("hubspot", &t) {
            TokenCheck::Valid(s) => (s, false),
            TokenCheck::Expired(ago) => {
                let mins = ago.as_secs() / 60;
                return error(
                    &shared,
                    StatusCode::UNAUTHORIZED,
                    "EXPIRED_AUTHENTICATION",
                    &format!(
                        "The OAuth token used to make this call expired {mins} minute(s) ago."
                    ),
                    json!({"context": {"expire time": [ago.as_secs().to_string()]}}),
                );
            }
            TokenCheck::Unknown => {
                return error(
                    &shared,
                    StatusCode::UNAUTHORIZED,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports both API Key and OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    json!({}),
                );
            }
        },
    };
    let max = shared.limit(shared.cfg.hubspot_rate_limit);
    let search_max = shared.limit(shared.cfg.hubspot_search_rate_limit);
    let group = format!("publicapi:{subject}:{PORTAL_ID}");
    let (verdict, daily_used) = {
        let mut st = lock(&shared.hubspot);
        if is_search
            && matches!(
                st.search_window.check(&subject, search_max),
                Verdict::Limited { .. }
            )
        {
            drop(st);
            let mut r = error(
                &shared,
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITS",
                "You have reached your secondly limit.",
                json!({"errorType": "RATE_LIMIT", "policyName": "SECONDLY", "groupName": group}),
            );
            r.extensions_mut().insert(RateLimited);
            return r;
        }
        let v = st.window.check(&subject, max);
        let used = st.daily_used.entry(subject.clone()).or_default();
        if matches!(v, Verdict::Allowed { .. }) {
            *used += 1;
        }
        (v, *used)
    };
    let remaining = match verdict {
        Verdict::Allowed { remaining } => remaining,
        Verdict::Limited { .. } => {
            let mut r = error(
                &shared,
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITS",
                "You have reached your ten_secondly_rolling limit.",
                json!({"errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING", "groupName": group}),
            );
            r.extensions_mut().insert(RateLimited);
            add_limit_headers(r.headers_mut(), max, 0, private_app, daily_used);
            return r;
        }
    };
    let mut resp = next.run(req).await;
    // The search endpoints do not send the rate-limit headers.
    if !is_search {
        add_limit_headers(resp.headers_mut(), max, remaining, private_app, daily_used);
    }
    resp
}

fn add_limit_headers(h: &mut HeaderMap, max: u32, remaining: u32, private_app: bool, daily: u32) {
    let num =
        |n: u32| HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"));
    h.insert("x-hubspot-ratelimit-max", num(max));
    h.insert("x-hubspot-ratelimit-remaining", num(remaining));
    h.insert(
        "x-hubspot-ratelimit-interval-milliseconds",
        HeaderValue::from_static("10000"),
    );
    // The daily headers are only sent to private apps.
    if private_app {
        h.insert("x-hubspot-ratelimit-daily", num(DAILY_LIMIT));
        h.insert(
            "x-hubspot-ratelimit-daily-remaining",
            num(DAILY_LIMIT.saturating_sub(daily)),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
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
    if grant == "refresh_token" && get("refresh_token") != REFRESH_TOKEN {
        return oauth_error(
            "BAD_REFRESH_TOKEN",
            "invalid_grant",
            "missing or unknown refresh token",
        );
    }
    if grant == "authorization_code" && get("code") != AUTH_CODE {
        return oauth_error(
            "BAD_AUTH_CODE",
            "invalid_grant",
            "missing or unknown auth code",
        );
    }
    let access = format!(
        "CN{}",
        shared.random_string(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            62
        )
    );
    let ttl = shared.cfg.token_ttl;
    lock(&shared.tokens).issue("hubspot", &access, CLIENT_ID, ttl);
    reply(
        StatusCode::OK,
        json!({
            "token_type": "bearer",
            "refresh_token": REFRESH_TOKEN,
            "access_token": access,
            "expires_in": ttl.as_secs(),
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// properties

async fn list_properties(State(shared): State<Arc<Shared>>) -> Response {
    let created = util::iso_ms(shared.started_at);
    let results: Vec<Value> = PROPERTIES
        .iter()
        .map(|p| render_prop(p, &created))
        .collect();
    reply(StatusCode::OK, json!({ "results": results }))
}

async fn get_property(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match prop_def(&name) {
        Some(p) => reply(
            StatusCode::OK,
            render_prop(p, &util::iso_ms(shared.started_at)),
        ),
        None => error(
            &shared,
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            &format!("Unable to find property {name} in portal {PORTAL_ID}"),
            json!({}),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// single-object endpoints

/// `properties=a,b` or `properties=a&properties=b`.
fn requested_props(pairs: &[(String, String)]) -> Option<Vec<String>> {
    let list: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "properties")
        .flat_map(|(_, v)| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    (!list.is_empty()).then_some(list)
}

/// A new contact needs an e-mail, a first name or a last name.
fn identifies(props: &BTreeMap<String, String>) -> bool {
    ["email", "firstname", "lastname"]
        .iter()
        .any(|k| props.get(*k).is_some_and(|v| !v.is_empty()))
}

const NEEDS_IDENTITY: &str = "At least one of the following properties is required to create a contact: email, firstname, lastname";

fn properties_of(body: &Value) -> Result<&Value, &'static str> {
    match body.get("properties") {
        Some(p @ Value::Object(_)) => Ok(p),
        Some(Value::Null) | None => Err("properties is required"),
        Some(_) => Err("properties must be an object"),
    }
}

async fn create_contact(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = match util::parse_json(&body) {
        Ok(v) => v,
        Err(e) => return bad_json(&shared, &e),
    };
    let props = match properties_of(&body) {
        Ok(p) => p,
        Err(m) => return validation(&shared, m),
    };
    let props = match validate_props(props) {
        Ok(p) => p,
        Err(errs) => return invalid_properties(&shared, &errs),
    };
    if !identifies(&props) {
        return validation(&shared, NEEDS_IDENTITY);
    }
    let mut st = lock(&shared.hubspot);
    if let Some(email) = props.get("email").filter(|e| !e.is_empty())
        && let Some(existing) = st.by_email(email)
    {
        drop(st);
        return conflict(&shared, existing);
    }
    let c = st.create(props);
    reply(StatusCode::CREATED, render(c, None))
}

async fn list_contacts(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let pairs = query_pairs(q.as_deref());
    let limit = query_get(&pairs, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let after = query_get(&pairs, "after")
        .and_then(|a| a.parse::<u64>().ok())
        .unwrap_or(0);
    let props = requested_props(&pairs).unwrap_or_else(default_props);
    let st = lock(&shared.hubspot);
    let page: Vec<&Contact> = st
        .contacts
        .range(after..)
        .map(|(_, c)| c)
        .take(limit + 1)
        .collect();
    let results: Vec<Value> = page
        .iter()
        .take(limit)
        .map(|c| render(c, Some(&props)))
        .collect();
    let mut body = json!({ "results": results });
    if page.len() > limit {
        let next = page[limit].id.to_string();
        body["paging"] = json!({"next": {"after": next, "link": format!("{}?after={next}", "/crm/v3/objects/contacts")}});
    }
    reply(StatusCode::OK, body)
}

async fn get_contact(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let pairs = query_pairs(q.as_deref());
    let id_property = query_get(&pairs, "idProperty");
    let archived = query_get(&pairs, "archived") == Some("true");
    let props = requested_props(&pairs).unwrap_or_else(default_props);
    let st = lock(&shared.hubspot);
    if archived && let Some(c) = id.parse::<u64>().ok().and_then(|n| st.archived.get(&n)) {
        return reply(StatusCode::OK, render(c, Some(&props)));
    }
    match st.resolve(&id, id_property) {
        Some(n) => reply(StatusCode::OK, render(&st.contacts[&n], Some(&props))),
        None => {
            drop(st);
            not_found(&shared)
        }
    }
}

async fn patch_contact(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let pairs = query_pairs(q.as_deref());
    let id_property = query_get(&pairs, "idProperty");
    let body = match util::parse_json(&body) {
        Ok(v) => v,
        Err(e) => return bad_json(&shared, &e),
    };
    let props = match properties_of(&body) {
        Ok(p) => p,
        Err(m) => return validation(&shared, m),
    };
    let props = match validate_props(props) {
        Ok(p) => p,
        Err(errs) => return invalid_properties(&shared, &errs),
    };
    let mut st = lock(&shared.hubspot);
    let Some(n) = st.resolve(&id, id_property) else {
        drop(st);
        return not_found(&shared);
    };
    if let Some(email) = props.get("email").filter(|e| !e.is_empty())
        && let Some(existing) = st.by_email(email).filter(|&e| e != n)
    {
        drop(st);
        return conflict(&shared, existing);
    }
    match st.update(n, props) {
        Some(c) => reply(StatusCode::OK, render(c, None)),
        None => {
            drop(st);
            not_found(&shared)
        }
    }
}

async fn delete_contact(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut st = lock(&shared.hubspot);
    if let Some(mut c) = id.parse::<u64>().ok().and_then(|n| st.contacts.remove(&n)) {
        c.archived_at = Some(Utc::now());
        st.archived.insert(c.id, c);
    }
    // HubSpot answers 204 whether or not the record existed.
    reply_empty(StatusCode::NO_CONTENT)
}

fn reply_empty(status: StatusCode) -> Response {
    let mut r = Response::new(axum::body::Body::empty());
    *r.status_mut() = status;
    r
}

// ---------------------------------------------------------------------------------------------
// search

#[derive(Debug)]
struct Filter {
    property: String,
    operator: String,
    value: Option<String>,
    high: Option<String>,
    values: Vec<String>,
}

fn parse_filters(body: &Value) -> Result<Vec<Vec<Filter>>, String> {
    let groups = match body.get("filterGroups") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(g)) => g,
        Some(_) => return Err("filterGroups must be an array".into()),
    };
    if groups.len() > SEARCH_MAX_GROUPS {
        return Err(format!(
            "Too many filter groups: {}. The maximum is {SEARCH_MAX_GROUPS}.",
            groups.len()
        ));
    }
    let mut out = Vec::new();
    let mut total = 0;
    for (gi, g) in groups.iter().enumerate() {
        let filters = match g.get("filters") {
            Some(Value::Array(f)) => f,
            None | Some(Value::Null) => {
                out.push(Vec::new());
                continue;
            }
            Some(_) => return Err(format!("filterGroups[{gi}].filters must be an array")),
        };
        if filters.len() > SEARCH_MAX_FILTERS_PER_GROUP {
            return Err(format!(
                "Too many filters in filterGroups[{gi}]: {}. The maximum is {SEARCH_MAX_FILTERS_PER_GROUP}.",
                filters.len()
            ));
        }
        total += filters.len();
        let mut group = Vec::new();
        for (fi, f) in filters.iter().enumerate() {
            let at = format!("filterGroups[{gi}].filters[{fi}]");
            let property = f
                .get("propertyName")
                .and_then(Value::as_str)
                .ok_or(format!("{at}.propertyName is required"))?
                .to_string();
            if prop_def(&property).is_none() {
                return Err(format!(
                    "{at}.propertyName: Property \"{property}\" does not exist"
                ));
            }
            let operator = f
                .get("operator")
                .and_then(Value::as_str)
                .ok_or(format!("{at}.operator is required"))?
                .to_string();
            const OPS: &[&str] = &[
                "EQ",
                "NEQ",
                "LT",
                "LTE",
                "GT",
                "GTE",
                "BETWEEN",
                "IN",
                "NOT_IN",
                "HAS_PROPERTY",
                "NOT_HAS_PROPERTY",
                "CONTAINS_TOKEN",
                "NOT_CONTAINS_TOKEN",
            ];
            if !OPS.contains(&operator.as_str()) {
                return Err(format!(
                    "{at}.operator: Cannot deserialize value of type `FilterOperatorEnum` from String \"{operator}\": not one of the values accepted for Enum class: [{}]",
                    OPS.join(", ")
                ));
            }
            let value = f.get("value").and_then(util::to_plain_string);
            let high = f.get("highValue").and_then(util::to_plain_string);
            let values: Vec<String> = f
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(util::to_plain_string).collect())
                .unwrap_or_default();
            let needs_value = !matches!(
                operator.as_str(),
                "HAS_PROPERTY" | "NOT_HAS_PROPERTY" | "IN" | "NOT_IN"
            );
            if needs_value && value.is_none() {
                return Err(format!("{at}.value is required for operator {operator}"));
            }
            if operator == "BETWEEN" && high.is_none() {
                return Err(format!("{at}.highValue is required for operator BETWEEN"));
            }
            if matches!(operator.as_str(), "IN" | "NOT_IN") && values.is_empty() {
                return Err(format!("{at}.values is required for operator {operator}"));
            }
            group.push(Filter {
                property,
                operator,
                value,
                high,
                values,
            });
        }
        out.push(group);
    }
    if total > SEARCH_MAX_FILTERS {
        return Err(format!(
            "Too many filters: {total}. The maximum is {SEARCH_MAX_FILTERS} across all filter groups."
        ));
    }
    Ok(out)
}

/// A comparable form: numbers and datetimes (as epoch ms) compare numerically.
fn ordinal(prop: &str, s: &str) -> Option<f64> {
    if prop_def(prop).is_some_and(|d| d.ty == "datetime") {
        return parse_datetime(s).map(|t| t.timestamp_millis() as f64);
    }
    s.parse::<f64>().ok()
}

fn compare(prop: &str, stored: &str, value: &str) -> std::cmp::Ordering {
    match (ordinal(prop, stored), ordinal(prop, value)) {
        (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
        _ => stored.to_lowercase().cmp(&value.to_lowercase()),
    }
}

fn eq(prop: &str, stored: &str, value: &str) -> bool {
    compare(prop, stored, value) == std::cmp::Ordering::Equal
}

/// Words of a value (e-mails split at `@` and `.` too).
fn tokens(s: &str) -> Vec<String> {
    let lower = s.to_lowercase();
    let mut out: Vec<String> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    out.push(lower);
    out
}

fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(p) => rest = &rest[p + part.len()..],
                None => return false,
            }
        }
    }
    true
}

fn contains_token(stored: &str, value: &str) -> bool {
    let v = value.to_lowercase();
    tokens(stored).iter().any(|t| glob(&v, t))
}

fn matches(c: &Contact, f: &Filter) -> bool {
    let stored = c.props.get(&f.property).map(String::as_str);
    let value = f.value.as_deref().unwrap_or("");
    match f.operator.as_str() {
        "HAS_PROPERTY" => stored.is_some(),
        "NOT_HAS_PROPERTY" => stored.is_none(),
        "EQ" => stored.is_some_and(|s| eq(&f.property, s, value)),
        "NEQ" => !stored.is_some_and(|s| eq(&f.property, s, value)),
        "LT" => stored.is_some_and(|s| compare(&f.property, s, value).is_lt()),
        "LTE" => stored.is_some_and(|s| compare(&f.property, s, value).is_le()),
        "GT" => stored.is_some_and(|s| compare(&f.property, s, value).is_gt()),
        "GTE" => stored.is_some_and(|s| compare(&f.property, s, value).is_ge()),
        "BETWEEN" => stored.is_some_and(|s| {
            compare(&f.property, s, value).is_ge()
                && compare(&f.property, s, f.high.as_deref().unwrap_or("")).is_le()
        }),
        // For string properties HubSpot compares IN values against the lowercased stored
        // value: values must be given in lowercase.
        "IN" => stored.is_some_and(|s| f.values.iter().any(|v| in_match(&f.property, s, v))),
        "NOT_IN" => !stored.is_some_and(|s| f.values.iter().any(|v| in_match(&f.property, s, v))),
        "CONTAINS_TOKEN" => stored.is_some_and(|s| contains_token(s, value)),
        "NOT_CONTAINS_TOKEN" => !stored.is_some_and(|s| contains_token(s, value)),
        _ => false,
    }
}

fn in_match(prop: &str, stored: &str, v: &str) -> bool {
    match prop_def(prop).map(|d| d.ty) {
        Some("string") => stored.to_lowercase() == v,
        Some("enumeration") => stored == v,
        _ => eq(prop, stored, v),
    }
}

async fn search(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = match util::parse_json(&body) {
        Ok(v) => v,
        Err(e) => return bad_json(&shared, &e),
    };
    let groups = match parse_filters(&body) {
        Ok(g) => g,
        Err(m) => return validation(&shared, &m),
    };
    let limit = match body.get("limit") {
        None | Some(Value::Null) => 10,
        Some(v) => match v.as_u64() {
            Some(n) if (n as usize) <= SEARCH_LIMIT => n as usize,
            _ => {
                return validation(
                    &shared,
                    &format!("limit must be an integer between 0 and {SEARCH_LIMIT}"),
                );
            }
        },
    };
    let after = match body.get("after") {
        None | Some(Value::Null) => 0,
        Some(v) => match util::to_plain_string(v).and_then(|s| s.parse::<usize>().ok()) {
            Some(n) => n,
            None => return validation(&shared, "after must be a number"),
        },
    };
    if after + limit > SEARCH_MAX_RESULTS {
        return validation(
            &shared,
            &format!(
                "Search results are limited to {SEARCH_MAX_RESULTS} records; narrow the filters"
            ),
        );
    }
    let props: Vec<String> = body
        .get("properties")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .filter(|a| !a.is_empty())
        .unwrap_or_else(default_props);
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .map(str::to_lowercase)
        .filter(|q| !q.is_empty());
    let sort = body
        .get("sorts")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|s| {
            // Either {propertyName, direction} or "-prop" / "prop".
            if let Some(p) = s.as_str() {
                return Some(match p.strip_prefix('-') {
                    Some(p) => (p.to_string(), true),
                    None => (p.to_string(), false),
                });
            }
            let p = s.get("propertyName")?.as_str()?.to_string();
            let desc = s.get("direction").and_then(Value::as_str) == Some("DESCENDING");
            Some((p, desc))
        });
    let lag = shared.cfg.hubspot_search_lag;
    let st = lock(&shared.hubspot);
    let now = Instant::now();
    let mut hits: Vec<&Contact> = st
        .contacts
        .values()
        .filter(|c| now.saturating_duration_since(c.written) >= lag)
        .filter(|c| groups.is_empty() || groups.iter().any(|g| g.iter().all(|f| matches(c, f))))
        .filter(|c| {
            query.as_ref().is_none_or(|q| {
                ["email", "firstname", "lastname", "phone", "company"]
                    .iter()
                    .filter_map(|p| c.props.get(*p))
                    .any(|v| v.to_lowercase().contains(q.as_str()))
            })
        })
        .collect();
    if let Some((p, desc)) = &sort {
        hits.sort_by(|a, b| {
            let o = match (a.props.get(p), b.props.get(p)) {
                (Some(x), Some(y)) => compare(p, x, y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            let o = if *desc { o.reverse() } else { o };
            o.then(a.id.cmp(&b.id))
        });
    }
    let total = hits.len();
    let results: Vec<Value> = hits
        .iter()
        .skip(after)
        .take(limit)
        .map(|c| render(c, Some(&props)))
        .collect();
    let mut out = json!({ "total": total, "results": results });
    if after + limit < total && limit > 0 {
        out["paging"] = json!({"next": {"after": (after + limit).to_string()}});
    }
    reply(StatusCode::OK, out)
}

// ---------------------------------------------------------------------------------------------
// batch

struct BatchOut {
    results: Vec<Value>,
    errors: Vec<Value>,
}

/// A batch input's validated properties, or the per-input error that refuses them.
fn input_props(input: &Value, id: &str) -> Result<BTreeMap<String, String>, Value> {
    let ids = json!({ "ids": [id] });
    match properties_of(input).map(validate_props) {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(errs)) => {
            let (message, extra) = invalid_properties_parts(&errs);
            Err(batch_error(
                "VALIDATION_ERROR",
                &message,
                ids,
                extra.get("errors").cloned(),
            ))
        }
        Err(m) => Err(batch_error("VALIDATION_ERROR", m, ids, None)),
    }
}

fn batch_error(category: &str, message: &str, context: Value, errors: Option<Value>) -> Value {
    let mut e = json!({
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
    });
    if let Some(errs) = errors {
        e["errors"] = errs;
    }
    e
}

async fn batch(
    State(shared): State<Arc<Shared>>,
    Path(action): Path<String>,
    body: Bytes,
) -> Response {
    let requested_at = Utc::now();
    let body = match util::parse_json(&body) {
        Ok(v) => v,
        Err(e) => return bad_json(&shared, &e),
    };
    let inputs = match body.get("inputs") {
        Some(Value::Array(a)) => a.clone(),
        _ => return validation(&shared, "inputs is required and must be an array"),
    };
    if inputs.len() > BATCH_LIMIT {
        return validation(
            &shared,
            &format!(
                "Too many inputs: {}. Batch requests accept at most {BATCH_LIMIT} inputs.",
                inputs.len()
            ),
        );
    }
    let started_at = Utc::now();
    let out = match action.as_str() {
        "create" => batch_create(&shared, &inputs),
        "update" => batch_update(&shared, &inputs),
        "upsert" => batch_upsert(&shared, &inputs),
        "read" => batch_read(&shared, &body, &inputs),
        "archive" => {
            let mut st = lock(&shared.hubspot);
            for i in &inputs {
                let id = i
                    .get("id")
                    .and_then(util::to_plain_string)
                    .unwrap_or_default();
                if let Some(mut c) = id.parse::<u64>().ok().and_then(|n| st.contacts.remove(&n)) {
                    c.archived_at = Some(Utc::now());
                    st.archived.insert(c.id, c);
                }
            }
            return reply_empty(StatusCode::NO_CONTENT);
        }
        _ => return not_found(&shared),
    };
    let mut out = match out {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    // HubSpot does not promise results in input order; neither does the sandbox.
    if shared.cfg.hubspot_shuffle_batch_results {
        let mut rng = rand::rngs::StdRng::seed_from_u64(shared.random_u64());
        out.results.shuffle(&mut rng);
    }
    let ok_status = if action == "create" {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let status = if out.errors.is_empty() {
        ok_status
    } else {
        StatusCode::MULTI_STATUS
    };
    let mut resp = json!({
        "status": "COMPLETE",
        "results": out.results,
        "requestedAt": iso(requested_at),
        "startedAt": iso(started_at),
        "completedAt": iso(Utc::now()),
    });
    if !out.errors.is_empty() {
        resp["numErrors"] = json!(out.errors.len());
        resp["errors"] = Value::Array(out.errors);
    }
    reply(status, resp)
}

/// Batch create is all or nothing: invalid values refuse the batch with 400, an existing
/// e-mail with 409 (naming the first one found).
fn batch_create(shared: &Shared, inputs: &[Value]) -> Result<BatchOut, Response> {
    let mut all = Vec::new();
    let mut errs = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let props = match properties_of(input) {
            Ok(p) => p,
            Err(m) => return Err(validation(shared, &format!("inputs[{i}]: {m}"))),
        };
        match validate_props(props) {
            Ok(p) => all.push(p),
            Err(e) => errs.extend(e),
        }
    }
    if !errs.is_empty() {
        return Err(invalid_properties(shared, &errs));
    }
    if let Some(i) = all.iter().position(|p| !identifies(p)) {
        return Err(validation(
            shared,
            &format!("inputs[{i}]: {NEEDS_IDENTITY}"),
        ));
    }
    let mut st = lock(&shared.hubspot);
    let mut seen = BTreeSet::new();
    for p in &all {
        if let Some(email) = p.get("email").filter(|e| !e.is_empty()) {
            if let Some(existing) = st.by_email(email) {
                drop(st);
                return Err(conflict(shared, existing));
            }
            if !seen.insert(email.to_lowercase()) {
                drop(st);
                return Err(validation(
                    shared,
                    &format!("Duplicate email addresses found in batch input: [{email}]"),
                ));
            }
        }
    }
    let results = all
        .into_iter()
        .map(|p| render(st.create(p), None))
        .collect();
    Ok(BatchOut {
        results,
        errors: Vec::new(),
    })
}

fn id_of(input: &Value) -> Option<String> {
    input
        .get("id")
        .and_then(util::to_plain_string)
        .filter(|s| !s.is_empty())
}

fn check_id_property(shared: &Shared, p: Option<&str>, upsert: bool) -> Result<(), Response> {
    match p {
        None if upsert => Err(validation(shared, "idProperty is required for upsert")),
        None | Some("email") => Ok(()),
        Some("hs_object_id") if !upsert => Ok(()),
        Some(other) => Err(validation(
            shared,
            &format!(
                "Unable to perform update/upsert by non-unique 0-1 property {other} in portal ID {PORTAL_ID}"
            ),
        )),
    }
}

fn duplicate_ids(shared: &Shared, inputs: &[Value], fold_case: bool) -> Result<(), Response> {
    let mut seen = BTreeSet::new();
    let mut dups = Vec::new();
    for i in inputs {
        if let Some(id) = id_of(i) {
            let key = if fold_case {
                id.to_lowercase()
            } else {
                id.clone()
            };
            if !seen.insert(key) {
                dups.push(id);
            }
        }
    }
    if dups.is_empty() {
        Ok(())
    } else {
        Err(validation(
            shared,
            &format!(
                "Duplicate IDs found in batch input: [{}]. IDs must be unique",
                dups.join(", ")
            ),
        ))
    }
}

fn batch_update(shared: &Shared, inputs: &[Value]) -> Result<BatchOut, Response> {
    let mut missing = Vec::new();
    let mut errors = Vec::new();
    let mut results = Vec::new();
    for input in inputs {
        check_id_property(
            shared,
            input.get("idProperty").and_then(Value::as_str),
            false,
        )?;
        if id_of(input).is_none() {
            return Err(validation(shared, "Every input needs an id"));
        }
    }
    let by_email = inputs
        .iter()
        .any(|i| i.get("idProperty").and_then(Value::as_str) == Some("email"));
    duplicate_ids(shared, inputs, by_email)?;
    let mut st = lock(&shared.hubspot);
    for input in inputs {
        let id = id_of(input).unwrap_or_default();
        let id_property = input.get("idProperty").and_then(Value::as_str);
        let props = match input_props(input, &id) {
            Ok(p) => p,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let Some(n) = st.resolve(&id, id_property) else {
            missing.push(id);
            continue;
        };
        if let Some(email) = props.get("email").filter(|e| !e.is_empty())
            && let Some(existing) = st.by_email(email).filter(|&e| e != n)
        {
            errors.push(batch_error(
                "CONFLICT",
                &format!("Contact already exists. Existing ID: {existing}"),
                json!({"ids": [id]}),
                None,
            ));
            continue;
        }
        if let Some(c) = st.update(n, props) {
            results.push(render(c, None));
        }
    }
    if !missing.is_empty() {
        errors.push(batch_error(
            "OBJECT_NOT_FOUND",
            "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.",
            json!({"ids": missing}),
            None,
        ));
    }
    Ok(BatchOut { results, errors })
}

fn batch_upsert(shared: &Shared, inputs: &[Value]) -> Result<BatchOut, Response> {
    for input in inputs {
        check_id_property(
            shared,
            input.get("idProperty").and_then(Value::as_str),
            true,
        )?;
        if id_of(input).is_none() {
            return Err(validation(shared, "Every input needs an id"));
        }
    }
    duplicate_ids(shared, inputs, true)?;
    let mut errors = Vec::new();
    let mut results = Vec::new();
    let mut st = lock(&shared.hubspot);
    for input in inputs {
        let id = id_of(input).unwrap_or_default();
        if !util::is_email(id.trim()) {
            errors.push(batch_error(
                "VALIDATION_ERROR",
                &format!("Email address {id} is invalid"),
                json!({"ids": [id]}),
                Some(json!([{"message": format!("Email address {id} is invalid"), "code": "INVALID_EMAIL", "context": {"propertyName": ["email"]}}])),
            ));
            continue;
        }
        let mut props = match input_props(input, &id) {
            Ok(p) => p,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match st.by_email(&id) {
            Some(n) => {
                if let Some(email) = props.get("email").filter(|e| !e.is_empty())
                    && let Some(existing) = st.by_email(email).filter(|&e| e != n)
                {
                    errors.push(batch_error(
                        "CONFLICT",
                        &format!("Contact already exists. Existing ID: {existing}"),
                        json!({"ids": [id]}),
                        None,
                    ));
                    continue;
                }
                if let Some(c) = st.update(n, props) {
                    let mut v = render(c, None);
                    v["new"] = json!(false);
                    results.push(v);
                }
            }
            None => {
                props
                    .entry("email".to_string())
                    .or_insert_with(|| id.trim().to_string());
                let mut v = render(st.create(props), None);
                v["new"] = json!(true);
                results.push(v);
            }
        }
    }
    Ok(BatchOut { results, errors })
}

fn batch_read(shared: &Shared, body: &Value, inputs: &[Value]) -> Result<BatchOut, Response> {
    let id_property = body.get("idProperty").and_then(Value::as_str);
    check_id_property(shared, id_property, false)?;
    let props: Vec<String> = body
        .get("properties")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .filter(|a| !a.is_empty())
        .unwrap_or_else(default_props);
    let st = lock(&shared.hubspot);
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for input in inputs {
        let id = id_of(input).unwrap_or_default();
        match st.resolve(&id, id_property) {
            Some(n) => results.push(render(&st.contacts[&n], Some(&props))),
            None => missing.push(id),
        }
    }
    let mut errors = Vec::new();
    if !missing.is_empty() {
        errors.push(batch_error(
            "OBJECT_NOT_FOUND",
            "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.",
            json!({"ids": missing}),
            None,
        ));
    }
    Ok(BatchOut { results, errors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_globs() {
        assert!(contains_token("Jane Doe", "doe"));
        assert!(contains_token("jane@example.com", "example"));
        assert!(contains_token("jane@example.com", "*@example.com"));
        assert!(contains_token("Jane Doe", "ja*"));
        assert!(!contains_token("Jane Doe", "do"));
    }

    #[test]
    fn property_validation() {
        let ok = validate_props(&json!({"email": "a@b.co", "firstname": 1, "lifecyclestage": "lead", "form_submitted_at": "1700000000000"})).unwrap();
        assert_eq!(ok["firstname"], "1");
        assert_eq!(ok["form_submitted_at"], "2023-11-14T22:13:20Z");
        let errs = validate_props(
            &json!({"email": "nope", "foo": "x", "lifecyclestage": "Lead", "hs_object_id": "1"}),
        )
        .unwrap_err();
        let codes: Vec<&str> = errs.iter().map(|e| e.code).collect();
        assert_eq!(
            codes,
            [
                "INVALID_EMAIL",
                "PROPERTY_DOESNT_EXIST",
                "INVALID_OPTION",
                "READ_ONLY_VALUE"
            ]
        );
    }
}
