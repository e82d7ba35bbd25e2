//! Single-object endpoints: create, list, read, update, archive.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use chrono::Utc;
use http::StatusCode;
use serde_json::{Value, json};

use super::errors::{bad_json, conflict, invalid_properties, not_found, validation};
use super::properties::validate_props;
use super::state::{Contact, Ctx, default_props, render};
use crate::util::{self, json as reply, query_get, query_pairs};

/// `properties=a,b` or `properties=a&properties=b`.
pub(super) fn requested_props(pairs: &[(String, String)]) -> Option<Vec<String>> {
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
pub(super) fn identifies(props: &BTreeMap<String, String>) -> bool {
    ["email", "firstname", "lastname"]
        .iter()
        .any(|k| props.get(*k).is_some_and(|v| !v.is_empty()))
}

pub(super) const NEEDS_IDENTITY: &str = "At least one of the following properties is required to create a contact: email, firstname, lastname";

pub(super) fn properties_of(body: &Value) -> Result<&Value, &'static str> {
    match body.get("properties") {
        Some(p @ Value::Object(_)) => Ok(p),
        Some(Value::Null) | None => Err("properties is required"),
        Some(_) => Err("properties must be an object"),
    }
}

pub(super) async fn create_contact(State(shared): State<Ctx>, body: Bytes) -> Response {
    let body = match util::parse_json(&body) {
        Ok(v) => v,
        Err(e) => return bad_json(&shared, &e),
    };
    let props = match properties_of(&body) {
        Ok(p) => p,
        Err(m) => return validation(&shared, m),
    };
    let defs = shared.data().properties.clone();
    let props = match validate_props(props, &defs) {
        Ok(p) => p,
        Err(errs) => return invalid_properties(&shared, &errs),
    };
    if !identifies(&props) {
        return validation(&shared, NEEDS_IDENTITY);
    }
    let mut st = shared.data();
    if let Some(email) = props.get("email").filter(|e| !e.is_empty())
        && let Some(existing) = st.by_email(email)
    {
        drop(st);
        return conflict(&shared, existing);
    }
    let c = st.create(props);
    reply(StatusCode::CREATED, render(c, None))
}

pub(super) async fn list_contacts(State(shared): State<Ctx>, RawQuery(q): RawQuery) -> Response {
    let pairs = query_pairs(q.as_deref());
    let limit = query_get(&pairs, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let after = query_get(&pairs, "after")
        .and_then(|a| a.parse::<u64>().ok())
        .unwrap_or(0);
    let props = requested_props(&pairs).unwrap_or_else(default_props);
    let st = shared.data();
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

pub(super) async fn get_contact(
    State(shared): State<Ctx>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let pairs = query_pairs(q.as_deref());
    let id_property = query_get(&pairs, "idProperty");
    let archived = query_get(&pairs, "archived") == Some("true");
    let props = requested_props(&pairs).unwrap_or_else(default_props);
    let st = shared.data();
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

pub(super) async fn patch_contact(
    State(shared): State<Ctx>,
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
    let defs = shared.data().properties.clone();
    let props = match validate_props(props, &defs) {
        Ok(p) => p,
        Err(errs) => return invalid_properties(&shared, &errs),
    };
    let mut st = shared.data();
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

pub(super) async fn delete_contact(State(shared): State<Ctx>, Path(id): Path<String>) -> Response {
    let mut st = shared.data();
    if let Some(mut c) = id.parse::<u64>().ok().and_then(|n| st.contacts.remove(&n)) {
        c.archived_at = Some(Utc::now());
        st.archived.insert(c.id, c);
    }
    // HubSpot answers 204 whether or not the record existed.
    reply_empty(StatusCode::NO_CONTENT)
}

pub(super) fn reply_empty(status: StatusCode) -> Response {
    let mut r = Response::new(axum::body::Body::empty());
    *r.status_mut() = status;
    r
}
