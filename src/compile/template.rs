//! Mapping templates (`{template: "..."}`), compiled with minijinja at plan time.

use std::sync::Arc;

use minijinja::Environment;

use crate::diagnostic::{Code, Diagnostic, suggest};
use crate::expr::Scope;
use crate::plan::TemplatePlan;
use crate::syntax::doc::Spanned;

use super::Context;

impl Context<'_> {
    pub(super) fn compile_template(
        &mut self,
        text: &Spanned<String>,
        scope: &Scope<'_>,
    ) -> Option<TemplatePlan> {
        let mut env = Environment::new();
        // Payload fields are data, not HTML; a null field renders as nothing, not `None`.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_formatter(|out, state, value| {
            if value.is_none() {
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        let name = "template".to_string();
        if let Err(e) = env.add_template_owned(name.clone(), text.value.clone()) {
            let (start, end) = e
                .range()
                .map(|r| (r.start, r.end))
                .unwrap_or((0, text.value.len()));
            let span = text.span.inner(self.sources, &text.value, start, end);
            self.report(
                Diagnostic::new(
                    Code::TemplateSyntax,
                    span,
                    format!("template error: {}", e.kind()),
                )
                .with_label(e.detail().unwrap_or("here").to_string())
                .with_help(
                    "templates use minijinja syntax: `{{ field }}`, `{% if x %}…{% endif %}`",
                ),
            );
            return None;
        }
        // With a declared record schema, every variable must be a field or a binding.
        if let Some(schema) = scope.record
            && let Ok(t) = env.get_template(&name)
        {
            for var in t.undeclared_variables(false) {
                let known =
                    schema.contains_key(&var) || scope.bindings.iter().any(|(b, _)| *b == var);
                if !known {
                    let at = text.value.find(&var).unwrap_or(0);
                    let span = text
                        .span
                        .inner(self.sources, &text.value, at, at + var.len());
                    self.report(
                        Diagnostic::new(
                            Code::UnknownVariable,
                            span,
                            format!(
                                "template uses `{var}`, which is not a field of the declared record"
                            ),
                        )
                        .with_help(suggest(&var, schema.keys().map(|k| k.as_str())).unwrap_or_else(|| {
                            "a template reads the record's fields and `policy`; add the field to the record schema".to_string()
                        })),
                    );
                }
            }
        }
        let mut vars: Vec<String> = env
            .get_template(&name)
            .map(|t| t.undeclared_variables(false).into_iter().collect())
            .unwrap_or_default();
        vars.sort();
        Some(TemplatePlan {
            simple: crate::plan::template::SimpleTemplate::parse(&text.value),
            source: text.value.clone(),
            env: Arc::new(env),
            name,
            vars,
        })
    }
}
