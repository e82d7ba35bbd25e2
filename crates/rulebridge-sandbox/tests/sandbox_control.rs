//! The control API and fault injection, seen from a real HTTP client.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use rulebridge_sandbox::{self as sandbox, Faults, Sandbox, SandboxConfig, StateSnapshot};
use serde_json::{Value, json};

const TOKEN: &str = "sandbox-hubspot-token";

async fn start(config: SandboxConfig) -> (Sandbox, Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sb = sandbox::start(config).await.expect("sandbox starts");
    (sb, Client::new())
}

fn contacts(sb: &Sandbox) -> String {
    format!("{}/crm/v3/objects/contacts", sb.base_url("hubspot"))
}

async fn create(
    c: &Client,
    sb: &Sandbox,
    email: &str,
) -> Result<reqwest::Response, reqwest::Error> {
    c.post(contacts(sb))
        .bearer_auth(TOKEN)
        .json(&json!({"properties": {"email": email}}))
        .send()
        .await
}

#[tokio::test]
async fn error_rate_one_fails_everything_and_writes_nothing() {
    let (sb, c) = start(SandboxConfig {
        faults: Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..12 {
        let resp = create(&c, &sb, &format!("e{i}@example.com")).await.unwrap();
        let status = resp.status().as_u16();
        assert!([500, 502, 503].contains(&status), "{status}");
        if status == 500 {
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["status"], "error");
            assert_eq!(body["category"], "INTERNAL_ERROR");
        } else if status == 503 {
            assert_eq!(resp.headers()["retry-after"], "1");
        }
        seen.insert(status);
    }
    assert!(seen.len() >= 2, "several kinds of 5xx: {seen:?}");
    let state = sb.state();
    assert!(state.records("hubspot", "contacts").is_empty());
    assert_eq!(state.provider("hubspot").unwrap().injected_errors, 12);
    // The control API itself is never faulted.
    let resp = c
        .get(format!("{}/_sandbox/state?log=false", sb.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn dropped_connections_are_connection_errors() {
    let (sb, c) = start(SandboxConfig {
        faults: Faults {
            drop_rate: 1.0,
            ..Faults::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let err = create(&c, &sb, "drop@example.com").await.unwrap_err();
    assert!(err.status().is_none(), "no HTTP status: {err:?}");
    assert!(!err.is_timeout());
    assert!(err.is_request() || err.is_connect(), "{err:?}");
    assert!(sb.state().records("hubspot", "contacts").is_empty());
    assert_eq!(sb.state().provider("hubspot").unwrap().dropped, 1);
    assert_eq!(sb.state().provider("hubspot").unwrap().log[0].status, None);

    // Dropped after processing: the client sees an error, yet the record exists.
    sb.set_faults(Faults {
        drop_after_rate: 1.0,
        ..Faults::default()
    });
    let err = create(&c, &sb, "ghost@example.com").await.unwrap_err();
    assert!(err.status().is_none());
    let state = sb.state();
    assert_eq!(state.records("hubspot", "contacts").len(), 1);
    assert_eq!(
        state.provider("hubspot").unwrap().log[1].fault.as_deref(),
        Some("drop_after")
    );

    // Faults off: the same client works again on a fresh connection.
    sb.set_faults(Faults::none());
    let resp = create(&c, &sb, "ghost@example.com").await.unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
}

async fn statuses(seed: u64) -> Vec<u16> {
    let (sb, c) = start(SandboxConfig {
        seed,
        faults: Faults {
            error_rate: 0.4,
            ..Faults::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let mut out = Vec::new();
    for _ in 0..30 {
        let resp = c
            .get(contacts(&sb))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        out.push(resp.status().as_u16());
    }
    out
}

#[tokio::test]
async fn faults_repeat_for_a_seed() {
    let a = statuses(42).await;
    let b = statuses(42).await;
    let other = statuses(43).await;
    assert_eq!(a, b);
    assert_ne!(a, other);
    let failures = a.iter().filter(|s| **s >= 500).count();
    assert!((4..=22).contains(&failures), "{failures} of 30");
}

#[tokio::test]
async fn latency_and_jitter() {
    let (sb, c) = start(SandboxConfig::default()).await;
    sb.set_faults(Faults {
        latency_ms: 150,
        jitter_ms: 50,
        ..Faults::default()
    });
    let t = Instant::now();
    let resp = c
        .get(contacts(&sb))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(150), "{took:?}");
    assert!(sb.state().provider("hubspot").unwrap().log[0].duration_ms >= 150);
}

#[tokio::test]
async fn control_api_changes_faults_resets_and_reports_state() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let ctl = format!("{}/_sandbox", sb.url());

    // A 429 storm: limits lowered to a tenth (100 per 10 s → 10).
    let resp = c
        .post(format!("{ctl}/faults"))
        .json(&json!({"rate_limit_factor": 0.1, "providers": ["hubspot"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let faults: Value = resp.json().await.unwrap();
    assert_eq!(faults["rate_limit_factor"], 0.1);
    assert_eq!(faults["error_rate"], 0.0);
    let mut codes = Vec::new();
    for _ in 0..12 {
        let resp = c
            .get(contacts(&sb))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        codes.push(resp.status().as_u16());
    }
    assert_eq!(codes.iter().filter(|s| **s == 429).count(), 2);

    // Typos are refused rather than ignored.
    let resp = c
        .post(format!("{ctl}/faults"))
        .json(&json!({"eror_rate": 0.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = c
        .post(format!("{ctl}/faults"))
        .json(&json!({"error_rate": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let snap: StateSnapshot = c
        .get(format!("{ctl}/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hs = &snap.providers["hubspot"];
    assert_eq!(hs.requests, 12);
    assert_eq!(hs.rate_limited, 2);
    let ep = &hs.endpoints["GET /crm/v3/objects/contacts"];
    assert_eq!(ep.statuses["200"], 10);
    assert_eq!(ep.statuses["429"], 2);
    assert_eq!(hs.log.len(), 12);
    assert!(hs.log.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(hs.max_requests_in_window(Duration::from_secs(10), None), 12);
    assert_eq!(snap.faults.rate_limit_factor, 0.1);
    // Every provider is listed.
    for p in sandbox::PROVIDERS {
        assert!(snap.providers.contains_key(*p), "{p}");
    }

    let one: Value = c
        .get(format!("{ctl}/state?provider=hubspot&log=false"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["providers"].as_object().unwrap().len(), 1);
    assert_eq!(one["providers"]["hubspot"]["log"], json!([]));

    let resp = c.post(format!("{ctl}/reset")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let snap = sb.state();
    assert_eq!(snap.providers["hubspot"].requests, 0);
    assert_eq!(snap.faults, Faults::default());
    let resp = c
        .get(contacts(&sb))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // Unknown paths: the provider's own 404, counted as unmatched.
    let resp = c
        .get(format!("{}/crm/v3/nothing", sb.base_url("hubspot")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        sb.state().providers["hubspot"].endpoints["unmatched"].requests,
        1
    );
}

#[tokio::test]
async fn expire_tokens_endpoint_and_shutdown() {
    let (sb, c) = start(SandboxConfig::default()).await;
    let resp = c
        .post(format!("{}/_sandbox/expire-tokens", sb.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["expired"], 0);
    let index: Value = c
        .get(format!("{}/_sandbox", sb.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(index["providers"]["hubspot"], sb.base_url("hubspot"));
    assert_eq!(index["credentials"]["HUBSPOT_TOKEN"], TOKEN);

    let addr = sb.addr();
    assert!(addr.ip().is_loopback());
    sb.shutdown().await;
    let err = Client::new()
        .get(format!("http://{addr}/_sandbox/state"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
}
