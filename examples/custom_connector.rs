//! A custom connector: the target is not an HTTP API but a store inside the embedding service
//! (here an in-memory address book). The engine does the rest — mapping, the duplicate
//! decision, outcomes.
//!
//! Run with `cargo run --example custom_connector`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use rulebridge::Engine;
use rulebridge::connect::{Call, Capabilities, ConnectError, Connector, ErrorKind, Found, Written};
use rulebridge::exec::RunOptions;
use rulebridge::exec::send::SendOptions;
use serde_json::{Value, json};

/// An address book keyed by id, searchable by any field.
#[derive(Default)]
struct AddressBook {
    entries: Mutex<BTreeMap<u64, Value>>,
}

impl Connector for AddressBook {
    fn capabilities(&self, _object: &str) -> Capabilities {
        Capabilities {
            search: true,
            create: true,
            update: true,
            ..Capabilities::default()
        }
    }

    fn search<'a>(
        &'a self,
        _call: &'a Call,
        _object: &'a str,
        field: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Found>, ConnectError>> {
        Box::pin(async move {
            let entries = self
                .entries
                .lock()
                .map_err(|_| ConnectError::new(ErrorKind::Fatal, "store poisoned"))?;
            Ok(entries
                .iter()
                .filter(|(_, e)| e.get(field).and_then(Value::as_str) == Some(value))
                .map(|(id, e)| Found {
                    id: id.to_string(),
                    updated_at: None,
                    fields: e.clone(),
                })
                .collect())
        })
    }

    fn create<'a>(
        &'a self,
        _call: &'a Call,
        _object: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>> {
        Box::pin(async move {
            let mut entries = self
                .entries
                .lock()
                .map_err(|_| ConnectError::new(ErrorKind::Fatal, "store poisoned"))?;
            let id = entries.keys().next_back().map_or(1, |k| k + 1);
            entries.insert(id, payload.clone());
            Ok(Written {
                id: Some(id.to_string()),
                created: Some(true),
            })
        })
    }

    fn update<'a>(
        &'a self,
        _call: &'a Call,
        _object: &'a str,
        id: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>> {
        Box::pin(async move {
            let key: u64 = id
                .parse()
                .map_err(|_| ConnectError::new(ErrorKind::NotFound, format!("no entry {id}")))?;
            let mut entries = self
                .entries
                .lock()
                .map_err(|_| ConnectError::new(ErrorKind::Fatal, "store poisoned"))?;
            entries.insert(key, payload.clone());
            Ok(Written {
                id: Some(id.to_string()),
                created: Some(false),
            })
        })
    }
}

const RULES: &str = r#"
kind: provider
name: address_book
base_url: https://address-book.internal
objects:
  entry:
    fields: { email: { type: email, required: true }, name: string, team: string }
---
kind: flow
name: people
source: { require: [email] }
target: { provider: address_book, object: entry }
mapping:
  email: normalize_email(email)
  name: trim(name)
  team: team ?? "unassigned"
duplicates: { match: [email], on_match: update }
"#;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let book = Arc::new(AddressBook::default());
    let engine = Engine::builder()
        .rules_str("people.yaml", RULES)
        .connector("address_book", book.clone())
        .build()?;
    // The engine finds the connector registered for the flow's provider.
    let sender = engine.sender("people", RunOptions::default(), SendOptions::default())?;

    for (i, record) in [
        json!({"email": "Ada@Example.com", "name": " Ada "}),
        json!({"email": "ada@example.com", "name": "Ada Lovelace", "team": "math"}),
        json!({"name": "no e-mail"}),
    ]
    .iter()
    .enumerate()
    {
        let outcome = sender.run_one(i, record).await;
        println!("{}", serde_json::to_string(&outcome)?);
    }
    println!(
        "address book: {:?}",
        book.entries.lock().map(|e| e.clone()).unwrap_or_default()
    );
    Ok(())
}
