//! Rule-set tests: the fixtures written next to the rules (`tests:` in flows and policies, and
//! `kind: test` files), run by `rulebridge test` and by `cargo test` for the shipped rules.
//!
//! Every case runs with the fixed test clock (2024-01-15T10:30:00Z) and only the secrets the
//! case supplies, so results never depend on the machine.
//!
//! A case is a dry run unless it sets the scene: with `existing:` records (or a `created` /
//! `updated` status, a `target_id` or a `record` expected) it is sent through the flow's
//! duplicate rule to an in-memory target ([`MemoryConnector`]) holding those records, ids
//! `1`, `2`, ... in order; a record's `updated_at` field is its modification time for
//! `on_multiple: most_recent`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::connect::memory::MemoryConnector;
use crate::exec::send::{ConnectorSink, SendOptions};
use crate::exec::{self, ExecContext, Outcome, Pipeline, RunOptions};
use crate::functions::FixedClock;
use crate::plan::{FlowPlan, Plan, PolicyPlan};
use crate::secrets::Secret;
use crate::span::Span;
use crate::syntax::doc::{MatchMode, Spanned, TestCase, TestSubject};

/// The result of one test case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// `flow/case name` or `policy/case name`.
    pub name: String,
    pub at: String,
    pub passed: bool,
    /// One line per difference: `payload.firstname: expected "Ada", got "ada"`.
    pub failures: Vec<String>,
    #[serde(skip)]
    pub(crate) edits: Vec<Edit>,
}

/// A replacement of an expectation's text by the actual value (`--update`).
#[derive(Debug, Clone)]
pub(crate) struct Edit {
    pub span: Span,
    pub text: String,
}

/// All results of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub cases: Vec<CaseResult>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }
}

/// Runs every test case of the plan whose name contains `filter`.
pub fn run(plan: &Plan, filter: Option<&str>) -> Report {
    let mut cases = Vec::new();
    let wanted = |name: &str| filter.is_none_or(|f| name.contains(f));
    for flow in plan.flows() {
        for case in &flow.tests {
            let name = format!("{}/{}", flow.name, case.name.value);
            if wanted(&name) {
                cases.push(run_flow_case(plan, flow, case, name));
            }
        }
    }
    for policy in plan.policies() {
        for case in &policy.tests {
            let name = format!("{}/{}", policy.name, case.name.value);
            if wanted(&name) {
                cases.push(run_policy_case(plan, policy, case, name));
            }
        }
    }
    for file in plan.test_files() {
        for case in &file.cases {
            let (subject, result) = match &file.subject {
                TestSubject::Flow(f) => (f, plan.flow(&f.value).map(|flow| (Some(flow), None))),
                TestSubject::Policy(p) => (p, plan.policy(&p.value).map(|pol| (None, Some(pol)))),
            };
            let name = format!("{}/{}", subject.value, case.name.value);
            if !wanted(&name) {
                continue;
            }
            cases.push(match result {
                Some((Some(flow), _)) if sends(case) => run_sent_case(plan, flow, case, name),
                Some((Some(flow), _)) => run_flow_case(plan, flow, case, name),
                Some((_, Some(policy))) => run_policy_case(plan, policy, case, name),
                _ => CaseResult {
                    name,
                    at: plan.sources().locate(case.span).to_string(),
                    passed: false,
                    failures: vec![format!("`{}` is not defined", subject.value)],
                    edits: Vec::new(),
                },
            });
        }
    }
    Report { cases }
}

fn context(case: &TestCase) -> ExecContext {
    let mut cx = ExecContext::new(Arc::new(FixedClock::default_test()));
    for (name, value) in &case.secrets {
        cx = cx.with_secret(name, &Secret::new(value.clone()));
    }
    cx
}

fn run_flow_case(plan: &Plan, flow: &FlowPlan, case: &TestCase, name: String) -> CaseResult {
    let cx = context(case);
    let outcome = exec::pipeline::dry_run_outcome(flow, &cx, 0, &case.input.value);
    let mut failures = Vec::new();
    let mut edits = Vec::new();
    check_outcome(&outcome, case, &mut failures, &mut edits);
    CaseResult {
        name,
        at: plan.sources().locate(case.span).to_string(),
        passed: failures.is_empty(),
        failures,
        edits,
    }
}

/// Whether the case is sent to an in-memory target rather than dry-run.
fn sends(case: &TestCase) -> bool {
    let e = &case.expect;
    !case.existing.is_empty()
        || e.target_id.is_some()
        || e.record.is_some()
        || e.status
            .as_ref()
            .is_some_and(|s| matches!(s.value.as_str(), "created" | "updated"))
}

fn run_sent_case(plan: &Plan, flow: &Arc<FlowPlan>, case: &TestCase, name: String) -> CaseResult {
    let at = plan.sources().locate(case.span).to_string();
    let target = Arc::new(MemoryConnector::new().updated_at("updated_at"));
    for r in &case.existing {
        target.insert(&flow.object, r.value.clone());
    }
    let sink = Arc::new(ConnectorSink::new(
        flow.clone(),
        target.clone(),
        SendOptions {
            include_payload: true,
            ..SendOptions::default()
        },
    ));
    let options = RunOptions {
        threads: 1,
        ..RunOptions::default()
    };
    let pipeline = Pipeline::new(flow.clone(), context(case), sink, options);
    let outcome = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(pipeline.run_one(0, &case.input.value)),
        Err(e) => {
            return CaseResult {
                name,
                at,
                passed: false,
                failures: vec![format!("the case could not run: {e}")],
                edits: Vec::new(),
            };
        }
    };
    let mut failures = Vec::new();
    let mut edits = Vec::new();
    check_outcome(&outcome, case, &mut failures, &mut edits);
    let expect = &case.expect;
    if let Some(want) = &expect.target_id
        && outcome.target_id.as_deref() != Some(want.value.as_str())
    {
        failures.push(format!(
            "target_id: expected {:?}, got {:?}",
            want.value, outcome.target_id
        ));
    }
    if expect.record.is_some() {
        let held = outcome.target_id.as_ref().and_then(|id| {
            target
                .records(&flow.object)
                .into_iter()
                .find(|(i, _)| i == id)
                .map(|(_, r)| r)
        });
        compare_part(
            "record",
            &expect.record,
            held.as_ref(),
            expect.matching,
            &mut failures,
            &mut edits,
        );
    }
    CaseResult {
        name,
        at,
        passed: failures.is_empty(),
        failures,
        edits,
    }
}

fn check_outcome(
    outcome: &Outcome,
    case: &TestCase,
    failures: &mut Vec<String>,
    edits: &mut Vec<Edit>,
) {
    let expect = &case.expect;
    let status = outcome.status.as_str();
    match &expect.status {
        Some(s) if s.value != status => {
            failures.push(format!(
                "status: expected {}, got {status}{}",
                s.value,
                reason(outcome)
            ));
            edits.push(Edit {
                span: s.span,
                text: status.to_string(),
            });
        }
        // Without an explicit status, a payload expectation implies the record maps.
        None if expect.payload.is_some() && outcome.status == exec::Status::Failed => {
            failures.push(format!(
                "status: expected dry_run, got failed{}",
                reason(outcome)
            ));
        }
        _ => {}
    }
    compare_part(
        "payload",
        &expect.payload,
        outcome.payload.as_ref(),
        expect.matching,
        failures,
        edits,
    );
    compare_part(
        "policy",
        &expect.policy,
        outcome.policy.as_ref(),
        expect.matching,
        failures,
        edits,
    );
    if let Some(want) = &expect.error {
        let got = outcome
            .error
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_default();
        if !got.contains(want.value.as_str()) {
            failures.push(format!(
                "error: expected a failure containing {:?}, got {}",
                want.value,
                if got.is_empty() {
                    "no failure".into()
                } else {
                    format!("{got:?}")
                }
            ));
        }
    }
    if let Some(want) = &expect.key
        && outcome.key.as_deref() != Some(want.value.as_str())
    {
        failures.push(format!(
            "key: expected {:?}, got {:?}",
            want.value, outcome.key
        ));
    }
}

fn reason(outcome: &Outcome) -> String {
    outcome
        .error
        .as_ref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default()
}

fn run_policy_case(plan: &Plan, policy: &PolicyPlan, case: &TestCase, name: String) -> CaseResult {
    let cx = context(case);
    let mut failures = Vec::new();
    let mut edits = Vec::new();
    match exec::evaluate_policy(policy, &case.input.value, &cx) {
        Ok(actual) => compare_part(
            "policy",
            &case.expect.policy,
            Some(&actual),
            case.expect.matching,
            &mut failures,
            &mut edits,
        ),
        Err(e) => {
            if let Some(want) = &case.expect.error {
                if !e.to_string().contains(want.value.as_str()) {
                    failures.push(format!(
                        "error: expected {:?}, got {:?}",
                        want.value,
                        e.to_string()
                    ));
                }
            } else {
                failures.push(format!("policy failed: {e}"));
            }
        }
    }
    CaseResult {
        name,
        at: plan.sources().locate(case.span).to_string(),
        passed: failures.is_empty(),
        failures,
        edits,
    }
}

fn compare_part(
    what: &str,
    expected: &Option<Spanned<Value>>,
    actual: Option<&Value>,
    mode: MatchMode,
    failures: &mut Vec<String>,
    edits: &mut Vec<Edit>,
) {
    let Some(expected) = expected else { return };
    let null = Value::Null;
    let actual = actual.unwrap_or(&null);
    let before = failures.len();
    diff(&expected.value, actual, what, mode, failures);
    if failures.len() > before {
        // A `contains` expectation keeps its shape: only the fields it names are rewritten.
        let new = match mode {
            MatchMode::Equals => actual.clone(),
            MatchMode::Contains => project(actual, &expected.value),
        };
        edits.push(Edit {
            span: expected.span,
            text: serde_json::to_string(&new).unwrap_or_else(|_| "null".into()),
        });
    }
}

/// `actual` restricted to the object keys that `shape` has (recursively).
fn project(actual: &Value, shape: &Value) -> Value {
    match (actual, shape) {
        (Value::Object(a), Value::Object(s)) => Value::Object(
            s.iter()
                .filter_map(|(k, sv)| a.get(k).map(|av| (k.clone(), project(av, sv))))
                .collect(),
        ),
        (a, _) => a.clone(),
    }
}

/// A structural comparison: one line per differing path.
pub fn diff(expected: &Value, actual: &Value, path: &str, mode: MatchMode, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{path}.{k}");
                match a.get(k) {
                    Some(av) => diff(ev, av, &p, mode, out),
                    None => out.push(format!("{p}: expected {ev}, but the field is missing")),
                }
            }
            if mode == MatchMode::Equals {
                for (k, av) in a {
                    if !e.contains_key(k) {
                        out.push(format!("{path}.{k}: unexpected field with value {av}"));
                    }
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if mode == MatchMode::Equals || e.len() == a.len() => {
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: expected {} items, got {}: {actual}",
                    e.len(),
                    a.len()
                ));
                return;
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                diff(ev, av, &format!("{path}[{i}]"), mode, out);
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            // `contains`: every expected item appears somewhere in the actual array.
            for ev in e {
                if !a.iter().any(|av| {
                    let mut scratch = Vec::new();
                    diff(ev, av, path, mode, &mut scratch);
                    scratch.is_empty()
                }) {
                    out.push(format!(
                        "{path}: expected an item {ev}, not found in {actual}"
                    ));
                }
            }
        }
        (e, a) if numbers_equal(e, a) || e == a => {}
        (e, a) => out.push(format!("{path}: expected {e}, got {a}")),
    }
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
}

/// Rewrites the expectations of failed cases with the actual values. Returns the number of
/// files changed.
pub fn update(plan: &Plan, report: &Report) -> std::io::Result<usize> {
    let mut by_file: BTreeMap<crate::span::FileId, Vec<&Edit>> = BTreeMap::new();
    for case in report.cases.iter().filter(|c| !c.passed) {
        for e in &case.edits {
            by_file.entry(e.span.file).or_default().push(e);
        }
    }
    let mut changed = 0;
    for (file, mut edits) in by_file {
        let Some(src) = plan.sources().get(file) else {
            continue;
        };
        let mut text = src.text.clone();
        edits.sort_by_key(|e| std::cmp::Reverse(e.span.start));
        for e in edits {
            let (s, t) = (e.span.start as usize, e.span.end as usize);
            if s <= t && t <= text.len() && text.is_char_boundary(s) && text.is_char_boundary(t) {
                text.replace_range(s..t, &e.text);
            }
        }
        std::fs::write(&src.name, text)?;
        changed += 1;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines(e: Value, a: Value, mode: MatchMode) -> Vec<String> {
        let mut out = Vec::new();
        diff(&e, &a, "payload", mode, &mut out);
        out
    }

    #[test]
    fn equals_reports_each_path() {
        let out = lines(
            json!({"a": 1, "b": {"c": "x"}}),
            json!({"a": 1.0, "b": {"c": "y"}, "d": 2}),
            MatchMode::Equals,
        );
        assert_eq!(
            out,
            vec![
                r#"payload.b.c: expected "x", got "y""#.to_string(),
                "payload.d: unexpected field with value 2".to_string(),
            ]
        );
    }

    #[test]
    fn update_of_a_contains_expectation_keeps_its_fields() {
        let actual = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4});
        assert_eq!(
            project(&actual, &json!({"b": {"c": 0}, "z": 1})),
            json!({"b": {"c": 2}})
        );
    }

    #[test]
    fn contains_ignores_extra_fields_and_items() {
        assert!(
            lines(
                json!({"tags": ["b"]}),
                json!({"tags": ["a", "b"], "x": 1}),
                MatchMode::Contains
            )
            .is_empty()
        );
        assert_eq!(
            lines(
                json!({"tags": ["z"]}),
                json!({"tags": ["a", "b"]}),
                MatchMode::Contains
            )
            .len(),
            1
        );
    }
}
