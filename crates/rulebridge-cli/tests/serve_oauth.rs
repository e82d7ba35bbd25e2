//! OAuth connect in `rulebridge serve` over real HTTP: the binary on 127.0.0.1 with its
//! sandbox (HubSpot's and Salesforce's authorize and token endpoints), a real state file and
//! a real master key. Start → the authorize URL (302) → callback → status → records sent with
//! the tenant's stored token → refreshes (ahead of expiry, after a 401, with rotation) →
//! disconnect; and the CSRF cases of the `state`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

/// base64 of 32 bytes.
const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

struct Server {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
    stderr: Option<std::process::ChildStderr>,
}

impl Server {
    fn start(env: &[(&str, &str)]) -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temp dir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut child = Command::new(env!("CARGO_BIN_EXE_rulebridge"))
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("RULEBRIDGE_DATABASE_USERS_DB", dir.path().join("users.db"))
            .env_remove("RULEBRIDGE_STATE")
            .env_remove("RULEBRIDGE_MASTER_KEY")
            .env_remove("RULEBRIDGE_MASTER_PASSPHRASE")
            .envs(env.iter().copied())
            .args(["serve", "--sandbox", "--listen", "127.0.0.1:0", "--rules"])
            .arg(root.join("rules"))
            .arg("--state")
            .arg(dir.path().join("state.db"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rulebridge serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("a first line");
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let mut err = String::new();
            if let Some(e) = child.stderr.as_mut() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("unexpected first line `{line}`; stderr: {err}");
        };
        let url = url.to_string();
        let stderr = child.stderr.take();
        Server {
            child,
            url,
            dir,
            stderr,
        }
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    /// Stops the server; what it wrote on stderr.
    fn stop(&mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let mut err = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tenant's new API key, made with `rulebridge keys create` on the server's state file.
fn create_key(state: &Path, tenant: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rulebridge"))
        .env("NO_COLOR", "1")
        .env_remove("RULEBRIDGE_STATE")
        .args([
            "keys", "create", "--tenant", tenant, "--name", "test", "--state",
        ])
        .arg(state)
        .output()
        .expect("rulebridge keys runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().last())
        .expect("a key")
        .to_string()
}

/// Every body the server answered, to look for tokens in at the end. Requests to the server
/// carry the tenant's API key (made on first use) and name the tenant in `X-Tenant-ID`.
struct Client {
    http: reqwest::Client,
    seen: String,
    server: String,
    state: PathBuf,
    keys: std::collections::HashMap<String, String>,
}

impl Client {
    fn new(server: &Server) -> Client {
        Client {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            seen: String::new(),
            server: server.url.clone(),
            state: server.state_file(),
            keys: Default::default(),
        }
    }

    /// The tenant's API key.
    fn key(&mut self, tenant: &str) -> String {
        let state = self.state.clone();
        self.keys
            .entry(tenant.to_string())
            .or_insert_with(|| create_key(&state, tenant))
            .clone()
    }

    fn as_tenant(
        &mut self,
        req: reqwest::RequestBuilder,
        url: &str,
        tenant: &str,
    ) -> reqwest::RequestBuilder {
        if !url.starts_with(&self.server) {
            return req;
        }
        let key = self.key(tenant);
        req.bearer_auth(key).header("X-Tenant-ID", tenant)
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        self.seen.push_str(&text);
        self.seen.push('\n');
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&mut self, url: &str, tenant: &str) -> (u16, Value) {
        let req = self.as_tenant(self.http.get(url), url, tenant);
        self.send(req).await
    }

    async fn post(&mut self, url: &str, tenant: &str, body: &Value) -> (u16, Value) {
        let req = self.as_tenant(self.http.post(url), url, tenant).json(body);
        self.send(req).await
    }

    async fn delete(&mut self, url: &str, tenant: &str) -> (u16, Value) {
        let req = self.as_tenant(self.http.delete(url), url, tenant);
        self.send(req).await
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn query(text: &str) -> Vec<(String, String)> {
    url::Url::parse(text)
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The sandbox's origin, from an authorize URL pointing at it.
fn origin(url: &str) -> String {
    let rest = url.trim_start_matches("http://");
    format!("http://{}", rest.split('/').next().unwrap_or_default())
}

/// The requests the fake received (method and endpoint), oldest first.
async fn fake_log(c: &mut Client, sandbox: &str, provider: &str) -> Vec<(String, u16)> {
    let (_, state) = c
        .get(&format!("{sandbox}/_sandbox/state?provider={provider}"), "")
        .await;
    state["providers"][provider]["log"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["endpoint"].as_str().unwrap_or_default().to_string(),
                        e["status"].as_u64().unwrap_or(0) as u16,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn count(log: &[(String, u16)], endpoint: &str) -> usize {
    log.iter().filter(|(e, _)| e == endpoint).count()
}

/// The tenant's stored OAuth tokens, read from the state file with the master key.
async fn stored(state: &Path, tenant: &str, provider: &str) -> Option<Value> {
    use rulebridge::secrets::sealed::MasterKey;
    let store = rulebridge::state::SqlStore::open(&state.display().to_string())
        .await
        .expect("store");
    let key = MasterKey::from_base64(MASTER_KEY).expect("key");
    let creds = rulebridge::state::CredentialStore::new(store.db().clone(), key);
    let v = creds.get(tenant, provider, "oauth").await.expect("opens")?;
    let parsed = serde_json::from_str(v.expose()).expect("JSON");
    store.db().close().await;
    Some(parsed)
}

/// Rewrites the stored expiry: as if time had passed.
async fn expire_in(state: &Path, tenant: &str, provider: &str, ms: i64) {
    use rulebridge::secrets::sealed::MasterKey;
    let mut v = stored(state, tenant, provider).await.expect("connected");
    v["expires_at"] = json!(rulebridge::state::now_ms() + ms);
    let store = rulebridge::state::SqlStore::open(&state.display().to_string())
        .await
        .expect("store");
    let key = MasterKey::from_base64(MASTER_KEY).expect("key");
    let creds = rulebridge::state::CredentialStore::new(store.db().clone(), key);
    creds
        .set(
            tenant,
            provider,
            "oauth",
            &rulebridge::secrets::Secret::new(v.to_string()),
        )
        .await
        .expect("stored");
    store.db().close().await;
}

/// start → follow the authorize URL → the redirect's code and state.
async fn authorize(
    c: &mut Client,
    base: &str,
    tenant: &str,
    provider: &str,
) -> (String, String, String) {
    let (code, start) = c
        .get(&format!("{base}/v1/oauth/{provider}/start"), tenant)
        .await;
    assert_eq!(code, 200, "{start}");
    let url = start["authorize_url"].as_str().expect("a URL").to_string();
    let state = start["state"].as_str().expect("a state").to_string();
    let resp = c.http.get(&url).send().await.expect("authorize");
    assert_eq!(resp.status().as_u16(), 302, "{url}");
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a redirect")
        .to_string();
    assert!(
        location.starts_with(&format!("http://localhost:3000/oauth/{provider}/callback?")),
        "{location}"
    );
    let back = query(&location);
    assert_eq!(param(&back, "state"), Some(state.as_str()), "{location}");
    let code = param(&back, "code").expect("a code").to_string();
    (url, state, code)
}

#[test]
fn a_tenant_connects_hubspot_and_its_records_use_the_stored_tokens() {
    let mut server = Server::start(&[("RULEBRIDGE_MASTER_KEY", MASTER_KEY)]);
    let base = server.url.clone();
    let state_file = server.state_file();
    let mut c = Client::new(&server);
    let rt = runtime();
    let secrets = rt.block_on(async {
        let (url, state, code) = authorize(&mut c, &base, "acme", "hubspot").await;
        let sandbox = origin(&url);
        let q = query(&url);
        assert!(url.contains("/hubspot/oauth/authorize?"), "{url}");
        assert_eq!(param(&q, "client_id"), Some("sandbox-hubspot-client"));
        assert_eq!(
            param(&q, "redirect_uri"),
            Some("http://localhost:3000/oauth/hubspot/callback")
        );
        assert_eq!(
            param(&q, "scope"),
            Some("crm.objects.contacts.write crm.objects.contacts.read crm.schemas.contacts.read")
        );

        // Not connected yet.
        let status = format!("{base}/v1/integrations/status");
        let (_, before) = c.get(&status, "acme").await;
        assert_eq!(before["integrations"]["hubspot"]["connected"], false, "{before}");

        // The callback as the seed's frontend posts it.
        let callback = format!("{base}/v1/oauth/hubspot/callback");
        let (code_, done) = c
            .post(&callback, "acme", &json!({"code": code, "state": state}))
            .await;
        assert_eq!(code_, 200, "{done}");
        assert_eq!(done["connected"], true);
        assert!(done["expires_at"].as_i64().is_some(), "{done}");
        // The same state (and code) again.
        let (again, body) = c
            .post(&callback, "acme", &json!({"code": code, "state": state}))
            .await;
        assert_eq!(again, 400, "{body}");
        assert!(body["error"].as_str().unwrap_or_default().contains("already used"), "{body}");

        let tokens = stored(&state_file, "acme", "hubspot").await.expect("stored");
        let access = tokens["access_token"].as_str().unwrap_or_default().to_string();
        let refresh = tokens["refresh_token"].as_str().unwrap_or_default().to_string();
        assert!(access.starts_with("CN"), "{tokens}");
        assert!(refresh.starts_with("na1-"), "{tokens}");
        // Sealed: the state file holds neither in clear.
        let raw = std::fs::read(&state_file).expect("state file");
        let raw = String::from_utf8_lossy(&raw);
        assert!(!raw.contains(&access) && !raw.contains(&refresh));

        let (_, after) = c.get(&status, "acme").await;
        let hs = &after["integrations"]["hubspot"];
        assert_eq!(hs["connected"], true, "{after}");
        assert!(hs["connected_at"].as_i64().is_some());
        assert_eq!(after["integrations"]["salesforce"]["connected"], false);
        let (_, other) = c.get(&status, "beta").await;
        assert_eq!(other["integrations"]["hubspot"]["connected"], false, "{other}");

        // A record for the tenant goes out with the stored access token: no token request.
        let records = format!("{base}/v1/flows/lead_to_hubspot/records");
        let lead = |email: &str| json!({"email": email, "name": "Ada Lovelace", "score": 91, "country": "us"});
        let token_ep = "POST /oauth/v1/token";
        let log0 = fake_log(&mut c, &sandbox, "hubspot").await;
        assert_eq!(count(&log0, token_ep), 1, "the code exchange only: {log0:?}");
        let (_, sent) = c.post(&records, "acme", &lead("ada@example.com")).await;
        assert_eq!(sent["outcomes"][0]["status"], "created", "{sent}");
        let log1 = fake_log(&mut c, &sandbox, "hubspot").await;
        assert_eq!(count(&log1, token_ep), 1, "{log1:?}");

        // The fake expires its tokens: the stored one is refused (401), refreshed, stored.
        let (_, expired) = c
            .post(&format!("{sandbox}/_sandbox/expire-tokens"), "", &json!({}))
            .await;
        assert!(expired["expired"].as_u64().unwrap_or(0) >= 1, "{expired}");
        let (_, sent) = c.post(&records, "acme", &lead("grace@example.com")).await;
        assert_eq!(sent["outcomes"][0]["status"], "created", "{sent}");
        let log2 = fake_log(&mut c, &sandbox, "hubspot").await;
        assert_eq!(count(&log2, token_ep), 2, "{log2:?}");
        let after401 = stored(&state_file, "acme", "hubspot").await.expect("stored");
        let access2 = after401["access_token"].as_str().unwrap_or_default().to_string();
        assert_ne!(access2, access);

        // 30 s left of the stored token: refreshed before the request, no 401 on the way.
        expire_in(&state_file, "acme", "hubspot", 30_000).await;
        let unauthorized = log2.iter().filter(|(_, s)| *s == 401).count();
        let (_, sent) = c.post(&records, "acme", &lead("lin@example.com")).await;
        assert_eq!(sent["outcomes"][0]["status"], "created", "{sent}");
        let log3 = fake_log(&mut c, &sandbox, "hubspot").await;
        assert_eq!(count(&log3, token_ep), 3, "{log3:?}");
        assert_eq!(log3.iter().filter(|(_, s)| *s == 401).count(), unauthorized);
        let new_requests = &log3[log2.len()..];
        assert_eq!(new_requests.first().map(|(e, _)| e.as_str()), Some(token_ep), "{new_requests:?}");
        let ahead = stored(&state_file, "acme", "hubspot").await.expect("stored");
        let access3 = ahead["access_token"].as_str().unwrap_or_default().to_string();
        assert_ne!(access3, access2);
        assert_eq!(ahead["refresh_token"], json!(refresh), "HubSpot keeps its refresh token");
        assert_eq!(ahead["connected_at"], tokens["connected_at"]);

        // With refresh-token rotation the new refresh token is stored, the old one is dead.
        let (code_, _) = c
            .post(&format!("{sandbox}/_sandbox/faults"), "", &json!({"rotate_refresh_tokens": true}))
            .await;
        assert_eq!(code_, 200);
        expire_in(&state_file, "acme", "hubspot", 0).await;
        let (_, sent) = c.post(&records, "acme", &lead("mae@example.com")).await;
        assert_eq!(sent["outcomes"][0]["status"], "created", "{sent}");
        let rotated = stored(&state_file, "acme", "hubspot").await.expect("stored");
        let refresh2 = rotated["refresh_token"].as_str().unwrap_or_default().to_string();
        assert_ne!(refresh2, refresh);
        let old = c
            .http
            .post(format!("{sandbox}/hubspot/oauth/v1/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", "sandbox-hubspot-client"),
                ("client_secret", "sandbox-hubspot-secret"),
                ("refresh_token", refresh.as_str()),
            ])
            .send()
            .await
            .expect("token request");
        assert_eq!(old.status().as_u16(), 400);

        // Four requests at once with a token about to expire, rotation on: one refresh for
        // all of them (a second would spend the rotated-out refresh token), all sent.
        expire_in(&state_file, "acme", "hubspot", 0).await;
        let before = count(&fake_log(&mut c, &sandbox, "hubspot").await, token_ep);
        let acme = c.key("acme");
        let send = |email: String| {
            let (http, records, acme) = (c.http.clone(), records.clone(), acme.clone());
            async move {
                let resp = http
                    .post(&records)
                    .bearer_auth(acme)
                    .json(&lead(&email))
                    .send()
                    .await
                    .expect("request");
                resp.text().await.expect("body")
            }
        };
        let bodies = futures::future::join_all(
            (0..4).map(|i| send(format!("burst{i}@example.com"))),
        )
        .await;
        for b in &bodies {
            c.seen.push_str(b);
            let v: Value = serde_json::from_str(b).expect("JSON");
            assert_eq!(v["outcomes"][0]["status"], "created", "{v}");
        }
        let after = count(&fake_log(&mut c, &sandbox, "hubspot").await, token_ep);
        assert_eq!(after, before + 1, "one refresh for the burst");
        let burst = stored(&state_file, "acme", "hubspot").await.expect("stored");
        let refresh3 = burst["refresh_token"].as_str().unwrap_or_default().to_string();
        assert_ne!(refresh3, refresh2);

        // Another tenant is sent with the kit's own credentials: no token request.
        let before_beta = count(&fake_log(&mut c, &sandbox, "hubspot").await, token_ep);
        let (_, sent) = c.post(&records, "beta", &lead("beta@example.com")).await;
        assert_eq!(sent["outcomes"][0]["status"], "created", "{sent}");
        assert_eq!(count(&fake_log(&mut c, &sandbox, "hubspot").await, token_ep), before_beta);

        // The status shows the latest run of a flow writing to HubSpot.
        let (_, status_now) = c.get(&status, "acme").await;
        let last = &status_now["integrations"]["hubspot"]["last_sync"];
        assert_eq!(last["flow"], "lead_to_hubspot", "{status_now}");
        assert_eq!(last["status"], "done");

        // Disconnect: the tokens are gone, the tenant is sent with the kit's credentials.
        let integration = format!("{base}/v1/integrations/hubspot");
        let (code_, gone) = c.delete(&integration, "acme").await;
        assert_eq!(code_, 200, "{gone}");
        assert_eq!(gone["disconnected"], true);
        assert!(stored(&state_file, "acme", "hubspot").await.is_none());
        let (_, st) = c.get(&status, "acme").await;
        assert_eq!(st["integrations"]["hubspot"]["connected"], false);
        let (_, again) = c.delete(&integration, "acme").await;
        assert_eq!(again["disconnected"], false);
        let n = count(&fake_log(&mut c, &sandbox, "hubspot").await, token_ep);
        let (_, sent) = c.post(&records, "acme", &lead("after@example.com")).await;
        assert_eq!(sent["outcomes"][0]["status"], "created", "{sent}");
        assert_eq!(count(&fake_log(&mut c, &sandbox, "hubspot").await, token_ep), n);

        vec![access, access2, access3, refresh, refresh2, refresh3, code]
    });
    let err = server.stop();
    for s in &secrets {
        assert!(!c.seen.contains(s.as_str()), "a token in a response");
        assert!(!err.contains(s.as_str()), "a token on stderr: {err}");
    }
}

#[test]
fn the_state_guards_the_callback() {
    let server = Server::start(&[("RULEBRIDGE_MASTER_KEY", MASTER_KEY)]);
    let base = server.url.clone();
    let state_file = server.state_file();
    let mut c = Client::new(&server);
    runtime().block_on(async {
        let hubspot_cb = format!("{base}/v1/oauth/hubspot/callback");
        let (_, state, code) = authorize(&mut c, &base, "acme", "hubspot").await;

        // Another tenant, another provider, a tampered state: refused, and the state is
        // still good for its own tenant afterwards.
        let (s, body) = c
            .post(&hubspot_cb, "beta", &json!({"code": code, "state": state}))
            .await;
        assert_eq!(s, 400, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("another tenant"),
            "{body}"
        );
        let (s, body) = c
            .post(
                &format!("{base}/v1/oauth/salesforce/callback"),
                "acme",
                &json!({"code": code, "state": state}),
            )
            .await;
        assert_eq!(s, 400, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("issued for `hubspot`"),
            "{body}"
        );
        let mut tampered = state.clone().into_bytes();
        tampered[5] = if tampered[5] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8(tampered).expect("text");
        let (s, body) = c
            .post(
                &hubspot_cb,
                "acme",
                &json!({"code": code, "state": tampered}),
            )
            .await;
        assert_eq!(s, 400, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("unknown"),
            "{body}"
        );
        // Missing pieces.
        let (s, body) = c.post(&hubspot_cb, "acme", &json!({"state": state})).await;
        assert_eq!(s, 400, "{body}");
        assert_eq!(body["details"][0]["field"], "code");
        // The user declined at the vendor.
        let (s, body) = c
            .get(
                &format!("{hubspot_cb}?error=access_denied&state={state}"),
                "acme",
            )
            .await;
        assert_eq!(s, 400, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("access_denied")
        );
        // The genuine callback, as a GET with the redirect's query, still works.
        let (s, body) = c
            .get(&format!("{hubspot_cb}?code={code}&state={state}"), "acme")
            .await;
        assert_eq!(s, 200, "{body}");

        // An expired state.
        let (_, state2, code2) = authorize(&mut c, &base, "acme", "hubspot").await;
        {
            let store = rulebridge::state::SqlStore::open(&state_file.display().to_string())
                .await
                .expect("store");
            sqlx::query("UPDATE rb_oauth_states SET expires_at = 1 WHERE used_at IS NULL")
                .execute(store.db().pool())
                .await
                .expect("update");
            store.db().close().await;
        }
        let (s, body) = c
            .post(
                &hubspot_cb,
                "acme",
                &json!({"code": code2, "state": state2}),
            )
            .await;
        assert_eq!(s, 400, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("expired"),
            "{body}"
        );

        // A code exchanged once is refused by the vendor the second time.
        let (_, state3, _) = authorize(&mut c, &base, "acme", "hubspot").await;
        let (s, body) = c
            .post(&hubspot_cb, "acme", &json!({"code": code, "state": state3}))
            .await;
        assert_eq!(s, 400, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("invalid_grant"),
            "{body}"
        );

        // An unknown provider and one without `connect:`.
        let (s, _) = c.get(&format!("{base}/v1/oauth/nope/start"), "acme").await;
        assert_eq!(s, 404);
        let (s, body) = c
            .get(&format!("{base}/v1/oauth/chatwoot/start"), "acme")
            .await;
        assert_eq!(s, 404, "{body}");
    });
}

#[test]
fn salesforce_connects_through_its_login_host_and_sends_leads() {
    let server = Server::start(&[("RULEBRIDGE_MASTER_KEY", MASTER_KEY)]);
    let base = server.url.clone();
    let state_file = server.state_file();
    let mut c = Client::new(&server);
    runtime().block_on(async {
        let (url, state, code) = authorize(&mut c, &base, "acme", "salesforce").await;
        let q = query(&url);
        assert!(url.contains("/salesforce/services/oauth2/authorize?"), "{url}");
        assert_eq!(param(&q, "response_type"), Some("code"));
        assert_eq!(param(&q, "scope"), Some("api refresh_token"));
        let (s, done) = c
            .get(
                &format!("{base}/v1/oauth/salesforce/callback?code={code}&state={state}"),
                "acme",
            )
            .await;
        assert_eq!(s, 200, "{done}");
        // Salesforce says nothing of the session's lifetime.
        assert_eq!(done["expires_at"], Value::Null, "{done}");
        let tokens = stored(&state_file, "acme", "salesforce").await.expect("stored");
        assert!(tokens["instance_url"].as_str().unwrap_or_default().ends_with("/salesforce"), "{tokens}");
        assert!(tokens["refresh_token"].as_str().is_some(), "{tokens}");

        let sandbox = origin(&url);
        let token_ep = "POST /services/oauth2/token";
        let before = count(&fake_log(&mut c, &sandbox, "salesforce").await, token_ep);
        let lead = json!({"email": "sf@example.com", "name": "Sally Ride", "company": "NASA", "score": 90});
        let (_, sent) = c
            .post(&format!("{base}/v1/flows/lead_to_salesforce/records"), "acme", &lead)
            .await;
        assert_eq!(sent["outcomes"][0]["status"], "created", "{sent}");
        assert_eq!(count(&fake_log(&mut c, &sandbox, "salesforce").await, token_ep), before);
        let (_, status) = c.get(&format!("{base}/v1/integrations/status"), "acme").await;
        assert_eq!(status["integrations"]["salesforce"]["connected"], true, "{status}");
        assert_eq!(status["integrations"]["salesforce"]["last_sync"]["flow"], "lead_to_salesforce");
    });
}

/// Without a master key there is nowhere to keep tokens: OAuth connect is unavailable.
#[test]
fn without_a_master_key_connect_is_unavailable() {
    let server = Server::start(&[]);
    let base = server.url.clone();
    let mut c = Client::new(&server);
    runtime().block_on(async {
        let (s, body) = c
            .get(&format!("{base}/v1/oauth/hubspot/start"), "acme")
            .await;
        assert_eq!(s, 503, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("RULEBRIDGE_MASTER_KEY")
        );
        let (s, _) = c
            .get(&format!("{base}/v1/integrations/status"), "acme")
            .await;
        assert_eq!(s, 503);
    });
}

/// `run --tenant T` sends with T's stored connection: the kit's own token is wrong here, so
/// the records only get through with the tenant's OAuth token.
#[test]
fn run_for_a_connected_tenant_uses_its_tokens() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::copy(
        root.join("rules/providers/hubspot.yaml"),
        rules.join("hubspot.yaml"),
    )
    .expect("kit");
    std::fs::write(
        rules.join("contacts.yaml"),
        "kind: flow\nname: contacts\nsource: { require: [email] }\ntarget: { provider: hubspot, object: contact }\nmapping:\n  email: normalize_email(email)\n  firstname: name\nduplicates: { match: [email] }\n",
    )
    .expect("flow");
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, "{\"email\":\"run@example.com\",\"name\":\"Run\"}\n").expect("input");
    let state = dir.path().join("state.db");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sb = rt
        .block_on(rulebridge_sandbox::start(
            rulebridge_sandbox::SandboxConfig::default(),
        ))
        .expect("sandbox");
    // The consent and the exchange, as `serve` makes them, stored for tenant `acme`.
    let access = rt.block_on(async {
        let (authorize, token) = sb.kit_connect_urls("hubspot").expect("connect URLs");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let resp = http
            .get(&authorize)
            .query(&[
                ("client_id", "sandbox-hubspot-client"),
                (
                    "redirect_uri",
                    "http://localhost:3000/oauth/hubspot/callback",
                ),
                ("scope", "crm.objects.contacts.write"),
            ])
            .send()
            .await
            .expect("authorize");
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let code = param(&query(&location), "code")
            .expect("a code")
            .to_string();
        let body: Value = http
            .post(&token)
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", "sandbox-hubspot-client"),
                ("client_secret", "sandbox-hubspot-secret"),
                (
                    "redirect_uri",
                    "http://localhost:3000/oauth/hubspot/callback",
                ),
                ("code", code.as_str()),
            ])
            .send()
            .await
            .expect("exchange")
            .json()
            .await
            .expect("JSON");
        let store = rulebridge::state::SqlStore::open(&state.display().to_string())
            .await
            .expect("store");
        let key = rulebridge::secrets::sealed::MasterKey::from_base64(MASTER_KEY).expect("key");
        let creds = rulebridge::state::CredentialStore::new(store.db().clone(), key);
        let now = rulebridge::state::now_ms();
        let set = json!({
            "access_token": body["access_token"], "refresh_token": body["refresh_token"],
            "expires_at": now + 1_800_000, "connected_at": now, "refreshed_at": now,
        });
        creds
            .set(
                "acme",
                "hubspot",
                "oauth",
                &rulebridge::secrets::Secret::new(set.to_string()),
            )
            .await
            .expect("stored");
        store.db().close().await;
        body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    let run = |tenant: &str| {
        Command::new(env!("CARGO_BIN_EXE_rulebridge"))
            .env("NO_COLOR", "1")
            .env("RULEBRIDGE_MASTER_KEY", MASTER_KEY)
            .env("HUBSPOT_TOKEN", "not-the-sandbox-token")
            .env("HUBSPOT_CLIENT_ID", "sandbox-hubspot-client")
            .env("HUBSPOT_CLIENT_SECRET", "sandbox-hubspot-secret")
            .env(
                "HUBSPOT_REDIRECT_URL",
                "http://localhost:3000/oauth/hubspot/callback",
            )
            .args(["run", "contacts", "--rules"])
            .arg(&rules)
            .arg("--state")
            .arg(&state)
            .arg("--input")
            .arg(&input)
            .args(["--base-url", &format!("hubspot={}", sb.base_url("hubspot"))])
            .args(["--tenant", tenant])
            .output()
            .expect("run")
    };
    let out = run("acme");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("\"created\""), "{text}");
    assert!(!text.contains(&access));
    assert_eq!(sb.state().records("hubspot", "contacts").len(), 1);
    // Another tenant has no connection: the kit's (wrong) token is refused.
    let out = run("beta");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("\"failed\""), "{text}");
    rt.block_on(sb.shutdown());
}
