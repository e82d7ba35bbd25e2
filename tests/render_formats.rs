//! Snapshot tests of the diagnostic renderers on two files with several problems, a
//! cross-file label and a diagnostic without a position.

use rulebridge::diagnostic::render::{Format, render, summary};
use rulebridge::diagnostic::{Code, Diagnostic};
use rulebridge::span::{SourceMap, Span};
use rulebridge::syntax::{NO_FILE, load_sources};

fn fixture() -> (Vec<Diagnostic>, SourceMap) {
    let read = |name: &str| {
        std::fs::read_to_string(format!("tests/fixtures/syntax/render/{name}")).expect("fixture")
    };
    let loaded = load_sources(&[
        ("rules/flows/lead.yaml".to_string(), read("lead.yaml")),
        ("rules/providers/crm.yaml".to_string(), read("crm.yaml")),
    ]);
    let mut diags = loaded.diagnostics;
    let sources = loaded.rules.sources;
    // A compiler-style diagnostic pointing into both files.
    let flow_name = find(&sources, 0, "lead_to_crm");
    let provider_name = find(&sources, 1, "crm");
    diags.push(
        Diagnostic::new(
            Code::DuplicateName,
            flow_name,
            "two documents share the name `crm`",
        )
        .with_label("second definition")
        .with_related(provider_name, "first defined here")
        .with_help("rename one of them"),
    );
    diags.push(
        Diagnostic::new(
            Code::EmptyRuleSet,
            Span::new(NO_FILE, 0, 0),
            "no rule files found in `x`",
        )
        .with_help("rule files end in `.yaml`"),
    );
    (diags, sources)
}

/// The span of the first occurrence of `needle` after `name:` in file `file`.
fn find(sources: &SourceMap, file: u32, needle: &str) -> Span {
    let id = rulebridge::span::FileId(file);
    let text = &sources.get(id).expect("file").text;
    let at = text.find(&format!("name: {needle}")).expect("needle") + "name: ".len();
    Span::new(id, at as u32, (at + needle.len()) as u32)
}

#[test]
fn human() {
    let (diags, sources) = fixture();
    let mut out = render(&diags, &sources, Format::Human, false);
    out.push_str(&summary(&diags));
    insta::assert_snapshot!(out);
}

#[test]
fn human_with_color_uses_ansi() {
    let (diags, sources) = fixture();
    let out = render(&diags, &sources, Format::Human, true);
    assert!(out.contains("\u{1b}["));
}

#[test]
fn concise() {
    let (diags, sources) = fixture();
    insta::assert_snapshot!(render(&diags, &sources, Format::Concise, false));
}

#[test]
fn json() {
    let (diags, sources) = fixture();
    let out = render(&diags, &sources, Format::Json, false);
    let parsed: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(parsed.as_array().map(Vec::len), Some(diags.len()));
    insta::assert_snapshot!(out);
}

#[test]
fn sarif() {
    let (diags, sources) = fixture();
    let out = render(&diags, &sources, Format::Sarif, false);
    let parsed: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(parsed["version"], "2.1.0");
    let results = parsed["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), diags.len());
    // Rule metadata is long and changes whenever a code is added; snapshot the results.
    let rules = parsed["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules");
    assert_eq!(rules.len(), Code::ALL.len());
    assert_eq!(rules[0]["id"], "RB0001");
    assert_eq!(rules[0]["shortDescription"]["text"], Code::ALL[0].summary());
    insta::assert_json_snapshot!(parsed["runs"][0]["results"]);
}

#[test]
fn empty_input_renders_nothing() {
    let sources = SourceMap::new();
    assert_eq!(render(&[], &sources, Format::Human, false), "");
    assert_eq!(render(&[], &sources, Format::Concise, false), "");
    assert_eq!(render(&[], &sources, Format::Json, false).trim(), "[]");
    assert_eq!(summary(&[]), "");
}
