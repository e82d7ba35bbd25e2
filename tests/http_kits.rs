//! The provider kits in `rules/providers`: they build, and the requests they produce (method,
//! path, query, body) are snapshotted against a local server.

mod http_support;

use http_support::{Reply, Seen, kit, options, serve};
use rulebridge::connect::Call;
use rulebridge::connect::http::HttpConnector;
use rulebridge::connect::{Capabilities, Connector, UpdateItem, UpsertItem};
use serde_json::{Map, Value, json};

fn shown(seen: &[Seen]) -> Vec<Value> {
    seen.iter()
        .map(|s| {
            json!({
                "request": format!("{} {}", s.method, s.path),
                "query": s.query.as_deref().map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .map(|(k, v)| (k.into_owned(), Value::from(v.into_owned())))
                        .collect::<Map<String, Value>>()
                }),
                "body": s.body,
            })
        })
        .collect()
}

#[tokio::test]
async fn every_kit_builds() {
    let server = serve(|_, _| Reply::empty(200)).await;
    let secrets = [
        ("CHATWOOT_API_KEY", "x"),
        ("CHATWOOT_ACCOUNT_ID", "1"),
        ("HUBSPOT_TOKEN", "x"),
        ("JAMF_API_TOKEN", "x"),
        ("SALESFORCE_CLIENT_ID", "x"),
        ("SALESFORCE_CLIENT_SECRET", "x"),
        ("SALESFORCE_REFRESH_TOKEN", "x"),
        ("TASK_CRM_CLIENT_ID", "x"),
        ("TASK_CRM_CLIENT_SECRET", "x"),
        ("INTERNAL_API_KEY", "x"),
    ];
    for name in [
        "chatwoot",
        "hubspot",
        "jamf_bootstrap",
        "salesforce",
        "task_crm",
        "usersync_crm",
    ] {
        let mut opts = options(&server, &secrets);
        opts.vars.insert("tenant_id".into(), json!("t"));
        let built = HttpConnector::new(&kit(name), opts);
        assert!(built.is_ok(), "{name}: {:?}", built.err());
    }
    // A kit whose templates read a variable it does not declare does not compile, and says
    // which one.
    let kit_text = std::fs::read_to_string("rules/providers/usersync_crm.yaml").expect("kit");
    assert!(
        kit_text.contains("{{ group }}"),
        "the kit changed; update this test"
    );
    let text = kit_text.replace("{{ group }}", "{{ tenant_id }}");
    let errors = http_support::try_provider(&text).expect_err("tenant_id is not provided");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("RB1011") && e.contains("`tenant_id`")),
        "{errors:?}"
    );
    // Declared, it must be passed when the connector is built.
    let declared = text.replace(
        "headers:\n  X-Sync-Source",
        "vars: [tenant_id]\nheaders:\n  X-Sync-Source",
    );
    let e = HttpConnector::new(
        &http_support::provider(&declared),
        options(&server, &secrets),
    )
    .expect_err("needs tenant_id");
    assert!(e.message.contains("`tenant_id`"), "{e}");
}

#[tokio::test]
async fn hubspot_requests() {
    let server = serve(|s, _| match s.path.as_str() {
        "/crm/v3/objects/contacts/search" => Reply::json(200, json!({"total": 1, "results": [
            {"id": "512", "properties": {"email": "ada@example.com", "lastmodifieddate": "2024-01-02T03:04:05Z"}, "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-02T03:04:05Z", "archived": false}
        ]})),
        "/crm/v3/objects/contacts/batch/upsert" => Reply::json(200, json!({"status": "COMPLETE", "results": [
            {"id": "512", "properties": {"email": "ada@example.com"}, "new": false},
            {"id": "513", "properties": {"email": "grace@example.com"}, "new": true}
        ]})),
        _ => Reply::json(201, json!({"id": "512", "properties": {}})),
    })
    .await;
    let c = HttpConnector::new(
        &kit("hubspot"),
        options(&server, &[("HUBSPOT_TOKEN", "pat-na1-x")]),
    )
    .expect("build");
    assert_eq!(
        c.capabilities("contact"),
        Capabilities {
            search: true,
            create: true,
            update: true,
            batch_upsert: Some(100),
            batch_search: Some(100),
            ..Capabilities::default()
        }
    );
    let ada = json!({"email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace", "lifecyclestage": "lead"});
    let grace = json!({"email": "grace@example.com", "firstname": "Grace"});
    let found = c
        .search(&Call::default(), "contact", "email", "ada@example.com")
        .await
        .expect("search");
    assert_eq!(found[0].id, "512");
    assert_eq!(found[0].updated_at.as_deref(), Some("2024-01-02T03:04:05Z"));
    let w = c
        .create(&Call::default(), "contact", &ada)
        .await
        .expect("create");
    assert_eq!(w.id.as_deref(), Some("512"));
    c.update(&Call::default(), "contact", "512", &ada)
        .await
        .expect("update");
    let items = [
        UpsertItem {
            key: "ada@example.com",
            payload: &ada,
        },
        UpsertItem {
            key: "grace@example.com",
            payload: &grace,
        },
    ];
    let results = c
        .upsert_batch(&Call::default(), "contact", "email", &items)
        .await;
    assert_eq!(
        results
            .iter()
            .map(|r| r.as_ref().ok().map(|w| (w.id.clone(), w.created)))
            .collect::<Vec<_>>(),
        vec![
            Some((Some("512".into()), Some(false))),
            Some((Some("513".into()), Some(true)))
        ]
    );
    assert!(
        server
            .seen()
            .iter()
            .all(|s| s.header("authorization") == Some("Bearer pat-na1-x"))
    );
    insta::assert_yaml_snapshot!(shown(&server.seen()));
}

#[tokio::test]
async fn salesforce_requests() {
    let server = serve(|s, _| match s.path.as_str() {
        "/services/oauth2/token" => Reply::json(200, json!({"access_token": "00Dx!tok", "instance_url": "https://na1.example.com", "token_type": "Bearer", "issued_at": "1700000000000", "signature": "sig"})),
        "/services/data/v58.0/query" => Reply::json(200, json!({"totalSize": 1, "done": true, "records": [
            {"attributes": {"type": "Lead", "url": "/services/data/v58.0/sobjects/Lead/00Q1"}, "Id": "00Q1", "Email": "ada@example.com", "LastModifiedDate": "2024-01-02T03:04:05.000+0000"}
        ]})),
        "/services/data/v58.0/sobjects/Lead" => Reply::json(201, json!({"id": "00Q2", "errors": [], "success": true})),
        "/services/data/v58.0/composite/sobjects" if s.method == "PATCH" => Reply::json(200, json!([{"id": "00Q2", "success": true, "errors": []}])),
        "/services/data/v58.0/composite/sobjects" => Reply::json(200, json!([{"id": "00Q3", "success": true, "errors": []}])),
        _ => Reply::empty(204),
    })
    .await;
    let secrets = [
        ("SALESFORCE_CLIENT_ID", "cid"),
        ("SALESFORCE_CLIENT_SECRET", "csecret"),
        ("SALESFORCE_REFRESH_TOKEN", "rtoken"),
    ];
    let c = HttpConnector::new(&kit("salesforce"), options(&server, &secrets)).expect("build");
    assert_eq!(
        c.capabilities("lead"),
        Capabilities {
            search: true,
            create: true,
            update: true,
            batch_upsert: None,
            batch_search: Some(200),
            batch_create: Some(200),
            batch_update: Some(200),
            idempotent_create: false,
        }
    );
    let lead = json!({"Email": "ada@example.com", "LastName": "Lovelace", "Company": "Analytical Engines", "LeadSource": "Web"});
    let found = c
        .search(&Call::default(), "lead", "Email", "ada@example.com")
        .await
        .expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "00Q1");
    assert_eq!(
        found[0].updated_at.as_deref(),
        Some("2024-01-02T03:04:05.000+0000")
    );
    assert_eq!(
        found[0].fields,
        json!({"Id": "00Q1", "Email": "ada@example.com", "LastModifiedDate": "2024-01-02T03:04:05.000+0000"})
    );
    // Quotes in the key cannot end the SOQL string.
    assert!(
        c.search(&Call::default(), "lead", "Email", "o'brien@example.com")
            .await
            .is_ok()
    );
    assert_eq!(
        c.create(&Call::default(), "lead", &lead)
            .await
            .map(|w| w.id),
        Ok(Some("00Q2".into()))
    );
    assert_eq!(
        c.update(&Call::default(), "lead", "00Q2", &lead)
            .await
            .map(|w| w.id),
        Ok(Some("00Q2".into()))
    );
    // Many e-mails in one query, each quoted for SOQL; the lead found is Ada's.
    let found = c
        .search_many(
            &Call::default(),
            "lead",
            "Email",
            &["ada@example.com", "o'brien@example.com"],
        )
        .await
        .expect("batch search");
    assert_eq!(
        found
            .iter()
            .map(|(i, f)| (*i, f.id.as_str()))
            .collect::<Vec<_>>(),
        [(0, "00Q1")]
    );
    // The kit's batch_create and batch_update (Salesforce collections).
    let hopper = json!({"LastName": "Hopper", "Company": "Navy"});
    let created = c.create_batch(&Call::default(), "lead", &[&hopper]).await;
    assert_eq!(
        created[0].as_ref().map(|w| w.id.clone()),
        Ok(Some("00Q3".into()))
    );
    let updated = c
        .update_batch(
            &Call::default(),
            "lead",
            &[UpdateItem {
                id: "00Q2",
                payload: &lead,
            }],
        )
        .await;
    assert_eq!(
        updated[0].as_ref().map(|w| w.id.clone()),
        Ok(Some("00Q2".into()))
    );
    let seen = server.seen();
    let token = &seen[0];
    assert_eq!(token.form("grant_type").as_deref(), Some("refresh_token"));
    assert!(
        seen[1..]
            .iter()
            .all(|s| s.header("authorization") == Some("Bearer 00Dx!tok"))
    );
    insta::assert_yaml_snapshot!(shown(&seen[1..]));
}
