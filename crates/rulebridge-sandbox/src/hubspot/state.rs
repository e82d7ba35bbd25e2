//! The portal's contacts (live and archived), rate-limit windows and daily counts.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::DEFAULT_PROPERTIES;
use super::properties::{Properties, default_properties};
use crate::ratelimit::Rolling;
use crate::store::{Vendor, VendorData};

pub(crate) struct Data {
    pub(super) next_id: u64,
    pub(super) contacts: BTreeMap<u64, Contact>,
    pub(super) archived: BTreeMap<u64, Contact>,
    pub(super) window: Rolling,
    pub(super) search_window: Rolling,
    pub(super) daily_used: HashMap<String, u32>,
    /// The portal's contact properties: HubSpot's defaults, then those created through the
    /// properties API.
    pub(super) properties: Properties,
    /// Lower-cased e-mail → the first contact written with it: a shortcut for `by_email`,
    /// checked against the contact before it is believed (so a stale entry only costs a scan).
    pub(super) email_index: HashMap<String, u64>,
}

#[derive(Clone, Debug)]
pub(super) struct Contact {
    pub(super) id: u64,
    pub(super) props: BTreeMap<String, String>,
    pub(super) created: DateTime<Utc>,
    pub(super) updated: DateTime<Utc>,
    /// When the latest write happened (search sees it after `hubspot_search_lag`).
    pub(super) written: Instant,
    pub(super) archived_at: Option<DateTime<Utc>>,
}

/// What this fake's handlers get: the shared part and this vendor's own state.
pub(crate) type Ctx = Vendor<Data>;

impl VendorData for Data {
    fn new() -> Data {
        Data {
            next_id: 1001,
            contacts: BTreeMap::new(),
            archived: BTreeMap::new(),
            window: Rolling::new(Duration::from_secs(10)),
            search_window: Rolling::new(Duration::from_secs(1)),
            daily_used: HashMap::new(),
            properties: default_properties(),
            email_index: HashMap::new(),
        }
    }

    fn records(&self) -> BTreeMap<String, Vec<Value>> {
        let mut out = BTreeMap::new();
        out.insert(
            "contacts".to_string(),
            self.contacts.values().map(|c| render(c, None)).collect(),
        );
        if !self.archived.is_empty() {
            out.insert(
                "archived_contacts".to_string(),
                self.archived.values().map(|c| render(c, None)).collect(),
            );
        }
        out
    }
}

impl Data {
    pub(super) fn by_email(&self, email: &str) -> Option<u64> {
        let wanted = email.trim();
        let holds = |c: &Contact| {
            c.props
                .get("email")
                .is_some_and(|e| e.eq_ignore_ascii_case(wanted))
        };
        // Every live contact was written through `create` or `update`, which index its
        // e-mail: no entry means no contact holds it. An entry is checked, since the contact
        // may have changed its e-mail or been archived since.
        let id = self.email_index.get(&wanted.to_ascii_lowercase())?;
        if self.contacts.get(id).is_some_and(holds) {
            return Some(*id);
        }
        self.contacts.values().find(|c| holds(c)).map(|c| c.id)
    }

    fn index_email(&mut self, id: u64) {
        if let Some(e) = self.contacts.get(&id).and_then(|c| c.props.get("email")) {
            let key = e.trim().to_ascii_lowercase();
            match self.email_index.get(&key) {
                // Still that contact's: the first writer keeps it.
                Some(old)
                    if self
                        .contacts
                        .get(old)
                        .and_then(|c| c.props.get("email"))
                        .is_some_and(|o| o.trim().eq_ignore_ascii_case(&key)) => {}
                _ => {
                    self.email_index.insert(key, id);
                }
            }
        }
    }

    /// Resolves `id` by record id or, with `idProperty=email`, by e-mail.
    pub(super) fn resolve(&self, id: &str, id_property: Option<&str>) -> Option<u64> {
        match id_property {
            Some("email") => self.by_email(id),
            None | Some("hs_object_id") => id
                .parse::<u64>()
                .ok()
                .filter(|n| self.contacts.contains_key(n)),
            Some(_) => None,
        }
    }

    pub(super) fn create(&mut self, props: BTreeMap<String, String>) -> &Contact {
        let id = self.next_id;
        self.next_id += 1;
        let now = Utc::now();
        let mut c = Contact {
            id,
            props: BTreeMap::new(),
            created: now,
            updated: now,
            written: Instant::now(),
            archived_at: None,
        };
        for (k, v) in props {
            if !v.is_empty() {
                c.props.insert(k, v);
            }
        }
        stamp(&mut c);
        self.contacts.insert(id, c);
        self.index_email(id);
        &self.contacts[&id]
    }

    pub(super) fn update(&mut self, id: u64, props: BTreeMap<String, String>) -> Option<&Contact> {
        let c = self.contacts.get_mut(&id)?;
        for (k, v) in props {
            if v.is_empty() {
                c.props.remove(&k);
            } else {
                c.props.insert(k, v);
            }
        }
        c.updated = Utc::now().max(c.created);
        c.written = Instant::now();
        stamp(c);
        self.index_email(id);
        self.contacts.get(&id)
    }
}

pub(super) fn stamp(c: &mut Contact) {
    c.props.insert("hs_object_id".into(), c.id.to_string());
    c.props.insert("createdate".into(), iso(c.created));
    c.props.insert("lastmodifieddate".into(), iso(c.updated));
}

pub(super) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The object as the API returns it: every property a string (or null when requested but
/// unset).
pub(super) fn render(c: &Contact, props: Option<&[String]>) -> Value {
    let mut properties = Map::new();
    match props {
        Some(list) => {
            for p in list {
                properties.insert(
                    p.clone(),
                    c.props.get(p).map(|v| json!(v)).unwrap_or(Value::Null),
                );
            }
        }
        None => {
            for (k, v) in &c.props {
                properties.insert(k.clone(), json!(v));
            }
        }
    }
    let mut o = json!({
        "id": c.id.to_string(),
        "properties": properties,
        "createdAt": iso(c.created),
        "updatedAt": iso(c.updated),
        "archived": c.archived_at.is_some(),
    });
    if let Some(at) = c.archived_at {
        o["archivedAt"] = json!(iso(at));
    }
    o
}

/// What a read returns by default: HubSpot's default contact properties.
pub(super) fn default_props() -> Vec<String> {
    DEFAULT_PROPERTIES.iter().map(|s| s.to_string()).collect()
}
