//! Values derived from secrets are never quoted by function errors, and outcomes are scrubbed
//! of resolved secrets, in dry runs as in sends.

use rulebridge::Engine;
use serde_json::json;

const RULES: &str = r#"
kind: provider
name: crm
base_url: https://crm.example.com
objects:
  contact:
    operations:
      create: { method: POST, path: /contacts }
---
kind: flow
name: f
source: {}
target: { provider: crm, object: contact }
secrets: { phone: "${env:RB_TAINT_TEST_UNSET}" }
let:
  shouted: upper(secrets.phone)
  plain: upper(record_phone)
mapping:
  email: email
  phone: normalize_phone(shouted)
  other: normalize_phone(plain)
  hashed: sha256(secrets.phone)
"#;

fn engine(secret: &str) -> Engine {
    Engine::builder()
        .rules_str("rules.yaml", RULES)
        .secret("phone", secret)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn function_errors_withhold_values_derived_from_secrets() {
    let e = engine("canary-derived-value");
    let runner = e.runner("f").unwrap_or_else(|e| panic!("{e}"));
    let out = runner.evaluate(0, &json!({"email": "a@example.com", "record_phone": "1"}));
    let text = serde_json::to_string(&out).unwrap_or_default();
    // Upper-cased, the value is not a registered secret: only the taint keeps it out.
    assert!(!text.contains("CANARY-DERIVED-VALUE"), "{text}");
    assert!(!text.contains("canary-derived-value"), "{text}");
    let message = out
        .error
        .as_ref()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("normalize_phone(): not a valid phone number: \"***\""),
        "{message}"
    );
}

#[test]
fn errors_about_record_values_still_quote_them() {
    let e = engine("+14155550123");
    let runner = e.runner("f").unwrap_or_else(|e| panic!("{e}"));
    let out = runner.evaluate(
        0,
        &json!({"email": "a@example.com", "record_phone": "not-a-phone"}),
    );
    let message = out
        .error
        .as_ref()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.contains("\"NOT-A-PHONE\""), "{message}");
}
