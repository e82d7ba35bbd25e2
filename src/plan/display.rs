//! `rulebridge plan`: a readable (and JSON) view of what a flow will do.
//!
//! Secrets appear as their references (`${env:NAME}`), never as values.

use std::fmt::Write;

use serde::Serialize;
use serde_json::Value;

use super::{FlowPlan, MappingPlan, PolicyPlan, ValuePlan};

/// A serializable description of a flow's plan.
#[derive(Debug, Serialize)]
pub struct PlanView {
    pub flow: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub source: SourceView,
    pub target: TargetView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyView>,
    /// Named values, in the order they are computed.
    #[serde(rename = "let", skip_serializing_if = "Vec::is_empty")]
    pub lets: Vec<LetView>,
    pub mapping: Vec<FieldView>,
    pub omit_nulls: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<DuplicatesView>,
    pub steps: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct LetView {
    pub name: String,
    pub source: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub at: String,
}

#[derive(Debug, Serialize)]
pub struct SourceView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    pub require: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TargetView {
    pub provider: String,
    pub object: String,
    /// The compiled provider's auth type (see [`PlanView::with_provider`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<&'static str>,
    /// The object's compiled operations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<OperationView>,
    /// Where the provider is defined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct OperationView {
    pub name: String,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_batch: Option<usize>,
    /// `batch.group_by`: one request per value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SecretView {
    pub name: String,
    pub from: String,
}

#[derive(Debug, Serialize)]
pub struct PolicyView {
    pub name: String,
    pub hit: crate::syntax::doc::HitPolicy,
    pub inputs: Vec<String>,
    pub outputs: Vec<(String, String)>,
    pub rows: Vec<RowView>,
    pub indexed: bool,
}

#[derive(Debug, Serialize)]
pub struct RowView {
    pub when: Vec<String>,
    pub then: Vec<Value>,
    pub at: String,
}

#[derive(Debug, Serialize)]
pub struct FieldView {
    pub target: String,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldView>,
    #[serde(rename = "type")]
    pub ty: String,
    pub redacted: bool,
    /// Computed from the clock: left out when the ledger compares payloads.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stamp: bool,
    /// Differs at every evaluation: the ledger compares the input record instead.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub randomized: bool,
    pub at: String,
}

#[derive(Debug, Serialize)]
pub struct DuplicatesView {
    #[serde(rename = "match")]
    pub match_keys: Vec<String>,
    pub on_match: crate::syntax::doc::OnMatch,
    pub on_multiple: crate::syntax::doc::OnMultiple,
    pub repeats: crate::syntax::doc::Repeats,
}

impl PlanView {
    pub fn of(flow: &FlowPlan) -> PlanView {
        let mut steps = vec!["validate"];
        let mut lets = Vec::new();
        for step in &flow.steps {
            let name = match step {
                super::FlowStep::Filter => "filter",
                super::FlowStep::Policy => "policy",
                super::FlowStep::Let(k) => {
                    if let Some(l) = flow.lets.get(*k) {
                        lets.push(LetView {
                            name: l.name.clone(),
                            source: l.expr.source.clone(),
                            ty: if l.declared.is_empty() {
                                l.expr.ty.to_string()
                            } else {
                                l.declared.clone()
                            },
                            at: l.expr.location.to_string(),
                        });
                    }
                    "let"
                }
            };
            if steps.last() != Some(&name) {
                steps.push(name);
            }
        }
        steps.push("map");
        if flow.duplicates.is_some() {
            steps.push("identity");
        }
        steps.push("send");
        PlanView {
            flow: flow.name.clone(),
            description: flow.description.clone(),
            source: SourceView {
                record: flow.record.clone(),
                require: flow.require.clone(),
                filter: flow.filter.as_ref().map(|f| f.source.clone()),
            },
            target: TargetView {
                provider: flow.provider.clone(),
                object: flow.object.clone(),
                auth: None,
                operations: Vec::new(),
                at: None,
            },
            key: flow.key.as_ref().map(|k| k.source.clone()),
            secrets: flow
                .secrets
                .iter()
                .map(|(name, from)| SecretView {
                    name: name.clone(),
                    from: from.clone(),
                })
                .collect(),
            policy: flow.policy.as_deref().map(policy_view),
            lets,
            mapping: fields(&flow.mapping, flow, ""),
            omit_nulls: flow.omit_nulls,
            required: flow.required.clone(),
            duplicates: flow.duplicates.as_ref().map(|d| DuplicatesView {
                match_keys: d.match_keys.clone(),
                on_match: d.on_match,
                on_multiple: d.on_multiple,
                repeats: d.repeats,
            }),
            steps,
        }
    }

    /// Adds what the compiled provider does for the flow's target object.
    pub fn with_provider(mut self, provider: Option<&super::ProviderPlan>) -> PlanView {
        let Some(p) = provider else {
            return self;
        };
        self.target.auth = Some(p.auth.kind());
        self.target.at = Some(p.location().to_string());
        if let Some(o) = p.object(&self.target.object) {
            self.target.operations = o
                .operations()
                .map(|op| OperationView {
                    name: op.name().to_string(),
                    method: op.method().to_string(),
                    path: op.path().to_string(),
                    max_batch: op.max_batch(),
                    group_by: op.group_by().map(str::to_string),
                })
                .collect();
        }
        self
    }

    /// The plan as indented text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "flow {}", self.flow);
        if let Some(d) = &self.description {
            let _ = writeln!(s, "  {d}");
        }
        let _ = writeln!(s, "  steps: {}", self.steps.join(" → "));
        let _ = write!(s, "  source: ");
        match &self.source.record {
            Some(r) => {
                let _ = write!(s, "record `{r}`");
            }
            None => s.push_str("any record"),
        }
        if !self.source.require.is_empty() {
            let _ = write!(s, ", require [{}]", self.source.require.join(", "));
        }
        if let Some(f) = &self.source.filter {
            let _ = write!(s, ", filter `{f}`");
        }
        s.push('\n');
        let _ = write!(
            s,
            "  target: {}.{}",
            self.target.provider, self.target.object
        );
        match (&self.target.at, self.target.auth) {
            (Some(at), Some(auth)) => {
                let _ = writeln!(s, " (provider at {at}, auth {auth})");
            }
            _ => s.push('\n'),
        }
        for op in &self.target.operations {
            let _ = write!(s, "    {}: {} {}", op.name, op.method, op.path);
            let mut notes = Vec::new();
            if let Some(m) = op.max_batch {
                notes.push(format!("up to {m} per request"));
            }
            if let Some(g) = &op.group_by {
                notes.push(format!("one `{g}` per request"));
            }
            if !notes.is_empty() {
                let _ = write!(s, " ({})", notes.join(", "));
            }
            s.push('\n');
        }
        if let Some(k) = &self.key {
            let _ = writeln!(s, "  key: {k}");
        }
        for sec in &self.secrets {
            let _ = writeln!(s, "  secret {} ← {}", sec.name, sec.from);
        }
        for l in &self.lets {
            let _ = writeln!(s, "  let {}: {} = {}  ({})", l.name, l.ty, l.source, l.at);
        }
        if let Some(p) = &self.policy {
            let _ = writeln!(
                s,
                "  policy {} (hit: {}{}) inputs [{}] → outputs [{}]",
                p.name,
                serde_json::to_value(p.hit)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                if p.indexed { ", indexed" } else { "" },
                p.inputs.join(", "),
                p.outputs
                    .iter()
                    .map(|(n, t)| format!("{n}: {t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for (i, row) in p.rows.iter().enumerate() {
                let then: Vec<String> = row.then.iter().map(|v| v.to_string()).collect();
                let _ = writeln!(
                    s,
                    "    {:>2}. when {} then {}",
                    i + 1,
                    row.when.join(" | "),
                    then.join(" | ")
                );
            }
        }
        let _ = writeln!(
            s,
            "  mapping{}:",
            if self.omit_nulls {
                " (nulls omitted)"
            } else {
                ""
            }
        );
        write_fields(&mut s, &self.mapping, 2);
        if !self.required.is_empty() {
            let _ = writeln!(s, "  required: [{}]", self.required.join(", "));
        }
        if let Some(d) = &self.duplicates {
            let _ = writeln!(
                s,
                "  duplicates: match [{}], on_match {}, on_multiple {}, repeats {}",
                d.match_keys.join(", "),
                name_of(d.on_match),
                name_of(d.on_multiple),
                name_of(d.repeats),
            );
        }
        s
    }
}

/// The snake_case name a setting is written with.
fn name_of(v: impl Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn write_fields(s: &mut String, fields: &[FieldView], depth: usize) {
    let pad = "  ".repeat(depth);
    for f in fields {
        let what = match (f.kind, &f.source, &f.value) {
            ("nested", _, _) => "{".to_string(),
            (_, Some(src), _) if f.kind == "template" => format!("template {src:?}"),
            (_, Some(src), _) => src.clone(),
            (_, None, Some(v)) => format!("= {v}"),
            _ => String::new(),
        };
        let red = if f.redacted {
            " [redacted in output]"
        } else {
            ""
        };
        let stamp = if f.stamp {
            " [time stamp, not compared]"
        } else if f.randomized {
            " [randomized, compared by its input]"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "{pad}{} ← {what}  : {}{red}{stamp}   ({})",
            f.target, f.ty, f.at
        );
        if f.kind == "nested" {
            write_fields(s, &f.fields, depth + 1);
            let _ = writeln!(s, "{pad}}}");
        }
    }
}

fn policy_view(p: &PolicyPlan) -> PolicyView {
    PolicyView {
        name: p.name.clone(),
        hit: p.hit,
        inputs: p.inputs.iter().map(|i| i.source.clone()).collect(),
        outputs: p
            .outputs
            .iter()
            .map(|(n, t)| (n.clone(), t.to_string()))
            .collect(),
        rows: p
            .rows
            .iter()
            .map(|r| RowView {
                when: r.cells.clone(),
                then: r.outputs.clone(),
                at: r.location.to_string(),
            })
            .collect(),
        indexed: p.index.is_some(),
    }
}

fn fields(m: &MappingPlan, flow: &FlowPlan, prefix: &str) -> Vec<FieldView> {
    m.fields
        .iter()
        .map(|f| {
            let path = format!("{prefix}{}", f.target);
            let redacted = flow.redacted.contains(&path);
            let stamp = flow.stamps.contains(&path);
            let randomized = flow.randomized.contains(&path);
            let (kind, source, value, nested) = match &f.value {
                ValuePlan::Expr(e) => ("expr", Some(e.source.clone()), None, Vec::new()),
                ValuePlan::Const(v) => ("const", None, Some(v.clone()), Vec::new()),
                ValuePlan::Template(t) => ("template", Some(t.source.clone()), None, Vec::new()),
                ValuePlan::Nested(inner) => (
                    "nested",
                    None,
                    None,
                    fields(inner, flow, &format!("{path}.")),
                ),
                ValuePlan::Ref(r) => ("ref", Some(r.describe()), None, Vec::new()),
            };
            FieldView {
                target: f.target.clone(),
                kind,
                source,
                value,
                fields: nested,
                ty: f.ty.to_string(),
                redacted,
                stamp,
                randomized,
                at: f.location.to_string(),
            }
        })
        .collect()
}
