//! A connector that keeps records in memory: for rule-file tests that set the scene
//! (`existing:` records), for embedders' tests, and for checking the engine's decisions.
//!
//! It behaves like a simple CRM: ids are numbers counted from 1 per connector, search matches
//! a field case- and space-insensitively (as identity keys compare), fields listed as unique
//! refuse a second record with the same value (a duplicate naming the existing id), updates
//! merge the given fields into the record. Faults can be queued to see what the engine does
//! when a request fails before or after the system processed it.
//!
//! ```
//! use rulebridge::connect::memory::MemoryConnector;
//! use rulebridge::connect::{Call, Connector};
//! use serde_json::json;
//!
//! let crm = MemoryConnector::new().unique("contact", "email");
//! crm.insert("contact", json!({"email": "ada@example.com"}));
//! let call = Call::default();
//! let found = futures::executor::block_on(crm.search(&call, "contact", "email", "ADA@example.com "));
//! assert_eq!(found.unwrap()[0].id, "1");
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use futures::future::BoxFuture;
use serde_json::Value;

use super::{
    Call, Capabilities, ConnectError, Connector, ErrorKind, Found, UpdateItem, UpsertItem, Written,
};

/// A failure to inject into the next request of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The request fails before the system processes it (nothing is written).
    Before,
    /// The system processes the request, then the response is lost (the write happened; the
    /// caller cannot know).
    After,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, BTreeMap<u64, Value>>,
    next_id: u64,
    faults: HashMap<String, VecDeque<Fault>>,
    calls: Vec<String>,
    /// Records "another writer" stores just before our next create.
    races: Vec<(String, Value)>,
}

/// Records in memory, per object. See the module docs.
#[derive(Default)]
pub struct MemoryConnector {
    state: Mutex<State>,
    unique: Vec<(String, String)>,
    refused: Vec<(String, String, Value)>,
    updated_at: Option<String>,
    capabilities: Capabilities,
}

impl MemoryConnector {
    /// An empty store that can search, create and update, one record per request.
    pub fn new() -> Self {
        MemoryConnector {
            capabilities: Capabilities {
                search: true,
                create: true,
                update: true,
                ..Capabilities::default()
            },
            ..Default::default()
        }
    }

    /// Refuses a second record of `object` with the same `field` value, like a CRM's unique
    /// property.
    pub fn unique(mut self, object: &str, field: &str) -> Self {
        self.unique.push((object.to_string(), field.to_string()));
        self
    }

    /// Refuses writes of `object` whose `field` holds `value`, as a validation error.
    pub fn refuse(mut self, object: &str, field: &str, value: Value) -> Self {
        self.refused
            .push((object.to_string(), field.to_string(), value));
        self
    }

    /// Reports each record's `field` as its last modification time.
    pub fn updated_at(mut self, field: &str) -> Self {
        self.updated_at = Some(field.to_string());
        self
    }

    /// Another writer stores `fields` in `object` just before our next create.
    pub fn race_next_create(&self, object: &str, fields: Value) {
        self.lock().races.push((object.to_string(), fields));
    }

    /// Declares batch operations (and their largest batch).
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Stores a record as it is; returns its id.
    pub fn insert(&self, object: &str, fields: Value) -> String {
        let mut s = self.lock();
        s.next_id += 1;
        let id = s.next_id;
        s.objects
            .entry(object.to_string())
            .or_default()
            .insert(id, fields);
        id.to_string()
    }

    /// The records of `object`, by id.
    pub fn records(&self, object: &str) -> Vec<(String, Value)> {
        self.lock()
            .objects
            .get(object)
            .map(|m| {
                m.iter()
                    .map(|(id, v)| (id.to_string(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The operations called so far, e.g. `search contact email=ada@example.com`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Makes the next request of `operation` (`search`, `create`, `update`, `upsert_batch`,
    /// `create_batch`, `update_batch`) fail with `fault`; several queue up in order.
    pub fn fail_next(&self, operation: &str, fault: Fault) {
        self.lock()
            .faults
            .entry(operation.to_string())
            .or_default()
            .push_back(fault);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fault(&self, s: &mut State, operation: &str) -> Option<Fault> {
        s.faults.get_mut(operation).and_then(VecDeque::pop_front)
    }

    fn find_in(&self, s: &State, object: &str, field: &str, value: &str) -> Vec<Found> {
        let mut found = Self::find(s, object, field, value);
        if let Some(at) = &self.updated_at {
            for f in &mut found {
                f.updated_at = f.fields.get(at).and_then(Value::as_str).map(String::from);
            }
        }
        found
    }

    fn find(s: &State, object: &str, field: &str, value: &str) -> Vec<Found> {
        let wanted = normalize(value);
        s.objects
            .get(object)
            .map(|m| {
                m.iter()
                    .filter(|(_, r)| r.get(field).and_then(text).is_some_and(|v| v == wanted))
                    .map(|(id, r)| Found {
                        id: id.to_string(),
                        updated_at: None,
                        fields: r.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn create_in(
        &self,
        s: &mut State,
        object: &str,
        payload: &Value,
    ) -> Result<Written, ConnectError> {
        for (o, fields) in std::mem::take(&mut s.races) {
            s.next_id += 1;
            let id = s.next_id;
            s.objects.entry(o).or_default().insert(id, fields);
        }
        self.check(object, payload)?;
        for (o, field) in &self.unique {
            if o != object {
                continue;
            }
            let Some(v) = payload.get(field).and_then(text) else {
                continue;
            };
            if let Some(existing) = Self::find(s, object, field, &v).first() {
                let mut e = ConnectError::new(
                    ErrorKind::Duplicate,
                    format!("a {object} with this {field} exists: {}", existing.id),
                );
                e.status = Some(409);
                e.existing_id = Some(existing.id.clone());
                return Err(e);
            }
        }
        s.next_id += 1;
        let id = s.next_id;
        s.objects
            .entry(object.to_string())
            .or_default()
            .insert(id, payload.clone());
        Ok(Written {
            id: Some(id.to_string()),
            created: Some(true),
        })
    }

    fn check(&self, object: &str, payload: &Value) -> Result<(), ConnectError> {
        for (o, field, value) in &self.refused {
            if o == object && payload.get(field) == Some(value) {
                let mut e =
                    ConnectError::new(ErrorKind::Validation, format!("{field} may not be {value}"));
                e.status = Some(400);
                e.field = Some(field.clone());
                return Err(e);
            }
        }
        Ok(())
    }

    fn update_in(
        &self,
        s: &mut State,
        object: &str,
        id: &str,
        payload: &Value,
    ) -> Result<Written, ConnectError> {
        self.check(object, payload)?;
        let record = id
            .parse::<u64>()
            .ok()
            .and_then(|n| s.objects.get_mut(object).and_then(|m| m.get_mut(&n)));
        let Some(record) = record else {
            let mut e = ConnectError::new(ErrorKind::NotFound, format!("no {object} {id}"));
            e.status = Some(404);
            return Err(e);
        };
        if let (Value::Object(r), Value::Object(p)) = (record, payload) {
            for (k, v) in p {
                r.insert(k.clone(), v.clone());
            }
        }
        Ok(Written {
            id: Some(id.to_string()),
            created: Some(false),
        })
    }

    /// Runs `op` under the queued fault of `operation`, if any.
    fn guarded<T>(
        &self,
        operation: &str,
        log: String,
        op: impl FnOnce(&Self, &mut State) -> Result<T, ConnectError>,
    ) -> Result<T, ConnectError> {
        let mut s = self.lock();
        s.calls.push(log);
        match self.fault(&mut s, operation) {
            Some(Fault::Before) => Err(ConnectError::new(
                ErrorKind::Transient,
                "the connection was refused",
            )),
            Some(Fault::After) => {
                let _ = op(self, &mut s);
                let mut e = ConnectError::new(
                    ErrorKind::Transient,
                    "the connection closed before the response",
                );
                e.outcome_unknown = true;
                Err(e)
            }
            None => op(self, &mut s),
        }
    }
}

/// A field value as identity keys compare it.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(normalize(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn normalize(s: &str) -> String {
    s.trim().to_lowercase()
}

impl Connector for MemoryConnector {
    fn capabilities(&self, _object: &str) -> Capabilities {
        self.capabilities
    }

    fn search<'a>(
        &'a self,
        _call: &'a Call,
        object: &'a str,
        field: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Found>, ConnectError>> {
        let r = self.guarded(
            "search",
            format!("search {object} {field}={value}"),
            |me, s| Ok(me.find_in(s, object, field, value)),
        );
        Box::pin(std::future::ready(r))
    }

    fn search_many<'a>(
        &'a self,
        _call: &'a Call,
        object: &'a str,
        field: &'a str,
        values: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<(usize, Found)>, ConnectError>> {
        let log = format!("search {object} {field} in [{}]", values.join(","));
        let r = self.guarded("search", log, |me, s| {
            Ok(values
                .iter()
                .enumerate()
                .flat_map(|(i, v)| {
                    me.find_in(s, object, field, v)
                        .into_iter()
                        .map(move |f| (i, f))
                })
                .collect())
        });
        Box::pin(std::future::ready(r))
    }

    fn create<'a>(
        &'a self,
        _call: &'a Call,
        object: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>> {
        let r = self.guarded("create", format!("create {object}"), |me, s| {
            me.create_in(s, object, payload)
        });
        Box::pin(std::future::ready(r))
    }

    fn update<'a>(
        &'a self,
        _call: &'a Call,
        object: &'a str,
        id: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>> {
        let r = self.guarded("update", format!("update {object} {id}"), |me, s| {
            me.update_in(s, object, id, payload)
        });
        Box::pin(std::future::ready(r))
    }

    fn upsert_batch<'a>(
        &'a self,
        _call: &'a Call,
        object: &'a str,
        field: &'a str,
        items: &'a [UpsertItem<'a>],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>> {
        let log = format!("upsert_batch {object} {field} x{}", items.len());
        let r = self.guarded("upsert_batch", log, |me, s| {
            Ok(items
                .iter()
                .map(|it| match Self::find(s, object, field, it.key).first() {
                    Some(f) => me.update_in(s, object, &f.id.clone(), it.payload),
                    None => me.create_in(s, object, it.payload),
                })
                .collect::<Vec<_>>())
        });
        Box::pin(std::future::ready(spread(r, items.len())))
    }

    fn create_batch<'a>(
        &'a self,
        _call: &'a Call,
        object: &'a str,
        payloads: &'a [&'a Value],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>> {
        let log = format!("create_batch {object} x{}", payloads.len());
        let r = self.guarded("create_batch", log, |me, s| {
            Ok(payloads
                .iter()
                .map(|p| me.create_in(s, object, p))
                .collect::<Vec<_>>())
        });
        Box::pin(std::future::ready(spread(r, payloads.len())))
    }

    fn update_batch<'a>(
        &'a self,
        _call: &'a Call,
        object: &'a str,
        items: &'a [UpdateItem<'a>],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>> {
        let log = format!("update_batch {object} x{}", items.len());
        let r = self.guarded("update_batch", log, |me, s| {
            Ok(items
                .iter()
                .map(|it| me.update_in(s, object, it.id, it.payload))
                .collect::<Vec<_>>())
        });
        Box::pin(std::future::ready(spread(r, items.len())))
    }
}

/// One result per item: a whole-request failure fails each.
fn spread(
    r: Result<Vec<Result<Written, ConnectError>>, ConnectError>,
    n: usize,
) -> Vec<Result<Written, ConnectError>> {
    match r {
        Ok(v) => v,
        Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
    }
}
