//! The Salesforce fake: OAuth sessions, sObjects, SOQL, collections, duplicates, limits.

use reqwest::{Client, StatusCode};
use rulebridge_sandbox::{self as sandbox, SalesforceDuplicates, Sandbox, SandboxConfig};
use serde_json::{Value, json};

struct Sf {
    sb: Sandbox,
    c: Client,
    token: String,
    data: String,
}

async fn login(c: &Client, sb: &Sandbox) -> Value {
    c.post(format!(
        "{}/services/oauth2/token",
        sb.base_url("salesforce")
    ))
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
    .unwrap()
}

async fn start(config: SandboxConfig) -> Sf {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sb = sandbox::start(config).await.unwrap();
    let c = Client::new();
    let tok = login(&c, &sb).await;
    let token = tok["access_token"].as_str().unwrap().to_string();
    let data = format!(
        "{}/services/data/v58.0",
        tok["instance_url"].as_str().unwrap()
    );
    Sf { sb, c, token, data }
}

impl Sf {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .c
            .request(method, format!("{}{path}", self.data))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, body)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, b) = self.call(reqwest::Method::POST, path, Some(body)).await;
        (s, b)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, b) = self.call(reqwest::Method::GET, path, None).await;
        (s, b)
    }

    async fn query(&self, soql: &str) -> (StatusCode, Value) {
        let resp = self
            .c
            .get(format!("{}/query", self.data))
            .query(&[("q", soql)])
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }
}

fn redact(v: &Value) -> Value {
    let mut v = v.clone();
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if matches!(k.as_str(), "LastModifiedDate" | "CreatedDate") && x.is_string() {
                        *x = json!("[redacted]");
                    } else {
                        walk(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

#[tokio::test]
async fn lead_create_read_update_query() {
    let sf = start(SandboxConfig::default()).await;
    let (s, h, created) = sf
        .call(
            reqwest::Method::POST,
            "/sobjects/Lead",
            Some(json!({"LastName": "Lovelace", "FirstName": "Ada", "Company": "Engines", "Email": "Ada@Example.com"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(created["success"], true);
    assert_eq!(created["errors"], json!([]));
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 18);
    assert!(id.starts_with("00Q"));
    assert!(
        h["sforce-limit-info"]
            .to_str()
            .unwrap()
            .starts_with("api-usage=")
    );
    assert!(h["sforce-limit-info"].to_str().unwrap().ends_with("/5000"));

    let (s, rec) = sf.get(&format!("/sobjects/Lead/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(rec["attributes"]["type"], "Lead");
    assert_eq!(rec["Name"], "Ada Lovelace");
    assert_eq!(rec["Status"], "Open - Not Contacted");
    // A 15-character id works too.
    let (s, _) = sf.get(&format!("/sobjects/Lead/{}", &id[..15])).await;
    assert_eq!(s, StatusCode::OK);

    let (s, _, body) = sf
        .call(
            reqwest::Method::PATCH,
            &format!("/sobjects/Lead/{id}"),
            Some(json!({"Rating": "Hot", "Status": "Working - Contacted"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);

    let (s, q) = sf
        .query("SELECT Id, Email, LastModifiedDate FROM Lead WHERE Email = 'ada@example.com'")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(q["totalSize"], 1);
    assert_eq!(q["done"], true);
    assert_eq!(q["records"][0]["Id"], id.as_str());
    insta::assert_json_snapshot!("salesforce_query", redact(&q));

    let (s, q) = sf
        .query("select id, rating from lead where email = 'ada@example.com' and status = 'Working - Contacted'")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(q["records"][0]["Rating"], "Hot");
    let (_, q) = sf
        .query("SELECT Id FROM Lead WHERE Email = 'nobody@example.com'")
        .await;
    assert_eq!(q["totalSize"], 0);

    let (s, d) = sf.get("/sobjects/Lead/describe").await;
    assert_eq!(s, StatusCode::OK);
    let email = d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Email")
        .unwrap();
    assert_eq!(email["type"], "email");
    assert_eq!(email["length"], 80);
    for key in [
        "label",
        "nillable",
        "createable",
        "updateable",
        "unique",
        "externalId",
        "picklistValues",
    ] {
        assert!(email.get(key).is_some(), "{key}");
    }
    let status = d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Status")
        .unwrap();
    assert_eq!(status["picklistValues"][0]["value"], "Open - Not Contacted");

    let (s, _, _) = sf
        .call(
            reqwest::Method::DELETE,
            &format!("/sobjects/Lead/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, body) = sf.get(&format!("/sobjects/Lead/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body[0]["errorCode"], "NOT_FOUND");
}

#[tokio::test]
async fn record_errors() {
    let sf = start(SandboxConfig::default()).await;
    let (_, first) = sf
        .post(
            "/sobjects/Lead",
            json!({"LastName": "A", "Company": "C", "Email": "dup@example.com"}),
        )
        .await;
    let (s, dup) = sf
        .post(
            "/sobjects/Lead",
            json!({"LastName": "B", "Company": "C", "Email": "DUP@example.com"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(dup[0]["errorCode"], "DUPLICATE_VALUE");
    let msg = dup[0]["message"].as_str().unwrap();
    assert_eq!(
        msg,
        format!(
            "duplicate value found: Email duplicates value on record with id: {}",
            first["id"].as_str().unwrap()
        )
    );
    insta::assert_json_snapshot!("salesforce_duplicate_value", dup);

    let (s, missing) = sf.post("/sobjects/Lead", json!({"FirstName": "X"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing,
        json!([{"message": "Required fields are missing: [LastName, Company]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName", "Company"]}])
    );
    // Contacts need only a last name.
    let (s, c) = sf.post("/sobjects/Contact", json!({"LastName": "Z"})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(c["id"].as_str().unwrap().starts_with("003"));

    let (_, unknown) = sf
        .post(
            "/sobjects/Lead",
            json!({"LastName": "A", "Company": "C", "Shoe_Size__c": 9}),
        )
        .await;
    assert_eq!(unknown[0]["errorCode"], "INVALID_FIELD");
    let (_, bad) = sf
        .post(
            "/sobjects/Lead",
            json!({"LastName": "A", "Company": "C", "Email": "nope", "Status": "Maybe"}),
        )
        .await;
    let codes: Vec<&str> = bad
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["errorCode"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "INVALID_EMAIL_ADDRESS",
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        ]
    );
    let (_, long) = sf
        .post(
            "/sobjects/Lead",
            json!({"LastName": "x".repeat(81), "Company": "C"}),
        )
        .await;
    assert_eq!(long[0]["errorCode"], "STRING_TOO_LONG");
    let (_, ro) = sf
        .post(
            "/sobjects/Lead",
            json!({"LastName": "A", "Company": "C", "Name": "A"}),
        )
        .await;
    assert_eq!(ro[0]["errorCode"], "INVALID_FIELD_FOR_INSERT_UPDATE");

    let resp =
        sf.c.post(format!("{}/sobjects/Lead", sf.data))
            .bearer_auth(&sf.token)
            .header("content-type", "application/json")
            .body("{\"LastName\": ")
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "JSON_PARSER_ERROR");

    // An unescaped quote breaks the SOQL, as it would at Salesforce.
    let (s, q) = sf
        .query("SELECT Id FROM Lead WHERE Email = 'o'brien@example.com'")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(q[0]["errorCode"], "MALFORMED_QUERY");
    let (_, q) = sf.query("SELECT Id, Shoe__c FROM Lead").await;
    assert_eq!(q[0]["errorCode"], "INVALID_FIELD");
    assert!(
        q[0]["message"]
            .as_str()
            .unwrap()
            .contains("No such column 'Shoe__c' on entity 'Lead'")
    );

    let (s, _) = sf.get("/sobjects/Opportunity/describe").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn collections_partial_and_all_or_none() {
    let sf = start(SandboxConfig::default()).await;
    let lead = |last: &str, email: &str| json!({"attributes": {"type": "Lead"}, "LastName": last, "Company": "C", "Email": email});
    let (s, out) = sf
        .post(
            "/composite/sobjects",
            json!({"allOrNone": false, "records": [
                lead("A", "a@example.com"),
                {"attributes": {"type": "Lead"}, "LastName": "NoCompany"},
                lead("B", "A@example.com"),
                lead("C", "c@example.com")
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let items = out.as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["success"], true);
    assert_eq!(
        items[1]["errors"][0]["statusCode"],
        "REQUIRED_FIELD_MISSING"
    );
    assert_eq!(items[2]["errors"][0]["statusCode"], "DUPLICATE_VALUE");
    assert_eq!(items[3]["success"], true);
    insta::assert_json_snapshot!("salesforce_collection_partial", out);
    assert_eq!(sf.sb.state().records("salesforce", "Lead").len(), 2);

    let (_, out) = sf
        .post(
            "/composite/sobjects",
            json!({"allOrNone": true, "records": [lead("D", "d@example.com"), lead("E", "a@example.com")]}),
        )
        .await;
    assert_eq!(out[0]["success"], false);
    assert_eq!(
        out[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(out[1]["errors"][0]["statusCode"], "DUPLICATE_VALUE");
    assert_eq!(
        sf.sb.state().records("salesforce", "Lead").len(),
        2,
        "rolled back"
    );

    let too_many: Vec<Value> = (0..201)
        .map(|i| lead("X", &format!("x{i}@example.com")))
        .collect();
    let (s, out) = sf
        .post(
            "/composite/sobjects",
            json!({"allOrNone": false, "records": too_many}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(out[0]["errorCode"], "EXCEEDED_ID_LIMIT");

    // Updates by id.
    let id = items[0]["id"].as_str().unwrap();
    let (s, _, out) = sf
        .call(
            reqwest::Method::PATCH,
            "/composite/sobjects",
            Some(json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Lead"}, "id": id, "Rating": "Warm"},
                {"attributes": {"type": "Lead"}, "id": "00Q000000000000AAA", "Rating": "Cold"}
            ]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(out[0]["success"], true);
    assert_eq!(out[1]["success"], false);
    let (_, rec) = sf.get(&format!("/sobjects/Lead/{id}")).await;
    assert_eq!(rec["Rating"], "Warm");
}

#[tokio::test]
async fn upsert_by_external_id() {
    let sf = start(SandboxConfig::default()).await;
    let (s, _, b) = sf
        .call(
            reqwest::Method::PATCH,
            "/sobjects/Lead/External_Id__c/crm-1",
            Some(json!({"LastName": "One", "Company": "C"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(b["created"], true);
    let (s, _, b2) = sf
        .call(
            reqwest::Method::PATCH,
            "/sobjects/Lead/External_Id__c/crm-1",
            Some(json!({"FirstName": "Uno"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b2["created"], false);
    assert_eq!(b2["id"], b["id"]);
    let (s, _, b) = sf
        .call(
            reqwest::Method::PATCH,
            "/sobjects/Lead/Email/x@example.com",
            Some(json!({"LastName": "X", "Company": "C"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b[0]["errorCode"], "NOT_FOUND");
}

#[tokio::test]
async fn sessions_expire_and_refresh() {
    let sf = start(SandboxConfig::default()).await;
    let (s, _) = sf.get("/sobjects/Lead/describe").await;
    assert_eq!(s, StatusCode::OK);
    sf.sb.expire_tokens();
    let (s, body) = sf.get("/sobjects/Lead/describe").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    let tok = login(&sf.c, &sf.sb).await;
    assert_eq!(tok["token_type"], "Bearer");
    assert!(tok.get("expires_in").is_none());
    for key in [
        "access_token",
        "instance_url",
        "id",
        "issued_at",
        "signature",
    ] {
        assert!(tok[key].is_string(), "{key}");
    }
    let resp =
        sf.c.get(format!("{}/sobjects/Lead/describe", sf.data))
            .bearer_auth(tok["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let resp =
        sf.c.post(format!(
            "{}/services/oauth2/token",
            sf.sb.base_url("salesforce")
        ))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "sandbox-salesforce-client"),
            ("client_secret", "sandbox-salesforce-secret"),
            ("refresh_token", "revoked"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn api_request_limit() {
    let sf = start(SandboxConfig {
        salesforce_api_limit: 3,
        ..SandboxConfig::default()
    })
    .await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (s, h, body) = sf
            .call(reqwest::Method::GET, "/sobjects/Lead/describe", None)
            .await;
        seen.push((
            s.as_u16(),
            h["sforce-limit-info"].to_str().unwrap().to_string(),
        ));
        if s == StatusCode::FORBIDDEN {
            assert_eq!(body[0]["errorCode"], "REQUEST_LIMIT_EXCEEDED");
        }
    }
    assert_eq!(
        seen,
        [
            (200, "api-usage=1/3".to_string()),
            (200, "api-usage=2/3".to_string()),
            (200, "api-usage=3/3".to_string()),
            (403, "api-usage=3/3".to_string()),
        ]
    );
    assert_eq!(sf.sb.state().providers["salesforce"].rate_limited, 1);
}

#[tokio::test]
async fn duplicate_rule_mode() {
    let sf = start(SandboxConfig {
        salesforce_duplicates: SalesforceDuplicates::DuplicateRule,
        ..SandboxConfig::default()
    })
    .await;
    let lead = json!({"LastName": "A", "Company": "C", "Email": "same@example.com"});
    let (s, _) = sf.post("/sobjects/Lead", lead.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, body) = sf.post("/sobjects/Lead", lead.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "DUPLICATES_DETECTED");
    assert_eq!(
        body[0]["duplicateResult"]["matchResults"][0]["matchRecords"][0]["record"]["Id"]
            .as_str()
            .unwrap()
            .len(),
        18
    );
    let resp =
        sf.c.post(format!("{}/sobjects/Lead", sf.data))
            .bearer_auth(&sf.token)
            .header("Sforce-Duplicate-Rule-Header", "allowSave=true")
            .json(&lead)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}
