//! Field discovery: what fields a target object has, normalized to one type model, cached in
//! a file next to the rules so `lint` can check mappings without network access.
//!
//! Providers describe fields differently (HubSpot properties, Salesforce describe); the shape
//! of each item tells which normalizer applies, so provider files only say where to fetch.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::types::Type;

/// A field type, normalized across providers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FieldType {
    String,
    Number,
    Bool,
    Date,
    Datetime,
    Email,
    Phone,
    Url,
    Enum {
        options: Vec<String>,
    },
    /// Anything else (objects, references, binary).
    Other {
        name: String,
    },
}

impl FieldType {
    /// The expression type a mapped value must have.
    pub fn value_type(&self) -> Type {
        match self {
            FieldType::Number => Type::Number,
            FieldType::Bool => Type::Bool,
            FieldType::Other { .. } => Type::Any,
            _ => Type::String,
        }
    }

    /// The name used in rule files (`email`, `enum`, ...).
    pub fn name(&self) -> &str {
        match self {
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Bool => "bool",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Enum { .. } => "enum",
            FieldType::Other { name } => name,
        }
    }
}

/// One discovered field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// A value must be given when creating a record.
    #[serde(default)]
    pub required: bool,
    /// The field cannot be written.
    #[serde(default)]
    pub read_only: bool,
}

/// Normalizes the items a provider's field listing returned.
pub fn normalize(items: &[Value]) -> Vec<FieldInfo> {
    let mut out: Vec<FieldInfo> = items.iter().filter_map(normalize_one).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

fn normalize_one(item: &Value) -> Option<FieldInfo> {
    let name = item.get("name")?.as_str()?.to_string();
    let label = item.get("label").and_then(Value::as_str).map(String::from);
    if item.get("fieldType").is_some() {
        return Some(hubspot(item, name, label));
    }
    if item.get("nillable").is_some() || item.get("createable").is_some() {
        return Some(salesforce(item, name, label));
    }
    // Generic: {name, type, required?, options?, read_only?}
    let options = options(item.get("options"));
    let ty = item.get("type").and_then(Value::as_str).unwrap_or("string");
    Some(FieldInfo {
        name,
        label,
        ty: generic_type(ty, options),
        required: item
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        read_only: item
            .get("read_only")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// HubSpot property: `type` ∈ string|number|date|datetime|enumeration|bool, `fieldType` the
/// widget (`text`, `phonenumber`, `booleancheckbox`, ...).
fn hubspot(item: &Value, name: String, label: Option<String>) -> FieldInfo {
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("string");
    let widget = item.get("fieldType").and_then(Value::as_str).unwrap_or("");
    let ty = match (kind, widget) {
        ("number", _) => FieldType::Number,
        ("bool", _) | (_, "booleancheckbox") => FieldType::Bool,
        ("date", _) => FieldType::Date,
        ("datetime", _) => FieldType::Datetime,
        ("enumeration", _) => FieldType::Enum {
            options: options(item.get("options")),
        },
        (_, "phonenumber") => FieldType::Phone,
        _ if name == "email" => FieldType::Email,
        _ => FieldType::String,
    };
    let read_only = item
        .pointer("/modificationMetadata/readOnlyValue")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    FieldInfo {
        name,
        label,
        ty,
        required: false,
        read_only,
    }
}

/// Salesforce describe field.
fn salesforce(item: &Value, name: String, label: Option<String>) -> FieldInfo {
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("string");
    let ty = match kind {
        "int" | "double" | "currency" | "percent" | "long" => FieldType::Number,
        "boolean" => FieldType::Bool,
        "date" => FieldType::Date,
        "datetime" => FieldType::Datetime,
        "email" => FieldType::Email,
        "phone" => FieldType::Phone,
        "url" => FieldType::Url,
        "picklist" | "multipicklist" => FieldType::Enum {
            options: item
                .get("picklistValues")
                .and_then(Value::as_array)
                .map(|vs| {
                    vs.iter()
                        .filter(|v| v.get("active").and_then(Value::as_bool).unwrap_or(true))
                        .filter_map(|v| v.get("value").and_then(Value::as_str).map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        },
        "string" | "textarea" | "id" | "reference" | "encryptedstring" | "combobox" => {
            FieldType::String
        }
        other => FieldType::Other {
            name: other.to_string(),
        },
    };
    let createable = item
        .get("createable")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let updateable = item
        .get("updateable")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let nillable = item
        .get("nillable")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let defaulted = item
        .get("defaultedOnCreate")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    FieldInfo {
        name,
        label,
        ty,
        // Required: must be given on create, cannot be null, and gets no default.
        required: createable && !nillable && !defaulted && kind != "boolean",
        read_only: !createable && !updateable,
    }
}

fn generic_type(ty: &str, options: Vec<String>) -> FieldType {
    match ty {
        "number" | "integer" | "int" | "float" | "double" => FieldType::Number,
        "bool" | "boolean" => FieldType::Bool,
        "date" => FieldType::Date,
        "datetime" => FieldType::Datetime,
        "email" => FieldType::Email,
        "phone" => FieldType::Phone,
        "url" => FieldType::Url,
        "enum" | "enumeration" | "select" | "picklist" => FieldType::Enum { options },
        "string" | "text" | "textarea" => FieldType::String,
        other => FieldType::Other {
            name: other.to_string(),
        },
    }
}

fn options(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|opts| {
            opts.iter()
                .filter_map(|o| match o {
                    Value::String(s) => Some(s.clone()),
                    o => o.get("value").and_then(Value::as_str).map(String::from),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The field items in a listing response: HubSpot's `results`, Salesforce's `fields`, a
/// `data` array, or the body itself when it is an array.
pub fn items(body: &Value) -> Vec<Value> {
    for key in ["results", "fields", "data", "properties"] {
        if let Some(Value::Array(items)) = body.get(key) {
            return items.clone();
        }
    }
    match body {
        Value::Array(items) => items.clone(),
        _ => Vec::new(),
    }
}

/// Fetches an object's fields through its provider's `fields` operation and normalizes them.
pub async fn discover(
    connector: &super::http::HttpConnector,
    object: &str,
) -> Result<Vec<FieldInfo>, super::ConnectError> {
    let body = connector
        .call(object, "fields", serde_json::Map::new())
        .await?;
    Ok(normalize(&items(&body)))
}

/// The cached field lists of a rules directory: `<rules>/.fields/<provider>.<object>.json`.
/// (The loader skips dot-directories, so the cache is never read as rules.)
#[derive(Clone, Debug, Default)]
pub struct FieldCache {
    dir: Option<PathBuf>,
}

impl FieldCache {
    /// The cache of the rules at `rules` (a directory, or a file whose directory is used).
    pub fn for_rules(rules: &Path) -> FieldCache {
        let dir = if rules.is_dir() {
            rules.to_path_buf()
        } else {
            rules.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        FieldCache {
            dir: Some(dir.join(".fields")),
        }
    }

    pub fn path(&self, provider: &str, object: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{provider}.{object}.json")))
    }

    /// The cached fields of an object, if discovered before.
    pub fn load(&self, provider: &str, object: &str) -> Option<Vec<FieldInfo>> {
        let text = std::fs::read_to_string(self.path(provider, object)?).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn store(
        &self,
        provider: &str,
        object: &str,
        fields: &[FieldInfo],
    ) -> std::io::Result<PathBuf> {
        let path = self
            .path(provider, object)
            .ok_or_else(|| std::io::Error::other("no rules directory for the field cache"))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = serde_json::to_string_pretty(fields).map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n")?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hubspot_properties() {
        let f = normalize(&[
            json!({"name": "email", "label": "Email", "type": "string", "fieldType": "text"}),
            json!({"name": "phone", "type": "string", "fieldType": "phonenumber"}),
            json!({"name": "lifecyclestage", "type": "enumeration", "fieldType": "radio",
                   "options": [{"label": "Lead", "value": "lead"}, {"label": "Customer", "value": "customer"}]}),
            json!({"name": "hs_object_id", "type": "number", "fieldType": "number",
                   "modificationMetadata": {"readOnlyValue": true}}),
        ]);
        let by: Vec<(&str, &str, bool)> = f
            .iter()
            .map(|f| (f.name.as_str(), f.ty.name(), f.read_only))
            .collect();
        assert_eq!(
            by,
            [
                ("email", "email", false),
                ("hs_object_id", "number", true),
                ("lifecyclestage", "enum", false),
                ("phone", "phone", false)
            ]
        );
        assert_eq!(
            f[2].ty,
            FieldType::Enum {
                options: vec!["lead".into(), "customer".into()]
            }
        );
    }

    #[test]
    fn salesforce_describe() {
        let f = normalize(&[
            json!({"name": "LastName", "type": "string", "nillable": false, "createable": true, "updateable": true}),
            json!({"name": "Email", "type": "email", "nillable": true, "createable": true, "updateable": true}),
            json!({"name": "Id", "type": "id", "nillable": false, "createable": false, "updateable": false, "defaultedOnCreate": true}),
            json!({"name": "Rating", "type": "picklist", "nillable": true, "createable": true, "updateable": true,
                   "picklistValues": [{"value": "Hot", "active": true}, {"value": "Old", "active": false}]}),
        ]);
        let last = f.iter().find(|f| f.name == "LastName").map(|f| f.required);
        assert_eq!(last, Some(true));
        assert!(
            f.iter()
                .any(|f| f.name == "Id" && f.read_only && !f.required)
        );
        assert!(f.iter().any(|f| f.name == "Rating"
            && f.ty
                == FieldType::Enum {
                    options: vec!["Hot".into()]
                }));
    }

    #[test]
    fn cache_round_trip() {
        let dir = tempfile::tempdir().map_err(|e| e.to_string());
        let Ok(dir) = dir else { return };
        let cache = FieldCache::for_rules(dir.path());
        let fields = normalize(&[json!({"name": "email", "type": "email", "required": true})]);
        assert!(cache.store("crm", "contact", &fields).is_ok());
        assert_eq!(cache.load("crm", "contact"), Some(fields));
    }
}
