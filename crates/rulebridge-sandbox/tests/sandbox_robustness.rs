//! Malformed input never crashes a fake: every write endpoint answers garbage with a 4xx in
//! the vendor's own shape, and the server keeps serving.

use reqwest::{Client, Method};
use rulebridge_sandbox::{self as sandbox, SandboxConfig};
use serde_json::{Value, json};

const BODIES: &[&str] = &[
    "",
    "{",
    "[]",
    "null",
    "42",
    "\"text\"",
    "{\"properties\": 5}",
    "{\"properties\": {\"email\": {\"a\": [1]}, \"firstname\": [1, 2]}}",
    "{\"properties\": {\"form_submitted_at\": \"99999999999999999999\", \"email\": \"a@b.co\"}}",
    "{\"inputs\": 5}",
    "{\"inputs\": [5, null, \"x\", {\"id\": {}, \"idProperty\": 7, \"properties\": []}]}",
    "{\"filterGroups\": [{\"filters\": [5, {\"propertyName\": 1}]}], \"limit\": -1, \"after\": {}}",
    "{\"filterGroups\": 3, \"sorts\": [5]}",
    "{\"records\": [5, {\"attributes\": 3}, {\"attributes\": {\"type\": 9}}]}",
    "{\"allOrNone\": \"yes\", \"records\": {}}",
    "{\"LastName\": {\"x\": 1}, \"Company\": [1], \"IsDeleted\": \"no\"}",
    "{\"payload\": 5, \"crm_id\": 7, \"checksum\": [], \"idempotency_key\": {}}",
    "{\"payload\": [{\"attribute_key\": 5, \"values\": 7, \"query_operator\": 1}]}",
    "{\"users\": [5, {\"email\": 1}], \"tenant\": 5, \"operation\": []}",
    "{\"name\": [1, 2], \"email\": 5, \"phone_number\": {}, \"custom_attributes\": 3}",
    "{\"userAndLocation\": 5, \"general\": {\"name\": 3}}",
    "{\"project_id\": 1e400}",
    "{\"project_id\": -1, \"entity_type\": 5, \"entity_id\": \"x\", \"due_date\": 20250101, \"status\": null}",
    "<computer><general><name>x</name></general>",
    "<?xml version=\"1.0\"?><computer><general><name>&amp;</name><serial_number></serial_number></general><location><department>Nope</department></location></computer>",
];

#[tokio::test]
async fn malformed_requests_get_client_errors() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sb = sandbox::start(SandboxConfig {
        hubspot_rate_limit: 1_000_000,
        hubspot_search_rate_limit: 1_000_000,
        chatwoot_search_rate_limit: 1_000_000,
        chatwoot_ip_rate_limit: 1_000_000,
        salesforce_api_limit: 1_000_000,
        taskcrm_rate_limit: 1_000_000,
        usersync_rate_limit: 1_000_000,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let c = Client::new();

    // Tokens and a few records to aim updates at.
    let sf: Value = c
        .post(sb.kit_token_url("salesforce").unwrap())
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "sandbox-salesforce-client"),
            ("client_secret", "sandbox-salesforce-secret"),
            ("refresh_token", "sandbox-salesforce-refresh"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sf_token = sf["access_token"].as_str().unwrap().to_string();
    let jamf: Value = c
        .post(format!("{}/api/v1/auth/token", sb.base_url("jamf")))
        .basic_auth(cred("JAMF_USERNAME"), Some(cred("JAMF_PASSWORD")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jamf_token = jamf["token"].as_str().unwrap().to_string();
    let crm: Value = c
        .post(sb.kit_token_url("task_crm").unwrap())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let crm_token = crm["access_token"].as_str().unwrap().to_string();
    let hs = sb.base_url("hubspot");
    c.post(format!("{hs}/crm/v3/objects/contacts"))
        .bearer_auth("sandbox-hubspot-token")
        .json(&json!({"properties": {"email": "a@example.com"}}))
        .send()
        .await
        .unwrap();
    let sfd = sb.kit_base_url("salesforce").unwrap();
    let lead: Value = c
        .post(format!("{sfd}/sobjects/Lead"))
        .bearer_auth(&sf_token)
        .json(&json!({"LastName": "A", "Company": "C"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lead_id = lead["id"].as_str().unwrap().to_string();
    let api = sb.kit_base_url("task_crm").unwrap();
    c.post(format!("{api}/projects"))
        .bearer_auth(&crm_token)
        .json(&json!({"name": "P"}))
        .send()
        .await
        .unwrap();
    c.post(format!("{api}/tasks"))
        .bearer_auth(&crm_token)
        .json(&json!({"title": "T", "project_id": 1}))
        .send()
        .await
        .unwrap();
    let cw = sb.kit_base_url("chatwoot").unwrap() + "/accounts/1";
    c.post(format!("{cw}/contacts"))
        .header("api_access_token", "sandbox-chatwoot-token")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    let jf = sb.base_url("jamf");
    c.post(format!("{jf}/JSSResource/computers/id/0"))
        .bearer_auth(&jamf_token)
        .body("<computer><general><name>M</name><serial_number>S</serial_number></general></computer>")
        .send()
        .await
        .unwrap();

    enum Auth<'a> {
        Bearer(&'a str),
        Header(&'static str, &'a str),
        UserSync,
        None,
    }
    let bs = sb.base_url("jamf-bootstrap");
    let us = sb.base_url("usersync");
    let targets: Vec<(Method, String, Auth)> = vec![
        (
            Method::POST,
            format!("{hs}/crm/v3/objects/contacts"),
            Auth::Bearer("sandbox-hubspot-token"),
        ),
        (
            Method::PATCH,
            format!("{hs}/crm/v3/objects/contacts/1001"),
            Auth::Bearer("sandbox-hubspot-token"),
        ),
        (
            Method::POST,
            format!("{hs}/crm/v3/objects/contacts/search"),
            Auth::Bearer("sandbox-hubspot-token"),
        ),
        (
            Method::POST,
            format!("{hs}/crm/v3/objects/contacts/batch/create"),
            Auth::Bearer("sandbox-hubspot-token"),
        ),
        (
            Method::POST,
            format!("{hs}/crm/v3/objects/contacts/batch/update"),
            Auth::Bearer("sandbox-hubspot-token"),
        ),
        (
            Method::POST,
            format!("{hs}/crm/v3/objects/contacts/batch/upsert"),
            Auth::Bearer("sandbox-hubspot-token"),
        ),
        (
            Method::POST,
            format!("{hs}/crm/v3/objects/contacts/batch/read"),
            Auth::Bearer("sandbox-hubspot-token"),
        ),
        (Method::POST, format!("{hs}/oauth/v1/token"), Auth::None),
        (
            Method::POST,
            format!("{sfd}/sobjects/Lead"),
            Auth::Bearer(&sf_token),
        ),
        (
            Method::PATCH,
            format!("{sfd}/sobjects/Lead/{lead_id}"),
            Auth::Bearer(&sf_token),
        ),
        (
            Method::PATCH,
            format!("{sfd}/sobjects/Lead/External_Id__c/x"),
            Auth::Bearer(&sf_token),
        ),
        (
            Method::POST,
            format!("{sfd}/composite/sobjects"),
            Auth::Bearer(&sf_token),
        ),
        (
            Method::PATCH,
            format!("{sfd}/composite/sobjects"),
            Auth::Bearer(&sf_token),
        ),
        (
            Method::POST,
            format!("{cw}/contacts"),
            Auth::Header("api_access_token", "sandbox-chatwoot-token"),
        ),
        (
            Method::PUT,
            format!("{cw}/contacts/1"),
            Auth::Header("api_access_token", "sandbox-chatwoot-token"),
        ),
        (
            Method::POST,
            format!("{cw}/contacts/filter"),
            Auth::Header("api_access_token", "sandbox-chatwoot-token"),
        ),
        (
            Method::POST,
            format!("{jf}/api/v1/departments"),
            Auth::Bearer(&jamf_token),
        ),
        (
            Method::PATCH,
            format!("{jf}/api/v1/computers-inventory-detail/1"),
            Auth::Bearer(&jamf_token),
        ),
        (
            Method::POST,
            format!("{jf}/JSSResource/computers/id/0"),
            Auth::Bearer(&jamf_token),
        ),
        (
            Method::POST,
            format!("{bs}/api/request"),
            Auth::Bearer("sandbox-jamf-bootstrap-token"),
        ),
        (
            Method::POST,
            format!("{us}/api/internal/sync/users"),
            Auth::UserSync,
        ),
        (
            Method::POST,
            format!("{api}/projects"),
            Auth::Bearer(&crm_token),
        ),
        (
            Method::POST,
            format!("{api}/tasks"),
            Auth::Bearer(&crm_token),
        ),
        (
            Method::POST,
            format!("{api}/comments"),
            Auth::Bearer(&crm_token),
        ),
        (
            Method::PUT,
            format!("{api}/tasks/1"),
            Auth::Bearer(&crm_token),
        ),
        (
            Method::PATCH,
            format!("{api}/tasks/1/assign"),
            Auth::Bearer(&crm_token),
        ),
    ];
    let mut seen = 0;
    for (method, url, auth) in &targets {
        for body in BODIES {
            let mut req = c
                .request(method.clone(), url)
                .header("content-type", "application/json")
                .body(body.to_string());
            req = match auth {
                Auth::Bearer(t) => req.bearer_auth(t),
                Auth::Header(h, v) => req.header(*h, *v),
                Auth::UserSync => req
                    .header("X-Internal-API-Key", "sandbox-internal-key")
                    .header("X-Tenant-ID", "t")
                    .header("X-Sync-Source", "wrapper"),
                Auth::None => req,
            };
            let resp = req
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {url} {body:?}: {e}"));
            let status = resp.status().as_u16();
            assert!(status < 500, "{method} {url} with {body:?} gave {status}");
            // Reached the handler: authenticated, routed.
            assert!(
                ![401, 404, 405].contains(&status),
                "{method} {url} with {body:?} gave {status}"
            );
            seen += 1;
        }
    }
    // Garbage queries too.
    for q in [
        "",
        "SELECT",
        "SELECT Id FROM",
        "SELECT Id FROM Lead WHERE",
        "SELECT Id FROM Lead WHERE Email = 'x' LIMIT x",
        "SELECT Id FROM Lead WHERE Email IN ()",
        "'''",
        "SELECT Id FROM Lead ORDER",
    ] {
        let resp = c
            .get(format!("{sfd}/query"))
            .query(&[("q", q)])
            .bearer_auth(&sf_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{q:?}");
        let body: Value = resp.json().await.unwrap();
        assert!(body[0]["errorCode"].is_string());
    }
    for f in [
        "",
        "general.name",
        "==x",
        "general.name==\"a\";",
        "(general.name==x)",
    ] {
        let resp = c
            .get(format!("{jf}/api/v1/computers-inventory"))
            .query(&[("filter", f)])
            .bearer_auth(&jamf_token)
            .send()
            .await
            .unwrap();
        assert!(resp.status().as_u16() < 500, "{f:?}");
    }
    let state = sb.state();
    let panics: usize = state
        .providers
        .values()
        .flat_map(|p| &p.log)
        .filter(|e| e.fault.as_deref() == Some("panic"))
        .count();
    assert_eq!(panics, 0);
    assert_eq!(seen, targets.len() * BODIES.len());
}

/// A credential the sandbox accepts (what `--sandbox` hands the kits).
fn cred(name: &str) -> &'static str {
    sandbox::CREDENTIALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .expect("a sandbox credential")
}
