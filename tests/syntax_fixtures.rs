//! Fixture-driven tests of the rule-file loader: `ok/*.yaml` decode cleanly (the snapshot is
//! an outline of the documents) and `bad/*.yaml` produce diagnostics (the snapshot is the
//! concise rendering).

use rulebridge::diagnostic::render::{Format, render};
use rulebridge::syntax::{load_str, outline::outline};

fn name_of(path: &std::path::Path) -> String {
    format!(
        "tests/fixtures/syntax/{}/{}",
        path.parent()
            .and_then(|p| p.file_name())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    )
}

#[test]
fn ok_fixtures_decode_cleanly() {
    insta::glob!("fixtures/syntax/ok/*.yaml", |path| {
        let source = std::fs::read_to_string(path).expect("fixture");
        let loaded = load_str(&name_of(path), &source);
        let diags = render(
            &loaded.diagnostics,
            &loaded.rules.sources,
            Format::Concise,
            false,
        );
        assert!(diags.is_empty(), "{}", diags);
        insta::with_settings!({ description => source, omit_expression => true }, {
            insta::assert_snapshot!(outline(&loaded.rules));
        });
    });
}

#[test]
fn bad_fixtures_report_diagnostics() {
    insta::glob!("fixtures/syntax/bad/*.yaml", |path| {
        let source = std::fs::read_to_string(path).expect("fixture");
        let loaded = load_str(&name_of(path), &source);
        // Every bad fixture reports something; all but the empty rule set are errors.
        assert!(
            !loaded.diagnostics.is_empty(),
            "no diagnostics for {}",
            path.display()
        );
        let text = render(
            &loaded.diagnostics,
            &loaded.rules.sources,
            Format::Concise,
            false,
        );
        insta::with_settings!({ description => source, omit_expression => true }, {
            insta::assert_snapshot!(text);
        });
    });
}
