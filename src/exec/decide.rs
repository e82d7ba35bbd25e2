//! The duplicate decision: what to do with a record given what the target already holds.
//!
//! One pure function, [`decide`], used on every path — after a lookup, after a create the
//! target refused as a duplicate, and for a record whose identity an earlier record of the
//! same input already wrote.

use serde_json::{Map, Value};

use crate::connect::Found;
use crate::plan::DuplicatePlan;
use crate::syntax::doc::{OnMatch, OnMultiple};

use super::{FailureKind, RecordError};

/// What to do with one record.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Create,
    /// Update the existing record; `partial` holds only the fields to write (a merge).
    Update {
        id: String,
        partial: Option<Value>,
    },
    Skip {
        id: Option<String>,
        reason: String,
    },
    Fail(RecordError),
}

/// Decides by the flow's duplicate rule. `found` is what matches the record's identity (an
/// empty list: nothing does). `refused_as_duplicate` says the target refused our create as a
/// duplicate: then there must be a record to go to, or the record fails.
pub fn decide(
    rule: Option<&DuplicatePlan>,
    found: &[Found],
    refused_as_duplicate: bool,
    payload: &Value,
) -> Decision {
    let Some(rule) = rule else {
        return Decision::Create;
    };
    let existing = match found.len() {
        0 if refused_as_duplicate => {
            return Decision::Fail(RecordError::new(
                FailureKind::Duplicate,
                "the target refused the create as a duplicate, but no matching record can be found",
            ));
        }
        0 => return Decision::Create,
        1 => &found[0],
        n => match rule.on_multiple {
            OnMultiple::Fail => {
                return Decision::Fail(RecordError::new(
                    FailureKind::MultipleMatches,
                    format!("{n} target records match the identity key; on_multiple: fail"),
                ));
            }
            OnMultiple::First => pick_first(found),
            OnMultiple::MostRecent => pick_most_recent(found),
        },
    };
    match rule.on_match {
        OnMatch::Skip => Decision::Skip {
            id: Some(existing.id.clone()),
            reason: "a matching record exists; on_match: skip".into(),
        },
        OnMatch::CreateNew if !refused_as_duplicate => Decision::Create,
        // A target that keeps the identity unique refuses a second record: the one it has is
        // updated rather than the record lost.
        OnMatch::Update | OnMatch::CreateNew => Decision::Update {
            id: existing.id.clone(),
            partial: None,
        },
        OnMatch::Merge => {
            let fill = blanks_only(payload, &existing.fields);
            if fill.is_empty() {
                Decision::Skip {
                    id: Some(existing.id.clone()),
                    reason: "nothing to merge: the target has every field".into(),
                }
            } else {
                Decision::Update {
                    id: existing.id.clone(),
                    partial: Some(Value::Object(fill)),
                }
            }
        }
    }
}

/// The record with the lowest id: deterministic whatever order the target returns.
fn pick_first(found: &[Found]) -> &Found {
    found
        .iter()
        .min_by(|a, b| match (a.id.parse::<u64>(), b.id.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.id.cmp(&b.id),
        })
        .unwrap_or(&found[0])
}

/// The most recently modified record; ties (or no timestamps) fall back to the lowest id.
fn pick_most_recent(found: &[Found]) -> &Found {
    let latest = found.iter().filter_map(|f| f.updated_at.as_deref()).max();
    match latest {
        Some(t) => {
            let newest: Vec<Found> = found
                .iter()
                .filter(|f| f.updated_at.as_deref() == Some(t))
                .cloned()
                .collect();
            let id = pick_first(&newest).id.clone();
            found.iter().find(|f| f.id == id).unwrap_or(&found[0])
        }
        None => pick_first(found),
    }
}

/// The payload fields whose value in the existing record is missing, null or empty (an empty
/// string, object or list: "set only if empty"). `existing` is the record's flat field map,
/// as the connector extracted it.
fn blanks_only(payload: &Value, existing: &Value) -> Map<String, Value> {
    let Some(fields) = payload.as_object() else {
        return Map::new();
    };
    fields
        .iter()
        .filter(|(k, _)| match existing.get(k.as_str()) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            // A contact created without attributes holds `{}`: nothing to keep.
            Some(Value::Object(o)) => o.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn found(id: &str, at: Option<&str>, fields: Value) -> Found {
        Found {
            id: id.into(),
            updated_at: at.map(String::from),
            fields,
        }
    }

    fn rule(on_match: OnMatch, on_multiple: OnMultiple) -> DuplicatePlan {
        DuplicatePlan {
            match_keys: vec!["email".into()],
            on_match,
            on_multiple,
            ..DuplicatePlan::default()
        }
    }

    #[test]
    fn nothing_found_creates_and_no_rule_creates() {
        let r = rule(OnMatch::Update, OnMultiple::Fail);
        assert_eq!(decide(Some(&r), &[], false, &json!({})), Decision::Create);
        assert_eq!(decide(None, &[], false, &json!({})), Decision::Create);
    }

    #[test]
    fn one_match_follows_on_match() {
        let f = [found("7", None, json!({"phone": "", "city": "Oslo"}))];
        let p = json!({"phone": "+47", "city": "Bergen"});
        let d = |m| decide(Some(&rule(m, OnMultiple::Fail)), &f, false, &p);
        assert_eq!(
            d(OnMatch::Update),
            Decision::Update {
                id: "7".into(),
                partial: None
            }
        );
        assert!(matches!(d(OnMatch::Skip), Decision::Skip { id: Some(id), .. } if id == "7"));
        assert_eq!(d(OnMatch::CreateNew), Decision::Create);
        assert_eq!(
            d(OnMatch::Merge),
            Decision::Update {
                id: "7".into(),
                partial: Some(json!({"phone": "+47"}))
            }
        );
        let full = [found("7", None, json!({"phone": "+1", "city": "Oslo"}))];
        assert!(matches!(
            decide(
                Some(&rule(OnMatch::Merge, OnMultiple::Fail)),
                &full,
                false,
                &p
            ),
            Decision::Skip { .. }
        ));
    }

    #[test]
    fn several_matches_follow_on_multiple() {
        let f = [
            found("12", Some("2024-01-02T00:00:00Z"), json!({})),
            found("9", Some("2024-01-01T00:00:00Z"), json!({})),
            found("100", Some("2024-01-03T00:00:00Z"), json!({})),
        ];
        let p = json!({});
        let d = |m| decide(Some(&rule(OnMatch::Update, m)), &f, false, &p);
        assert!(
            matches!(d(OnMultiple::Fail), Decision::Fail(e) if e.kind == FailureKind::MultipleMatches)
        );
        assert!(matches!(d(OnMultiple::First), Decision::Update { id, .. } if id == "9"));
        assert!(matches!(d(OnMultiple::MostRecent), Decision::Update { id, .. } if id == "100"));
    }

    #[test]
    fn most_recent_ties_go_to_the_lowest_id() {
        let f = [
            found("3", Some("2024-01-02T00:00:00Z"), json!({})),
            found("2", Some("2024-01-03T00:00:00Z"), json!({})),
            found("1", Some("2024-01-03T00:00:00Z"), json!({})),
        ];
        assert_eq!(pick_most_recent(&f).id, "1");
    }

    #[test]
    fn a_refused_create_needs_a_record_to_go_to() {
        let r = rule(OnMatch::Update, OnMultiple::Fail);
        assert!(
            matches!(decide(Some(&r), &[], true, &json!({})), Decision::Fail(e) if e.kind == FailureKind::Duplicate)
        );
        let f = [found("5", None, json!({}))];
        assert!(
            matches!(decide(Some(&r), &f, true, &json!({})), Decision::Update { id, .. } if id == "5")
        );
        let r = rule(OnMatch::CreateNew, OnMultiple::Fail);
        assert!(matches!(
            decide(Some(&r), &f, true, &json!({})),
            Decision::Update { id, .. } if id == "5"
        ));
    }

    #[test]
    fn merge_fills_empty_objects_and_lists() {
        let payload = json!({"custom_attributes": {"plan": "pro"}, "tags": ["a"]});
        let existing = json!({"id": "1", "custom_attributes": {}, "tags": []});
        assert_eq!(Value::Object(blanks_only(&payload, &existing)), payload);
    }
}
