//! Jamf Pro's computers and departments, and how an inventory record renders.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::store::{Vendor, VendorData};

#[derive(Clone, Debug, Default)]
pub(super) struct Computer {
    pub(super) id: u64,
    pub(super) udid: String,
    pub(super) name: String,
    pub(super) serial: String,
    pub(super) platform: String,
    /// userAndLocation, in the Jamf Pro API's field names.
    pub(super) location: BTreeMap<&'static str, Value>,
}

pub(super) const LOCATION_FIELDS: &[&str] = &[
    "username",
    "realname",
    "email",
    "position",
    "phone",
    "departmentId",
    "buildingId",
    "room",
];

pub(crate) struct Data {
    pub(super) next_department: u64,
    pub(super) departments: BTreeMap<u64, String>,
    pub(super) next_computer: u64,
    pub(super) computers: BTreeMap<u64, Computer>,
}

/// What this fake's handlers get: the shared part and this vendor's own state.
pub(crate) type Ctx = Vendor<Data>;

impl VendorData for Data {
    fn new() -> Data {
        Data {
            next_department: 1,
            departments: BTreeMap::new(),
            next_computer: 1,
            computers: BTreeMap::new(),
        }
    }

    fn records(&self) -> BTreeMap<String, Vec<Value>> {
        let mut out = BTreeMap::new();
        out.insert(
            "departments".to_string(),
            self.departments
                .iter()
                .map(|(id, name)| json!({"id": id.to_string(), "name": name}))
                .collect(),
        );
        out.insert(
            "computers".to_string(),
            self.computers
                .values()
                .map(|c| render(c, &ALL_SECTIONS))
                .collect(),
        );
        out
    }
}

pub(super) const ALL_SECTIONS: [&str; 3] = ["GENERAL", "HARDWARE", "USER_AND_LOCATION"];

pub(super) fn render(c: &Computer, sections: &[&str]) -> Value {
    let mut o = json!({
        "id": c.id.to_string(),
        "udid": c.udid,
        "general": null,
        "hardware": null,
        "userAndLocation": null,
    });
    if sections.contains(&"GENERAL") {
        o["general"] = json!({
            "name": c.name,
            "platform": c.platform,
            "managementId": format!("{:08x}-0000-4000-8000-{:012x}", c.id, c.id),
            "remoteManagement": {"managed": true},
        });
    }
    if sections.contains(&"HARDWARE") {
        o["hardware"] = json!({"serialNumber": c.serial, "model": null});
    }
    if sections.contains(&"USER_AND_LOCATION") {
        let mut loc = Map::new();
        for f in LOCATION_FIELDS {
            loc.insert(
                f.to_string(),
                c.location.get(f).cloned().unwrap_or(Value::Null),
            );
        }
        o["userAndLocation"] = Value::Object(loc);
    }
    o
}
