//! Compiling references between objects (`{ ref: client, where: { external_id: EXPR } }`)
//! and checking what multi-flow runs rely on: the referenced object exists, has a search
//! operation that looks records up by the named fields, the key values are scalars, and
//! flows do not depend on each other in a cycle.

use std::collections::BTreeMap;

use crate::diagnostic::{Code, Diagnostic, suggest};
use crate::expr::Scope;
use crate::plan::order::{FlowNode, edges, find_cycle};
use crate::plan::{RefKeyPlan, RefPlan};
use crate::span::Span;
use crate::syntax::doc::{
    FlowDoc, Mapping, MappingValue, ObjectDoc, Operation, ProviderDoc, RefDoc, RefKey, Spanned,
};
use crate::types::Type;

use super::Context;

/// What a search operation's templates read, for checking the fields it is asked to find by.
struct SearchReads<'a> {
    /// It reads `match` (every field of a compound lookup by name).
    matches: bool,
    /// It reads `field` (the name of the field looked up).
    field: bool,
    /// The query parameter whose value is exactly `{{ key }}`, when there is one: the field
    /// the operation looks records up by.
    key_param: Option<&'a str>,
}

fn search_reads(op: &Operation) -> SearchReads<'_> {
    let mut texts: Vec<&str> = vec![op.path.value.as_str()];
    texts.extend(op.query.iter().map(|(_, v)| v.value.as_str()));
    texts.extend(op.headers.iter().map(|(_, v)| v.value.as_str()));
    let body = op
        .body
        .as_ref()
        .map(|b| b.value.to_string())
        .unwrap_or_default();
    texts.push(&body);
    let reads = |name: &str| texts.iter().any(|t| template_reads(t, name));
    let key_param = op
        .query
        .iter()
        .find(|(_, v)| {
            let t = v.value.trim();
            t.strip_prefix("{{")
                .and_then(|t| t.strip_suffix("}}"))
                .is_some_and(|inner| inner.trim() == "key")
        })
        .map(|(k, _)| k.value.as_str());
    SearchReads {
        matches: reads("match"),
        field: reads("field"),
        key_param,
    }
}

/// Whether a template's `{{ .. }}` or `{% .. %}` parts mention the name `name`.
fn template_reads(text: &str, name: &str) -> bool {
    let mut rest = text;
    while let Some(start) = rest.find(['{']) {
        let after = &rest[start + 1..];
        let (open, close) = match after.chars().next() {
            Some('{') => ("{{", "}}"),
            Some('%') => ("{%", "%}"),
            _ => {
                rest = after;
                continue;
            }
        };
        let body = &rest[start + open.len()..];
        let end = body.find(close).unwrap_or(body.len());
        let inner = &body[..end];
        let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut from = 0;
        while let Some(i) = inner[from..].find(name) {
            let at = from + i;
            let before = inner[..at].chars().next_back();
            let after = inner[at + name.len()..].chars().next();
            if !before.is_some_and(|c| is_ident(c) || c == '.') && !after.is_some_and(is_ident) {
                return true;
            }
            from = at + name.len();
        }
        rest = &body[end..];
    }
    false
}

/// Objects of a provider by name.
fn object<'d>(provider: &'d ProviderDoc, name: &str) -> Option<&'d ObjectDoc> {
    provider.objects.iter().find(|o| o.name.value == name)
}

impl Context<'_> {
    /// Compiles a reference; every object it (and the references inside it) reads is pushed
    /// onto `objects`, outermost first. `None` when it has errors (all reported).
    pub(super) fn compile_ref(
        &mut self,
        r: &RefDoc,
        scope: &Scope<'_>,
        provider: Option<&ProviderDoc>,
        read: &mut std::collections::BTreeSet<String>,
        objects: &mut Vec<String>,
    ) -> Option<RefPlan> {
        let errors_before = self.error_count();
        objects.push(r.object.value.clone());
        if let Some(p) = provider {
            self.check_ref_target(r, p);
        }
        let mut by = Vec::with_capacity(r.by.len());
        for (field, key) in &r.by {
            match key {
                RefKey::Expr(text) => {
                    if let Ok(ast) = crate::expr::parse(&text.value) {
                        ast.for_each_name(|n, _| {
                            read.insert(n.to_string());
                        });
                    }
                    let Some(at) = self.compile_expr(text, scope) else {
                        continue;
                    };
                    let ty = at.ty.non_null().clone();
                    if !matches!(
                        ty,
                        Type::Any | Type::String | Type::Number | Type::Bool | Type::Null
                    ) {
                        self.report(
                            Diagnostic::new(
                                Code::RefKeyType,
                                text.span,
                                format!(
                                    "the value `{}` is looked up by is `{}`, not a string, number or boolean",
                                    field.value, at.ty
                                ),
                            )
                            .with_label(format!("this is `{}`", at.ty))
                            .with_help("look records up by one scalar value, e.g. `external_id: \"billing-${id}\"`"),
                        );
                        continue;
                    }
                    by.push((field.value.clone(), RefKeyPlan::Expr(at)));
                }
                RefKey::Ref(inner) => {
                    if let Some(p) = self.compile_ref(inner, scope, provider, read, objects) {
                        by.push((field.value.clone(), RefKeyPlan::Ref(Box::new(p))));
                    }
                }
            }
        }
        if self.error_count() > errors_before {
            return None;
        }
        Some(RefPlan {
            object: r.object.value.clone(),
            by,
        })
    }

    /// The referenced object exists, can be searched, and is searched by the named fields.
    fn check_ref_target(&mut self, r: &RefDoc, provider: &ProviderDoc) {
        let Some(obj) = object(provider, &r.object.value) else {
            let names: Vec<&str> = provider
                .objects
                .iter()
                .map(|o| o.name.value.as_str())
                .collect();
            self.report(
                Diagnostic::new(
                    Code::UnknownRefObject,
                    r.object.span,
                    format!(
                        "provider `{}` has no object `{}` to refer to",
                        provider.name.value, r.object.value
                    ),
                )
                .with_label("unknown object")
                .with_help(
                    suggest(&r.object.value, names.iter().copied()).unwrap_or_else(|| {
                        format!("objects of `{}`: {}", provider.name.value, names.join(", "))
                    }),
                ),
            );
            return;
        };
        let Some(search) = obj.operations.iter().find(|o| o.name.value == "search") else {
            self.report(
                Diagnostic::new(
                    Code::RefWithoutSearch,
                    r.object.span,
                    format!(
                        "object `{}` of provider `{}` has no `search` operation, so its records cannot be found by a reference",
                        r.object.value, provider.name.value
                    ),
                )
                .with_label("cannot be looked up")
                .with_related(obj.name.span, "object declared here")
                .with_help(format!(
                    "add `search: {{ method: GET, path: ..., query: {{ {}: \"{{{{ key }}}}\" }} }}` to `{}`'s operations",
                    r.by.first().map(|(f, _)| f.value.as_str()).unwrap_or("FIELD"),
                    r.object.value
                )),
            );
            return;
        };
        let errors_before = self.error_count();
        if !obj.fields.is_empty() {
            for (field, _) in &r.by {
                if field.value != "id" && !obj.fields.iter().any(|f| f.name.value == field.value) {
                    self.report(
                        Diagnostic::new(
                            Code::UnknownRefField,
                            field.span,
                            format!(
                                "`{}` is not a field of `{}.{}`",
                                field.value, provider.name.value, r.object.value
                            ),
                        )
                        .with_label("not declared by the referenced object")
                        .with_help(
                            suggest(
                                &field.value,
                                obj.fields.iter().map(|f| f.name.value.as_str()),
                            )
                            .unwrap_or_else(|| {
                                format!(
                                    "declare `{}` in `{}`'s fields",
                                    field.value, r.object.value
                                )
                            }),
                        ),
                    );
                }
            }
        }
        if self.error_count() > errors_before {
            // An unknown field is the problem; what the search reads follows from it.
            return;
        }
        let fields: Vec<&Spanned<String>> = r.by.iter().map(|(f, _)| f).collect();
        self.check_search_fields(&fields, search, &r.object.value, "a reference");
    }

    /// A search asked to find records by `fields` must read them: one field through the
    /// parameter holding `{{ key }}` (or `field`), several through `match`.
    pub(super) fn check_search_fields(
        &mut self,
        fields: &[&Spanned<String>],
        search: &Operation,
        object: &str,
        what: &str,
    ) {
        let reads = search_reads(search);
        if reads.matches || reads.field {
            return;
        }
        let Some(first) = fields.first() else {
            return;
        };
        if fields.len() > 1 {
            let names: Vec<&str> = fields.iter().map(|f| f.value.as_str()).collect();
            self.report(
                Diagnostic::new(
                    Code::RefSearchMismatch,
                    span_of(fields),
                    format!(
                        "{what} finds `{object}` records by {}, but its search operation reads only one value (`key`)",
                        names.join(" and ")
                    ),
                )
                .with_label("several fields")
                .with_related(search.name.span, "search operation here")
                .with_help(format!(
                    "make the search read every field, e.g. `query: {{ {} }}`",
                    names
                        .iter()
                        .map(|n| format!("{n}: \"{{{{ match.{n} }}}}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
            return;
        }
        if let Some(param) = reads.key_param
            && param != first.value
        {
            self.report(
                Diagnostic::new(
                    Code::RefSearchMismatch,
                    first.span,
                    format!(
                        "the search of `{object}` looks records up by `{param}`, not `{}`",
                        first.value
                    ),
                )
                .with_label(format!("searched by `{param}`"))
                .with_related(search.name.span, "search operation here")
                .with_help(format!(
                    "find `{object}` records by `{param}`, or make the search read `{{{{ field }}}}`"
                )),
            );
        }
    }

    /// Every `depends_on` names a flow, and no flows depend on each other in a cycle.
    pub(super) fn check_flow_dependencies(&mut self, flows: &BTreeMap<&str, &FlowDoc>) {
        let docs: Vec<&FlowDoc> = flows.values().copied().collect();
        for doc in &docs {
            for d in &doc.depends_on {
                if !flows.contains_key(d.value.as_str()) {
                    self.report_unknown_dependency(d, flows.keys().copied());
                }
            }
        }
        let objects: Vec<Vec<String>> = docs.iter().map(|d| ref_objects(&d.mapping)).collect();
        let nodes: Vec<FlowNode<'_>> = docs
            .iter()
            .zip(&objects)
            .map(|(d, refs)| FlowNode {
                name: &d.name.value,
                provider: &d.target.provider.value,
                object: &d.target.object.value,
                refs: refs.iter().map(String::as_str).collect(),
                depends_on: d.depends_on.iter().map(|s| s.value.as_str()).collect(),
            })
            .collect();
        let Some(cycle) = find_cycle(&edges(&nodes)) else {
            return;
        };
        let names: Vec<&str> = cycle.iter().map(|&i| nodes[i].name).collect();
        let first = docs[cycle[0]];
        let next = nodes[cycle[1]].name;
        // Point at the declaration that closes the cycle when there is one.
        let span = first
            .depends_on
            .iter()
            .find(|d| d.value == next)
            .map(|d| d.span)
            .unwrap_or(first.name.span);
        let mut d = Diagnostic::new(
            Code::FlowCycle,
            span,
            format!(
                "flows depend on each other in a cycle: {}",
                names.join(" → ")
            ),
        )
        .with_label("closes the cycle")
        .with_help(
            "a flow runs after the flows it declares in `depends_on` and after those writing \
             the objects it refers to; remove one of these dependencies",
        );
        for &i in &cycle[1..cycle.len() - 1] {
            d = d.with_related(
                docs[i].name.span,
                format!("`{}` is part of the cycle", nodes[i].name),
            );
        }
        self.report(d);
    }

    fn report_unknown_dependency<'c>(
        &mut self,
        d: &Spanned<String>,
        flows: impl Iterator<Item = &'c str>,
    ) {
        if self
            .incomplete
            .iter()
            .any(|i| i.kind == "flow" && i.name.value == d.value)
        {
            return;
        }
        let names: Vec<&str> = flows.collect();
        self.report(
            Diagnostic::new(
                Code::UnknownDependency,
                d.span,
                format!("`depends_on` names `{}`, which is not a flow", d.value),
            )
            .with_label("unknown flow")
            .with_help(
                suggest(&d.value, names.iter().copied())
                    .unwrap_or_else(|| format!("flows: {}", names.join(", "))),
            ),
        );
    }
}

/// Every object the references of a mapping read.
fn ref_objects(m: &Mapping) -> Vec<String> {
    fn walk_ref(r: &RefDoc, out: &mut Vec<String>) {
        out.push(r.object.value.clone());
        for (_, k) in &r.by {
            if let RefKey::Ref(inner) = k {
                walk_ref(inner, out);
            }
        }
    }
    let mut out = Vec::new();
    for e in &m.entries {
        match &e.value {
            MappingValue::Ref(r) => walk_ref(r, &mut out),
            MappingValue::Nested(inner, _) => out.extend(ref_objects(inner)),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

/// From the first span to the last, when they are in one file.
fn span_of(fields: &[&Spanned<String>]) -> Span {
    match (fields.first(), fields.last()) {
        (Some(a), Some(b)) if a.span.file == b.span.file && b.span.end >= a.span.start => Span {
            end: b.span.end,
            ..a.span
        },
        (Some(a), _) => a.span,
        _ => Span::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::template_reads;

    #[test]
    fn template_reads_finds_names_inside_tags_only() {
        assert!(template_reads("{{ match.title }}", "match"));
        assert!(template_reads("/x/{{ key | urlencode }}", "key"));
        assert!(!template_reads("/x/{{ keys }}", "key"));
        assert!(!template_reads("match {{ payload.match }}", "match"));
        assert!(template_reads("{% if field %}x{% endif %}", "field"));
    }
}
