//! The loader never panics, whatever it is given.

use proptest::prelude::*;
use rulebridge::diagnostic::render::{Format, render};
use rulebridge::syntax::load_str;

/// Pieces of rule files, glued together at random.
fn yamlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("kind: flow\n".to_string()),
        Just("kind: provider\n".to_string()),
        Just("kind: policy\n".to_string()),
        Just("kind: record\n".to_string()),
        Just("kind: test\n".to_string()),
        Just("---\n".to_string()),
        Just("name: x\n".to_string()),
        Just("mapping:\n  a: b\n".to_string()),
        Just("  - [ '\"IT\"', x ]\n".to_string()),
        Just("rows:\n".to_string()),
        Just("target: { provider: p, object: o }\n".to_string()),
        Just("auth: { type: bearer, token: \"${env:".to_string()),
        Just("rate_limit: 5 per 0s\n".to_string()),
        Just("retry: { on: [429, network], base: 1m30s }\n".to_string()),
        Just("tests:\n  - name: t\n    expect: {}\n".to_string()),
        Just("objects: { o: { operations: { c: { method: post } } } }\n".to_string()),
        Just("fields: { a: \"array<strng>?\" }\n".to_string()),
        Just("\t".to_string()),
        Just("é: ü\n".to_string()),
        Just("&a { x: *a }\n".to_string()),
        Just("<<: *b\n".to_string()),
        Just("? [a]\n: b\n".to_string()),
        "[a-z:{}\\[\\],'\"#&*!|>\\- \n]{0,20}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn check(text: &str) {
    let loaded = load_str("fuzz.yaml", text);
    // Every span must be renderable.
    for format in [Format::Human, Format::Concise, Format::Json, Format::Sarif] {
        let _ = render(&loaded.diagnostics, &loaded.rules.sources, format, false);
    }
    let _ = rulebridge::syntax::outline::outline(&loaded.rules);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        check(&text);
    }

    #[test]
    fn never_panics_on_yamlish_text(text in yamlish()) {
        check(&text);
    }
}
