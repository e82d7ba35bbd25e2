//! The Salesforce kit end to end against the sandbox: OAuth refresh and the token's
//! `instance_url`, leads created, skipped, updated or created anew, races, a collection with a
//! failed item, sessions expiring mid-run, the 24-hour API allowance running out, and faults.

mod kits_support;

use std::sync::Arc;
use std::time::Duration;

use kits_support::{
    Racing, assert_faults_happened, count, engine, kit_variant, one_by_one, others, post_json,
    recorder, records, send, send_via, shown, twenty_percent_faults,
};
use rulebridge::Engine;
use rulebridge::connect::http::{HttpConnector, HttpOptions};
use rulebridge::connect::{Call, Connector, ErrorKind, UpdateItem};
use rulebridge::secrets::Secret;
use rulebridge_sandbox::{self as sandbox, Faults, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const KIT: &str = "salesforce";
const FLOW: &str = "lead_to_salesforce";

fn leads(ids: std::ops::Range<usize>, name: &str) -> String {
    ids.map(|i| {
        json!({"email": format!("Lead{i}@Example.com"), "name": format!("{name} Lead{i}"), "company": "Acme", "score": 50})
            .to_string()
            + "\n"
    })
    .collect()
}

fn sf_leads(sb: &Sandbox) -> Vec<Value> {
    records(sb, "salesforce", "Lead")
}

fn lead(sb: &Sandbox, id: &Value) -> Value {
    sf_leads(sb)
        .into_iter()
        .find(|l| &l["Id"] == id)
        .expect("the outcome's lead")
}

fn variant(name: &str, on_match: &str) -> String {
    std::fs::read_to_string(format!("rules/flows/{FLOW}.yaml"))
        .expect("flow")
        .replace("name: lead_to_salesforce", &format!("name: {name}"))
        .replace("on_match: skip", &format!("on_match: {on_match}"))
}

/// A session from the sandbox's token endpoint, as another writer would have.
async fn session(sb: &Sandbox) -> (String, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let creds: std::collections::HashMap<&str, &str> =
        sandbox::CREDENTIALS.iter().copied().collect();
    let resp: Value = reqwest::Client::new()
        .post(sb.kit_token_url(KIT).expect("token url"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", creds["SALESFORCE_CLIENT_ID"]),
            ("client_secret", creds["SALESFORCE_CLIENT_SECRET"]),
            ("refresh_token", creds["SALESFORCE_REFRESH_TOKEN"]),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = resp["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (
        format!("Bearer {token}"),
        sb.kit_base_url(KIT).expect("kit"),
    )
}

#[tokio::test]
async fn creates_then_skips_updates_and_create_new_updates() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[
        ("update.yaml", variant("sf_update", "update")),
        ("new.yaml", variant("sf_new", "create_new")),
    ]);
    let first = send(
        &engine,
        &sb,
        KIT,
        KIT,
        FLOW,
        &leads(0..3, "Ada"),
        one_by_one(3),
    )
    .await;
    assert_eq!(count(&first, "created"), 3, "{first:?}");
    for (i, o) in first.iter().enumerate() {
        let l = lead(&sb, &o["target_id"]);
        assert_eq!(l["Email"], format!("lead{i}@example.com"));
        assert_eq!(l["LastName"], format!("Lead{i}"));
    }
    let skipped = send(
        &engine,
        &sb,
        KIT,
        KIT,
        FLOW,
        &leads(0..3, "Grace"),
        one_by_one(3),
    )
    .await;
    assert_eq!(count(&skipped, "skipped"), 3, "{skipped:?}");
    assert!(
        first
            .iter()
            .zip(&skipped)
            .all(|(a, b)| a["target_id"] == b["target_id"])
    );
    assert!(sf_leads(&sb).iter().all(|l| l["FirstName"] == "Ada"));
    let updated = send(
        &engine,
        &sb,
        KIT,
        KIT,
        "sf_update",
        &leads(0..3, "Grace"),
        one_by_one(3),
    )
    .await;
    assert_eq!(count(&updated, "updated"), 3, "{updated:?}");
    assert!(sf_leads(&sb).iter().all(|l| l["FirstName"] == "Grace"));
    // E-mail is unique in the sandbox org: create_new meets DUPLICATE_VALUE naming the lead.
    let again = send(
        &engine,
        &sb,
        KIT,
        KIT,
        "sf_new",
        &leads(0..3, "Hedy"),
        one_by_one(3),
    )
    .await;
    assert_eq!(count(&again, "updated"), 3, "{again:?}");
    assert!(
        first
            .iter()
            .zip(&again)
            .all(|(a, b)| a["target_id"] == b["target_id"])
    );
    assert_eq!(sf_leads(&sb).len(), 3);
    assert!(sf_leads(&sb).iter().all(|l| l["FirstName"] == "Hedy"));
}

#[tokio::test]
async fn data_calls_follow_the_tokens_instance_url() {
    // The kit as shipped (base URL on login.salesforce.com) with only its token endpoint on
    // the sandbox: every data call must go to the token response's instance_url.
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let token_url = sb.kit_token_url(KIT).expect("token url");
    let kit = kit_variant(
        KIT,
        "salesforce_login",
        &[(
            "token_url: https://login.salesforce.com/services/oauth2/token",
            &format!("token_url: {token_url}"),
        )],
    );
    let flow =
        variant("sf_login", "skip").replace("provider: salesforce", "provider: salesforce_login");
    let engine = engine(&[("kit.yaml", kit), ("flow.yaml", flow)]);
    let connector = Arc::new(
        engine
            .http_connector("salesforce_login", None)
            .expect("connector"),
    );
    let out = send_via(
        &engine,
        connector,
        "sf_login",
        &leads(0..2, "Ada"),
        one_by_one(1),
    )
    .await;
    assert_eq!(count(&out, "created"), 2, "{out:?}");
    assert_eq!(sf_leads(&sb).len(), 2);
}

#[tokio::test]
async fn a_lead_created_between_lookup_and_create_is_not_duplicated() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[("update.yaml", variant("sf_update", "update"))]);
    for (flow, expect) in [(FLOW, "skipped"), ("sf_update", "updated")] {
        sb.reset();
        let (auth, base) = session(&sb).await;
        let race = Box::pin(async move {
            post_json(
                &format!("{base}/sobjects/Lead"),
                &[("Authorization", auth.as_str())],
                &json!({"Email": "lead0@example.com", "LastName": "Theirs", "Company": "Them"}),
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
            flow,
            &leads(0..1, "Ours"),
            one_by_one(1),
        )
        .await;
        assert_eq!(out[0]["status"], expect, "{flow}: {out:?}");
        let all = sf_leads(&sb);
        assert_eq!(all.len(), 1, "{flow}: never a second lead");
        assert_eq!(out[0]["target_id"], all[0]["Id"]);
        let last = if expect == "updated" {
            "Lead0"
        } else {
            "Theirs"
        };
        assert_eq!(all[0]["LastName"], last);
    }
}

#[tokio::test]
async fn a_duplicate_rule_names_the_existing_lead() {
    let config = SandboxConfig {
        salesforce_duplicates: sandbox::SalesforceDuplicates::DuplicateRule,
        ..SandboxConfig::default()
    };
    let sb = sandbox::start(config).await.expect("sandbox");
    let engine = engine(&[("new.yaml", variant("sf_new", "create_new"))]);
    let first = send(
        &engine,
        &sb,
        KIT,
        KIT,
        FLOW,
        &leads(0..1, "Ada"),
        one_by_one(1),
    )
    .await;
    assert_eq!(first[0]["status"], "created", "{first:?}");
    let again = send(
        &engine,
        &sb,
        KIT,
        KIT,
        "sf_new",
        &leads(0..1, "Grace"),
        one_by_one(1),
    )
    .await;
    assert_eq!(again[0]["status"], "updated", "{again:?}");
    assert_eq!(again[0]["target_id"], first[0]["target_id"]);
    assert_eq!(sf_leads(&sb).len(), 1);
}

#[tokio::test]
async fn a_collection_with_a_bad_record_fails_that_record_only() {
    // The kit's batch_create (a collection, allOrNone: false), through the connector.
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let c = connector(&sb);
    let records = [
        json!({"LastName": "Hopper", "Company": "Navy", "Email": "grace@navy.mil"}),
        json!({"LastName": "NoCompany"}),
        json!({"LastName": "Lovelace", "Company": "Engines"}),
    ];
    let refs: Vec<&Value> = records.iter().collect();
    let out = c.create_batch(&Call::default(), "lead", &refs).await;
    assert!(out[0].is_ok() && out[2].is_ok(), "{out:?}");
    let e = out[1].as_ref().expect_err("no company");
    assert_eq!(e.kind, ErrorKind::Validation, "{e:?}");
    assert!(e.message.contains("Company"), "{e:?}");
    let all = sf_leads(&sb);
    assert_eq!(all.len(), 2);
    for r in [&out[0], &out[2]] {
        let id = r.as_ref().ok().and_then(|w| w.id.clone()).expect("an id");
        assert!(all.iter().any(|l| l["Id"] == id.as_str()));
    }
    // The same leads updated in one collection, the bad one's id unknown to the org.
    let items = [
        UpdateItem {
            id: out[0]
                .as_ref()
                .ok()
                .and_then(|w| w.id.as_deref())
                .unwrap_or_default(),
            payload: &json!({"Company": "US Navy"}),
        },
        UpdateItem {
            id: "00Q000000000000AAA",
            payload: &json!({"Company": "Nobody"}),
        },
    ];
    let updated = c.update_batch(&Call::default(), "lead", &items).await;
    assert!(updated[0].is_ok() && updated[1].is_err(), "{updated:?}");
    assert!(sf_leads(&sb).iter().any(|l| l["Company"] == "US Navy"));
}

fn connector(sb: &Sandbox) -> HttpConnector {
    let engine = engine(&[]);
    let doc = engine.plan().provider(KIT).expect("kit").clone();
    let options = HttpOptions {
        base_url: sb.kit_base_url(KIT),
        secrets: sandbox::CREDENTIALS
            .iter()
            .map(|(k, v)| (k.to_string(), Secret::new(v.to_string())))
            .collect(),
        read_env: false,
        ..HttpOptions::default()
    };
    HttpConnector::new(&doc, options).expect("connector")
}

#[tokio::test]
async fn sessions_expiring_mid_run_are_refreshed() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[]);
    let runner = engine.runner(FLOW).expect("flow");
    let connector = Arc::new(
        engine
            .http_connector(KIT, sb.kit_base_url(KIT).as_deref())
            .expect("connector"),
    );
    let sender = {
        let (run, send) = one_by_one(1).split();
        runner.send_through(connector, run, send)
    };
    for i in 0..4 {
        let o = sender
            .run_one(
                i,
                &json!({"email": format!("t{i}@x.io"), "name": "T", "company": "C"}),
            )
            .await;
        assert_eq!(o.status, rulebridge::Status::Created, "{o:?}");
        if i == 1 {
            assert!(sb.expire_tokens() > 0);
        }
    }
    assert_eq!(sf_leads(&sb).len(), 4);
    let tokens = sb.state().providers["salesforce"]
        .endpoints
        .iter()
        .filter(|(k, _)| k.contains("token"))
        .map(|(_, s)| s.requests)
        .sum::<u64>();
    assert_eq!(tokens, 2, "one refresh after the expiry");
}

#[tokio::test]
async fn a_spent_daily_allowance_fails_fast_without_retries() {
    // 6 API calls left for the day: 3 leads (a query and a create each) get through; the
    // others fail as rate_limited with one refused call each, and nothing waits.
    let config = SandboxConfig {
        salesforce_api_limit: 6,
        ..SandboxConfig::default()
    };
    let sb = sandbox::start(config).await.expect("sandbox");
    let engine = engine(&[]);
    let started = std::time::Instant::now();
    let out = send(
        &engine,
        &sb,
        KIT,
        KIT,
        FLOW,
        &leads(0..6, "Ada"),
        one_by_one(1),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5), "no retry waits");
    let statuses: Vec<&str> = out
        .iter()
        .map(|o| o["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        [
            "created", "created", "created", "failed", "failed", "failed"
        ],
        "{out:?}"
    );
    for o in &out[3..] {
        assert_eq!(o["error"]["kind"], "rate_limited", "{o}");
        assert!(
            o["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("TotalRequests Limit exceeded")),
            "{o}"
        );
    }
    let st = &sb.state().providers["salesforce"];
    assert_eq!(
        st.rate_limited, 3,
        "one refused call per failed lead: {st:?}"
    );
    assert_eq!(sf_leads(&sb).len(), 3);
}

#[tokio::test]
async fn faults_at_twenty_percent_lose_nothing() {
    // One record at a time: the same seed meets the same faults on every run.
    let faults = twenty_percent_faults();
    let sb = sandbox::start(SandboxConfig {
        seed: 9,
        faults,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    // The kit's backoff (1 s base) is shortened so the test stays quick.
    let kit = kit_variant(
        KIT,
        "salesforce_quick",
        &[("base: 1s, max: 30s", "base: 50ms, max: 300ms")],
    );
    let flow =
        variant("sf_quick", "skip").replace("provider: salesforce", "provider: salesforce_quick");
    let engine = engine(&[("kit.yaml", kit), ("flow.yaml", flow)]);
    let out = send(
        &engine,
        &sb,
        KIT,
        "salesforce_quick",
        "sf_quick",
        &leads(0..20, "F"),
        one_by_one(1),
    )
    .await;
    // A create whose result is unknown (a 5xx, a dropped connection) is looked up before it
    // is sent again: found, it was ours and is reported created, never skipped.
    assert_eq!(
        count(&out, "created"),
        20,
        "{:?}",
        others(&out, &["created"])
    );
    for (i, o) in out.iter().enumerate() {
        assert_eq!(
            lead(&sb, &o["target_id"])["Email"],
            format!("lead{i}@example.com")
        );
    }
    assert_eq!(sf_leads(&sb).len(), 20);
    assert_faults_happened(&sb, "salesforce");
}

#[tokio::test]
async fn request_bodies() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let rec = recorder(&sb).await;
    let engine = engine(&[("update.yaml", variant("sf_update", "update"))]);
    let base = rec.through(&sb, &sb.kit_base_url(KIT).expect("kit"));
    let input = "{\"email\":\"Linus@Example.org\",\"name\":\"Linus Torvalds\",\"company\":\"OSDL\",\"score\":85,\"source\":\"partner\",\"tags\":[\"kernel\"]}\n{\"email\":\"o'brien@example.com\",\"name\":\"Cher\"}\n";
    let out = kits_support::send_at(&engine, &base, KIT, FLOW, input, one_by_one(1)).await;
    assert_eq!(count(&out, "created"), 2, "{out:?}");
    let again = kits_support::send_at(
        &engine,
        &base,
        KIT,
        "sf_update",
        &input.replace("OSDL", "Linux Foundation"),
        one_by_one(1),
    )
    .await;
    assert_eq!(count(&again, "updated"), 2, "{again:?}");
    let mut shown = shown(&rec.seen(), "/salesforce/services/data/v58.0", &[]);
    // Record ids are random: keep their shape only.
    for s in &mut shown {
        if let Some(r) = s["request"].as_str().map(str::to_string) {
            s["request"] = json!(
                r.split("/sobjects/Lead/")
                    .next()
                    .map(|p| if r.contains("/sobjects/Lead/") {
                        format!("{p}/sobjects/Lead/[id]")
                    } else {
                        r.clone()
                    })
                    .unwrap_or(r)
            );
        }
    }
    insta::assert_yaml_snapshot!(shown);
}

/// Data requests the sandbox's Salesforce saw, by endpoint (token requests left out).
fn data_requests(sb: &Sandbox) -> std::collections::BTreeMap<String, u64> {
    sb.state().providers["salesforce"]
        .endpoints
        .iter()
        .filter(|(k, _)| !k.contains("token"))
        .map(|(k, s)| (k.clone(), s.requests))
        .collect()
}

fn total(m: &std::collections::BTreeMap<String, u64>) -> u64 {
    m.values().sum()
}

/// Statuses and the leads' e-mails and names, for comparing two runs.
fn summary(out: &[Value], sb: &Sandbox) -> (Vec<String>, Vec<(String, String)>) {
    let statuses = out
        .iter()
        .map(|o| o["status"].as_str().unwrap_or("").to_string())
        .collect();
    let mut leads: Vec<(String, String)> = sf_leads(sb)
        .iter()
        .map(|l| (l["Email"].to_string(), l["FirstName"].to_string()))
        .collect();
    leads.sort();
    (statuses, leads)
}

#[tokio::test]
async fn three_hundred_leads_take_two_requests_per_two_hundred() {
    // 50 leads exist already; 300 come in. Batched: one query and one collection per 200
    // leads. The outcomes are those of sending one by one (a query and a create each).
    let batched = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let single = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[("update.yaml", variant("sf_update", "update"))]);
    for sb in [&batched, &single] {
        let first = send(
            &engine,
            sb,
            KIT,
            KIT,
            FLOW,
            &leads(0..50, "Old"),
            one_by_one(4),
        )
        .await;
        assert_eq!(count(&first, "created"), 50);
    }
    let before = total(&data_requests(&batched));
    let input = leads(0..300, "New");
    let out = send(
        &engine,
        &batched,
        KIT,
        KIT,
        FLOW,
        &input,
        kits_support::SendOptions::default(),
    )
    .await;
    let requests = data_requests(&batched);
    assert_eq!(
        total(&requests) - before,
        4,
        "2 queries and 2 collections for 300 leads: {requests:?}"
    );
    assert_eq!(requests["POST /services/data/{v}/composite/sobjects"], 2);
    assert_eq!((count(&out, "skipped"), count(&out, "created")), (50, 250));
    let one_by_one_out = send(&engine, &single, KIT, KIT, FLOW, &input, one_by_one(8)).await;
    assert_eq!(summary(&out, &batched), summary(&one_by_one_out, &single));
    assert_eq!(sf_leads(&batched).len(), 300);
    for (i, o) in out.iter().enumerate() {
        assert_eq!(
            lead(&batched, &o["target_id"])["Email"],
            format!("lead{i}@example.com")
        );
    }

    // Updating all 300: two queries and two collection updates.
    let before = total(&data_requests(&batched));
    let out = send(
        &engine,
        &batched,
        KIT,
        KIT,
        "sf_update",
        &leads(0..300, "Newer"),
        kits_support::SendOptions::default(),
    )
    .await;
    assert_eq!(
        count(&out, "updated"),
        300,
        "{:?}",
        others(&out, &["updated"])
    );
    let requests = data_requests(&batched);
    assert_eq!(total(&requests) - before, 4, "{requests:?}");
    assert_eq!(requests["PATCH /services/data/{v}/composite/sobjects"], 2);
    assert!(sf_leads(&batched).iter().all(|l| l["FirstName"] == "Newer"));
}

#[tokio::test]
async fn responses_lost_after_processing_duplicate_nothing_and_lose_nothing() {
    // 20% of responses are lost after Salesforce saved the lead, and the org has no
    // duplicate rule to catch a repeated create: every lead must exist exactly once, and
    // every record be reported created (a lost create that landed was ours).
    // Seed 1 loses the answer of the batch's collection create (each of its leads is then
    // looked up); one by one, about a fifth of the creates lose theirs.
    for (seed, options, creates) in [
        (
            1,
            kits_support::SendOptions::default(),
            "POST /services/data/{v}/composite/sobjects",
        ),
        (12, one_by_one(4), "POST /services/data/{v}/sobjects/{obj}"),
    ] {
        let sb = sandbox::start(SandboxConfig {
            seed,
            faults: Faults {
                drop_after_rate: 0.2,
                ..Faults::default()
            },
            salesforce_duplicates: sandbox::SalesforceDuplicates::None,
            ..SandboxConfig::default()
        })
        .await
        .expect("sandbox");
        let kit = kit_variant(
            KIT,
            "salesforce_quick",
            &[("base: 1s, max: 30s", "base: 20ms, max: 200ms")],
        );
        let flow = variant("sf_quick", "skip")
            .replace("provider: salesforce", "provider: salesforce_quick");
        let engine = engine(&[("kit.yaml", kit), ("flow.yaml", flow)]);
        let n = 80;
        let out = send(
            &engine,
            &sb,
            KIT,
            "salesforce_quick",
            "sf_quick",
            &leads(0..n, "F"),
            options.clone(),
        )
        .await;
        assert_eq!(
            count(&out, "created"),
            n,
            "batch {}: {:?}",
            options.batch,
            others(&out, &["created"])
        );
        let all = sf_leads(&sb);
        let mut emails: Vec<String> = all.iter().map(|l| l["Email"].to_string()).collect();
        emails.sort();
        emails.dedup();
        assert_eq!((all.len(), emails.len()), (n, n), "no duplicate, none lost");
        for (i, o) in out.iter().enumerate() {
            assert_eq!(
                lead(&sb, &o["target_id"])["Email"],
                format!("lead{i}@example.com")
            );
        }
        let st = &sb.state().providers["salesforce"];
        assert!(
            st.endpoints.get(creates).is_some_and(|e| e.dropped > 0),
            "creates lost their answers: {:?}",
            st.endpoints
        );
    }
}

/// An engine builds a provider's connector once: later runs (a service's requests) reuse its
/// session and connections instead of asking the token endpoint again, and share its pacer.
#[tokio::test]
async fn runs_of_one_engine_share_the_providers_session() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let mut b = Engine::builder()
        .rules_dir("rules")
        .base_url(KIT, sb.kit_base_url(KIT).expect("kit"));
    for (k, v) in sandbox::CREDENTIALS {
        b = b.credential(*k, *v);
    }
    let engine = b.build().expect("rules compile");
    let first = engine.connector(KIT).expect("connector");
    assert!(Arc::ptr_eq(
        &first,
        &engine.connector(KIT).expect("connector")
    ));
    for run in 0..3 {
        let pipeline = kits_support::pipeline(
            &engine,
            engine.connector(KIT).expect("c"),
            FLOW,
            &one_by_one(2),
        );
        let out = kits_support::outcomes(&pipeline, &leads(run * 2..run * 2 + 2, "Ada")).await;
        assert_eq!(count(&out, "created"), 2, "{out:?}");
    }
    let tokens: u64 = sb.state().providers["salesforce"]
        .endpoints
        .iter()
        .filter(|(k, _)| k.contains("token"))
        .map(|(_, s)| s.requests)
        .sum();
    assert_eq!(tokens, 1, "one session for three runs");
}
