//! The Lead and Contact sObjects: fields, picklists, and `GET /sobjects/{type}/describe`.

use axum::extract::Path;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::errors::not_found;
use crate::util::json as reply;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    Id,
    Str,
    Email,
    Phone,
    Url,
    TextArea,
    Picklist { restricted: bool },
    Bool,
    DateTime,
    Reference,
}

pub(super) struct Field {
    pub(super) name: &'static str,
    pub(super) label: &'static str,
    pub(super) kind: Kind,
    pub(super) length: usize,
    /// Must have a value (createable fields only; a default may fill it).
    pub(super) required: bool,
    pub(super) createable: bool,
    pub(super) updateable: bool,
    pub(super) unique: bool,
    pub(super) external_id: bool,
    pub(super) custom: bool,
    pub(super) picklist: &'static [&'static str],
    pub(super) default: Option<&'static str>,
}

pub(super) const fn f(name: &'static str, label: &'static str, kind: Kind, length: usize) -> Field {
    Field {
        name,
        label,
        kind,
        length,
        required: false,
        createable: true,
        updateable: true,
        unique: false,
        external_id: false,
        custom: false,
        picklist: &[],
        default: None,
    }
}

pub(super) const fn system(
    name: &'static str,
    label: &'static str,
    kind: Kind,
    length: usize,
) -> Field {
    Field {
        createable: false,
        updateable: false,
        ..f(name, label, kind, length)
    }
}

pub(super) const LEAD_SOURCE: &[&str] = &[
    "Web",
    "Phone Inquiry",
    "Partner Referral",
    "Purchased List",
    "Other",
];

pub(super) const LEAD_STATUS: &[&str] = &[
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
];

pub(super) const RATING: &[&str] = &["Hot", "Warm", "Cold"];

pub(super) const LEAD_FIELDS: &[Field] = &[
    system("Id", "Lead ID", Kind::Id, 18),
    system("IsDeleted", "Deleted", Kind::Bool, 0),
    Field {
        required: true,
        ..f("LastName", "Last Name", Kind::Str, 80)
    },
    f("FirstName", "First Name", Kind::Str, 40),
    system("Name", "Full Name", Kind::Str, 121),
    f("Title", "Title", Kind::Str, 128),
    Field {
        required: true,
        ..f("Company", "Company", Kind::Str, 255)
    },
    f("City", "City", Kind::Str, 40),
    f("State", "State/Province", Kind::Str, 80),
    f("PostalCode", "Zip/Postal Code", Kind::Str, 20),
    f("Country", "Country", Kind::Str, 80),
    f("Phone", "Phone", Kind::Phone, 40),
    f("MobilePhone", "Mobile Phone", Kind::Phone, 40),
    f("Email", "Email", Kind::Email, 80),
    f("Website", "Website", Kind::Url, 255),
    f("Description", "Description", Kind::TextArea, 32000),
    Field {
        picklist: LEAD_SOURCE,
        ..f(
            "LeadSource",
            "Lead Source",
            Kind::Picklist { restricted: false },
            255,
        )
    },
    Field {
        picklist: LEAD_STATUS,
        required: true,
        default: Some("Open - Not Contacted"),
        ..f("Status", "Status", Kind::Picklist { restricted: true }, 255)
    },
    Field {
        picklist: RATING,
        ..f(
            "Rating",
            "Rating",
            Kind::Picklist { restricted: false },
            255,
        )
    },
    Field {
        updateable: true,
        createable: true,
        ..f("OwnerId", "Owner ID", Kind::Reference, 18)
    },
    system("CreatedDate", "Created Date", Kind::DateTime, 0),
    system("LastModifiedDate", "Last Modified Date", Kind::DateTime, 0),
    Field {
        unique: true,
        external_id: true,
        custom: true,
        ..f("External_Id__c", "External Id", Kind::Str, 255)
    },
];

pub(super) const CONTACT_FIELDS: &[Field] = &[
    system("Id", "Contact ID", Kind::Id, 18),
    system("IsDeleted", "Deleted", Kind::Bool, 0),
    f("AccountId", "Account ID", Kind::Reference, 18),
    Field {
        required: true,
        ..f("LastName", "Last Name", Kind::Str, 80)
    },
    f("FirstName", "First Name", Kind::Str, 40),
    system("Name", "Full Name", Kind::Str, 121),
    f("Title", "Title", Kind::Str, 128),
    f("Department", "Department", Kind::Str, 80),
    f("MailingCity", "Mailing City", Kind::Str, 40),
    f("MailingCountry", "Mailing Country", Kind::Str, 80),
    f("Phone", "Business Phone", Kind::Phone, 40),
    f("MobilePhone", "Mobile Phone", Kind::Phone, 40),
    f("Email", "Email", Kind::Email, 80),
    f("Description", "Contact Description", Kind::TextArea, 32000),
    Field {
        picklist: LEAD_SOURCE,
        ..f(
            "LeadSource",
            "Lead Source",
            Kind::Picklist { restricted: false },
            255,
        )
    },
    f("OwnerId", "Owner ID", Kind::Reference, 18),
    system("CreatedDate", "Created Date", Kind::DateTime, 0),
    system("LastModifiedDate", "Last Modified Date", Kind::DateTime, 0),
    Field {
        unique: true,
        external_id: true,
        custom: true,
        ..f("External_Id__c", "External Id", Kind::Str, 255)
    },
];

pub(super) struct SObject {
    pub(super) name: &'static str,
    pub(super) label: &'static str,
    pub(super) prefix: &'static str,
    pub(super) fields: &'static [Field],
}

pub(super) const OBJECTS: &[SObject] = &[
    SObject {
        name: "Lead",
        label: "Lead",
        prefix: "00Q",
        fields: LEAD_FIELDS,
    },
    SObject {
        name: "Contact",
        label: "Contact",
        prefix: "003",
        fields: CONTACT_FIELDS,
    },
];

/// sObject and field names are case-insensitive in the API.
pub(super) fn sobject(name: &str) -> Option<&'static SObject> {
    OBJECTS.iter().find(|o| o.name.eq_ignore_ascii_case(name))
}

impl SObject {
    pub(super) fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

pub(super) fn object_or_404(name: &str) -> Result<&'static SObject, Response> {
    sobject(name).ok_or_else(not_found)
}

pub(super) async fn describe(Path((v, obj)): Path<(String, String)>) -> Response {
    let obj = match object_or_404(&obj) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let fields: Vec<Value> = obj
        .fields
        .iter()
        .map(|fd| {
            let (ty, soap) = match fd.kind {
                Kind::Id => ("id", "tns:ID"),
                Kind::Str => ("string", "xsd:string"),
                Kind::Email => ("email", "xsd:string"),
                Kind::Phone => ("phone", "xsd:string"),
                Kind::Url => ("url", "xsd:string"),
                Kind::TextArea => ("textarea", "xsd:string"),
                Kind::Picklist { .. } => ("picklist", "xsd:string"),
                Kind::Bool => ("boolean", "xsd:boolean"),
                Kind::DateTime => ("datetime", "xsd:dateTime"),
                Kind::Reference => ("reference", "tns:ID"),
            };
            let picklist: Vec<Value> = fd
                .picklist
                .iter()
                .map(|p| {
                    json!({"active": true, "defaultValue": fd.default == Some(*p), "label": p, "validFor": null, "value": p})
                })
                .collect();
            json!({
                "name": fd.name,
                "label": fd.label,
                "type": ty,
                "soapType": soap,
                "length": fd.length,
                "nillable": !fd.required && fd.kind != Kind::Bool && fd.kind != Kind::Id,
                "createable": fd.createable,
                "updateable": fd.updateable,
                "unique": fd.unique,
                "externalId": fd.external_id,
                "idLookup": fd.external_id || fd.kind == Kind::Id || fd.name == "Email",
                "custom": fd.custom,
                "calculated": false,
                "defaultedOnCreate": fd.default.is_some() || matches!(fd.name, "OwnerId" | "CreatedDate" | "LastModifiedDate" | "IsDeleted" | "Id"),
                "restrictedPicklist": matches!(fd.kind, Kind::Picklist { restricted: true }),
                "picklistValues": picklist,
                "referenceTo": if fd.kind == Kind::Reference { json!([if fd.name == "AccountId" { "Account" } else { "User" }]) } else { json!([]) },
            })
        })
        .collect();
    reply(
        StatusCode::OK,
        json!({
            "name": obj.name,
            "label": obj.label,
            "keyPrefix": obj.prefix,
            "createable": true,
            "updateable": true,
            "deletable": true,
            "queryable": true,
            "custom": false,
            "fields": fields,
            "urls": {
                "sobject": format!("/services/data/{v}/sobjects/{}", obj.name),
                "describe": format!("/services/data/{v}/sobjects/{}/describe", obj.name),
                "rowTemplate": format!("/services/data/{v}/sobjects/{}/{{ID}}", obj.name),
            },
        }),
    )
}
