//! Extensions (`kind: provider` with `extends: BASE`): an integrator's fields joined to the
//! base provider's objects before anything is compiled, so flows, lint and field creation see
//! one object with every declared field.

use std::collections::BTreeMap;

use crate::diagnostic::{Code, Diagnostic};
use crate::span::Span;
use crate::syntax::doc::{ExtensionDoc, ProviderDoc};

use super::Context;

impl Context<'_> {
    /// The providers that extensions extend, with the extensions' fields added (in the order
    /// the extensions were loaded). Conflicts and unknown names are reported; the fields
    /// that could be added are.
    pub(super) fn merge_extensions(
        &mut self,
        providers: &BTreeMap<&str, &ProviderDoc>,
        extensions: &[&ExtensionDoc],
    ) -> BTreeMap<String, ProviderDoc> {
        let mut merged: BTreeMap<String, ProviderDoc> = BTreeMap::new();
        for ext in extensions {
            let base_name = ext.base.value.as_str();
            let Some(base) = providers.get(base_name) else {
                self.unknown_reference(
                    "provider",
                    base_name,
                    ext.base.span,
                    providers.keys().copied(),
                );
                continue;
            };
            let doc = merged
                .entry(base_name.to_string())
                .or_insert_with(|| (*base).clone());
            for add in &ext.objects {
                let Some(declared) = base.objects.iter().find(|o| o.name.value == add.name.value)
                else {
                    let names: Vec<String> =
                        base.objects.iter().map(|o| o.name.value.clone()).collect();
                    self.unknown_reference(
                        "object",
                        &add.name.value,
                        add.name.span,
                        names.iter().map(String::as_str),
                    );
                    continue;
                };
                if declared.fields.is_empty() {
                    self.report(
                        Diagnostic::new(
                            Code::ExtendsUndeclaredObject,
                            add.name.span,
                            format!(
                                "`{base_name}.{}` declares no fields to add to",
                                add.name.value
                            ),
                        )
                        .with_label("an object without declared fields")
                        .with_related(declared.name.span, "declared here without `fields`")
                        .with_help(format!(
                            "its fields are the discovered ones: run `rulebridge fields {base_name} {}` and lint checks mappings against them; declaring only some fields here would make every other field unknown",
                            add.name.value
                        )),
                    );
                    continue;
                }
                let Some(object) = doc
                    .objects
                    .iter_mut()
                    .find(|o| o.name.value == add.name.value)
                else {
                    continue;
                };
                for field in &add.fields {
                    let first: Option<Span> = object
                        .fields
                        .iter()
                        .find(|f| f.name.value == field.name.value)
                        .map(|f| f.name.span);
                    if let Some(first) = first {
                        self.report(
                            Diagnostic::new(
                                Code::ExtensionFieldConflict,
                                field.name.span,
                                format!(
                                    "field `{}` of `{base_name}.{}` is already declared",
                                    field.name.value, add.name.value
                                ),
                            )
                            .with_label("declared again")
                            .with_related(first, "first declared here")
                            .with_help(
                                "an extension adds fields the object does not have: drop this declaration, or give your field another name",
                            ),
                        );
                        continue;
                    }
                    object.fields.push(field.clone());
                }
            }
        }
        merged
    }
}
