//! `rulebridge serve` over real HTTP: the binary on 127.0.0.1, a reqwest client, a real state
//! file, and the shipped `user_sync` flow writing an SQLite `users` table.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
    stderr: Option<std::process::ChildStderr>,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        Server::start_with(extra, &[])
    }

    fn start_with(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temp dir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut command = Command::new(env!("CARGO_BIN_EXE_rulebridge"));
        command
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("RULEBRIDGE_DATABASE_USERS_DB", dir.path().join("users.db"))
            .env_remove("RULEBRIDGE_STATE")
            .env_remove("INTERNAL_API_KEY")
            .envs(env.iter().copied())
            .args(["serve", "--listen", "127.0.0.1:0", "--rules"])
            .arg(root.join("rules"));
        if !extra.contains(&"--state") {
            command.arg("--state").arg(dir.path().join("state.db"));
        }
        let mut child = command
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rulebridge serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("a first line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let mut err = String::new();
                if let Some(e) = child.stderr.as_mut() {
                    let _ = std::io::Read::read_to_string(e, &mut err);
                }
                panic!("unexpected first line `{line}`; stderr: {err}")
            })
            .to_string();
        let stderr = child.stderr.take();
        Server {
            child,
            url,
            _dir: dir,
            stderr,
        }
    }

    fn dir(&self) -> PathBuf {
        self._dir.path().to_path_buf()
    }

    /// SIGTERM, then the exit status and what the server wrote on stderr.
    fn terminate(&mut self) -> (std::process::ExitStatus, String) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(ok.success());
        let status = self.child.wait().expect("server exits");
        let mut err = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        (status, err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn post(url: &str, tenant: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).json(body);
    if let Some(t) = tenant {
        req = req.header("X-Tenant-ID", t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(url: &str, tenant: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = tenant {
        req = req.header("X-Tenant-ID", t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn statuses(body: &Value) -> Vec<&str> {
    body["outcomes"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o["status"].as_str()).collect())
        .unwrap_or_default()
}

fn users() -> Value {
    json!([
        {"email": "Ada@Company.com", "name": "Ada", "tenantId": "t1"},
        {"email": "not-an-email", "name": "Bad", "tenantId": "t1"},
        {"email": "grace@company.com", "name": "Grace", "tenantId": "t1", "roles": ["admin"]}
    ])
}

#[test]
fn records_go_through_the_store_in_input_order() {
    let mut server = Server::start(&[]);
    let base = server.url.clone();
    let rt = runtime();
    rt.block_on(async {
        let (code, health) = get(&format!("{base}/healthz"), None).await;
        assert_eq!((code, health), (200, json!({"status": "ok"})));

        let records = format!("{base}/v1/flows/user_sync/records");
        let (code, first) = post(&records, None, &users()).await;
        assert_eq!(code, 200, "{first}");
        assert_eq!(statuses(&first), ["created", "failed", "created"]);
        let indexes: Vec<u64> = first["outcomes"]
            .as_array()
            .map(|a| a.iter().filter_map(|o| o["index"].as_u64()).collect())
            .unwrap_or_default();
        assert_eq!(indexes, [0, 1, 2]);
        assert_eq!(first["outcomes"][1]["error"]["kind"], "mapping");
        let run_id = first["run"].as_str().expect("a run id").to_string();

        // The same batch again: the ledger knows both rows (`last_synced_at` is `now()`, so
        // a payload differs from the last one unless within the same millisecond).
        let (_, again) = post(&records, None, &users()).await;
        let st = statuses(&again);
        assert_eq!(st.len(), 3);
        assert!(matches!(st[0], "updated" | "unchanged"), "{again}");
        assert_eq!(st[1], "failed");
        assert!(matches!(st[2], "updated" | "unchanged"), "{again}");
        assert_eq!(again["outcomes"][0]["target_id"], "1");
        assert_eq!(again["outcomes"][2]["target_id"], "2");

        // One record on its own (not an array), changed, under each duplicate policy.
        let ada = json!({"email": "ada@company.com", "name": "Ada Lovelace", "tenantId": "t1"});
        let (_, skipped) = post(&format!("{records}?duplicatePolicy=skip"), None, &ada).await;
        assert_eq!(statuses(&skipped), ["skipped"]);
        let (_, updated) = post(&records, None, &ada).await;
        assert_eq!(statuses(&updated), ["updated"]);
        assert_eq!(updated["outcomes"][0]["target_id"], "1");

        // A dry run answers with the exact payload and writes nothing.
        let lin = json!({"email": " Lin@Company.com", "name": " Lin ", "tenantId": "t2"});
        let (_, dry) = post(&format!("{records}?dry_run=true"), None, &lin).await;
        assert_eq!(dry["run"], Value::Null);
        assert_eq!(statuses(&dry), ["dry_run"]);
        assert_eq!(dry["outcomes"][0]["payload"]["email"], "lin@company.com");
        assert_eq!(dry["outcomes"][0]["payload"]["name"], "Lin");
        assert_eq!(dry["outcomes"][0]["payload"]["synced_from"], "wrapper");

        // The run, the changelog and the dead letters.
        let (code, run) = get(&format!("{base}/v1/runs/{run_id}"), None).await;
        assert_eq!(code, 200, "{run}");
        assert_eq!(run["counters"]["created"], 2);
        assert_eq!(run["counters"]["failed"], 1);
        assert_eq!(run["status"], "done");
        let (_, log) = get(&format!("{base}/v1/log?run={run_id}"), None).await;
        assert_eq!(log["changes"].as_array().map(Vec::len), Some(3));
        let (_, failed) = get(&format!("{base}/v1/log?status=failed&flow=user_sync"), None).await;
        assert_eq!(failed["changes"].as_array().map(Vec::len), Some(2));
        let (_, dlq) = get(&format!("{base}/v1/dlq?flow=user_sync"), None).await;
        let letters = dlq["dead_letters"].as_array().cloned().unwrap_or_default();
        assert_eq!(letters.len(), 1, "{dlq}");
        assert_eq!(letters[0]["kind"], "mapping");

        // Another tenant sees none of it, and has a ledger of its own.
        let (code, _) = get(&format!("{base}/v1/runs/{run_id}"), Some("acme")).await;
        assert_eq!(code, 404);
        let (_, log) = get(&format!("{base}/v1/log"), Some("acme")).await;
        assert_eq!(log["changes"], json!([]));
        let (_, dlq) = get(&format!("{base}/v1/dlq"), Some("acme")).await;
        assert_eq!(dlq["dead_letters"], json!([]));
    });
    // What the server wrote is in the table.
    let users_db = server.dir().join("users.db");
    assert!(users_db.is_file());
    let (status, err) = server.terminate();
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("stopped"), "{err}");
}

#[test]
fn invalid_requests_are_400_with_the_fields() {
    let server = Server::start(&["--max-body", "2000"]);
    let base = server.url.clone();
    let rt = runtime();
    rt.block_on(async {
        let records = format!("{base}/v1/flows/user_sync/records");
        let (code, body) = post(&records, None, &json!([{"email": "a@b.co"}, 3])).await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(body["details"][0]["field"], "[1]");

        let one = json!({"email": "a@b.co", "name": "A", "tenantId": "t"});
        let (code, body) = post(
            &format!("{records}?duplicatePolicy=merge&dry_run=maybe"),
            None,
            &one,
        )
        .await;
        assert_eq!(code, 400, "{body}");
        let mut fields: Vec<&str> = body["details"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d["field"].as_str()).collect())
            .unwrap_or_default();
        fields.sort_unstable();
        assert_eq!(fields, ["dry_run", "duplicatePolicy"]);

        let (code, body) = post(&format!("{base}/v1/flows/no_such_flow/records"), None, &one).await;
        assert_eq!(code, 404, "{body}");

        let resp = reqwest::Client::new()
            .post(&records)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 400);

        // Larger than --max-body.
        let big: Vec<Value> = (0..100)
            .map(|i| json!({"email": format!("u{i}@example.com"), "name": "U", "tenantId": "t"}))
            .collect();
        let (code, _) = post(&records, None, &Value::Array(big)).await;
        assert_eq!(code, 413);

        let (code, body) = get(&format!("{base}/v1/log?status=lost&limit=0"), None).await;
        assert_eq!(code, 400);
        assert_eq!(body["details"].as_array().map(Vec::len), Some(2));
    });
}

#[test]
fn metrics_and_the_openapi_document_describe_every_route() {
    // A master key: the integrations status reads the credential store.
    let server = Server::start_with(
        &[],
        &[(
            "RULEBRIDGE_MASTER_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )],
    );
    let base = server.url.clone();
    let rt = runtime();
    rt.block_on(async {
        let one = json!({"email": "m@company.com", "name": "M", "tenantId": "t"});
        let bad = json!({"email": "nope", "name": "M", "tenantId": "t"});
        let records = format!("{base}/v1/flows/user_sync/records");
        let (_, sent) = post(&records, None, &json!([one, bad])).await;
        let run = sent["run"].as_str().unwrap_or_default().to_string();
        // Every route answers (none is the fallback's "no such route").
        let routes: Vec<(&str, String)> = vec![
            ("get", "/healthz".into()),
            ("get", "/metrics".into()),
            ("get", "/openapi.json".into()),
            ("post", "/v1/flows/{flow}/records".into()),
            ("get", "/v1/runs/{id}".into()),
            ("get", "/v1/log".into()),
            ("get", "/v1/dlq".into()),
            ("get", "/v1/oauth/{provider}/start".into()),
            ("get", "/v1/oauth/{provider}/callback".into()),
            ("post", "/v1/oauth/{provider}/callback".into()),
            ("delete", "/v1/integrations/{provider}".into()),
            ("get", "/v1/integrations/status".into()),
            // Declared in rules/endpoints/.
            ("post", "/api/internal/sync/users".into()),
        ];
        let (code, doc) = get(&format!("{base}/openapi.json"), None).await;
        assert_eq!(code, 200);
        assert_eq!(doc["openapi"], "3.1.0");
        for (method, path) in &routes {
            assert!(
                doc["paths"][path.as_str()][*method].is_object(),
                "{method} {path} is not in /openapi.json"
            );
            let concrete = path.replace("{flow}", "user_sync").replace("{id}", &run);
            // The OAuth routes answer in tests/serve_oauth.rs.
            if *method == "get" && !path.contains("{provider}") {
                let (code, body) = get(&format!("{base}{concrete}"), None).await;
                assert_eq!(code, 200, "{path}: {body}");
            }
        }
        let paths = doc["paths"].as_object().map(|p| p.len());
        let served: std::collections::BTreeSet<&str> =
            routes.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(paths, Some(served.len()), "a documented path that is not served");
        let (code, _) = get(&format!("{base}/v1/nothing"), None).await;
        assert_eq!(code, 404);

        let (code, text) = get(&format!("{base}/metrics"), None).await;
        assert_eq!(code, 200);
        let text = text.as_str().unwrap_or_default().to_string();
        for want in [
            "rulebridge_records_total{flow=\"user_sync\",status=\"created\"} 1",
            "rulebridge_records_total{flow=\"user_sync\",status=\"failed\"} 1",
            "rulebridge_record_errors_total{flow=\"user_sync\",kind=\"mapping\"} 1",
            "rulebridge_http_requests_total{method=\"POST\",route=\"/v1/flows/{flow}/records\",status=\"200\"} 1",
            "rulebridge_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"} 1",
        ] {
            assert!(text.contains(want), "no `{want}` in\n{text}");
        }
    });
}

/// SIGTERM while a batch is in flight: the batch is answered in full and recorded, then the
/// server exits.
#[test]
fn shutdown_drains_the_records_in_flight() {
    let mut server = Server::start(&[]);
    let base = server.url.clone();
    let state = server.dir().join("state.db");
    let batch: Vec<Value> = (0..400)
        .map(|i| json!({"email": format!("u{i}@example.com"), "name": format!("U {i}"), "tenantId": "t"}))
        .collect();
    let client = std::thread::spawn(move || {
        runtime().block_on(post(
            &format!("{base}/v1/flows/user_sync/records"),
            None,
            &Value::Array(batch),
        ))
    });
    std::thread::sleep(std::time::Duration::from_millis(150));
    let (status, err) = server.terminate();
    assert!(status.success(), "{status:?}: {err}");
    let (code, body) = client.join().expect("client");
    assert_eq!(code, 200, "{body}");
    assert_eq!(statuses(&body).len(), 400);
    assert!(statuses(&body).iter().all(|s| *s == "created"), "{body}");
    // The store holds the run, done, with all 400.
    let rt = runtime();
    let runs = rt.block_on(async {
        use rulebridge::state::Store;
        let store = rulebridge::state::SqlStore::open(&state.display().to_string())
            .await
            .expect("store");
        store.runs(&Default::default()).await.expect("runs")
    });
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].counters.created, 400);
    assert_eq!(runs[0].status.as_str(), "done");
}

/// `--sandbox`: the kits point at the built-in fakes, with their credentials; a lead becomes
/// a HubSpot contact there, and the duplicate policy of each request applies.
#[test]
fn the_sandbox_stands_in_for_the_vendors() {
    let server = Server::start(&["--sandbox"]);
    let base = server.url.clone();
    let rt = runtime();
    rt.block_on(async {
        let records = format!("{base}/v1/flows/lead_to_hubspot/records");
        let lead = json!({"email": "ada@example.com", "name": "Ada Lovelace", "score": 91, "country": "us"});
        let (code, first) = post(&records, None, &lead).await;
        assert_eq!(code, 200, "{first}");
        assert_eq!(statuses(&first), ["created"], "{first}");
        let id = first["outcomes"][0]["target_id"].clone();
        let changed = json!({"email": "ada@example.com", "name": "Ada King Lovelace", "score": 91, "country": "us"});
        let (_, updated) = post(&records, None, &changed).await;
        assert_eq!(statuses(&updated), ["updated"], "{updated}");
        assert_eq!(updated["outcomes"][0]["target_id"], id);
        // HubSpot keeps e-mails unique: `create_new` ends as an update of the one contact.
        let again = json!({"email": "ada@example.com", "name": "Ada K. Lovelace", "score": 91, "country": "us"});
        let (_, skipped) = post(&format!("{records}?duplicatePolicy=skip"), None, &again).await;
        assert_eq!(statuses(&skipped), ["skipped"], "{skipped}");
        assert_eq!(skipped["outcomes"][0]["target_id"], id);
        let (_, created) =
            post(&format!("{records}?duplicatePolicy=create_new"), None, &again).await;
        assert_eq!(statuses(&created), ["updated"], "{created}");
        assert_eq!(created["outcomes"][0]["target_id"], id);
    });
}

/// The state store on PostgreSQL (skipped without `RULEBRIDGE_TEST_POSTGRES`).
#[test]
fn the_store_can_be_postgres() {
    let Some(pg) = rulebridge::testing::postgres_server() else {
        eprintln!("RULEBRIDGE_TEST_POSTGRES is not set; skipped");
        return;
    };
    let rt = runtime();
    let url = rt
        .block_on(rulebridge::testing::postgres_database(&pg))
        .expect("a fresh database");
    let mut server = Server::start(&["--state", &url]);
    let base = server.url.clone();
    rt.block_on(async {
        let records = format!("{base}/v1/flows/user_sync/records");
        let (code, first) = post(&records, Some("pg-tenant"), &users()).await;
        assert_eq!(code, 200, "{first}");
        assert_eq!(statuses(&first), ["created", "failed", "created"]);
        let run = first["run"].as_str().unwrap_or_default().to_string();
        let (code, got) = get(&format!("{base}/v1/runs/{run}"), Some("pg-tenant")).await;
        assert_eq!(code, 200, "{got}");
        assert_eq!(got["tenant"], "pg-tenant");
        let (_, dlq) = get(&format!("{base}/v1/dlq"), Some("pg-tenant")).await;
        assert_eq!(dlq["dead_letters"].as_array().map(Vec::len), Some(1));
    });
    let (status, err) = server.terminate();
    assert!(status.success(), "{status:?}: {err}");
}

const KEY: &str = "your-super-secure-api-key-2024";

/// The seed's request, as its "Test Full Sync Request" sends it, with a second user.
fn wrapper_request() -> Value {
    json!({
        "operation": "user_sync",
        "tenant": { "id": "test-tenant", "name": "Test Company", "subdomain": "test", "kindeOrgId": "org_1" },
        "users": [
            { "id": "test-user", "kindeUserId": "kp_1", "email": "test@company.com", "name": "Test User",
              "isActive": true, "isAdmin": false, "department": "Sales", "title": "Sales Manager",
              "roles": ["user", "manager"], "permissions": ["read", "write"], "subscriptionTier": "premium" },
            { "id": "user-2", "email": "Second@Company.com", "name": "Second User", "isActive": true }
        ],
        "metadata": { "syncTime": "2025-08-19T10:00:00.000Z", "syncedBy": "wrapper-user-sync-service",
                      "syncType": "full", "applicationCode": "crm" }
    })
}

async fn sync(base: &str, key: Option<&str>, tenant: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/api/internal/sync/users"))
        .header("X-Sync-Source", "wrapper")
        .json(body);
    if let Some(k) = key {
        req = req.header("X-Internal-API-Key", k);
    }
    if let Some(t) = tenant {
        req = req.header("X-Tenant-ID", t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn result_words(body: &Value) -> Vec<(String, String)> {
    body["results"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["userId"].as_str().unwrap_or_default().to_string(),
                        r["status"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The wrapper user-sync endpoint of `rules/endpoints/`: the seed's request, its response
/// shape and words, 401 and 400 as it says, and `updated` the second time.
#[test]
fn the_wrapper_user_sync_endpoint_answers_as_the_guide_says() {
    let server = Server::start_with(&[], &[("INTERNAL_API_KEY", KEY)]);
    let base = server.url.clone();
    runtime().block_on(async {
        let (code, first) = sync(&base, Some(KEY), Some("test-tenant"), &wrapper_request()).await;
        assert_eq!(code, 200, "{first}");
        assert_eq!(first["success"], true);
        assert_eq!(
            result_words(&first),
            [
                ("test-user".into(), "created".into()),
                ("user-2".into(), "created".into())
            ]
        );
        assert_eq!(first["results"][0]["crmUserId"], "1");
        assert_eq!(first["results"][1]["crmUserId"], "2");
        assert!(first["results"][0].get("error").is_none(), "{first}");
        assert_eq!(
            first["tenant"],
            json!({"id": "test-tenant", "name": "Test Company"})
        );
        let meta = &first["metadata"];
        assert_eq!(
            (
                &meta["operation"],
                &meta["totalUsers"],
                &meta["successful"],
                &meta["failed"]
            ),
            (&json!("user_sync"), &json!(2), &json!(2), &json!(0))
        );
        assert!(meta["syncedAt"].is_string());

        // The same batch again: the users exist, `updated` (the store's `unchanged` is
        // reported in the guide's words).
        let (code, second) = sync(&base, Some(KEY), Some("test-tenant"), &wrapper_request()).await;
        assert_eq!(code, 200, "{second}");
        assert_eq!(
            result_words(&second),
            [
                ("test-user".into(), "updated".into()),
                ("user-2".into(), "updated".into())
            ]
        );
        assert_eq!(second["results"][1]["crmUserId"], "2");

        // A user the flow refuses is `failed` with its error; the others go on. An error
        // quoting the key shows it masked.
        let mut bad = wrapper_request();
        bad["users"][1]["email"] = json!(KEY);
        let (code, third) = sync(&base, Some(KEY), Some("test-tenant"), &bad).await;
        assert_eq!(code, 200, "{third}");
        assert_eq!(third["results"][1]["status"], "failed");
        let error = third["results"][1]["error"].as_str().unwrap_or_default();
        assert!(error.contains("not an email address"), "{third}");
        assert!(!third.to_string().contains(KEY), "{third}");
        assert_eq!(third["metadata"]["failed"], 1);
        assert_eq!(third["metadata"]["successful"], 1);

        // 401 without the key or with another one.
        for key in [None, Some("wrong-key")] {
            let (code, body) = sync(&base, key, Some("test-tenant"), &wrapper_request()).await;
            assert_eq!(code, 401, "{body}");
            assert_eq!(
                body,
                json!({"success": false, "error": "Unauthorized - Invalid API key"})
            );
        }

        // 400 for the accessibility test body and for a missing tenant header.
        let (code, body) = sync(&base, Some(KEY), Some("t"), &json!({"test": "connection"})).await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(body["success"], false);
        assert_eq!(body["error"], "Invalid request format");
        let fields: Vec<&str> = body["details"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d["field"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["operation", "tenant.id", "tenant.name", "users"]);
        let (code, body) = sync(&base, Some(KEY), None, &wrapper_request()).await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(body["details"][0]["field"], "X-Tenant-ID");

        // The records are in the store under the request's tenant: the two creates and the
        // failed user; the changelog keeps no row for users that were unchanged.
        let (_, log) = get(
            &format!("{base}/v1/log?flow=user_sync"),
            Some("test-tenant"),
        )
        .await;
        let actions: Vec<&str> = log["changes"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["action"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(actions, ["created", "created", "failed"], "{log}");
    });
}

/// Without its key the endpoint is unavailable, never open.
#[test]
fn an_endpoint_without_its_key_is_closed() {
    let server = Server::start(&[]);
    let base = server.url.clone();
    runtime().block_on(async {
        let (code, body) = sync(&base, Some(""), Some("t"), &wrapper_request()).await;
        assert_eq!(code, 503, "{body}");
        let (code, _) = sync(&base, None, Some("t"), &wrapper_request()).await;
        assert_eq!(code, 503);
    });
}
