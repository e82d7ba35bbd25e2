//! Loading rule files from disk and memory: directory walking, file naming, unreadable files,
//! empty rule sets and multi-file rule sets.

use std::fs;
use std::path::PathBuf;

use rulebridge::diagnostic::Code;
use rulebridge::diagnostic::render::{Format, render};
use rulebridge::syntax::doc::Document;
use rulebridge::syntax::{LoadError, load_paths, load_sources, load_str};

const FLOW: &str = "kind: flow\nname: f\ntarget: { provider: p, object: o }\nmapping: { a: b }\n";
const RECORD: &str = "kind: record\nname: r\nfields: { a: string }\n";

fn codes(loaded: &rulebridge::syntax::Loaded) -> Vec<Code> {
    loaded.diagnostics.iter().map(|d| d.code).collect()
}

#[test]
fn walks_directories_sorted_skipping_dot_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::create_dir_all(root.join("flows")).expect("mkdir");
    fs::create_dir_all(root.join(".hidden")).expect("mkdir");
    fs::write(root.join("flows/b.yaml"), FLOW).expect("write");
    fs::write(root.join("a.yml"), RECORD).expect("write");
    fs::write(root.join(".secret.yaml"), "kind: nope\n").expect("write");
    fs::write(root.join(".hidden/x.yaml"), "kind: nope\n").expect("write");
    fs::write(root.join("README.md"), "# not rules\n").expect("write");

    let loaded = load_paths(&[root.to_path_buf()]).expect("load");
    assert_eq!(codes(&loaded), vec![]);
    let names: Vec<String> = loaded
        .rules
        .sources
        .files()
        .map(|(_, f)| f.name.clone())
        .collect();
    assert_eq!(
        names,
        vec![
            root.join("a.yml").display().to_string(),
            root.join("flows").join("b.yaml").display().to_string()
        ]
    );
    let kinds: Vec<_> = loaded.rules.documents.iter().map(Document::kind).collect();
    assert_eq!(kinds, ["record", "flow"]);
}

#[test]
fn explicit_files_are_read_whatever_their_extension() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rules.txt");
    fs::write(&file, RECORD).expect("write");
    let loaded = load_paths(&[file.clone(), file]).expect("load");
    assert_eq!(
        loaded.rules.documents.len(),
        1,
        "the same file is read once"
    );
}

#[test]
fn missing_path_is_a_load_error() {
    let err = load_paths(&[PathBuf::from("/definitely/not/here")]).expect_err("must fail");
    assert!(matches!(err, LoadError::NotFound { .. }));
    assert!(err.to_string().contains("/definitely/not/here"));
}

#[test]
fn empty_directory_warns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = load_paths(&[dir.path().to_path_buf()]).expect("load");
    assert_eq!(codes(&loaded), vec![Code::EmptyRuleSet]);
    assert!(!loaded.has_errors());
    let text = render(
        &loaded.diagnostics,
        &loaded.rules.sources,
        Format::Concise,
        false,
    );
    assert!(
        text.starts_with("warning[RB0011] no rule files found in"),
        "{text}"
    );
}

#[test]
fn files_without_documents_warn() {
    let loaded = load_str("empty.yaml", "# nothing here\n");
    assert_eq!(codes(&loaded), vec![Code::EmptyFile, Code::EmptyRuleSet]);
    assert_eq!(codes(&load_sources(&[])), vec![Code::EmptyRuleSet]);
}

#[test]
fn an_empty_file_beside_others_is_reported_on_its_own() {
    let loaded = load_sources(&[
        ("a.yaml".to_string(), RECORD.to_string()),
        ("b.yaml".to_string(), String::new()),
        ("c.yaml".to_string(), "# todo\n\n  # later\n".to_string()),
    ]);
    assert_eq!(codes(&loaded), vec![Code::EmptyFile, Code::EmptyFile]);
    assert!(!loaded.has_errors());
    let text = render(
        &loaded.diagnostics,
        &loaded.rules.sources,
        Format::Concise,
        false,
    );
    assert!(
        text.contains("b.yaml:1:1: warning[RB0012] this rule file is empty"),
        "{text}"
    );
    assert!(
        text.contains("c.yaml:1:1: warning[RB0012] this rule file holds only comments"),
        "{text}"
    );
}

#[test]
fn unreadable_files_in_a_directory_are_diagnostics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::write(root.join("a.yaml"), RECORD).expect("write");
    fs::write(root.join("b.yaml"), [0xff, 0xfe, b'k', b':']).expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("missing-target"), root.join("c.yaml")).expect("link");

    let loaded = load_paths(&[root.to_path_buf()]).expect("load");
    let mut expected = vec![Code::UnreadableFile];
    if cfg!(unix) {
        expected.push(Code::UnreadableFile);
    }
    assert_eq!(codes(&loaded), expected);
    assert_eq!(
        loaded.rules.documents.len(),
        1,
        "the readable file still loads"
    );
    let text = render(
        &loaded.diagnostics,
        &loaded.rules.sources,
        Format::Concise,
        false,
    );
    assert!(text.contains("b.yaml:1:1: error[RB0007]"), "{text}");
    assert!(text.contains("not valid UTF-8"), "{text}");
}

#[test]
fn several_files_make_one_rule_set() {
    let loaded = load_sources(&[
        ("flows/f.yaml".into(), FLOW.into()),
        ("records/r.yaml".into(), RECORD.into()),
    ]);
    assert_eq!(codes(&loaded), vec![]);
    assert_eq!(loaded.rules.documents.len(), 2);
    let record = &loaded.rules.documents[1];
    let loc = loaded.rules.sources.locate(record.name().span);
    assert_eq!(loc.to_string(), "records/r.yaml:2:7");
}

#[test]
fn test_documents_are_named_after_their_file() {
    let loaded = load_str(
        "tests/lead_cases.yaml",
        "kind: test\nflow: f\ncases:\n  - name: a\n    expect: { status: skipped }\n",
    );
    assert_eq!(codes(&loaded), vec![]);
    assert_eq!(loaded.rules.documents[0].name().value, "lead_cases");
}

#[test]
fn diagnostics_are_sorted_by_position() {
    let loaded = load_str(
        "x.yaml",
        "kind: flow\nname: f\nzzz: 1\ntarget: { provider: p, object: o, extra: 1 }\nmapping: { a: b }\naaa: 2\n",
    );
    let lines: Vec<usize> = loaded
        .diagnostics
        .iter()
        .map(|d| loaded.rules.sources.locate(d.span).line)
        .collect();
    assert_eq!(lines, [3, 4, 6]);
}

#[test]
fn a_document_with_errors_keeps_its_good_parts() {
    let loaded = load_str(
        "x.yaml",
        "kind: flow\nname: f\ntarget: { provider: p, object: o }\nmapping:\n  a: b\n  c: [bad]\n  d: e\n",
    );
    assert_eq!(codes(&loaded), vec![Code::WrongType]);
    let Some(Document::Flow(flow)) = loaded.rules.documents.first() else {
        panic!("flow expected");
    };
    let targets: Vec<_> = flow
        .mapping
        .entries
        .iter()
        .map(|e| e.target.value.as_str())
        .collect();
    assert_eq!(targets, ["a", "d"]);
}

#[test]
fn documents_left_out_are_listed_by_name() {
    let loaded = load_str(
        "x.yaml",
        "kind: flow\nname: broken\nmapping: { a: b }\n---\nkind: record\nfields: {}\n",
    );
    assert_eq!(codes(&loaded), vec![Code::MissingField, Code::MissingField]);
    assert!(loaded.rules.documents.is_empty());
    let names: Vec<_> = loaded
        .incomplete
        .iter()
        .map(|i| (i.kind, i.name.value.as_str()))
        .collect();
    assert_eq!(names, [("flow", "broken")]);
}

#[test]
fn a_provider_with_extends_is_an_extension_named_after_its_file() {
    let text = "kind: provider\nextends: hubspot\nbase_url: https://x.example.com\nobjects:\n  contact:\n    operations: {}\n    fields:\n      tier: { type: string, label: Tier, description: Plan tier }\n";
    let loaded = load_sources(&[("rules/acme_fields.yaml".into(), text.into())]);
    let Some(Document::Extension(ext)) = loaded.rules.documents.first() else {
        panic!("an extension: {:?}", loaded.rules.documents);
    };
    assert_eq!(ext.name.value, "acme_fields");
    assert_eq!(ext.base.value, "hubspot");
    let field = &ext.objects[0].fields[0];
    assert_eq!(
        (field.label.as_deref(), field.description.as_deref()),
        (Some("Tier"), Some("Plan tier"))
    );
    // What only a provider of its own has is reported, not silently ignored.
    assert_eq!(codes(&loaded), vec![Code::UnknownKey, Code::UnknownKey]);
    let shown = render(
        &loaded.diagnostics,
        &loaded.rules.sources,
        Format::Concise,
        false,
    );
    assert!(
        shown.contains("3:1: error[RB0003] `base_url` has no effect in an extension"),
        "{shown}"
    );
    assert!(
        shown.contains("6:5: error[RB0003] unknown key `operations`"),
        "{shown}"
    );
}
