//! The in-house CRM fakes: the user-sync endpoint and the 5-entity project CRM API.

use reqwest::{Client, StatusCode};
use rulebridge_sandbox::{self as sandbox, Sandbox, SandboxConfig};
use serde_json::{Value, json};

async fn start(config: SandboxConfig) -> (Sandbox, Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    (sandbox::start(config).await.unwrap(), Client::new())
}

fn sync_body(users: Value) -> Value {
    json!({
        "operation": "user_sync",
        "tenant": {"id": "tenant-1", "name": "Acme"},
        "users": users,
        "metadata": {"syncType": "full", "syncedBy": "wrapper-user-sync-service"},
    })
}

async fn sync(
    c: &Client,
    sb: &Sandbox,
    body: &Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    sync_as(c, sb, "tenant-1", body).await
}

async fn sync_as(
    c: &Client,
    sb: &Sandbox,
    tenant: &str,
    body: &Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let resp = c
        .post(format!(
            "{}/api/internal/sync/users",
            sb.base_url("usersync")
        ))
        .header("X-Internal-API-Key", "sandbox-internal-key")
        .header("X-Tenant-ID", tenant)
        .header("X-Sync-Source", "wrapper")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn user_sync_creates_updates_and_reports() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let (s, _, first) = sync(
        &c,
        &sb,
        &sync_body(json!([
            {"id": "u1", "email": "ada@acme.com", "name": "Ada", "department": "R&D", "isActive": true, "roles": ["user"]},
            {"id": "u2", "email": "grace@acme.com", "name": "Grace", "title": "x".repeat(101)}
        ])),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let mut redacted = first.clone();
    redacted["metadata"]["syncedAt"] = json!("[redacted]");
    insta::assert_json_snapshot!("usersync_first", redacted);
    assert_eq!(first["results"][0]["status"], "created");
    assert_eq!(first["results"][1]["status"], "failed");
    assert_eq!(first["metadata"]["successful"], 1);
    assert_eq!(first["metadata"]["failed"], 1);

    // An update changes name, isActive, roles and permissions only.
    let (_, _, second) = sync(
        &c,
        &sb,
        &sync_body(json!([{"id": "u1", "email": "ada@acme.com", "name": "Ada L.", "department": "Sales", "isActive": false}])),
    )
    .await;
    assert_eq!(second["results"][0]["status"], "updated");
    assert_eq!(
        second["results"][0]["crmUserId"],
        first["results"][0]["crmUserId"]
    );
    let state = sb.state();
    let users = state.records("usersync", "users");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["name"], "Ada L.");
    assert_eq!(users[0]["isActive"], false);
    assert_eq!(
        users[0]["department"], "R&D",
        "the reference handler does not update department"
    );
    // E-mails match exactly: another case is another user.
    let (_, _, third) = sync(
        &c,
        &sb,
        &sync_body(json!([{"email": "ADA@acme.com", "name": "Ada"}])),
    )
    .await;
    assert_eq!(third["results"][0]["status"], "created");
}

fn tenant_body(tenant: &str, users: Value) -> Value {
    let mut body = sync_body(users);
    body["tenant"] = json!({"id": tenant, "name": format!("{tenant} Inc")});
    body
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

/// Seed "Headers" / "Request Body": one request is one tenant's users.
#[tokio::test]
async fn user_sync_keeps_each_tenants_users_under_it() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let (s, _, body) = sync_as(
        &c,
        &sb,
        "tenant-a",
        &tenant_body(
            "tenant-b",
            json!([{"id": "u1", "email": "ada@acme.com", "name": "Ada"}]),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["success"], false);
    assert_eq!(
        body["error"],
        "Tenant mismatch: X-Tenant-ID does not match tenant.id"
    );
    assert!(body["timestamp"].is_string() && body["details"].is_string());
    assert!(sb.state().records("usersync", "users").is_empty());

    let one = |tenant: &'static str, id: &'static str, email: &'static str| {
        let body = tenant_body(tenant, json!([{"id": id, "email": email, "name": id}]));
        let (c, sb) = (&c, &sb);
        async move { sync_as(c, sb, tenant, &body).await.2 }
    };
    let a = one("tenant-a", "u1", "ada@acme.com").await;
    let b = one("tenant-b", "u2", "bob@acme.com").await;
    assert_eq!(
        a["tenant"],
        json!({"id": "tenant-a", "name": "tenant-a Inc"})
    );
    assert_eq!(b["results"][0]["status"], "created");
    // The seed's per-user result shape.
    assert_eq!(
        keys(&a["results"][0]),
        ["crmUserId", "message", "status", "userId"]
    );
    // Another tenant's e-mail is not this tenant's user; the users table keeps e-mails unique.
    let clash = one("tenant-b", "u3", "ada@acme.com").await;
    assert_eq!(clash["results"][0]["status"], "failed");
    assert_eq!(keys(&clash["results"][0]), ["error", "status", "userId"]);
    assert_eq!(clash["metadata"]["failed"], 1);
    let again = one("tenant-a", "u1", "ada@acme.com").await;
    assert_eq!(again["results"][0]["status"], "updated");

    let state = sb.state();
    let users = state.records("usersync", "users");
    let tenants: Vec<(&str, &str)> = users
        .iter()
        .map(|u| {
            (
                u["email"].as_str().unwrap(),
                u["tenantId"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tenants,
        [("ada@acme.com", "tenant-a"), ("bob@acme.com", "tenant-b")]
    );
}

#[tokio::test]
async fn user_sync_rejections() {
    let (sb, c) = start(SandboxConfig {
        usersync_rate_limit: 3,
        ..SandboxConfig::default()
    })
    .await;
    let url = format!("{}/api/internal/sync/users", sb.base_url("usersync"));
    let resp = c
        .post(&url)
        .header("X-Internal-API-Key", "wrong")
        .json(&sync_body(json!([])))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["error"], "Unauthorized - Invalid API key");

    let mut no_name = sync_body(json!([]));
    no_name["tenant"] = json!({"id": "tenant-1"});
    let (s, _, body) = sync(&c, &sb, &no_name).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "Invalid request format");
    assert_eq!(body["details"][0]["message"], "\"tenant.name\" is required");
    let (s, _, body) = sync(
        &c,
        &sb,
        &sync_body(json!([{"email": "not-an-email", "name": "X"}])),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["details"][0]["message"],
        "\"users[0].email\" must be a valid email"
    );

    // The fourth request in the window is refused (express-rate-limit, per address, counted
    // before the key is checked).
    let (s, h, body) = sync(&c, &sb, &sync_body(json!([]))).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(h.contains_key("retry-after"));
    assert_eq!(h["x-ratelimit-limit"], "3");
    assert_eq!(h["x-ratelimit-remaining"], "0");
    assert_eq!(body, "Too many sync requests, please try again later");
}

// ---------------------------------------------------------------------------------------------
// task CRM

struct Crm {
    c: Client,
    api: String,
    token: String,
}

async fn crm(config: SandboxConfig) -> (Sandbox, Crm) {
    let (sb, c) = start(config).await;
    let resp = c
        .post(format!("{}/oauth/token", sb.base_url("taskcrm")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let tok: Value = resp.json().await.unwrap();
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["expires_in"], 1800);
    let api = sb.kit_base_url("task_crm").unwrap();
    let token = tok["access_token"].as_str().unwrap().to_string();
    (sb, Crm { c, api, token })
}

impl Crm {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .c
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, b) = self.call(reqwest::Method::POST, path, Some(body)).await;
        (s, b)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, b) = self.call(reqwest::Method::GET, path, None).await;
        (s, b)
    }
}

#[tokio::test]
async fn task_crm_entities_and_sub_resources() {
    let (sb, crm) = crm(SandboxConfig::default()).await;
    let (s, client) = crm
        .post(
            "/clients",
            json!({"name": "Acme", "email": "ops@acme.com", "external_id": "hub-1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let client_id = client["id"].as_u64().unwrap();
    let (s, project) = crm
        .post("/projects", json!({"name": "Launch", "client_id": client_id, "priority": "high", "external_id": "p-1"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(project["status"], "planning", "defaults are filled in");
    let pid = project["id"].as_u64().unwrap();
    let (_, user) = crm
        .post("/users", json!({"email": "ada@acme.com", "name": "Ada"}))
        .await;
    let uid = user["id"].as_u64().unwrap();
    let (s, task) = crm
        .post(
            "/tasks",
            json!({"title": "Ship", "project_id": pid, "due_date": "2025-10-15"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let tid = task["id"].as_u64().unwrap();
    let (s, _) = crm
        .post("/comments", json!({"content": "Kick-off done", "entity_type": "task", "entity_id": tid, "author_id": uid}))
        .await;
    assert_eq!(s, StatusCode::CREATED);

    let (s, _, assigned) = crm
        .call(
            reqwest::Method::PATCH,
            &format!("/tasks/{tid}/assign"),
            Some(json!({"assignee_id": uid})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(assigned["assignee_id"], uid);
    let (_, _, moved) = crm
        .call(
            reqwest::Method::PATCH,
            &format!("/tasks/{tid}/status"),
            Some(json!({"status": "in_progress"})),
        )
        .await;
    assert_eq!(moved["status"], "in_progress");
    let (s, _, bad) = crm
        .call(
            reqwest::Method::PATCH,
            &format!("/tasks/{tid}/status"),
            Some(json!({"status": "finished"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["details"][0]["field"], "status");

    let (_, tasks) = crm.get(&format!("/projects/{pid}/tasks")).await;
    assert_eq!(tasks["total"], 1);
    let (_, projects) = crm.get(&format!("/users/{uid}/projects")).await;
    assert_eq!(projects["data"][0]["id"], pid);
    let (_, projects) = crm.get(&format!("/clients/{client_id}/projects")).await;
    assert_eq!(projects["total"], 1);
    let (_, comments) = crm
        .get(&format!("/comments?entity_type=task&entity_id={tid}"))
        .await;
    assert_eq!(comments["total"], 1);

    // Lists page and filter.
    for i in 0..4 {
        crm.post(
            "/projects",
            json!({"name": format!("P{i}"), "status": "active"}),
        )
        .await;
    }
    let (_, page) = crm.get("/projects?status=active&page=2&per_page=3").await;
    assert_eq!(page["total"], 4);
    assert_eq!(page["page"], 2);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);

    // PUT updates, DELETE removes.
    let (s, _, put) = crm
        .call(
            reqwest::Method::PUT,
            &format!("/projects/{pid}"),
            Some(json!({"status": "completed"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(put["status"], "completed");
    assert_eq!(put["name"], "Launch");
    let (s, _, _) = crm.call(reqwest::Method::DELETE, "/comments/1", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, gone) = crm.get("/comments/1").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(gone["error"], "not_found");
    assert!(sb.state().records("taskcrm", "comments").is_empty());
    assert_eq!(sb.state().records("taskcrm", "projects").len(), 5);
}

#[tokio::test]
async fn task_crm_errors_auth_and_limits() {
    let (sb, crm) = crm(SandboxConfig {
        taskcrm_rate_limit: 8,
        ..SandboxConfig::default()
    })
    .await;
    let (_, first) = crm
        .post("/users", json!({"email": "pat@acme.com", "name": "Pat"}))
        .await;
    let (s, dup) = crm
        .post("/users", json!({"email": "PAT@acme.com", "name": "Pat 2"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(dup["field"], "email");
    assert_eq!(dup["existing_id"], first["id"]);
    insta::assert_json_snapshot!("taskcrm_conflict", dup);
    let (s, bad) = crm
        .post(
            "/tasks",
            json!({"project_id": 99, "priority": "urgent", "colour": "red"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    insta::assert_json_snapshot!("taskcrm_validation", bad);
    let (s, _) = crm.post("/widgets", json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // 4 calls so far; 4 more fit, the 9th is refused with Retry-After.
    for _ in 0..4 {
        let (s, _, _) = crm.call(reqwest::Method::GET, "/users", None).await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, h, body) = crm.call(reqwest::Method::GET, "/users", None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(body["error"], "rate_limited");

    // No token, then an expired one.
    let resp = crm
        .c
        .get(format!("{}/users", crm.api))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    sb.expire_tokens();
    let (s, _, body) = crm.call(reqwest::Method::GET, "/users", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "token_expired");
    let resp = crm
        .c
        .post(format!("{}/oauth/token", sb.base_url("taskcrm")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}
