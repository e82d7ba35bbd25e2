//! Checking and compiling `kind: endpoint` documents (RB0020–RB0024).

use std::collections::BTreeMap;

use crate::diagnostic::{Code, Diagnostic, suggest};
use crate::expr::Scope;
use crate::plan::ExprAt;
use crate::plan::endpoint::{EndpointAuthPlan, EndpointPlan};
use crate::span::Span;
use crate::syntax::doc::{EndpointDoc, ExprMap, Spanned};

use super::Context;

/// Paths `rulebridge serve` answers itself.
const RESERVED: &[&str] = &["/healthz", "/metrics", "/openapi.json"];

const STATUSES: &[&str] = &["created", "updated", "unchanged", "skipped", "failed"];

impl Context<'_> {
    /// Compiles every endpoint; `flows` are the flow names of the rule set.
    pub(super) fn compile_endpoints(
        &mut self,
        docs: &[&EndpointDoc],
        flows: &[&str],
    ) -> Vec<EndpointPlan> {
        let mut routes: BTreeMap<(String, String), Span> = BTreeMap::new();
        let mut out = Vec::new();
        for doc in docs {
            let method = doc.method.value.to_uppercase();
            if !matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
                self.report(
                    Diagnostic::new(
                        Code::EndpointMethod,
                        doc.method.span,
                        format!("an endpoint cannot answer `{}`", doc.method.value),
                    )
                    .with_label("not POST, PUT or PATCH")
                    .with_help(
                        "an endpoint takes records in its body: use `method: POST` (or PUT, PATCH)",
                    ),
                );
            }
            if let Some(why) = bad_path(&doc.path.value) {
                self.report(
                    Diagnostic::new(
                        Code::EndpointPath,
                        doc.path.span,
                        format!("`{}` cannot be an endpoint's path: {why}", doc.path.value),
                    )
                    .with_label("not a path the server can give this endpoint")
                    .with_help("write an absolute path of letters, digits, `-`, `_`, `.` and `/`, outside /v1/, e.g. `path: /api/internal/sync/users`"),
                );
            }
            let route = (method.clone(), doc.path.value.clone());
            if let Some(first) = routes.get(&route) {
                self.report(
                    Diagnostic::new(
                        Code::EndpointRouteTaken,
                        doc.path.span,
                        format!(
                            "another endpoint already answers {method} {}",
                            doc.path.value
                        ),
                    )
                    .with_label("second endpoint on this route")
                    .with_related(*first, "first declared here")
                    .with_help("give one of them another path or method"),
                );
            } else {
                routes.insert(route, doc.path.span);
            }
            if !flows.contains(&doc.flow.value.as_str()) {
                let mut d = Diagnostic::new(
                    Code::EndpointUnknownFlow,
                    doc.flow.span,
                    format!("the endpoint sends to unknown flow `{}`", doc.flow.value),
                )
                .with_label("no flow of this name");
                d = match suggest(&doc.flow.value, flows.iter().copied()) {
                    Some(s) => d.with_help(s),
                    None => d.with_help(format!(
                        "name a flow of the rule set ({})",
                        flows.join(", ")
                    )),
                };
                self.report(d);
            }
            for (status, word) in &doc.statuses {
                if !STATUSES.contains(&status.value.as_str()) || word.value.trim().is_empty() {
                    let known = STATUSES.contains(&status.value.as_str());
                    let help = match suggest(&status.value, STATUSES.iter().copied()) {
                        Some(s) if !known => s,
                        _ => format!(
                            "map an outcome status ({}) to a non-empty word, e.g. `unchanged: updated`",
                            STATUSES.join(", ")
                        ),
                    };
                    self.report(
                        Diagnostic::new(
                            Code::EndpointStatusWord,
                            status.span.to(word.span),
                            format!(
                                "`{}: {}` maps no outcome status to a word",
                                status.value, word.value
                            ),
                        )
                        .with_label("not an outcome status and its word")
                        .with_help(help),
                    );
                }
            }
            if let Some(plan) = self.compile_endpoint(doc) {
                out.push(plan);
            }
        }
        out
    }

    fn compile_endpoint(&mut self, doc: &EndpointDoc) -> Option<EndpointPlan> {
        let registry = self.registry;
        let scope = Scope::new(registry);
        let records = self.compile_expr(&doc.records, &scope);
        let tenant = doc.tenant.as_ref().map(|t| self.compile_expr(t, &scope));
        let invalid = self.compile_map(&doc.invalid, &scope);
        let with = self.compile_map(&doc.with, &scope);
        let result = self.compile_map(&doc.result, &scope);
        let response = self.compile_map(&doc.response, &scope);
        let auth = doc.auth.as_ref().map(|a| {
            let unauthorized = self.compile_map(&a.unauthorized, &scope);
            (a, unauthorized)
        });
        let auth = match auth {
            Some((a, Some(unauthorized))) => Some(EndpointAuthPlan {
                header: a.header.value.clone(),
                secret: a.secret.value.clone(),
                unauthorized,
            }),
            Some((_, None)) => return None,
            None => None,
        };
        let tenant = match tenant {
            Some(Some(t)) => Some(t),
            Some(None) => return None,
            None => None,
        };
        Some(EndpointPlan {
            name: doc.name.value.clone(),
            method: doc.method.value.to_uppercase(),
            path: doc.path.value.clone(),
            auth,
            require_headers: values(&doc.require_headers),
            require_body: values(&doc.require_body),
            invalid: invalid?,
            tenant,
            records: records?,
            with: with?,
            flow: doc.flow.value.clone(),
            statuses: doc
                .statuses
                .iter()
                .map(|(s, w)| (s.value.clone(), w.value.clone()))
                .collect(),
            result: result?,
            response: response?,
        })
    }

    /// Compiles every expression of a mapping (all are checked even when one fails).
    fn compile_map(&mut self, map: &ExprMap, scope: &Scope<'_>) -> Option<Vec<(String, ExprAt)>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (k, text) in map {
            match self.compile_expr(text, scope) {
                Some(e) => out.push((k.value.clone(), e)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

fn values(v: &[Spanned<String>]) -> Vec<String> {
    v.iter().map(|s| s.value.clone()).collect()
}

/// Why `path` cannot be an endpoint's route, if it cannot.
fn bad_path(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') || path.len() < 2 {
        return Some("it must start with `/` and name something");
    }
    if path == "/v1" || path.starts_with("/v1/") {
        return Some("/v1/ is the server's own API");
    }
    if RESERVED.contains(&path) {
        return Some("the server answers it itself");
    }
    if path.ends_with('/') || path.contains("//") {
        return Some("it has an empty segment");
    }
    if !path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
    {
        return Some("only letters, digits, `-`, `_`, `.` and `/` are allowed");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::bad_path;

    #[test]
    fn paths() {
        assert_eq!(bad_path("/api/internal/sync/users"), None);
        assert!(bad_path("api/users").is_some());
        assert!(bad_path("/v1/flows/x/records").is_some());
        assert!(bad_path("/metrics").is_some());
        assert!(bad_path("/api/{id}").is_some());
        assert!(bad_path("/api//x").is_some());
    }
}
