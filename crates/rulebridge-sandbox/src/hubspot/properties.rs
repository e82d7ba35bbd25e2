//! Contact property definitions, the properties API, and validation of property values.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};
use http::StatusCode;
use serde_json::{Value, json};

use super::PORTAL_ID;
use super::errors::{PropError, error};
use super::state::Ctx;
use crate::util::{self, json as reply};

pub(super) struct PropDef {
    pub(super) name: &'static str,
    pub(super) label: &'static str,
    pub(super) ty: &'static str,
    pub(super) field_type: &'static str,
    pub(super) group: &'static str,
    pub(super) options: &'static [(&'static str, &'static str)],
    pub(super) read_only: bool,
    pub(super) custom: bool,
}

pub(super) const LIFECYCLE: &[(&str, &str)] = &[
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
];

pub(super) const LEAD_STATUS: &[(&str, &str)] = &[
    ("NEW", "New"),
    ("OPEN", "Open"),
    ("IN_PROGRESS", "In Progress"),
    ("OPEN_DEAL", "Open Deal"),
    ("UNQUALIFIED", "Unqualified"),
    ("ATTEMPTED_TO_CONTACT", "Attempted to Contact"),
    ("CONNECTED", "Connected"),
    ("BAD_TIMING", "Bad Timing"),
];

pub(super) const fn prop(
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

pub(super) const PROPERTIES: &[PropDef] = &[
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

pub(super) fn prop_def(name: &str) -> Option<&'static PropDef> {
    PROPERTIES.iter().find(|p| p.name == name)
}

pub(super) fn render_prop(p: &PropDef, created: &str) -> Value {
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

/// Checks and normalizes `{name: value}` into stored strings ("" clears a property).
pub(super) fn validate_props(input: &Value) -> Result<BTreeMap<String, String>, Vec<PropError>> {
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
pub(super) fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
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

pub(super) async fn list_properties(State(shared): State<Ctx>) -> Response {
    let created = util::iso_ms(shared.started_at);
    let results: Vec<Value> = PROPERTIES
        .iter()
        .map(|p| render_prop(p, &created))
        .collect();
    reply(StatusCode::OK, json!({ "results": results }))
}

pub(super) async fn get_property(State(shared): State<Ctx>, Path(name): Path<String>) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

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
