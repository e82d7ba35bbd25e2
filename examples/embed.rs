//! Embedding rulebridge in a service: load the shipped rules, add a custom function, and
//! evaluate records in memory.
//!
//! Run with `cargo run --example embed`.

use std::borrow::Cow;
use std::sync::Arc;

use rulebridge::functions::{CallContext, Category, FnError, Function, Param, Signature};
use rulebridge::types::Type;
use rulebridge::{Engine, Status};
use serde_json::{Value, json};

/// A company-specific function: the region of a sales territory code.
struct Region;

impl Function for Region {
    fn name(&self) -> &str {
        "region"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "The sales region of a two-letter country code."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("country", Type::String)], Type::String)
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let country = args.first().and_then(|v| v.as_str()).unwrap_or_default();
        Ok(Value::from(match country.to_ascii_uppercase().as_str() {
            "US" | "CA" | "MX" => "americas",
            "GB" | "DE" | "FR" | "NL" => "emea",
            _ => "rest_of_world",
        }))
    }
}

const TERRITORY_FLOW: &str = r#"
kind: flow
name: lead_territory
source: { require: [email] }
target: { provider: hubspot, object: contact }
mapping:
  email: normalize_email(email)
  country: upper(country)
  lead_owner_team: region(country)
duplicates: { match: [email] }
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The shipped rules, plus one flow that uses the custom function.
    let engine = Engine::builder()
        .rules_dir("rules")
        .rules_str("territory.yaml", TERRITORY_FLOW)
        .function(Arc::new(Region))
        .build()?;

    let hubspot = engine.runner("lead_to_hubspot")?;
    let outcome = hubspot.evaluate(
        0,
        &json!({"email": " Ada@Example.com ", "name": "Ada Lovelace", "score": 90, "country": "us"}),
    );
    assert_eq!(outcome.status, Status::DryRun);
    println!(
        "lead_to_hubspot → {}",
        serde_json::to_string_pretty(&outcome)?
    );

    let territory = engine.runner("lead_territory")?;
    let outcome = territory.evaluate(1, &json!({"email": "hans@example.de", "country": "de"}));
    println!(
        "lead_territory → {}",
        serde_json::to_string(&outcome.payload)?
    );

    // A bad record is an outcome with a reason, not an error of the engine.
    let failed = hubspot.evaluate(2, &json!({"name": "no e-mail"}));
    if let Some(err) = &failed.error {
        println!("record 2 failed: {err}");
    }
    Ok(())
}
