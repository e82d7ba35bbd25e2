//! Named values (`let:`) of a flow: names checked, dependencies ordered (cycles are errors),
//! each value type-checked in the scope of the values it reads.

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::{Code, Diagnostic};
use crate::expr::{Expr, Scope, TextRange};
use crate::plan::{ExprAt, FlowStep, LetPlan, PolicyPlan};
use crate::span::Span;
use crate::syntax::doc::{FlowDoc, Spanned};
use crate::types::Type;

use super::Context;
use super::exprs::leaks_secret_with;
use super::flow::BINDINGS;

/// What the flow's other expressions need from its named values.
pub(super) struct Lets {
    /// Every binding of the flow's expressions, in slot order: `policy`, `secrets`, `record`,
    /// then one per named value (declared type, else the inferred one).
    pub bindings: Vec<(String, Type)>,
    pub plans: Vec<LetPlan>,
    pub steps: Vec<FlowStep>,
    /// Named values that carry a secret unsealed.
    pub leaky: BTreeSet<String>,
    /// Named values computed from the engine's clock alone.
    pub clock_only: BTreeSet<String>,
    /// Named values that differ from evaluation to evaluation (a ciphertext).
    pub randomized: BTreeSet<String>,
    /// Names read by the named values themselves.
    pub read: BTreeSet<String>,
}

/// A dependency: the node read, and where (in the file) the reader names it.
type Edge = (usize, Span);

impl Context<'_> {
    /// Checks and compiles `doc.lets`. `policy` is the flow's table; `policy_type` the type
    /// of `policy` in expressions.
    pub(super) fn compile_lets(
        &mut self,
        doc: &FlowDoc,
        schema: Option<&BTreeMap<String, Type>>,
        policy: Option<&PolicyPlan>,
        policy_type: Type,
        secret_names: &[&str],
    ) -> Lets {
        let names: Vec<&str> = doc.lets.iter().map(|l| l.name.value.as_str()).collect();
        let mut clashing = BTreeSet::new();
        for l in &doc.lets {
            let name = l.name.value.as_str();
            let clash = if BINDINGS.contains(&name) {
                Some(format!(
                    "`{name}` is already bound in every flow expression"
                ))
            } else if schema.is_some_and(|s| s.contains_key(name)) {
                Some(format!(
                    "`{name}` is a field of record `{}`; the named value would hide it",
                    doc.source.record.as_ref().map_or("", |r| r.value.as_str())
                ))
            } else {
                None
            };
            if let Some(message) = clash {
                clashing.insert(name);
                self.report(
                    Diagnostic::new(Code::LetShadows, l.name.span, message)
                        .with_label("name already taken")
                        .with_help(format!(
                            "rename the value, e.g. `{name}_value`; a record field stays \
                             readable as `record.{name}`"
                        )),
                );
            }
        }

        // A clashing name is already an error; its uses are not also reported as cycles.
        let index_of = |n: &str| -> Option<usize> {
            if clashing.contains(n) {
                return None;
            }
            names.iter().position(|m| *m == n)
        };

        let asts: Vec<Option<Expr>> = doc.lets.iter().map(|l| self.parse_expr(&l.expr)).collect();

        // Nodes: the named values by index, then the policy, then the filter.
        let n = doc.lets.len();
        let (policy_node, filter_node) = (n, n + 1);
        let mut edges: Vec<Vec<Edge>> = vec![Vec::new(); n + 2];
        let mut read = BTreeSet::new();
        let has_policy = doc.policy.is_some();
        let edges_of = |ast: &Expr, text: &Spanned<String>, out: &mut Vec<Edge>, cx: &Self| {
            ast.for_each_name(|name, range| {
                let target = match index_of(name) {
                    Some(j) => j,
                    None if name == BINDINGS[0] && has_policy => policy_node,
                    None => return,
                };
                out.push((target, inner(cx, text, range)));
            });
        };
        for (i, ast) in asts.iter().enumerate() {
            if let Some(ast) = ast {
                ast.for_each_name(|name, _| {
                    read.insert(name.to_string());
                });
                let mut out = Vec::new();
                edges_of(ast, &doc.lets[i].expr, &mut out, self);
                edges[i] = out;
            }
        }
        if let Some(p) = policy {
            let mut out = Vec::new();
            for input in &p.inputs {
                if let Ok(ast) = crate::expr::parse(&input.source) {
                    let text = Spanned::new(input.source.clone(), input.span);
                    edges_of(&ast, &text, &mut out, self);
                }
            }
            // The table cannot read itself.
            out.retain(|(t, _)| *t != policy_node);
            edges[policy_node] = out;
        }
        if let Some(text) = &doc.source.filter
            && let Ok(ast) = crate::expr::parse(&text.value)
        {
            let mut out = Vec::new();
            edges_of(&ast, text, &mut out, self);
            edges[filter_node] = out;
        }

        let label = |node: usize| -> String {
            match node {
                i if i < n => format!("`{}`", names[i]),
                i if i == policy_node => format!(
                    "policy `{}`",
                    doc.policy.as_ref().map_or("", |p| p.value.as_str())
                ),
                _ => "source.filter".to_string(),
            }
        };
        let mut order = Vec::with_capacity(n + 2);
        let mut state = vec![Mark::New; n + 2];
        let mut stack = Vec::new();
        let mut cycles = Vec::new();
        let mut roots = Vec::new();
        if doc.source.filter.is_some() {
            roots.push(filter_node);
        }
        if has_policy {
            roots.push(policy_node);
        }
        roots.extend(0..n);
        for root in roots {
            visit(
                root,
                &edges,
                &mut state,
                &mut stack,
                &mut order,
                &mut cycles,
            );
        }
        for (mut path, at) in cycles {
            // Start at the reader of the closing reference, where the error points.
            path.rotate_right(1);
            let Some(&first) = path.first() else { continue };
            let chain: Vec<String> = path.iter().chain([&first]).map(|&i| label(i)).collect();
            self.report(
                Diagnostic::new(
                    Code::LetCycle,
                    at,
                    format!("{} depends on itself: {}", label(first), chain.join(" → ")),
                )
                .with_label("this reference closes the cycle")
                .with_help(
                    "a named value cannot read itself, directly or through other values or the \
                     policy; compute one of them from record fields only",
                ),
            );
        }

        // Types, in dependency order: each value sees the types of the ones it reads.
        let mut bindings: Vec<(String, Type)> = vec![
            (BINDINGS[0].to_string(), policy_type),
            (BINDINGS[1].to_string(), Type::Object),
            (BINDINGS[2].to_string(), Type::Object),
        ];
        bindings.extend(names.iter().map(|n| (n.to_string(), Type::Any)));
        let mut compiled: Vec<Option<(ExprAt, Option<Type>)>> = (0..n).map(|_| None).collect();
        let mut leaky = BTreeSet::new();
        let mut clock_only = BTreeSet::new();
        let mut randomized = BTreeSet::new();
        for &node in &order {
            let Some(Some(ast)) = asts.get(node) else {
                continue;
            };
            let decl = &doc.lets[node];
            self.check_secret_names(ast, &decl.expr, secret_names);
            if leaks_secret_with(ast, &|name| leaky.contains(name)) {
                leaky.insert(decl.name.value.clone());
            }
            if super::exprs::clock_only(ast, self.registry, &|name| clock_only.contains(name)) {
                clock_only.insert(decl.name.value.clone());
            }
            if super::exprs::randomized(ast, self.registry, &|name| randomized.contains(name)) {
                randomized.insert(decl.name.value.clone());
            }
            // Calls in this and later expressions of the flow withhold what they read.
            self.leaky.clone_from(&leaky);
            let scope = Scope {
                registry: self.registry,
                record: schema,
                bindings: &bindings,
            };
            let Some(at) = self.compile_ast(ast, &decl.expr, &scope) else {
                continue;
            };
            let (ty, check) = match &decl.ty {
                None => (at.ty.clone(), None),
                Some(declared) => {
                    if !at.ty.fits_ignoring_null(&declared.value) {
                        self.report(
                            Diagnostic::new(
                                Code::LetType,
                                decl.expr.span,
                                format!(
                                    "`{}` is declared `{}` but its value is `{}`",
                                    decl.name.value, decl.ty_text, at.ty
                                ),
                            )
                            .with_label(format!("this is `{}`", at.ty))
                            .with_related(declared.span, "type declared here")
                            .with_help(format!(
                                "convert the value, or declare the type it has: `type: {}`",
                                at.ty
                            )),
                        );
                    }
                    // Only values the static type does not prove are checked per record.
                    let proven = declared.value == Type::Any || at.ty == declared.value;
                    (
                        declared.value.clone(),
                        (!proven).then(|| declared.value.clone()),
                    )
                }
            };
            bindings[crate::plan::LET_SLOT_BASE + node].1 = ty;
            compiled[node] = Some((at, check));
        }

        let plans: Vec<LetPlan> = compiled
            .into_iter()
            .zip(&doc.lets)
            .filter_map(|(c, decl)| {
                let (expr, check) = c?;
                Some(LetPlan {
                    name: decl.name.value.clone(),
                    expr,
                    check,
                    declared: decl.ty_text.clone(),
                })
            })
            .collect();
        let steps = order
            .into_iter()
            .map(|node| match node {
                i if i < n => FlowStep::Let(i),
                i if i == policy_node => FlowStep::Policy,
                _ => FlowStep::Filter,
            })
            .collect();
        Lets {
            bindings,
            plans,
            steps,
            leaky,
            clock_only,
            randomized,
            read,
        }
    }

    /// Warns about named values nothing reads.
    pub(super) fn report_unused_lets(&mut self, doc: &FlowDoc, read: &BTreeSet<String>) {
        for l in &doc.lets {
            if !read.contains(&l.name.value) {
                self.report(
                    Diagnostic::new(
                        Code::UnusedLet,
                        l.name.span,
                        format!("the named value `{}` is never used", l.name.value),
                    )
                    .with_label("never read")
                    .with_help(format!(
                        "read it in the mapping, key, filter or a template as `{}`, or remove it",
                        l.name.value
                    )),
                );
            }
        }
    }
}

fn inner(cx: &Context<'_>, text: &Spanned<String>, range: TextRange) -> Span {
    text.span.inner(
        cx.sources,
        &text.value,
        range.start as usize,
        range.end as usize,
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    New,
    Open,
    Done,
}

/// Depth-first, dependencies first. A reference back to a node still open is a cycle: the
/// nodes from it to here, and the span of the reference.
fn visit(
    node: usize,
    edges: &[Vec<Edge>],
    state: &mut [Mark],
    stack: &mut Vec<usize>,
    order: &mut Vec<usize>,
    cycles: &mut Vec<(Vec<usize>, Span)>,
) {
    if state[node] != Mark::New {
        return;
    }
    state[node] = Mark::Open;
    stack.push(node);
    for &(dep, at) in &edges[node] {
        match state[dep] {
            Mark::New => visit(dep, edges, state, stack, order, cycles),
            Mark::Open => {
                let from = stack.iter().position(|&s| s == dep).unwrap_or(0);
                cycles.push((stack[from..].to_vec(), at));
            }
            Mark::Done => {}
        }
    }
    stack.pop();
    state[node] = Mark::Done;
    order.push(node);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order_of(edges: Vec<Vec<usize>>) -> (Vec<usize>, usize) {
        let span = Span::default();
        let edges: Vec<Vec<Edge>> = edges
            .into_iter()
            .map(|e| e.into_iter().map(|d| (d, span)).collect())
            .collect();
        let mut state = vec![Mark::New; edges.len()];
        let (mut stack, mut order, mut cycles) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..edges.len() {
            visit(i, &edges, &mut state, &mut stack, &mut order, &mut cycles);
        }
        (order, cycles.len())
    }

    #[test]
    fn dependencies_come_first_whatever_the_declaration_order() {
        // 0 reads 2, 2 reads 1.
        assert_eq!(order_of(vec![vec![2], vec![], vec![1]]), (vec![1, 2, 0], 0));
    }

    #[test]
    fn cycles_are_found() {
        assert_eq!(order_of(vec![vec![1], vec![0]]).1, 1);
        assert_eq!(order_of(vec![vec![0]]).1, 1);
        assert_eq!(order_of(vec![vec![1], vec![2], vec![0]]).1, 1);
    }
}
