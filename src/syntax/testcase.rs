//! Test cases (inline `tests:` of flows and policies) and `kind: test` documents.

use super::decode::{Cx, Fields};
use super::doc::{Expectation, MatchMode, Spanned, TestCase, TestSubject, TestsDoc};
use super::node::{Node, NodeKind};
use crate::diagnostic::{Code, Diagnostic};
use crate::span::Span;

pub(crate) const KEYS: &[&str] = &["kind", "name", "description", "flow", "policy", "cases"];

pub(crate) const CASE_KEYS: &[&str] = &[
    "name",
    "description",
    "input",
    "secrets",
    "existing",
    "expect",
];
pub(crate) const EXPECT_KEYS: &[&str] = &[
    "payload",
    "policy",
    "status",
    "error",
    "key",
    "target_id",
    "record",
    "match",
];
pub(crate) const STATUSES: &[&str] = &["dry_run", "created", "updated", "skipped", "failed"];

/// Statuses only a case sent to a target can have.
const SENT: &[&str] = &["created", "updated"];

pub(crate) const MATCH_MODES: &[(&str, MatchMode)] = &[
    ("equals", MatchMode::Equals),
    ("contains", MatchMode::Contains),
];

/// What the cases test; decides which expectations make sense.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Subject {
    Flow,
    Policy,
}

/// A `kind: test` document. `stem` is the file's name without extension, used when the
/// document has no `name`.
pub(crate) fn decode(
    cx: &mut Cx<'_>,
    f: &Fields<'_>,
    name: Option<Spanned<String>>,
    stem: Spanned<String>,
) -> Option<TestsDoc> {
    let flow = f.opt(cx, "flow", |cx, n, _| cx.string(n));
    let policy = f.opt(cx, "policy", |cx, n, _| cx.string(n));
    let subject = match (flow, policy) {
        (Some(flow), None) => Some(TestSubject::Flow(flow)),
        (None, Some(policy)) => Some(TestSubject::Policy(policy)),
        (Some(flow), Some(policy)) => {
            let key = f.key("policy").map_or(policy.span, |k| k.span);
            let d = Diagnostic::new(
                Code::UnknownKey,
                key,
                "a test document tests either a flow or a policy, not both",
            )
            .with_label("second subject")
            .with_related(flow.span, "the flow under test")
            .with_help("move the policy's cases into a document of their own");
            cx.push(d);
            Some(TestSubject::Flow(flow))
        }
        (None, None) => {
            if !f.has("flow") && !f.has("policy") {
                cx.missing(
                    f.owner,
                    "flow",
                    Some("name what is tested: `flow: NAME` or `policy: NAME`".into()),
                );
            }
            None
        }
    };
    let kind = match subject {
        Some(TestSubject::Policy(_)) => Subject::Policy,
        _ => Subject::Flow,
    };
    let cases = f.require(cx, "cases", |cx, n, _| Some(cases(cx, n, kind)));
    Some(TestsDoc {
        name: name.unwrap_or(stem),
        subject: subject?,
        cases: cases.unwrap_or_default(),
        span: f.span,
    })
}

/// A list of test cases.
pub(crate) fn cases(cx: &mut Cx<'_>, node: &Node, subject: Subject) -> Vec<TestCase> {
    let items = cx.list(node, false);
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if let Some(case) = cx.item(i, |cx| case(cx, item, subject)) {
            out.push(case);
        }
    }
    out
}

fn case(cx: &mut Cx<'_>, node: &Node, subject: Subject) -> Option<TestCase> {
    let f = cx.fields(node, None, CASE_KEYS)?;
    let name = f.require(cx, "name", |cx, n, _| cx.text(n));
    let input = f
        .opt(cx, "input", |cx, n, _| {
            if n.as_map().is_none() {
                cx.wrong_type(n, "a mapping (the input record)", None);
                return None;
            }
            Some(cx.json(n))
        })
        .unwrap_or_else(|| Spanned::new(serde_json::json!({}), f.owner));
    let secrets = f
        .opt(cx, "secrets", |cx, n, _| {
            Some(
                cx.string_map(n, false)
                    .into_iter()
                    .map(|(k, v)| (k.value, v.value))
                    .collect(),
            )
        })
        .unwrap_or_default();
    let existing = f
        .opt(cx, "existing", |cx, n, _| {
            let items = cx.list(n, false);
            Some(
                items
                    .into_iter()
                    .filter_map(|item| object(cx, item))
                    .collect(),
            )
        })
        .unwrap_or_default();
    if subject == Subject::Policy
        && let Some(k) = f.key("existing")
    {
        let d = Diagnostic::new(
            Code::TestInvalid,
            k.span,
            "a policy test has no target to hold existing records",
        )
        .with_label("malformed test case")
        .with_help("`existing:` belongs to flow tests: the records the target already holds");
        cx.push(d);
    }
    let expect = f.require(cx, "expect", |cx, n, k| expectation(cx, n, k, subject));
    Some(TestCase {
        name: name?,
        input,
        secrets,
        existing,
        expect: expect.unwrap_or_default(),
        span: f.span,
    })
}

fn expectation(cx: &mut Cx<'_>, node: &Node, key: Span, subject: Subject) -> Option<Expectation> {
    let f = cx.fields(node, Some(key), EXPECT_KEYS)?;
    let matching = f
        .opt(cx, "match", |cx, n, _| {
            cx.choice(n, MATCH_MODES, "match mode")
        })
        .map(|m| m.value)
        .unwrap_or_default();
    let payload = f.opt(cx, "payload", |cx, n, _| object(cx, n));
    let policy = f.opt(cx, "policy", |cx, n, _| object(cx, n));
    let status = f.opt(cx, "status", |cx, n, _| {
        let s = cx.string(n)?;
        if !STATUSES.contains(&s.value.as_str()) {
            cx.invalid_value(s.span, &s.value, STATUSES, "test status");
            return None;
        }
        Some(s)
    });
    let error = f.opt(cx, "error", |cx, n, _| cx.text(n));
    let key_expect = f.opt(cx, "key", |cx, n, _| cx.text(n));
    let target_id = f.opt(cx, "target_id", |cx, n, _| cx.text(n));
    let record = f.opt(cx, "record", |cx, n, _| object(cx, n));
    let mut payload_fields = Vec::new();
    if let (Some(_), Some(n)) = (&payload, f.get("payload")) {
        key_paths(n, &mut Vec::new(), &mut payload_fields);
    }
    let policy_fields = match (&policy, f.get("policy").and_then(Node::as_map)) {
        (Some(_), Some(entries)) => entries
            .iter()
            .map(|(k, _)| Spanned::new(k.key_text(), k.span))
            .collect(),
        _ => Vec::new(),
    };
    let e = Expectation {
        matching,
        payload,
        policy,
        status,
        error,
        key: key_expect,
        target_id,
        record,
        payload_fields,
        policy_fields,
    };
    check(cx, &f, &e, subject);
    Some(e)
}

/// Semantic checks of one expectation (`RB4002`).
fn check(cx: &mut Cx<'_>, f: &Fields<'_>, e: &Expectation, subject: Subject) {
    let mut problem = |span: Span, message: String, help: &str| {
        let d = Diagnostic::new(Code::TestInvalid, span, message)
            .with_label("malformed test case")
            .with_help(help);
        cx.push(d);
    };
    // Judged on the keys written, so a rejected value is not also "nothing expected".
    if ![
        "payload",
        "policy",
        "status",
        "error",
        "key",
        "target_id",
        "record",
    ]
    .iter()
    .any(|k| f.has(k))
    {
        problem(
            f.owner,
            "the test case expects nothing".into(),
            "add `payload`, `policy`, `status`, `error`, `key`, `target_id` or `record` under `expect`",
        );
    }
    if subject == Subject::Policy {
        for name in ["payload", "status", "error", "key", "target_id", "record"] {
            if let Some(k) = f.key(name) {
                problem(
                    k.span,
                    format!("a policy test cannot expect `{name}`"),
                    "a policy test checks the policy's outputs: `expect: { policy: {...} }`",
                );
            }
        }
    }
    if let (Some(err), Some(status)) = (&e.error, &e.status)
        && status.value != "failed"
    {
        problem(
            err.span,
            format!(
                "the test case expects an error but status `{}`",
                status.value
            ),
            "an `error` expectation needs `status: failed` (or no status)",
        );
    }
    if let Some(status) = &e.status
        && status.value != "dry_run"
        && !SENT.contains(&status.value.as_str())
        && e.payload.is_some()
    {
        problem(
            status.span,
            format!(
                "the test case expects a payload but status `{}`",
                status.value
            ),
            "only records that are mapped (`dry_run`, `created`, `updated`) have a payload",
        );
    }
    if let Some(status) = &e.status
        && status.value == "dry_run"
        && let Some(k) = f.key("target_id").or(f.key("record"))
    {
        problem(
            k.span,
            "a dry run writes nothing: there is no target id or record to expect".into(),
            "expect `status: created`, `updated` or `skipped`, and give the target's records under `existing:` if any",
        );
    }
}

/// The path of every key of a mapping, nested mappings included.
fn key_paths(node: &Node, prefix: &mut Vec<String>, out: &mut Vec<Spanned<Vec<String>>>) {
    let Some(entries) = node.as_map() else {
        return;
    };
    for (k, v) in entries {
        prefix.push(k.key_text());
        out.push(Spanned::new(prefix.clone(), k.span));
        key_paths(v, prefix, out);
        prefix.pop();
    }
}

fn object(cx: &mut Cx<'_>, node: &Node) -> Option<Spanned<serde_json::Value>> {
    if !matches!(node.kind, NodeKind::Map(_)) {
        cx.wrong_type(node, "a mapping", None);
        return None;
    }
    Some(cx.json(node))
}
