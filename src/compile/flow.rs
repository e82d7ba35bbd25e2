//! Compiling flows: resolution of record, provider, object and policy; mapping and duplicate
//! rules checked against the provider object's declared fields.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic, suggest};
use crate::expr::Scope;
use crate::plan::{DuplicatePlan, FieldPlan, FlowPlan, MappingPlan, PolicyPlan, ValuePlan};
use crate::syntax::doc::{
    FieldDecl, FlowDoc, Mapping, MappingValue, ObjectDoc, ProviderDoc, Spanned,
};
use crate::types::Type;

use super::Context;
use super::exprs::{leaks_secret, root_names, secret_uses};

/// Root names bound in every flow expression, in slot order (see [`crate::exec`]).
pub const BINDINGS: [&str; 3] = ["policy", "secrets", "record"];

/// What a flow can refer to.
pub(super) struct Resolved<'a, 'd> {
    pub schemas: &'a BTreeMap<&'d str, BTreeMap<String, Type>>,
    pub providers: &'a BTreeMap<&'d str, &'d ProviderDoc>,
    pub policies: &'a BTreeMap<String, Arc<PolicyPlan>>,
    /// All policy names, including ones that failed to compile (no cascade of errors).
    pub policy_names: Vec<&'d str>,
}

impl Context<'_> {
    pub(super) fn compile_flow(&mut self, doc: &FlowDoc, r: &Resolved<'_, '_>) -> Option<FlowPlan> {
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
        let discovered: Vec<FieldDecl> = match object {
            Some(o) if o.fields.is_empty() => self.discovered_fields(&doc.target.provider.value, o),
            _ => Vec::new(),
        };
        let target_fields: Option<&[FieldDecl]> = match object {
            Some(o) if !o.fields.is_empty() => Some(o.fields.as_slice()),
            Some(_) => Some(discovered.as_slice()),
            None => None,
        };

        // Policy table.
        let policy = match &doc.policy {
            Some(name) => match r.policies.get(&name.value) {
                Some(p) => {
                    if let Some(schema) = schema {
                        self.check_policy_inputs(p, name, schema);
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

        let bindings = [
            (
                BINDINGS[0].to_string(),
                policy
                    .as_ref()
                    .map(|p| p.result_type())
                    .unwrap_or(Type::Null),
            ),
            (BINDINGS[1].to_string(), Type::Object),
            (BINDINGS[2].to_string(), Type::Object),
        ];
        let scope = Scope {
            registry: self.registry,
            record: schema,
            bindings: &bindings,
        };
        let secret_names: Vec<&str> = secrets.iter().map(|(n, _)| n.as_str()).collect();

        let filter = doc.source.filter.as_ref().and_then(|text| {
            let at = self.compile_expr(text, &scope)?;
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
        let key = doc
            .key
            .as_ref()
            .and_then(|text| self.compile_expr(text, &scope));

        let mut redacted = Vec::new();
        let mapping = self.compile_mapping(
            &doc.mapping,
            &scope,
            target_fields,
            &secret_names,
            &mut redacted,
            "",
        );

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
                match_keys: d.match_keys.iter().map(|k| k.value.clone()).collect(),
                on_match: d.on_match.value,
                on_multiple: d.on_multiple.value,
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
            filter,
            provider: doc.target.provider.value.clone(),
            object: doc.target.object.value.clone(),
            key,
            secrets,
            policy,
            mapping,
            omit_nulls: doc.options.omit_nulls,
            required: doc
                .options
                .required
                .iter()
                .map(|r| r.value.clone())
                .collect(),
            duplicates,
            redacted,
            tests: doc.tests.clone(),
            span: doc.span,
        })
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
                }
            })
            .collect()
    }

    fn error_count(&self) -> usize {
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
    ) {
        for input in &policy.inputs {
            let Ok(ast) = crate::expr::parse(&input.source) else {
                continue;
            };
            for name in root_names(&ast) {
                if !schema.contains_key(name) && !BINDINGS.contains(&name) {
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
        secret_names: &[&str],
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
                    for (name, range) in secret_uses(&ast) {
                        if !secret_names.contains(&name) {
                            let span = text.span.inner(
                                self.sources,
                                &text.value,
                                range.start as usize,
                                range.end as usize,
                            );
                            self.report(
                                Diagnostic::new(
                                    Code::UnknownField,
                                    span,
                                    format!("unknown secret `{name}`"),
                                )
                                .with_help(
                                    suggest(name, secret_names.iter().copied()).unwrap_or_else(
                                        || "declare it under the flow's `secrets:`".into(),
                                    ),
                                ),
                            );
                        }
                    }
                    if leaks_secret(&ast) {
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
                    (ValuePlan::Template(t), Type::String, text.span)
                }
                MappingValue::Nested(inner, span) => {
                    let nested_prefix = format!("{prefix}{}.", target.value);
                    let m = self.compile_mapping(
                        inner,
                        scope,
                        None,
                        secret_names,
                        redacted,
                        &nested_prefix,
                    );
                    (ValuePlan::Nested(m), Type::Object, *span)
                }
            };
            if let Some(decl) = decl {
                self.check_target_type(decl, &value, &ty, value_span);
            }
            fields.push(FieldPlan {
                target: target.value.clone(),
                value,
                ty,
                location,
            });
        }
        MappingPlan { fields }
    }

    fn check_target_type(
        &mut self,
        decl: &FieldDecl,
        value: &ValuePlan,
        ty: &Type,
        span: crate::span::Span,
    ) {
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

fn conversion_hint(found: &Type, expected: &Type) -> String {
    match (found.non_null(), expected.non_null()) {
        (Type::Number | Type::Bool, Type::String) => "convert it with `to_string(...)`".into(),
        (Type::String, Type::Number) => "convert it with `to_number(...)`".into(),
        (Type::Array(_), Type::String) => "join the items with `join(..., \", \")`".into(),
        _ => format!("produce a `{expected}` value"),
    }
}
