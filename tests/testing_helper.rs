//! The one-line snapshot helper for embedding services.

use serde_json::json;

#[test]
fn snapshot_of_a_flow_in_one_line() {
    let engine = rulebridge::testing::engine("rules").expect("rules compile");
    rulebridge::assert_flow_snapshot!(
        engine,
        "wrapper_users_to_crm",
        json!({"id": "u1", "tenant_id": "t1", "tenant_name": "Tenant One", "email": "Ops@Example.com", "name": "Ops Team", "roles": ["admin"]})
    );
}

#[test]
fn snapshot_of_a_failing_record() {
    let engine = rulebridge::testing::engine("rules").expect("rules compile");
    rulebridge::assert_flow_snapshot!(
        "missing_email",
        engine,
        "lead_to_hubspot",
        json!({"name": "No Email"})
    );
}

#[test]
fn unknown_flow_is_an_error_with_a_suggestion() {
    let engine = rulebridge::testing::engine("rules").expect("rules compile");
    let err = rulebridge::testing::dry_run(&engine, "lead_to_hubspt", &json!({}))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("unknown flow `lead_to_hubspt` (did you mean `lead_to_hubspot`?)")
    );
}
