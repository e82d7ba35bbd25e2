//! Checks a record's fields as the org would: types, lengths, picklists, required fields, duplicates.

use std::collections::BTreeMap;

use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::errors::{RecError, err_nofields};
use super::ids::key15;
use super::schema::{Kind, SObject};
use super::state::{Data, Record};
use crate::SalesforceDuplicates;
use crate::util;

/// Checks a create or update payload and returns the canonical field values.
pub(super) fn validate(
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

pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(super) fn allow_save(headers: &HeaderMap) -> bool {
    util::header_str(headers, "sforce-duplicate-rule-header").is_some_and(|h| {
        h.replace(' ', "")
            .to_ascii_lowercase()
            .contains("allowsave=true")
    })
}

pub(super) fn parse_body(body: &[u8]) -> Result<Value, Response> {
    util::parse_json(body)
        .map_err(|e| err_nofields(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", &e))
}
