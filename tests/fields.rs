//! Lint checks mappings against discovered fields cached next to the rules.

use rulebridge::connect::fields::{FieldCache, normalize};
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
    // What `rulebridge fields crm contact` stores after fetching HubSpot-style properties.
    let fields = normalize(&[
        json!({"name": "email", "type": "string", "fieldType": "text"}),
        json!({"name": "firstname", "type": "string", "fieldType": "text"}),
        json!({"name": "score", "type": "number", "fieldType": "number"}),
        json!({"name": "lifecyclestage", "type": "enumeration", "fieldType": "radio",
               "options": [{"value": "lead"}, {"value": "customer"}]}),
        json!({"name": "LastName", "type": "string", "nillable": false, "createable": true}),
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
