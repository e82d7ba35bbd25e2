//! The org's records, the rolling 24 h API usage, and how records render.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// The org's field indexes: (object, field) → lower-cased value → 15-character ids.
    /// Salesforce indexes `Id`, `Name`, `Email` of leads and contacts, and unique and
    /// external-id fields (SOQL and SOSL Reference, "Use Selective SOQL Queries"); a query
    /// filtering on one of them reads the index instead of every record.
    index: HashMap<(&'static str, &'static str), HashMap<String, BTreeSet<String>>>,
    pub(super) usage: Rolling,
}

/// Whether the org keeps an index on `field` of `obj` (see [`Data::index`]).
pub(super) fn indexed(obj: &SObject, field: &str) -> bool {
    field == "Name"
        || (field == "Email" && matches!(obj.name, "Lead" | "Contact"))
        || obj
            .fields
            .iter()
            .any(|f| f.name == field && (f.unique || f.external_id))
}

fn index_key(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        v => crate::util::to_plain_string(v).map(|s| s.to_ascii_lowercase()),
    }
}

/// What this fake's handlers get: the shared part and this vendor's own state.
pub(crate) type Ctx = Vendor<Data>;

impl VendorData for Data {
    fn new() -> Data {
        Data {
            next: 1,
            records: BTreeMap::new(),
            index: HashMap::new(),
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

    /// The 15-character ids of `obj` records whose indexed `field` is one of `values`
    /// (case-insensitively), in id order; `None` when the field has no index.
    pub(super) fn lookup<'a>(
        &self,
        obj: &SObject,
        field: &str,
        values: impl IntoIterator<Item = &'a str>,
    ) -> Option<BTreeSet<String>> {
        let field = obj.fields.iter().find(|f| f.name == field)?.name;
        if !indexed(obj, field) {
            return None;
        }
        let Some(by_value) = self.index.get(&(obj.name, field)) else {
            return Some(BTreeSet::new());
        };
        Some(
            values
                .into_iter()
                .filter_map(|v| by_value.get(&v.to_ascii_lowercase()))
                .flatten()
                .cloned()
                .collect(),
        )
    }

    fn index_record(
        &mut self,
        obj: &SObject,
        id15: &str,
        fields: &BTreeMap<&'static str, Value>,
        add: bool,
    ) {
        for (&f, v) in fields {
            if !indexed(obj, f) {
                continue;
            }
            let Some(key) = index_key(v) else { continue };
            let by_value = self.index.entry((obj.name, f)).or_default();
            if add {
                by_value.entry(key).or_default().insert(id15.to_string());
            } else if let Some(ids) = by_value.get_mut(&key) {
                ids.remove(id15);
                if ids.is_empty() {
                    by_value.remove(&key);
                }
            }
        }
    }

    /// Deletes a record (by its 15- or 18-character id).
    pub(super) fn remove(&mut self, obj: &SObject, id: &str) -> Option<Record> {
        let k = key15(id)?;
        let r = self.records.get_mut(obj.name)?.remove(&k)?;
        self.index_record(obj, &k, &r.fields, false);
        Some(r)
    }

    pub(super) fn find_unique(
        &self,
        obj: &SObject,
        field: &str,
        value: &str,
        except: Option<&str>,
    ) -> Option<String> {
        if let Some(ids) = self.lookup(obj, field, [value]) {
            return ids
                .iter()
                .filter_map(|k| self.records.get(obj.name)?.get(k))
                .find(|r| except != Some(r.id.as_str()))
                .map(|r| r.id.clone());
        }
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
        self.index_record(obj, &id15, &fields, true);
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
        let Some(k) = key15(id) else {
            return false;
        };
        let Some(mut r) = self.records.get_mut(obj.name).and_then(|m| m.remove(&k)) else {
            return false;
        };
        self.index_record(obj, &k, &r.fields, false);
        for (f, v) in changes {
            r.fields.insert(f, v);
        }
        r.fields
            .insert("LastModifiedDate", json!(sf_time(Utc::now())));
        set_name(&mut r.fields);
        self.index_record(obj, &k, &r.fields, true);
        self.records.entry(obj.name).or_default().insert(k, r);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(email: &str) -> BTreeMap<&'static str, Value> {
        BTreeMap::from([
            ("Email", json!(email)),
            ("LastName", json!("L")),
            ("Company", json!("C")),
        ])
    }

    #[test]
    fn the_email_index_follows_inserts_updates_and_deletes() {
        let lead_obj = OBJECTS.iter().find(|o| o.name == "Lead").unwrap();
        let mut d = Data::new();
        let a = d.insert(lead_obj, lead("a@x.com"));
        let b = d.insert(lead_obj, lead("B@x.com"));
        let ids = |d: &Data, v: &str| d.lookup(lead_obj, "Email", [v]).unwrap().len();
        assert_eq!(ids(&d, "b@X.com"), 1, "case-insensitively");
        assert_eq!(
            d.find_unique(lead_obj, "Email", "A@x.com", None),
            Some(a.clone())
        );
        assert_eq!(d.find_unique(lead_obj, "Email", "a@x.com", Some(&a)), None);
        assert!(d.update(lead_obj, &b, BTreeMap::from([("Email", json!("c@x.com"))])));
        assert_eq!(ids(&d, "b@x.com"), 0);
        assert_eq!(ids(&d, "c@x.com"), 1);
        assert_eq!(ids(&d, "l"), 0, "Name is `L`, not an Email");
        assert_eq!(d.lookup(lead_obj, "Name", ["l"]).unwrap().len(), 2);
        assert!(d.remove(lead_obj, &a).is_some());
        assert_eq!(ids(&d, "a@x.com"), 0);
        assert!(
            d.lookup(lead_obj, "Company", ["c"]).is_none(),
            "not indexed"
        );
    }
}
