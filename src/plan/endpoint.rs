//! Compiled `kind: endpoint` documents, and evaluating their mappings.

use serde_json::{Map, Value};

use crate::expr::Env;
use crate::functions::Clock;

use super::ExprAt;

/// An inbound endpoint of `rulebridge serve` (see
/// [`EndpointDoc`](crate::syntax::doc::EndpointDoc) for what each part means).
#[derive(Debug)]
pub struct EndpointPlan {
    pub name: String,
    pub method: String,
    pub path: String,
    pub auth: Option<EndpointAuthPlan>,
    pub require_headers: Vec<String>,
    pub require_body: Vec<String>,
    pub invalid: Vec<(String, ExprAt)>,
    pub tenant: Option<ExprAt>,
    pub records: ExprAt,
    pub with: Vec<(String, ExprAt)>,
    pub flow: String,
    /// Outcome status → the word of the answer.
    pub statuses: Vec<(String, String)>,
    pub result: Vec<(String, ExprAt)>,
    pub response: Vec<(String, ExprAt)>,
}

/// A header that must equal a secret.
#[derive(Debug)]
pub struct EndpointAuthPlan {
    pub header: String,
    /// The secret reference, resolved when the server starts.
    pub secret: String,
    pub unauthorized: Vec<(String, ExprAt)>,
}

/// Why an endpoint expression failed on a request.
#[derive(Debug, thiserror::Error)]
#[error("{at}: `{source_text}`: {message}")]
pub struct EndpointEvalError {
    pub at: String,
    pub source_text: String,
    pub message: String,
}

impl EndpointPlan {
    /// The word the answer uses for an outcome status.
    pub fn status_word<'a>(&'a self, status: &'a str) -> &'a str {
        self.statuses
            .iter()
            .find(|(s, _)| s == status)
            .map_or(status, |(_, w)| w.as_str())
    }
}

/// Evaluates one expression with `context`'s fields as names.
pub fn eval(e: &ExprAt, context: &Value, clock: &dyn Clock) -> Result<Value, EndpointEvalError> {
    e.compiled
        .eval(&Env::new(context, clock))
        .map(|v| v.into_owned())
        .map_err(|err| EndpointEvalError {
            at: e.location.to_string(),
            source_text: e.source.clone(),
            message: err.to_string(),
        })
}

/// Evaluates a key → expression mapping into an object; a null value is left out.
pub fn eval_map(
    map: &[(String, ExprAt)],
    context: &Value,
    clock: &dyn Clock,
) -> Result<Map<String, Value>, EndpointEvalError> {
    let mut out = Map::new();
    for (k, e) in map {
        let v = eval(e, context, clock)?;
        if !v.is_null() {
            out.insert(k.clone(), v);
        }
    }
    Ok(out)
}
