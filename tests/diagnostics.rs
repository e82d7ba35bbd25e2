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
    let loaded = syntax::load_paths(&[rel]).expect("fixture is readable");
    let compiled = compile::compile_loaded(&loaded, &Registry::builtin());
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
