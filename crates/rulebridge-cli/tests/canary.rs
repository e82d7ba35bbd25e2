//! The canary test: with one canary value in every credential, run every command against a
//! sandbox whose error answers echo the request (headers, body, URL) and the answer, with
//! logs at trace level, and find the canary nowhere — not in standard output, not in standard
//! error, not in any file written — in any encoding it could travel in (as written, JSON,
//! percent and form encoding, base64 standard and URL-safe with and without padding, inside a
//! Basic `user:pass`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Characters that change under every encoding: `+`, `/`, `=`, space and `&`.
const CANARY: &str = "cnry-Q7+x/Zk9=wV &tail";

fn percent(text: &str, upper: bool) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

fn form(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b' ' => "+".to_string(),
            b if b.is_ascii_alphanumeric() || b"-._*".contains(&b) => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Every form the canary can take in output.
fn forms() -> Vec<String> {
    let mut out = vec![
        CANARY.to_string(),
        serde_json::to_string(CANARY)
            .unwrap_or_default()
            .trim_matches('"')
            .to_string(),
        percent(CANARY, true),
        percent(CANARY, false),
        form(CANARY),
    ];
    for e in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        out.push(e.encode(CANARY));
        // Basic auth and OAuth client authentication (both halves URL-encoded first).
        out.push(e.encode(format!("{CANARY}:{CANARY}")));
        out.push(e.encode(format!("{}:{}", form(CANARY), form(CANARY))));
        // Inside any longer base64 text, at each alignment: the characters the canary alone
        // decides.
        for offset in 0..3usize {
            let mut bytes = vec![b'u'; offset];
            bytes.extend_from_slice(CANARY.as_bytes());
            let enc = e.encode(&bytes);
            let start = (8 * offset).div_ceil(6);
            let end = (8 * (offset + CANARY.len())) / 6;
            out.push(enc[start..end.min(enc.len())].to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

struct Run {
    what: String,
    stdout: String,
    stderr: String,
}

fn rulebridge(args: &[&str], env: &[(String, String)], cwd: &Path) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_rulebridge"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    Run {
        what: args.join(" "),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// [`rulebridge`] with `stdin` as standard input (values for `creds set`).
fn rulebridge_stdin(args: &[&str], env: &[(String, String)], cwd: &Path, stdin: &str) -> Run {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rulebridge"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("the binary runs");
    Run {
        what: args.join(" "),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the directory");
    for entry in std::fs::read_dir(from).expect("read the rules").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a rule file");
        }
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            files_under(&entry.path(), out);
        } else {
            out.push(entry.path());
        }
    }
}

const RECORDS: &[(&str, &str)] = &[
    (
        "contact_to_chatwoot",
        r#"{"user_id":42,"email":"ada@example.com","full_name":"Ada Lovelace","phone":"+14155550132","created_at":"2024-01-10T08:15:00Z"}"#,
    ),
    ("department_to_jamf", r#"{"name":"Engineering"}"#),
    (
        "employee_to_jamf",
        r#"{"crm_id":"crm-1","employee_id":"e-1","email":"ada@example.com","full_name":"Ada Lovelace","department":"IT","device":{"serial":"C02X1","platform":"macOS","os_version":"15.0"}}"#,
    ),
    (
        "lead_to_hubspot",
        r#"{"email":"ada@example.com","name":"Ada King Lovelace","company":"Analytical Engines","phone":"(415) 555-0132","score":91,"country":"us","source":"webinar"}"#,
    ),
    (
        "lead_to_salesforce",
        r#"{"email":"ada@example.com","name":"Ada King Lovelace","company":"Analytical Engines","score":91,"source":"webinar"}"#,
    ),
    (
        "client_to_task_crm",
        r#"{"id":1,"name":"Acme","email":"ops@acme.io"}"#,
    ),
    (
        "user_to_task_crm",
        r#"{"id":1,"email":"ada@example.com","name":"Ada"}"#,
    ),
    (
        "wrapper_users_to_crm",
        r#"{"id":"u-1","email":"ada@example.com","name":"Ada","tenant_id":"t-1","tenant_name":"Tenant One"}"#,
    ),
];

#[test]
fn the_canary_never_leaves_the_process() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let sandbox = rt
        .block_on(rulebridge_sandbox::start(
            rulebridge_sandbox::SandboxConfig {
                faults: rulebridge_sandbox::Faults {
                    echo_errors: true,
                    ..Default::default()
                },
                ..Default::default()
            },
        ))
        .expect("start the sandbox");

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let work = tempfile::tempdir().expect("a temporary directory");
    let rules = work.path().join("rules");
    copy_dir(&root.join("rules"), &rules);
    let rules_arg = rules.to_string_lossy().into_owned();

    // The canary in every credential the kits and flows read.
    let mut env: Vec<(String, String)> = rulebridge_sandbox::CREDENTIALS
        .iter()
        .map(|(name, _)| (name.to_string(), CANARY.to_string()))
        .collect();
    for extra in [
        "GENERIC_REST_API_KEY",
        "GENERIC_REST_SIGNING_KEY",
        "VAULT_TOKEN",
    ] {
        env.push((extra.to_string(), CANARY.to_string()));
    }
    let mut base_urls = Vec::new();
    for (kit, _, _) in rulebridge_sandbox::KITS {
        if let Some(url) = sandbox.kit_base_url(kit) {
            base_urls.push(format!("{kit}={url}"));
        }
    }

    let mut runs = vec![
        rulebridge(&["lint", &rules_arg], &env, work.path()),
        rulebridge(&["lint", "--format", "json", &rules_arg], &env, work.path()),
        rulebridge(&["test", &rules_arg], &env, work.path()),
        rulebridge(&["functions"], &env, work.path()),
        rulebridge(&["schema"], &env, work.path()),
    ];
    for (flow, record) in RECORDS {
        let input = work.path().join(format!("{flow}.ndjson"));
        std::fs::write(&input, format!("{record}\n")).expect("write the input");
        let input = input.to_string_lossy().into_owned();
        for format in ["text", "json"] {
            runs.push(rulebridge(
                &["plan", flow, "--rules", &rules_arg, "--format", format],
                &env,
                work.path(),
            ));
        }
        let mut args = vec![
            "run",
            flow,
            "--rules",
            &rules_arg,
            "--input",
            &input,
            "--payloads",
        ];
        for b in &base_urls {
            args.extend(["--base-url", b.as_str()]);
        }
        let mut dry = args.clone();
        dry.push("--dry-run");
        runs.push(rulebridge(&dry, &env, work.path()));
        let mut send = args.clone();
        send.extend(["--record-timeout", "20"]);
        runs.push(rulebridge(&send, &env, work.path()));
    }
    for (provider, object) in [
        ("hubspot", "contact"),
        ("salesforce", "lead"),
        ("chatwoot", "contact"),
        ("task_crm", "client"),
    ] {
        let Some(url) = sandbox.kit_base_url(provider) else {
            continue;
        };
        for format in ["text", "json"] {
            runs.push(rulebridge(
                &[
                    "fields",
                    provider,
                    object,
                    "--rules",
                    &rules_arg,
                    "--base-url",
                    &url,
                    "--format",
                    format,
                ],
                &env,
                work.path(),
            ));
        }
    }
    // The credential store: the canary stored for a tenant (from stdin), listed, tested
    // against providers that echo it back, and sent with by a tenant's run.
    let mut store_env = env.clone();
    store_env.push(("RULEBRIDGE_MASTER_KEY".into(), STANDARD.encode([7u8; 32])));
    store_env.push((
        "RULEBRIDGE_STATE".into(),
        work.path().join("creds.db").to_string_lossy().into_owned(),
    ));
    runs.push(rulebridge_stdin(
        &["creds", "set", "hubspot", "token", "--tenant", "canary"],
        &store_env,
        work.path(),
        CANARY,
    ));
    runs.push(rulebridge_stdin(
        &[
            "creds", "set", "chatwoot", "--tenant", "canary", "--rules", &rules_arg,
        ],
        &store_env,
        work.path(),
        &format!("api_key={CANARY}\naccount_id={CANARY}\n"),
    ));
    for format in ["text", "json"] {
        runs.push(rulebridge(
            &["creds", "list", "--tenant", "canary", "--format", format],
            &store_env,
            work.path(),
        ));
    }
    for provider in ["hubspot", "chatwoot"] {
        let Some(url) = sandbox.kit_base_url(provider) else {
            continue;
        };
        for format in ["text", "json"] {
            runs.push(rulebridge(
                &[
                    "connect",
                    "test",
                    provider,
                    "--tenant",
                    "canary",
                    "--rules",
                    &rules_arg,
                    "--base-url",
                    &url,
                    "--format",
                    format,
                ],
                &store_env,
                work.path(),
            ));
        }
    }
    let input = work.path().join("contact_to_chatwoot.ndjson");
    let input = input.to_string_lossy().into_owned();
    let mut args = vec![
        "run",
        "contact_to_chatwoot",
        "--tenant",
        "canary",
        "--rules",
        &rules_arg,
        "--input",
        &input,
        "--payloads",
        "--record-timeout",
        "20",
    ];
    for b in &base_urls {
        args.extend(["--base-url", b.as_str()]);
    }
    runs.push(rulebridge(&args, &store_env, work.path()));
    runs.push(sandbox_command(&env, work.path()));

    // The runs did reach the providers and were refused with echoes (else the test proves
    // nothing).
    let all: String = runs
        .iter()
        .map(|r| format!("{}{}", r.stdout, r.stderr))
        .collect();
    assert!(
        all.contains("request refused:"),
        "no echoed error body reached the output"
    );

    let forms = forms();
    let mut leaks = Vec::new();
    for run in &runs {
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            for f in &forms {
                if let Some(at) = text.find(f.as_str()) {
                    let from = text[..at]
                        .char_indices()
                        .rev()
                        .nth(80)
                        .map_or(0, |(i, _)| i);
                    let context: String = text[from..].chars().take(200).collect();
                    leaks.push(format!("`{}` {stream}: {f:?} in …{context}…", run.what));
                }
            }
        }
    }
    let mut written = Vec::new();
    files_under(work.path(), &mut written);
    for path in written {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned();
        for f in &forms {
            if text.contains(f.as_str()) {
                leaks.push(format!("file {}: {f:?}", path.display()));
            }
        }
    }
    assert!(leaks.is_empty(), "the canary leaked:\n{}", leaks.join("\n"));
    assert!(all.contains("***"), "nothing was masked");
    rt.block_on(sandbox.shutdown());
}

/// `rulebridge sandbox` with the canary in the environment: serve, print, stop.
fn sandbox_command(env: &[(String, String)], cwd: &Path) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rulebridge"))
        .args(["sandbox", "--port", "0", "--echo-errors"])
        .current_dir(cwd)
        .env("RUST_LOG", "trace")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let mut printed = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let deadline = Instant::now() + Duration::from_secs(10);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line.contains("TASK_CRM_CLIENT_SECRET");
            printed.push(line);
            if done || Instant::now() > deadline {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Run {
        what: "sandbox --echo-errors".into(),
        stdout: printed.join("\n"),
        stderr: String::new(),
    }
}
