//! References and compound match keys through the in-memory connector: a reference resolved
//! to the target's id (as a number where the field is one), one lookup per distinct key even
//! with records in flight at once, "none" and "several" failing only their record as
//! `unresolved_reference`, a failed lookup not cached, dry runs showing the reference
//! unresolved, and a compound key updating on a second run.

use std::sync::Arc;

use rulebridge::Engine;
use rulebridge::connect::memory::{Fault, MemoryConnector};
use rulebridge::exec::RunOptions;
use rulebridge::exec::send::SendOptions;
use serde_json::{Value, json};

const RULES: &str = r#"
kind: provider
name: crm
base_url: https://crm.example.com
objects:
  client:
    fields:
      name: string
      external_id: string
    operations:
      search: { method: GET, path: /clients, query: { external_id: "{{ key }}" } }
      create: { method: POST, path: /clients }
  project:
    fields:
      name: { type: string, required: true }
      client_id: number
      owner: string
    operations:
      search: { method: GET, path: /projects, query: { client_id: "{{ match.client_id }}", name: "{{ match.name }}" } }
      create: { method: POST, path: /projects }
      update: { method: PUT, path: "/projects/{{ id }}" }
---
kind: flow
name: projects
target: { provider: crm, object: project }
mapping:
  name: title
  client_id: { ref: client, where: { external_id: '"billing-${client}"' } }
  owner: { ref: client, where: { external_id: owner } }
options: { omit_nulls: true }
duplicates: { match: [client_id+name], on_match: update }
"#;

fn engine(crm: Arc<MemoryConnector>) -> Engine {
    Engine::builder()
        .rules_str("rules.yaml", RULES)
        .connector("crm", crm)
        .build()
        .expect("rules compile")
}

async fn send(crm: Arc<MemoryConnector>, input: &str) -> Vec<Value> {
    let pipeline = engine(crm)
        .sender(
            "projects",
            RunOptions {
                concurrency: 8,
                ..RunOptions::default()
            },
            SendOptions::default(),
        )
        .expect("sender");
    let (_, out): (_, Vec<rulebridge::Outcome>) = pipeline
        .run(
            std::io::Cursor::new(input.as_bytes().to_vec()),
            Vec::new(),
            |_| {},
        )
        .await
        .expect("run");
    out.iter()
        .map(|o| serde_json::to_value(o).expect("json"))
        .collect()
}

fn lines(records: &[Value]) -> String {
    records.iter().map(|r| r.to_string() + "\n").collect()
}

fn searches(crm: &MemoryConnector, what: &str) -> usize {
    crm.calls().iter().filter(|c| c.starts_with(what)).count()
}

#[tokio::test]
async fn references_resolve_to_ids_once_per_distinct_key() {
    let crm = Arc::new(MemoryConnector::new());
    let acme = crm.insert(
        "client",
        json!({"name": "Acme", "external_id": "billing-7"}),
    );
    let globex = crm.insert(
        "client",
        json!({"name": "Globex", "external_id": "billing-8"}),
    );
    let input: Vec<Value> = (0u32..20)
        .map(|i| json!({"title": format!("P{i}"), "client": if i.is_multiple_of(2) { 7 } else { 8 }}))
        .collect();
    let out = send(crm.clone(), &lines(&input)).await;
    assert!(out.iter().all(|o| o["status"] == "created"), "{out:?}");
    assert_eq!(searches(&crm, "search client"), 2, "{:?}", crm.calls());
    let projects = crm.records("project");
    assert_eq!(projects.len(), 20);
    for (_, p) in &projects {
        let n: u32 = p["name"]
            .as_str()
            .and_then(|n| n[1..].parse().ok())
            .unwrap_or(99);
        let want = if n.is_multiple_of(2) { &acme } else { &globex };
        // The field is declared a number: the id is written as one.
        assert_eq!(
            p["client_id"],
            json!(want.parse::<u64>().unwrap_or(0)),
            "{p}"
        );
    }
}

#[tokio::test]
async fn none_or_several_matches_fail_only_that_record() {
    let crm = Arc::new(MemoryConnector::new());
    crm.insert(
        "client",
        json!({"name": "Acme", "external_id": "billing-7"}),
    );
    crm.insert("client", json!({"name": "Twin", "external_id": "twin"}));
    crm.insert("client", json!({"name": "Twin too", "external_id": "twin"}));
    let out = send(
        crm.clone(),
        &lines(&[
            json!({"title": "ok", "client": 7}),
            json!({"title": "nobody", "client": 99}),
            json!({"title": "ambiguous", "client": 7, "owner": "twin"}),
            json!({"title": "no owner", "client": 7, "owner": null}),
        ]),
    )
    .await;
    let status: Vec<&str> = out
        .iter()
        .map(|o| o["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        status,
        ["created", "failed", "failed", "created"],
        "{out:?}"
    );
    assert_eq!(out[1]["error"]["kind"], "unresolved_reference");
    assert_eq!(out[1]["error"]["field"], "client_id");
    assert!(
        out[1]["error"]["at"]
            .as_str()
            .is_some_and(|a| a.starts_with("rules.yaml:"))
    );
    assert_eq!(out[2]["error"]["kind"], "unresolved_reference");
    assert_eq!(out[2]["error"]["field"], "owner");
    let message = out[2]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("2 match"), "{message}");
    assert_eq!(crm.records("project").len(), 2);
}

#[tokio::test]
async fn a_failed_lookup_is_not_cached() {
    let crm = Arc::new(MemoryConnector::new());
    crm.insert(
        "client",
        json!({"name": "Acme", "external_id": "billing-7"}),
    );
    crm.fail_next("search", Fault::Before);
    let out = send(crm.clone(), &lines(&[json!({"title": "P", "client": 7})])).await;
    // The transient failure gets the end-of-run pass, which looks the client up again.
    assert_eq!(out[0]["status"], "created", "{out:?}");
    assert_eq!(searches(&crm, "search client"), 2, "{:?}", crm.calls());
}

#[tokio::test]
async fn a_compound_key_on_a_reference_updates_on_the_second_run() {
    let crm = Arc::new(MemoryConnector::new());
    crm.insert(
        "client",
        json!({"name": "Acme", "external_id": "billing-7"}),
    );
    crm.insert(
        "client",
        json!({"name": "Globex", "external_id": "billing-8"}),
    );
    // The same project name under two clients: two projects.
    let input = lines(&[
        json!({"title": "Relaunch", "client": 7}),
        json!({"title": "Relaunch", "client": 8}),
    ]);
    let first = send(crm.clone(), &input).await;
    assert!(first.iter().all(|o| o["status"] == "created"), "{first:?}");
    let second = send(crm.clone(), &input).await;
    assert!(
        second.iter().all(|o| o["status"] == "updated"),
        "{second:?}"
    );
    assert_eq!(first[0]["target_id"], second[0]["target_id"]);
    assert_eq!(first[1]["target_id"], second[1]["target_id"]);
    assert_eq!(crm.records("project").len(), 2);
}

#[test]
fn a_dry_run_shows_the_reference_unresolved() {
    let crm = Arc::new(MemoryConnector::new());
    let engine = engine(crm.clone());
    let runner = engine.runner("projects").expect("flow");
    let o = runner.evaluate(0, &json!({"title": "P", "client": 7, "owner": null}));
    let o = serde_json::to_value(o).expect("json");
    assert_eq!(
        o["payload"],
        json!({"name": "P", "client_id": {"ref": "client", "where": {"external_id": "billing-7"}}})
    );
    assert!(crm.calls().is_empty(), "evaluation does no I/O");
}
