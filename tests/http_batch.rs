//! Batch upserts: chunking, per-item results of a partial success, and isolating the bad items
//! of a batch refused as a whole.

mod http_support;

use http_support::{Reply, connector, kit, options, serve};
use rulebridge::connect::Call;
use rulebridge::connect::http::HttpConnector;
use rulebridge::connect::{Connector, ErrorKind, UpsertItem};
use serde_json::{Value, json};

fn payloads(keys: &[&str]) -> Vec<Value> {
    keys.iter()
        .map(|k| json!({"email": k, "firstname": "F"}))
        .collect()
}

fn items<'a>(keys: &'a [&'a str], payloads: &'a [Value]) -> Vec<UpsertItem<'a>> {
    keys.iter()
        .zip(payloads)
        .map(|(key, payload)| UpsertItem { key, payload })
        .collect()
}

const KEYS: [&str; 4] = ["a@x.com", "b@x.com", "c@x.com", "d@x.com"];

#[tokio::test]
async fn hubspot_partial_success_maps_results_and_errors_back() {
    let server = serve(|_, _| {
        Reply::json(207, json!({
            "status": "COMPLETE",
            // Out of order, and lower-cased: matched by the identity value, not by position.
            "results": [
                {"id": "103", "properties": {"email": "c@x.com"}, "new": false},
                {"id": "101", "properties": {"email": "a@x.com"}, "new": true}
            ],
            "numErrors": 2,
            "errors": [
                {"status": "error", "category": "VALIDATION_ERROR", "message": "Property values were not valid", "context": {"ids": ["B@X.com"]}},
                {"status": "error", "category": "CONFLICT", "message": "Contact already exists. Existing ID: 555", "context": {"index": ["3"]}}
            ]
        }))
    })
    .await;
    let c = HttpConnector::new(
        &kit("hubspot"),
        options(&server, &[("HUBSPOT_TOKEN", "pat")]),
    )
    .expect("build");
    assert_eq!(c.capabilities("contact").batch_upsert, Some(100));
    let p = payloads(&KEYS);
    let results = c
        .upsert_batch(&Call::default(), "contact", "email", &items(&KEYS, &p))
        .await;
    assert_eq!(results.len(), 4);
    let r0 = results[0].as_ref().map(|w| (w.id.clone(), w.created));
    assert_eq!(r0, Ok((Some("101".into()), Some(true))));
    let r2 = results[2].as_ref().map(|w| (w.id.clone(), w.created));
    assert_eq!(r2, Ok((Some("103".into()), Some(false))));
    let e1 = results[1].as_ref().expect_err("invalid");
    assert_eq!(
        (e1.kind, e1.message.as_str()),
        (ErrorKind::Validation, "Property values were not valid")
    );
    let e3 = results[3].as_ref().expect_err("conflict");
    assert_eq!(e3.kind, ErrorKind::Duplicate);
    assert_eq!(e3.existing_id.as_deref(), Some("555"));
    assert_eq!(server.seen().len(), 1);
}

const CRM: &str = r#"kind: provider
name: crm
base_url: http://placeholder.invalid
vars: [tenant_id]
retry: { attempts: 2, base: 10ms, max: 20ms }
objects:
  user:
    operations:
      batch_upsert:
        method: POST
        path: /users/sync
        headers: { X-Tenant-ID: "{{ tenant_id }}" }
        body: { tenant: "{{ tenant_id }}", first: "{{ first.email }}", users: "{{ payloads }}" }
        results: "$.results[*]"
        max_batch: 3
"#;

fn crm(server: &http_support::Server) -> HttpConnector {
    let mut opts = options(server, &[]);
    opts.vars.insert("tenant_id".into(), json!("t-1"));
    HttpConnector::new(&http_support::provider(CRM), opts).expect("build")
}

fn users(body: &Value) -> Vec<Value> {
    body["users"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn batches_are_chunked_and_matched_by_position() {
    let server = serve(|s, _| {
        let results: Vec<Value> = users(&s.body)
            .iter()
            .map(|u| json!({"id": format!("id-{}", u["email"].as_str().unwrap_or("?")), "created": true}))
            .collect();
        Reply::json(200, json!({"results": results}))
    })
    .await;
    let c = crm(&server);
    let keys = ["1", "2", "3", "4", "5", "6", "7"];
    let p = payloads(&keys);
    let results = c
        .upsert_batch(&Call::default(), "user", "email", &items(&keys, &p))
        .await;
    let ids: Vec<Option<String>> = results
        .iter()
        .map(|r| r.as_ref().ok().and_then(|w| w.id.clone()))
        .collect();
    let expected: Vec<Option<String>> = keys.iter().map(|k| Some(format!("id-{k}"))).collect();
    assert_eq!(ids, expected);
    let sizes: Vec<usize> = server.seen().iter().map(|s| users(&s.body).len()).collect();
    assert_eq!(sizes, vec![3, 3, 1]);
    let first = &server.seen()[1];
    assert_eq!(first.header("x-tenant-id"), Some("t-1"));
    assert_eq!(first.body["tenant"], json!("t-1"));
    assert_eq!(first.body["first"], json!("4"));
}

/// A successful answer is read only for the members results are matched by, but a result
/// that failed is classified from all of its members, as the kit's rules may read any.
#[tokio::test]
async fn a_failed_result_is_classified_from_all_its_members() {
    let server = serve(|_, _| {
        Reply::json(200, json!({
            "results": [
                {"id": "u-1", "status": "ok", "created": true, "profile": {"theme": "dark", "tags": [1, 2]}},
                {"userId": null, "status": "failed", "error": "email domain not allowed", "code": "DOMAIN_BLOCKED"},
                {"id": "u-3", "status": "ok", "created": false, "audit": [{"at": 1}]}
            ]
        }))
    })
    .await;
    let yaml = CRM.replace(
        "        max_batch: 3\n",
        "        max_batch: 3\nerrors:\n  - { contains: DOMAIN_BLOCKED, kind: validation, message: 'join([body.code, body.error], \": \")' }\n",
    );
    let mut opts = options(&server, &[]);
    opts.vars.insert("tenant_id".into(), json!("t-1"));
    let c = HttpConnector::new(&http_support::provider(&yaml), opts).expect("build");
    let keys = ["a@x.com", "b@x.com", "c@x.com"];
    let p = payloads(&keys);
    let results = c
        .upsert_batch(&Call::default(), "user", "email", &items(&keys, &p))
        .await;
    let written: Vec<_> = results
        .iter()
        .map(|r| r.as_ref().ok().map(|w| (w.id.clone(), w.created)))
        .collect();
    assert_eq!(
        written,
        [
            Some((Some("u-1".to_string()), Some(true))),
            None,
            Some((Some("u-3".to_string()), Some(false)))
        ]
    );
    let e = results[1].as_ref().expect_err("failed");
    assert_eq!(
        (e.kind, e.message.as_str()),
        (
            ErrorKind::Validation,
            "DOMAIN_BLOCKED: email domain not allowed"
        )
    );
}

#[tokio::test]
async fn a_batch_refused_as_a_whole_is_split_until_the_bad_items_are_alone() {
    let bad = |u: &Value| u["email"] == json!("3") || u["email"] == json!("6");
    let server = serve(move |s, _| {
        let batch = users(&s.body);
        if batch.iter().any(bad) {
            return Reply::json(400, json!({"error": "invalid user in batch"}));
        }
        let results: Vec<Value> = batch.iter().map(|u| json!({"id": u["email"]})).collect();
        Reply::json(200, json!({"results": results}))
    })
    .await;
    let yaml = CRM.replace("max_batch: 3", "max_batch: 8");
    let mut opts = options(&server, &[]);
    opts.vars.insert("tenant_id".into(), json!("t-1"));
    let c = HttpConnector::new(&http_support::provider(&yaml), opts).expect("build");
    let keys = ["1", "2", "3", "4", "5", "6", "7", "8"];
    let p = payloads(&keys);
    let results = c
        .upsert_batch(&Call::default(), "user", "email", &items(&keys, &p))
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
            Ok("1".into()),
            Ok("2".into()),
            Err(ErrorKind::Validation),
            Ok("4".into()),
            Ok("5".into()),
            Err(ErrorKind::Validation),
            Ok("7".into()),
            Ok("8".into()),
        ]
    );
    assert_eq!(
        results[2].as_ref().err().map(|e| e.message.as_str()),
        Some("invalid user in batch")
    );
    let sent: Vec<Vec<String>> = server
        .seen()
        .iter()
        .map(|s| {
            users(&s.body)
                .iter()
                .map(|u| u["email"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .collect();
    let halves: Vec<&str> = vec![
        "1 2 3 4 5 6 7 8",
        "1 2 3 4",
        "1 2",
        "3 4",
        "3",
        "4",
        "5 6 7 8",
        "5 6",
        "5",
        "6",
        "7 8",
    ];
    assert_eq!(sent.iter().map(|s| s.join(" ")).collect::<Vec<_>>(), halves);
}

#[tokio::test]
async fn a_refused_batch_naming_its_bad_items_resends_the_others_once() {
    let server = serve(|s, _| {
        let batch = users(&s.body);
        let bad: Vec<&Value> = batch.iter().filter(|u| u["email"] == json!("b@x.com")).collect();
        if !bad.is_empty() {
            return Reply::json(422, json!({"errors": [{"message": "email is invalid", "context": {"email": ["b@x.com"]}}]}));
        }
        let results: Vec<Value> = batch.iter().map(|u| json!({"id": u["email"]})).collect();
        Reply::json(200, json!({"results": results}))
    })
    .await;
    let c = crm(&server);
    let keys = ["a@x.com", "b@x.com", "c@x.com"];
    let p = payloads(&keys);
    let results = c
        .upsert_batch(&Call::default(), "user", "email", &items(&keys, &p))
        .await;
    assert!(results[0].is_ok() && results[2].is_ok());
    let e = results[1].as_ref().expect_err("invalid");
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::Validation, "email is invalid")
    );
    let sizes: Vec<usize> = server.seen().iter().map(|s| users(&s.body).len()).collect();
    assert_eq!(sizes, vec![3, 2]);
}

#[tokio::test]
async fn every_item_gets_exactly_one_result() {
    // A response that says nothing per item, then a provider that is down.
    let server = serve(|_, n| match n {
        0 => Reply::json(200, json!({"status": "ok"})),
        _ => Reply::json(503, json!({"message": "maintenance"})),
    })
    .await;
    let c = crm(&server);
    let keys = ["1", "2", "3"];
    let p = payloads(&keys);
    let results = c
        .upsert_batch(&Call::default(), "user", "email", &items(&keys, &p))
        .await;
    assert_eq!(results.len(), 3);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.kind == ErrorKind::Fatal))
    );
    let results = c
        .upsert_batch(&Call::default(), "user", "email", &items(&keys, &p))
        .await;
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| {
        r.as_ref()
            .is_err_and(|e| e.kind == ErrorKind::Transient && e.status == Some(503))
    }));
    assert!(
        c.upsert_batch(&Call::default(), "user", "email", &[])
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn salesforce_style_results_report_failed_items() {
    let server = serve(|_, _| {
        Reply::json(200, json!([
            {"id": "003A", "success": true, "errors": []},
            {"id": null, "success": false, "errors": [{"statusCode": "DUPLICATE_VALUE", "message": "duplicate value found: Email duplicates value on record with id: 003000000000XyZAAA", "fields": ["Email"]}]}
        ]))
    })
    .await;
    let yaml = r#"kind: provider
name: sf
base_url: http://placeholder.invalid
objects:
  lead:
    operations:
      batch_upsert:
        method: PATCH
        path: /composite/sobjects/Lead/Email
        item: { attributes: { type: Lead }, Email: "{{ key }}", LastName: "{{ payload.LastName }}" }
        body: { allOrNone: false, records: "{{ records }}" }
        max_batch: 200
errors:
  - { status: 400, contains: DUPLICATE_VALUE, kind: duplicate, existing_id: 'regex_capture(to_json(body), "id: ([A-Za-z0-9]{15,18})")' }
"#;
    let c = connector(yaml, &server, &[]);
    let keys = ["a@x.com", "b@x.com"];
    let p = vec![json!({"LastName": "A"}), json!({"LastName": "B"})];
    let results = c
        .upsert_batch(&Call::default(), "lead", "Email", &items(&keys, &p))
        .await;
    assert_eq!(
        results[0].as_ref().map(|w| w.id.clone()),
        Ok(Some("003A".into()))
    );
    let e = results[1].as_ref().expect_err("duplicate");
    assert_eq!(e.kind, ErrorKind::Duplicate);
    assert_eq!(e.existing_id.as_deref(), Some("003000000000XyZAAA"));
    assert_eq!(
        server.seen()[0].body["records"][1],
        json!({"attributes": {"type": "Lead"}, "Email": "b@x.com", "LastName": "B"})
    );
}
