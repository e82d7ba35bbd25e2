//! `rulebridge serve` over real HTTP: the binary on 127.0.0.1, a reqwest client, a real state
//! file, real API keys (`rulebridge keys create`), and the shipped `user_sync` flow writing an
//! SQLite `users` table.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
    stderr: Option<std::process::ChildStderr>,
    /// `--state` as given to the server.
    state: String,
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
        let state = match extra.iter().position(|a| *a == "--state") {
            Some(i) => extra.get(i + 1).map(|s| s.to_string()).unwrap_or_default(),
            None => {
                let file = dir.path().join("state.db").display().to_string();
                command.arg("--state").arg(&file);
                file
            }
        };
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
            state,
        }
    }

    /// A new API key for `tenant`, made with `rulebridge keys create` in the server's store
    /// while it runs.
    fn key(&self, tenant: &str) -> String {
        create_key(&self.state, tenant)
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

/// `rulebridge keys ARGS --state STATE`: (exit status, stdout, stderr).
fn keys_command(state: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rulebridge"))
        .env("NO_COLOR", "1")
        .env_remove("RULEBRIDGE_STATE")
        .arg("keys")
        .args(args)
        .args(["--state", state])
        .output()
        .expect("rulebridge keys runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The last word of the last line of `keys create`.
fn create_key(state: &str, tenant: &str) -> String {
    let (ok, out, err) = keys_command(state, &["create", "--tenant", tenant, "--name", "test"]);
    assert!(ok, "{err}");
    out.lines()
        .last()
        .and_then(|l| l.split_whitespace().last())
        .expect("a key")
        .to_string()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// POST with `Authorization: Bearer KEY` when `key`.
async fn post(url: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// GET with `Authorization: Bearer KEY` when `key`.
async fn get(url: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
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
    let (key, acme) = (server.key(""), server.key("acme"));
    let key = Some(key.as_str());
    let acme = Some(acme.as_str());
    let rt = runtime();
    rt.block_on(async {
        let (code, health) = get(&format!("{base}/healthz"), None).await;
        assert_eq!((code, health), (200, json!({"status": "ok"})));

        let records = format!("{base}/v1/flows/user_sync/records");
        let (code, first) = post(&records, key, &users()).await;
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
        let (_, again) = post(&records, key, &users()).await;
        let st = statuses(&again);
        assert_eq!(st.len(), 3);
        assert!(matches!(st[0], "updated" | "unchanged"), "{again}");
        assert_eq!(st[1], "failed");
        assert!(matches!(st[2], "updated" | "unchanged"), "{again}");
        assert_eq!(again["outcomes"][0]["target_id"], "1");
        assert_eq!(again["outcomes"][2]["target_id"], "2");

        // One record on its own (not an array), changed, under each duplicate policy.
        let ada = json!({"email": "ada@company.com", "name": "Ada Lovelace", "tenantId": "t1"});
        let (_, skipped) = post(&format!("{records}?duplicatePolicy=skip"), key, &ada).await;
        assert_eq!(statuses(&skipped), ["skipped"]);
        let (_, updated) = post(&records, key, &ada).await;
        assert_eq!(statuses(&updated), ["updated"]);
        assert_eq!(updated["outcomes"][0]["target_id"], "1");

        // A dry run answers with the exact payload and writes nothing.
        let lin = json!({"email": " Lin@Company.com", "name": " Lin ", "tenantId": "t2"});
        let (_, dry) = post(&format!("{records}?dry_run=true"), key, &lin).await;
        assert_eq!(dry["run"], Value::Null);
        assert_eq!(statuses(&dry), ["dry_run"]);
        assert_eq!(dry["outcomes"][0]["payload"]["email"], "lin@company.com");
        assert_eq!(dry["outcomes"][0]["payload"]["name"], "Lin");
        assert_eq!(dry["outcomes"][0]["payload"]["synced_from"], "wrapper");

        // The run, the changelog and the dead letters.
        let (code, run) = get(&format!("{base}/v1/runs/{run_id}"), key).await;
        assert_eq!(code, 200, "{run}");
        assert_eq!(run["counters"]["created"], 2);
        assert_eq!(run["counters"]["failed"], 1);
        assert_eq!(run["status"], "done");
        let (_, log) = get(&format!("{base}/v1/log?run={run_id}"), key).await;
        assert_eq!(log["changes"].as_array().map(Vec::len), Some(3));
        let (_, failed) = get(&format!("{base}/v1/log?status=failed&flow=user_sync"), key).await;
        assert_eq!(failed["changes"].as_array().map(Vec::len), Some(2));
        let (_, dlq) = get(&format!("{base}/v1/dlq?flow=user_sync"), key).await;
        let letters = dlq["dead_letters"].as_array().cloned().unwrap_or_default();
        assert_eq!(letters.len(), 1, "{dlq}");
        assert_eq!(letters[0]["kind"], "mapping");

        // Another tenant sees none of it, and has a ledger of its own.
        let (code, _) = get(&format!("{base}/v1/runs/{run_id}"), acme).await;
        assert_eq!(code, 404);
        let (_, log) = get(&format!("{base}/v1/log"), acme).await;
        assert_eq!(log["changes"], json!([]));
        let (_, dlq) = get(&format!("{base}/v1/dlq"), acme).await;
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
    let bearer = server.key("");
    let key = Some(bearer.as_str());
    let rt = runtime();
    rt.block_on(async {
        let records = format!("{base}/v1/flows/user_sync/records");
        let (code, body) = post(&records, key, &json!([{"email": "a@b.co"}, 3])).await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(body["details"][0]["field"], "[1]");

        let one = json!({"email": "a@b.co", "name": "A", "tenantId": "t"});
        let (code, body) = post(
            &format!("{records}?duplicatePolicy=merge&dry_run=maybe"),
            key,
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

        let (code, body) = post(&format!("{base}/v1/flows/no_such_flow/records"), key, &one).await;
        assert_eq!(code, 404, "{body}");

        let resp = reqwest::Client::new()
            .post(&records)
            .bearer_auth(&bearer)
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
        let (code, _) = post(&records, key, &Value::Array(big)).await;
        assert_eq!(code, 413);

        let (code, body) = get(&format!("{base}/v1/log?status=lost&limit=0"), key).await;
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
    let key = server.key("");
    let key = Some(key.as_str());
    let rt = runtime();
    rt.block_on(async {
        let one = json!({"email": "m@company.com", "name": "M", "tenantId": "t"});
        let bad = json!({"email": "nope", "name": "M", "tenantId": "t"});
        let records = format!("{base}/v1/flows/user_sync/records");
        let (_, sent) = post(&records, key, &json!([one, bad])).await;
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
            ("post", "/v1/connections/{provider}/test".into()),
            ("get", "/v1/providers/{provider}/fields".into()),
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
            // `users_db` is the SQL provider of the `users` table the flow wrote.
            let concrete = path
                .replace("{flow}", "user_sync")
                .replace("{id}", &run)
                .replace("{provider}", "users_db")
                .replace("/fields", "/fields?object=users");
            // The OAuth routes of a provider answer in tests/serve_oauth.rs.
            let oauth = path.contains("/oauth/") || path == "/v1/integrations/{provider}";
            if *method == "get" && !oauth {
                let (code, body) = get(&format!("{base}{concrete}"), key).await;
                assert_eq!(code, 200, "{path}: {body}");
            }
            // Every /v1 operation says it takes the bearer key, and answers 401 without it.
            if path.starts_with("/v1/") {
                let op = &doc["paths"][path.as_str()][*method];
                assert_eq!(op["security"], json!([{"apiKey": []}]), "{path}");
                assert!(op["responses"]["401"].is_object(), "{path}");
                assert!(op["responses"]["429"].is_object(), "{path}");
                let client = reqwest::Client::new();
                let url = format!("{base}{concrete}");
                let req = match *method {
                    "get" => client.get(&url),
                    "delete" => client.delete(&url),
                    _ => client.post(&url).json(&json!({})),
                };
                let resp = req.send().await.expect("request");
                assert_eq!(resp.status().as_u16(), 401, "{path}");
            }
        }
        let paths = doc["paths"].as_object().map(|p| p.len());
        let served: std::collections::BTreeSet<&str> =
            routes.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(paths, Some(served.len()), "a documented path that is not served");
        assert_eq!(
            doc["components"]["securitySchemes"]["apiKey"]["scheme"],
            "bearer"
        );
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
            "# TYPE rulebridge_rate_limited_requests_total counter",
            "# TYPE rulebridge_rate_limit_wait_seconds_total counter",
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
    let key = server.key("");
    let batch: Vec<Value> = (0..400)
        .map(|i| json!({"email": format!("u{i}@example.com"), "name": format!("U {i}"), "tenantId": "t"}))
        .collect();
    let client = std::thread::spawn(move || {
        runtime().block_on(post(
            &format!("{base}/v1/flows/user_sync/records"),
            Some(&key),
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
    let key = server.key("");
    let key = Some(key.as_str());
    let rt = runtime();
    rt.block_on(async {
        let records = format!("{base}/v1/flows/lead_to_hubspot/records");
        let lead = json!({"email": "ada@example.com", "name": "Ada Lovelace", "score": 91, "country": "us"});
        let (code, first) = post(&records, key, &lead).await;
        assert_eq!(code, 200, "{first}");
        assert_eq!(statuses(&first), ["created"], "{first}");
        let id = first["outcomes"][0]["target_id"].clone();
        let changed = json!({"email": "ada@example.com", "name": "Ada King Lovelace", "score": 91, "country": "us"});
        let (_, updated) = post(&records, key, &changed).await;
        assert_eq!(statuses(&updated), ["updated"], "{updated}");
        assert_eq!(updated["outcomes"][0]["target_id"], id);
        // HubSpot keeps e-mails unique: `create_new` ends as an update of the one contact.
        let again = json!({"email": "ada@example.com", "name": "Ada K. Lovelace", "score": 91, "country": "us"});
        let (_, skipped) = post(&format!("{records}?duplicatePolicy=skip"), key, &again).await;
        assert_eq!(statuses(&skipped), ["skipped"], "{skipped}");
        assert_eq!(skipped["outcomes"][0]["target_id"], id);
        let (_, created) =
            post(&format!("{records}?duplicatePolicy=create_new"), key, &again).await;
        assert_eq!(statuses(&created), ["updated"], "{created}");
        assert_eq!(created["outcomes"][0]["target_id"], id);
        // The HubSpot kit paces its requests (`rate_limit: 100 per 10s`): the look-ups and
        // writes above waited for permits, and /metrics says how long.
        let (_, text) = get(&format!("{base}/metrics"), None).await;
        let text = text.as_str().unwrap_or_default().to_string();
        let waited = text
            .lines()
            .find_map(|l| l.strip_prefix("rulebridge_rate_limit_wait_seconds_total{provider=\"hubspot\"} "))
            .and_then(|v| v.parse::<f64>().ok());
        assert!(waited.is_some_and(|s| s > 0.05), "{text}");
        assert!(text.contains("rulebridge_rate_limit_waits_total{provider=\"hubspot\"} "), "{text}");
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
    let key = server.key("pg-tenant");
    let key = Some(key.as_str());
    rt.block_on(async {
        let records = format!("{base}/v1/flows/user_sync/records");
        let (code, first) = post(&records, key, &users()).await;
        assert_eq!(code, 200, "{first}");
        assert_eq!(statuses(&first), ["created", "failed", "created"]);
        let run = first["run"].as_str().unwrap_or_default().to_string();
        let (code, got) = get(&format!("{base}/v1/runs/{run}"), key).await;
        assert_eq!(code, 200, "{got}");
        assert_eq!(got["tenant"], "pg-tenant");
        let (_, dlq) = get(&format!("{base}/v1/dlq"), key).await;
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
    let tenant_key = server.key("test-tenant");
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
        let (_, log) = get(&format!("{base}/v1/log?flow=user_sync"), Some(&tenant_key)).await;
        // In time order: a failed mapping can come before the writes of the same request.
        let mut actions: Vec<&str> = log["changes"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["action"].as_str()).collect())
            .unwrap_or_default();
        actions.sort_unstable();
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

/// A request with these headers: (status, headers, body).
async fn request(
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new().request(method.clone(), url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if method == reqwest::Method::POST {
        req = req.json(&json!({}));
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn key_id(key: &str) -> String {
    key.trim_start_matches("rbk_")
        .split('_')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `keys list --format json`: one object per key.
fn listed(state: &str) -> Vec<Value> {
    let (ok, out, err) = keys_command(state, &["list", "--format", "json"]);
    assert!(ok, "{err}");
    out.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The key decides the tenant: none, a wrong one, another scheme or a revoked one is 401
/// with `WWW-Authenticate: Bearer`; an `X-Tenant-ID` naming another tenant is 403. `keys list`
/// shows the keys without them; `/healthz`, `/metrics`, `/openapi.json` need none.
#[test]
fn api_keys_decide_the_tenant() {
    let server = Server::start(&[]);
    let base = server.url.clone();
    let acme = server.key("acme");
    assert!(acme.starts_with("rbk_"), "{acme}");
    let globex = server.key("globex");
    assert_ne!(acme, globex);
    let log = format!("{base}/v1/log");
    runtime().block_on(async {
        for open in ["/healthz", "/metrics", "/openapi.json"] {
            let (code, _, _) = request(reqwest::Method::GET, &format!("{base}{open}"), &[]).await;
            assert_eq!(code, 200, "{open}");
        }
        let (code, headers, body) = request(reqwest::Method::GET, &log, &[]).await;
        assert_eq!(code, 401, "{body}");
        assert_eq!(headers["www-authenticate"], "Bearer realm=\"rulebridge\"");
        let forged = format!("{}x", &acme[..acme.len() - 1]);
        let basic = format!("Basic {acme}");
        for bad in [
            "Bearer nope".to_string(),
            format!("Bearer {forged}"),
            basic,
            "Bearer".to_string(),
        ] {
            let (code, headers, body) =
                request(reqwest::Method::GET, &log, &[("authorization", &bad)]).await;
            assert_eq!(code, 401, "{bad}: {body}");
            assert_eq!(
                headers["www-authenticate"], "Bearer realm=\"rulebridge\", error=\"invalid_token\"",
                "{bad}"
            );
        }
        let bearer = format!("Bearer {acme}");
        let (code, _, body) =
            request(reqwest::Method::GET, &log, &[("authorization", &bearer)]).await;
        assert_eq!(code, 200, "{body}");
        // The key's own tenant named again is fine; another one is refused.
        let (code, _, _) = request(
            reqwest::Method::GET,
            &log,
            &[("authorization", &bearer), ("x-tenant-id", "acme")],
        )
        .await;
        assert_eq!(code, 200);
        let (code, _, body) = request(
            reqwest::Method::GET,
            &log,
            &[("authorization", &bearer), ("x-tenant-id", "globex")],
        )
        .await;
        assert_eq!(code, 403, "{body}");
        // A request made before the key was used notes when it was.
        let mut keys = Vec::new();
        for _ in 0..50 {
            keys = listed(&server.state);
            let used = keys
                .iter()
                .find(|k| k["id"] == key_id(&acme))
                .is_some_and(|k| k["last_used_at"].is_i64());
            if used {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(keys.len(), 2);
        let acme_row = keys
            .iter()
            .find(|k| k["id"] == key_id(&acme))
            .cloned()
            .unwrap_or_default();
        assert_eq!(acme_row["tenant"], "acme");
        assert_eq!(acme_row["label"], "test");
        assert!(acme_row["last_used_at"].is_i64(), "{acme_row}");
        assert_eq!(acme_row["revoked_at"], Value::Null);
        let (ok, text, _) = keys_command(&server.state, &["list"]);
        assert!(ok);
        for k in [&acme, &globex] {
            let secret = k.rsplit('_').next().unwrap_or_default();
            assert!(!text.contains(secret), "{text}");
            assert!(!keys.iter().any(|row| row.to_string().contains(secret)));
            assert!(text.contains(&key_id(k)), "{text}");
        }

        // Revoked: refused from the next request on; the other key goes on.
        let (ok, _, err) = keys_command(&server.state, &["revoke", &key_id(&acme)]);
        assert!(ok, "{err}");
        let (code, _, body) =
            request(reqwest::Method::GET, &log, &[("authorization", &bearer)]).await;
        assert_eq!(code, 401, "{body}");
        assert_eq!(body["error"], "the API key is revoked");
        let (code, _, _) = request(
            reqwest::Method::GET,
            &log,
            &[("authorization", &format!("Bearer {globex}"))],
        )
        .await;
        assert_eq!(code, 200);
        let (ok, _, err) = keys_command(&server.state, &["revoke", "0123456789abcdef"]);
        assert!(!ok);
        assert!(err.contains("no API key"), "{err}");
        assert!(
            listed(&server.state)
                .iter()
                .any(|k| k["id"] == key_id(&acme) && k["revoked_at"].is_i64())
        );
    });
}

/// Tenant A's key never reads B's runs, changelog or dead letters, and never uses B's
/// stored credentials (connection test and field discovery, in the sandbox).
#[test]
fn a_key_reaches_only_its_own_tenant() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("shared-state.db").display().to_string();
    let master = {
        let out = Command::new(env!("CARGO_BIN_EXE_rulebridge"))
            .args(["creds", "keygen"])
            .output()
            .expect("keygen");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("RULEBRIDGE_MASTER_KEY=")
            .to_string()
    };
    // Tenant b connects HubSpot with a token the sandbox refuses.
    let b_token = "b-own-hubspot-token-5e1f0c";
    let mut set = Command::new(env!("CARGO_BIN_EXE_rulebridge"))
        .args([
            "creds", "set", "hubspot", "token", "--tenant", "b", "--state", &state,
        ])
        .env("RULEBRIDGE_MASTER_KEY", &master)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("creds set");
    {
        use std::io::Write as _;
        let mut stdin = set.stdin.take().expect("stdin");
        writeln!(stdin, "{b_token}").expect("write");
    }
    let done = set.wait_with_output().expect("creds set ends");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );

    let server = Server::start_with(
        &["--sandbox", "--state", &state],
        &[("RULEBRIDGE_MASTER_KEY", &master)],
    );
    let base = server.url.clone();
    let (a, b) = (server.key("a"), server.key("b"));
    let (a, b) = (Some(a.as_str()), Some(b.as_str()));
    runtime().block_on(async {
        // A's run, changelog and dead letter.
        let (code, sent) = post(&format!("{base}/v1/flows/user_sync/records"), a, &users()).await;
        assert_eq!(code, 200, "{sent}");
        let run = sent["run"].as_str().unwrap_or_default().to_string();
        let (code, _) = get(&format!("{base}/v1/runs/{run}"), a).await;
        assert_eq!(code, 200);
        let (_, dlq) = get(&format!("{base}/v1/dlq"), a).await;
        assert_eq!(dlq["dead_letters"].as_array().map(Vec::len), Some(1));

        // B sees none of it, by id or by filter, and cannot claim A's tenant.
        let (code, _) = get(&format!("{base}/v1/runs/{run}"), b).await;
        assert_eq!(code, 404);
        for q in [
            "",
            "?flow=user_sync",
            &format!("?run={run}"),
            "?status=failed",
        ] {
            let (code, log) = get(&format!("{base}/v1/log{q}"), b).await;
            assert_eq!((code, &log["changes"]), (200, &json!([])), "{q}");
        }
        let (_, dlq) = get(&format!("{base}/v1/dlq?flow=user_sync"), b).await;
        assert_eq!(dlq["dead_letters"], json!([]));
        let (code, _, _) = request(
            reqwest::Method::GET,
            &format!("{base}/v1/log"),
            &[
                (
                    "authorization",
                    &format!("Bearer {}", b.unwrap_or_default()),
                ),
                ("x-tenant-id", "a"),
            ],
        )
        .await;
        assert_eq!(code, 403);

        // A has nothing stored: the sandbox's credentials. B's own token is refused by the
        // sandbox, and A never gets to use it.
        let test = format!("{base}/v1/connections/hubspot/test");
        let (code, ta) = post(&test, a, &json!({})).await;
        assert_eq!(code, 200, "{ta}");
        assert_eq!(
            (&ta["ok"], &ta["tenant"]),
            (&json!(true), &json!("a")),
            "{ta}"
        );
        let (code, tb) = post(&test, b, &json!({})).await;
        assert_eq!(code, 200, "{tb}");
        assert_eq!(tb["ok"], false, "{tb}");
        assert_eq!(tb["error"]["kind"], "auth", "{tb}");
        assert!(
            tb["request"]
                .as_str()
                .is_some_and(|r| r.starts_with("GET ")),
            "{tb}"
        );

        let fields = format!("{base}/v1/providers/hubspot/fields?object=contact");
        let (code, fa) = get(&fields, a).await;
        assert_eq!(code, 200, "{fa}");
        let names: Vec<&str> = fa["fields"]
            .as_array()
            .map(|f| f.iter().filter_map(|f| f["name"].as_str()).collect())
            .unwrap_or_default();
        assert!(names.contains(&"email"), "{fa}");
        let (code, fb) = get(&fields, b).await;
        assert_eq!(code, 502, "{fb}");
        for answer in [&ta, &tb, &fa, &fb] {
            assert!(!answer.to_string().contains(b_token), "{answer}");
        }

        // Unknown provider or object; no object.
        let (code, _) = post(&format!("{base}/v1/connections/nope/test"), a, &json!({})).await;
        assert_eq!(code, 404);
        let (code, _) = get(
            &format!("{base}/v1/providers/hubspot/fields?object=nope"),
            a,
        )
        .await;
        assert_eq!(code, 404);
        let (code, body) = get(&format!("{base}/v1/providers/hubspot/fields"), a).await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(body["details"][0]["field"], "object");
    });
}

/// Each key has its own rate: past it, 429 with `Retry-After`, counted in /metrics.
#[test]
fn each_key_has_a_rate_limit() {
    let server = Server::start(&["--key-rate", "3/min"]);
    let base = server.url.clone();
    let (a, b) = (server.key("a"), server.key("b"));
    runtime().block_on(async {
        let log = format!("{base}/v1/log");
        let bearer = format!("Bearer {a}");
        for _ in 0..3 {
            let (code, _, body) =
                request(reqwest::Method::GET, &log, &[("authorization", &bearer)]).await;
            assert_eq!(code, 200, "{body}");
        }
        let (code, headers, body) =
            request(reqwest::Method::GET, &log, &[("authorization", &bearer)]).await;
        assert_eq!(code, 429, "{body}");
        let after: u64 = headers["retry-after"]
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        assert!((1..=20).contains(&after), "{after}");
        // Another key is not held back.
        let (code, _) = get(&log, Some(&b)).await;
        assert_eq!(code, 200);
        let (_, text) = get(&format!("{base}/metrics"), None).await;
        let want = format!(
            "rulebridge_rate_limited_requests_total{{key=\"{}\"}} 1",
            key_id(&a)
        );
        assert!(
            text.as_str().is_some_and(|t| t.contains(&want)),
            "no `{want}` in {text}"
        );
    });
}

/// `--no-auth`: today's `X-Tenant-ID`, no key needed, and a warning.
#[test]
fn no_auth_takes_the_tenant_from_the_header() {
    let mut server = Server::start(&["--no-auth"]);
    let base = server.url.clone();
    runtime().block_on(async {
        let records = format!("{base}/v1/flows/user_sync/records");
        let (code, _, body) = request(reqwest::Method::GET, &format!("{base}/v1/log"), &[]).await;
        assert_eq!(code, 200, "{body}");
        let resp = reqwest::Client::new()
            .post(&records)
            .header("x-tenant-id", "acme")
            .json(&users())
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 200);
        let (_, _, log) = request(
            reqwest::Method::GET,
            &format!("{base}/v1/log"),
            &[("x-tenant-id", "acme")],
        )
        .await;
        assert_eq!(log["changes"].as_array().map(Vec::len), Some(3), "{log}");
        let (_, _, other) = request(reqwest::Method::GET, &format!("{base}/v1/log"), &[]).await;
        assert_eq!(other["changes"], json!([]));
        let (code, _, doc) =
            request(reqwest::Method::GET, &format!("{base}/openapi.json"), &[]).await;
        assert_eq!(code, 200);
        assert!(doc["paths"]["/v1/log"]["get"].get("security").is_none());
    });
    let (status, err) = server.terminate();
    assert!(status.success(), "{err}");
    assert!(err.contains("warning: --no-auth"), "{err}");
}

/// `--sandbox` keeps a scratch store where no key can be: it asks for `--state` or
/// `--no-auth` instead of serving a `/v1` nobody can use.
#[test]
fn a_sandbox_without_a_store_asks_how_to_authenticate() {
    let out = Command::new(env!("CARGO_BIN_EXE_rulebridge"))
        .args(["serve", "--sandbox", "--listen", "127.0.0.1:0"])
        .env_remove("RULEBRIDGE_STATE")
        .output()
        .expect("serve runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--no-auth") && err.contains("--state"),
        "{err}"
    );
}
