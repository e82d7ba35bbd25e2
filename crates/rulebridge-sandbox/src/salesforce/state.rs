//! The org's records, the rolling 24 h API usage, and how records render.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::USER_ID;
use super::ids::{id18, key15, make_id15, sf_time};
use super::schema::{OBJECTS, SObject};
use crate::ratelimit::Rolling;
use crate::store::{Vendor, VendorData};

#[derive(Clone, Debug)]
pub(super) struct Record {
    pub(super) id: String,
    pub(super) fields: BTreeMap<&'static str, Value>,
}

pub(crate) struct Data {
    pub(super) next: u64,
    /// By object name, then 15-character id.
    pub(super) records: BTreeMap<&'static str, BTreeMap<String, Record>>,
    pub(super) usage: Rolling,
}

/// What this fake's handlers get: the shared part and this vendor's own state.
pub(crate) type Ctx = Vendor<Data>;

impl VendorData for Data {
    fn new() -> Data {
        Data {
            next: 1,
            records: BTreeMap::new(),
            usage: Rolling::new(Duration::from_secs(24 * 3600)),
        }
    }

    fn records(&self) -> BTreeMap<String, Vec<Value>> {
        let mut out = BTreeMap::new();
        for o in OBJECTS {
            out.insert(
                o.name.to_string(),
                self.records
                    .get(o.name)
                    .map(|m| m.values().map(|r| render(o, r, None, "v58.0")).collect())
                    .unwrap_or_default(),
            );
        }
        out
    }
}

impl Data {
    pub(super) fn get(&self, obj: &SObject, id: &str) -> Option<&Record> {
        self.records.get(obj.name)?.get(&key15(id)?)
    }

    pub(super) fn find_unique(
        &self,
        obj: &SObject,
        field: &str,
        value: &str,
        except: Option<&str>,
    ) -> Option<String> {
        self.records.get(obj.name)?.values().find_map(|r| {
            let hit = r
                .fields
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(value));
            (hit && except != Some(r.id.as_str())).then(|| r.id.clone())
        })
    }

    pub(super) fn insert(
        &mut self,
        obj: &SObject,
        mut fields: BTreeMap<&'static str, Value>,
    ) -> String {
        let id15 = make_id15(obj.prefix, self.next);
        self.next += 1;
        let id = id18(&id15);
        let now = sf_time(Utc::now());
        fields.insert("Id", json!(id));
        fields.insert("IsDeleted", json!(false));
        fields.insert("CreatedDate", json!(now));
        fields.insert("LastModifiedDate", json!(now));
        fields.entry("OwnerId").or_insert(json!(USER_ID));
        for fd in obj.fields {
            if let Some(d) = fd.default {
                fields.entry(fd.name).or_insert(json!(d));
            }
        }
        set_name(&mut fields);
        self.records.entry(obj.name).or_default().insert(
            id15,
            Record {
                id: id.clone(),
                fields,
            },
        );
        id
    }

    pub(super) fn update(
        &mut self,
        obj: &SObject,
        id: &str,
        changes: BTreeMap<&'static str, Value>,
    ) -> bool {
        let Some(r) = key15(id).and_then(|k| self.records.get_mut(obj.name)?.get_mut(&k)) else {
            return false;
        };
        for (k, v) in changes {
            r.fields.insert(k, v);
        }
        r.fields
            .insert("LastModifiedDate", json!(sf_time(Utc::now())));
        set_name(&mut r.fields);
        true
    }
}

pub(super) fn set_name(fields: &mut BTreeMap<&'static str, Value>) {
    let part = |k: &str| {
        fields
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let name = format!("{} {}", part("FirstName"), part("LastName"))
        .trim()
        .to_string();
    fields.insert("Name", json!(name));
}

pub(super) fn record_url(obj: &SObject, id: &str, version: &str) -> String {
    format!("/services/data/{version}/sobjects/{}/{id}", obj.name)
}

pub(super) fn render(
    obj: &SObject,
    r: &Record,
    only: Option<&[&'static str]>,
    version: &str,
) -> Value {
    let mut m = Map::new();
    m.insert(
        "attributes".into(),
        json!({"type": obj.name, "url": record_url(obj, &r.id, version)}),
    );
    let names: Vec<&'static str> = match only {
        Some(list) => list.to_vec(),
        None => obj.fields.iter().map(|f| f.name).collect(),
    };
    for n in names {
        m.insert(
            n.to_string(),
            r.fields.get(n).cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(m)
}
