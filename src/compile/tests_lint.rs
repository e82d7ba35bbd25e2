//! Checks of test expectations against what their subject can produce: a payload field the
//! flow's mapping never writes, or a policy output the table does not have, can never be
//! matched, so the test is bound to fail (`RB4003`).

use std::collections::BTreeMap;

use crate::diagnostic::{Code, Diagnostic, suggest};
use crate::syntax::doc::{FlowDoc, Mapping, MappingValue, PolicyDoc, Spanned, TestCase};

use super::Context;

/// What the tests of one subject are checked against.
pub(super) enum Subject<'d> {
    Flow(&'d FlowDoc),
    Policy(&'d PolicyDoc),
}

impl Context<'_> {
    pub(super) fn check_test_expectations(
        &mut self,
        subject: Subject<'_>,
        cases: &[TestCase],
        policies: &BTreeMap<&str, &PolicyDoc>,
    ) {
        for case in cases {
            match subject {
                Subject::Flow(flow) => {
                    self.check_payload(flow, case);
                    match &flow.policy {
                        Some(name) => {
                            // An unknown policy is reported where the flow names it.
                            if let Some(policy) = policies.get(name.value.as_str()) {
                                self.check_policy_fields(policy, case);
                            }
                        }
                        None => {
                            if let Some(first) = case.expect.policy_fields.first() {
                                self.report(
                                    Diagnostic::new(
                                        Code::TestExpectsMissing,
                                        first.span,
                                        format!(
                                            "test `{}` expects a policy result, but flow `{}` applies no policy",
                                            case.name.value, flow.name.value
                                        ),
                                    )
                                    .with_label("this flow has no `policy:`")
                                    .with_help("add `policy: NAME` to the flow, or remove `policy` from the test's `expect`"),
                                );
                            }
                        }
                    }
                }
                Subject::Policy(policy) => self.check_policy_fields(policy, case),
            }
        }
    }

    fn check_payload(&mut self, flow: &FlowDoc, case: &TestCase) {
        let mut failed: Vec<&[String]> = Vec::new();
        for field in &case.expect.payload_fields {
            let path = field.value.as_slice();
            if failed.iter().any(|f| path.starts_with(f)) {
                continue;
            }
            let Err((depth, siblings)) = produced(&flow.mapping, path) else {
                continue;
            };
            failed.push(path);
            let shown = path[..=depth].join(".");
            let name = &path[depth];
            let help = suggest(name, siblings.iter().map(String::as_str))
                .map(|s| format!("{s} the mapping writes it; otherwise add `{shown}` to the flow's `mapping:` or remove it from the test"))
                .unwrap_or_else(|| {
                    if siblings.is_empty() {
                        format!("add `{shown}` to the flow's `mapping:`, or remove it from the test")
                    } else {
                        format!(
                            "the mapping writes {}; add `{shown}` to it or remove it from the test",
                            list(&siblings)
                        )
                    }
                });
            self.report(
                Diagnostic::new(
                    Code::TestExpectsMissing,
                    field.span,
                    format!(
                        "test `{}` expects payload field `{shown}`, which flow `{}` never produces",
                        case.name.value, flow.name.value
                    ),
                )
                .with_label("not written by the mapping")
                .with_help(help),
            );
        }
    }

    fn check_policy_fields(&mut self, policy: &PolicyDoc, case: &TestCase) {
        let outputs: Vec<String> = policy
            .outputs
            .iter()
            .map(|o| o.name.value.clone())
            .collect();
        for field in &case.expect.policy_fields {
            if outputs.contains(&field.value) {
                continue;
            }
            let help =
                suggest(&field.value, outputs.iter().map(String::as_str)).unwrap_or_else(|| {
                    format!(
                        "policy `{}` has the outputs {}",
                        policy.name.value,
                        list(&outputs)
                    )
                });
            self.report(
                Diagnostic::new(
                    Code::TestExpectsMissing,
                    field.span,
                    format!(
                        "test `{}` expects policy output `{}`, which policy `{}` does not have",
                        case.name.value, field.value, policy.name.value
                    ),
                )
                .with_label("not an output of the policy")
                .with_help(help),
            );
        }
    }
}

/// Whether the mapping writes the payload field at `path`; if not, the depth of the first
/// key it lacks and the keys it has at that level.
fn produced(mapping: &Mapping, path: &[String]) -> Result<(), (usize, Vec<String>)> {
    let mut level = mapping;
    for (depth, key) in path.iter().enumerate() {
        let targets = || {
            level
                .entries
                .iter()
                .map(|e| e.target.value.clone())
                .collect()
        };
        let Some(entry) = level.entries.iter().find(|e| &e.target.value == key) else {
            return Err((depth, targets()));
        };
        match &entry.value {
            MappingValue::Nested(inner, _) => level = inner,
            MappingValue::Const(v) => return const_has(v, path, depth + 1),
            // A template renders a string, which has no fields.
            MappingValue::Template(_) if depth + 1 < path.len() => {
                return Err((depth + 1, Vec::new()));
            }
            // An expression may produce any object; a reference is shown unresolved
            // (`{ref, where}`) before it is sent.
            MappingValue::Template(_) | MappingValue::Expr(_) | MappingValue::Ref(_) => {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn const_has(
    value: &Spanned<serde_json::Value>,
    path: &[String],
    from: usize,
) -> Result<(), (usize, Vec<String>)> {
    let mut v = &value.value;
    for (depth, key) in path.iter().enumerate().skip(from) {
        let keys = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        match v.get(key) {
            Some(next) if v.is_object() => v = next,
            _ => return Err((depth, keys)),
        }
    }
    Ok(())
}

fn list(names: &[String]) -> String {
    const MAX: usize = 12;
    let mut shown: Vec<String> = names.iter().take(MAX).map(|n| format!("`{n}`")).collect();
    if names.len() > MAX {
        shown.push(format!("and {} more", names.len() - MAX));
    }
    shown.join(", ")
}
