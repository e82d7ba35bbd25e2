//! The HubSpot kit end to end against the sandbox: every record ends with the right outcome and
//! the server holds exactly the expected contacts — with batch upserts, one-by-one writes,
//! races, partial batch failures, token expiry, 429 storms, 5xx and dropped connections.

mod kits_support;

use kits_support::{assert_faults_happened, twenty_percent_faults};

use std::sync::Arc;
use std::time::Duration;

use kits_support::SendOptions;
use rulebridge::Engine;
use rulebridge_sandbox::{self as sandbox, Faults, Sandbox, SandboxConfig};
use serde_json::Value;

/// A variant of the lead flow with its own duplicate rule, for the on_match cases.
fn flow_variant(name: &str, on_match: &str) -> String {
    format!(
        r#"
kind: flow
name: {name}
source: {{ require: [email] }}
target: {{ provider: hubspot, object: contact }}
mapping:
  email: normalize_email(email)
  firstname: name
  company: company
options: {{ omit_nulls: true }}
duplicates: {{ match: [email], on_match: {on_match}, on_multiple: first }}
"#
    )
}

fn engine(extra: &[(&str, String)]) -> Engine {
    let mut b = Engine::builder().rules_dir("rules");
    for (n, t) in extra {
        b = b.rules_str(*n, t.clone());
    }
    for (k, v) in sandbox::CREDENTIALS {
        b = b.credential(*k, *v);
    }
    b.build().expect("rules compile")
}

async fn send(
    engine: &Engine,
    sb: &Sandbox,
    flow: &str,
    input: &str,
    options: SendOptions,
) -> Vec<Value> {
    let runner = engine.runner(flow).expect("flow");
    let connector = Arc::new(
        engine
            .http_connector("hubspot", sb.kit_base_url("hubspot").as_deref())
            .expect("connector"),
    );
    let sender = {
        let (run, send) = options.split();
        runner.send_through(connector, run, send)
    };
    kits_support::outcomes(&sender, input).await
}

/// Creates the custom properties the rule files declare (the Acme extension of the kit) in
/// the sandbox's fresh portal, as `rulebridge fields hubspot contact --create-missing` does.
async fn create_custom_properties(engine: &Engine, sb: &Sandbox) {
    let connector = engine
        .http_connector("hubspot", sb.kit_base_url("hubspot").as_deref())
        .expect("connector");
    let done = rulebridge::connect::fields::create_missing(&connector, "contact")
        .await
        .expect("properties created");
    assert_eq!(
        done.created,
        [
            "lead_owner_team",
            "lead_source",
            "tags",
            "form_submitted_at"
        ]
    );
}

#[tokio::test]
async fn custom_properties_are_created_once_with_hubspot_types() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[]);
    // A fresh portal refuses the lead flow's custom properties.
    let before = send(
        &engine,
        &sb,
        "lead_to_hubspot",
        &leads(1, "Ada"),
        one_by_one(),
    )
    .await;
    assert_eq!(before[0]["status"], "failed", "{before:?}");
    assert!(
        before[0]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not exist")),
        "{before:?}"
    );
    create_custom_properties(&engine, &sb).await;
    let connector = engine
        .http_connector("hubspot", sb.kit_base_url("hubspot").as_deref())
        .expect("connector");
    let again = rulebridge::connect::fields::create_missing(&connector, "contact")
        .await
        .expect("listed");
    assert!(
        again.created.is_empty() && again.failed.is_empty(),
        "{again:?}"
    );
    let listed: Vec<&str> = again.fields.iter().map(|f| f.name.as_str()).collect();
    assert!(listed.contains(&"lead_owner_team"), "{listed:?}");
    let url = format!(
        "{}/crm/v3/properties/contacts/form_submitted_at",
        sb.kit_base_url("hubspot").expect("kit")
    );
    let p: Value = reqwest::Client::new()
        .get(url)
        .bearer_auth(
            sandbox::CREDENTIALS
                .iter()
                .find(|(k, _)| *k == "HUBSPOT_TOKEN")
                .expect("token")
                .1,
        )
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (&p["type"], &p["fieldType"], &p["label"], &p["groupName"]),
        (
            &Value::from("datetime"),
            &Value::from("date"),
            &Value::from("Form submitted at"),
            &Value::from("contactinformation")
        ),
        "{p}"
    );
    let out = send(
        &engine,
        &sb,
        "lead_to_hubspot",
        &leads(1, "Ada"),
        one_by_one(),
    )
    .await;
    assert_eq!(out[0]["status"], "created", "{out:?}");
}

fn leads(n: usize, name: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"email\":\"Lead{i}@Example.com\",\"name\":\"{name} {i}\",\"score\":{}}}\n",
                i % 100
            )
        })
        .collect()
}

fn count(outcomes: &[Value], status: &str) -> usize {
    outcomes.iter().filter(|o| o["status"] == status).count()
}

fn contacts(sb: &Sandbox) -> Vec<Value> {
    sb.state()
        .providers
        .get("hubspot")
        .and_then(|p| p.records.get("contacts").cloned())
        .unwrap_or_default()
}

fn one_by_one() -> SendOptions {
    SendOptions {
        batch: false,
        concurrency: 4,
        ..SendOptions::default()
    }
}

#[tokio::test]
async fn batch_upsert_creates_then_updates() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[]);
    create_custom_properties(&engine, &sb).await;
    let first = send(
        &engine,
        &sb,
        "lead_to_hubspot",
        &leads(250, "Ada"),
        SendOptions::default(),
    )
    .await;
    assert_eq!(count(&first, "created"), 250);
    assert_eq!(contacts(&sb).len(), 250);
    let again = send(
        &engine,
        &sb,
        "lead_to_hubspot",
        &leads(250, "Grace"),
        SendOptions::default(),
    )
    .await;
    assert_eq!(
        count(&again, "updated"),
        250,
        "{:?}",
        again.iter().find(|o| o["status"] != "updated")
    );
    let all = contacts(&sb);
    assert_eq!(all.len(), 250, "upserts never duplicate");
    assert!(all.iter().all(|c| {
        c["properties"]["firstname"]
            .as_str()
            .is_some_and(|n| n.starts_with("Grace"))
    }));
    // 250 records in batches of at most 100: three batch requests per run.
    let hs = &sb.state().providers["hubspot"];
    assert_eq!(
        hs.endpoints
            .iter()
            .filter(|(k, _)| k.contains("batch"))
            .map(|(_, s)| s.requests)
            .sum::<u64>(),
        6
    );
}

#[tokio::test]
async fn shuffled_batch_results_map_back_to_their_own_records() {
    // The sandbox returns batch results in a shuffled order (as HubSpot may): every outcome
    // must name the contact of its own e-mail, on create and on update.
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[]);
    create_custom_properties(&engine, &sb).await;
    for (name, status) in [("Ada", "created"), ("Grace", "updated")] {
        let out = send(
            &engine,
            &sb,
            "lead_to_hubspot",
            &leads(120, name),
            SendOptions::default(),
        )
        .await;
        assert_eq!(
            count(&out, status),
            120,
            "{:?}",
            out.iter().find(|o| o["status"] != status)
        );
        let by_id: std::collections::HashMap<String, Value> = contacts(&sb)
            .into_iter()
            .map(|c| (c["id"].as_str().unwrap_or_default().to_string(), c))
            .collect();
        for (i, o) in out.iter().enumerate() {
            let c = &by_id[o["target_id"].as_str().expect("target id")];
            assert_eq!(
                c["properties"]["email"],
                format!("lead{i}@example.com"),
                "outcome {i}"
            );
            assert_eq!(c["properties"]["firstname"], name);
        }
    }
}

#[tokio::test]
async fn one_by_one_update_skip_and_create_new() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[
        ("update.yaml", flow_variant("hs_update", "update")),
        ("skip.yaml", flow_variant("hs_skip", "skip")),
        (
            "create_new.yaml",
            flow_variant("hs_create_new", "create_new"),
        ),
    ]);
    let input = "{\"email\":\"a@x.io\",\"name\":\"A\"}\n{\"email\":\"b@x.io\",\"name\":\"B\"}\n";
    let created = send(&engine, &sb, "hs_update", input, one_by_one()).await;
    assert_eq!(count(&created, "created"), 2);

    let renamed = input.replace("\"A\"", "\"A2\"").replace("\"B\"", "\"B2\"");
    let skipped = send(&engine, &sb, "hs_skip", &renamed, one_by_one()).await;
    assert_eq!(count(&skipped, "skipped"), 2);
    assert!(skipped.iter().all(|o| o["target_id"].is_string()));

    let updated = send(&engine, &sb, "hs_update", &renamed, one_by_one()).await;
    assert_eq!(count(&updated, "updated"), 2);

    // HubSpot keeps e-mails unique: create_new hits 409 and becomes an update of that record.
    let again = send(&engine, &sb, "hs_create_new", &renamed, one_by_one()).await;
    assert_eq!(count(&again, "updated"), 2);
    let all = contacts(&sb);
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|c| {
        c["properties"]["firstname"]
            .as_str()
            .is_some_and(|n| n.ends_with('2'))
    }));
}

#[tokio::test]
async fn a_write_the_search_index_has_not_seen_becomes_an_update() {
    // Search lags writes (as HubSpot's index does): the lookup misses the record another
    // writer just created, the create gets 409 `Existing ID: N`, and the engine updates N.
    let config = SandboxConfig {
        hubspot_search_lag: Duration::from_secs(60),
        ..SandboxConfig::default()
    };
    let sb = sandbox::start(config).await.expect("sandbox");
    let engine = engine(&[("update.yaml", flow_variant("hs_update", "update"))]);
    send(
        &engine,
        &sb,
        "hs_update",
        "{\"email\":\"race@x.io\",\"name\":\"Theirs\"}\n",
        one_by_one(),
    )
    .await;
    let out = send(
        &engine,
        &sb,
        "hs_update",
        "{\"email\":\"race@x.io\",\"name\":\"Ours\"}\n",
        one_by_one(),
    )
    .await;
    assert_eq!(out[0]["status"], "updated", "{out:?}");
    let all = contacts(&sb);
    assert_eq!(all.len(), 1, "never a second record");
    assert_eq!(all[0]["properties"]["firstname"], "Ours");
}

#[tokio::test]
async fn a_partly_failed_batch_maps_back_per_record() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[("update.yaml", flow_variant("hs_update", "update"))]);
    // `normalize_email` rejects malformed addresses before sending; these pass it but HubSpot
    // refuses them, so the batch answers 207 for those items only.
    let mut input = leads(10, "Ok").replace("Lead", "ok");
    input.push_str("{\"email\":\"bad@@example.com\",\"name\":\"Bad\"}\n");
    let out = send(&engine, &sb, "hs_update", &input, SendOptions::default()).await;
    let failed: Vec<&Value> = out.iter().filter(|o| o["status"] == "failed").collect();
    assert_eq!(count(&out, "created"), 10, "{out:?}");
    assert_eq!(failed.len(), 1);
    assert_eq!(contacts(&sb).len(), 10);
}

#[tokio::test]
async fn tokens_expiring_mid_run_are_refreshed() {
    let config = SandboxConfig {
        token_ttl: Duration::from_secs(1),
        ..SandboxConfig::default()
    };
    let sb = Arc::new(sandbox::start(config).await.expect("sandbox"));
    let oauth_kit = std::fs::read_to_string("rules/providers/hubspot.yaml")
        .expect("kit")
        .replace("name: hubspot\n", "name: hubspot_oauth\n")
        .replace(
            "auth: { type: bearer, token: \"${env:HUBSPOT_TOKEN}\" }",
            "auth: { type: oauth2_refresh, token_url: /oauth/v1/token, client_id: \"${env:HUBSPOT_CLIENT_ID}\", client_secret: \"${env:HUBSPOT_CLIENT_SECRET}\", refresh_token: \"${env:HUBSPOT_REFRESH_TOKEN}\" }",
        );
    assert!(
        oauth_kit.contains("oauth2_refresh"),
        "kit changed: update this test"
    );
    let flow =
        flow_variant("hs_oauth", "update").replace("provider: hubspot", "provider: hubspot_oauth");
    let engine = engine(&[("kit.yaml", oauth_kit), ("flow.yaml", flow)]);
    let runner = engine.runner("hs_oauth").expect("flow");
    let connector = Arc::new(
        engine
            .http_connector("hubspot_oauth", sb.kit_base_url("hubspot").as_deref())
            .expect("connector"),
    );
    let sender = {
        let (run, send) = one_by_one().split();
        runner.send_through(connector, run, send)
    };
    let mut created = 0;
    for i in 0..6 {
        let o = sender
            .run_one(
                i,
                &serde_json::json!({"email": format!("t{i}@x.io"), "name": "T"}),
            )
            .await;
        assert_eq!(o.status, rulebridge::Status::Created, "{o:?}");
        created += 1;
        if i == 2 {
            sb.expire_tokens();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(created, 6);
    assert_eq!(contacts(&sb).len(), 6);
}

#[tokio::test]
async fn faults_at_twenty_percent_lose_nothing() {
    let faults = twenty_percent_faults();
    let config = SandboxConfig {
        seed: 7,
        faults,
        ..SandboxConfig::default()
    };
    let sb = sandbox::start(config).await.expect("sandbox");
    // The kit's backoff (500 ms doubling) is shortened so the test stays quick; every request
    // still waits for the kit's pacing (100 per 10 s).
    let kit = kits_support::kit_variant(
        "hubspot",
        "hubspot_quick",
        &[("base: 500ms, max: 30s", "base: 50ms, max: 500ms")],
    );
    let flow =
        flow_variant("hs_quick", "update").replace("provider: hubspot", "provider: hubspot_quick");
    let engine = engine(&[("kit.yaml", kit), ("flow.yaml", flow)]);
    // One record at a time: the same seed meets the same faults on every run.
    let options = SendOptions {
        concurrency: 1,
        ..one_by_one()
    };
    let out = kits_support::send(
        &engine,
        &sb,
        "hubspot",
        "hubspot_quick",
        "hs_quick",
        &leads(16, "F"),
        options,
    )
    .await;
    let created = count(&out, "created");
    let updated = count(&out, "updated");
    // A create whose response was lost is retried, meets 409 and updates: still one record.
    assert_eq!(
        created + updated,
        16,
        "{:?}",
        out.iter()
            .filter(|o| o["status"] == "failed")
            .collect::<Vec<_>>()
    );
    assert_eq!(contacts(&sb).len(), 16);
    assert_faults_happened(&sb, "hubspot");
}

#[tokio::test]
async fn a_429_storm_is_waited_out() {
    // The server allows 10 requests per 10 s while the kit paces for 100: 429s with the
    // rate-limit headers make the connector pause instead of failing records.
    let faults = Faults {
        rate_limit_factor: 0.1,
        ..Faults::default()
    };
    let config = SandboxConfig {
        faults,
        ..SandboxConfig::default()
    };
    let sb = sandbox::start(config).await.expect("sandbox");
    let engine = engine(&[("update.yaml", flow_variant("hs_update", "update"))]);
    let out = send(&engine, &sb, "hs_update", &leads(4, "R"), one_by_one()).await;
    assert_eq!(count(&out, "created"), 4, "{out:?}");
    assert!(
        sb.state().providers["hubspot"].rate_limited > 0,
        "the storm happened"
    );
    assert_eq!(contacts(&sb).len(), 4);
}

#[tokio::test]
async fn request_bodies() {
    // What the lead flow sends: one batch upsert by e-mail; then, one by one, a lookup and a
    // create or an update.
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let rec = kits_support::recorder(&sb).await;
    let engine = engine(&[("update.yaml", flow_variant("hs_update", "update"))]);
    create_custom_properties(&engine, &sb).await;
    let base = rec.through(&sb, &sb.kit_base_url("hubspot").expect("kit"));
    let input = "{\"email\":\" Ada.Lovelace@Example.COM \",\"name\":\"Ada King Lovelace\",\"company\":\"Analytical Engines\",\"phone\":\"(415) 555-0132\",\"score\":91,\"country\":\"us\",\"source\":\"webinar\",\"tags\":[\"math\",\"math\",\"engines\"],\"submitted_at\":\"2024-01-14T09:00:00Z\"}\n{\"email\":\"grace@navy.mil\"}\n";
    let out = kits_support::send_at(
        &engine,
        &base,
        "hubspot",
        "lead_to_hubspot",
        input,
        SendOptions::default(),
    )
    .await;
    assert_eq!(count(&out, "created"), 2, "{out:?}");
    let one = "{\"email\":\"grace@navy.mil\",\"name\":\"Grace\"}\n{\"email\":\"new@navy.mil\",\"name\":\"New\"}\n";
    let out = kits_support::send_at(
        &engine,
        &base,
        "hubspot",
        "hs_update",
        one,
        SendOptions {
            concurrency: 1,
            ..one_by_one()
        },
    )
    .await;
    assert_eq!(
        (count(&out, "updated"), count(&out, "created")),
        (1, 1),
        "{out:?}"
    );
    let mut shown = kits_support::shown(&rec.seen(), "/hubspot", &[]);
    for s in &mut shown {
        if let Some(r) = s["request"]
            .as_str()
            .filter(|r| r.starts_with("PATCH"))
            .map(str::to_string)
        {
            let (path, _) = r.rsplit_once('/').unwrap_or((&r, ""));
            s["request"] = Value::from(format!("{path}/[id]"));
        }
    }
    insta::assert_yaml_snapshot!(shown);
}
