//! The Chatwoot fake: contacts, uniqueness errors, attribute merging, filter and its limit.

use reqwest::{Client, StatusCode};
use rulebridge_sandbox::{self as sandbox, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const TOKEN: &str = "sandbox-chatwoot-token";

async fn start(config: SandboxConfig) -> (Sandbox, Client, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sb = sandbox::start(config).await.unwrap();
    let base = sb.kit_base_url("chatwoot").unwrap() + "/accounts/1";
    (sb, Client::new(), base)
}

async fn call(
    c: &Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = c.request(method, url).header("api_access_token", TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post(c: &Client, url: &str, body: Value) -> (StatusCode, Value) {
    call(c, reqwest::Method::POST, url, Some(body)).await
}

fn email_filter(email: &str) -> Value {
    json!({"payload": [{"attribute_key": "email", "filter_operator": "equal_to", "values": [email], "query_operator": null}]})
}

#[tokio::test]
async fn contacts_create_update_and_filter() {
    let (sb, c, base) = start(SandboxConfig::default()).await;
    let (s, created) = post(
        &c,
        &format!("{base}/contacts"),
        json!({"name": "Ada", "email": "Ada@Example.com", "phone_number": "+442079460000",
               "custom_attributes": {"plan": "pro", "seats": 3}, "additional_attributes": {"city": "London"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let mut redacted = created.clone();
    redacted["payload"]["contact"]["created_at"] = json!("[redacted]");
    insta::assert_json_snapshot!("chatwoot_create", redacted);
    let contact = &created["payload"]["contact"];
    let id = contact["id"].as_u64().unwrap();
    assert_eq!(contact["email"], "ada@example.com", "stored lowercased");
    assert_eq!(created["payload"]["contact_inbox"]["inbox"], Value::Null);

    let (s, updated) = call(
        &c,
        reqwest::Method::PUT,
        &format!("{base}/contacts/{id}"),
        Some(json!({"custom_attributes": {"seats": 5, "tier": "gold"}, "name": "Ada L."})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(updated["payload"]["id"], id);
    assert_eq!(updated["payload"]["name"], "Ada L.");
    assert_eq!(
        updated["payload"]["custom_attributes"],
        json!({"plan": "pro", "seats": 5, "tier": "gold"}),
        "attributes are merged"
    );
    assert_eq!(
        updated["payload"]["additional_attributes"],
        json!({"city": "London"})
    );

    post(
        &c,
        &format!("{base}/contacts"),
        json!({"name": "Grace", "email": "grace@navy.mil", "identifier": "g-1"}),
    )
    .await;
    let (s, found) = post(
        &c,
        &format!("{base}/contacts/filter"),
        email_filter("ADA@example.com"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(found["meta"]["count"], 1);
    assert_eq!(found["payload"][0]["id"], id);
    let (_, none) = post(
        &c,
        &format!("{base}/contacts/filter"),
        email_filter("ada@example"),
    )
    .await;
    assert_eq!(
        none["meta"]["count"], 0,
        "filter is exact, not a substring match"
    );
    let (_, by_id) = post(
        &c,
        &format!("{base}/contacts/filter"),
        json!({"payload": [
            {"attribute_key": "identifier", "filter_operator": "equal_to", "values": ["g-1"], "query_operator": "or"},
            {"attribute_key": "phone_number", "filter_operator": "equal_to", "values": ["+442079460000"], "query_operator": null}
        ]}),
    )
    .await;
    assert_eq!(by_id["meta"]["count"], 2);
    let (s, bad) = post(
        &c,
        &format!("{base}/contacts/filter"),
        json!({"payload": [{"attribute_key": "shoe", "filter_operator": "equal_to", "values": ["x"]}]}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad["message"].as_str().unwrap().contains("shoe"));

    // The substring search, unsafe for matching.
    let (_, search) = call(
        &c,
        reqwest::Method::GET,
        &format!("{base}/contacts/search?q=a"),
        None,
    )
    .await;
    assert_eq!(search["meta"]["count"], 2);

    let (s, _) = call(
        &c,
        reqwest::Method::DELETE,
        &format!("{base}/contacts/{id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, gone) = call(
        &c,
        reqwest::Method::GET,
        &format!("{base}/contacts/{id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(gone["error"], "Resource could not be found");
    assert_eq!(
        sb.state().records("chatwoot", "account_1_contacts").len(),
        1
    );
}

#[tokio::test]
async fn uniqueness_and_validation() {
    let (_sb, c, base) = start(SandboxConfig::default()).await;
    let url = format!("{base}/contacts");
    post(
        &c,
        &url,
        json!({"email": "pat@example.com", "identifier": "crm-1", "phone_number": "+15550100"}),
    )
    .await;
    let (s, dup) = post(&c, &url, json!({"email": "PAT@example.com"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        dup,
        json!({"message": "Email has already been taken", "attributes": ["email"]})
    );
    let (_, dup) = post(
        &c,
        &url,
        json!({"identifier": "crm-1", "phone_number": "+15550100"}),
    )
    .await;
    assert_eq!(
        dup,
        json!({"message": "Identifier has already been taken, Phone number has already been taken", "attributes": ["identifier", "phone_number"]})
    );
    let (s, bad) = post(&c, &url, json!({"phone_number": "555-0100"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["attributes"], json!(["phone_number"]));
    // Another account has its own contacts.
    let other = base.replace("/accounts/1", "/accounts/2");
    let (s, _) = post(
        &c,
        &format!("{other}/contacts"),
        json!({"email": "pat@example.com"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // Malformed JSON.
    let resp = c
        .post(&url)
        .header("api_access_token", TOKEN)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

/// Reference "More facts", Chatwoot: Rack::Attack throttles `/contacts/search` per account;
/// contact create, update and filter are not throttled per account.
#[tokio::test]
async fn bad_token_and_search_rate_limit() {
    let (sb, c, base) = start(SandboxConfig {
        chatwoot_search_rate_limit: 3,
        ..SandboxConfig::default()
    })
    .await;
    let resp = c
        .get(format!("{base}/contacts"))
        .header("api_access_token", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"error": "Invalid Access Token"}));

    let search = |account: &str| {
        c.get(
            format!("{base}/contacts/search")
                .replace("/accounts/1/", &format!("/accounts/{account}/")),
        )
        .query(&[("q", "x")])
        .header("api_access_token", TOKEN)
        .send()
    };
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(search("1").await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    // The throttle is per account.
    assert_eq!(search("2").await.unwrap().status(), StatusCode::OK);
    // Filter, create and update are not throttled.
    for _ in 0..10 {
        let (s, _) = post(
            &c,
            &format!("{base}/contacts/filter"),
            email_filter("x@example.com"),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, _) = post(&c, &format!("{base}/contacts"), json!({"name": "ok"})).await;
    assert_eq!(s, StatusCode::OK);
    let cw = &sb.state().providers["chatwoot"];
    assert_eq!(cw.rate_limited, 1);
    assert_eq!(
        cw.endpoints["GET /api/v1/accounts/{account}/contacts/search"].statuses["429"],
        1
    );
}

/// Reference "More facts", Chatwoot: Rack::Attack also throttles requests per client
/// address, on every endpoint and whatever the account.
#[tokio::test]
async fn every_request_counts_against_the_limit_per_address() {
    let (sb, c, base) = start(SandboxConfig {
        chatwoot_ip_rate_limit: 3,
        ..SandboxConfig::default()
    })
    .await;
    let other = base.replace("/accounts/1", "/accounts/2");
    let mut statuses = Vec::new();
    for url in [
        format!("{base}/contacts"),
        format!("{other}/contacts"),
        format!("{base}/contacts/filter"),
        format!("{other}/contacts/filter"),
    ] {
        let (s, _) = post(&c, &url, email_filter("x@example.com")).await;
        statuses.push(s.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let resp = c.get(format!("{base}/contacts")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "before auth");
    assert_eq!(resp.text().await.unwrap(), "Retry later\n");
    assert_eq!(sb.state().providers["chatwoot"].rate_limited, 2);
}

/// Reference "More facts", Chatwoot: the account id is part of every path and differs per
/// installation.
#[tokio::test]
async fn any_account_id_has_its_own_contacts() {
    let (sb, c, base) = start(SandboxConfig::default()).await;
    for account in ["7", "123456"] {
        let url = base.replace("/accounts/1", &format!("/accounts/{account}"));
        let (s, body) = post(
            &c,
            &format!("{url}/contacts"),
            json!({"email": "pat@example.com", "name": account}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let (s, found) = post(
            &c,
            &format!("{url}/contacts/filter"),
            email_filter("pat@example.com"),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            found["payload"].as_array().map(Vec::len),
            Some(1),
            "{found}"
        );
        assert_eq!(found["payload"][0]["name"], account);
    }
    // Account 1 has none of them.
    let (_, found) = post(
        &c,
        &format!("{base}/contacts/filter"),
        email_filter("pat@example.com"),
    )
    .await;
    assert_eq!(found["payload"], json!([]));
    let state = sb.state();
    assert_eq!(state.records("chatwoot", "account_7_contacts").len(), 1);
    assert_eq!(
        state.records("chatwoot", "account_123456_contacts").len(),
        1
    );
    let resp = c
        .get(base.replace("/accounts/1", "/accounts/abc") + "/contacts")
        .header("api_access_token", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
