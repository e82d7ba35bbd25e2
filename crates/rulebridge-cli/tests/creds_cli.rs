//! The credential store and the connection test through the real binary: values from
//! standard input only and never printed, real keys, rotation, `connect test` against the
//! sandbox over HTTP with good and bad credentials, and tenants whose credentials, runs and
//! changelog are their own.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const CANARY: &str = "canary-9d41c7e2-credential";

fn rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

/// The binary with no credentials of the caller's environment and a store of the test's.
fn cmd(state: &Path, key: Option<&str>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rulebridge"));
    c.args(args)
        .env("RULEBRIDGE_STATE", state)
        .env_remove("RULEBRIDGE_MASTER_PASSPHRASE")
        .env_remove("RULEBRIDGE_NEW_MASTER_KEY")
        .env_remove("RULEBRIDGE_NEW_MASTER_PASSPHRASE")
        .env_remove("RULEBRIDGE_TENANT");
    for (name, _) in rulebridge_sandbox::CREDENTIALS {
        c.env_remove(name);
    }
    match key {
        Some(k) => c.env("RULEBRIDGE_MASTER_KEY", k),
        None => c.env_remove("RULEBRIDGE_MASTER_KEY"),
    };
    c
}

fn run(mut c: Command, stdin: &str) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sandbox_cred(name: &str) -> &'static str {
    rulebridge_sandbox::CREDENTIALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .unwrap()
}

fn keygen(state: &Path) -> String {
    let out = run(cmd(state, None, &["creds", "keygen"]), "");
    assert!(out.status.success(), "{}", text(&out));
    let line = String::from_utf8(out.stdout).unwrap();
    let key = line
        .trim()
        .strip_prefix("RULEBRIDGE_MASTER_KEY=")
        .unwrap()
        .to_string();
    assert_eq!(key.len(), 44, "base64 of 32 bytes");
    key
}

#[test]
fn values_come_from_stdin_and_are_never_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.db");
    let key = keygen(&state);
    let r = rules();
    let r = r.to_str().unwrap();

    // Without a master key nothing is stored, and the error says what to set.
    let out = run(
        cmd(
            &state,
            None,
            &["creds", "set", "hubspot", "token", "--tenant", "a"],
        ),
        CANARY,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("RULEBRIDGE_MASTER_KEY"),
        "{}",
        text(&out)
    );

    let mut all = String::new();
    let out = run(
        cmd(
            &state,
            Some(&key),
            &["creds", "set", "hubspot", "token", "--tenant", "a"],
        ),
        &format!("{CANARY}\n"),
    );
    assert!(out.status.success(), "{}", text(&out));
    all += &text(&out);
    // A kit's declared settings from NAME=VALUE lines; an undeclared one is refused whole.
    let out = run(
        cmd(
            &state,
            Some(&key),
            &["creds", "set", "chatwoot", "--tenant", "a", "--rules", r],
        ),
        "api_key=nope\napi_token=x\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out)
            .contains("`chatwoot` declares no setting `api_token` (it has api_key, account_id)"),
        "{}",
        text(&out)
    );
    let out = run(
        cmd(
            &state,
            Some(&key),
            &["creds", "set", "chatwoot", "--tenant", "a", "--rules", r],
        ),
        "api_key=only-the-key\n",
    );
    assert!(
        text(&out).contains("chatwoot needs account_id (nothing was stored)"),
        "{}",
        text(&out)
    );
    let out = run(
        cmd(
            &state,
            Some(&key),
            &["creds", "set", "chatwoot", "--tenant", "a", "--rules", r],
        ),
        &format!("api_key={CANARY}-cw\naccount_id=1\n"),
    );
    assert!(out.status.success(), "{}", text(&out));
    all += &text(&out);

    let out = run(
        cmd(
            &state,
            Some(&key),
            &["creds", "list", "--tenant", "a", "--format", "json"],
        ),
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    all += &text(&out);
    let listed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<String> = listed
        .iter()
        .map(|v| {
            format!(
                "{}/{}",
                v["provider"].as_str().unwrap(),
                v["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        ["chatwoot/account_id", "chatwoot/api_key", "hubspot/token"]
    );
    // Another tenant sees none of them.
    let out = run(
        cmd(&state, Some(&key), &["creds", "list", "--tenant", "b"]),
        "",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert!(text(&out).contains("tenant `b` has no stored credentials"));
    assert!(!all.contains(CANARY), "a value was printed:\n{all}");

    // The file holds no value in clear.
    let bytes = std::fs::read(&state).unwrap();
    assert!(!bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()));

    // Rotation: the old key no longer opens anything, the new one opens everything.
    let new = keygen(&state);
    let mut c = cmd(&state, Some(&key), &["creds", "rotate"]);
    c.env("RULEBRIDGE_NEW_MASTER_KEY", &new);
    let out = run(c, "");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("re-sealed 3 credential(s)"),
        "{}",
        text(&out)
    );
    let out = run(
        cmd(
            &state,
            Some(&key),
            &[
                "connect",
                "test",
                "hubspot",
                "--tenant",
                "a",
                "--sandbox",
                "--rules",
                r,
            ],
        ),
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("credential a/hubspot/token was sealed with master key"),
        "{}",
        text(&out)
    );
    let out = run(
        cmd(
            &state,
            Some(&new),
            &["creds", "delete", "hubspot", "--tenant", "b"],
        ),
        "",
    );
    assert_eq!(out.status.code(), Some(1), "b has nothing to delete");
    let out = run(
        cmd(
            &state,
            Some(&new),
            &["creds", "delete", "hubspot", "token", "--tenant", "a"],
        ),
        "",
    );
    assert!(
        text(&out).contains("removed 1 credential(s) of hubspot"),
        "{}",
        text(&out)
    );
}

#[test]
fn connect_test_reports_success_or_the_classified_error() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.db");
    let key = keygen(&state);
    let r = rules();
    let r = r.to_str().unwrap();
    let set = |tenant: &str, provider: &str, lines: &str| {
        let out = run(
            cmd(
                &state,
                Some(&key),
                &["creds", "set", provider, "--tenant", tenant, "--rules", r],
            ),
            lines,
        );
        assert!(out.status.success(), "{}", text(&out));
    };
    let test = |tenant: &str, provider: &str| {
        run(
            cmd(
                &state,
                Some(&key),
                &[
                    "connect",
                    "test",
                    provider,
                    "--tenant",
                    tenant,
                    "--sandbox",
                    "--rules",
                    r,
                ],
            ),
            "",
        )
    };
    set(
        "good",
        "hubspot",
        &format!("token={}\n", sandbox_cred("HUBSPOT_TOKEN")),
    );
    set("bad", "hubspot", "token=pat-not-a-real-token\n");
    set(
        "good",
        "chatwoot",
        &format!(
            "api_key={}\naccount_id=1\n",
            sandbox_cred("CHATWOOT_API_KEY")
        ),
    );
    set("bad", "chatwoot", "api_key=revoked\naccount_id=1\n");

    for provider in ["hubspot", "chatwoot"] {
        let out = test("good", provider);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .starts_with(&format!("{provider} (tenant good): connected (GET ")),
            "{}",
            text(&out)
        );
        let out = test("bad", provider);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with(&format!("{provider} (tenant bad): failed (auth 401, GET ")),
            "{}",
            text(&out)
        );
        assert!(text(&out).contains("hint: check the credentials"));
        // A tenant with nothing stored falls back to the environment (with --sandbox, the
        // sandbox's credentials stand in for it).
        let out = test("nobody", provider);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    // The sandbox's own credentials (no tenant) connect; a JSON report says the same.
    let mut c = cmd(
        &state,
        Some(&key),
        &[
            "connect",
            "test",
            "salesforce",
            "--sandbox",
            "--rules",
            r,
            "--format",
            "json",
        ],
    );
    c.env_remove("RULEBRIDGE_MASTER_KEY");
    let out = run(c, "");
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["request"], "GET /limits");
}

#[test]
fn a_tenants_runs_use_its_credentials_and_keep_its_own_state() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.db");
    let key = keygen(&state);
    let r = rules();
    let r = r.to_str().unwrap();
    let set = |tenant: &str, lines: &str| {
        let out = run(
            cmd(
                &state,
                Some(&key),
                &["creds", "set", "chatwoot", "--tenant", tenant, "--rules", r],
            ),
            lines,
        );
        assert!(out.status.success(), "{}", text(&out));
    };
    set(
        "a",
        &format!(
            "api_key={}\naccount_id=1\n",
            sandbox_cred("CHATWOOT_API_KEY")
        ),
    );
    set("b", "api_key=b-token-the-sandbox-refuses\naccount_id=1\n");
    let input = tmp.path().join("users.ndjson");
    std::fs::write(
        &input,
        "{\"user_id\": 1, \"email\": \"ann@example.com\", \"first_name\": \"Ann\", \"created_at\": \"2024-01-02\"}\n",
    )
    .unwrap();
    let input = input.to_str().unwrap();
    let send = |tenant: &str| {
        let out = run(
            cmd(
                &state,
                Some(&key),
                &[
                    "run",
                    "contact_to_chatwoot",
                    "--rules",
                    r,
                    "--sandbox",
                    "--state",
                    state.to_str().unwrap(),
                    "--tenant",
                    tenant,
                    "--input",
                    input,
                ],
            ),
            "",
        );
        let o: Value = serde_json::from_str(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or("null"),
        )
        .unwrap();
        (o, text(&out))
    };
    let (a, log) = send("a");
    assert_eq!(a["status"], "created", "{log}");
    let (b, log) = send("b");
    assert_eq!(
        b["status"], "failed",
        "b's own (bad) key was used, not a's: {log}"
    );
    assert_eq!(b["error"]["kind"], "auth", "{log}");
    // Each tenant's runs and changelog are its own.
    let rows = |what: &str, tenant: &str| -> Vec<Value> {
        let out = run(
            cmd(
                &state,
                Some(&key),
                &[what, "--tenant", tenant, "--format", "json"],
            ),
            "",
        );
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (runs_a, runs_b) = (rows("runs", "a"), rows("runs", "b"));
    assert_eq!(runs_a.len(), 1);
    assert_eq!(runs_b.len(), 1);
    assert!(runs_a.iter().all(|r| r["tenant"] == "a"));
    assert_eq!(runs_b[0]["counters"]["failed"], 1);
    let log_a = rows("log", "a");
    assert_eq!(log_a.len(), 1);
    assert_eq!(log_a[0]["action"], "created");
    assert!(
        rows("log", "b")
            .iter()
            .all(|c| c["tenant"] == "b" && c["action"] == "failed")
    );
    assert!(rows("runs", "").is_empty(), "no run of the default tenant");
    // A named tenant without the master key is refused, not run with the environment's.
    let out = run(
        cmd(
            &state,
            None,
            &[
                "run",
                "contact_to_chatwoot",
                "--rules",
                r,
                "--sandbox",
                "--tenant",
                "a",
                "--input",
                input,
            ],
        ),
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("--tenant a reads the tenant's credentials"),
        "{}",
        text(&out)
    );
}
