//! Single-record endpoints: create, read, update, delete, upsert by external id.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};

use super::errors::{RecError, err, err_nofields, not_found};
use super::ids::key15;
use super::schema::object_or_404;
use super::state::{Ctx, record_url, render};
use super::validation::{allow_save, parse_body, validate};
use crate::util::{json as reply, query_get, query_pairs};

pub(super) async fn create(
    State(shared): State<Ctx>,
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
    let mut st = shared.data();
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

pub(super) fn rest_errors(errs: &[RecError], version: &str) -> Response {
    reply(
        StatusCode::BAD_REQUEST,
        Value::Array(errs.iter().map(|e| e.rest_json(version)).collect()),
    )
}

pub(super) async fn get_record(
    State(shared): State<Ctx>,
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
    let st = shared.data();
    match st.get(obj, &id) {
        Some(r) => reply(
            StatusCode::OK,
            render(obj, r, (!only.is_empty()).then_some(&only[..]), &v),
        ),
        None => not_found(),
    }
}

pub(super) async fn update(
    State(shared): State<Ctx>,
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
    let mut st = shared.data();
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

pub(super) fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(axum::body::Body::empty());
    *r.status_mut() = status;
    r
}

pub(super) async fn delete(
    State(shared): State<Ctx>,
    Path((_v, obj, id)): Path<(String, String, String)>,
) -> Response {
    let obj = match object_or_404(&obj) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let mut st = shared.data();
    let removed = st.remove(obj, &id);
    match removed {
        Some(_) => empty(StatusCode::NO_CONTENT),
        None => not_found(),
    }
}

pub(super) async fn upsert(
    State(shared): State<Ctx>,
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
    let mut st = shared.data();
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
