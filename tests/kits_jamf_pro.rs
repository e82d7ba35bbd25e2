//! The Jamf Pro kit against the sandbox: token exchange (Basic → bearer with expiry), tokens
//! expiring mid-run, and departments created once then skipped.

mod kits_support;

use std::sync::Arc;
use std::time::Duration;

use kits_support::SendOptions;
use kits_support::{assert_faults_happened, engine, records, send, twenty_percent_faults};
use rulebridge_sandbox::{self as sandbox, Sandbox, SandboxConfig};
use serde_json::Value;

const FLOW: &str = "department_to_jamf";

async fn send_departments(sb: &Sandbox, input: &str) -> Vec<Value> {
    send_departments_with(sb, input, 3).await
}

/// One record at a time makes a seeded fault run repeatable.
async fn send_departments_with(sb: &Sandbox, input: &str, concurrency: usize) -> Vec<Value> {
    let options = SendOptions {
        concurrency,
        ..SendOptions::default()
    };
    send(&engine(&[]), sb, "jamf", "jamf", FLOW, input, options).await
}

fn departments(sb: &Sandbox) -> Vec<String> {
    let mut names: Vec<String> = records(sb, "jamf", "departments")
        .iter()
        .filter_map(|d| d["name"].as_str().map(String::from))
        .collect();
    names.sort();
    names
}

fn statuses(out: &[Value]) -> Vec<&str> {
    out.iter()
        .map(|o| o["status"].as_str().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn departments_are_created_once_then_skipped() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let input = "{\"name\":\"IT\"}\n{\"name\":\" Finance \"}\n{\"name\":\"HR\"}\n";
    assert_eq!(
        statuses(&send_departments(&sb, input).await),
        ["created"; 3]
    );
    let again = send_departments(&sb, input).await;
    assert_eq!(statuses(&again), ["skipped"; 3]);
    assert!(again.iter().all(|o| o["target_id"].is_string()));
    assert_eq!(departments(&sb), ["Finance", "HR", "IT"]);
}

#[tokio::test]
async fn expired_tokens_are_replaced_mid_run() {
    let config = SandboxConfig {
        token_ttl: Duration::from_secs(2),
        ..SandboxConfig::default()
    };
    let sb = sandbox::start(config).await.expect("sandbox");
    let engine = engine(&[]);
    let runner = engine.runner(FLOW).expect("flow");
    let connector = Arc::new(
        engine
            .http_connector("jamf", sb.kit_base_url("jamf").as_deref())
            .expect("connector"),
    );
    let sender = {
        let (run, send) = SendOptions::default().split();
        runner.send_through(connector, run, send)
    };
    for (i, name) in ["A", "B", "C", "D"].iter().enumerate() {
        let o = sender
            .run_one(i, &serde_json::json!({ "name": name }))
            .await;
        assert_eq!(o.status, rulebridge::Status::Created, "{o:?}");
        if i == 1 {
            sb.expire_tokens();
        }
    }
    assert_eq!(departments(&sb), ["A", "B", "C", "D"]);
}

#[tokio::test]
async fn faults_lose_no_department() {
    let faults = twenty_percent_faults();
    let sb = sandbox::start(SandboxConfig {
        seed: 11,
        faults,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let names: Vec<String> = (0..20).map(|i| format!("Dept {i:02}")).collect();
    let input: String = names
        .iter()
        .map(|n| format!("{{\"name\":\"{n}\"}}\n"))
        .collect();
    let out = send_departments_with(&sb, &input, 1).await;
    // A create whose answer was lost is retried; Jamf refuses the second one as a duplicate
    // name, which the engine turns into "it exists": never two departments of one name.
    assert!(
        out.iter()
            .all(|o| o["status"] == "created" || o["status"] == "skipped"),
        "{out:?}"
    );
    assert_eq!(departments(&sb), names);
    assert_faults_happened(&sb, "jamf");
}
