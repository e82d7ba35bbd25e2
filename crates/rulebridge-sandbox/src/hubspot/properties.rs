//! Contact property definitions, the properties API, and validation of property values.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};
use http::StatusCode;
use serde_json::{Value, json};

use super::PORTAL_ID;
use super::errors::{PropError, bad_json, error, validation};
use super::state::Ctx;
use crate::util::{self, json as reply};

/// A default property of every portal.
pub(super) struct PropDef {
    pub(super) name: &'static str,
    pub(super) label: &'static str,
    pub(super) ty: &'static str,
    pub(super) field_type: &'static str,
    pub(super) group: &'static str,
    pub(super) options: &'static [(&'static str, &'static str)],
    pub(super) read_only: bool,
}

/// One property of the portal: a default one, or one created through the properties API.
#[derive(Clone, Debug)]
pub(super) struct Property {
    pub(super) name: String,
    pub(super) label: String,
    pub(super) ty: String,
    pub(super) field_type: String,
    pub(super) group: String,
    pub(super) description: String,
    /// `(value, label)`
    pub(super) options: Vec<(String, String)>,
    pub(super) read_only: bool,
    /// Created in this portal (HubSpot's are `hubspotDefined`).
    pub(super) custom: bool,
    /// When it was created; None for the defaults (the portal's creation, i.e. sandbox start).
    pub(super) created_at: Option<String>,
}

/// The portal's contact properties by name.
pub(super) type Properties = BTreeMap<String, Property>;

/// A fresh portal: HubSpot's default contact properties only (reference "More facts",
/// "HubSpot custom properties": a fresh portal has only HubSpot's default properties; custom
/// ones must be created before a record can carry them).
pub(super) fn default_properties() -> Properties {
    DEFAULTS
        .iter()
        .map(|d| {
            let p = Property {
                name: d.name.into(),
                label: d.label.into(),
                ty: d.ty.into(),
                field_type: d.field_type.into(),
                group: d.group.into(),
                description: String::new(),
                options: d
                    .options
                    .iter()
                    .map(|(v, l)| (v.to_string(), l.to_string()))
                    .collect(),
                read_only: d.read_only,
                custom: false,
                created_at: None,
            };
            (p.name.clone(), p)
        })
        .collect()
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

const EMPLOYEES: &[(&str, &str)] = &[
    ("1-5", "1-5"),
    ("5-25", "5-25"),
    ("25-50", "25-50"),
    ("50-100", "50-100"),
    ("100-500", "100-500"),
    ("500-1000", "500-1000"),
    ("1000+", "1000+"),
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
    }
}

/// HubSpot's default contact properties (reference: email, firstname, lastname, company,
/// phone, mobilephone, jobtitle, website, address, city, state, zip, country, industry,
/// lifecyclestage, hs_lead_status, numemployees, and the read-only record properties).
const DEFAULTS: &[PropDef] = &[
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
    prop("industry", "Industry", "string", "text"),
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
        options: LIFECYCLE,
        ..prop("lifecyclestage", "Lifecycle Stage", "enumeration", "radio")
    },
    prop(
        "mobilephone",
        "Mobile Phone Number",
        "string",
        "phonenumber",
    ),
    PropDef {
        options: EMPLOYEES,
        group: "companyinformation",
        ..prop(
            "numemployees",
            "Number of Employees",
            "enumeration",
            "select",
        )
    },
    prop("phone", "Phone Number", "string", "phonenumber"),
    prop("state", "State/Region", "string", "text"),
    prop("website", "Website URL", "string", "text"),
    prop("zip", "Postal Code", "string", "text"),
];

pub(super) fn render_prop(p: &Property, portal_created: &str) -> Value {
    let created = p.created_at.as_deref().unwrap_or(portal_created);
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
        "description": p.description,
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
pub(super) fn validate_props(
    input: &Value,
    defs: &Properties,
) -> Result<BTreeMap<String, String>, Vec<PropError>> {
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
        // Reference: a property the portal lacks is refused with PROPERTY_DOESNT_EXIST.
        let Some(def) = defs.get(name) else {
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
        match def.ty.as_str() {
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
                    let allowed: Vec<&str> = def.options.iter().map(|(o, _)| o.as_str()).collect();
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
    let results: Vec<Value> = shared
        .data()
        .properties
        .values()
        .map(|p| render_prop(p, &created))
        .collect();
    reply(StatusCode::OK, json!({ "results": results }))
}

pub(super) async fn get_property(State(shared): State<Ctx>, Path(name): Path<String>) -> Response {
    let found = shared.data().properties.get(&name).cloned();
    match found {
        Some(p) => reply(
            StatusCode::OK,
            render_prop(&p, &util::iso_ms(shared.started_at)),
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

/// The type/fieldType pairs a property may have (reference "HubSpot custom properties").
const TYPE_PAIRS: &[(&str, &[&str])] = &[
    ("string", &["text", "textarea", "phonenumber"]),
    ("number", &["number"]),
    ("date", &["date"]),
    ("datetime", &["date"]),
    ("enumeration", &["select", "radio", "checkbox"]),
    ("bool", &["booleancheckbox"]),
];

/// `POST /crm/v3/properties/contacts` `{name, label, type, fieldType, groupName, options?,
/// description?}` → 201 with the property; an existing name → 409 (reference "HubSpot custom
/// properties").
pub(super) async fn create_property(State(shared): State<Ctx>, body: Bytes) -> Response {
    let body = match util::parse_json(&body) {
        Ok(v) => v,
        Err(e) => return bad_json(&shared, &e),
    };
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let missing: Vec<&str> = ["name", "label", "type", "fieldType", "groupName"]
        .into_iter()
        .filter(|k| text(k).is_none())
        .collect();
    if !missing.is_empty() {
        return validation(
            &shared,
            &format!("Missing required fields: {}", missing.join(", ")),
        );
    }
    let (name, ty, field_type) = (
        text("name").unwrap_or_default(),
        text("type").unwrap_or_default(),
        text("fieldType").unwrap_or_default(),
    );
    let Some((_, field_types)) = TYPE_PAIRS.iter().find(|(t, _)| *t == ty) else {
        let types: Vec<&str> = TYPE_PAIRS.iter().map(|(t, _)| *t).collect();
        return validation(
            &shared,
            &format!(
                "{ty} is not a valid property type: one of [{}]",
                types.join(", ")
            ),
        );
    };
    if !field_types.contains(&field_type) {
        return validation(
            &shared,
            &format!(
                "fieldType {field_type} is not valid for type {ty}: one of [{}]",
                field_types.join(", ")
            ),
        );
    }
    let mut options = Vec::new();
    if let Some(list) = body.get("options").filter(|o| !o.is_null()) {
        let Some(list) = list.as_array() else {
            return validation(&shared, "options must be an array");
        };
        for o in list {
            let value = o.get("value").and_then(util::to_plain_string);
            let label = o.get("label").and_then(util::to_plain_string);
            match (value, label) {
                (Some(v), Some(l)) => options.push((v, l)),
                _ => return validation(&shared, "every option needs a label and a value"),
            }
        }
    }
    if ty == "bool" && options.is_empty() {
        options = vec![("true".into(), "Yes".into()), ("false".into(), "No".into())];
    }
    let property = Property {
        name: name.to_string(),
        label: text("label").unwrap_or_default().to_string(),
        ty: ty.to_string(),
        field_type: field_type.to_string(),
        group: text("groupName").unwrap_or_default().to_string(),
        description: text("description").unwrap_or_default().to_string(),
        options,
        read_only: false,
        custom: true,
        created_at: Some(util::iso_ms(Utc::now())),
    };
    let mut st = shared.data();
    if st.properties.contains_key(name) {
        drop(st);
        return error(
            &shared,
            StatusCode::CONFLICT,
            "OBJECT_ALREADY_EXISTS",
            &format!("A property named '{name}' already exists."),
            json!({}),
        );
    }
    st.properties
        .insert(property.name.clone(), property.clone());
    drop(st);
    reply(
        StatusCode::CREATED,
        render_prop(&property, &util::iso_ms(shared.started_at)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_validation() {
        let mut defs = default_properties();
        assert!(!defs.contains_key("form_submitted_at"), "a custom property");
        let custom = Property {
            name: "form_submitted_at".into(),
            ty: "datetime".into(),
            custom: true,
            ..defs["createdate"].clone()
        };
        defs.insert(
            custom.name.clone(),
            Property {
                read_only: false,
                ..custom
            },
        );
        let ok = validate_props(&json!({"email": "a@b.co", "firstname": 1, "lifecyclestage": "lead", "form_submitted_at": "1700000000000"}), &defs).unwrap();
        assert_eq!(ok["firstname"], "1");
        assert_eq!(ok["form_submitted_at"], "2023-11-14T22:13:20Z");
        let errs = validate_props(
            &json!({"email": "nope", "foo": "x", "lifecyclestage": "Lead", "hs_object_id": "1"}),
            &defs,
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
