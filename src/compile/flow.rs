//! Compiling flows: resolution of record, provider, object and policy; mapping and duplicate
//! rules checked against the provider object's declared fields.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic, suggest};
use crate::expr::Scope;
use crate::plan::{
    DuplicatePlan, FieldPlan, FlowPlan, InputField, MappingPlan, PolicyPlan, RefField, TargetCheck,
    ValuePlan,
};
use crate::syntax::doc::{
    FieldDecl, FlowDoc, Mapping, MappingValue, ObjectDoc, ProviderDoc, RecordDoc, Spanned,
};
use crate::types::Type;

use super::Context;
use super::exprs::{clock_only, leaks_secret_with, randomized, root_names};

/// Root names bound in every flow expression, in slot order (see [`crate::exec`]).
pub const BINDINGS: [&str; 3] = ["policy", "secrets", "record"];

/// What a flow can refer to.
pub(super) struct Resolved<'a, 'd> {
    pub schemas: &'a BTreeMap<&'d str, BTreeMap<String, Type>>,
    pub records: &'a BTreeMap<&'d str, &'d RecordDoc>,
    pub providers: &'a BTreeMap<&'d str, &'d ProviderDoc>,
    pub policies: &'a BTreeMap<String, Arc<PolicyPlan>>,
    /// All policy names, including ones that failed to compile (no cascade of errors).
    pub policy_names: Vec<&'d str>,
}

impl Context<'_> {
    pub(super) fn compile_flow(&mut self, doc: &FlowDoc, r: &Resolved<'_, '_>) -> Option<FlowPlan> {
        // Which named values carry secrets is per flow.
        self.leaky.clear();
        let plan = self.compile_flow_inner(doc, r);
        self.leaky.clear();
        plan
    }

    fn compile_flow_inner(&mut self, doc: &FlowDoc, r: &Resolved<'_, '_>) -> Option<FlowPlan> {
        let errors_before = self.error_count();

        // Source record schema.
        let schema = match &doc.source.record {
            Some(name) => match r.schemas.get(name.value.as_str()) {
                Some(s) => Some(s),
                None => {
                    self.unknown_reference(
                        "record",
                        &name.value,
                        name.span,
                        r.schemas.keys().copied(),
                    );
                    None
                }
            },
            None => None,
        };
        if let Some(schema) = schema {
            for req in &doc.source.require {
                if !schema.contains_key(&req.value) {
                    self.unknown_field_of_record(req, schema);
                }
            }
        }

        // Target provider and object; its fields are the declared ones, or else the ones
        // discovered earlier (`rulebridge fields`) and cached next to the rules.
        let object = self.resolve_object(doc, r);
        // A SQL table's columns as introspected stand for its fields (`None`: not readable).
        let provider_doc = r.providers.get(doc.target.provider.value.as_str()).copied();
        let columns = match (provider_doc, object) {
            (Some(p), Some(o)) if p.sql.is_some() => self.sql_target(doc, p, o),
            _ => None,
        };
        let is_sql = provider_doc.is_some_and(|p| p.sql.is_some());
        let discovered: Vec<FieldDecl> = match (object, columns) {
            (_, Some(columns)) => columns,
            (Some(o), None) if o.fields.is_empty() => {
                self.discovered_fields(&doc.target.provider.value, o)
            }
            _ => Vec::new(),
        };
        let from_table = is_sql && !discovered.is_empty();
        if let Some(o) = object
            && !o.fields.is_empty()
            && !is_sql
        {
            self.check_against_remote(doc, o);
        }
        let target_fields: Option<&[FieldDecl]> = match object {
            Some(_) if from_table => Some(discovered.as_slice()),
            Some(o) if !o.fields.is_empty() => Some(o.fields.as_slice()),
            Some(_) => Some(discovered.as_slice()),
            None => None,
        };

        // Policy table.
        let policy = match &doc.policy {
            Some(name) => match r.policies.get(&name.value) {
                Some(p) => {
                    if let Some(schema) = schema {
                        let lets: Vec<&str> =
                            doc.lets.iter().map(|l| l.name.value.as_str()).collect();
                        self.check_policy_inputs(p, name, schema, &lets);
                    }
                    Some(p.clone())
                }
                None => {
                    if !r.policy_names.contains(&name.value.as_str()) {
                        self.unknown_reference(
                            "policy",
                            &name.value,
                            name.span,
                            r.policy_names.iter().copied(),
                        );
                    }
                    None
                }
            },
            None => None,
        };

        // Secrets (their reference syntax is checked by the loader).
        let secrets: Vec<(String, String)> = doc
            .secrets
            .iter()
            .map(|(name, reference)| (name.value.clone(), reference.value.clone()))
            .collect();

        let secret_names: Vec<&str> = secrets.iter().map(|(n, _)| n.as_str()).collect();
        let policy_type = policy
            .as_ref()
            .map(|p| p.result_type())
            .unwrap_or(Type::Null);
        let lets = self.compile_lets(doc, schema, policy.as_deref(), policy_type, &secret_names);
        let mut read = lets.read.clone();
        let scope = Scope {
            registry: self.registry,
            record: schema,
            bindings: &lets.bindings,
        };
        let let_names: Vec<&str> = doc.lets.iter().map(|l| l.name.value.as_str()).collect();

        // A policy whose inputs read named values gets them compiled in this flow's scope.
        let mut policy_inputs = Vec::new();
        if let Some(p) = &policy {
            let asts: Vec<Option<crate::expr::Expr>> = p
                .inputs
                .iter()
                .map(|i| crate::expr::parse(&i.source).ok())
                .collect();
            let reads_lets = asts.iter().flatten().any(|a| {
                root_names(a)
                    .iter()
                    .any(|n| let_names.contains(n) && !BINDINGS.contains(n))
            });
            if reads_lets {
                for (input, ast) in p.inputs.iter().zip(&asts) {
                    let text = Spanned::new(input.source.clone(), input.span);
                    if let Some(ast) = ast {
                        root_names(ast).iter().for_each(|n| {
                            read.insert(n.to_string());
                        });
                        if let Some(at) = self.compile_ast(ast, &text, &scope) {
                            policy_inputs.push(at);
                        }
                    }
                }
            }
        }

        let filter = doc.source.filter.as_ref().and_then(|text| {
            // Parsed quietly here: compiling it reports syntax errors.
            if let Ok(ast) = crate::expr::parse(&text.value) {
                self.check_secret_names(&ast, text, &secret_names);
            }
            let at = self.compile_expr(text, &scope)?;
            note_names(&at.source, &mut read);
            if !at.ty.fits_ignoring_null(&Type::Bool) {
                self.report(
                    Diagnostic::new(
                        Code::NonBooleanCondition,
                        text.span,
                        format!("source.filter must be a boolean, found {}", at.ty),
                    )
                    .with_help("compare the value, e.g. `score > 0`"),
                );
                return None;
            }
            Some(at)
        });
        let key = doc.key.as_ref().and_then(|text| {
            // Parsed quietly here: compiling it reports syntax errors.
            if let Ok(ast) = crate::expr::parse(&text.value) {
                self.check_secret_names(&ast, text, &secret_names);
                // The outcome key is printed with every outcome and kept in the ledger.
                if leaks_secret_with(&ast, &|n| lets.leaky.contains(n)) {
                    self.report(
                        Diagnostic::new(
                            Code::SecretKey,
                            text.span,
                            "the flow's key is derived from a secret",
                        )
                        .with_label("reads a secret")
                        .with_help("outcome keys are printed and stored; key records by a field of the record, or hash the secret with sha256(...)"),
                    );
                }
            }
            let at = self.compile_expr(text, &scope)?;
            note_names(&at.source, &mut read);
            Some(at)
        });

        if let Some(p) = &policy {
            self.check_policy_outputs(doc, p);
        }

        let mut redacted = Vec::new();
        let mut refs = Vec::new();
        let mut stamps = Vec::new();
        let mut random_fields = Vec::new();
        let mut names = MappingNames {
            secrets: &secret_names,
            leaky: &lets.leaky,
            clock_only: &lets.clock_only,
            stamps: &mut stamps,
            randomized_lets: &lets.randomized,
            randomized: &mut random_fields,
            read: &mut read,
            provider: r.providers.get(doc.target.provider.value.as_str()).copied(),
            refs: &mut refs,
        };
        let mapping = self.compile_mapping(
            &doc.mapping,
            &scope,
            target_fields,
            &mut names,
            &mut redacted,
            "",
        );
        self.report_unused_lets(doc, &read);

        // Required target fields: declared by the object, and listed in the flow's options.
        let mapped: BTreeSet<&str> = doc
            .mapping
            .entries
            .iter()
            .map(|e| e.target.value.as_str())
            .collect();
        if let Some(fields) = target_fields {
            for f in fields.iter().filter(|f| f.required) {
                if !mapped.contains(f.name.value.as_str()) {
                    self.report(
                        Diagnostic::new(
                            Code::MissingRequiredTarget,
                            doc.target.object.span,
                            format!(
                                "required field `{}` of `{}.{}` is not mapped",
                                f.name.value, doc.target.provider.value, doc.target.object.value
                            ),
                        )
                        .with_related(f.name.span, "declared required here")
                        .with_help(format!(
                            "add `{}: <expression>` to the mapping",
                            f.name.value
                        )),
                    );
                }
            }
        }
        for req in &doc.options.required {
            if !mapped.contains(req.value.as_str()) {
                self.report(
                    Diagnostic::new(
                        Code::UnknownTargetField,
                        req.span,
                        format!(
                            "`{}` is required but the mapping does not produce it",
                            req.value
                        ),
                    )
                    .with_help_opt(suggest(&req.value, mapped.iter().copied())),
                );
            }
        }

        let duplicates = doc.duplicates.as_ref().map(|d| {
            for k in &d.match_keys {
                // Identity keys are printed as outcome keys and stored: never a secret.
                if let Some(field) = k
                    .value
                    .split('+')
                    .map(str::trim)
                    .find(|part| redacted.iter().any(|r| r == part))
                {
                    self.report(
                        Diagnostic::new(
                            Code::SecretKey,
                            k.span,
                            format!("match key `{}` is derived from a secret", k.value),
                        )
                        .with_label(format!("`{field}` receives a secret value"))
                        .with_help("identity keys are printed with every outcome and stored; match on a field of the record, or map a hash of the secret (sha256(...)) instead"),
                    );
                }
                // A compound key (`project_id+title`) matches on all of its fields at once.
                let parts = k.value.split('+').map(str::trim);
                if parts.clone().count() > 1 {
                    self.check_compound_key(k, parts.clone(), &mapped, object);
                    continue;
                }
                if !mapped.contains(k.value.as_str()) {
                    self.report(
                        Diagnostic::new(
                            Code::UnknownMatchKey,
                            k.span,
                            format!(
                                "match key `{}` is not a field of the mapped payload",
                                k.value
                            ),
                        )
                        .with_label("not produced by the mapping")
                        .with_help(
                            suggest(&k.value, mapped.iter().copied()).unwrap_or_else(|| {
                                "match keys name target fields of the mapping, e.g. `email`".into()
                            }),
                        ),
                    );
                }
            }
            DuplicatePlan {
                match_keys: d
                    .match_keys
                    .iter()
                    .map(|k| {
                        let parts: Vec<&str> = k.value.split('+').map(str::trim).collect();
                        parts.join("+")
                    })
                    .collect(),
                on_match: d.on_match.value,
                on_multiple: d.on_multiple.value,
                repeats: d.repeats.value,
            }
        });

        if self.error_count() > errors_before {
            return None;
        }
        Some(FlowPlan {
            name: doc.name.value.clone(),
            description: doc.description.clone(),
            record: doc.source.record.as_ref().map(|r| r.value.clone()),
            require: doc.source.require.iter().map(|r| r.value.clone()).collect(),
            input_fields: doc
                .source
                .record
                .as_ref()
                .and_then(|name| r.records.get(name.value.as_str()))
                .map(|record| self.input_fields(record))
                .unwrap_or_default(),
            filter,
            provider: doc.target.provider.value.clone(),
            object: doc.target.object.value.clone(),
            key,
            secrets,
            policy,
            policy_inputs,
            lets: lets.plans,
            steps: lets.steps,
            mapping,
            omit_nulls: doc.options.omit_nulls,
            audit_payloads: doc.options.audit_payloads,
            required: doc
                .options
                .required
                .iter()
                .map(|r| r.value.clone())
                .collect(),
            duplicates,
            refs,
            depends_on: doc.depends_on.iter().map(|d| d.value.clone()).collect(),
            redacted,
            stamps,
            randomized: random_fields,
            sensitive_input: doc
                .source
                .record
                .as_ref()
                .and_then(|name| r.records.get(name.value.as_str()))
                .map(|record| {
                    record
                        .fields
                        .iter()
                        .filter(|f| f.sensitive)
                        .map(|f| f.name.value.clone())
                        .collect()
                })
                .unwrap_or_default(),
            sensitive_payload: target_fields
                .into_iter()
                .flatten()
                .filter(|f| f.sensitive)
                .map(|f| f.name.value.clone())
                .collect(),
            tests: doc.tests.clone(),
            span: doc.span,
        })
    }

    /// Mapped fields that the object declares but the remote system lacks (or only lets
    /// read), when its fields were discovered (`rulebridge fields`): every write carrying
    /// them would be refused.
    fn check_against_remote(&mut self, doc: &FlowDoc, object: &ObjectDoc) {
        let provider = doc.target.provider.value.as_str();
        let object_name = object.name.value.as_str();
        let Some(remote) = self.fields.and_then(|c| c.load(provider, object_name)) else {
            return;
        };
        let can_create = object
            .operations
            .iter()
            .any(|op| op.name.value == "create_field");
        for entry in &doc.mapping.entries {
            let target = &entry.target;
            let Some(decl) = object.fields.iter().find(|f| f.name.value == target.value) else {
                continue;
            };
            let found = remote.iter().find(|f| f.name == target.value);
            let (message, help) = match found {
                Some(f) if f.read_only => (
                    format!(
                        "`{provider}.{object_name}` field `{}` is read-only",
                        target.value
                    ),
                    format!(
                        "the discovered fields say `{}` cannot be written: leave it out of the mapping",
                        target.value
                    ),
                ),
                Some(_) => continue,
                None if can_create => (
                    format!(
                        "`{provider}.{object_name}` has no field `{}` (discovered fields)",
                        target.value
                    ),
                    format!(
                        "create the fields the rule files declare with `rulebridge fields {provider} {object_name} --create-missing` (it refreshes the cache)"
                    ),
                ),
                None => (
                    format!(
                        "`{provider}.{object_name}` has no field `{}` (discovered fields)",
                        target.value
                    ),
                    format!(
                        "create `{}` in {provider}, then refresh the cache with `rulebridge fields {provider} {object_name}`; the kit has no `create_field` operation for `--create-missing`",
                        target.value
                    ),
                ),
            };
            self.report(
                Diagnostic::new(Code::FieldNotInRemote, target.span, message)
                    .with_label("every write with this field would be refused")
                    .with_related(decl.name.span, "declared here")
                    .with_help(help),
            );
        }
    }

    /// Every field of a compound match key is mapped, and the object's search reads them all.
    fn check_compound_key<'k>(
        &mut self,
        key: &Spanned<String>,
        parts: impl Iterator<Item = &'k str>,
        mapped: &BTreeSet<&str>,
        object: Option<&ObjectDoc>,
    ) {
        let parts: Vec<&str> = parts.collect();
        for p in &parts {
            if p.is_empty() || !mapped.contains(p) {
                self.report(
                    Diagnostic::new(
                        Code::UnknownMatchKey,
                        key.span,
                        format!(
                            "`{p}` of compound match key `{}` is not a field of the mapped payload",
                            key.value
                        ),
                    )
                    .with_label("not produced by the mapping")
                    .with_help(
                        suggest(p, mapped.iter().copied()).unwrap_or_else(|| {
                            "a compound key joins mapped fields with `+`, e.g. `project_id+title`"
                                .into()
                        }),
                    ),
                );
                return;
            }
        }
        if let Some(search) =
            object.and_then(|o| o.operations.iter().find(|o| o.name.value == "search"))
        {
            let spanned: Vec<Spanned<String>> = parts
                .iter()
                .map(|p| Spanned::new((*p).to_string(), key.span))
                .collect();
            let refs: Vec<&Spanned<String>> = spanned.iter().collect();
            let name = object.map(|o| o.name.value.as_str()).unwrap_or_default();
            self.check_search_fields(&refs, search, name, "the duplicate rule");
        }
    }

    /// Cached discovered fields as declarations, located at the object's name.
    fn discovered_fields(&self, provider: &str, object: &ObjectDoc) -> Vec<FieldDecl> {
        let Some(cache) = self.fields else {
            return Vec::new();
        };
        let at = object.name.span;
        cache
            .load(provider, &object.name.value)
            .unwrap_or_default()
            .into_iter()
            .filter(|f| !f.read_only)
            .map(|f| {
                let (options, format) = match &f.ty {
                    crate::connect::fields::FieldType::Enum { options } => {
                        (options.clone(), "enum".to_string())
                    }
                    t => (Vec::new(), t.name().to_string()),
                };
                FieldDecl {
                    name: Spanned::new(f.name.clone(), at),
                    ty: Spanned::new(f.ty.value_type(), at),
                    format,
                    required: f.required,
                    options,
                    label: f.label,
                    description: None,
                    sensitive: false,
                }
            })
            .collect()
    }

    /// The record's fields that need a look on each input (an optional `any` never does).
    fn input_fields(&self, record: &RecordDoc) -> Vec<InputField> {
        record
            .fields
            .iter()
            .filter(|f| f.required || *f.ty.value.non_null() != Type::Any || !f.options.is_empty())
            .map(|f| InputField {
                name: f.name.value.clone(),
                ty: f.ty.value.non_null().clone(),
                declared: f.format.clone(),
                required: f.required,
                options: f.options.clone(),
                location: self.sources.locate(f.name.span),
            })
            .collect()
    }

    pub(super) fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    fn unknown_field_of_record(&mut self, name: &Spanned<String>, schema: &BTreeMap<String, Type>) {
        self.report(
            Diagnostic::new(
                Code::UnknownField,
                name.span,
                format!("`{}` is not a field of the declared record", name.value),
            )
            .with_help_opt(suggest(&name.value, schema.keys().map(|k| k.as_str()))),
        );
    }

    fn resolve_object<'d>(&mut self, doc: &FlowDoc, r: &Resolved<'_, 'd>) -> Option<&'d ObjectDoc> {
        let provider_name = &doc.target.provider;
        let Some(provider) = r.providers.get(provider_name.value.as_str()) else {
            self.unknown_reference(
                "provider",
                &provider_name.value,
                provider_name.span,
                r.providers.keys().copied(),
            );
            return None;
        };
        let object_name = &doc.target.object;
        let found = provider
            .objects
            .iter()
            .find(|o| o.name.value == object_name.value);
        if found.is_none() {
            self.unknown_reference(
                "object",
                &object_name.value,
                object_name.span,
                provider.objects.iter().map(|o| o.name.value.as_str()),
            );
        }
        found
    }

    /// Policy inputs read record fields; with a declared schema they must exist.
    fn check_policy_inputs(
        &mut self,
        policy: &PolicyPlan,
        used_at: &Spanned<String>,
        schema: &BTreeMap<String, Type>,
        lets: &[&str],
    ) {
        for input in &policy.inputs {
            let Ok(ast) = crate::expr::parse(&input.source) else {
                continue;
            };
            for name in root_names(&ast) {
                if !schema.contains_key(name) && !BINDINGS.contains(&name) && !lets.contains(&name)
                {
                    self.report(
                        Diagnostic::new(
                            Code::PolicyInputMissing,
                            used_at.span,
                            format!(
                                "policy `{}` reads `{name}`, which is not a field of this flow's record",
                                policy.name
                            ),
                        )
                        .with_related(input.span, "input read here")
                        .with_help(suggest(name, schema.keys().map(|k| k.as_str())).unwrap_or_else(|| {
                            "add the field to the record schema, or change the policy's `inputs`".to_string()
                        })),
                    );
                }
            }
        }
    }

    fn compile_mapping(
        &mut self,
        mapping: &Mapping,
        scope: &Scope<'_>,
        declared: Option<&[FieldDecl]>,
        names: &mut MappingNames<'_>,
        redacted: &mut Vec<String>,
        prefix: &str,
    ) -> MappingPlan {
        let mut fields = Vec::with_capacity(mapping.entries.len());
        let mut seen: BTreeMap<&str, crate::span::Span> = BTreeMap::new();
        for entry in &mapping.entries {
            let target = &entry.target;
            if let Some(first) = seen.insert(&target.value, target.span) {
                self.report(
                    Diagnostic::new(
                        Code::DuplicateName,
                        target.span,
                        format!("target field `{prefix}{}` is mapped twice", target.value),
                    )
                    .with_related(first, "first mapped here"),
                );
                continue;
            }
            // Declared fields apply to the top level of the payload.
            let decl = match declared {
                Some(fields) if !fields.is_empty() && prefix.is_empty() => {
                    let d = fields.iter().find(|f| f.name.value == target.value);
                    if d.is_none() {
                        self.report(
                            Diagnostic::new(
                                Code::UnknownTargetField,
                                target.span,
                                format!("`{}` is not a field of the target object", target.value),
                            )
                            .with_label("unknown target field")
                            .with_help(
                                suggest(
                                    &target.value,
                                    fields.iter().map(|f| f.name.value.as_str()),
                                )
                                .unwrap_or_else(|| {
                                    "declare it in the provider object's `fields`".into()
                                }),
                            ),
                        );
                    }
                    d
                }
                _ => None,
            };
            let location = self.sources.locate(target.span);
            let (value, ty, value_span) = match &entry.value {
                MappingValue::Expr(text) => {
                    let Some(ast) = self.parse_expr(text) else {
                        continue;
                    };
                    self.check_secret_names(&ast, text, names.secrets);
                    ast.for_each_name(|n, _| {
                        names.read.insert(n.to_string());
                    });
                    if leaks_secret_with(&ast, &|n| names.leaky.contains(n)) {
                        redacted.push(format!("{prefix}{}", target.value));
                        self.report(
                            Diagnostic::new(
                                Code::SecretInOutput,
                                text.span,
                                format!("target field `{}` receives a secret value", target.value),
                            )
                            .with_help("the value is sent as is and shown as `***` in dry runs; hash or encrypt it if the target does not need it in clear"),
                        );
                    }
                    let Some(at) = self.compile_ast(&ast, text, scope) else {
                        continue;
                    };
                    let stamp = clock_only(&ast, self.registry, &|n| names.clock_only.contains(n));
                    let random =
                        randomized(&ast, self.registry, &|n| names.randomized_lets.contains(n));
                    names.note_unstable(prefix, &target.value, stamp, random);
                    let ty = at.ty.clone();
                    (ValuePlan::Expr(at), ty, text.span)
                }
                MappingValue::Const(v) => (
                    ValuePlan::Const(v.value.clone()),
                    Type::of(&v.value),
                    v.span,
                ),
                MappingValue::Template(text) => {
                    let Some(t) = self.compile_template(text, scope) else {
                        continue;
                    };
                    self.check_template_secrets(
                        &t,
                        text,
                        names,
                        &mut *redacted,
                        prefix,
                        &target.value,
                    );
                    names.read.extend(t.vars.iter().cloned());
                    let stamp =
                        !t.vars.is_empty() && t.vars.iter().all(|v| names.clock_only.contains(v));
                    let random = t.vars.iter().any(|v| names.randomized_lets.contains(v));
                    names.note_unstable(prefix, &target.value, stamp, random);
                    (ValuePlan::Template(t), Type::String, text.span)
                }
                MappingValue::Nested(inner, span) => {
                    let nested_prefix = format!("{prefix}{}.", target.value);
                    let m =
                        self.compile_mapping(inner, scope, None, names, redacted, &nested_prefix);
                    (ValuePlan::Nested(m), Type::Object, *span)
                }
                MappingValue::Ref(r) => {
                    let mut objects = Vec::new();
                    let Some(plan) =
                        self.compile_ref(r, scope, names.provider, names.read, &mut objects)
                    else {
                        continue;
                    };
                    let declared = decl.map(|d| d.ty.value.non_null().clone());
                    if let (Some(d), Some(ty)) = (decl, &declared)
                        && !matches!(ty, Type::Any | Type::String | Type::Number)
                    {
                        self.report(
                            Diagnostic::new(
                                Code::TargetType,
                                r.span,
                                format!(
                                    "`{}` is declared `{}`, which cannot hold the id of a `{}` record",
                                    d.name.value, d.format, r.object.value
                                ),
                            )
                            .with_label("a record id")
                            .with_related(d.name.span, "field declared here")
                            .with_help("refer to records from a string or number field"),
                        );
                        continue;
                    }
                    names.refs.push(RefField {
                        path: format!("{prefix}{}", target.value),
                        objects,
                        numeric: declared == Some(Type::Number),
                        location: location.clone(),
                    });
                    // Evaluation yields the unresolved reference; only `required` is checked
                    // then (a null key means no reference), the id's type when it is resolved.
                    let check = decl.filter(|d| d.required).map(|d| {
                        Box::new(TargetCheck {
                            declared: d.format.clone(),
                            required: true,
                            ..TargetCheck::default()
                        })
                    });
                    fields.push(FieldPlan {
                        target: target.value.clone(),
                        value: ValuePlan::Ref(plan),
                        ty: declared.map(Type::optional).unwrap_or(Type::Any),
                        location,
                        check,
                    });
                    continue;
                }
            };
            let check = decl.and_then(|decl| {
                self.check_target_type(decl, &value, &ty, value_span);
                target_check(decl, &value, &ty).map(Box::new)
            });
            fields.push(FieldPlan {
                target: target.value.clone(),
                value,
                ty,
                location,
                check,
            });
        }
        MappingPlan::new(fields)
    }

    fn check_target_type(
        &mut self,
        decl: &FieldDecl,
        value: &ValuePlan,
        ty: &Type,
        span: crate::span::Span,
    ) {
        if decl.required && *ty == Type::Null {
            self.report(
                Diagnostic::new(
                    Code::MissingRequiredTarget,
                    span,
                    format!(
                        "`{}` is required but this value is always null",
                        decl.name.value
                    ),
                )
                .with_label("always null")
                .with_related(decl.name.span, "declared required here")
                .with_help(format!("map `{}` to a value", decl.name.value)),
            );
            return;
        }
        if !ty.fits_ignoring_null(&decl.ty.value) {
            self.report(
                Diagnostic::new(
                    Code::TargetType,
                    span,
                    format!(
                        "`{}` is declared `{}` but this value is `{ty}`",
                        decl.name.value, decl.format
                    ),
                )
                .with_label(format!("this is `{ty}`"))
                .with_related(decl.name.span, "field declared here")
                .with_help(conversion_hint(ty, &decl.ty.value)),
            );
            return;
        }
        if !decl.options.is_empty() {
            let constant = match value {
                ValuePlan::Const(v) => Some(v),
                ValuePlan::Expr(at) => at.compiled.as_const(),
                _ => None,
            };
            if let Some(Value::String(s)) = constant
                && !decl.options.iter().any(|o| o == s)
            {
                self.report(
                    Diagnostic::new(
                        Code::TargetType,
                        span,
                        format!("`{s}` is not an option of enum field `{}`", decl.name.value),
                    )
                    .with_related(decl.name.span, "options declared here")
                    .with_help(
                        suggest(s, decl.options.iter().map(|o| o.as_str()))
                            .unwrap_or_else(|| format!("allowed: {}", decl.options.join(", "))),
                    ),
                );
            }
        }
    }
}

impl Context<'_> {
    /// A mapping template's `secrets.NAME` reads: each must be declared, and one that
    /// reaches the payload is reported like an expression's (RB2007) and redacted.
    fn check_template_secrets(
        &mut self,
        t: &crate::plan::TemplatePlan,
        text: &Spanned<String>,
        names: &MappingNames<'_>,
        redacted: &mut Vec<String>,
        prefix: &str,
        target: &str,
    ) {
        let reads: BTreeSet<String> = t
            .env
            .get_template(&t.name)
            .map(|tpl| tpl.undeclared_variables(true))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| {
                v.strip_prefix("secrets.")
                    .map(|s| s.split('.').next().unwrap_or(s).to_string())
            })
            .collect();
        let leaky_let = t.vars.iter().any(|v| names.leaky.contains(v));
        for name in &reads {
            if !names.secrets.contains(&name.as_str()) {
                let needle = format!("secrets.{name}");
                let at = text.value.find(&needle).unwrap_or(0);
                let span = text
                    .span
                    .inner(self.sources, &text.value, at, at + needle.len());
                self.report(
                    Diagnostic::new(Code::UnknownField, span, format!("unknown secret `{name}`"))
                        .with_help(
                            suggest(name, names.secrets.iter().copied())
                                .unwrap_or_else(|| "declare it under the flow's `secrets:`".into()),
                        ),
                );
            }
        }
        if !reads.is_empty() || leaky_let {
            redacted.push(format!("{prefix}{target}"));
            self.report(
                Diagnostic::new(
                    Code::SecretInOutput,
                    text.span,
                    format!("target field `{target}` receives a secret value"),
                )
                .with_help("the value is sent as is and shown as `***` in dry runs; hash or encrypt it if the target does not need it in clear"),
            );
        }
    }
}

/// What mapping expressions are checked against, and the names they read.
struct MappingNames<'x> {
    secrets: &'x [&'x str],
    /// Named values that carry a secret unsealed.
    leaky: &'x BTreeSet<String>,
    /// Named values computed from the engine's clock alone.
    clock_only: &'x BTreeSet<String>,
    /// Payload paths of fields computed from the clock alone, found so far.
    stamps: &'x mut Vec<String>,
    /// Named values that differ from evaluation to evaluation.
    randomized_lets: &'x BTreeSet<String>,
    /// Payload paths of fields that differ from evaluation to evaluation, found so far.
    randomized: &'x mut Vec<String>,
    read: &'x mut BTreeSet<String>,
    /// The flow's provider, whose objects references point at.
    provider: Option<&'x ProviderDoc>,
    /// References found so far, by payload path.
    refs: &'x mut Vec<RefField>,
}

impl MappingNames<'_> {
    /// Lists the field `prefix` + `target` as a time stamp (its value comes from the clock
    /// alone) or as randomized (it differs at every evaluation); a stamp is never compared,
    /// so it is not listed twice.
    fn note_unstable(&mut self, prefix: &str, target: &str, stamp: bool, randomized: bool) {
        let list = match (stamp, randomized) {
            (true, _) => &mut *self.stamps,
            (false, true) => &mut *self.randomized,
            (false, false) => return,
        };
        list.push(format!("{prefix}{target}"));
    }
}

/// Adds the root names `source` reads to `read`.
fn note_names(source: &str, read: &mut BTreeSet<String>) {
    if let Ok(ast) = crate::expr::parse(source) {
        ast.for_each_name(|n, _| {
            read.insert(n.to_string());
        });
    }
}

/// What must still be checked when the value is produced, or `None` when its static type
/// already guarantees the declaration (checked once here, not per record).
fn target_check(decl: &FieldDecl, value: &ValuePlan, ty: &Type) -> Option<TargetCheck> {
    let declared = &decl.ty.value;
    let check = TargetCheck {
        ty: (!guaranteed(ty, declared, true)).then(|| declared.clone()),
        declared: decl.format.clone(),
        // Constants were checked against the options by lint.
        options: match value {
            ValuePlan::Const(_) => Vec::new(),
            ValuePlan::Expr(at) if at.compiled.as_const().is_some() => Vec::new(),
            _ => decl.options.clone(),
        },
        required: decl.required && (ty.is_optional() || *ty == Type::Any),
    };
    (check.ty.is_some() || !check.options.is_empty() || check.required).then_some(check)
}

/// Whether every non-null value of type `found` is a value of type `declared`. At the top
/// level null is left to the required check; inside arrays an item may be null only where
/// the declaration says so.
fn guaranteed(found: &Type, declared: &Type, top: bool) -> bool {
    let (found, declared) = if top {
        (found.non_null(), declared.non_null())
    } else {
        match (found, declared) {
            (Type::Optional(_) | Type::Null, d) if !d.is_optional() && *d != Type::Any => {
                return false;
            }
            (f, d) => (f.non_null(), d.non_null()),
        }
    };
    match (found, declared) {
        (_, Type::Any) => true,
        (Type::Any, _) => false,
        (Type::Null, _) => top,
        (Type::Array(f), Type::Array(d)) => guaranteed(f, d, false),
        (f, d) => f == d,
    }
}

fn conversion_hint(found: &Type, expected: &Type) -> String {
    match (found.non_null(), expected.non_null()) {
        (Type::Number | Type::Bool, Type::String) => "convert it with `to_string(...)`".into(),
        (Type::String, Type::Number) => "convert it with `to_number(...)`".into(),
        (Type::Array(_), Type::String) => "join the items with `join(..., \", \")`".into(),
        _ => format!("produce a `{expected}` value"),
    }
}
