//! `rulebridge sandbox` serves the fakes and prints where they are.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Stops the server even when an assertion fails.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sandbox_command_serves_and_prints_base_urls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rulebridge"))
        .args(["sandbox", "--port", "0", "--seed", "7", "--latency-ms", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let _server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .strip_prefix("sandbox listening on ")
        .expect("first line names the address")
        .to_string();
    let mut printed = vec![first];
    let deadline = Instant::now() + Duration::from_secs(10);
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("TASK_CRM_CLIENT_SECRET");
        printed.push(line);
        if done || Instant::now() > deadline {
            break;
        }
    }
    let text = printed.join("\n");
    for want in [
        format!("hubspot         {url}/hubspot"),
        format!("{url}/salesforce/services/data/v58.0  {url}/salesforce/services/oauth2/token"),
        "HUBSPOT_TOKEN=sandbox-hubspot-token".to_string(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{url}/hubspot/crm/v3/objects/contacts"))
            .bearer_auth("sandbox-hubspot-token")
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    assert_eq!(status.unwrap(), 200);
}

#[test]
fn sandbox_command_rejects_bad_rates() {
    let out = Command::new(env!("CARGO_BIN_EXE_rulebridge"))
        .args(["sandbox", "--error-rate", "1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--error-rate"));
}
