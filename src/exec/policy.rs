//! Evaluating a decision table on one record.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::expr::Env;
use crate::plan::PolicyPlan;
use crate::syntax::doc::HitPolicy;

use super::{ExecContext, FailureKind, RecordError};

/// The table's result: an object of outputs for `first`/`unique` (null when no row
/// matches), an array of such objects for `collect`.
pub fn evaluate(p: &PolicyPlan, record: &Value, cx: &ExecContext) -> Result<Value, RecordError> {
    let env = Env {
        record,
        bindings: &[],
        clock: cx.clock.as_ref(),
    };
    let mut inputs: Vec<Cow<'_, Value>> = Vec::with_capacity(p.inputs.len());
    for input in &p.inputs {
        let v = input.compiled.eval(&env).map_err(|e| {
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

    let candidates: Vec<usize> = match (&p.index, inputs.first()) {
        (Some(index), Some(first)) => index.candidates(first),
        _ => (0..p.rows.len()).collect(),
    };

    let mut matched: Vec<usize> = Vec::new();
    for i in candidates {
        let Some(row) = p.rows.get(i) else { continue };
        let mut all = true;
        for (test, input) in row.tests.iter().zip(&inputs) {
            let ok = test.matches(input, &env).map_err(|e| {
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
        matched.push(i);
        match p.hit {
            HitPolicy::First => break,
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

    let row_output = |i: usize| -> Value {
        let mut m = Map::with_capacity(p.outputs.len());
        if let Some(row) = p.rows.get(i) {
            for ((name, _), v) in p.outputs.iter().zip(&row.outputs) {
                m.insert(name.clone(), v.clone());
            }
        }
        Value::Object(m)
    };
    Ok(match p.hit {
        HitPolicy::Collect => Value::Array(matched.into_iter().map(row_output).collect()),
        HitPolicy::First | HitPolicy::Unique => matched
            .first()
            .map(|&i| row_output(i))
            .unwrap_or(Value::Null),
    })
}
