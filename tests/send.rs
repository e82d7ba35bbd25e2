//! The duplicate decision and write path, driven through a connector that keeps records in
//! memory and behaves like a CRM with a unique e-mail: search, create (409 on an existing
//! e-mail), update, batch upsert. The HTTP connector and the sandbox are tested elsewhere;
//! this checks the engine's decisions.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use rulebridge::Engine;
use rulebridge::connect::{
    Capabilities, ConnectError, Connector, ErrorKind, Found, UpsertItem, Written,
};
use rulebridge::exec::send::SendOptions;
use serde_json::{Value, json};

#[derive(Default)]
struct Crm {
    records: Mutex<BTreeMap<u64, Value>>,
    next: Mutex<u64>,
    /// Records created by "another writer" between our search and our create.
    race: Mutex<Vec<Value>>,
    batch: Option<usize>,
    calls: Mutex<Vec<String>>,
}

impl Crm {
    fn insert(&self, v: Value) -> u64 {
        let mut next = self.next.lock().unwrap();
        *next += 1;
        self.records.lock().unwrap().insert(*next, v);
        *next
    }
    fn log(&self, s: String) {
        self.calls.lock().unwrap().push(s);
    }
    fn find(&self, field: &str, value: &str) -> Vec<(u64, Value)> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, r)| {
                r.get(field)
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.eq_ignore_ascii_case(value))
            })
            .map(|(id, r)| (*id, r.clone()))
            .collect()
    }
}

impl Connector for Crm {
    fn capabilities(&self, _object: &str) -> Capabilities {
        Capabilities {
            search: true,
            create: true,
            update: true,
            batch_upsert: self.batch,
        }
    }
    fn search<'a>(
        &'a self,
        _o: &'a str,
        field: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Found>, ConnectError>> {
        Box::pin(async move {
            self.log(format!("search {field}={value}"));
            let found = self.find(field, value).into_iter().map(|(id, r)| Found {
                id: id.to_string(),
                updated_at: r.get("updated").and_then(Value::as_str).map(String::from),
                fields: r,
            });
            let found = found.collect();
            // The racing writer strikes right after our search.
            for r in self.race.lock().unwrap().drain(..) {
                self.insert(r);
            }
            Ok(found)
        })
    }
    fn create<'a>(
        &'a self,
        _o: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>> {
        Box::pin(async move {
            self.log("create".into());
            let email = payload["email"].as_str().unwrap_or_default().to_string();
            if let Some((id, _)) = self.find("email", &email).first() {
                let mut e = ConnectError::new(
                    ErrorKind::Duplicate,
                    format!("Contact already exists. Existing ID: {id}"),
                );
                e.status = Some(409);
                e.existing_id = Some(id.to_string());
                return Err(e);
            }
            Ok(Written {
                id: Some(self.insert(payload.clone()).to_string()),
                created: Some(true),
            })
        })
    }
    fn update<'a>(
        &'a self,
        _o: &'a str,
        id: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>> {
        Box::pin(async move {
            self.log(format!("update {id} {payload}"));
            let id: u64 = id
                .parse()
                .map_err(|_| ConnectError::new(ErrorKind::NotFound, "bad id"))?;
            let mut records = self.records.lock().unwrap();
            let Some(Value::Object(r)) = records.get_mut(&id) else {
                return Err(ConnectError::new(ErrorKind::NotFound, "no such record"));
            };
            for (k, v) in payload.as_object().cloned().unwrap_or_default() {
                r.insert(k, v);
            }
            Ok(Written {
                id: Some(id.to_string()),
                created: Some(false),
            })
        })
    }
    fn upsert_batch<'a>(
        &'a self,
        _o: &'a str,
        field: &'a str,
        items: &'a [UpsertItem<'a>],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>> {
        Box::pin(async move {
            self.log(format!("batch {}", items.len()));
            items
                .iter()
                .map(|item| {
                    if item.payload.get("name") == Some(&json!("REJECT")) {
                        let mut e = ConnectError::new(
                            ErrorKind::Validation,
                            "Property values were not valid",
                        );
                        e.status = Some(207);
                        return Err(e);
                    }
                    match self.find(field, item.key).first() {
                        Some((id, _)) => {
                            if let Some(Value::Object(r)) = self.records.lock().unwrap().get_mut(id)
                            {
                                for (k, v) in item.payload.as_object().cloned().unwrap_or_default()
                                {
                                    r.insert(k, v);
                                }
                            }
                            Ok(Written {
                                id: Some(id.to_string()),
                                created: Some(false),
                            })
                        }
                        None => Ok(Written {
                            id: Some(self.insert(item.payload.clone()).to_string()),
                            created: Some(true),
                        }),
                    }
                })
                .collect()
        })
    }
}

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
name: sync
source: { require: [email] }
target: { provider: crm, object: contact }
mapping:
  email: lower(email)
  name: name
  phone: phone
  updated: updated
options: { omit_nulls: true }
duplicates: { match: [email], on_match: ON_MATCH, on_multiple: ON_MULTIPLE }
"#;

async fn run(crm: Arc<Crm>, on_match: &str, on_multiple: &str, input: &str) -> Vec<Value> {
    let rules = RULES
        .replace("ON_MATCH", on_match)
        .replace("ON_MULTIPLE", on_multiple);
    let engine = Engine::builder()
        .rules_str("rules.yaml", rules)
        .build()
        .expect("rules compile");
    let runner = engine.runner("sync").expect("flow");
    let sender = runner.sender(
        crm,
        SendOptions {
            concurrency: 4,
            ..SendOptions::default()
        },
    );
    let mut out = Vec::new();
    sender
        .run(input.as_bytes(), &mut out, |_| {})
        .await
        .expect("run");
    String::from_utf8_lossy(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

fn statuses(outcomes: &[Value]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| o["status"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn creates_then_updates_on_match() {
    let crm = Arc::new(Crm::default());
    crm.insert(json!({"email": "old@x.io", "name": "Old"}));
    let out = run(crm.clone(), "update", "fail", "{\"email\":\"new@x.io\",\"name\":\"New\"}\n{\"email\":\"OLD@x.io\",\"name\":\"Renamed\"}\n").await;
    assert_eq!(statuses(&out), ["created", "updated"]);
    assert_eq!(out[1]["target_id"], "1");
    assert_eq!(crm.find("email", "old@x.io")[0].1["name"], "Renamed");
    assert_eq!(crm.records.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn skip_leaves_the_existing_record() {
    let crm = Arc::new(Crm::default());
    crm.insert(json!({"email": "a@x.io", "name": "Keep"}));
    let out = run(
        crm.clone(),
        "skip",
        "fail",
        "{\"email\":\"a@x.io\",\"name\":\"Other\"}\n",
    )
    .await;
    assert_eq!(statuses(&out), ["skipped"]);
    assert_eq!(out[0]["target_id"], "1");
    assert_eq!(crm.find("email", "a@x.io")[0].1["name"], "Keep");
}

#[tokio::test]
async fn create_new_makes_a_second_record() {
    let crm = Arc::new(Crm::default());
    crm.insert(json!({"email": "a@x.io"}));
    // This CRM refuses a second record with the same e-mail: the create becomes an update.
    let out = run(
        crm.clone(),
        "create_new",
        "fail",
        "{\"email\":\"a@x.io\",\"name\":\"B\"}\n",
    )
    .await;
    assert_eq!(statuses(&out), ["updated"]);
    assert_eq!(crm.records.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn merge_fills_only_empty_fields() {
    let crm = Arc::new(Crm::default());
    crm.insert(json!({"email": "a@x.io", "name": "Kept", "phone": ""}));
    let out = run(
        crm.clone(),
        "merge",
        "fail",
        "{\"email\":\"a@x.io\",\"name\":\"New\",\"phone\":\"+1\"}\n",
    )
    .await;
    assert_eq!(statuses(&out), ["updated"]);
    let r = &crm.find("email", "a@x.io")[0].1;
    assert_eq!(
        (r["name"].as_str(), r["phone"].as_str()),
        (Some("Kept"), Some("+1"))
    );
}

#[tokio::test]
async fn several_matches_follow_on_multiple() {
    for (policy, want) in [
        ("fail", "failed"),
        ("first", "updated"),
        ("most_recent", "updated"),
    ] {
        let crm = Arc::new(Crm::default());
        crm.insert(json!({"email": "a@x.io", "updated": "2024-01-02T00:00:00Z"}));
        crm.insert(json!({"email": "A@x.io", "updated": "2024-03-01T00:00:00Z"}));
        let out = run(
            crm.clone(),
            "update",
            policy,
            "{\"email\":\"a@x.io\",\"name\":\"N\"}\n",
        )
        .await;
        assert_eq!(statuses(&out), [want], "{policy}");
        match policy {
            "fail" => assert_eq!(out[0]["error"]["kind"], "multiple_matches"),
            "first" => assert_eq!(out[0]["target_id"], "1"),
            _ => assert_eq!(out[0]["target_id"], "2"),
        }
    }
}

#[tokio::test]
async fn a_create_that_races_another_writer_becomes_an_update() {
    let crm = Arc::new(Crm::default());
    crm.race
        .lock()
        .unwrap()
        .push(json!({"email": "race@x.io", "name": "Theirs"}));
    let out = run(
        crm.clone(),
        "update",
        "fail",
        "{\"email\":\"race@x.io\",\"name\":\"Ours\"}\n",
    )
    .await;
    assert_eq!(statuses(&out), ["updated"]);
    assert_eq!(
        crm.records.lock().unwrap().len(),
        1,
        "never a second record"
    );
    assert_eq!(crm.find("email", "race@x.io")[0].1["name"], "Ours");
}

#[tokio::test]
async fn invalid_records_are_reported_not_sent() {
    let crm = Arc::new(Crm::default());
    let input = "{\"email\":\"a@x.io\"}\n{\"name\":\"no email\"}\n{\"email\":\"A@X.IO\"}\nnot json\n{\"email\":\"b@x.io\"}\n";
    let out = run(crm.clone(), "update", "fail", input).await;
    assert_eq!(
        statuses(&out),
        ["created", "failed", "failed", "failed", "created"]
    );
    assert_eq!(out[2]["error"]["kind"], "duplicate_key");
    let indexes: Vec<u64> = out.iter().filter_map(|o| o["index"].as_u64()).collect();
    assert_eq!(indexes, [0, 1, 2, 3, 4], "outcomes in input order");
    assert_eq!(crm.records.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn batch_upsert_maps_results_back_per_record() {
    let crm = Arc::new(Crm {
        batch: Some(2),
        ..Crm::default()
    });
    crm.insert(json!({"email": "b@x.io"}));
    let input = "{\"email\":\"a@x.io\"}\n{\"email\":\"b@x.io\"}\n{\"email\":\"c@x.io\",\"name\":\"REJECT\"}\n";
    let out = run(crm.clone(), "update", "fail", input).await;
    assert_eq!(statuses(&out), ["created", "updated", "failed"]);
    assert_eq!(out[2]["error"]["kind"], "validation");
    let calls = crm.calls.lock().unwrap().clone();
    assert!(calls.iter().all(|c| c.starts_with("batch")), "{calls:?}");
}
