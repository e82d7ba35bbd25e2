//! The rule sets shipped in `rules/` lint clean and pass their own tests.

use rulebridge::diagnostic::render::{self, Format};
use rulebridge::{Registry, compile, suite, syntax};

fn load() -> (syntax::Loaded, compile::Compilation) {
    let rules = std::path::PathBuf::from("rules");
    let loaded = syntax::load_paths(&[rules]).expect("rules/ is readable");
    let compiled = compile::compile_loaded(&loaded, &Registry::builtin());
    (loaded, compiled)
}

#[test]
fn rules_lint_clean() {
    let (loaded, compiled) = load();
    let mut diags = loaded.diagnostics.clone();
    diags.extend(compiled.diagnostics.iter().cloned());
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).cloned().collect();
    assert!(
        errors.is_empty(),
        "{}",
        render::render(&errors, &loaded.rules.sources, Format::Concise, false)
    );
}

#[test]
fn rules_pass_their_tests() {
    let (_, compiled) = load();
    let plan = compiled.plan.expect("rules compile");
    let report = suite::run(&plan, None);
    assert!(
        report.cases.len() >= 25,
        "only {} cases",
        report.cases.len()
    );
    let failures: Vec<String> = report
        .cases
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} ({}):\n  {}", c.name, c.at, c.failures.join("\n  ")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
