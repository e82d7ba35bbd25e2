//! The HubSpot fake against a real HTTP client: CRUD, errors, search, batch, OAuth, limits.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use rulebridge_sandbox::{self as sandbox, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const TOKEN: &str = "sandbox-hubspot-token";

async fn start(config: SandboxConfig) -> (Sandbox, Client, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sb = sandbox::start(config).await.expect("sandbox starts");
    let base = sb.base_url("hubspot");
    (sb, Client::new(), base)
}

async fn send(
    client: &Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = client.request(method, url).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request is answered");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

async fn post(c: &Client, url: &str, body: Value) -> (StatusCode, Value) {
    let (s, _, b) = send(c, reqwest::Method::POST, url, Some(body)).await;
    (s, b)
}

async fn get(c: &Client, url: &str) -> (StatusCode, Value) {
    let (s, _, b) = send(c, reqwest::Method::GET, url, None).await;
    (s, b)
}

fn redacted(v: &Value) -> Value {
    let mut v = v.clone();
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    let volatile = matches!(
                        k.as_str(),
                        "createdAt"
                            | "updatedAt"
                            | "createdate"
                            | "lastmodifieddate"
                            | "correlationId"
                            | "requestedAt"
                            | "startedAt"
                            | "completedAt"
                    );
                    if volatile && !x.is_null() {
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
async fn contact_crud_round_trip() {
    let (sb, c, base) = start(SandboxConfig::default()).await;
    let url = format!("{base}/crm/v3/objects/contacts");
    let (status, created) = post(
        &c,
        &url,
        json!({"properties": {"email": "Ada@Example.com", "firstname": "Ada", "lastname": "Lovelace", "lifecyclestage": "lead", "jobtitle": 42}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    insta::assert_json_snapshot!("hubspot_create", redacted(&created));
    let id = created["id"].as_str().unwrap().to_string();
    // Every property value is a string.
    assert_eq!(created["properties"]["jobtitle"], "42");

    let (status, got) = get(&c, &format!("{url}/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["properties"]["email"], "Ada@Example.com");
    assert!(got["properties"]["lastname"].is_string());
    // The default property set: unset ones are null.
    assert!(got["properties"].get("company").is_none());

    let (status, got) = get(
        &c,
        &format!("{url}/ada@example.com?idProperty=email&properties=company,firstname"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["id"], id.as_str());
    assert_eq!(
        got["properties"],
        json!({"company": null, "firstname": "Ada"})
    );

    let (status, _, patched) = send(
        &c,
        reqwest::Method::PATCH,
        &format!("{url}/{id}"),
        Some(json!({"properties": {"company": "Analytical Engines", "firstname": ""}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["properties"]["company"], "Analytical Engines");
    assert!(patched["properties"].get("firstname").is_none());

    let (status, _, _) = send(
        &c,
        reqwest::Method::PATCH,
        &format!("{url}/ADA@example.com?idProperty=email"),
        Some(json!({"properties": {"phone": "+44 20 7946 0000"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, _) = send(&c, reqwest::Method::DELETE, &format!("{url}/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = get(&c, &format!("{url}/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["category"], "OBJECT_NOT_FOUND");

    let state = sb.state();
    assert!(state.records("hubspot", "contacts").is_empty());
    assert_eq!(state.records("hubspot", "archived_contacts").len(), 1);
    let hs = state.provider("hubspot").unwrap();
    assert_eq!(
        hs.endpoints["POST /crm/v3/objects/contacts"].statuses["201"],
        1
    );
    assert_eq!(
        hs.endpoints["DELETE /crm/v3/objects/contacts/{id}"].requests,
        1
    );
}

#[tokio::test]
async fn duplicates_and_validation_errors() {
    let (_sb, c, base) = start(SandboxConfig::default()).await;
    let url = format!("{base}/crm/v3/objects/contacts");
    let (_, first) = post(&c, &url, json!({"properties": {"email": "grace@navy.mil"}})).await;
    let (status, dup) = post(&c, &url, json!({"properties": {"email": "GRACE@navy.mil"}})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(dup["category"], "CONFLICT");
    assert_eq!(
        dup["message"],
        format!(
            "Contact already exists. Existing ID: {}",
            first["id"].as_str().unwrap()
        )
    );
    insta::assert_json_snapshot!("hubspot_conflict", redacted(&dup));

    let (status, bad) = post(
        &c,
        &url,
        json!({"properties": {"email": "not-an-email", "favourite_colour": "blue", "lifecyclestage": "Lead"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["category"], "VALIDATION_ERROR");
    let codes: Vec<&str> = bad["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["INVALID_EMAIL", "PROPERTY_DOESNT_EXIST", "INVALID_OPTION"]
    );
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .starts_with("Property values were not valid: [")
    );
    insta::assert_json_snapshot!("hubspot_validation", redacted(&bad));

    // Malformed JSON gets HubSpot's 400 shape, not a framework error.
    let resp = c
        .post(&url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{\"properties\": {")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "error");
    assert_eq!(body["category"], "VALIDATION_ERROR");

    // A contact needs an e-mail, a first name or a last name.
    let (status, none) = post(&c, &url, json!({"properties": {"company": "Nameless"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(none["category"], "VALIDATION_ERROR");

    // Read-only properties cannot be written.
    let (status, ro) = post(&c, &url, json!({"properties": {"hs_object_id": "5"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(ro["errors"][0]["code"], "READ_ONLY_VALUE");
}

#[tokio::test]
async fn search_semantics() {
    let (_sb, c, base) = start(SandboxConfig {
        hubspot_search_rate_limit: 100,
        ..SandboxConfig::default()
    })
    .await;
    let url = format!("{base}/crm/v3/objects/contacts");
    for (email, first, company, stage) in [
        ("ada@example.com", "Ada", Some("Engines Ltd"), "lead"),
        ("grace@navy.mil", "Grace", None, "customer"),
        ("alan@example.com", "Alan", Some("Bletchley"), "lead"),
    ] {
        let mut props = json!({"email": email, "firstname": first, "lifecyclestage": stage});
        if let Some(co) = company {
            props["company"] = json!(co);
        }
        let (s, _) = post(&c, &url, json!({ "properties": props })).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let search = format!("{url}/search");
    let emails = |b: &Value| -> Vec<String> {
        b["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["properties"]["email"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let filter =
        |groups: Value| json!({"filterGroups": groups, "properties": ["email", "company"]});

    // EQ is case-insensitive.
    let (s, b) = post(
        &c,
        &search,
        filter(json!([{"filters": [{"propertyName": "email", "operator": "EQ", "value": "ADA@example.com"}]}])),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["total"], 1);
    assert_eq!(emails(&b), ["ada@example.com"]);
    assert_eq!(b["results"][0]["properties"]["company"], "Engines Ltd");
    assert!(b.get("paging").is_none());

    // Groups are OR-ed, filters within a group AND-ed.
    let (_, b) = post(
        &c,
        &search,
        filter(json!([
            {"filters": [
                {"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"},
                {"propertyName": "company", "operator": "HAS_PROPERTY"},
                {"propertyName": "firstname", "operator": "NEQ", "value": "alan"}
            ]},
            {"filters": [{"propertyName": "company", "operator": "NOT_HAS_PROPERTY"}]}
        ])),
    )
    .await;
    assert_eq!(emails(&b), ["ada@example.com", "grace@navy.mil"]);

    // IN wants lowercase values for string properties; CONTAINS_TOKEN matches words.
    let (_, b) = post(
        &c,
        &search,
        filter(json!([{"filters": [{"propertyName": "email", "operator": "IN", "values": ["grace@navy.mil", "ALAN@EXAMPLE.COM"]}]}])),
    )
    .await;
    assert_eq!(emails(&b), ["grace@navy.mil"]);
    let (_, b) = post(
        &c,
        &search,
        filter(json!([{"filters": [{"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@example.com"}]}])),
    )
    .await;
    assert_eq!(b["total"], 2);

    // Paging with limit and after.
    let (_, b) = post(&c, &search, json!({"limit": 2})).await;
    assert_eq!(b["total"], 3);
    assert_eq!(b["results"].as_array().unwrap().len(), 2);
    assert_eq!(b["paging"]["next"]["after"], "2");
    let (_, b) = post(&c, &search, json!({"limit": 2, "after": "2"})).await;
    assert_eq!(b["results"].as_array().unwrap().len(), 1);
    // Default properties only.
    let props = b["results"][0]["properties"].as_object().unwrap();
    assert!(props.contains_key("hs_object_id") && !props.contains_key("lifecyclestage"));

    // Limits: page size, filter groups, unknown property.
    let (s, b) = post(&c, &search, json!({"limit": 201})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["category"], "VALIDATION_ERROR");
    let six = json!({"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]});
    let (s, _) = post(&c, &search, json!({"filterGroups": vec![six; 6]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = post(
        &c,
        &search,
        filter(json!([{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "x"}]}])),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn search_index_lags_behind_writes_when_configured() {
    let (_sb, c, base) = start(SandboxConfig {
        hubspot_search_lag: Duration::from_millis(300),
        ..SandboxConfig::default()
    })
    .await;
    let url = format!("{base}/crm/v3/objects/contacts");
    post(
        &c,
        &url,
        json!({"properties": {"email": "late@example.com"}}),
    )
    .await;
    let q = json!({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": "late@example.com"}]}]});
    let (_, b) = post(&c, &format!("{url}/search"), q.clone()).await;
    assert_eq!(b["total"], 0);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (_, b) = post(&c, &format!("{url}/search"), q).await;
    assert_eq!(b["total"], 1);
}

#[tokio::test]
async fn batch_operations() {
    let (sb, c, base) = start(SandboxConfig {
        hubspot_shuffle_batch_results: false,
        ..SandboxConfig::default()
    })
    .await;
    let batch = format!("{base}/crm/v3/objects/contacts/batch");
    let (s, created) = post(
        &c,
        &format!("{batch}/create"),
        json!({"inputs": [{"properties": {"email": "a@example.com"}}, {"properties": {"email": "b@example.com"}}]}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(created["status"], "COMPLETE");
    assert_eq!(created["results"].as_array().unwrap().len(), 2);

    // Upsert by e-mail: one existing, one new, one invalid → 207 with the error.
    let (s, up) = post(
        &c,
        &format!("{batch}/upsert"),
        json!({"inputs": [
            {"id": "A@example.com", "idProperty": "email", "properties": {"firstname": "Alice"}},
            {"id": "c@example.com", "idProperty": "email", "properties": {"firstname": "Carol"}},
            {"id": "d@example.com", "idProperty": "email", "properties": {"lifecyclestage": "nope"}}
        ]}),
    )
    .await;
    assert_eq!(s, StatusCode::MULTI_STATUS);
    let results = up["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["new"], false);
    assert_eq!(results[0]["properties"]["firstname"], "Alice");
    assert_eq!(results[1]["new"], true);
    assert_eq!(results[1]["properties"]["email"], "c@example.com");
    assert_eq!(up["numErrors"], 1);
    assert_eq!(up["errors"][0]["category"], "VALIDATION_ERROR");
    assert_eq!(up["errors"][0]["context"]["ids"], json!(["d@example.com"]));
    insta::assert_json_snapshot!("hubspot_batch_upsert_partial", redacted(&up));

    // All good → 200.
    let (s, _) = post(
        &c,
        &format!("{batch}/upsert"),
        json!({"inputs": [{"id": "e@example.com", "idProperty": "email", "properties": {}}]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    // Over the limit, duplicate ids, non-unique idProperty: the whole batch is refused.
    let many: Vec<Value> = (0..101)
        .map(
            |i| json!({"id": format!("u{i}@example.com"), "idProperty": "email", "properties": {}}),
        )
        .collect();
    let (s, b) = post(&c, &format!("{batch}/upsert"), json!({ "inputs": many })).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["category"], "VALIDATION_ERROR");
    let (s, b) = post(
        &c,
        &format!("{batch}/upsert"),
        json!({"inputs": [
            {"id": "x@example.com", "idProperty": "email", "properties": {}},
            {"id": "X@example.com", "idProperty": "email", "properties": {}}
        ]}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["message"].as_str().unwrap().contains("Duplicate IDs"));
    let (s, _) = post(
        &c,
        &format!("{batch}/upsert"),
        json!({"inputs": [{"id": "Ada", "idProperty": "firstname", "properties": {}}]}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Batch create is all or nothing: one existing e-mail refuses the batch with 409.
    let (s, b) = post(
        &c,
        &format!("{batch}/create"),
        json!({"inputs": [{"properties": {"email": "new@example.com"}}, {"properties": {"email": "b@example.com"}}]}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .starts_with("Contact already exists. Existing ID: ")
    );

    // Read and update report unknown ids as a partial failure.
    let id_a = created["results"][0]["id"].as_str().unwrap();
    let (s, b) = post(
        &c,
        &format!("{batch}/read"),
        json!({"inputs": [{"id": id_a}, {"id": "999999"}], "properties": ["email"]}),
    )
    .await;
    assert_eq!(s, StatusCode::MULTI_STATUS);
    assert_eq!(b["results"][0]["properties"]["email"], "a@example.com");
    assert_eq!(b["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(b["errors"][0]["context"]["ids"], json!(["999999"]));
    let (s, b) = post(
        &c,
        &format!("{batch}/update"),
        json!({"inputs": [{"id": id_a, "properties": {"company": "A Inc"}}, {"id": "999999", "properties": {"company": "B"}}]}),
    )
    .await;
    assert_eq!(s, StatusCode::MULTI_STATUS);
    assert_eq!(b["results"][0]["properties"]["company"], "A Inc");

    // The server holds exactly the expected records.
    let mut emails: Vec<String> = sb
        .state()
        .records("hubspot", "contacts")
        .iter()
        .map(|c| c["properties"]["email"].as_str().unwrap().to_string())
        .collect();
    emails.sort();
    assert_eq!(
        emails,
        [
            "a@example.com",
            "b@example.com",
            "c@example.com",
            "e@example.com"
        ]
    );
}

#[tokio::test]
async fn batch_results_are_not_in_input_order_by_default() {
    let (_sb, c, base) = start(SandboxConfig {
        seed: 3,
        ..SandboxConfig::default()
    })
    .await;
    let inputs: Vec<Value> = (0..20)
        .map(|i| json!({"id": format!("p{i:02}@example.com"), "idProperty": "email", "properties": {}}))
        .collect();
    let (s, b) = post(
        &c,
        &format!("{base}/crm/v3/objects/contacts/batch/upsert"),
        json!({ "inputs": inputs }),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let got: Vec<&str> = b["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["properties"]["email"].as_str().unwrap())
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    assert_ne!(got, sorted, "results come back shuffled");
    assert_eq!(sorted.len(), 20);
}

/// Reference "More facts", HubSpot custom properties: a fresh portal has HubSpot's default
/// contact properties only.
#[tokio::test]
async fn properties_endpoint() {
    let (_sb, c, base) = start(SandboxConfig::default()).await;
    let (s, b) = get(&c, &format!("{base}/crm/v3/properties/contacts")).await;
    assert_eq!(s, StatusCode::OK);
    let results = b["results"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for want in [
        "email",
        "firstname",
        "lastname",
        "company",
        "phone",
        "mobilephone",
        "jobtitle",
        "website",
        "address",
        "city",
        "state",
        "zip",
        "country",
        "industry",
        "lifecyclestage",
        "hs_lead_status",
        "numemployees",
    ] {
        assert!(names.contains(&want), "{want}");
    }
    for custom in [
        "lead_owner_team",
        "lead_source",
        "tags",
        "form_submitted_at",
    ] {
        assert!(
            !names.contains(&custom),
            "{custom} is not a default property"
        );
    }
    assert!(results.iter().all(|p| p["hubspotDefined"] == true));
    let stage = results
        .iter()
        .find(|p| p["name"] == "lifecyclestage")
        .unwrap();
    assert_eq!(stage["type"], "enumeration");
    assert_eq!(stage["options"][1]["value"], "lead");
    let id = results
        .iter()
        .find(|p| p["name"] == "hs_object_id")
        .unwrap();
    assert_eq!(id["modificationMetadata"]["readOnlyValue"], true);
}

/// Reference "More facts", HubSpot custom properties: a property must exist before a record
/// carries it (`PROPERTY_DOESNT_EXIST`, for the whole batch); `POST /crm/v3/properties/contacts`
/// creates one (201), an existing name is 409.
#[tokio::test]
async fn custom_properties_must_be_created_first() {
    let (_sb, c, base) = start(SandboxConfig::default()).await;
    let contacts = format!("{base}/crm/v3/objects/contacts");
    let props = format!("{base}/crm/v3/properties/contacts");
    let lead = json!({"properties": {"email": "ada@example.com", "lead_source": "webinar"}});
    let (s, b) = post(&c, &contacts, lead.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["category"], "VALIDATION_ERROR");
    assert_eq!(b["errors"][0]["code"], "PROPERTY_DOESNT_EXIST");
    assert_eq!(b["errors"][0]["context"]["propertyName"][0], "lead_source");
    // In a batch, one unknown property refuses the whole request.
    let upsert = json!({"inputs": [
        {"id": "a@example.com", "idProperty": "email", "properties": {"firstname": "A"}},
        {"id": "b@example.com", "idProperty": "email", "properties": {"lead_source": "x"}},
    ]});
    let (s, b) = post(&c, &format!("{contacts}/batch/upsert"), upsert.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["errors"][0]["code"], "PROPERTY_DOESNT_EXIST");
    let (s, b) = post(
        &c,
        &format!("{contacts}/batch/read"),
        json!({"inputs": [{"id": "a@example.com"}], "idProperty": "email"}),
    )
    .await;
    assert_eq!(
        (s, b["results"].as_array().map(Vec::len)),
        (StatusCode::MULTI_STATUS, Some(0))
    );

    let definition = json!({"name": "lead_source", "label": "Lead source", "type": "string", "fieldType": "text", "groupName": "contactinformation"});
    let (s, created) = post(&c, &props, definition.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "lead_source");
    assert_eq!(created["type"], "string");
    assert_eq!(created["fieldType"], "text");
    assert_eq!(created["groupName"], "contactinformation");
    assert!(created.get("hubspotDefined").is_none());
    assert_eq!(created["modificationMetadata"]["readOnlyValue"], false);
    let (s, got) = get(&c, &format!("{props}/lead_source")).await;
    assert_eq!((s, &got["name"]), (StatusCode::OK, &json!("lead_source")));
    let (s, b) = post(&c, &props, definition).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(b["status"], "error");
    for bad in [
        json!({"name": "n1", "label": "N", "type": "string", "fieldType": "select", "groupName": "g"}),
        json!({"name": "n2", "label": "N", "type": "text", "fieldType": "text", "groupName": "g"}),
        json!({"name": "n3", "type": "string", "fieldType": "text", "groupName": "g"}),
    ] {
        let (s, b) = post(&c, &props, bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(b["category"], "VALIDATION_ERROR");
    }
    let (s, b) = post(&c, &props, json!({"name": "seen_at", "label": "Seen", "type": "datetime", "fieldType": "date", "groupName": "g"})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    // Now records may carry them, with the type's checks.
    let (s, b) = post(&c, &contacts, lead).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["properties"]["lead_source"], "webinar");
    let (s, b) = post(
        &c,
        &contacts,
        json!({"properties": {"email": "x@example.com", "seen_at": "soon"}}),
    )
    .await;
    assert_eq!(
        (s, &b["errors"][0]["code"]),
        (StatusCode::BAD_REQUEST, &json!("INVALID_DATE"))
    );
    let (s, b) = post(&c, &format!("{contacts}/batch/upsert"), upsert).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn oauth_refresh_expiry_and_bad_tokens() {
    let (sb, c, base) = start(SandboxConfig::default()).await;
    let token_url = format!("{base}/oauth/v1/token");
    let refresh = || {
        c.post(&token_url).form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "sandbox-hubspot-client"),
            ("client_secret", "sandbox-hubspot-secret"),
            ("refresh_token", "sandbox-hubspot-refresh"),
        ])
    };
    let resp = refresh().send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let tok: Value = resp.json().await.unwrap();
    assert_eq!(tok["token_type"], "bearer");
    assert_eq!(tok["expires_in"], 1800);
    assert_eq!(tok["refresh_token"], "sandbox-hubspot-refresh");
    let access = tok["access_token"].as_str().unwrap().to_string();

    let contacts = format!("{base}/crm/v3/objects/contacts");
    let resp = c.get(&contacts).bearer_auth(&access).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // OAuth apps get no daily headers.
    assert!(resp.headers().get("x-hubspot-ratelimit-daily").is_none());
    assert!(resp.headers().get("x-hubspot-ratelimit-max").is_some());

    assert_eq!(sb.expire_tokens(), 1);
    let resp = c.get(&contacts).bearer_auth(&access).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["category"], "EXPIRED_AUTHENTICATION");
    // The private-app token does not expire.
    let resp = c.get(&contacts).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let tok: Value = refresh().send().await.unwrap().json().await.unwrap();
    let fresh = tok["access_token"].as_str().unwrap();
    assert_ne!(fresh, access);
    let resp = c.get(&contacts).bearer_auth(fresh).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let resp = c
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "sandbox-hubspot-client"),
            ("client_secret", "sandbox-hubspot-secret"),
            ("refresh_token", "stale"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["status"], "BAD_REFRESH_TOKEN");

    for auth in [Some("who-knows"), None] {
        let mut req = c.get(&contacts);
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "error");
        assert_eq!(body["category"], "INVALID_AUTHENTICATION");
    }
}

#[tokio::test]
async fn ten_second_rolling_limit() {
    let (sb, c, base) = start(SandboxConfig {
        hubspot_rate_limit: 5,
        ..SandboxConfig::default()
    })
    .await;
    let url = format!("{base}/crm/v3/objects/contacts");
    for i in 0..5 {
        let (s, h, _) = send(&c, reqwest::Method::GET, &url, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["x-hubspot-ratelimit-max"], "5");
        assert_eq!(
            h["x-hubspot-ratelimit-remaining"],
            (4 - i).to_string().as_str()
        );
        assert_eq!(h["x-hubspot-ratelimit-interval-milliseconds"], "10000");
        assert_eq!(h["x-hubspot-ratelimit-daily"], "250000");
    }
    let (s, h, body) = send(&c, reqwest::Method::GET, &url, None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["x-hubspot-ratelimit-remaining"], "0");
    assert_eq!(body["errorType"], "RATE_LIMIT");
    assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
    insta::assert_json_snapshot!("hubspot_429", redacted(&body));

    let state = sb.state();
    let hs = state.provider("hubspot").unwrap();
    assert_eq!(hs.rate_limited, 1);
    assert_eq!(hs.count_status(429), 1);
    assert_eq!(hs.max_requests_in_window(Duration::from_secs(10), None), 6);
}

#[tokio::test]
async fn search_has_its_own_per_second_limit() {
    let (_sb, c, base) = start(SandboxConfig::default()).await;
    let url = format!("{base}/crm/v3/objects/contacts/search");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (s, h, body) = send(&c, reqwest::Method::POST, &url, Some(json!({}))).await;
        // Search responses carry no rate-limit headers.
        assert!(h.get("x-hubspot-ratelimit-max").is_none());
        if s == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body["policyName"], "SECONDLY");
        }
        statuses.push(s.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429]);
}

#[tokio::test]
async fn concurrent_bursts_get_exactly_the_limit() {
    let (sb, c, base) = start(SandboxConfig {
        hubspot_rate_limit: 10,
        ..SandboxConfig::default()
    })
    .await;
    let url = format!("{base}/crm/v3/objects/contacts");
    let calls = (0..25).map(|_| {
        let c = c.clone();
        let url = url.clone();
        async move {
            c.get(&url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(calls).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 15);
    let hs = &sb.state().providers["hubspot"];
    assert_eq!(hs.rate_limited, 15);
    assert_eq!(hs.max_requests_in_window(Duration::from_secs(10), None), 25);
}
