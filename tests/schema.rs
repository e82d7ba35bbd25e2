//! The editor schema (`rulebridge::syntax::schema`) accepts every rule file the project
//! ships and rejects a key the loader would reject.

use std::path::{Path, PathBuf};

use rulebridge::span::FileId;
use rulebridge::syntax::{parse_documents, schema::rule_file_schema};

fn validator() -> jsonschema::Validator {
    jsonschema::draft202012::new(&rule_file_schema()).expect("the schema is a valid JSON Schema")
}

/// Problems of every document in `text`, as `document N: path: message`.
fn problems(validator: &jsonschema::Validator, text: &str) -> Vec<String> {
    let (docs, diags) = parse_documents(FileId(0), text);
    assert!(diags.is_empty(), "not valid YAML: {diags:?}");
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let json = doc.to_json();
        for e in validator.iter_errors(&json) {
            out.push(format!("document {}: {}: {e}", i + 1, e.instance_path()));
        }
    }
    out
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("readable directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

#[test]
fn every_rule_file_in_rules_validates() {
    let validator = validator();
    let mut files = Vec::new();
    yaml_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"),
        &mut files,
    );
    assert!(files.len() > 5, "found only {files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("UTF-8 rule file");
        for p in problems(&validator, &text) {
            failures.push(format!("{}: {p}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_loaders_ok_fixtures_validate() {
    let validator = validator();
    let mut files = Vec::new();
    yaml_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/syntax/ok"),
        &mut files,
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("UTF-8 rule file");
        for p in problems(&validator, &text) {
            failures.push(format!("{}: {p}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_unknown_key_fails_validation() {
    let validator = validator();
    let flow = "kind: flow\nname: f\ntarget: { provider: p, object: o }\nmapping: { a: b }\n";
    assert_eq!(problems(&validator, flow), Vec::<String>::new());
    for (text, path) in [
        (format!("{flow}mappings: {{ a: b }}\n"), ""),
        (
            flow.replace("object: o", "object: o, objekt: o"),
            "/target",
        ),
        (
            "kind: provider\nname: p\nbase_url: https://x.example\nobjects:\n  o:\n    operations:\n      create: { method: POST, path: /o, bodee: {} }\n".to_string(),
            "/objects/o/operations/create",
        ),
        (
            "kind: provider\nname: p\nbase_url: https://x.example\nauth: { type: bearer, token: x, username: u }\n".to_string(),
            "/auth",
        ),
    ] {
        let found = problems(&validator, &text);
        assert!(
            found.iter().any(|p| p.contains(&format!(": {path}: ")) || p.starts_with(&format!("document 1: {path}: "))),
            "{text}\n{found:?}"
        );
        // The loader reports the same key.
        let loaded = rulebridge::syntax::load_str("t.yaml", &text);
        assert!(
            loaded.diagnostics.iter().any(|d| d.code.as_str() == "RB0003"),
            "{:?}",
            loaded.diagnostics
        );
    }
}

#[test]
fn a_wrong_enum_value_fails_validation() {
    let validator = validator();
    let text = "kind: policy\nname: p\nhit: firts\ninputs: [a]\noutputs: [b]\nrows: [['-', x]]\n";
    let found = problems(&validator, text);
    assert!(found.iter().any(|p| p.contains("/hit")), "{found:?}");
}

#[test]
fn an_extension_takes_fields_only() {
    let validator = validator();
    let ok = "kind: provider\nextends: hubspot\nobjects:\n  contact:\n    fields: { tier: { type: string, label: Tier } }\n";
    assert_eq!(problems(&validator, ok), Vec::<String>::new());
    // Without `extends`, a provider needs its own `base_url`; with it, `auth` and operations
    // are the base's.
    let own = "kind: provider\nname: p\nobjects: {}\n";
    assert!(!problems(&validator, own).is_empty());
    let auth = "kind: provider\nextends: hubspot\nauth: none\n";
    assert!(!problems(&validator, auth).is_empty());
    let ops = "kind: provider\nextends: hubspot\nobjects:\n  contact:\n    operations: {}\n";
    assert!(!problems(&validator, ops).is_empty());
}
