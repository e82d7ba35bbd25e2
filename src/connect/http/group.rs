//! `batch: { group_by: ... }`: the items of one batch call split into requests that each hold
//! one group (one tenant, one account), in the order the groups first appear; within a group
//! the items keep their input order and are cut at the operation's `max_batch`.

use std::collections::HashMap;

use serde_json::Value;

use crate::connect::{ConnectError, ErrorKind};
use crate::expr::Env;
use crate::functions::SystemClock;
use crate::plan::provider::GroupBy;

/// The value of `group_by` for one item's payload (its fields are the expression's names).
pub(super) fn group_value(g: &GroupBy, payload: &Value) -> Result<Value, ConnectError> {
    let clock = SystemClock;
    let env = Env::new(payload, &clock);
    g.compiled.eval(&env).map(|v| v.into_owned()).map_err(|e| {
        ConnectError::new(
            ErrorKind::Validation,
            format!("batch.group_by `{}`: {e}", g.source),
        )
    })
}

/// The requests to send for `payloads`, as lists of positions, and the positions whose group
/// cannot be computed, with the reason (they fail alone, the others are sent).
pub(super) fn chunks(
    group_by: Option<&GroupBy>,
    payloads: &[&Value],
    max: usize,
) -> (Vec<Vec<usize>>, Vec<(usize, ConnectError)>) {
    let max = max.max(1);
    let all: Vec<usize> = (0..payloads.len()).collect();
    let Some(g) = group_by else {
        return (all.chunks(max).map(<[usize]>::to_vec).collect(), Vec::new());
    };
    // Groups by the value's JSON text: `"7"` and `7` are different groups, as they would
    // render differently.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut failed = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        match group_value(g, payload) {
            Ok(v) => {
                let at = *index.entry(v.to_string()).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                groups[at].push(i);
            }
            Err(e) => failed.push((i, e)),
        }
    }
    let chunks = groups
        .into_iter()
        .flat_map(|members| {
            members
                .chunks(max)
                .map(<[usize]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect();
    (chunks, failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Scope;
    use crate::functions::Registry;
    use serde_json::json;

    fn group_by(source: &str) -> GroupBy {
        let registry = Registry::builtin();
        let ast = crate::expr::parse(source).expect("parses");
        let (compiled, _) = crate::expr::compile(&ast, &Scope::new(&registry)).expect("compiles");
        GroupBy {
            compiled,
            source: source.to_string(),
        }
    }

    #[test]
    fn one_group_per_request_in_order_of_appearance() {
        let items = [
            json!({"t": "b", "n": 0}),
            json!({"t": "a", "n": 1}),
            json!({"t": "b", "n": 2}),
            json!({"t": "c", "n": 3}),
            json!({"t": "b", "n": 4}),
            json!({"t": "a", "n": 5}),
        ];
        let payloads: Vec<&Value> = items.iter().collect();
        let g = group_by("t");
        let (chunks, failed) = super::chunks(Some(&g), &payloads, 100);
        assert_eq!(chunks, vec![vec![0, 2, 4], vec![1, 5], vec![3]]);
        assert!(failed.is_empty());
        // A group larger than `max` is cut, within the group.
        let (chunks, _) = super::chunks(Some(&g), &payloads, 2);
        assert_eq!(chunks, vec![vec![0, 2], vec![4], vec![1, 5], vec![3]]);
        // Without `group_by`, chunks of `max` in input order.
        let (chunks, _) = super::chunks(None, &payloads, 4);
        assert_eq!(chunks, vec![vec![0, 1, 2, 3], vec![4, 5]]);
    }

    #[test]
    fn values_group_by_their_json_text() {
        let items = [
            json!({"t": 7}),
            json!({"t": "7"}),
            json!({}),
            json!({"t": 7}),
        ];
        let payloads: Vec<&Value> = items.iter().collect();
        let (chunks, failed) = super::chunks(Some(&group_by("t")), &payloads, 10);
        // A missing value is a group of its own (null), a number is not its text.
        assert_eq!(chunks, vec![vec![0, 3], vec![1], vec![2]]);
        assert!(failed.is_empty());
    }

    #[test]
    fn an_item_whose_group_fails_fails_alone() {
        let items = [json!({"t": "12"}), json!({"t": "x"}), json!({"t": "12"})];
        let payloads: Vec<&Value> = items.iter().collect();
        let (chunks, failed) = super::chunks(Some(&group_by("to_number(t)")), &payloads, 10);
        assert_eq!(chunks, vec![vec![0, 2]]);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, 1);
        assert_eq!(failed[0].1.kind, ErrorKind::Validation);
        assert!(
            failed[0]
                .1
                .message
                .starts_with("batch.group_by `to_number(t)`"),
            "{}",
            failed[0].1.message
        );
    }
}
