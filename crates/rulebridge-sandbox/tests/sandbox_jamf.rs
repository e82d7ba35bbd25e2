//! The Jamf Pro fake (the bootstrap API fake has its own tests).

use reqwest::{Client, StatusCode};
use rulebridge_sandbox::{self as sandbox, Sandbox, SandboxConfig};
use serde_json::{Value, json};

async fn start() -> (Sandbox, Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    (
        sandbox::start(SandboxConfig::default()).await.unwrap(),
        Client::new(),
    )
}

async fn jamf_token(c: &Client, sb: &Sandbox) -> String {
    let resp = c
        .post(format!("{}/api/v1/auth/token", sb.base_url("jamf")))
        .basic_auth(cred("JAMF_USERNAME"), Some(cred("JAMF_PASSWORD")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert!(body["expires"].as_str().unwrap().ends_with('Z'));
    body["token"].as_str().unwrap().to_string()
}

const COMPUTER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><computer><general><name>Ada's MacBook</name><serial_number>C02XXXXX</serial_number></general><location><username>ada</username><email_address>ada@example.com</email_address><department>IT</department></location></computer>";

#[tokio::test]
async fn jamf_tokens_departments_and_computers() {
    let (sb, c) = start().await;
    let base = sb.base_url("jamf");
    let resp = c
        .post(format!("{base}/api/v1/auth/token"))
        .basic_auth(cred("JAMF_USERNAME"), Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let token = jamf_token(&c, &sb).await;
    assert!(token.starts_with("eyJ"));

    // Departments.
    let resp = c
        .post(format!("{base}/api/v1/departments"))
        .bearer_auth(&token)
        .json(&json!({"name": "IT"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let dep: Value = resp.json().await.unwrap();
    assert_eq!(dep["id"], "1");
    assert!(
        dep["href"]
            .as_str()
            .unwrap()
            .ends_with("/api/v1/departments/1")
    );
    let resp = c
        .post(format!("{base}/api/v1/departments"))
        .bearer_auth(&token)
        .json(&json!({"name": "it"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["httpStatus"], 400);
    assert_eq!(err["errors"][0]["code"], "DUPLICATE_FIELD");
    assert_eq!(err["errors"][0]["field"], "name");
    let list: Value = c
        .get(format!("{base}/api/v1/departments?page=0&page-size=100"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list,
        json!({"totalCount": 1, "results": [{"id": "1", "name": "IT"}]})
    );

    // A computer through the Classic API; the duplicate serial is refused with HTML.
    let post_xml = || {
        c.post(format!("{base}/JSSResource/computers/id/0"))
            .bearer_auth(&token)
            .header("content-type", "application/xml")
            .body(COMPUTER)
    };
    let resp = post_xml().send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(resp.text().await.unwrap().contains("<id>1</id>"));
    let resp = post_xml().send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Conflict</p>") && html.contains("Error: Duplicate serial number"));
    let resp = c
        .post(format!("{base}/JSSResource/computers/id/0"))
        .bearer_auth(&token)
        .body("<computer><general>")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // Inventory with an RSQL filter.
    let inv = |filter: &str| {
        c.get(format!("{base}/api/v1/computers-inventory"))
            .query(&[
                ("section", "GENERAL"),
                ("section", "USER_AND_LOCATION"),
                ("filter", filter),
            ])
            .bearer_auth(&token)
    };
    let found: Value = inv("hardware.serialNumber==\"C02XXXXX\"")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["totalCount"], 1);
    let computer = &found["results"][0];
    assert_eq!(computer["general"]["name"], "Ada's MacBook");
    assert_eq!(computer["userAndLocation"]["departmentId"], "1");
    assert_eq!(computer["hardware"], Value::Null, "section not requested");
    let none: Value = inv("general.name==\"Someone else\"")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none["totalCount"], 0);
    let resp = inv("general.colour==\"red\"").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // Assign the user.
    let resp = c
        .patch(format!("{base}/api/v1/computers-inventory-detail/1"))
        .bearer_auth(&token)
        .json(&json!({"userAndLocation": {"realname": "Ada Lovelace", "position": "Engineer", "departmentId": "1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let detail: Value = resp.json().await.unwrap();
    assert_eq!(detail["userAndLocation"]["realname"], "Ada Lovelace");
    assert_eq!(detail["userAndLocation"]["username"], "ada");
    let resp = c
        .patch(format!("{base}/api/v1/computers-inventory-detail/1"))
        .bearer_auth(&token)
        .json(&json!({"userAndLocation": {"departmentId": "99"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = c
        .patch(format!("{base}/api/v1/computers-inventory-detail/77"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let state = sb.state();
    assert_eq!(state.records("jamf", "computers").len(), 1);
    assert_eq!(state.records("jamf", "departments").len(), 1);
}

#[tokio::test]
async fn jamf_token_lifecycle() {
    let (sb, c) = start().await;
    let base = sb.base_url("jamf");
    let token = jamf_token(&c, &sb).await;
    let get = |t: &str| {
        c.get(format!("{base}/api/v1/departments"))
            .bearer_auth(t.to_string())
            .send()
    };
    assert_eq!(get(&token).await.unwrap().status(), StatusCode::OK);

    let resp = c
        .post(format!("{base}/api/v1/auth/keep-alive"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let fresh = resp.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(fresh, token);
    let old = get(&token).await.unwrap();
    assert_eq!(
        old.status(),
        StatusCode::UNAUTHORIZED,
        "keep-alive invalidates the old token"
    );
    let body: Value = old.json().await.unwrap();
    assert_eq!(body["httpStatus"], 401);
    assert_eq!(get(&fresh).await.unwrap().status(), StatusCode::OK);

    let resp = c
        .post(format!("{base}/api/v1/auth/invalidate-token"))
        .bearer_auth(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get(&fresh).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let another = jamf_token(&c, &sb).await;
    sb.expire_tokens();
    assert_eq!(
        get(&another).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // Client credentials.
    let resp = c
        .post(format!("{base}/api/oauth/token"))
        .form(&[
            ("client_id", "sandbox-jamf-client"),
            ("client_secret", "sandbox-jamf-secret"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        get(body["access_token"].as_str().unwrap())
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

/// A credential the sandbox accepts (what `--sandbox` hands the kits).
fn cred(name: &str) -> &'static str {
    sandbox::CREDENTIALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .expect("a sandbox credential")
}
