//! `batch: { group_by: ... }`: one batch call's items go out in one request per group, each
//! request's templates read the group's value, and every item's result maps back to it.

mod http_support;

use http_support::{Reply, options, serve};
use rulebridge::connect::http::HttpConnector;
use rulebridge::connect::{Call, Connector, ErrorKind, UpsertItem};
use serde_json::{Value, json};

const CRM: &str = r#"
kind: provider
name: crm
base_url: https://crm.example.com
objects:
  user:
    fields:
      email: { type: email, required: true }
      tenant: { type: string, required: true }
      seats: number
    operations:
      batch_upsert:
        method: POST
        path: /sync
        batch: { group_by: tenant }
        headers: { X-Tenant: "{{ group }}" }
        body: { tenant: "{{ group }}", users: "{{ payloads }}" }
        results: "$.results[*]"
        max_batch: 3
"#;

fn users(body: &Value) -> Vec<Value> {
    body["users"].as_array().cloned().unwrap_or_default()
}

/// Answers every user with an id naming its e-mail and the request's tenant, in order.
async fn crm() -> (http_support::Server, HttpConnector) {
    let server = serve(|s, _| {
        let tenant = s.body["tenant"].as_str().unwrap_or("?").to_string();
        let results: Vec<Value> = users(&s.body)
            .iter()
            .map(|u| json!({"id": format!("{tenant}/{}", u["email"].as_str().unwrap_or("?")), "created": true}))
            .collect();
        Reply::json(200, json!({"results": results}))
    })
    .await;
    let c = HttpConnector::new(&http_support::provider(CRM), options(&server, &[])).expect("build");
    (server, c)
}

fn send_items(payloads: &[Value]) -> Vec<(String, &Value)> {
    payloads
        .iter()
        .map(|p| (p["email"].as_str().unwrap_or("").to_string(), p))
        .collect()
}

#[tokio::test]
async fn one_request_per_group_and_results_in_input_order() {
    let (server, c) = crm().await;
    let tenants = ["t-a", "t-b", "t-c", "t-b", "t-a", "t-b", "t-b", "t-c"];
    let payloads: Vec<Value> = tenants
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"email": format!("u{i}@x.io"), "tenant": t}))
        .collect();
    let keyed = send_items(&payloads);
    let items: Vec<UpsertItem<'_>> = keyed
        .iter()
        .map(|(key, payload)| UpsertItem { key, payload })
        .collect();
    let results = c
        .upsert_batch(&Call::default(), "user", "email", &items)
        .await;
    let ids: Vec<String> = results
        .iter()
        .map(|r| {
            r.as_ref()
                .ok()
                .and_then(|w| w.id.clone())
                .unwrap_or_default()
        })
        .collect();
    let expected: Vec<String> = tenants
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{t}/u{i}@x.io"))
        .collect();
    assert_eq!(
        ids, expected,
        "each result is its own item's, in its tenant"
    );
    // Groups in the order they first appear; t-b's four users cut at max_batch 3.
    let sent: Vec<(String, String, Vec<String>)> = server
        .seen()
        .iter()
        .map(|s| {
            (
                s.header("x-tenant").unwrap_or("").to_string(),
                s.body["tenant"].as_str().unwrap_or("").to_string(),
                users(&s.body)
                    .iter()
                    .map(|u| u["email"].as_str().unwrap_or("").to_string())
                    .collect(),
            )
        })
        .collect();
    let want = |t: &str, us: &[usize]| {
        (
            t.to_string(),
            t.to_string(),
            us.iter().map(|i| format!("u{i}@x.io")).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        sent,
        vec![
            want("t-a", &[0, 4]),
            want("t-b", &[1, 3, 5]),
            want("t-b", &[6]),
            want("t-c", &[2, 7]),
        ]
    );
}

#[tokio::test]
async fn a_refused_group_is_split_within_the_group() {
    // The server refuses any request holding the bad user as a whole (400, no item named).
    let server = serve(|s, _| {
        let batch = users(&s.body);
        if batch.iter().any(|u| u["email"] == "bad@x.io") {
            return Reply::json(400, json!({"error": "invalid user"}));
        }
        let tenant = s.body["tenant"].as_str().unwrap_or("?").to_string();
        let results: Vec<Value> = batch
            .iter()
            .map(|u| json!({"id": format!("{tenant}/{}", u["email"].as_str().unwrap_or("?"))}))
            .collect();
        Reply::json(200, json!({"results": results}))
    })
    .await;
    let c = HttpConnector::new(&http_support::provider(CRM), options(&server, &[])).expect("build");
    let payloads = vec![
        json!({"email": "a@x.io", "tenant": "t-a"}),
        json!({"email": "bad@x.io", "tenant": "t-b"}),
        json!({"email": "b@x.io", "tenant": "t-b"}),
        json!({"email": "c@x.io", "tenant": "t-a"}),
    ];
    let keyed = send_items(&payloads);
    let items: Vec<UpsertItem<'_>> = keyed
        .iter()
        .map(|(key, payload)| UpsertItem { key, payload })
        .collect();
    let results = c
        .upsert_batch(&Call::default(), "user", "email", &items)
        .await;
    let outcome: Vec<Result<String, ErrorKind>> = results
        .iter()
        .map(|r| match r {
            Ok(w) => Ok(w.id.clone().unwrap_or_default()),
            Err(e) => Err(e.kind),
        })
        .collect();
    assert_eq!(
        outcome,
        vec![
            Ok("t-a/a@x.io".into()),
            Err(ErrorKind::Validation),
            Ok("t-b/b@x.io".into()),
            Ok("t-a/c@x.io".into()),
        ]
    );
    // Every request, the halves too, holds one tenant.
    for s in server.seen() {
        let tenant = s.body["tenant"].clone();
        assert!(
            users(&s.body).iter().all(|u| u["tenant"] == tenant),
            "{:?}",
            s.body
        );
        assert_eq!(s.header("x-tenant"), tenant.as_str());
    }
}

#[tokio::test]
async fn an_item_whose_group_cannot_be_computed_fails_alone() {
    let yaml = CRM.replace(
        "group_by: tenant",
        "group_by: 'to_string(to_number(seats))'",
    );
    let server = serve(|s, _| {
        let results: Vec<Value> = users(&s.body)
            .iter()
            .map(|u| json!({"id": u["email"]}))
            .collect();
        Reply::json(200, json!({"results": results}))
    })
    .await;
    let c =
        HttpConnector::new(&http_support::provider(&yaml), options(&server, &[])).expect("build");
    let payloads = vec![
        json!({"email": "a@x.io", "tenant": "t", "seats": 5}),
        json!({"email": "b@x.io", "tenant": "t", "seats": "many"}),
        json!({"email": "c@x.io", "tenant": "t", "seats": 5}),
    ];
    let keyed = send_items(&payloads);
    let items: Vec<UpsertItem<'_>> = keyed
        .iter()
        .map(|(key, payload)| UpsertItem { key, payload })
        .collect();
    let results = c
        .upsert_batch(&Call::default(), "user", "email", &items)
        .await;
    assert_eq!(
        results[0]
            .as_ref()
            .ok()
            .and_then(|w| w.id.clone())
            .as_deref(),
        Some("a@x.io")
    );
    assert_eq!(
        results[2]
            .as_ref()
            .ok()
            .and_then(|w| w.id.clone())
            .as_deref(),
        Some("c@x.io")
    );
    let e = results[1].as_ref().expect_err("b's group fails");
    assert_eq!(e.kind, ErrorKind::Validation);
    assert!(e.message.contains("batch.group_by"), "{}", e.message);
    assert_eq!(server.seen().len(), 1);
    assert_eq!(server.seen()[0].body["tenant"], "5");
}

#[test]
fn group_by_is_checked_against_the_object() {
    // A field the object does not declare.
    let errors = http_support::try_provider(&CRM.replace("group_by: tenant", "group_by: tenent"))
        .expect_err("unknown field");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("RB1007") && e.contains("tenent")),
        "{errors:?}"
    );
    // `group` without `group_by`.
    let errors =
        http_support::try_provider(&CRM.replace("        batch: { group_by: tenant }\n", ""))
            .expect_err("no group");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("RB1011") && e.contains("`group`")),
        "{errors:?}"
    );
}
