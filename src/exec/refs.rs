//! References between objects: a mapped field that holds the target's own id of another
//! object's record (`client_id: { ref: client, where: { external_id: "billing-${id}" } }`).
//!
//! Evaluation does no I/O: it writes the reference unresolved into the payload, as
//! `{"ref": "client", "where": {"external_id": "billing-17"}}` (what a dry run shows). The
//! send sink resolves it before it looks the record up, through the referenced object's
//! search on the flow's connector, and writes the id in its place (a number where the target
//! field is declared one). Lookups are cached per run: one search per distinct object and
//! key, shared by every record and every concurrent group, concurrent askers waiting for the
//! one search in flight. A found record is cached, and so is "none" or "several" (within one
//! run the referenced object is written by an earlier flow, not this one); a failed search is
//! not, so the next record asks again.
//!
//! A key that evaluates to null means "no reference": the field is null. No record found
//! fails the record as `unresolved_reference`, naming the field; so do several, since a link
//! to an arbitrary one of them would be wrong without anyone noticing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::connect::{Call, ConnectError, Connector, Found, fields_agree};
use crate::expr::Env;
use crate::plan::{FlowPlan, RefField, RefKeyPlan, RefPlan};

use super::{FailureKind, RecordError};

/// The unresolved form of a reference, as evaluation writes it into the payload.
pub(crate) fn evaluate(r: &RefPlan, env: &Env<'_>, field: &str) -> Result<Value, RecordError> {
    let mut by = Map::with_capacity(r.by.len());
    for (name, key) in &r.by {
        let v = match key {
            RefKeyPlan::Expr(at) => {
                let v = at.compiled.eval(env).map_err(|e| {
                    RecordError::new(
                        FailureKind::Mapping,
                        format!("reference to `{}` by `{name}`: {}", r.object, e.message),
                    )
                    .with_field(field)
                    .at(&at.location)
                })?;
                match v.as_ref() {
                    Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {
                        v.into_owned()
                    }
                    other => {
                        return Err(RecordError::new(
                            FailureKind::Mapping,
                            format!(
                                "reference to `{}` by `{name}`: the key is {}, not a string, number or boolean",
                                r.object,
                                crate::functions::type_name(other)
                            ),
                        )
                        .with_field(field)
                        .at(&at.location));
                    }
                }
            }
            RefKeyPlan::Ref(inner) => evaluate(inner, env, field)?,
        };
        if v.is_null() {
            // No key, no reference.
            return Ok(Value::Null);
        }
        by.insert(name.clone(), v);
    }
    let mut out = Map::with_capacity(2);
    out.insert("ref".into(), Value::String(r.object.clone()));
    out.insert("where".into(), Value::Object(by));
    Ok(Value::Object(out))
}

/// `(object, [(field, value)])` of an unresolved reference whose keys are all resolved.
type Lookup = (String, Vec<(String, String)>);

/// What a lookup found.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Hit {
    One(String),
    None,
    Several(usize),
}

/// Resolves the references of a flow's records, with the run's cache.
pub struct Resolver {
    connector: Arc<dyn Connector>,
    cache: Mutex<HashMap<Lookup, Arc<OnceCell<Hit>>>>,
    /// The state store's id map, asked before the target is searched.
    ids: Option<IdMap>,
}

/// Where a run's id map is: the store and the tenant and provider the references point into.
#[derive(Clone)]
pub struct IdMap {
    pub store: Arc<dyn crate::state::Store>,
    pub tenant: String,
    pub provider: String,
}

/// Why a record's references could not be resolved.
pub(crate) enum Unresolved {
    /// Nothing (or more than one record) matched: the record fails as `unresolved_reference`.
    Missing(RecordError),
    /// The search failed.
    Failed(ConnectError),
}

impl Resolver {
    pub fn new(connector: Arc<dyn Connector>) -> Self {
        Resolver {
            connector,
            cache: Mutex::new(HashMap::new()),
            ids: None,
        }
    }

    /// Resolves references from the id map first: a record some flow wrote and recorded
    /// needs no search.
    pub fn with_id_map(mut self, ids: IdMap) -> Self {
        self.ids = Some(ids);
        self
    }

    /// The id the id map holds for a one-field lookup.
    async fn stored_id(&self, object: &str, field: &str, value: &str) -> Option<String> {
        let ids = self.ids.clone()?;
        let target = crate::state::Target {
            tenant: ids.tenant.clone(),
            provider: ids.provider.clone(),
            object: object.to_string(),
        };
        let (field, values) = (field.to_string(), vec![value.to_string()]);
        let scope = crate::state::Scope::default();
        let found = super::ledger::detached(&ids.store, &scope, move |st, _| {
            Box::pin(async move { st.ids(&target, &field, &values).await })
        })
        .await;
        // Only a shortcut: a failed read falls back to the search.
        found.ok()?.into_iter().next().flatten()
    }

    /// Replaces every reference in `payload` with the id of the record it points at.
    pub(crate) async fn resolve(
        &self,
        call: &Call,
        flow: &FlowPlan,
        payload: &mut Value,
    ) -> Result<(), Unresolved> {
        for field in &flow.refs {
            let Some(slot) = at_path(payload, &field.path) else {
                continue;
            };
            if !slot.is_object() {
                // Null: no reference.
                continue;
            }
            let id = self.resolve_one(call, field, slot).await?;
            *slot = id_value(&id, field.numeric);
        }
        Ok(())
    }

    /// The id a reference (and the references inside it) points at.
    async fn resolve_one(
        &self,
        call: &Call,
        field: &RefField,
        placeholder: &Value,
    ) -> Result<String, Unresolved> {
        let object = placeholder
            .get("ref")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut criteria = Vec::new();
        if let Some(Value::Object(by)) = placeholder.get("where") {
            for (name, v) in by {
                let text = match v {
                    Value::Object(_) => Box::pin(self.resolve_one(call, field, v)).await?,
                    other => plain(other),
                };
                criteria.push((name.clone(), text));
            }
        }
        let lookup = (object, criteria);
        match self
            .lookup(call, &lookup)
            .await
            .map_err(Unresolved::Failed)?
        {
            Hit::One(id) => Ok(id),
            Hit::None => Err(Unresolved::Missing(missing(field, &lookup, None))),
            Hit::Several(n) => Err(Unresolved::Missing(missing(field, &lookup, Some(n)))),
        }
    }

    /// One search per distinct lookup per run; concurrent askers share the one in flight.
    async fn lookup(&self, call: &Call, lookup: &Lookup) -> Result<Hit, ConnectError> {
        let cell = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.entry(lookup.clone()).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            let (object, criteria) = lookup;
            let pairs: Vec<(&str, &str)> = criteria
                .iter()
                .map(|(f, v)| (f.as_str(), v.as_str()))
                .collect();
            if let [(f, v)] = pairs.as_slice()
                && let Some(id) = self.stored_id(object, f, v).await
            {
                return Ok(Hit::One(id));
            }
            let found = match pairs.as_slice() {
                [(f, v)] => self.connector.search(call, object, f, v).await?,
                _ => self.connector.search_where(call, object, &pairs).await?,
            };
            // A search that ignores the field it is given finds no false match here.
            let found: Vec<Found> = found
                .into_iter()
                .filter(|f| fields_agree(&f.fields, &pairs, false))
                .collect();
            let mut ids: Vec<String> = found.into_iter().map(|f| f.id).collect();
            ids.dedup();
            Ok(match ids.len() {
                0 => Hit::None,
                1 => Hit::One(ids.remove(0)),
                n => Hit::Several(n),
            })
        })
        .await
        .cloned()
    }
}

/// The `unresolved_reference` failure of `field`.
fn missing(field: &RefField, lookup: &Lookup, several: Option<usize>) -> RecordError {
    let (object, criteria) = lookup;
    let by: Vec<String> = criteria
        .iter()
        .map(|(f, v)| format!("{f} = {}", Value::String(v.clone())))
        .collect();
    let message = match several {
        None => format!(
            "`{}` refers to a {object} with {}, and there is none",
            field.path,
            by.join(" and ")
        ),
        Some(n) => format!(
            "`{}` refers to a {object} with {}, and {n} match; a reference must identify one record",
            field.path,
            by.join(" and ")
        ),
    };
    RecordError::new(FailureKind::UnresolvedReference, message)
        .with_field(&field.path)
        .at(&field.location)
}

/// The resolved id as the target field wants it.
fn id_value(id: &str, numeric: bool) -> Value {
    if numeric {
        if let Ok(n) = id.parse::<u64>() {
            return Value::from(n);
        }
        if let Ok(n) = id.parse::<i64>() {
            return Value::from(n);
        }
    }
    Value::String(id.to_string())
}

/// A scalar as the text a search is given.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The value at a dotted payload path.
fn at_path<'v>(payload: &'v mut Value, path: &str) -> Option<&'v mut Value> {
    let mut node = payload;
    for part in path.split('.') {
        node = node.as_object_mut()?.get_mut(part)?;
    }
    Some(node)
}

/// The `(field, value)` pairs a match key looks records up by, from the (resolved) payload,
/// when the plain identity value cannot stand for them: a compound key (`project_id+title`)
/// or a key on a reference field (its identity is the unresolved reference, not the id).
pub(crate) fn key_criteria(
    flow: &FlowPlan,
    key: &str,
    payload: &Value,
) -> Option<Vec<(String, String)>> {
    let compound = key.contains('+');
    if !compound && flow.ref_field(key).is_none() {
        return None;
    }
    Some(
        key.split('+')
            .map(|f| (f.to_string(), payload.get(f).map(plain).unwrap_or_default()))
            .collect(),
    )
}

/// Searches by a key's criteria (see [`key_criteria`]).
pub(crate) async fn search_by_criteria(
    connector: &dyn Connector,
    call: &Call,
    object: &str,
    criteria: &[(String, String)],
) -> Result<Vec<Found>, ConnectError> {
    let pairs: Vec<(&str, &str)> = criteria
        .iter()
        .map(|(f, v)| (f.as_str(), v.as_str()))
        .collect();
    connector.search_where(call, object, &pairs).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_become_numbers_where_the_field_is_numeric() {
        assert_eq!(id_value("42", true), json!(42));
        assert_eq!(id_value("42", false), json!("42"));
        assert_eq!(id_value("a-1", true), json!("a-1"));
    }

    #[test]
    fn paths_reach_nested_fields() {
        let mut p = json!({"a": {"b": 1}, "c": 2});
        assert_eq!(at_path(&mut p, "a.b").cloned(), Some(json!(1)));
        assert_eq!(at_path(&mut p, "c").cloned(), Some(json!(2)));
        assert!(at_path(&mut p, "a.x").is_none());
    }
}
