//! One bad rule file per diagnostic code: `lint` must report that code at the right place.
//! Fixture names start with the code they demonstrate; the snapshot holds the concise output.

use std::path::Path;

use rulebridge::diagnostic::render::{self, Format};
use rulebridge::{Registry, compile, syntax};

/// Lints one file the way `rulebridge lint FILE` does.
fn lint(path: &Path) -> (String, Vec<String>) {
    let rel = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .to_path_buf();
    let loaded = syntax::load_paths(std::slice::from_ref(&rel)).expect("fixture is readable");
    // Fields discovered for a fixture's provider are in `.fields/` next to the fixtures.
    let cache = rulebridge::connect::fields::FieldCache::for_rules(&rel);
    let compiled = compile::compile_loaded_with_fields(&loaded, &Registry::builtin(), &cache);
    let mut diags = loaded.diagnostics.clone();
    diags.extend(compiled.diagnostics);
    rulebridge::diagnostic::sort(&mut diags);
    let codes = diags.iter().map(|d| d.code.as_str().to_string()).collect();
    (
        render::render(&diags, &loaded.rules.sources, Format::Concise, false),
        codes,
    )
}

/// Mismatches are collected so one bad fixture does not hide the others (the glob body
/// cannot borrow locals, hence the static).
static WRONG: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

#[test]
fn each_fixture_reports_its_code() {
    insta::glob!("fixtures/diagnostics/*.yaml", |path| {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let code = name.split('-').next().unwrap_or_default();
        let (output, codes) = lint(path);
        if !codes.iter().any(|c| c == code) {
            let msg = format!("{name}: expected {code}, got {codes:?}\n{output}");
            WRONG.lock().unwrap_or_else(|e| e.into_inner()).push(msg);
        }
        let source = std::fs::read_to_string(path).unwrap_or_default();
        insta::with_settings!({ description => source, omit_expression => true }, {
            insta::assert_snapshot!(output);
        });
    });
    let wrong = WRONG.lock().unwrap_or_else(|e| e.into_inner());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn human_output_shows_the_snippet_and_hint() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/diagnostics/RB1002-unknown-function.yaml");
    let rel = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(&path)
        .to_path_buf();
    let loaded = syntax::load_paths(&[rel]).expect("fixture is readable");
    let compiled = compile::compile_loaded(&loaded, &Registry::builtin());
    let out = render::render(
        &compiled.diagnostics,
        &loaded.rules.sources,
        Format::Human,
        false,
    );
    insta::assert_snapshot!(out);
}

/// The provider cases that linted clean before providers were compiled: each fails lint with a
/// code, a real location and a hint.
#[test]
fn provider_problems_are_located_with_a_code_and_a_hint() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diagnostics");
    let cases = [
        ("RB1008-provider-results-jsonpath.yaml", "RB1008", "11:29"),
        ("RB1010-provider-path-template.yaml", "RB1010", "7:"),
        ("RB5001-unknown-template-filter.yaml", "RB5001", "10:"),
        ("RB5002-undeclared-provider-secret.yaml", "RB5002", "12:"),
        ("RB1011-provider-unknown-variable.yaml", "RB1011", "8:"),
        ("RB1002-provider-error-rule.yaml", "RB1002", "9:"),
    ];
    for (file, code, at) in cases {
        let rel = Path::new("tests/fixtures/diagnostics").join(file);
        assert!(dir.join(file).exists(), "{file}");
        let loaded = syntax::load_paths(&[rel]).expect("fixture is readable");
        let compiled = compile::compile_loaded(&loaded, &Registry::builtin());
        assert!(compiled.plan.is_none(), "{file} must not compile");
        let d = compiled
            .diagnostics
            .iter()
            .find(|d| d.code.as_str() == code)
            .unwrap_or_else(|| panic!("{file}: no {code} in {:?}", compiled.diagnostics));
        assert!(d.help.is_some(), "{file}: {code} has no hint");
        let location = loaded.rules.sources.locate(d.span).to_string();
        assert!(
            location.contains(&format!("{file}:{at}")),
            "{file}: {code} at {location}"
        );
    }
}

/// Every diagnostic says how to fix it, in every fixture.
#[test]
fn every_diagnostic_has_a_hint() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diagnostics");
    let mut missing = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixture directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    for path in paths {
        let loaded = syntax::load_paths(std::slice::from_ref(&path)).expect("fixture is readable");
        let compiled = compile::compile_loaded(&loaded, &Registry::builtin());
        for d in loaded.diagnostics.iter().chain(&compiled.diagnostics) {
            if d.help.as_deref().is_none_or(str::is_empty) {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                missing.push(format!("{name}: {} {}", d.code, d.message));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "diagnostics without a hint:\n{}",
        missing.join("\n")
    );
}

/// A file that cannot be read as YAML (or as UTF-8) still declares its names: documents in
/// other files that refer to them get no "unknown flow/record/provider" errors.
#[test]
fn a_broken_file_does_not_cascade_into_other_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let write = |name: &str, text: &[u8]| std::fs::write(root.join(name), text).expect("write");
    // Invalid YAML: an unclosed `{` in the provider, an unclosed quote in the record.
    write(
        "a_provider.yaml",
        b"kind: provider\nname: crm\nbase_url: https://crm.example.com\nobjects:\n  contact:\n    fields: { email: string\n",
    );
    write(
        "b_record.yaml",
        b"kind: record\nname: \"lead\"\nfields:\n  email: 'string\n",
    );
    // Not UTF-8 (Latin-1 `é`).
    write(
        "c_policy.yaml",
        b"kind: policy\nname: tiers\ninputs: [age]\noutputs: [tier]\nrows:\n  - ['-', caf\xe9]\n",
    );
    // A misspelt kind.
    write(
        "d_flow.yaml",
        b"kind: flwo\nname: g\ntarget: { provider: crm, object: contact }\nmapping: { email: email }\n",
    );
    write(
        "e_flow.yaml",
        b"kind: flow\nname: f\nsource: { record: lead }\ntarget: { provider: crm, object: contact }\npolicy: tiers\nmapping: { email: email }\n---\nkind: test\nflow: g\ncases:\n  - { name: x, expect: { status: dry_run } }\n",
    );
    let loaded = syntax::load_paths(&[root.to_path_buf()]).expect("load");
    let compiled = compile::compile_loaded(&loaded, &Registry::builtin());
    let mut diags = loaded.diagnostics.clone();
    diags.extend(compiled.diagnostics);
    let found: Vec<(String, String)> = diags
        .iter()
        .map(|d| {
            let file = loaded
                .rules
                .sources
                .get(d.span.file)
                .map(|f| {
                    std::path::Path::new(&f.name)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            (file, d.code.as_str().to_string())
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("a_provider.yaml", "RB0001"),
        ("b_record.yaml", "RB0001"),
        ("c_policy.yaml", "RB0007"),
        ("d_flow.yaml", "RB0002"),
    ]
    .iter()
    .map(|(f, c)| (f.to_string(), c.to_string()))
    .collect();
    assert_eq!(found, expected, "{diags:#?}");
    // The invalid byte is shown where it is, not at 1:1.
    let utf8 = diags
        .iter()
        .find(|d| d.code.as_str() == "RB0007")
        .expect("RB0007");
    let loc = loaded.rules.sources.locate(utf8.span);
    assert_eq!((loc.line, loc.column), (6, 14));
}
