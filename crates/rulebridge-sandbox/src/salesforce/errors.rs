//! Salesforce's error bodies: arrays of `{message, errorCode, fields}`, and duplicate results.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use crate::store::Shared;
use crate::util::json as reply;

pub(super) fn err(status: StatusCode, code: &str, message: &str, fields: &[&str]) -> Response {
    reply(
        status,
        json!([{"message": message, "errorCode": code, "fields": fields}]),
    )
}

pub(super) fn err_nofields(status: StatusCode, code: &str, message: &str) -> Response {
    reply(status, json!([{"message": message, "errorCode": code}]))
}

pub(crate) fn internal_error(shared: &Shared) -> Response {
    let n = shared.random_u64();
    err_nofields(
        StatusCode::INTERNAL_SERVER_ERROR,
        "UNKNOWN_EXCEPTION",
        &format!(
            "An unexpected error occurred. Please include this ErrorId if you contact support: {}-{} ({})",
            n % 10_000_000_000,
            (n >> 40) % 100_000,
            -((n % 1_000_000_000) as i64)
        ),
    )
}

pub(super) fn not_found() -> Response {
    err_nofields(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
    )
}

/// One record-level error, as in sObject Collections results.
#[derive(Clone, Debug)]
pub(super) struct RecError {
    pub(super) code: String,
    pub(super) message: String,
    pub(super) fields: Vec<String>,
    /// For DUPLICATES_DETECTED: the matching record.
    pub(super) duplicate_of: Option<(String, &'static str)>,
}

impl RecError {
    pub(super) fn new(code: &str, message: impl Into<String>, fields: &[&str]) -> RecError {
        RecError {
            code: code.into(),
            message: message.into(),
            fields: fields.iter().map(|s| s.to_string()).collect(),
            duplicate_of: None,
        }
    }

    /// The body of a single-record REST error.
    pub(super) fn rest_json(&self, version: &str) -> Value {
        let mut e = json!({"message": self.message, "errorCode": self.code, "fields": self.fields});
        if let Some((id, obj)) = &self.duplicate_of {
            e = json!({
                "duplicateResult": duplicate_result(id, obj, version),
                "errorCode": self.code,
                "message": self.message,
            });
        }
        e
    }

    pub(super) fn item_json(&self, version: &str) -> Value {
        let mut e =
            json!({"statusCode": self.code, "message": self.message, "fields": self.fields});
        if let Some((id, obj)) = &self.duplicate_of {
            e["duplicateResult"] = duplicate_result(id, obj, version);
        }
        e
    }
}

pub(super) fn duplicate_result(id: &str, obj: &str, version: &str) -> Value {
    json!({
        "allowSave": true,
        "duplicateRule": format!("Standard_{obj}_Duplicate_Rule"),
        "duplicateRuleEntityType": obj,
        "errorMessage": "You're creating a duplicate record. We recommend you use an existing record instead.",
        "matchResults": [{
            "entityType": obj,
            "errors": [],
            "matchEngine": "FuzzyMatchEngine",
            "matchRecords": [{
                "additionalInformation": [],
                "fieldDiffs": [],
                "matchConfidence": 100.0,
                "record": {
                    "attributes": {"type": obj, "url": format!("/services/data/{version}/sobjects/{obj}/{id}")},
                    "Id": id,
                },
            }],
            "rule": format!("Standard_{obj}_Match_Rule_v1_0"),
            "size": 1,
            "success": true,
        }],
    })
}
