//! Retries against real faults: 5xx, `Retry-After`, timeouts, dropped connections, deadlines.
//! Updates stand for requests that may be repeated; creates are in `http_safe_writes`.

mod http_support;

use rulebridge::connect::Call;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_support::{Reply, connector, options, provider, serve, simple};
use rulebridge::connect::http::HttpConnector;
use rulebridge::connect::{Connector, ErrorKind};
use serde_json::json;

const NONE: &str = "none";

fn retry(extra: &str) -> String {
    simple(NONE, extra)
}

#[tokio::test]
async fn a_503_is_retried_until_it_succeeds() {
    let server = serve(|_, n| match n {
        0 | 1 => Reply::json(503, json!({"message": "busy"})),
        _ => Reply::json(201, json!({"id": "9"})),
    })
    .await;
    let c = connector(
        &retry("retry: { attempts: 4, base: 10ms, max: 50ms, on: [503] }"),
        &server,
        &[],
    );
    let w = c
        .update(
            &Call::default(),
            "contact",
            "9",
            &json!({"email": "a@x.com"}),
        )
        .await;
    assert_eq!(w.map(|w| w.id), Ok(Some("9".into())));
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn retry_after_wins_over_the_computed_wait() {
    let server = serve(|_, n| match n {
        0 => Reply::json(429, json!({"message": "slow down"})).header("Retry-After", "1"),
        _ => Reply::json(201, json!({"id": "1"})),
    })
    .await;
    let c = connector(
        &retry("retry: { attempts: 3, base: 10ms, max: 100ms, on: [429] }"),
        &server,
        &[],
    );
    let start = Instant::now();
    assert!(
        c.create(&Call::default(), "contact", &json!({}))
            .await
            .is_ok()
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1].at - seen[0].at >= Duration::from_secs(1),
        "waited {:?}",
        seen[1].at - seen[0].at
    );
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn rate_limited_after_the_last_attempt() {
    let server = serve(|_, _| {
        Reply::json(
            429,
            json!({"message": "You have reached your ten_secondly_rolling limit."}),
        )
    })
    .await;
    let c = connector(
        &retry("retry: { attempts: 2, base: 10ms, max: 20ms }"),
        &server,
        &[],
    );
    let e = c
        .create(&Call::default(), "contact", &json!({}))
        .await
        .expect_err("limited");
    assert_eq!((e.kind, e.status), (ErrorKind::RateLimited, Some(429)));
    assert_eq!(
        e.message,
        "You have reached your ten_secondly_rolling limit."
    );
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn a_400_is_never_retried() {
    let server = serve(|_, _| {
        Reply::json(400, json!({"status": "error", "message": "Property values were not valid", "category": "VALIDATION_ERROR",
            "errors": [{"message": "bad option", "code": "INVALID_OPTION", "context": {"propertyName": ["lifecyclestage"]}}]}))
    })
    .await;
    // Even when a kit lists it.
    let c = connector(
        &retry(
            "retry: { attempts: 5, base: 10ms, on: [400, 503] }\nerrors:\n  - { status: 400, kind: validation, field: \"body.errors[0].context.propertyName[0]\" }",
        ),
        &server,
        &[],
    );
    let e = c
        .create(&Call::default(), "contact", &json!({}))
        .await
        .expect_err("invalid");
    assert_eq!((e.kind, e.status), (ErrorKind::Validation, Some(400)));
    assert_eq!(e.message, "Property values were not valid");
    assert_eq!(e.field.as_deref(), Some("lifecyclestage"));
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_timeout_is_retried_then_transient() {
    let server =
        serve(|_, _| Reply::json(201, json!({"id": "1"})).after(Duration::from_secs(2))).await;
    let c = connector(
        &retry("timeout: 200ms\nretry: { attempts: 2, base: 10ms, max: 20ms, on: [network] }"),
        &server,
        &[],
    );
    let start = Instant::now();
    let e = c
        .update(&Call::default(), "contact", "9", &json!({}))
        .await
        .expect_err("too slow");
    assert_eq!((e.kind, e.status), (ErrorKind::Transient, None));
    assert!(e.message.contains("timed out"), "{}", e.message);
    assert_eq!(server.seen().len(), 2);
    assert!(start.elapsed() < Duration::from_millis(1500));
}

/// A server that accepts connections and closes them without a word.
async fn hang_up_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn a_dropped_connection_is_retried_then_transient() {
    let (url, accepted) = hang_up_server().await;
    let yaml = retry("retry: { attempts: 3, base: 10ms, max: 20ms, on: [503, network] }");
    let server = serve(|_, _| Reply::empty(200)).await;
    let mut opts = options(&server, &[]);
    opts.base_url = Some(url);
    let c = HttpConnector::new(&provider(&yaml), opts).expect("build");
    let e = c
        .update(&Call::default(), "contact", "9", &json!({}))
        .await
        .expect_err("hung up");
    assert_eq!((e.kind, e.status), (ErrorKind::Transient, None));
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "{e:?}");
}

#[tokio::test]
async fn transport_errors_are_not_retried_without_network() {
    let (url, accepted) = hang_up_server().await;
    let yaml = retry("retry: { attempts: 3, base: 10ms, on: [503] }");
    let server = serve(|_, _| Reply::empty(200)).await;
    let mut opts = options(&server, &[]);
    opts.base_url = Some(url);
    let c = HttpConnector::new(&provider(&yaml), opts).expect("build");
    let e = c
        .create(&Call::default(), "contact", &json!({}))
        .await
        .expect_err("hung up");
    assert_eq!(e.kind, ErrorKind::Transient);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn no_attempt_starts_after_the_deadline() {
    let server = serve(|_, _| Reply::json(503, json!({"message": "down"}))).await;
    let c = connector(
        &retry("retry: { attempts: 10, base: 150ms, max: 150ms, on: [503] }"),
        &server,
        &[],
    );
    let start = Instant::now();
    let deadline = start + Duration::from_millis(400);
    let e = c
        .update(
            &Call::with_deadline(Some(deadline)),
            "contact",
            "9",
            &json!({}),
        )
        .await
        .expect_err("down");
    assert_eq!((e.kind, e.status), (ErrorKind::Transient, Some(503)));
    assert!(
        start.elapsed() < Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
    let seen = server.seen();
    assert!((1..=3).contains(&seen.len()), "{}", seen.len());
    assert!(seen.iter().all(|s| s.at <= deadline));

    // A deadline already passed: nothing is sent.
    let before = server.seen().len();
    let e = c
        .update(
            &Call::with_deadline(Some(Instant::now())),
            "contact",
            "9",
            &json!({}),
        )
        .await
        .expect_err("too late");
    assert_eq!(e.kind, ErrorKind::Transient);
    assert_eq!(server.seen().len(), before);
}
