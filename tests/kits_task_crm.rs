//! The task CRM kit end to end against the sandbox: clients and projects looked up by their
//! external id (list filters), created, updated, skipped or created anew; a unique field taken
//! by another writer; tasks referring to projects; client-credentials tokens expiring mid-run;
//! faults.
//!
//! The API has no batch endpoint, and its 100-per-minute window means a 429 is only over after
//! up to a minute (Retry-After): longer than a test should wait, so 429 storms are not
//! exercised here (the pacing keeps the kit under the limit).

mod kits_support;

use kits_support::{
    Racing, assert_faults_happened, count, engine, kit_variant, one_by_one, others, post_json,
    recorder, records, send, send_via, shown, twenty_percent_faults,
};
use rulebridge_sandbox::{self as sandbox, Sandbox, SandboxConfig};
use serde_json::{Value, json};
use std::sync::Arc;

const KIT: &str = "task_crm";

fn clients(ids: std::ops::Range<usize>, industry: &str) -> String {
    ids.map(|i| {
        json!({"id": i, "name": format!(" Client {i} "), "email": format!("OPS{i}@client.io"), "industry": industry})
            .to_string()
            + "\n"
    })
    .collect()
}

fn rows(sb: &Sandbox, collection: &str) -> Vec<Value> {
    records(sb, "taskcrm", collection)
}

fn row(sb: &Sandbox, collection: &str, id: &Value) -> Value {
    let id = id
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .expect("numeric id");
    rows(sb, collection)
        .into_iter()
        .find(|r| r["id"] == id)
        .expect("the outcome's record")
}

fn variant(name: &str, on_match: &str) -> String {
    format!(
        r#"
kind: flow
name: {name}
source: {{ require: [name] }}
target: {{ provider: task_crm, object: client }}
mapping:
  name: trim(name)
  industry: industry | title_case
  external_id: '"billing-" + to_string(id)'
options: {{ omit_nulls: true }}
duplicates: {{ match: [external_id], on_match: {on_match}, on_multiple: fail }}
"#
    )
}

async fn token(sb: &Sandbox) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp: Value = reqwest::Client::new()
        .post(sb.kit_token_url(KIT).expect("token url"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    format!(
        "Bearer {}",
        resp["access_token"].as_str().unwrap_or_default()
    )
}

#[tokio::test]
async fn clients_create_update_skip_and_create_new() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[
        ("skip.yaml", variant("tc_skip", "skip")),
        ("new.yaml", variant("tc_new", "create_new")),
    ]);
    let first = send(
        &engine,
        &sb,
        KIT,
        KIT,
        "client_to_task_crm",
        &clients(0..2, "retail"),
        one_by_one(2),
    )
    .await;
    assert_eq!(count(&first, "created"), 2, "{first:?}");
    for (i, o) in first.iter().enumerate() {
        let c = row(&sb, "clients", &o["target_id"]);
        assert_eq!(c["external_id"], format!("billing-{i}"));
        assert_eq!(c["email"], format!("ops{i}@client.io"));
    }
    let skipped = send(
        &engine,
        &sb,
        KIT,
        KIT,
        "tc_skip",
        &clients(0..2, "banking"),
        one_by_one(2),
    )
    .await;
    assert_eq!(count(&skipped, "skipped"), 2, "{skipped:?}");
    let updated = send(
        &engine,
        &sb,
        KIT,
        KIT,
        "client_to_task_crm",
        &clients(0..2, "banking"),
        one_by_one(2),
    )
    .await;
    assert_eq!(count(&updated, "updated"), 2, "{updated:?}");
    assert!(
        first
            .iter()
            .zip(&updated)
            .all(|(a, b)| a["target_id"] == b["target_id"])
    );
    assert!(
        rows(&sb, "clients")
            .iter()
            .all(|c| c["industry"] == "Banking")
    );
    // external_id is unique: create_new meets 409 naming the client, and updates it.
    let again = send(
        &engine,
        &sb,
        KIT,
        KIT,
        "tc_new",
        &clients(0..1, "mining"),
        one_by_one(1),
    )
    .await;
    assert_eq!(again[0]["status"], "updated", "{again:?}");
    assert_eq!(again[0]["target_id"], first[0]["target_id"]);
    assert_eq!(
        row(&sb, "clients", &first[0]["target_id"])["industry"],
        "Mining"
    );
    assert_eq!(rows(&sb, "clients").len(), 2);
}

#[tokio::test]
async fn projects_then_tasks_and_a_task_for_a_missing_project() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[]);
    let projects = "{\"id\":5,\"title\":\"Website relaunch\",\"started\":true,\"priority\":\"HIGH\"}\n{\"id\":6,\"title\":\"Archive\",\"archived\":true}\n";
    let p = send(
        &engine,
        &sb,
        KIT,
        KIT,
        "project_to_task_crm",
        projects,
        one_by_one(1),
    )
    .await;
    assert_eq!(count(&p, "created"), 2, "{p:?}");
    let pid = p[0]["target_id"].as_str().expect("id").to_string();
    // Tasks name their tracker project; the CRM gets its own project id.
    let tasks = "{\"title\":\"Draft copy\",\"project_id\":5,\"state\":\"in_progress\",\"due\":\"2024-02-01T17:00:00Z\"}\n{\"title\":\"Orphan\",\"project_id\":999}\n";
    let t = send(
        &engine,
        &sb,
        KIT,
        KIT,
        "task_to_task_crm",
        tasks,
        one_by_one(1),
    )
    .await;
    assert_eq!(t[0]["status"], "created", "{t:?}");
    let task = row(&sb, "tasks", &t[0]["target_id"]);
    assert_eq!(task["project_id"].to_string(), pid);
    assert_eq!(task["due_date"], "2024-02-01");
    assert_eq!(t[1]["status"], "failed");
    assert_eq!(t[1]["error"]["kind"], "unresolved_reference", "{t:?}");
    assert_eq!(t[1]["error"]["field"], "project_id", "{t:?}");
    assert!(
        t[1]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("tracker-999")),
        "{t:?}"
    );
    assert_eq!(rows(&sb, "tasks").len(), 1);
    let again = send(
        &engine,
        &sb,
        KIT,
        KIT,
        "project_to_task_crm",
        &projects.replace("HIGH", "LOW"),
        one_by_one(1),
    )
    .await;
    assert_eq!(count(&again, "updated"), 2, "{again:?}");
    assert_eq!(row(&sb, "projects", &p[0]["target_id"])["priority"], "low");
    assert_eq!(rows(&sb, "projects").len(), 2);
}

#[tokio::test]
async fn a_client_created_between_lookup_and_create_is_updated() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[]);
    let auth = token(&sb).await;
    let url = format!("{}/clients", sb.kit_base_url(KIT).expect("kit"));
    let race = Box::pin(async move {
        post_json(
            &url,
            &[("Authorization", auth.as_str())],
            &json!({"name": "Theirs", "external_id": "billing-0"}),
        )
        .await;
    });
    let inner = Arc::new(
        engine
            .http_connector(KIT, sb.kit_base_url(KIT).as_deref())
            .expect("connector"),
    );
    let out = send_via(
        &engine,
        Racing::new(inner, race),
        "client_to_task_crm",
        &clients(0..1, "retail"),
        one_by_one(1),
    )
    .await;
    assert_eq!(out[0]["status"], "updated", "{out:?}");
    let all = rows(&sb, "clients");
    assert_eq!(all.len(), 1, "never a second client");
    assert_eq!(all[0]["name"], "Client 0");
    assert_eq!(out[0]["target_id"], all[0]["id"].to_string().as_str());
}

#[tokio::test]
async fn tokens_expiring_mid_run_are_refreshed() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[]);
    let runner = engine.runner("client_to_task_crm").expect("flow");
    let connector = Arc::new(
        engine
            .http_connector(KIT, sb.kit_base_url(KIT).as_deref())
            .expect("connector"),
    );
    let sender = {
        let (run, send) = one_by_one(1).split();
        runner.send_through(connector, run, send)
    };
    for i in 0..3 {
        let o = sender
            .run_one(i, &json!({"id": i, "name": format!("C{i}")}))
            .await;
        assert_eq!(o.status, rulebridge::Status::Created, "{o:?}");
        if i == 0 {
            assert!(sb.expire_tokens() > 0);
        }
    }
    assert_eq!(rows(&sb, "clients").len(), 3);
    let tokens = sb.state().providers["taskcrm"]
        .endpoints
        .iter()
        .filter(|(k, _)| k.contains("token"))
        .map(|(_, s)| s.requests)
        .sum::<u64>();
    assert_eq!(tokens, 2, "one new token after the expiry");
}

#[tokio::test]
async fn faults_at_twenty_percent_lose_nothing() {
    // One record at a time: the same seed meets the same faults on every run.
    let faults = twenty_percent_faults();
    let sb = sandbox::start(SandboxConfig {
        seed: 4,
        faults,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    // The kit's pacing (100 per minute: one request every ~0.6 s) and backoff (1 s base) are
    // shortened so the test stays quick; the sandbox keeps its own limit.
    let kit = kit_variant(
        KIT,
        "task_crm_quick",
        &[
            ("rate_limit: 100 per 1m", "rate_limit: 100 per 10s"),
            ("base: 1s, max: 30s", "base: 50ms, max: 300ms"),
        ],
    );
    let flow = std::fs::read_to_string("rules/flows/task_crm.yaml")
        .expect("flow")
        .split("\n---\n")
        .next()
        .expect("the client flow")
        .replace("name: client_to_task_crm", "name: tc_quick")
        .replace("provider: task_crm", "provider: task_crm_quick");
    let engine = engine(&[("kit.yaml", kit), ("flow.yaml", flow)]);
    let out = send(
        &engine,
        &sb,
        KIT,
        "task_crm_quick",
        "tc_quick",
        &clients(0..12, "retail"),
        one_by_one(1),
    )
    .await;
    // A create whose response was lost meets 409 on retry and updates the client it made.
    let ok = count(&out, "created") + count(&out, "updated");
    assert_eq!(ok, 12, "{:?}", others(&out, &["created", "updated"]));
    for (i, o) in out.iter().enumerate() {
        assert_eq!(
            row(&sb, "clients", &o["target_id"])["external_id"],
            format!("billing-{i}")
        );
    }
    assert_eq!(rows(&sb, "clients").len(), 12);
    assert_faults_happened(&sb, "taskcrm");
}

#[tokio::test]
async fn request_bodies() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let rec = recorder(&sb).await;
    let engine = engine(&[]);
    let base = rec.through(&sb, &sb.kit_base_url(KIT).expect("kit"));
    let out = kits_support::send_at(
        &engine,
        &base,
        KIT,
        "client_to_task_crm",
        &clients(17..18, "heavy machinery"),
        one_by_one(1),
    )
    .await;
    assert_eq!(count(&out, "created"), 1, "{out:?}");
    let again = kits_support::send_at(
        &engine,
        &base,
        KIT,
        "client_to_task_crm",
        &clients(17..18, "retail"),
        one_by_one(1),
    )
    .await;
    assert_eq!(count(&again, "updated"), 1, "{again:?}");
    insta::assert_yaml_snapshot!(shown(&rec.seen(), "/taskcrm/api/v1", &[]));
}
