//! The Chatwoot kit end to end against the sandbox: contacts created, merged into an existing
//! contact found by e-mail or identifier, updated, skipped or created anew; races, phone
//! clashes, invalid values, 429s and faults.
//!
//! Chatwoot has no batch API and no token refresh (a static API key): those cases do not
//! apply to this kit.

mod kits_support;

use kits_support::{
    Racing, assert_faults_happened, count, engine, others, post_json, recorder, records, send,
    send_via, shown, twenty_percent_faults,
};
use rulebridge_sandbox::{self as sandbox, Faults, Sandbox, SandboxConfig};
use serde_json::{Value, json};
use std::sync::Arc;

const KIT: &str = "chatwoot";
const FLOW: &str = "contact_to_chatwoot";

fn user(i: usize) -> Value {
    json!({
        "user_id": i, "email": format!("User{i}@Example.com"), "first_name": "User", "last_name": format!("{i}"),
        "phone": format!("(415) 555-{:04}", 100 + i), "plan": "pro", "created_at": "2024-01-10T08:15:00Z",
        "company": "Boxworks", "address": {"city": "Oslo"},
    })
}

fn ndjson(records: &[Value]) -> String {
    records.iter().map(|r| r.to_string() + "\n").collect()
}

/// The contacts URL of account 1 (the sandbox's `CHATWOOT_ACCOUNT_ID`).
fn contacts_url(sb: &Sandbox) -> String {
    format!("{}/accounts/1/contacts", sb.kit_base_url(KIT).expect("kit"))
}

fn contacts(sb: &Sandbox) -> Vec<Value> {
    records(sb, "chatwoot", "account_1_contacts")
}

fn contact(sb: &Sandbox, id: &Value) -> Value {
    let id = id
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .expect("numeric id");
    contacts(sb)
        .into_iter()
        .find(|c| c["id"] == id)
        .expect("the outcome's contact")
}

/// Another writer's contact, created directly.
async fn theirs(sb: &Sandbox, body: Value) -> Value {
    let url = contacts_url(sb);
    post_json(
        &url,
        &[("api_access_token", "sandbox-chatwoot-token")],
        &body,
    )
    .await
}

/// The contact flow with another duplicate rule.
fn variant(name: &str, on_match: &str) -> String {
    std::fs::read_to_string(format!("rules/flows/{FLOW}.yaml"))
        .expect("flow")
        .replace("name: contact_to_chatwoot", &format!("name: {name}"))
        .replace("on_match: merge", &format!("on_match: {on_match}"))
}

#[tokio::test]
async fn creates_contacts_with_e164_phones() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[]);
    let out = send(
        &engine,
        &sb,
        KIT,
        KIT,
        FLOW,
        &ndjson(&[user(1), user(2)]),
        kits_support::one_by_one(2),
    )
    .await;
    assert_eq!(count(&out, "created"), 2, "{out:?}");
    let c = contact(&sb, &out[0]["target_id"]);
    assert_eq!(c["email"], "user1@example.com");
    assert_eq!(c["phone_number"], "+14155550101");
    assert_eq!(c["identifier"], "user-1");
    assert_eq!(c["custom_attributes"]["plan"], "pro");
    assert_eq!(contacts(&sb).len(), 2);
}

#[tokio::test]
async fn merges_into_the_contact_with_that_email_or_identifier() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let by_email = theirs(
        &sb,
        json!({"name": "Their Name", "email": "user1@example.com"}),
    )
    .await;
    // User 2 changed their e-mail on the platform: found by the identifier.
    let by_identifier = theirs(
        &sb,
        json!({"email": "old2@example.com", "identifier": "user-2", "name": "Two"}),
    )
    .await;
    let engine = engine(&[]);
    let out = send(
        &engine,
        &sb,
        KIT,
        KIT,
        FLOW,
        &ndjson(&[user(1), user(2), user(3)]),
        kits_support::one_by_one(1),
    )
    .await;
    let statuses: Vec<&str> = out
        .iter()
        .map(|o| o["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["updated", "updated", "created"], "{out:?}");
    assert_eq!(
        out[0]["target_id"],
        by_email["payload"]["contact"]["id"].to_string().as_str()
    );
    assert_eq!(
        out[1]["target_id"],
        by_identifier["payload"]["contact"]["id"]
            .to_string()
            .as_str()
    );
    let one = contact(&sb, &out[0]["target_id"]);
    assert_eq!(one["name"], "Their Name", "merge keeps what is there");
    assert_eq!(one["phone_number"], "+14155550101", "and fills the blanks");
    let two = contact(&sb, &out[1]["target_id"]);
    assert_eq!(two["email"], "old2@example.com");
    assert_eq!(two["phone_number"], "+14155550102");
    assert_eq!(contacts(&sb).len(), 3);

    // Nothing left to fill: skipped, with the contact's id.
    let again = send(
        &engine,
        &sb,
        KIT,
        KIT,
        FLOW,
        &ndjson(&[user(3)]),
        kits_support::one_by_one(1),
    )
    .await;
    assert_eq!(again[0]["status"], "skipped", "{again:?}");
    assert_eq!(again[0]["target_id"], out[2]["target_id"]);
}

#[tokio::test]
async fn update_skip_and_create_new() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[
        ("update.yaml", variant("cw_update", "update")),
        ("skip.yaml", variant("cw_skip", "skip")),
        ("create_new.yaml", variant("cw_create_new", "create_new")),
    ]);
    let created = send(
        &engine,
        &sb,
        KIT,
        KIT,
        "cw_update",
        &ndjson(&[user(1)]),
        kits_support::one_by_one(1),
    )
    .await;
    assert_eq!(created[0]["status"], "created", "{created:?}");
    let mut renamed = user(1);
    renamed["display_name"] = json!("Renamed");
    let skipped = send(
        &engine,
        &sb,
        KIT,
        KIT,
        "cw_skip",
        &ndjson(&[renamed.clone()]),
        kits_support::one_by_one(1),
    )
    .await;
    assert_eq!(skipped[0]["status"], "skipped");
    assert_eq!(skipped[0]["target_id"], created[0]["target_id"]);
    assert_eq!(contact(&sb, &created[0]["target_id"])["name"], "User 1");
    let updated = send(
        &engine,
        &sb,
        KIT,
        KIT,
        "cw_update",
        &ndjson(&[renamed.clone()]),
        kits_support::one_by_one(1),
    )
    .await;
    assert_eq!(updated[0]["status"], "updated");
    assert_eq!(contact(&sb, &created[0]["target_id"])["name"], "Renamed");
    // Chatwoot keeps e-mails unique: create_new meets 422 and updates that contact.
    renamed["display_name"] = json!("Renamed again");
    let again = send(
        &engine,
        &sb,
        KIT,
        KIT,
        "cw_create_new",
        &ndjson(&[renamed]),
        kits_support::one_by_one(1),
    )
    .await;
    assert_eq!(again[0]["status"], "updated", "{again:?}");
    assert_eq!(again[0]["target_id"], created[0]["target_id"]);
    assert_eq!(contacts(&sb).len(), 1);
}

#[tokio::test]
async fn a_contact_created_between_lookup_and_create_is_merged_into() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[]);
    let url = contacts_url(&sb);
    let race = Box::pin(async move {
        post_json(
            &url,
            &[("api_access_token", "sandbox-chatwoot-token")],
            &json!({"name": "Quick", "email": "user1@example.com"}),
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
        FLOW,
        &ndjson(&[user(1)]),
        kits_support::one_by_one(1),
    )
    .await;
    assert_eq!(out[0]["status"], "updated", "{out:?}");
    let all = contacts(&sb);
    assert_eq!(all.len(), 1, "never a second contact");
    assert_eq!(
        all[0]["name"], "Quick",
        "merged: the other writer's name stays"
    );
    assert_eq!(all[0]["phone_number"], "+14155550101");
}

#[tokio::test]
async fn phone_clashes_and_invalid_values_fail_as_validation() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    // Someone else (another person, same office line) owns user 1's phone number.
    theirs(&sb, json!({"name": "Colleague", "email": "colleague@example.com", "phone_number": "+14155550101"})).await;
    let engine = engine(&[]);
    let mut bad_email = user(2);
    bad_email["email"] = json!("two@example");
    let out = send(
        &engine,
        &sb,
        KIT,
        KIT,
        FLOW,
        &ndjson(&[user(1), bad_email]),
        kits_support::one_by_one(1),
    )
    .await;
    assert_eq!(out[0]["status"], "failed", "{out:?}");
    assert_eq!(out[0]["error"]["kind"], "validation");
    assert!(
        out[0]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Phone number has already been taken")),
        "{out:?}"
    );
    assert_eq!(out[1]["status"], "failed", "{out:?}");
    let all = contacts(&sb);
    assert_eq!(all.len(), 1, "only the colleague");
    assert_eq!(all[0]["name"], "Colleague");
}

#[tokio::test]
async fn faults_at_twenty_percent_lose_nothing() {
    // One record at a time: the same seed meets the same faults on every run.
    let faults = twenty_percent_faults();
    let config = SandboxConfig {
        seed: 3,
        faults,
        ..SandboxConfig::default()
    };
    let sb = sandbox::start(config).await.expect("sandbox");
    let kit = kits_support::kit_variant(
        KIT,
        "chatwoot_quick",
        &[("base: 500ms, max: 20s", "base: 50ms, max: 300ms")],
    );
    let flow =
        variant("cw_quick", "merge").replace("provider: chatwoot", "provider: chatwoot_quick");
    let engine = engine(&[("kit.yaml", kit), ("flow.yaml", flow)]);
    let input: Vec<Value> = (0..20).map(user).collect();
    let out = send(
        &engine,
        &sb,
        KIT,
        "chatwoot_quick",
        "cw_quick",
        &ndjson(&input),
        kits_support::one_by_one(1),
    )
    .await;
    // A create whose result is unknown (a 5xx, a dropped connection) is looked up before it
    // is sent again: found, it was ours and is reported created.
    assert_eq!(
        count(&out, "created"),
        20,
        "{:?}",
        others(&out, &["created"])
    );
    for (i, o) in out.iter().enumerate() {
        assert_eq!(
            contact(&sb, &o["target_id"])["email"],
            format!("user{i}@example.com")
        );
    }
    assert_eq!(contacts(&sb).len(), 20);
    assert_faults_happened(&sb, "chatwoot");
}

#[tokio::test]
async fn a_429_storm_past_the_retries_fails_records_as_rate_limited() {
    // Chatwoot throttles every request per client address (3000 a minute); at 6 a minute the
    // window cannot recover within the retries: the records that cannot be looked up fail as
    // rate_limited, and none is written without its lookup.
    let faults = Faults {
        rate_limit_factor: 0.002,
        ..Faults::default()
    };
    let sb = sandbox::start(SandboxConfig {
        faults,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    // The kit's own budget (8 attempts, waits up to 20 s, Retry-After honoured) outlasts a
    // one-minute window; two attempts show what happens when the storm outlasts the retries.
    let kit = kits_support::kit_variant(KIT, "chatwoot_storm", &[("attempts: 8", "attempts: 2")]);
    let flow =
        variant("cw_storm", "merge").replace("provider: chatwoot", "provider: chatwoot_storm");
    let engine = engine(&[("kit.yaml", kit), ("flow.yaml", flow)]);
    // Two lookups and a create per new contact: two contacts fit in the window, the third
    // does not.
    let input: Vec<Value> = (0..3).map(user).collect();
    let out = send(
        &engine,
        &sb,
        KIT,
        "chatwoot_storm",
        "cw_storm",
        &ndjson(&input),
        kits_support::one_by_one(1),
    )
    .await;
    let statuses: Vec<&str> = out
        .iter()
        .map(|o| o["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["created", "created", "failed"], "{out:?}");
    assert_eq!(out[2]["error"]["kind"], "rate_limited", "{out:?}");
    let cw = &sb.state().providers["chatwoot"];
    assert!(cw.rate_limited > 1, "retried, then gave up: {cw:?}");
    assert!(
        cw.endpoints.keys().all(|e| !e.contains("/contacts/search")),
        "the kit never uses the throttled text search: {:?}",
        cw.endpoints.keys()
    );
    assert_eq!(contacts(&sb).len(), 2);
}

#[tokio::test]
async fn three_hundred_contacts_go_through_at_the_address_limit() {
    // Only the limit per client address (3000 a minute) paces the lookups and writes: 900
    // requests take about 19 s. Pacing the lookups at the text search's 100 a minute would
    // take six minutes.
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[]);
    let input: Vec<Value> = (0..300).map(user).collect();
    let started = std::time::Instant::now();
    let out = send(
        &engine,
        &sb,
        KIT,
        KIT,
        FLOW,
        &ndjson(&input),
        kits_support::SendOptions::default(),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(
        count(&out, "created"),
        300,
        "{:?}",
        others(&out, &["created"])
    );
    assert_eq!(contacts(&sb).len(), 300);
    assert_eq!(sb.state().providers["chatwoot"].rate_limited, 0);
    assert!(
        took < std::time::Duration::from_secs(60),
        "300 contacts took {took:?}"
    );
}

#[tokio::test]
async fn the_account_is_configuration() {
    // Another installation's account: every path names it, and the contacts land there.
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let mut b = rulebridge::Engine::builder().rules_dir("rules");
    for (k, v) in sandbox::CREDENTIALS {
        if *k != "CHATWOOT_ACCOUNT_ID" {
            b = b.credential(*k, *v);
        }
    }
    let engine = b
        .credential("CHATWOOT_ACCOUNT_ID", "7")
        .build()
        .expect("rules");
    let out = send(
        &engine,
        &sb,
        KIT,
        KIT,
        FLOW,
        &ndjson(&[user(1)]),
        kits_support::one_by_one(1),
    )
    .await;
    assert_eq!(out[0]["status"], "created", "{out:?}");
    assert_eq!(records(&sb, "chatwoot", "account_7_contacts").len(), 1);
    assert!(contacts(&sb).is_empty(), "nothing in account 1");

    // Without it the connector cannot be built, and says what is missing.
    if std::env::var_os("CHATWOOT_ACCOUNT_ID").is_none() {
        let mut b = rulebridge::Engine::builder().rules_dir("rules");
        for (k, v) in sandbox::CREDENTIALS {
            if *k != "CHATWOOT_ACCOUNT_ID" {
                b = b.credential(*k, *v);
            }
        }
        let e = b
            .build()
            .expect("rules")
            .http_connector(KIT, None)
            .expect_err("no account");
        assert!(e.to_string().contains("CHATWOOT_ACCOUNT_ID"), "{e}");
    }
}

#[tokio::test]
async fn request_bodies() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    theirs(
        &sb,
        json!({"name": "Their Name", "email": "user1@example.com"}),
    )
    .await;
    let rec = recorder(&sb).await;
    let engine = engine(&[]);
    let base = rec.through(&sb, &sb.kit_base_url(KIT).expect("kit"));
    let out = kits_support::send_at(
        &engine,
        &base,
        KIT,
        FLOW,
        &ndjson(&[user(1), user(2)]),
        kits_support::one_by_one(1),
    )
    .await;
    assert_eq!(
        count(&out, "updated") + count(&out, "created"),
        2,
        "{out:?}"
    );
    insta::assert_yaml_snapshot!(shown(&rec.seen(), "/chatwoot/api/v1", &[]));
}

#[tokio::test]
async fn responses_lost_after_processing_duplicate_nothing_and_lose_nothing() {
    // 20% of responses are lost after Chatwoot stored the contact, and the account does not
    // refuse a second contact with the same e-mail: every user must exist exactly once, and
    // be reported created (a lost create that landed was ours).
    let config = SandboxConfig {
        seed: 5,
        faults: Faults {
            drop_after_rate: 0.2,
            ..Faults::default()
        },
        chatwoot_unique_contacts: false,
        ..SandboxConfig::default()
    };
    let sb = sandbox::start(config).await.expect("sandbox");
    let kit = kits_support::kit_variant(
        KIT,
        "chatwoot_quick",
        &[
            ("rate_limit: 50 per 1s", "rate_limit: 6000 per 1m"),
            ("base: 500ms, max: 20s", "base: 20ms, max: 200ms"),
        ],
    );
    let flow =
        variant("cw_quick", "merge").replace("provider: chatwoot", "provider: chatwoot_quick");
    let engine = engine(&[("kit.yaml", kit), ("flow.yaml", flow)]);
    let n = 60;
    let input: Vec<Value> = (0..n).map(user).collect();
    let out = send(
        &engine,
        &sb,
        KIT,
        "chatwoot_quick",
        "cw_quick",
        &ndjson(&input),
        kits_support::one_by_one(4),
    )
    .await;
    assert_eq!(
        count(&out, "created"),
        n,
        "{:?}",
        others(&out, &["created"])
    );
    let all = contacts(&sb);
    let mut emails: Vec<String> = all.iter().map(|c| c["email"].to_string()).collect();
    emails.sort();
    emails.dedup();
    assert_eq!((all.len(), emails.len()), (n, n), "no duplicate, none lost");
    for (i, o) in out.iter().enumerate() {
        assert_eq!(
            contact(&sb, &o["target_id"])["email"],
            format!("user{i}@example.com")
        );
    }
    let st = &sb.state().providers["chatwoot"];
    assert!(
        st.endpoints
            .get("POST /api/v1/accounts/{account}/contacts")
            .is_some_and(|e| e.dropped > 0),
        "creates lost their answers: {:?}",
        st.endpoints
    );
    // The account really takes a second contact with a known e-mail: only the engine kept
    // the run free of duplicates.
    sb.set_faults(Faults::none());
    let again = theirs(&sb, json!({"name": "Twin", "email": "user0@example.com"})).await;
    assert!(again["payload"]["contact"]["id"].is_number(), "{again}");
}
