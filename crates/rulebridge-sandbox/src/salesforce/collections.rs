//! sObject Collections: `POST|PATCH /composite/sobjects`, at most 200 records, `allOrNone`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::COLLECTION_LIMIT;
use super::errors::{RecError, err};
use super::ids::key15;
use super::schema::{SObject, sobject};
use super::state::Ctx;
use super::validation::{allow_save, parse_body, validate};
use crate::util::json as reply;

pub(super) fn collection_input(body: &Value) -> Result<(bool, Vec<Value>), Response> {
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

pub(super) fn record_type(r: &Value) -> Result<&'static SObject, RecError> {
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
pub(super) type Staged = Result<(&'static SObject, BTreeMap<&'static str, Value>), Vec<RecError>>;

pub(super) const ROLLED_BACK: &str = "Record rolled back because not all records were valid and the request was using AllOrNone header";

pub(super) async fn collection_create(
    State(shared): State<Ctx>,
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
    let mut st = shared.data();
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
            st.remove(obj, id);
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

pub(super) async fn collection_update(
    State(shared): State<Ctx>,
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
    let mut st = shared.data();
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
