//! The user-sync kit end to end against the sandbox's CRM endpoint: batches carry the tenant
//! and every user's id, per-user results map back to the right record (created, updated or
//! failed), and faults lose nothing.
//!
//! The endpoint only has a batch upsert by e-mail, so `on_match: skip` / `create_new` (which
//! need a lookup and single creates) do not apply to this kit.

mod kits_support;

use std::time::Duration;

use kits_support::SendOptions;
use kits_support::{
    assert_faults_happened, count, engine, kit_variant, others, recorder, records, send, shown,
    twenty_percent_faults,
};
use rulebridge_sandbox::{self as sandbox, Faults, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const KIT: &str = "usersync_crm";
const FLOW: &str = "wrapper_users_to_crm";

fn users(ids: std::ops::Range<usize>, name: &str) -> String {
    ids.map(|i| {
        json!({
            "id": format!("user-{i}"), "tenant_id": "tenant-1", "tenant_name": "Acme Corp",
            "email": format!("User{i}@Acme.io"), "name": format!("{name} {i}"),
            "roles": ["user"], "permissions": ["read", "read", "write"],
        })
        .to_string()
            + "\n"
    })
    .collect()
}

fn crm_users(sb: &Sandbox) -> Vec<Value> {
    records(sb, "usersync", "users")
}

/// The CRM user with this id.
fn crm_user(sb: &Sandbox, id: &Value) -> Value {
    let id = id
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .expect("numeric crm id");
    crm_users(sb)
        .into_iter()
        .find(|u| u["id"] == id)
        .expect("the outcome's target exists")
}

#[tokio::test]
async fn batches_create_then_update_and_ids_map_back_per_user() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[]);
    let first = send(
        &engine,
        &sb,
        KIT,
        KIT,
        FLOW,
        &users(0..5, "Ada"),
        SendOptions::default(),
    )
    .await;
    assert_eq!(count(&first, "created"), 5, "{first:?}");
    for (i, o) in first.iter().enumerate() {
        assert_eq!(o["key"], format!("user-{i}"));
        let u = crm_user(&sb, &o["target_id"]);
        assert_eq!(
            u["email"],
            format!("user{i}@acme.io"),
            "outcome {i} names its own user"
        );
        assert_eq!(u["tenantId"], "tenant-1");
        assert_eq!(u["permissions"], json!(["read", "write"]));
    }
    let again = send(
        &engine,
        &sb,
        KIT,
        KIT,
        FLOW,
        &users(0..5, "Grace"),
        SendOptions::default(),
    )
    .await;
    assert_eq!(count(&again, "updated"), 5, "{again:?}");
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(
            a["target_id"], b["target_id"],
            "an update reports the same CRM user"
        );
    }
    let all = crm_users(&sb);
    assert_eq!(all.len(), 5);
    assert!(
        all.iter()
            .all(|u| u["name"].as_str().is_some_and(|n| n.starts_with("Grace")))
    );
    // One request per run, with the tenant in the header's place and the body.
    let log = &sb.state().providers["usersync"].log;
    assert_eq!(
        log.iter()
            .filter(|e| e.path.starts_with("/api/internal/sync/users"))
            .count(),
        2
    );
    assert!(log.iter().all(|e| e.status == Some(200)), "{log:?}");
}

#[tokio::test]
async fn a_failed_user_fails_alone() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[]);
    // A department longer than its column (100) fails that user in an otherwise good batch.
    let mut input = users(0..4, "Ok");
    input.push_str(
        &(json!({"id": "user-long", "tenant_id": "tenant-1", "tenant_name": "Acme Corp",
            "email": "long@acme.io", "name": "Long", "department": "d".repeat(101)})
        .to_string()
            + "\n"),
    );
    input.push_str(&users(4..6, "Ok"));
    let out = send(&engine, &sb, KIT, KIT, FLOW, &input, SendOptions::default()).await;
    assert_eq!(count(&out, "created"), 6, "{out:?}");
    let failed = &out[4];
    assert_eq!(failed["status"], "failed", "{out:?}");
    assert_eq!(failed["key"], "user-long");
    assert_eq!(failed["error"]["kind"], "validation", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("value too long")),
        "{failed}"
    );
    // The users after the failed one still get their own ids.
    for (i, o) in out.iter().enumerate().filter(|(i, _)| *i != 4) {
        let n = if i < 4 { i } else { i - 1 };
        assert_eq!(
            crm_user(&sb, &o["target_id"])["email"],
            format!("user{n}@acme.io")
        );
    }
    assert_eq!(crm_users(&sb).len(), 6);
}

#[tokio::test]
async fn a_user_created_by_another_writer_is_updated() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[]);
    // Another sync (the wrapper's own service) creates user 1 between our runs.
    let theirs = kits_support::post_json(
        &format!("{}/api/internal/sync/users", sb.base_url("usersync")),
        &[
            ("X-Internal-API-Key", "sandbox-internal-key"),
            ("X-Tenant-ID", "tenant-1"),
            ("X-Sync-Source", "wrapper"),
        ],
        &json!({"operation": "user_sync", "tenant": {"id": "tenant-1", "name": "Acme Corp"},
            "users": [{"id": "user-1", "email": "user1@acme.io", "name": "Theirs"}]}),
    )
    .await;
    let their_id = theirs["results"][0]["crmUserId"].to_string();
    let out = send(
        &engine,
        &sb,
        KIT,
        KIT,
        FLOW,
        &users(0..3, "Ours"),
        SendOptions::default(),
    )
    .await;
    let statuses: Vec<&str> = out
        .iter()
        .map(|o| o["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["created", "updated", "created"]);
    assert_eq!(out[1]["target_id"], their_id.as_str());
    let all = crm_users(&sb);
    assert_eq!(all.len(), 3, "never a second user 1");
    assert!(
        all.iter()
            .all(|u| u["name"].as_str().is_some_and(|n| n.starts_with("Ours")))
    );
}

#[tokio::test]
async fn faults_at_twenty_percent_lose_nothing() {
    // One record at a time: the same seed meets the same faults on every run.
    // Batches of 3 so that there are enough requests to meet faults; the kit's pacing
    // (100 per 15 minutes, one request every ~9.5 s) is raised so retries do not wait on it.
    let kit = kit_variant(
        KIT,
        "usersync_small_batches",
        &[
            ("rate_limit: 100 per 15m", "rate_limit: 100 per 10s"),
            ("max_batch: 100", "max_batch: 3"),
        ],
    );
    let flow = std::fs::read_to_string(format!("rules/flows/{FLOW}.yaml"))
        .expect("flow")
        .replace("name: wrapper_users_to_crm", "name: users_small_batches")
        .replace("provider: usersync_crm", "provider: usersync_small_batches");
    let faults = twenty_percent_faults();
    let config = SandboxConfig {
        seed: 5,
        faults,
        ..SandboxConfig::default()
    };
    let sb = sandbox::start(config).await.expect("sandbox");
    let engine = engine(&[("kit.yaml", kit), ("flow.yaml", flow)]);
    let options = SendOptions {
        concurrency: 1,
        ..SendOptions::default()
    };
    let out = send(
        &engine,
        &sb,
        KIT,
        "usersync_small_batches",
        "users_small_batches",
        &users(0..24, "F"),
        options,
    )
    .await;
    // A batch whose response was lost after it was written is sent again and updates.
    let ok = count(&out, "created") + count(&out, "updated");
    assert_eq!(ok, 24, "{:?}", others(&out, &["created", "updated"]));
    for (i, o) in out.iter().enumerate() {
        assert_eq!(
            crm_user(&sb, &o["target_id"])["email"],
            format!("user{i}@acme.io")
        );
    }
    assert_eq!(crm_users(&sb).len(), 24);
    assert_faults_happened(&sb, "usersync");
}

#[tokio::test]
async fn a_spent_fifteen_minute_window_fails_the_batch_instead_of_hanging() {
    // A 429 storm on this endpoint lasts up to its 15-minute window: the records' deadline
    // ends the wait and the users are reported, not written; the first batch is intact.
    let faults = Faults {
        rate_limit_factor: 0.01,
        ..Faults::default()
    };
    let sb = sandbox::start(SandboxConfig {
        faults,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let engine = engine(&[]);
    let options = SendOptions {
        record_deadline: Some(Duration::from_secs(2)),
        ..SendOptions::default()
    };
    let first = send(
        &engine,
        &sb,
        KIT,
        KIT,
        FLOW,
        &users(0..2, "A"),
        options.clone(),
    )
    .await;
    assert_eq!(count(&first, "created"), 2, "{first:?}");
    let second = send(&engine, &sb, KIT, KIT, FLOW, &users(2..4, "B"), options).await;
    assert_eq!(count(&second, "failed"), 2, "{second:?}");
    assert!(
        second
            .iter()
            .all(|o| o["error"]["kind"] == "rate_limited" || o["error"]["kind"] == "transient"),
        "{second:?}"
    );
    assert!(sb.state().providers["usersync"].rate_limited > 0);
    assert_eq!(crm_users(&sb).len(), 2);
}

#[tokio::test]
async fn request_bodies() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let rec = recorder(&sb).await;
    let engine = engine(&[]);
    let base = rec.through(&sb, &sb.kit_base_url(KIT).expect("kit"));
    let mut input = users(0..2, "Ada");
    input.push_str("{\"id\":\"user-9\",\"tenant_id\":\"tenant-1\",\"tenant_name\":\" Acme Corp \",\"email\":\"min@acme.io\",\"name\":\"Min\"}\n");
    let out =
        kits_support::send_at(&engine, &base, KIT, FLOW, &input, SendOptions::default()).await;
    assert_eq!(count(&out, "created"), 3, "{out:?}");
    let seen = rec.seen();
    assert!(seen.iter().all(|s| {
        s.headers
            .iter()
            .any(|(k, v)| k == "x-tenant-id" && v == "tenant-1")
    }));
    insta::assert_yaml_snapshot!(shown(&seen, "/usersync", &[]));
}

const QUICK: &str = "usersync_quick";
const QUICK_FLOW: &str = "users_quick";

/// The kit and flow under other names, paced at 100 per 10 s (and `replace` applied).
fn quick_kit(replace: &[(&str, &str)]) -> (String, String) {
    let mut all = vec![("rate_limit: 100 per 15m", "rate_limit: 100 per 10s")];
    all.extend_from_slice(replace);
    let kit = kit_variant(KIT, QUICK, &all);
    let flow = std::fs::read_to_string(format!("rules/flows/{FLOW}.yaml"))
        .expect("flow")
        .replace("name: wrapper_users_to_crm", &format!("name: {QUICK_FLOW}"))
        .replace("provider: usersync_crm", &format!("provider: {QUICK}"));
    (kit, flow)
}

/// `n` users of three tenants, interleaved: user i is in tenant i % 3.
fn mixed_tenants(n: usize, name: &str) -> Vec<Value> {
    let tenants = [
        ("tenant-a", "Acme Corp"),
        ("tenant-b", "Beta GmbH"),
        ("tenant-c", "Gamma SA"),
    ];
    (0..n)
        .map(|i| {
            let (id, tenant_name) = tenants[i % 3];
            json!({
                "id": format!("user-{i}"), "tenant_id": id, "tenant_name": tenant_name,
                "email": format!("user{i}@{id}.io"), "name": format!("{name} {i}"),
            })
        })
        .collect()
}

fn ndjson(records: &[Value]) -> String {
    records.iter().map(|r| r.to_string() + "\n").collect()
}

#[tokio::test]
async fn three_tenants_in_one_input_each_land_in_their_own_tenant() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let rec = recorder(&sb).await;
    // The kit as it is, its pacing (one request every ~9 s) raised so the test stays quick.
    let (kit, flow) = quick_kit(&[]);
    let engine = engine(&[("kit.yaml", kit), ("flow.yaml", flow)]);
    let base = rec.through(&sb, &sb.kit_base_url(KIT).expect("kit"));
    let mut input = mixed_tenants(30, "Ada");
    // A user of tenant-b whose department is too long for its column fails alone.
    input[4]["department"] = json!("d".repeat(101));
    let out = kits_support::send_at(
        &engine,
        &base,
        QUICK,
        QUICK_FLOW,
        &ndjson(&input),
        SendOptions::default(),
    )
    .await;
    assert_eq!(count(&out, "created"), 29, "{out:?}");
    assert_eq!(out[4]["status"], "failed", "{:?}", out[4]);
    assert_eq!(out[4]["key"], "user-4");
    for (i, (o, u)) in out.iter().zip(&input).enumerate().filter(|(i, _)| *i != 4) {
        assert_eq!(o["key"], u["id"]);
        let stored = crm_user(&sb, &o["target_id"]);
        assert_eq!(
            stored["email"], u["email"],
            "outcome {i} names its own user"
        );
        assert_eq!(
            stored["tenantId"], u["tenant_id"],
            "user {i} in its own tenant"
        );
    }
    // None in another tenant: every stored user is its input's tenant's.
    let all = crm_users(&sb);
    assert_eq!(all.len(), 29);
    for s in &all {
        let u = input
            .iter()
            .find(|u| u["email"] == s["email"])
            .expect("a user of the input");
        assert_eq!(s["tenantId"], u["tenant_id"], "{s}");
    }
    // Every request holds one tenant's users only, header and body agreeing. (How many
    // requests depends on how the pipeline gathers batches: at least one per tenant.)
    let seen = rec.seen();
    assert!(seen.len() >= 3, "{}", seen.len());
    let mut sent = 0;
    for s in &seen {
        let tenant = s.body["tenant"]["id"].as_str().expect("tenant.id");
        assert!(
            s.headers
                .iter()
                .any(|(k, v)| k == "x-tenant-id" && v == tenant),
            "{:?}",
            s.headers
        );
        let expected_name = input
            .iter()
            .find(|u| u["tenant_id"] == tenant)
            .map(|u| u["tenant_name"].clone());
        assert_eq!(Some(s.body["tenant"]["name"].clone()), expected_name);
        let users = s.body["users"].as_array().expect("users");
        sent += users.len();
        assert!(users.iter().all(|u| u["tenantId"] == tenant), "{users:?}");
    }
    assert_eq!(sent, 30, "every user sent once");

    // Again, renamed: every user is updated in its own tenant, under the same CRM id.
    let again = kits_support::send_at(
        &engine,
        &base,
        QUICK,
        QUICK_FLOW,
        &ndjson(&mixed_tenants(30, "Grace")),
        SendOptions::default(),
    )
    .await;
    let statuses: Vec<&str> = again
        .iter()
        .map(|o| o["status"].as_str().unwrap_or(""))
        .collect();
    for (i, s) in statuses.iter().enumerate() {
        // User 4 was not written the first time: it is created now.
        let want = if i == 4 { "created" } else { "updated" };
        assert_eq!(*s, want, "user {i}: {:?}", again[i]);
    }
    for (i, (a, b)) in again.iter().zip(&out).enumerate().filter(|(i, _)| *i != 4) {
        assert_eq!(a["target_id"], b["target_id"], "user {i}");
    }
    let all = crm_users(&sb);
    assert_eq!(all.len(), 30);
    assert!(
        all.iter()
            .all(|u| u["name"].as_str().is_some_and(|n| n.starts_with("Grace")))
    );
}

#[tokio::test]
async fn a_tenant_larger_than_a_batch_is_cut_within_the_tenant() {
    let (kit, flow) = quick_kit(&[("max_batch: 100", "max_batch: 4")]);
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let rec = recorder(&sb).await;
    let engine = engine(&[("kit.yaml", kit), ("flow.yaml", flow)]);
    let base = rec.through(&sb, &sb.kit_base_url(KIT).expect("kit"));
    let input = mixed_tenants(18, "Ada");
    let out = kits_support::send_at(
        &engine,
        &base,
        QUICK,
        QUICK_FLOW,
        &ndjson(&input),
        SendOptions::default(),
    )
    .await;
    assert_eq!(count(&out, "created"), 18, "{out:?}");
    for (o, u) in out.iter().zip(&input) {
        let stored = crm_user(&sb, &o["target_id"]);
        assert_eq!(stored["email"], u["email"]);
        assert_eq!(stored["tenantId"], u["tenant_id"]);
    }
    // Six users per tenant in requests of up to four, one tenant each.
    let sizes: Vec<(String, usize)> = rec
        .seen()
        .iter()
        .map(|s| {
            let tenant = s.body["tenant"]["id"].as_str().unwrap_or("").to_string();
            let users = s.body["users"].as_array().map_or(0, Vec::len);
            assert!(
                s.body["users"]
                    .as_array()
                    .is_some_and(|us| us.iter().all(|u| u["tenantId"] == tenant.as_str()))
            );
            (tenant, users)
        })
        .collect();
    let mut per_tenant: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for (t, n) in sizes {
        per_tenant.entry(t).or_default().push(n);
    }
    assert_eq!(per_tenant.len(), 3);
    for (t, sizes) in &per_tenant {
        assert!(sizes.len() >= 2, "{t}: {sizes:?}");
        assert!(sizes.iter().all(|n| (1..=4).contains(n)), "{t}: {sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 6, "{t}: {sizes:?}");
    }
}
