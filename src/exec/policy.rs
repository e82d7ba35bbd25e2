//! Evaluating a decision table on one record.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::expr::Env;
use crate::plan::{ExprAt, PolicyPlan};
use crate::syntax::doc::HitPolicy;

use super::{FailureKind, RecordError};

/// The table's result: an object of outputs for `first`/`unique` (null when no row
/// matches), an array of such objects for `collect`.
///
/// `columns` are the input expressions: the table's own, or the same compiled in a flow's
/// scope (where they may read its named values).
pub fn evaluate_in<'a>(
    p: &'a PolicyPlan,
    columns: &'a [ExprAt],
    env: &Env<'a>,
) -> Result<Value, RecordError> {
    let mut inputs: Vec<Cow<'_, Value>> = Vec::with_capacity(columns.len());
    for input in columns {
        let v = input.compiled.eval(env).map_err(|e| {
            RecordError::new(
                FailureKind::Policy,
                format!(
                    "policy `{}` input `{}`: {}",
                    p.name, input.source, e.message
                ),
            )
            .at(&input.location)
        })?;
        inputs.push(v);
    }

    // Only indexed tables (8+ rows) list their candidates; the others try every row.
    let indexed: Vec<usize>;
    let candidates: &mut dyn Iterator<Item = usize> = match (&p.index, inputs.first()) {
        (Some(index), Some(first)) => {
            indexed = index.candidates(first);
            &mut indexed.iter().copied()
        }
        _ => &mut (0..p.rows.len()),
    };

    // `first` stops at its first match: no list is kept.
    let mut first: Option<usize> = None;
    let mut matched: Vec<usize> = Vec::new();
    for i in candidates {
        let Some(row) = p.rows.get(i) else { continue };
        let mut all = true;
        for (test, input) in row.tests.iter().zip(&inputs) {
            let ok = test.matches(input, env).map_err(|e| {
                RecordError::new(
                    FailureKind::Policy,
                    format!("policy `{}` row {}: {}", p.name, i + 1, e.message),
                )
                .at(&row.location)
            })?;
            if !ok {
                all = false;
                break;
            }
        }
        if !all {
            continue;
        }
        if p.hit == HitPolicy::First {
            first = Some(i);
            break;
        }
        matched.push(i);
        match p.hit {
            HitPolicy::Unique if matched.len() > 1 => {
                return Err(RecordError::new(
                    FailureKind::Policy,
                    format!(
                        "policy `{}` has `hit: unique` but rows {} and {} both match",
                        p.name,
                        matched[0] + 1,
                        i + 1
                    ),
                ));
            }
            _ => {}
        }
    }

    // Cloning the prepared object copies its index instead of hashing each output name.
    let row_output = |i: usize| -> Value {
        p.rows
            .get(i)
            .map_or_else(|| Value::Object(Map::new()), |row| row.result.clone())
    };
    Ok(match p.hit {
        HitPolicy::Collect => Value::Array(matched.into_iter().map(row_output).collect()),
        HitPolicy::First => first.map(row_output).unwrap_or(Value::Null),
        HitPolicy::Unique => matched
            .first()
            .map(|&i| row_output(i))
            .unwrap_or(Value::Null),
    })
}
