//! `/api/v1/computers-inventory` and `/api/v1/computers-inventory-detail/{id}`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::departments::page_params;
use super::errors::api_error;
use super::rsql::{invalid_filter_field, parse_rsql};
use super::state::{ALL_SECTIONS, Computer, Ctx, LOCATION_FIELDS, render};
use crate::util::{self, json as reply, query_get, query_pairs};

pub(super) const FILTER_FIELDS: &[&str] = &[
    "id",
    "udid",
    "general.name",
    "general.platform",
    "hardware.serialNumber",
    "userAndLocation.username",
    "userAndLocation.email",
    "userAndLocation.realname",
];

pub(super) fn field_of(c: &Computer, f: &str) -> Option<String> {
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

pub(super) fn sections(pairs: &[(String, String)]) -> Result<Vec<&'static str>, Response> {
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

pub(super) async fn inventory(State(shared): State<Ctx>, RawQuery(q): RawQuery) -> Response {
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
    let st = shared.data();
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

pub(super) fn computer_404(id: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "INVALID_ID",
        Some("id"),
        &format!("Computer with id {id} does not exist"),
    )
}

pub(super) async fn inventory_one(
    State(shared): State<Ctx>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let pairs = query_pairs(q.as_deref());
    let secs = match sections(&pairs) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let st = shared.data();
    match id.parse::<u64>().ok().and_then(|n| st.computers.get(&n)) {
        Some(c) => reply(StatusCode::OK, render(c, &secs)),
        None => computer_404(&id),
    }
}

pub(super) async fn detail(State(shared): State<Ctx>, Path(id): Path<String>) -> Response {
    let st = shared.data();
    match id.parse::<u64>().ok().and_then(|n| st.computers.get(&n)) {
        Some(c) => reply(StatusCode::OK, render(c, &ALL_SECTIONS)),
        None => computer_404(&id),
    }
}

pub(super) async fn patch_detail(
    State(shared): State<Ctx>,
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
    let mut st = shared.data();
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
