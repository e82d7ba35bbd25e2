//! Pacing: provider and per-operation rate limits (checked on the server's clock), and pauses
//! asked for by rate-limit headers.

mod http_support;

use rulebridge::connect::Call;

const CALL: Call = Call { deadline: None };
use std::time::{Duration, Instant};

use http_support::{Reply, Seen, connector, serve, simple};
use rulebridge::connect::Connector;
use serde_json::json;

/// The most requests seen in any window of length `window`.
fn busiest_window(seen: &[Seen], window: Duration) -> usize {
    let mut at: Vec<Instant> = seen.iter().map(|s| s.at).collect();
    at.sort();
    (0..at.len())
        .map(|i| at[i..].iter().take_while(|t| **t - at[i] < window).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn no_window_holds_more_than_the_limit() {
    let server = serve(|_, _| Reply::json(201, json!({"id": "1"}))).await;
    let c = connector(&simple("none", "rate_limit: 5 per 1s"), &server, &[]);
    let start = Instant::now();
    let calls = (0..15).map(|i| {
        let c = &c;
        async move {
            c.create(&Call::default(), "contact", &json!({"n": i}))
                .await
        }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok));
    let elapsed = start.elapsed();
    let seen = server.seen();
    assert_eq!(seen.len(), 15);
    assert!(
        busiest_window(&seen, Duration::from_secs(1)) <= 5,
        "{:?}",
        seen.iter().map(|s| s.at - start).collect::<Vec<_>>()
    );
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn an_operation_limit_paces_only_that_operation() {
    let server = serve(|s, _| match s.path.as_str() {
        "/contacts/search" => Reply::json(200, json!({"results": []})),
        _ => Reply::json(201, json!({"id": "1"})),
    })
    .await;
    let yaml = r#"kind: provider
name: test
base_url: http://placeholder.invalid
rate_limit: 100 per 1s
objects:
  contact:
    operations:
      search: { method: POST, path: /contacts/search, body: { q: "{{ key }}" }, results: "$.results[*]", rate_limit: 2 per 1s }
      create: { method: POST, path: /contacts, body: "{{ payload }}", id: "$.id" }
"#;
    let c = connector(yaml, &server, &[]);
    let start = Instant::now();
    let empty = json!({});
    let creates =
        futures::future::join_all((0..6).map(|_| c.create(&CALL, "contact", &empty))).await;
    assert!(creates.iter().all(Result::is_ok));
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );

    let start = Instant::now();
    let searches = futures::future::join_all((0..4).map(|i| {
        c.search(
            &CALL,
            "contact",
            "email",
            if i % 2 == 0 { "a" } else { "b" },
        )
    }))
    .await;
    assert!(searches.iter().all(Result::is_ok));
    let seen = server.to("/contacts/search");
    assert!(busiest_window(&seen, Duration::from_secs(1)) <= 2);
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn an_exhausted_window_pauses_everyone() {
    let server = serve(|_, n| match n {
        0 => Reply::json(201, json!({"id": "1"}))
            .header("X-RateLimit-Remaining", "0")
            .header("X-RateLimit-Reset", "1"),
        _ => Reply::json(201, json!({"id": "2"})),
    })
    .await;
    let c = connector(&simple("none", ""), &server, &[]);
    assert!(
        c.create(&Call::default(), "contact", &json!({}))
            .await
            .is_ok()
    );
    assert!(
        c.create(&Call::default(), "contact", &json!({}))
            .await
            .is_ok()
    );
    let seen = server.seen();
    assert!(
        seen[1].at - seen[0].at >= Duration::from_secs(1),
        "{:?}",
        seen[1].at - seen[0].at
    );
}

#[tokio::test]
async fn declared_rate_limit_headers_pause_for_the_interval() {
    let server = serve(|_, n| match n {
        0 => Reply::json(201, json!({"id": "1"}))
            .header("X-HubSpot-RateLimit-Max", "100")
            .header("X-HubSpot-RateLimit-Remaining", "0")
            .header("X-HubSpot-RateLimit-Interval-Milliseconds", "600"),
        _ => Reply::json(201, json!({"id": "2"})).header("X-HubSpot-RateLimit-Remaining", "99"),
    })
    .await;
    let c = connector(
        &simple(
            "none",
            "rate_limit_headers: [{ remaining: X-HubSpot-RateLimit-Remaining, reset: X-HubSpot-RateLimit-Interval-Milliseconds, unit: milliseconds }]",
        ),
        &server,
        &[],
    );
    for _ in 0..3 {
        assert!(
            c.create(&Call::default(), "contact", &json!({}))
                .await
                .is_ok()
        );
    }
    let seen = server.seen();
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(600));
    assert!(seen[2].at - seen[1].at < Duration::from_millis(300));
}

#[tokio::test]
async fn rate_limit_headers_the_provider_does_not_declare_are_not_read() {
    let server = serve(|_, n| match n {
        0 => Reply::json(201, json!({"id": "1"}))
            .header("X-HubSpot-RateLimit-Remaining", "0")
            .header("X-HubSpot-RateLimit-Interval-Milliseconds", "600"),
        _ => Reply::json(201, json!({"id": "2"})),
    })
    .await;
    let c = connector(&simple("none", ""), &server, &[]);
    for _ in 0..2 {
        assert!(
            c.create(&Call::default(), "contact", &json!({}))
                .await
                .is_ok()
        );
    }
    let seen = server.seen();
    assert!(seen[1].at - seen[0].at < Duration::from_millis(300));
}

#[tokio::test]
async fn waiting_for_a_permit_ends_at_the_deadline() {
    let server = serve(|_, _| Reply::json(201, json!({"id": "1"}))).await;
    let c = connector(&simple("none", "rate_limit: 1 per 2s"), &server, &[]);
    assert!(
        c.create(&Call::default(), "contact", &json!({}))
            .await
            .is_ok()
    );
    let start = Instant::now();
    let e = c
        .create(
            &Call::with_deadline(Some(start + Duration::from_millis(200))),
            "contact",
            &json!({}),
        )
        .await
        .expect_err("no permit before the deadline");
    assert_eq!(e.kind, rulebridge::connect::ErrorKind::Transient);
    assert!(start.elapsed() < Duration::from_millis(600));
    assert_eq!(server.seen().len(), 1);
}
