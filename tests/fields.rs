//! Lint checks mappings against discovered fields cached next to the rules.

use rulebridge::connect::fields::{
    FieldCache, FieldInfo, FieldType, normalize, normalize_response,
};
use rulebridge::diagnostic::render::{self, Format};
use rulebridge::{Registry, compile, syntax};
use serde_json::json;

const RULES: &str = r#"
kind: provider
name: crm
base_url: https://crm.example.com
objects:
  contact:
    operations:
      create: { method: POST, path: /contacts }
---
kind: flow
name: f
source: {}
target: { provider: crm, object: contact }
mapping:
  email: email
  firstnme: first_name
  lifecyclestage: { value: prospect }
  score: '"high"'
"#;

#[test]
fn lint_uses_the_field_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("rules.yaml"), RULES).expect("write");
    let cache = FieldCache::for_rules(dir.path());
    // What `rulebridge fields crm contact` stores after fetching a generic field listing.
    let fields = normalize(&[
        json!({"name": "email", "type": "string"}),
        json!({"name": "firstname", "type": "string"}),
        json!({"name": "score", "type": "number"}),
        json!({"name": "lifecyclestage", "type": "enumeration",
               "options": [{"value": "lead"}, {"value": "customer"}]}),
        json!({"name": "LastName", "type": "string", "required": true}),
    ]);
    cache.store("crm", "contact", &fields).expect("store");

    let loaded = syntax::load_paths(&[dir.path().to_path_buf()]).expect("load");
    let compiled = compile::compile_loaded_with_fields(&loaded, &Registry::builtin(), &cache);
    let codes: Vec<&str> = compiled
        .diagnostics
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    let text = render::render(
        &compiled.diagnostics,
        &loaded.rules.sources,
        Format::Concise,
        false,
    );
    // Unknown target (did you mean firstname?), invalid enum option, string into a number,
    // and the required LastName left unmapped.
    assert_eq!(codes, ["RB2004", "RB2003", "RB2002", "RB2002"], "{text}");
    assert!(text.contains("did you mean `firstname`?"), "{text}");
    assert!(text.contains("`prospect` is not an option"), "{text}");

    // Without the cache the same rules lint clean: nothing is known about the fields.
    let plain = compile::compile_loaded(&loaded, &Registry::builtin());
    assert!(plain.diagnostics.is_empty());
}

/// A compiled kit by name.
fn kit(name: &str) -> std::sync::Arc<rulebridge::plan::ProviderPlan> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("rules/providers")
        .join(format!("{name}.yaml"));
    let loaded = syntax::load_paths(&[path]).expect("load the kit");
    let compiled = compile::compile_loaded(&loaded, &Registry::builtin());
    let plan = compiled.plan.expect("the kit compiles");
    plan.provider(name).expect("the kit").clone()
}

fn summary(fields: &[FieldInfo]) -> Vec<(&str, &str, bool, bool)> {
    fields
        .iter()
        .map(|f| (f.name.as_str(), f.ty.name(), f.required, f.read_only))
        .collect()
}

#[test]
fn the_hubspot_kit_maps_properties_to_the_type_model() {
    let body = json!({"results": [
        {"name": "email", "label": "Email", "type": "string", "fieldType": "text"},
        {"name": "phone", "type": "string", "fieldType": "phonenumber"},
        {"name": "opted_in", "type": "string", "fieldType": "booleancheckbox"},
        {"name": "lifecyclestage", "type": "enumeration", "fieldType": "radio",
         "options": [{"label": "Lead", "value": "lead"}, {"label": "Customer", "value": "customer"}]},
        {"name": "hs_object_id", "type": "number", "fieldType": "number",
         "modificationMetadata": {"readOnlyValue": true}},
        {"name": "lastmodifieddate", "type": "datetime", "fieldType": "date"}
    ]});
    let f = normalize_response(&kit("hubspot"), "contact", &body).expect("a fields operation");
    assert_eq!(
        summary(&f),
        [
            ("email", "email", false, false),
            ("hs_object_id", "number", false, true),
            ("lastmodifieddate", "datetime", false, false),
            ("lifecyclestage", "enum", false, false),
            ("opted_in", "bool", false, false),
            ("phone", "phone", false, false)
        ]
    );
    assert_eq!(f[0].label.as_deref(), Some("Email"));
    assert_eq!(
        f[3].ty,
        FieldType::Enum {
            options: vec!["lead".into(), "customer".into()]
        }
    );
}

#[test]
fn the_salesforce_kit_maps_describe_to_the_type_model() {
    let body = json!({"name": "Lead", "fields": [
        {"name": "LastName", "type": "string", "nillable": false, "createable": true, "updateable": true},
        {"name": "Email", "type": "email", "nillable": true, "createable": true, "updateable": true},
        {"name": "Id", "type": "id", "nillable": false, "createable": false, "updateable": false, "defaultedOnCreate": true},
        {"name": "IsConverted", "type": "boolean", "nillable": false, "createable": true, "updateable": true},
        {"name": "NumberOfEmployees", "type": "int", "nillable": true, "createable": true, "updateable": true},
        {"name": "Geo", "type": "location", "nillable": true, "createable": true, "updateable": true},
        {"name": "Rating", "type": "picklist", "nillable": true, "createable": true, "updateable": true,
         "picklistValues": [{"value": "Hot", "active": true}, {"value": "Old", "active": false}, {"value": "Warm"}]}
    ]});
    let f = normalize_response(&kit("salesforce"), "lead", &body).expect("a fields operation");
    assert_eq!(
        summary(&f),
        [
            ("Email", "email", false, false),
            ("Geo", "location", false, false),
            ("Id", "string", false, true),
            ("IsConverted", "bool", false, false),
            ("LastName", "string", true, false),
            ("NumberOfEmployees", "number", false, false),
            ("Rating", "enum", false, false)
        ]
    );
    assert_eq!(
        f[6].ty,
        FieldType::Enum {
            options: vec!["Hot".into(), "Warm".into()]
        }
    );
}
