//! `POST /crm/v3/objects/contacts/batch/{create|update|upsert|read|archive}`.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::Utc;
use http::StatusCode;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use super::contacts::{NEEDS_IDENTITY, identifies, properties_of, reply_empty};
use super::errors::{
    PropError, bad_json, conflict, invalid_properties, invalid_properties_parts, not_found,
    validation,
};
use super::properties::{Properties, validate_props};
use super::state::{Ctx, default_props, iso, render};
use super::{BATCH_LIMIT, PORTAL_ID};
use crate::store::Shared;
use crate::util::{self, json as reply};

pub(super) struct BatchOut {
    pub(super) results: Vec<Value>,
    pub(super) errors: Vec<Value>,
}

/// A batch input's validated properties, or the per-input error that refuses them.
pub(super) fn input_props(
    input: &Value,
    id: &str,
    defs: &Properties,
) -> Result<BTreeMap<String, String>, Value> {
    let ids = json!({ "ids": [id] });
    match properties_of(input).map(|p| validate_props(p, defs)) {
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

/// A property the portal lacks refuses the whole batch (reference "HubSpot custom
/// properties": `PROPERTY_DOESNT_EXIST`, in a batch for the whole request).
fn refuse_unknown_properties(shared: &Ctx, inputs: &[Value]) -> Result<(), Response> {
    let unknown: Vec<PropError> = {
        let st = shared.data();
        inputs
            .iter()
            .filter_map(|i| i.get("properties").and_then(Value::as_object))
            .flat_map(|p| p.keys())
            .filter(|name| !st.properties.contains_key(*name))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|name| PropError {
                name: name.clone(),
                code: "PROPERTY_DOESNT_EXIST",
                message: format!("Property \"{name}\" does not exist"),
            })
            .collect()
    };
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(invalid_properties(shared, &unknown))
    }
}

pub(super) fn batch_error(
    category: &str,
    message: &str,
    context: Value,
    errors: Option<Value>,
) -> Value {
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

pub(super) async fn batch(
    State(shared): State<Ctx>,
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
            let mut st = shared.data();
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
pub(super) fn batch_create(shared: &Ctx, inputs: &[Value]) -> Result<BatchOut, Response> {
    let defs = shared.data().properties.clone();
    let mut all = Vec::new();
    let mut errs = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let props = match properties_of(input) {
            Ok(p) => p,
            Err(m) => return Err(validation(shared, &format!("inputs[{i}]: {m}"))),
        };
        match validate_props(props, &defs) {
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
    let mut st = shared.data();
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

pub(super) fn id_of(input: &Value) -> Option<String> {
    input
        .get("id")
        .and_then(util::to_plain_string)
        .filter(|s| !s.is_empty())
}

pub(super) fn check_id_property(
    shared: &Shared,
    p: Option<&str>,
    upsert: bool,
) -> Result<(), Response> {
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

pub(super) fn duplicate_ids(
    shared: &Shared,
    inputs: &[Value],
    fold_case: bool,
) -> Result<(), Response> {
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

pub(super) fn batch_update(shared: &Ctx, inputs: &[Value]) -> Result<BatchOut, Response> {
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
    refuse_unknown_properties(shared, inputs)?;
    let mut st = shared.data();
    for input in inputs {
        let id = id_of(input).unwrap_or_default();
        let id_property = input.get("idProperty").and_then(Value::as_str);
        let props = match input_props(input, &id, &st.properties) {
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

pub(super) fn batch_upsert(shared: &Ctx, inputs: &[Value]) -> Result<BatchOut, Response> {
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
    refuse_unknown_properties(shared, inputs)?;
    let mut errors = Vec::new();
    let mut results = Vec::new();
    let mut st = shared.data();
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
        let mut props = match input_props(input, &id, &st.properties) {
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

pub(super) fn batch_read(
    shared: &Ctx,
    body: &Value,
    inputs: &[Value],
) -> Result<BatchOut, Response> {
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
    let st = shared.data();
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
