//! The execution plan: what `compile` produces and `exec` runs.
//!
//! A [`Plan`] is immutable, `Send + Sync` and cheap to clone (an `Arc` inside): build it once,
//! share it between threads or requests. Everything in it is already parsed, resolved and
//! type-checked; secrets appear only as references, never as values.

mod display;
pub mod endpoint;
pub(crate) mod member_path;
pub(crate) mod order;
pub(crate) mod provider;
pub mod template;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::expr::{Compiled, CompiledTest};
use crate::span::{Location, SourceMap, Span};
use crate::syntax::doc::{HitPolicy, OnMatch, OnMultiple, Repeats, TestCase, TestsDoc};
use crate::types::Type;

pub use display::PlanView;
pub use order::OrderError;
pub use provider::{ConfigField, ConnectPlan, ObjectPlan, OperationPlan, ProviderPlan};

/// A compiled rule set.
#[derive(Clone)]
pub struct Plan {
    pub(crate) inner: Arc<PlanInner>,
}

pub(crate) struct PlanInner {
    pub sources: SourceMap,
    pub flows: BTreeMap<String, Arc<FlowPlan>>,
    pub policies: BTreeMap<String, Arc<PolicyPlan>>,
    pub providers: BTreeMap<String, Arc<ProviderPlan>>,
    /// `kind: test` files, for `rulebridge test`.
    pub test_files: Vec<TestsDoc>,
    /// `kind: endpoint` documents, for `rulebridge serve`.
    pub endpoints: Vec<Arc<endpoint::EndpointPlan>>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("flows", &self.inner.flows.keys().collect::<Vec<_>>())
            .field("policies", &self.inner.policies.keys().collect::<Vec<_>>())
            .field(
                "providers",
                &self.inner.providers.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Plan {
    pub fn flow(&self, name: &str) -> Option<&Arc<FlowPlan>> {
        self.inner.flows.get(name)
    }

    pub fn flows(&self) -> impl Iterator<Item = &Arc<FlowPlan>> {
        self.inner.flows.values()
    }

    pub fn policy(&self, name: &str) -> Option<&Arc<PolicyPlan>> {
        self.inner.policies.get(name)
    }

    pub fn policies(&self) -> impl Iterator<Item = &Arc<PolicyPlan>> {
        self.inner.policies.values()
    }

    /// A compiled provider, from which [`HttpConnector`](crate::connect::http::HttpConnector)s
    /// are built.
    pub fn provider(&self, name: &str) -> Option<&Arc<ProviderPlan>> {
        self.inner.providers.get(name)
    }

    pub fn providers(&self) -> impl Iterator<Item = &Arc<ProviderPlan>> {
        self.inner.providers.values()
    }

    pub fn sources(&self) -> &SourceMap {
        &self.inner.sources
    }

    pub fn test_files(&self) -> &[TestsDoc] {
        &self.inner.test_files
    }

    /// The inbound endpoints the rule files declare (`kind: endpoint`).
    pub fn endpoints(&self) -> &[Arc<endpoint::EndpointPlan>] {
        &self.inner.endpoints
    }

    /// Finds a flow by name, or by the path of the file that defines it.
    pub fn find_flow(&self, name_or_path: &str) -> Option<&Arc<FlowPlan>> {
        self.flow(name_or_path).or_else(|| {
            let wanted = std::path::Path::new(name_or_path);
            self.flows().find(|f| {
                self.inner
                    .sources
                    .get(f.span.file)
                    .is_some_and(|file| std::path::Path::new(&file.name) == wanted)
            })
        })
    }
}

/// A compiled expression together with where it was written, for runtime error messages.
#[derive(Debug)]
pub struct ExprAt {
    pub compiled: Compiled,
    pub source: String,
    pub ty: Type,
    pub span: Span,
    pub location: Location,
}

/// A compiled flow.
#[derive(Debug)]
pub struct FlowPlan {
    pub name: String,
    pub description: Option<String>,
    pub record: Option<String>,
    pub require: Vec<String>,
    /// Fields of the declared record checked on every input before mapping: the required
    /// ones and those with a type other than `any`.
    pub input_fields: Vec<InputField>,
    pub filter: Option<ExprAt>,
    pub provider: String,
    pub object: String,
    pub key: Option<ExprAt>,
    /// Secret names and their references (`${env:NAME}`), in binding order.
    pub secrets: Vec<(String, String)>,
    pub policy: Option<Arc<PolicyPlan>>,
    /// The policy's input columns compiled in this flow's scope, when they read its named
    /// values; empty when the policy's own inputs apply.
    pub policy_inputs: Vec<ExprAt>,
    /// Named values (`let:`), in declaration order; a value's binding slot is
    /// [`LET_SLOT_BASE`] plus its index here.
    pub lets: Vec<LetPlan>,
    /// What runs before the mapping, in dependency order.
    pub steps: Vec<FlowStep>,
    pub mapping: MappingPlan,
    pub omit_nulls: bool,
    /// Keep payloads sent in the changelog (`options.audit_payloads`).
    pub audit_payloads: bool,
    pub required: Vec<String>,
    pub duplicates: Option<DuplicatePlan>,
    /// Payload fields holding references, resolved when the record is sent.
    pub refs: Vec<RefField>,
    /// Flows declared (`depends_on`) to run before this one in a multi-flow run.
    pub depends_on: Vec<String>,
    /// Top-level payload fields computed from secrets: shown as `***` in dry-run output.
    pub redacted: Vec<String>,
    /// Payload fields (dotted paths) computed from the engine's clock alone, such as a
    /// `last_synced_at: now()` stamp: left out of the ledger's change hash, so a record whose
    /// other fields are as last written stays `unchanged`.
    pub stamps: Vec<String>,
    /// Payload fields (dotted paths) that differ from evaluation to evaluation, such as a
    /// `fernet_encrypt` ciphertext. They are left out of the ledger's change hash, and the
    /// input record stands in for them: the record counts as changed when its input did.
    pub randomized: Vec<String>,
    /// Fields of the declared record marked `sensitive`: a failed record's input is kept
    /// in the dead-letter queue only encrypted (or, with no master key, without them).
    pub sensitive_input: Vec<String>,
    /// Fields of the target object marked `sensitive`: masked in audited payloads.
    pub sensitive_payload: Vec<String>,
    pub tests: Vec<TestCase>,
    pub span: Span,
}

/// Binding slots of every flow expression: `policy`, `secrets`, `record`, then the named values.
pub const POLICY_SLOT: usize = 0;
/// The binding slot of `secrets`.
pub const SECRETS_SLOT: usize = 1;
/// The binding slot of `record`.
pub const RECORD_SLOT: usize = 2;
/// The binding slot of the first named value.
pub const LET_SLOT_BASE: usize = 3;

/// A named value of a flow.
#[derive(Debug)]
pub struct LetPlan {
    pub name: String,
    pub expr: ExprAt,
    /// The declared type, when the expression's type does not prove it (checked per record).
    pub check: Option<Type>,
    /// The type as written, for messages.
    pub declared: String,
}

/// One step before the mapping; [`FlowPlan::steps`] orders them so that every value is
/// computed before what reads it, and the filter as early as its inputs allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowStep {
    /// Compute the named value with this index.
    Let(usize),
    /// Apply the policy table.
    Policy,
    /// Apply `source.filter`.
    Filter,
}

/// A field of the flow's declared `record`, as checked on each input record.
#[derive(Debug, Clone, PartialEq)]
pub struct InputField {
    pub name: String,
    /// The declared type, without the optional wrapper (null is the `required` check's).
    pub ty: Type,
    /// The type as written in the record file, for messages.
    pub declared: String,
    pub required: bool,
    /// Allowed values of an enum field.
    pub options: Vec<String>,
    /// Where the field is declared.
    pub location: Location,
}

/// How a payload is built: target fields in order.
#[derive(Debug, Default)]
pub struct MappingPlan {
    pub fields: Vec<FieldPlan>,
    /// Every target name in order with a null value, when the names are distinct: a
    /// record's payload starts as a copy of it, which copies the names' hashes instead of
    /// hashing each name again (see [`MappingPlan::new`]).
    pub keys: Option<serde_json::Map<String, serde_json::Value>>,
}

impl MappingPlan {
    pub fn new(fields: Vec<FieldPlan>) -> MappingPlan {
        let keys: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|f| (f.target.clone(), serde_json::Value::Null))
            .collect();
        let keys = (keys.len() == fields.len()).then_some(keys);
        MappingPlan { fields, keys }
    }
}

#[derive(Debug)]
pub struct FieldPlan {
    pub target: String,
    pub value: ValuePlan,
    /// The static type of the value.
    pub ty: Type,
    pub location: Location,
    /// What the target's declaration still requires of the value at run time; `None` when
    /// the static type already guarantees it (most fields), so evaluation skips it.
    pub check: Option<Box<TargetCheck>>,
}

/// Run-time checks of one mapped value against the target field's declaration, for what the
/// static type could not settle (an `any` or optional value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetCheck {
    /// The declared type, when a non-null value might not have it.
    pub ty: Option<Type>,
    /// The type as the provider wrote it (`email`, `array<string>`), for messages.
    pub declared: String,
    /// Allowed values of an enum field whose value is not a constant checked by lint.
    pub options: Vec<String>,
    /// The provider declares the field `required: true` and the value may be null.
    pub required: bool,
}

#[derive(Debug)]
pub enum ValuePlan {
    Expr(ExprAt),
    Const(Value),
    Template(TemplatePlan),
    Nested(MappingPlan),
    /// A reference: evaluation produces an unresolved [`RefPlan::placeholder`], the send
    /// sink replaces it with the referenced record's id.
    Ref(RefPlan),
}

/// A reference to a record of another object of the flow's provider.
#[derive(Debug)]
pub struct RefPlan {
    pub object: String,
    /// The fields the record is found by, each with its value; all must match.
    pub by: Vec<(String, RefKeyPlan)>,
}

/// How the value of one field of a reference's `where` is produced.
#[derive(Debug)]
pub enum RefKeyPlan {
    Expr(ExprAt),
    Ref(Box<RefPlan>),
}

/// A payload field holding a reference.
#[derive(Debug, Clone)]
pub struct RefField {
    /// The field's path in the payload (`client_id`, `links.owner`).
    pub path: String,
    /// Every object the reference (and the references inside it) reads, outermost first.
    pub objects: Vec<String>,
    /// The target field is declared a number: the resolved id is written as one.
    pub numeric: bool,
    pub location: Location,
}

impl RefPlan {
    /// The reference as written, for plan output: `ref client where external_id = EXPR`.
    pub fn describe(&self) -> String {
        let by: Vec<String> = self
            .by
            .iter()
            .map(|(f, k)| match k {
                RefKeyPlan::Expr(e) => format!("{f} = {}", e.source),
                RefKeyPlan::Ref(inner) => format!("{f} = ({})", inner.describe()),
            })
            .collect();
        format!("ref {} where {}", self.object, by.join(", "))
    }
}

impl FlowPlan {
    /// The reference at a payload path, if the field holds one.
    pub fn ref_field(&self, path: &str) -> Option<&RefField> {
        self.refs.iter().find(|r| r.path == path)
    }
}

/// A minijinja template compiled at plan time.
pub struct TemplatePlan {
    pub source: String,
    pub env: Arc<minijinja::Environment<'static>>,
    pub name: String,
    /// The top-level variables the template reads (its context holds only these).
    pub vars: Vec<String>,
    /// The same template in a form rendered without minijinja, when it is that simple.
    pub simple: Option<template::SimpleTemplate>,
}

impl std::fmt::Debug for TemplatePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Template").field(&self.source).finish()
    }
}

#[derive(Debug, Clone, Default)]
pub struct DuplicatePlan {
    pub match_keys: Vec<String>,
    pub on_match: OnMatch,
    pub on_multiple: OnMultiple,
    pub repeats: Repeats,
}

/// A compiled decision table.
#[derive(Debug)]
pub struct PolicyPlan {
    pub name: String,
    pub description: Option<String>,
    pub hit: HitPolicy,
    pub inputs: Vec<ExprAt>,
    pub outputs: Vec<(String, Type)>,
    pub rows: Vec<RowPlan>,
    /// Rows reachable per value of the first input, for tables of 8+ rows.
    pub index: Option<RowIndex>,
    pub tests: Vec<TestCase>,
    pub doc_span: Span,
}

impl PolicyPlan {
    /// The type of `policy` in flows using this table.
    pub fn result_type(&self) -> Type {
        match self.hit {
            HitPolicy::Collect => Type::array(Type::Object),
            HitPolicy::First | HitPolicy::Unique => Type::optional(Type::Object),
        }
    }
}

#[derive(Debug)]
pub struct RowPlan {
    pub tests: Vec<CompiledTest>,
    /// The cells as written, for plan output.
    pub cells: Vec<String>,
    pub outputs: Vec<Value>,
    /// The outputs as the object a match yields, built once.
    pub result: Value,
    pub location: Location,
}

/// Candidate rows by the first input's value: rows whose first cell is an equality test on a
/// string constant are found by hashing; the rest are always candidates.
#[derive(Debug, Default)]
pub struct RowIndex {
    pub by_value: std::collections::HashMap<String, Vec<usize>>,
    pub always: Vec<usize>,
}

impl RowIndex {
    /// Row indices to try, in table order, for a first-input value.
    pub fn candidates(&self, first: &Value) -> Vec<usize> {
        let keyed = match first {
            Value::String(s) => self.by_value.get(s.as_str()).map(|v| v.as_slice()),
            _ => None,
        }
        .unwrap_or(&[]);
        let mut out = Vec::with_capacity(keyed.len() + self.always.len());
        let (mut i, mut j) = (0, 0);
        while i < keyed.len() || j < self.always.len() {
            let take_keyed =
                j >= self.always.len() || (i < keyed.len() && keyed[i] < self.always[j]);
            if take_keyed {
                out.push(keyed[i]);
                i += 1;
            } else {
                out.push(self.always[j]);
                j += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shareable<T: Send + Sync + Clone>() {}

    #[test]
    fn plans_are_shareable_between_threads() {
        shareable::<Plan>();
        shareable::<crate::engine::FlowRunner>();
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::engine::Engine>();
    }
}
