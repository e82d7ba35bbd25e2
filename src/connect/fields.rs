//! Field discovery: what fields a target object has, normalized to one type model, cached in
//! a file next to the rules so `lint` can check mappings without network access.
//!
//! Systems describe fields differently; a provider's `fields` operation says how one listed
//! item maps to the type model: `field` expressions over the item (its keys read as record
//! fields) for the name, label, vendor type, options, required and read-only flags, and
//! `types` for vendor type names. Without them an item's own `name`, `label`, `type`,
//! `options`, `required` and `read_only` are read, and common type names are understood.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::expr::{Compiled, Env};
use crate::functions::SystemClock;
use crate::plan::ProviderPlan;
use crate::plan::provider::FieldMapping;
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

/// Normalizes listed field items of the generic shape (`{name, type, label?, options?,
/// required?, read_only?}`).
pub fn normalize(items: &[Value]) -> Vec<FieldInfo> {
    normalize_with(&FieldMapping::default(), items)
}

/// Normalizes listed field items by a `fields` operation's mapping.
pub(crate) fn normalize_with(mapping: &FieldMapping, items: &[Value]) -> Vec<FieldInfo> {
    let mut out: Vec<FieldInfo> = items
        .iter()
        .filter_map(|i| normalize_one(mapping, i))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// A mapping expression's value for `item`, else the item's own `key`.
fn read(expr: Option<&Compiled>, item: &Value, key: &str) -> Value {
    match expr {
        Some(e) => {
            let clock = SystemClock;
            let env = Env {
                record: item,
                bindings: &[],
                clock: &clock,
            };
            e.eval(&env).map(|v| v.into_owned()).unwrap_or(Value::Null)
        }
        None => item.get(key).cloned().unwrap_or(Value::Null),
    }
}

fn normalize_one(m: &FieldMapping, item: &Value) -> Option<FieldInfo> {
    let name = read(m.name.as_ref(), item, "name").as_str()?.to_string();
    let label = read(m.label.as_ref(), item, "label")
        .as_str()
        .map(String::from);
    let vendor = read(m.ty.as_ref(), item, "type");
    let vendor = vendor.as_str().unwrap_or("string");
    let ty = m.types.get(vendor).map_or(vendor, String::as_str);
    let options = options(Some(&read(m.options.as_ref(), item, "options")));
    let flag = |e: Option<&Compiled>, key: &str| read(e, item, key).as_bool().unwrap_or(false);
    Some(FieldInfo {
        name,
        label,
        ty: generic_type(ty, options),
        required: flag(m.required.as_ref(), "required"),
        read_only: flag(m.read_only.as_ref(), "read_only"),
    })
}

/// A type name: rulebridge's own, or a common one (`integer`, `boolean`, `picklist`, ...).
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

/// Fetches an object's fields through its provider's `fields` operation (the items its
/// `results` query selects, else a top-level array) and normalizes them by its mapping.
pub async fn discover(
    connector: &super::http::HttpConnector,
    object: &str,
) -> Result<Vec<FieldInfo>, super::ConnectError> {
    connector.operation(object, "fields")?;
    let body = connector
        .call(object, "fields", serde_json::Map::new())
        .await?;
    Ok(normalize_response(connector.plan(), object, &body).unwrap_or_default())
}

/// Normalizes the response body of `object`'s `fields` operation by the provider's mapping
/// (`None` when the object has no `fields` operation).
pub fn normalize_response(
    provider: &ProviderPlan,
    object: &str,
    body: &Value,
) -> Option<Vec<FieldInfo>> {
    let op = provider.object(object)?.operation("fields")?;
    let items = match (&op.results, body) {
        (Some(q), body) => q.all(body),
        (None, Value::Array(items)) => items.clone(),
        (None, _) => Vec::new(),
    };
    let default = FieldMapping::default();
    Some(normalize_with(
        op.fields.as_ref().unwrap_or(&default),
        &items,
    ))
}

/// What [`create_missing`] did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Creation {
    /// Declared fields created now.
    pub created: Vec<String>,
    /// Declared fields another writer created meanwhile (the create met a duplicate).
    pub already_there: Vec<String>,
    /// Declared fields that could not be created, with the provider's reason.
    pub failed: Vec<(String, super::ConnectError)>,
    /// The object's fields after creating, as listed by the `fields` operation.
    pub fields: Vec<FieldInfo>,
}

/// Creates the fields the rule files declare for `object` (the kit's and its extensions')
/// that the remote system lacks, through the object's `create_field` operation, then lists
/// the fields again. Each create's template context has `field`: `name`, `label` (the
/// declared one, else the name in words), `description` (or `""`), `type` (as declared:
/// `string`, `datetime`, `enum`, ...), `options` (`[{label, value}]`) and `required`.
pub async fn create_missing(
    connector: &super::http::HttpConnector,
    object: &str,
) -> Result<Creation, super::ConnectError> {
    connector.operation(object, "create_field")?;
    let declared: Vec<crate::plan::provider::DeclaredField> = connector
        .plan()
        .object(object)
        .map(|o| o.fields().to_vec())
        .unwrap_or_default();
    let before = discover(connector, object).await?;
    let mut creation = Creation::default();
    for field in declared
        .iter()
        .filter(|d| !before.iter().any(|f| f.name == d.name))
    {
        let mut vars = serde_json::Map::new();
        vars.insert("field".into(), field_context(field));
        match connector.call(object, "create_field", vars).await {
            Ok(_) => creation.created.push(field.name.clone()),
            Err(e) if e.kind == super::ErrorKind::Duplicate => {
                creation.already_there.push(field.name.clone());
            }
            Err(e) => creation.failed.push((field.name.clone(), e)),
        }
    }
    creation.fields = discover(connector, object).await?;
    Ok(creation)
}

/// The `field` a `create_field` template reads.
fn field_context(f: &crate::plan::provider::DeclaredField) -> Value {
    let options: Vec<Value> = f
        .options
        .iter()
        .map(|o| serde_json::json!({ "label": o, "value": o }))
        .collect();
    serde_json::json!({
        "name": f.name,
        "label": f.label.clone().unwrap_or_else(|| in_words(&f.name)),
        "description": f.description.clone().unwrap_or_default(),
        "type": f.ty,
        "options": options,
        "required": f.required,
    })
}

/// `lead_owner_team` → `Lead owner team`: a label for a field declared without one.
fn in_words(name: &str) -> String {
    let words = name.replace(['_', '-'], " ");
    let mut chars = words.trim().chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => name.to_string(),
    }
}

/// The cached field lists of a rules directory: `<rules>/.fields/<provider>.<object>.json`.
/// (The loader skips dot-directories, so the cache is never read as rules.)
#[derive(Clone, Debug, Default)]
pub struct FieldCache {
    dir: Option<PathBuf>,
    /// Knows its rules directory but reads no cached fields (see [`FieldCache::unread`]).
    unread: bool,
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
            unread: false,
        }
    }

    /// The cache of the rules at `rules` with nothing read from it: for checking rules
    /// without the fields discovered earlier, relative files still resolved against the
    /// rules directory.
    pub fn unread(rules: &Path) -> FieldCache {
        FieldCache {
            unread: true,
            ..FieldCache::for_rules(rules)
        }
    }

    /// The rules directory the cache belongs to.
    pub fn rules_dir(&self) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .and_then(|d| d.parent())
            .map(Path::to_path_buf)
    }

    pub fn path(&self, provider: &str, object: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{provider}.{object}.json")))
    }

    /// The cached fields of an object, if discovered before.
    pub fn load(&self, provider: &str, object: &str) -> Option<Vec<FieldInfo>> {
        if self.unread {
            return None;
        }
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
    fn generic_items() {
        let f = normalize(&[
            json!({"name": "email", "label": "Email", "type": "email", "required": true}),
            json!({"name": "plan", "type": "select", "options": [{"value": "free"}, "pro"]}),
            json!({"name": "id", "type": "integer", "read_only": true}),
            json!({"name": "blob", "type": "binary"}),
            json!({"label": "no name"}),
        ]);
        let by: Vec<(&str, &str, bool, bool)> = f
            .iter()
            .map(|f| (f.name.as_str(), f.ty.name(), f.required, f.read_only))
            .collect();
        assert_eq!(
            by,
            [
                ("blob", "binary", false, false),
                ("email", "email", true, false),
                ("id", "number", false, true),
                ("plan", "enum", false, false)
            ]
        );
        assert_eq!(
            f[3].ty,
            FieldType::Enum {
                options: vec!["free".into(), "pro".into()]
            }
        );
    }

    #[test]
    fn labels_in_words() {
        assert_eq!(in_words("lead_owner_team"), "Lead owner team");
        assert_eq!(in_words("tags"), "Tags");
        assert_eq!(in_words("x-y"), "X y");
    }

    #[test]
    fn create_context_has_the_declaration() {
        let f = crate::plan::provider::DeclaredField {
            name: "tier".into(),
            label: None,
            description: Some("Plan tier".into()),
            ty: "enum".into(),
            options: vec!["gold".into()],
            required: false,
            location: crate::span::Location {
                file: "x.yaml".into(),
                line: 1,
                column: 1,
                end_line: 1,
                end_column: 2,
            },
        };
        assert_eq!(
            field_context(&f),
            json!({"name": "tier", "label": "Tier", "description": "Plan tier", "type": "enum",
                   "options": [{"label": "gold", "value": "gold"}], "required": false})
        );
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
