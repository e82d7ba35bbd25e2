//! `policy.NAME` in a flow must name an output of the flow's policy table: a misspelt output
//! would read null at run time and, with `omit_nulls`, the field would silently disappear.

use crate::diagnostic::{Code, Diagnostic, suggest};
use crate::expr::{Expr, ExprKind, TextRange};
use crate::plan::PolicyPlan;
use crate::syntax::doc::{FlowDoc, Mapping, MappingValue, Spanned};

use super::Context;
use super::exprs::walk;

impl Context<'_> {
    /// Checks every `policy.NAME` read by the flow's filter, key, expressions and templates.
    pub(super) fn check_policy_outputs(&mut self, doc: &FlowDoc, policy: &PolicyPlan) {
        let exprs = doc.source.filter.iter().chain(doc.key.iter());
        for text in exprs {
            self.check_expr_outputs(text, policy);
        }
        self.check_mapping_outputs(&doc.mapping, policy);
    }

    fn check_mapping_outputs(&mut self, mapping: &Mapping, policy: &PolicyPlan) {
        for entry in &mapping.entries {
            match &entry.value {
                MappingValue::Expr(text) => self.check_expr_outputs(text, policy),
                MappingValue::Template(text) => {
                    for (name, start, end) in template_policy_uses(&text.value) {
                        self.unknown_output(text, name, start, end, policy);
                    }
                }
                MappingValue::Nested(inner, _) => self.check_mapping_outputs(inner, policy),
                MappingValue::Ref(r) => self.check_ref_outputs(r, policy),
                MappingValue::Const(_) => {}
            }
        }
    }

    fn check_ref_outputs(&mut self, r: &crate::syntax::doc::RefDoc, policy: &PolicyPlan) {
        for (_, key) in &r.by {
            match key {
                crate::syntax::doc::RefKey::Expr(text) => self.check_expr_outputs(text, policy),
                crate::syntax::doc::RefKey::Ref(inner) => self.check_ref_outputs(inner, policy),
            }
        }
    }

    fn check_expr_outputs(&mut self, text: &Spanned<String>, policy: &PolicyPlan) {
        // Syntax errors are reported where the expression is compiled.
        let Ok(ast) = crate::expr::parse(&text.value) else {
            return;
        };
        for (name, range) in policy_uses(&ast) {
            let end = range.end as usize;
            self.unknown_output(text, name, end.saturating_sub(name.len()), end, policy);
        }
    }

    fn unknown_output(
        &mut self,
        text: &Spanned<String>,
        name: &str,
        start: usize,
        end: usize,
        policy: &PolicyPlan,
    ) {
        if policy.outputs.iter().any(|(o, _)| o == name) {
            return;
        }
        let outputs = || policy.outputs.iter().map(|(o, _)| o.as_str());
        let help = suggest(name, outputs()).unwrap_or_else(|| {
            let all: Vec<&str> = outputs().collect();
            format!("the outputs of `{}` are: {}", policy.name, all.join(", "))
        });
        let span = text.span.inner(self.sources, &text.value, start, end);
        self.report(
            Diagnostic::new(
                Code::UnknownPolicyOutput,
                span,
                format!("policy `{}` has no output `{name}`", policy.name),
            )
            .with_label("not an output of the policy table")
            .with_related(policy.doc_span, "policy defined here")
            .with_help(help),
        );
    }
}

/// `policy.NAME` (hit policy `first`/`unique`) and `policy[i].NAME` (`collect`), with the
/// range of the whole access; the name ends it.
fn policy_uses(e: &Expr) -> Vec<(&str, TextRange)> {
    let mut out = Vec::new();
    walk(e, &mut |n| {
        if let ExprKind::Field(target, field) = &n.kind {
            let on_policy = match &target.kind {
                ExprKind::Name(root) => root == "policy",
                ExprKind::Index(inner, _) => {
                    matches!(&inner.kind, ExprKind::Name(root) if root == "policy")
                }
                _ => false,
            };
            if on_policy {
                out.push((field.as_str(), n.range));
            }
        }
    });
    out
}

/// `policy.NAME` inside `{{ … }}` and `{% … %}` of a template: the name and its byte range.
fn template_policy_uses(text: &str) -> Vec<(&str, usize, usize)> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(open) = text[rest..].find(['{']).map(|i| rest + i) {
        let close = match text.get(open..open + 2) {
            Some("{{") => "}}",
            Some("{%") => "%}",
            _ => {
                rest = open + 1;
                continue;
            }
        };
        let body_start = open + 2;
        let body_end = text[body_start..]
            .find(close)
            .map_or(text.len(), |i| body_start + i);
        let body = &text[body_start..body_end];
        let mut from = 0;
        while let Some(i) = body[from..].find("policy.").map(|i| from + i) {
            let standalone = body[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
            let name_start = i + "policy.".len();
            let name_len = body[name_start..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(body.len() - name_start);
            if standalone && name_len > 0 {
                let start = body_start + name_start;
                out.push((&text[start..start + name_len], start, start + name_len));
            }
            from = name_start;
        }
        rest = body_end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_policy_reads_in_templates() {
        let t = "Team {{ policy.team }} / {% if policy.vip %}VIP{% endif %} mypolicy.x policy.y {{ xpolicy.z }}";
        let uses: Vec<&str> = template_policy_uses(t).into_iter().map(|u| u.0).collect();
        assert_eq!(uses, ["team", "vip"]);
        let (name, start, end) = template_policy_uses("{{policy.a}}")[0];
        assert_eq!((name, start, end), ("a", 9, 10));
    }

    #[test]
    fn finds_policy_reads_in_expressions() {
        let ast = crate::expr::parse("policy.tier ?? policy[0].team ?? record.policy.x")
            .unwrap_or_else(|e| panic!("{e:?}"));
        let names: Vec<&str> = policy_uses(&ast).into_iter().map(|u| u.0).collect();
        assert_eq!(names, ["tier", "team"]);
    }
}
