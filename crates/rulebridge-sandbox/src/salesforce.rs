//! Salesforce REST (`/services/data/vXX.X`): Lead and Contact sObjects, describe, a SOQL
//! subset, sObject Collections, upsert by external id, and the OAuth refresh-token flow.
//!
//! Sessions come only from `POST /services/oauth2/token`; every data response carries
//! `Sforce-Limit-Info: api-usage=N/LIMIT`, counted over a rolling 24 h.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};

use super::SalesforceDuplicates;
use super::faults::{self, ProviderCtx, RateLimited};
use super::ratelimit::{Rolling, Verdict};
use super::store::{Shared, TokenCheck, lock};
use super::util::{self, bearer, form_or_json, json as reply, query_get, query_pairs};

pub const CLIENT_ID: &str = "sandbox-salesforce-client";
pub const CLIENT_SECRET: &str = "sandbox-salesforce-secret";
pub const REFRESH_TOKEN: &str = "sandbox-salesforce-refresh";
const ORG_ID: &str = "00D5g00000SBX01EAA";
const USER_ID: &str = "0055g00000SBX01AAA";
const COLLECTION_LIMIT: usize = 200;
const QUERY_BATCH: usize = 2000;

// ---------------------------------------------------------------------------------------------
// schema

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Id,
    Str,
    Email,
    Phone,
    Url,
    TextArea,
    Picklist { restricted: bool },
    Bool,
    DateTime,
    Reference,
}

struct Field {
    name: &'static str,
    label: &'static str,
    kind: Kind,
    length: usize,
    /// Must have a value (createable fields only; a default may fill it).
    required: bool,
    createable: bool,
    updateable: bool,
    unique: bool,
    external_id: bool,
    custom: bool,
    picklist: &'static [&'static str],
    default: Option<&'static str>,
}

const fn f(name: &'static str, label: &'static str, kind: Kind, length: usize) -> Field {
    Field {
        name,
        label,
        kind,
        length,
        required: false,
        createable: true,
        updateable: true,
        unique: false,
        external_id: false,
        custom: false,
        picklist: &[],
        default: None,
    }
}

const fn system(name: &'static str, label: &'static str, kind: Kind, length: usize) -> Field {
    Field {
        createable: false,
        updateable: false,
        ..f(name, label, kind, length)
    }
}

const LEAD_SOURCE: &[&str] = &[
    "Web",
    "Phone Inquiry",
    "Partner Referral",
    "Purchased List",
    "Other",
];
const LEAD_STATUS: &[&str] = &[
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
];
const RATING: &[&str] = &["Hot", "Warm", "Cold"];

const LEAD_FIELDS: &[Field] = &[
    system("Id", "Lead ID", Kind::Id, 18),
    system("IsDeleted", "Deleted", Kind::Bool, 0),
    Field {
        required: true,
        ..f("LastName", "Last Name", Kind::Str, 80)
    },
    f("FirstName", "First Name", Kind::Str, 40),
    system("Name", "Full Name", Kind::Str, 121),
    f("Title", "Title", Kind::Str, 128),
    Field {
        required: true,
        ..f("Company", "Company", Kind::Str, 255)
    },
    f("City", "City", Kind::Str, 40),
    f("State", "State/Province", Kind::Str, 80),
    f("PostalCode", "Zip/Postal Code", Kind::Str, 20),
    f("Country", "Country", Kind::Str, 80),
    f("Phone", "Phone", Kind::Phone, 40),
    f("MobilePhone", "Mobile Phone", Kind::Phone, 40),
    f("Email", "Email", Kind::Email, 80),
    f("Website", "Website", Kind::Url, 255),
    f("Description", "Description", Kind::TextArea, 32000),
    Field {
        picklist: LEAD_SOURCE,
        ..f(
            "LeadSource",
            "Lead Source",
            Kind::Picklist { restricted: false },
            255,
        )
    },
    Field {
        picklist: LEAD_STATUS,
        required: true,
        default: Some("Open - Not Contacted"),
        ..f("Status", "Status", Kind::Picklist { restricted: true }, 255)
    },
    Field {
        picklist: RATING,
        ..f(
            "Rating",
            "Rating",
            Kind::Picklist { restricted: false },
            255,
        )
    },
    Field {
        updateable: true,
        createable: true,
        ..f("OwnerId", "Owner ID", Kind::Reference, 18)
    },
    system("CreatedDate", "Created Date", Kind::DateTime, 0),
    system("LastModifiedDate", "Last Modified Date", Kind::DateTime, 0),
    Field {
        unique: true,
        external_id: true,
        custom: true,
        ..f("External_Id__c", "External Id", Kind::Str, 255)
    },
];

const CONTACT_FIELDS: &[Field] = &[
    system("Id", "Contact ID", Kind::Id, 18),
    system("IsDeleted", "Deleted", Kind::Bool, 0),
    f("AccountId", "Account ID", Kind::Reference, 18),
    Field {
        required: true,
        ..f("LastName", "Last Name", Kind::Str, 80)
    },
    f("FirstName", "First Name", Kind::Str, 40),
    system("Name", "Full Name", Kind::Str, 121),
    f("Title", "Title", Kind::Str, 128),
    f("Department", "Department", Kind::Str, 80),
    f("MailingCity", "Mailing City", Kind::Str, 40),
    f("MailingCountry", "Mailing Country", Kind::Str, 80),
    f("Phone", "Business Phone", Kind::Phone, 40),
    f("MobilePhone", "Mobile Phone", Kind::Phone, 40),
    f("Email", "Email", Kind::Email, 80),
    f("Description", "Contact Description", Kind::TextArea, 32000),
    Field {
        picklist: LEAD_SOURCE,
        ..f(
            "LeadSource",
            "Lead Source",
            Kind::Picklist { restricted: false },
            255,
        )
    },
    f("OwnerId", "Owner ID", Kind::Reference, 18),
    system("CreatedDate", "Created Date", Kind::DateTime, 0),
    system("LastModifiedDate", "Last Modified Date", Kind::DateTime, 0),
    Field {
        unique: true,
        external_id: true,
        custom: true,
        ..f("External_Id__c", "External Id", Kind::Str, 255)
    },
];

struct SObject {
    name: &'static str,
    label: &'static str,
    prefix: &'static str,
    fields: &'static [Field],
}

const OBJECTS: &[SObject] = &[
    SObject {
        name: "Lead",
        label: "Lead",
        prefix: "00Q",
        fields: LEAD_FIELDS,
    },
    SObject {
        name: "Contact",
        label: "Contact",
        prefix: "003",
        fields: CONTACT_FIELDS,
    },
];

/// sObject and field names are case-insensitive in the API.
fn sobject(name: &str) -> Option<&'static SObject> {
    OBJECTS.iter().find(|o| o.name.eq_ignore_ascii_case(name))
}

impl SObject {
    fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

// ---------------------------------------------------------------------------------------------
// ids

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 18-character id: the 15-character one plus its case-folding checksum.
fn id18(id15: &str) -> String {
    const SUFFIX: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let bytes = id15.as_bytes();
    let mut out = id15.to_string();
    for chunk in bytes.chunks(5).take(3) {
        let mut flags = 0usize;
        for (j, b) in chunk.iter().enumerate() {
            if b.is_ascii_uppercase() {
                flags |= 1 << j;
            }
        }
        out.push(SUFFIX[flags] as char);
    }
    out
}

/// The 15-character key of a 15- or 18-character id whose checksum is right.
fn key15(id: &str) -> Option<String> {
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match id.len() {
        15 => Some(id.to_string()),
        18 => (id18(&id[..15]) == id).then(|| id[..15].to_string()),
        _ => None,
    }
}

fn make_id15(prefix: &str, n: u64) -> String {
    let mut digits = Vec::new();
    let mut n = n;
    for _ in 0..6 {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    digits.reverse();
    format!(
        "{prefix}8d0000{}",
        String::from_utf8(digits).unwrap_or_default()
    )
}

fn sf_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

// ---------------------------------------------------------------------------------------------
// state

#[derive(Clone, Debug)]
struct Record {
    id: String,
    fields: BTreeMap<&'static str, Value>,
}

pub(crate) struct Data {
    next: u64,
    /// By object name, then 15-character id.
    records: BTreeMap<&'static str, BTreeMap<String, Record>>,
    usage: Rolling,
}

impl Data {
    pub fn new() -> Data {
        Data {
            next: 1,
            records: BTreeMap::new(),
            usage: Rolling::new(Duration::from_secs(24 * 3600)),
        }
    }

    pub fn records(&self) -> BTreeMap<String, Vec<Value>> {
        let mut out = BTreeMap::new();
        for o in OBJECTS {
            out.insert(
                o.name.to_string(),
                self.records
                    .get(o.name)
                    .map(|m| m.values().map(|r| render(o, r, None, "v58.0")).collect())
                    .unwrap_or_default(),
            );
        }
        out
    }

    fn get(&self, obj: &SObject, id: &str) -> Option<&Record> {
        self.records.get(obj.name)?.get(&key15(id)?)
    }

    fn find_unique(
        &self,
        obj: &SObject,
        field: &str,
        value: &str,
        except: Option<&str>,
    ) -> Option<String> {
        self.records.get(obj.name)?.values().find_map(|r| {
            let hit = r
                .fields
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(value));
            (hit && except != Some(r.id.as_str())).then(|| r.id.clone())
        })
    }

    fn insert(&mut self, obj: &SObject, mut fields: BTreeMap<&'static str, Value>) -> String {
        let id15 = make_id15(obj.prefix, self.next);
        self.next += 1;
        let id = id18(&id15);
        let now = sf_time(Utc::now());
        fields.insert("Id", json!(id));
        fields.insert("IsDeleted", json!(false));
        fields.insert("CreatedDate", json!(now));
        fields.insert("LastModifiedDate", json!(now));
        fields.entry("OwnerId").or_insert(json!(USER_ID));
        for fd in obj.fields {
            if let Some(d) = fd.default {
                fields.entry(fd.name).or_insert(json!(d));
            }
        }
        set_name(&mut fields);
        self.records.entry(obj.name).or_default().insert(
            id15,
            Record {
                id: id.clone(),
                fields,
            },
        );
        id
    }

    fn update(&mut self, obj: &SObject, id: &str, changes: BTreeMap<&'static str, Value>) -> bool {
        let Some(r) = key15(id).and_then(|k| self.records.get_mut(obj.name)?.get_mut(&k)) else {
            return false;
        };
        for (k, v) in changes {
            r.fields.insert(k, v);
        }
        r.fields
            .insert("LastModifiedDate", json!(sf_time(Utc::now())));
        set_name(&mut r.fields);
        true
    }
}

fn set_name(fields: &mut BTreeMap<&'static str, Value>) {
    let part = |k: &str| {
        fields
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let name = format!("{} {}", part("FirstName"), part("LastName"))
        .trim()
        .to_string();
    fields.insert("Name", json!(name));
}

fn record_url(obj: &SObject, id: &str, version: &str) -> String {
    format!("/services/data/{version}/sobjects/{}/{id}", obj.name)
}

fn render(obj: &SObject, r: &Record, only: Option<&[&'static str]>, version: &str) -> Value {
    let mut m = Map::new();
    m.insert(
        "attributes".into(),
        json!({"type": obj.name, "url": record_url(obj, &r.id, version)}),
    );
    let names: Vec<&'static str> = match only {
        Some(list) => list.to_vec(),
        None => obj.fields.iter().map(|f| f.name).collect(),
    };
    for n in names {
        m.insert(
            n.to_string(),
            r.fields.get(n).cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(m)
}

// ---------------------------------------------------------------------------------------------
// errors

fn err(status: StatusCode, code: &str, message: &str, fields: &[&str]) -> Response {
    reply(
        status,
        json!([{"message": message, "errorCode": code, "fields": fields}]),
    )
}

fn err_nofields(status: StatusCode, code: &str, message: &str) -> Response {
    reply(status, json!([{"message": message, "errorCode": code}]))
}

pub(crate) fn internal_error(shared: &Shared) -> Response {
    let n = shared.random_u64();
    err_nofields(
        StatusCode::INTERNAL_SERVER_ERROR,
        "UNKNOWN_EXCEPTION",
        &format!(
            "An unexpected error occurred. Please include this ErrorId if you contact support: {}-{} ({})",
            n % 10_000_000_000,
            (n >> 40) % 100_000,
            -((n % 1_000_000_000) as i64)
        ),
    )
}

fn not_found() -> Response {
    err_nofields(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
    )
}

/// One record-level error, as in sObject Collections results.
#[derive(Clone, Debug)]
struct RecError {
    code: String,
    message: String,
    fields: Vec<String>,
    /// For DUPLICATES_DETECTED: the matching record.
    duplicate_of: Option<(String, &'static str)>,
}

impl RecError {
    fn new(code: &str, message: impl Into<String>, fields: &[&str]) -> RecError {
        RecError {
            code: code.into(),
            message: message.into(),
            fields: fields.iter().map(|s| s.to_string()).collect(),
            duplicate_of: None,
        }
    }

    /// The body of a single-record REST error.
    fn rest_json(&self, version: &str) -> Value {
        let mut e = json!({"message": self.message, "errorCode": self.code, "fields": self.fields});
        if let Some((id, obj)) = &self.duplicate_of {
            e = json!({
                "duplicateResult": duplicate_result(id, obj, version),
                "errorCode": self.code,
                "message": self.message,
            });
        }
        e
    }

    fn item_json(&self, version: &str) -> Value {
        let mut e =
            json!({"statusCode": self.code, "message": self.message, "fields": self.fields});
        if let Some((id, obj)) = &self.duplicate_of {
            e["duplicateResult"] = duplicate_result(id, obj, version);
        }
        e
    }
}

fn duplicate_result(id: &str, obj: &str, version: &str) -> Value {
    json!({
        "allowSave": true,
        "duplicateRule": format!("Standard_{obj}_Duplicate_Rule"),
        "duplicateRuleEntityType": obj,
        "errorMessage": "You're creating a duplicate record. We recommend you use an existing record instead.",
        "matchResults": [{
            "entityType": obj,
            "errors": [],
            "matchEngine": "FuzzyMatchEngine",
            "matchRecords": [{
                "additionalInformation": [],
                "fieldDiffs": [],
                "matchConfidence": 100.0,
                "record": {
                    "attributes": {"type": obj, "url": format!("/services/data/{version}/sobjects/{obj}/{id}")},
                    "Id": id,
                },
            }],
            "rule": format!("Standard_{obj}_Match_Rule_v1_0"),
            "size": 1,
            "success": true,
        }],
    })
}

// ---------------------------------------------------------------------------------------------
// validation

/// Checks a create or update payload and returns the canonical field values.
fn validate(
    st: &Data,
    cfg_dups: SalesforceDuplicates,
    allow_save: bool,
    obj: &'static SObject,
    body: &Value,
    existing: Option<&Record>,
) -> Result<BTreeMap<&'static str, Value>, Vec<RecError>> {
    let Some(input) = body.as_object() else {
        return Err(vec![RecError::new(
            "JSON_PARSER_ERROR",
            format!(
                "Cannot deserialize instance of {} from {} value",
                obj.name.to_lowercase(),
                kind_of(body)
            ),
            &[],
        )]);
    };
    let mut out = BTreeMap::new();
    let mut read_only = Vec::new();
    for (k, v) in input {
        if k == "attributes" {
            continue;
        }
        let Some(fd) = obj.field(k) else {
            return Err(vec![RecError::new(
                "INVALID_FIELD",
                format!("No such column '{k}' on sobject of type {}", obj.name),
                &[],
            )]);
        };
        if fd.name == "Id" && existing.is_none() {
            return Err(vec![RecError::new(
                "INVALID_FIELD",
                "cannot specify Id in an insert call",
                &[],
            )]);
        }
        if fd.name == "Id" {
            continue;
        }
        let writable = if existing.is_some() {
            fd.updateable
        } else {
            fd.createable
        };
        if !writable {
            read_only.push(fd.name);
            continue;
        }
        out.insert(fd.name, v.clone());
    }
    if !read_only.is_empty() {
        return Err(vec![RecError::new(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            format!(
                "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                read_only.join(", ")
            ),
            &read_only,
        )]);
    }
    let mut errors = Vec::new();
    for (name, v) in out.iter_mut() {
        let fd = obj.field(name).unwrap_or(&obj.fields[0]);
        if v.is_null() {
            continue;
        }
        match fd.kind {
            Kind::Bool => {
                if !v.is_boolean() {
                    return Err(vec![RecError::new(
                        "JSON_PARSER_ERROR",
                        format!(
                            "Cannot deserialize instance of boolean from {} value {v}",
                            kind_of(v)
                        ),
                        &[],
                    )]);
                }
                continue;
            }
            _ => {
                if v.is_object() || v.is_array() {
                    return Err(vec![RecError::new(
                        "JSON_PARSER_ERROR",
                        format!(
                            "Cannot deserialize instance of string from {} value",
                            kind_of(v)
                        ),
                        &[],
                    )]);
                }
                *v = json!(util::to_plain_string(v).unwrap_or_default());
            }
        }
        let s = v.as_str().unwrap_or("").to_string();
        if s.is_empty() {
            *v = Value::Null;
            continue;
        }
        if s.chars().count() > fd.length && fd.length > 0 {
            errors.push(RecError::new(
                "STRING_TOO_LONG",
                format!(
                    "{}: data value too large: {} (max length={})",
                    fd.label, s, fd.length
                ),
                &[fd.name],
            ));
            continue;
        }
        match fd.kind {
            Kind::Email if !util::is_email(&s) => errors.push(RecError::new(
                "INVALID_EMAIL_ADDRESS",
                format!("{}: invalid email address: {s}", fd.label),
                &[fd.name],
            )),
            Kind::Picklist { restricted: true } if !fd.picklist.contains(&s.as_str()) => errors
                .push(RecError::new(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!("{}: bad value for restricted picklist field: {s}", fd.label),
                    &[fd.name],
                )),
            Kind::Reference if key15(&s).is_none() => errors.push(RecError::new(
                "MALFORMED_ID",
                format!("{}: id value of incorrect type: {s}", fd.label),
                &[fd.name],
            )),
            _ => {}
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Required fields: on create those without a default must be given; an update may not
    // blank them.
    let missing: Vec<&str> = obj
        .fields
        .iter()
        .filter(|fd| fd.required && fd.createable)
        .filter(|fd| match (out.get(fd.name), existing) {
            (Some(v), _) => v.is_null() || v.as_str() == Some(""),
            (None, None) => fd.default.is_none(),
            (None, Some(_)) => false,
        })
        .map(|fd| fd.name)
        .collect();
    if !missing.is_empty() {
        return Err(vec![RecError::new(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", missing.join(", ")),
            &missing,
        )]);
    }
    // Uniqueness.
    let except = existing.map(|r| r.id.as_str());
    for fd in obj.fields.iter().filter(|fd| fd.unique) {
        if let Some(v) = out.get(fd.name).and_then(Value::as_str)
            && let Some(other) = st.find_unique(obj, fd.name, v, except)
        {
            return Err(vec![RecError::new(
                "DUPLICATE_VALUE",
                format!(
                    "duplicate value found: {} duplicates value on record with id: {other}",
                    fd.name
                ),
                &[fd.name],
            )]);
        }
    }
    if let Some(email) = out.get("Email").and_then(Value::as_str) {
        match cfg_dups {
            SalesforceDuplicates::UniqueEmail => {
                if let Some(other) = st.find_unique(obj, "Email", email, except) {
                    return Err(vec![RecError::new(
                        "DUPLICATE_VALUE",
                        format!(
                            "duplicate value found: Email duplicates value on record with id: {other}"
                        ),
                        &["Email"],
                    )]);
                }
            }
            SalesforceDuplicates::DuplicateRule if !allow_save => {
                if let Some(other) = st.find_unique(obj, "Email", email, except) {
                    let mut e =
                        RecError::new("DUPLICATES_DETECTED", "Use one of these records?", &[]);
                    e.duplicate_of = Some((other, obj.name));
                    return Err(vec![e]);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn allow_save(headers: &HeaderMap) -> bool {
    util::header_str(headers, "sforce-duplicate-rule-header").is_some_and(|h| {
        h.replace(' ', "")
            .to_ascii_lowercase()
            .contains("allowsave=true")
    })
}

fn parse_body(body: &[u8]) -> Result<Value, Response> {
    util::parse_json(body)
        .map_err(|e| err_nofields(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", &e))
}

// ---------------------------------------------------------------------------------------------
// router

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let data = Router::new()
        .route("/services/data/{v}/limits", get(limits))
        .route("/services/data/{v}/sobjects/{obj}/describe", get(describe))
        .route("/services/data/{v}/sobjects/{obj}", post(create))
        .route(
            "/services/data/{v}/sobjects/{obj}/{id}",
            get(get_record).patch(update).delete(delete),
        )
        .route(
            "/services/data/{v}/sobjects/{obj}/{field}/{value}",
            axum::routing::patch(upsert),
        )
        .route("/services/data/{v}/query", get(query))
        .route(
            "/services/data/{v}/composite/sobjects",
            post(collection_create).patch(collection_update),
        )
        .fallback(data_fallback)
        .layer(middleware::from_fn_with_state(shared.clone(), gate));
    let ctx = ProviderCtx {
        shared: shared.clone(),
        name: "salesforce",
        internal_error,
    };
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/data", get(versions))
        .merge(data)
        .fallback(|| async { not_found() })
        .with_state(shared)
        .layer(middleware::from_fn_with_state(ctx, faults::observe))
}

async fn data_fallback() -> Response {
    not_found()
}

async fn versions() -> Response {
    reply(
        StatusCode::OK,
        json!([{"label": "Summer '23", "url": "/services/data/v58.0", "version": "58.0"}]),
    )
}

/// Session check and API usage accounting for every data call.
async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let limit = shared.limit(shared.cfg.salesforce_api_limit);
    let valid = match bearer(req.headers()) {
        Some(t) => matches!(
            lock(&shared.tokens).check("salesforce", &t),
            TokenCheck::Valid(_)
        ),
        None => false,
    };
    if !valid {
        let mut r = err_nofields(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        );
        r.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Token"));
        return r;
    }
    let verdict = lock(&shared.salesforce).usage.check("org", limit);
    let mut resp = match verdict {
        Verdict::Allowed { .. } => next.run(req).await,
        Verdict::Limited { .. } => {
            let mut r = err_nofields(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            );
            r.extensions_mut().insert(RateLimited);
            r
        }
    };
    let used = match verdict {
        Verdict::Allowed { remaining } => limit - remaining,
        Verdict::Limited { .. } => limit,
    };
    if let Ok(v) = HeaderValue::from_str(&format!("api-usage={used}/{limit}")) {
        resp.headers_mut().insert("sforce-limit-info", v);
    }
    resp
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let f = form_or_json(&headers, &body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let oauth_err = |error: &str, desc: &str| {
        reply(
            StatusCode::BAD_REQUEST,
            json!({"error": error, "error_description": desc}),
        )
    };
    if get("grant_type") != "refresh_token" {
        return oauth_err("unsupported_grant_type", "grant type not supported");
    }
    if get("client_id") != CLIENT_ID {
        return oauth_err("invalid_client_id", "client identifier invalid");
    }
    if get("client_secret") != CLIENT_SECRET {
        return oauth_err("invalid_client", "invalid client credentials");
    }
    if get("refresh_token") != REFRESH_TOKEN {
        return oauth_err("invalid_grant", "expired access/refresh token");
    }
    let access = format!(
        "{}!{}",
        &ORG_ID[..15],
        shared.random_string(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._",
            96
        )
    );
    lock(&shared.tokens).issue("salesforce", &access, CLIENT_ID, shared.cfg.token_ttl);
    use base64::Engine;
    let sig_bytes: Vec<u8> = shared.random_u64().to_be_bytes().repeat(4);
    reply(
        StatusCode::OK,
        json!({
            "access_token": access,
            "signature": base64::engine::general_purpose::STANDARD.encode(sig_bytes),
            "scope": "api refresh_token",
            "instance_url": format!("http://{}/salesforce", shared.addr),
            "id": format!("https://login.salesforce.com/id/{ORG_ID}/{USER_ID}"),
            "token_type": "Bearer",
            "issued_at": Utc::now().timestamp_millis().to_string(),
        }),
    )
}

async fn limits(State(shared): State<Arc<Shared>>) -> Response {
    let limit = shared.limit(shared.cfg.salesforce_api_limit);
    let used = lock(&shared.salesforce).usage.used("org");
    reply(
        StatusCode::OK,
        json!({"DailyApiRequests": {"Max": limit, "Remaining": limit.saturating_sub(used)}}),
    )
}

fn object_or_404(name: &str) -> Result<&'static SObject, Response> {
    sobject(name).ok_or_else(not_found)
}

async fn describe(Path((v, obj)): Path<(String, String)>) -> Response {
    let obj = match object_or_404(&obj) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let fields: Vec<Value> = obj
        .fields
        .iter()
        .map(|fd| {
            let (ty, soap) = match fd.kind {
                Kind::Id => ("id", "tns:ID"),
                Kind::Str => ("string", "xsd:string"),
                Kind::Email => ("email", "xsd:string"),
                Kind::Phone => ("phone", "xsd:string"),
                Kind::Url => ("url", "xsd:string"),
                Kind::TextArea => ("textarea", "xsd:string"),
                Kind::Picklist { .. } => ("picklist", "xsd:string"),
                Kind::Bool => ("boolean", "xsd:boolean"),
                Kind::DateTime => ("datetime", "xsd:dateTime"),
                Kind::Reference => ("reference", "tns:ID"),
            };
            let picklist: Vec<Value> = fd
                .picklist
                .iter()
                .map(|p| {
                    json!({"active": true, "defaultValue": fd.default == Some(*p), "label": p, "validFor": null, "value": p})
                })
                .collect();
            json!({
                "name": fd.name,
                "label": fd.label,
                "type": ty,
                "soapType": soap,
                "length": fd.length,
                "nillable": !fd.required && fd.kind != Kind::Bool && fd.kind != Kind::Id,
                "createable": fd.createable,
                "updateable": fd.updateable,
                "unique": fd.unique,
                "externalId": fd.external_id,
                "idLookup": fd.external_id || fd.kind == Kind::Id || fd.name == "Email",
                "custom": fd.custom,
                "calculated": false,
                "defaultedOnCreate": fd.default.is_some() || matches!(fd.name, "OwnerId" | "CreatedDate" | "LastModifiedDate" | "IsDeleted" | "Id"),
                "restrictedPicklist": matches!(fd.kind, Kind::Picklist { restricted: true }),
                "picklistValues": picklist,
                "referenceTo": if fd.kind == Kind::Reference { json!([if fd.name == "AccountId" { "Account" } else { "User" }]) } else { json!([]) },
            })
        })
        .collect();
    reply(
        StatusCode::OK,
        json!({
            "name": obj.name,
            "label": obj.label,
            "keyPrefix": obj.prefix,
            "createable": true,
            "updateable": true,
            "deletable": true,
            "queryable": true,
            "custom": false,
            "fields": fields,
            "urls": {
                "sobject": format!("/services/data/{v}/sobjects/{}", obj.name),
                "describe": format!("/services/data/{v}/sobjects/{}/describe", obj.name),
                "rowTemplate": format!("/services/data/{v}/sobjects/{}/{{ID}}", obj.name),
            },
        }),
    )
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path((v, obj)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let obj = match object_or_404(&obj) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut st = lock(&shared.salesforce);
    match validate(
        &st,
        shared.cfg.salesforce_duplicates,
        allow_save(&headers),
        obj,
        &body,
        None,
    ) {
        Ok(fields) => {
            let id = st.insert(obj, fields);
            let mut r = reply(
                StatusCode::CREATED,
                json!({"id": id, "success": true, "errors": []}),
            );
            if let Ok(loc) = HeaderValue::from_str(&record_url(obj, &id, &v)) {
                r.headers_mut().insert(http::header::LOCATION, loc);
            }
            r
        }
        Err(errs) => rest_errors(&errs, &v),
    }
}

fn rest_errors(errs: &[RecError], version: &str) -> Response {
    reply(
        StatusCode::BAD_REQUEST,
        Value::Array(errs.iter().map(|e| e.rest_json(version)).collect()),
    )
}

async fn get_record(
    State(shared): State<Arc<Shared>>,
    Path((v, obj, id)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let obj = match object_or_404(&obj) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let pairs = query_pairs(q.as_deref());
    let mut only = Vec::new();
    if let Some(list) = query_get(&pairs, "fields") {
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match obj.field(name) {
                Some(fd) => only.push(fd.name),
                None => {
                    return err(
                        StatusCode::BAD_REQUEST,
                        "INVALID_FIELD",
                        &format!("No such column '{name}' on sobject of type {}", obj.name),
                        &[],
                    );
                }
            }
        }
    }
    let st = lock(&shared.salesforce);
    match st.get(obj, &id) {
        Some(r) => reply(
            StatusCode::OK,
            render(obj, r, (!only.is_empty()).then_some(&only[..]), &v),
        ),
        None => not_found(),
    }
}

async fn update(
    State(shared): State<Arc<Shared>>,
    Path((v, obj, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let obj = match object_or_404(&obj) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut st = lock(&shared.salesforce);
    let Some(existing) = st.get(obj, &id).cloned() else {
        return not_found();
    };
    match validate(
        &st,
        shared.cfg.salesforce_duplicates,
        allow_save(&headers),
        obj,
        &body,
        Some(&existing),
    ) {
        Ok(fields) => {
            st.update(obj, &id, fields);
            empty(StatusCode::NO_CONTENT)
        }
        Err(errs) => rest_errors(&errs, &v),
    }
}

fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(axum::body::Body::empty());
    *r.status_mut() = status;
    r
}

async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((_v, obj, id)): Path<(String, String, String)>,
) -> Response {
    let obj = match object_or_404(&obj) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let mut st = lock(&shared.salesforce);
    let removed = key15(&id).and_then(|k| st.records.get_mut(obj.name)?.remove(&k));
    match removed {
        Some(_) => empty(StatusCode::NO_CONTENT),
        None => not_found(),
    }
}

async fn upsert(
    State(shared): State<Arc<Shared>>,
    Path((v, obj, field, value)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let obj = match object_or_404(&obj) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(fd) = obj
        .field(&field)
        .filter(|fd| fd.external_id || fd.name == "Id")
    else {
        return err_nofields(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {field}"),
        );
    };
    let mut body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(m) = body.as_object_mut() {
        if m.keys().any(|k| k.eq_ignore_ascii_case(fd.name)) {
            return err(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                &format!(
                    "The field {} is the external ID field used in the URL and cannot be set in the request body",
                    fd.name
                ),
                &[fd.name],
            );
        }
        if fd.name != "Id" {
            m.insert(fd.name.to_string(), json!(value));
        }
    }
    let mut st = lock(&shared.salesforce);
    let matches: Vec<String> = st
        .records
        .get(obj.name)
        .map(|m| {
            m.values()
                .filter(|r| {
                    if fd.name == "Id" {
                        key15(&value).is_some_and(|k| r.id.starts_with(&k))
                    } else {
                        r.fields
                            .get(fd.name)
                            .and_then(Value::as_str)
                            .is_some_and(|x| x.eq_ignore_ascii_case(&value))
                    }
                })
                .map(|r| r.id.clone())
                .collect()
        })
        .unwrap_or_default();
    let dups = shared.cfg.salesforce_duplicates;
    let save = allow_save(&headers);
    match matches.as_slice() {
        [] => match validate(&st, dups, save, obj, &body, None) {
            Ok(fields) => {
                let id = st.insert(obj, fields);
                reply(
                    StatusCode::CREATED,
                    json!({"id": id, "success": true, "errors": [], "created": true}),
                )
            }
            Err(errs) => rest_errors(&errs, &v),
        },
        [id] => {
            let existing = st.get(obj, id).cloned();
            match validate(&st, dups, save, obj, &body, existing.as_ref()) {
                Ok(fields) => {
                    st.update(obj, id, fields);
                    reply(
                        StatusCode::OK,
                        json!({"id": id, "success": true, "errors": [], "created": false}),
                    )
                }
                Err(errs) => rest_errors(&errs, &v),
            }
        }
        many => reply(
            StatusCode::MULTIPLE_CHOICES,
            Value::Array(
                many.iter()
                    .map(|id| json!(record_url(obj, id, &v)))
                    .collect(),
            ),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// sObject Collections

fn collection_input(body: &Value) -> Result<(bool, Vec<Value>), Response> {
    let all_or_none = body
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let records = match body.get("records") {
        Some(Value::Array(r)) => r.clone(),
        _ => {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                "records: the request must include a records array",
                &[],
            ));
        }
    };
    if records.len() > COLLECTION_LIMIT {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            &format!(
                "record limit reached. cannot submit more than {COLLECTION_LIMIT} records into this call"
            ),
            &[],
        ));
    }
    Ok((all_or_none, records))
}

fn record_type(r: &Value) -> Result<&'static SObject, RecError> {
    let t = r
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
        .ok_or_else(|| RecError::new("INVALID_TYPE", "Must specify a type in attributes", &[]))?;
    sobject(t).ok_or_else(|| {
        RecError::new(
            "INVALID_TYPE",
            format!("sObject type '{t}' is not supported."),
            &[],
        )
    })
}

/// A record of a collection update, checked but not applied yet.
type Staged = Result<(&'static SObject, BTreeMap<&'static str, Value>), Vec<RecError>>;

const ROLLED_BACK: &str = "Record rolled back because not all records were valid and the request was using AllOrNone header";

async fn collection_create(
    State(shared): State<Arc<Shared>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (all_or_none, records) = match collection_input(&body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let save = allow_save(&headers);
    let mut st = lock(&shared.salesforce);
    let before_next = st.next;
    let mut created: Vec<(&'static SObject, String)> = Vec::new();
    let mut results: Vec<Result<String, Vec<RecError>>> = Vec::new();
    for r in &records {
        let outcome = record_type(r).map_err(|e| vec![e]).and_then(|obj| {
            validate(&st, shared.cfg.salesforce_duplicates, save, obj, r, None)
                .map(|fields| (obj, fields))
        });
        match outcome {
            Ok((obj, fields)) => {
                let id = st.insert(obj, fields);
                created.push((obj, id.clone()));
                results.push(Ok(id));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    let failed = results.iter().any(Result::is_err);
    if all_or_none && failed {
        for (obj, id) in &created {
            if let Some(k) = key15(id)
                && let Some(m) = st.records.get_mut(obj.name)
            {
                m.remove(&k);
            }
        }
        st.next = before_next.max(st.next);
    }
    let out: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            Ok(_) if all_or_none && failed => json!({
                "success": false,
                "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": ROLLED_BACK, "fields": []}],
            }),
            Ok(id) => json!({"id": id, "success": true, "errors": []}),
            Err(errs) => json!({
                "success": false,
                "errors": errs.iter().map(|e| e.item_json(&v)).collect::<Vec<_>>(),
            }),
        })
        .collect();
    reply(StatusCode::OK, Value::Array(out))
}

async fn collection_update(
    State(shared): State<Arc<Shared>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (all_or_none, records) = match collection_input(&body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let save = allow_save(&headers);
    let mut st = lock(&shared.salesforce);
    let mut staged: Vec<(String, Staged)> = Vec::new();
    for r in &records {
        let id = r
            .as_object()
            .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case("id")))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("")
            .to_string();
        let outcome = record_type(r).map_err(|e| vec![e]).and_then(|obj| {
            let existing = st.get(obj, &id).cloned().ok_or_else(|| {
                vec![RecError::new(
                    if key15(&id).is_some() {
                        "INVALID_CROSS_REFERENCE_KEY"
                    } else {
                        "MALFORMED_ID"
                    },
                    if key15(&id).is_some() {
                        "invalid cross reference id".to_string()
                    } else {
                        format!("Id: id value of incorrect type: {id}")
                    },
                    &[],
                )]
            })?;
            validate(
                &st,
                shared.cfg.salesforce_duplicates,
                save,
                obj,
                r,
                Some(&existing),
            )
            .map(|f| (obj, f))
        });
        staged.push((id, outcome));
    }
    let failed = staged.iter().any(|(_, r)| r.is_err());
    let apply = !(all_or_none && failed);
    let mut out = Vec::new();
    for (id, outcome) in staged {
        out.push(match outcome {
            Ok((obj, fields)) if apply => {
                st.update(obj, &id, fields);
                json!({"id": id, "success": true, "errors": []})
            }
            Ok(_) => json!({
                "id": id,
                "success": false,
                "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": ROLLED_BACK, "fields": []}],
            }),
            Err(errs) => json!({
                "id": id,
                "success": false,
                "errors": errs.iter().map(|e| e.item_json(&v)).collect::<Vec<_>>(),
            }),
        });
    }
    reply(StatusCode::OK, Value::Array(out))
}

// ---------------------------------------------------------------------------------------------
// SOQL subset

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Comma,
    LParen,
    RParen,
    Op(&'static str),
}

#[derive(Clone, Debug)]
struct Lexed {
    tok: Tok,
    /// 1-based column.
    col: usize,
}

fn lex(q: &str) -> Result<Vec<Lexed>, String> {
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == ',' {
            out.push(Lexed {
                tok: Tok::Comma,
                col,
            });
            i += 1;
        } else if c == '(' {
            out.push(Lexed {
                tok: Tok::LParen,
                col,
            });
            i += 1;
        } else if c == ')' {
            out.push(Lexed {
                tok: Tok::RParen,
                col,
            });
            i += 1;
        } else if c == '=' {
            out.push(Lexed {
                tok: Tok::Op("="),
                col,
            });
            i += 1;
        } else if (c == '!' && chars.get(i + 1) == Some(&'='))
            || (c == '<' && chars.get(i + 1) == Some(&'>'))
        {
            out.push(Lexed {
                tok: Tok::Op("!="),
                col,
            });
            i += 2;
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(format!(
                            "line 1:{col} mismatched character '<EOF>' expecting '''"
                        ));
                    }
                    Some('\\') => {
                        let e = chars.get(i + 1).copied().unwrap_or('\\');
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Lexed {
                tok: Tok::Str(s),
                col,
            });
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push(Lexed {
                tok: Tok::Num(chars[start..i].iter().collect()),
                col,
            });
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push(Lexed {
                tok: Tok::Ident(chars[start..i].iter().collect()),
                col,
            });
        } else {
            return Err(format!(
                "line 1:{col} no viable alternative at character '{c}'"
            ));
        }
    }
    Ok(out)
}

#[derive(Debug)]
enum Cond {
    Eq(&'static str, Option<String>, bool),
    In(&'static str, Vec<String>, bool),
    Like(&'static str, String),
}

struct Soql {
    obj: &'static SObject,
    fields: Vec<&'static str>,
    conds: Vec<Cond>,
    any: bool,
    order: Option<(&'static str, bool)>,
    limit: Option<usize>,
    offset: usize,
}

enum SoqlError {
    Malformed(String),
    InvalidField(String),
    InvalidType(String),
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
}

fn parse_soql(q: &str) -> Result<Soql, SoqlError> {
    let toks = lex(q).map_err(SoqlError::Malformed)?;
    let mut p = 0;
    let at = |p: usize| toks.get(p).map(|l| &l.tok);
    let unexpected = |p: usize| {
        let what = match toks.get(p) {
            Some(Lexed {
                tok: Tok::Ident(s), ..
            })
            | Some(Lexed {
                tok: Tok::Str(s), ..
            })
            | Some(Lexed {
                tok: Tok::Num(s), ..
            }) => s.clone(),
            Some(Lexed {
                tok: Tok::Comma, ..
            }) => ",".into(),
            Some(Lexed {
                tok: Tok::LParen, ..
            }) => "(".into(),
            Some(Lexed {
                tok: Tok::RParen, ..
            }) => ")".into(),
            Some(Lexed {
                tok: Tok::Op(o), ..
            }) => o.to_string(),
            None => "<EOF>".into(),
        };
        let col = toks.get(p).map(|l| l.col).unwrap_or(q.len() + 1);
        SoqlError::Malformed(format!(
            "\n{q}\n{}^\nERROR at Row:1:Column:{col}\nunexpected token: {what}",
            " ".repeat(col.saturating_sub(1))
        ))
    };
    if !at(p).is_some_and(|t| is_kw(t, "SELECT")) {
        return Err(unexpected(p));
    }
    p += 1;
    let mut names: Vec<(String, usize)> = Vec::new();
    loop {
        match toks.get(p) {
            Some(Lexed {
                tok: Tok::Ident(s),
                col,
            }) if !s.eq_ignore_ascii_case("FROM") => {
                names.push((s.clone(), *col));
                p += 1;
            }
            _ => return Err(unexpected(p)),
        }
        if at(p) == Some(&Tok::Comma) {
            p += 1;
            continue;
        }
        break;
    }
    if !at(p).is_some_and(|t| is_kw(t, "FROM")) {
        return Err(unexpected(p));
    }
    p += 1;
    let (obj_name, obj_col) = match toks.get(p) {
        Some(Lexed {
            tok: Tok::Ident(s),
            col,
        }) => (s.clone(), *col),
        _ => return Err(unexpected(p)),
    };
    p += 1;
    let _ = obj_col;
    let obj = sobject(&obj_name).ok_or_else(|| {
        SoqlError::InvalidType(format!(
            "\n{q}\n{}^\nERROR at Row:1:Column:{obj_col}\nsObject type '{obj_name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
            " ".repeat(obj_col.saturating_sub(1))
        ))
    })?;
    let field = |name: &str, col: usize| -> Result<&'static str, SoqlError> {
        obj.field(name).map(|f| f.name).ok_or_else(|| {
            SoqlError::InvalidField(format!(
                "\n{q}\n{}^\nERROR at Row:1:Column:{col}\nNo such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                " ".repeat(col.saturating_sub(1)),
                obj.name
            ))
        })
    };
    let mut fields = Vec::new();
    for (n, col) in &names {
        let f = field(n, *col)?;
        if !fields.contains(&f) {
            fields.push(f);
        }
    }
    let mut conds = Vec::new();
    let mut joiner: Option<&str> = None;
    if at(p).is_some_and(|t| is_kw(t, "WHERE")) {
        p += 1;
        loop {
            let (fname, col) = match toks.get(p) {
                Some(Lexed {
                    tok: Tok::Ident(s),
                    col,
                }) => (s.clone(), *col),
                _ => return Err(unexpected(p)),
            };
            let f = field(&fname, col)?;
            p += 1;
            let literal = |p: usize| -> Option<Option<String>> {
                match at(p) {
                    Some(Tok::Str(s)) | Some(Tok::Num(s)) => Some(Some(s.clone())),
                    Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("null") => Some(None),
                    Some(Tok::Ident(s))
                        if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
                    {
                        Some(Some(s.to_lowercase()))
                    }
                    _ => None,
                }
            };
            match at(p) {
                Some(Tok::Op(op)) => {
                    let neg = *op == "!=";
                    p += 1;
                    let Some(v) = literal(p) else {
                        return Err(unexpected(p));
                    };
                    p += 1;
                    conds.push(Cond::Eq(f, v, neg));
                }
                Some(t) if is_kw(t, "LIKE") => {
                    p += 1;
                    let Some(Tok::Str(s)) = at(p) else {
                        return Err(unexpected(p));
                    };
                    conds.push(Cond::Like(f, s.clone()));
                    p += 1;
                }
                Some(t) if is_kw(t, "IN") || is_kw(t, "NOT") => {
                    let neg = is_kw(t, "NOT");
                    p += 1;
                    if neg {
                        if !at(p).is_some_and(|t| is_kw(t, "IN")) {
                            return Err(unexpected(p));
                        }
                        p += 1;
                    }
                    if at(p) != Some(&Tok::LParen) {
                        return Err(unexpected(p));
                    }
                    p += 1;
                    let mut values = Vec::new();
                    loop {
                        let Some(Some(v)) = literal(p) else {
                            return Err(unexpected(p));
                        };
                        values.push(v);
                        p += 1;
                        match at(p) {
                            Some(Tok::Comma) => p += 1,
                            Some(Tok::RParen) => {
                                p += 1;
                                break;
                            }
                            _ => return Err(unexpected(p)),
                        }
                    }
                    conds.push(Cond::In(f, values, neg));
                }
                _ => return Err(unexpected(p)),
            }
            match at(p) {
                Some(t) if is_kw(t, "AND") || is_kw(t, "OR") => {
                    let j = if is_kw(t, "AND") { "AND" } else { "OR" };
                    // SOQL wants parentheses when AND and OR are mixed.
                    if joiner.is_some_and(|prev| prev != j) {
                        return Err(unexpected(p));
                    }
                    joiner = Some(j);
                    p += 1;
                }
                _ => break,
            }
        }
    }
    let mut order = None;
    if at(p).is_some_and(|t| is_kw(t, "ORDER")) {
        p += 1;
        if !at(p).is_some_and(|t| is_kw(t, "BY")) {
            return Err(unexpected(p));
        }
        p += 1;
        let (fname, col) = match toks.get(p) {
            Some(Lexed {
                tok: Tok::Ident(s),
                col,
            }) => (s.clone(), *col),
            _ => return Err(unexpected(p)),
        };
        let f = field(&fname, col)?;
        p += 1;
        let mut desc = false;
        if at(p).is_some_and(|t| is_kw(t, "ASC")) {
            p += 1;
        } else if at(p).is_some_and(|t| is_kw(t, "DESC")) {
            desc = true;
            p += 1;
        }
        order = Some((f, desc));
    }
    let mut limit = None;
    let mut offset = 0;
    for kw in ["LIMIT", "OFFSET"] {
        if at(p).is_some_and(|t| is_kw(t, kw)) {
            p += 1;
            let Some(Tok::Num(n)) = at(p) else {
                return Err(unexpected(p));
            };
            let n: usize = n.parse().map_err(|_| unexpected(p))?;
            if kw == "LIMIT" {
                limit = Some(n);
            } else {
                offset = n;
            }
            p += 1;
        }
    }
    if p < toks.len() {
        return Err(unexpected(p));
    }
    Ok(Soql {
        obj,
        fields,
        conds,
        any: joiner == Some("OR"),
        order,
        limit,
        offset,
    })
}

fn like(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('_') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

fn value_text(v: Option<&Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(v) => util::to_plain_string(v),
    }
}

fn cond_holds(r: &Record, c: &Cond) -> bool {
    match c {
        Cond::Eq(f, v, neg) => {
            let stored = value_text(r.fields.get(f));
            let same = match (&stored, v) {
                (None, None) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            };
            same != *neg
        }
        Cond::In(f, values, neg) => {
            let stored = value_text(r.fields.get(f));
            let hit = stored.is_some_and(|s| values.iter().any(|v| v.eq_ignore_ascii_case(&s)));
            hit != *neg
        }
        Cond::Like(f, pat) => value_text(r.fields.get(f)).is_some_and(|s| like(pat, &s)),
    }
}

async fn query(
    State(shared): State<Arc<Shared>>,
    Path(v): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let pairs = query_pairs(q.as_deref());
    let Some(soql) = query_get(&pairs, "q") else {
        return err_nofields(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "A query string has to be specified",
        );
    };
    let parsed = match parse_soql(soql) {
        Ok(p) => p,
        Err(SoqlError::Malformed(m)) => {
            return err_nofields(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", &m);
        }
        Err(SoqlError::InvalidField(m)) => {
            return err_nofields(StatusCode::BAD_REQUEST, "INVALID_FIELD", &m);
        }
        Err(SoqlError::InvalidType(m)) => {
            return err_nofields(StatusCode::BAD_REQUEST, "INVALID_TYPE", &m);
        }
    };
    let st = lock(&shared.salesforce);
    let mut hits: Vec<&Record> = st
        .records
        .get(parsed.obj.name)
        .map(|m| {
            m.values()
                .filter(|r| {
                    parsed.conds.is_empty()
                        || if parsed.any {
                            parsed.conds.iter().any(|c| cond_holds(r, c))
                        } else {
                            parsed.conds.iter().all(|c| cond_holds(r, c))
                        }
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some((f, desc)) = parsed.order {
        hits.sort_by(|a, b| {
            let x = value_text(a.fields.get(f)).map(|s| s.to_lowercase());
            let y = value_text(b.fields.get(f)).map(|s| s.to_lowercase());
            // Nulls first when ascending, last when descending (SOQL's defaults).
            let o = x.cmp(&y);
            if desc { o.reverse() } else { o }
        });
    }
    let total: Vec<&Record> = hits
        .into_iter()
        .skip(parsed.offset)
        .take(parsed.limit.unwrap_or(usize::MAX))
        .collect();
    let records: Vec<Value> = total
        .iter()
        .take(QUERY_BATCH)
        .map(|r| render(parsed.obj, r, Some(&parsed.fields), &v))
        .collect();
    reply(
        StatusCode::OK,
        json!({"totalSize": total.len(), "done": total.len() <= QUERY_BATCH, "records": records}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_checksum() {
        // A well-known pair.
        assert_eq!(id18("001A0000006Vm9r"), "001A0000006Vm9rIAC");
        let id = id18(&make_id15("00Q", 1));
        assert_eq!(id.len(), 18);
        assert!(id.starts_with("00Q"));
        assert_eq!(key15(&id).as_deref(), Some(&id[..15]));
        assert_eq!(key15("00Q8d0000000001XXX"), None);
    }

    #[test]
    fn soql_subset() {
        let q = parse_soql("SELECT Id, Email, LastModifiedDate FROM Lead WHERE Email = 'a@b.co' AND Company != null LIMIT 5").ok().unwrap();
        assert_eq!(q.fields, ["Id", "Email", "LastModifiedDate"]);
        assert_eq!(q.conds.len(), 2);
        assert_eq!(q.limit, Some(5));
        let q = parse_soql("select id from lead where email in ('x', 'y') or lastname like 'Sm%'")
            .ok()
            .unwrap();
        assert!(q.any);
        assert!(matches!(
            parse_soql("SELECT Id FROM Lead WHERE Email = 'o'brien@x.com'"),
            Err(SoqlError::Malformed(_))
        ));
        assert!(matches!(
            parse_soql("SELECT Nope FROM Lead"),
            Err(SoqlError::InvalidField(_))
        ));
        assert!(matches!(
            parse_soql("SELECT Id FROM Nope"),
            Err(SoqlError::InvalidType(_))
        ));
        assert!(parse_soql("SELECT Id FROM Lead WHERE A = '1' AND B = '2' OR C = '3'").is_err());
        let q = parse_soql("SELECT Id FROM Lead WHERE Email = 'o\\'brien@x.com'")
            .ok()
            .unwrap();
        assert!(matches!(&q.conds[0], Cond::Eq(_, Some(v), false) if v == "o'brien@x.com"));
        assert!(like("Sm%", "smith") && like("_a%", "jane") && !like("a%", "ba"));
    }
}
