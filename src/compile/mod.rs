//! Compiling a loaded rule set into a [`Plan`]: names resolved across files, every expression
//! parsed and type-checked, policy tables analysed. All problems are collected as diagnostics;
//! compilation never stops at the first one.

mod endpoint;
mod exprs;
mod extend;
mod flow;
mod lets;
mod policy;
mod policy_outputs;
mod provider;
mod refs;
mod sql;
mod table_lint;
mod template;
mod tests_lint;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::connect::fields::FieldCache;
use crate::diagnostic::{Code, Diagnostic};
use crate::functions::Registry;
use crate::plan::{Plan, PlanInner};
use crate::span::{SourceMap, Span};
use crate::syntax::doc::{Document, RecordDoc, TestSubject};
use crate::syntax::{Incomplete, Loaded, RuleSet};
use crate::types::Type;

/// The result of compiling: a plan when there were no errors, and every diagnostic.
#[derive(Debug)]
pub struct Compilation {
    pub plan: Option<Plan>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Compiles a rule set with the given functions.
pub fn compile(rules: &RuleSet, registry: &Registry) -> Compilation {
    compile_with(rules, registry, &[], None)
}

/// Compiles what was loaded. Names of documents the loader had to leave out are not reported
/// again as undefined: their problem is already among the load diagnostics.
pub fn compile_loaded(loaded: &Loaded, registry: &Registry) -> Compilation {
    compile_with(&loaded.rules, registry, &loaded.incomplete, None)
}

/// Like [`compile_loaded`], checking mappings into objects without declared fields against
/// the fields discovered earlier (`rulebridge fields`).
pub fn compile_loaded_with_fields(
    loaded: &Loaded,
    registry: &Registry,
    fields: &FieldCache,
) -> Compilation {
    compile_with(&loaded.rules, registry, &loaded.incomplete, Some(fields))
}

fn compile_with(
    rules: &RuleSet,
    registry: &Registry,
    incomplete: &[Incomplete],
    fields: Option<&FieldCache>,
) -> Compilation {
    let mut cx = Context {
        sources: &rules.sources,
        registry,
        incomplete,
        fields,
        diagnostics: Vec::new(),
        leaky: Default::default(),
        sql: BTreeMap::new(),
    };
    let plan = cx.run(rules);
    let has_errors = cx.diagnostics.iter().any(|d| d.is_error());
    crate::diagnostic::sort(&mut cx.diagnostics);
    Compilation {
        plan: if has_errors { None } else { Some(plan) },
        diagnostics: cx.diagnostics,
    }
}

/// Shared state of one compilation.
pub(crate) struct Context<'a> {
    pub sources: &'a SourceMap,
    pub registry: &'a Registry,
    pub incomplete: &'a [Incomplete],
    pub fields: Option<&'a FieldCache>,
    pub diagnostics: Vec<Diagnostic>,
    /// The named values of the flow being compiled that carry a secret unsealed: calls
    /// reading them withhold argument values in their errors.
    pub leaky: std::collections::BTreeSet<String>,
    /// SQL providers' tables, introspected once per compilation.
    sql: BTreeMap<String, sql::SqlLint>,
}

/// Documents of one kind by name (first definition wins; later ones are RB0006).
struct Index<'d, T> {
    by_name: BTreeMap<&'d str, &'d T>,
}

impl<'d, T> Index<'d, T> {
    fn names(&self) -> impl Iterator<Item = &'d str> + '_ {
        self.by_name.keys().copied()
    }
}

impl Context<'_> {
    pub fn report(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    /// "unknown X `name`" with a did-you-mean over `candidates`.
    pub fn unknown_reference<'c>(
        &mut self,
        what: &str,
        name: &str,
        span: Span,
        candidates: impl IntoIterator<Item = &'c str>,
    ) {
        if self
            .incomplete
            .iter()
            .any(|i| i.kind == what && i.name.value == name)
        {
            return;
        }
        let candidates: Vec<&str> = candidates.into_iter().collect();
        let help = crate::diagnostic::suggest(name, candidates.iter().copied()).or_else(|| {
            if candidates.is_empty() {
                Some(format!("no {what} is defined in this rule set"))
            } else {
                Some(format!("defined {what}s: {}", candidates.join(", ")))
            }
        });
        self.report(
            Diagnostic::new(
                Code::UnknownReference,
                span,
                format!("unknown {what} `{name}`"),
            )
            .with_label(format!("no {what} with this name"))
            .with_help_opt(help),
        );
    }

    fn index<'d, T>(
        &mut self,
        kind: &str,
        docs: impl Iterator<Item = (&'d crate::syntax::doc::Spanned<String>, &'d T)>,
    ) -> Index<'d, T> {
        let mut by_name: BTreeMap<&'d str, &'d T> = BTreeMap::new();
        let mut first_span: BTreeMap<&'d str, Span> = BTreeMap::new();
        for (name, doc) in docs {
            if let Some(first) = first_span.get(name.value.as_str()) {
                self.report(
                    Diagnostic::new(
                        Code::DuplicateName,
                        name.span,
                        format!("{kind} `{}` is defined twice", name.value),
                    )
                    .with_label("second definition")
                    .with_related(*first, "first defined here")
                    .with_help(format!(
                        "rename one of them; {kind} names are unique across the rule set"
                    )),
                );
                continue;
            }
            first_span.insert(&name.value, name.span);
            by_name.insert(&name.value, doc);
        }
        Index { by_name }
    }

    fn run(&mut self, rules: &RuleSet) -> Plan {
        let docs = &rules.documents;
        let records = self.index(
            "record",
            docs.iter().filter_map(|d| match d {
                Document::Record(r) => Some((&r.name, r)),
                _ => None,
            }),
        );
        let providers = self.index(
            "provider",
            docs.iter().filter_map(|d| match d {
                Document::Provider(p) => Some((&p.name, p)),
                _ => None,
            }),
        );
        // Extensions add their fields to the providers they extend.
        let extensions: Vec<&crate::syntax::doc::ExtensionDoc> = docs
            .iter()
            .filter_map(|d| match d {
                Document::Extension(e) => Some(e),
                _ => None,
            })
            .collect();
        let merged = self.merge_extensions(&providers.by_name, &extensions);
        let mut provider_docs = providers.by_name.clone();
        for (name, doc) in &merged {
            provider_docs.insert(name.as_str(), doc);
        }
        let policy_docs = self.index(
            "policy",
            docs.iter().filter_map(|d| match d {
                Document::Policy(p) => Some((&p.name, p)),
                _ => None,
            }),
        );
        let flow_docs = self.index(
            "flow",
            docs.iter().filter_map(|d| match d {
                Document::Flow(f) => Some((&f.name, f)),
                _ => None,
            }),
        );

        let schemas: BTreeMap<&str, BTreeMap<String, Type>> = records
            .by_name
            .iter()
            .map(|(name, doc)| (*name, record_schema(doc)))
            .collect();

        let mut provider_plans = BTreeMap::new();
        for (name, doc) in &provider_docs {
            if let Some(p) = self.compile_provider(doc) {
                provider_plans.insert(name.to_string(), Arc::new(p));
            }
        }

        let mut policies = BTreeMap::new();
        for (name, doc) in &policy_docs.by_name {
            if let Some(p) = self.compile_policy(doc) {
                policies.insert(name.to_string(), Arc::new(p));
            }
        }

        let mut flows = BTreeMap::new();
        for (name, doc) in &flow_docs.by_name {
            let resolved = flow::Resolved {
                schemas: &schemas,
                records: &records.by_name,
                providers: &provider_docs,
                policies: &policies,
                policy_names: policy_docs.names().collect(),
            };
            if let Some(f) = self.compile_flow(doc, &resolved) {
                flows.insert(name.to_string(), Arc::new(f));
            }
        }
        self.check_flow_dependencies(&flow_docs.by_name);

        for doc in flow_docs.by_name.values() {
            self.check_test_expectations(
                tests_lint::Subject::Flow(doc),
                &doc.tests,
                &policy_docs.by_name,
            );
        }
        for doc in policy_docs.by_name.values() {
            self.check_test_expectations(
                tests_lint::Subject::Policy(doc),
                &doc.tests,
                &policy_docs.by_name,
            );
        }

        let mut test_files = Vec::new();
        for d in docs {
            if let Document::Tests(t) = d {
                let subject = match &t.subject {
                    TestSubject::Flow(n) => flow_docs
                        .by_name
                        .get(n.value.as_str())
                        .map(|f| tests_lint::Subject::Flow(f)),
                    TestSubject::Policy(n) => policy_docs
                        .by_name
                        .get(n.value.as_str())
                        .map(|p| tests_lint::Subject::Policy(p)),
                };
                if let Some(subject) = subject {
                    self.check_test_expectations(subject, &t.cases, &policy_docs.by_name);
                }
                match &t.subject {
                    TestSubject::Flow(n) if !flow_docs.by_name.contains_key(n.value.as_str()) => {
                        let names: Vec<&str> = flow_docs.names().collect();
                        self.unknown_test_subject("flow", n, names);
                    }
                    TestSubject::Policy(n)
                        if !policy_docs.by_name.contains_key(n.value.as_str()) =>
                    {
                        let names: Vec<&str> = policy_docs.names().collect();
                        self.unknown_test_subject("policy", n, names);
                    }
                    _ => test_files.push(t.clone()),
                }
            }
        }

        let endpoint_docs: Vec<&crate::syntax::doc::EndpointDoc> = docs
            .iter()
            .filter_map(|d| match d {
                Document::Endpoint(e) => Some(e),
                _ => None,
            })
            .collect();
        let flow_names: Vec<&str> = flow_docs.names().collect();
        let endpoints = self
            .compile_endpoints(&endpoint_docs, &flow_names)
            .into_iter()
            .map(Arc::new)
            .collect();

        Plan {
            inner: Arc::new(PlanInner {
                sources: self.sources.clone(),
                flows,
                policies,
                providers: provider_plans,
                test_files,
                endpoints,
            }),
        }
    }

    fn unknown_test_subject(
        &mut self,
        what: &str,
        name: &crate::syntax::doc::Spanned<String>,
        candidates: Vec<&str>,
    ) {
        if self
            .incomplete
            .iter()
            .any(|i| i.kind == what && i.name.value == name.value)
        {
            return;
        }
        let help = crate::diagnostic::suggest(&name.value, candidates.iter().copied())
            .unwrap_or_else(|| {
                if candidates.is_empty() {
                    format!(
                        "no {what} is defined in this rule set; load the file that defines it too"
                    )
                } else {
                    format!("defined {what}s: {}", candidates.join(", "))
                }
            });
        self.report(
            Diagnostic::new(
                Code::TestUnknownFlow,
                name.span,
                format!("tests refer to unknown {what} `{}`", name.value),
            )
            .with_label(format!("no {what} with this name"))
            .with_help(help),
        );
    }
}

fn record_schema(doc: &RecordDoc) -> BTreeMap<String, Type> {
    doc.fields
        .iter()
        .map(|f| {
            let ty = if f.required {
                f.ty.value.clone()
            } else {
                Type::optional(f.ty.value.clone())
            };
            (f.name.value.clone(), ty)
        })
        .collect()
}
