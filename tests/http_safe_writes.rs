//! Writes that are safe to retry, against a real local server: a create whose answer was lost
//! (hung up after the request was read, a timeout, a 500) is not sent again but reported with
//! `outcome_unknown`; failures that say the request was not processed are retried; updates,
//! searches and idempotent creates are retried; a token refresh that fails for now is retried.

mod http_support;

use std::time::{Duration, Instant};

use http_support::{Reply, connector, options, provider, serve, simple};
use rulebridge::connect::http::HttpConnector;
use rulebridge::connect::{Call, Connector, ErrorKind};
use serde_json::json;

const QUICK: &str =
    "retry: { attempts: 4, base: 10ms, max: 20ms, on: [429, 500, 502, 503, 504, network] }";

fn created() -> Reply {
    Reply::json(201, json!({"id": "7"}))
}

/// The first `failures` requests to `path` get `fail()`, the others `ok()`.
fn failing_first(
    path: &'static str,
    failures: usize,
    fail: fn() -> Reply,
    ok: fn() -> Reply,
) -> impl Fn(&http_support::Seen, usize) -> Reply {
    move |s, n| {
        if s.path == path && n < failures {
            fail()
        } else {
            ok()
        }
    }
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_not_sent_again() {
    let server = serve(failing_first("/contacts", 1, Reply::hang_up, created)).await;
    let c = connector(&simple("none", QUICK), &server, &[]);
    let e = c
        .create(&Call::default(), "contact", &json!({"email": "a@x.com"}))
        .await
        .expect_err("the answer was lost");
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(e.outcome_unknown, "{e:?}");
    assert_eq!(server.to("/contacts").len(), 1, "sent once only");
}

#[tokio::test]
async fn a_create_meeting_a_5xx_is_not_sent_again() {
    for status in [500u16, 502, 503, 504] {
        let server = serve(move |s, _| match s.path.as_str() {
            "/contacts" => Reply::json(status, json!({"message": "oops"})),
            _ => created(),
        })
        .await;
        let c = connector(&simple("none", QUICK), &server, &[]);
        let e = c
            .create(&Call::default(), "contact", &json!({}))
            .await
            .expect_err("5xx");
        assert_eq!(
            (e.kind, e.status, e.outcome_unknown),
            (ErrorKind::Transient, Some(status), true),
            "{status}"
        );
        assert_eq!(server.to("/contacts").len(), 1, "{status}: sent once only");
    }
}

#[tokio::test]
async fn a_timed_out_create_is_not_sent_again() {
    let server = serve(|_, _| created().after(Duration::from_millis(800))).await;
    let c = connector(
        &simple(
            "none",
            "timeout: 150ms\nretry: { attempts: 3, base: 10ms, max: 20ms, on: [network] }",
        ),
        &server,
        &[],
    );
    let e = c
        .create(&Call::default(), "contact", &json!({}))
        .await
        .expect_err("too slow");
    assert!(
        e.outcome_unknown && e.message.contains("timed out"),
        "{e:?}"
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_create_refused_unprocessed_is_retried() {
    // 429, 408 and a 503 that says when to come back were not processed.
    for fail in [
        (|| Reply::json(429, json!({"message": "slow down"}))) as fn() -> Reply,
        || Reply::json(408, json!({"message": "request timeout"})),
        || Reply::json(503, json!({"message": "maintenance"})).header("Retry-After", "0"),
    ] {
        let server = serve(failing_first("/contacts", 2, fail, created)).await;
        let c = connector(
            &simple(
                "none",
                "retry: { attempts: 4, base: 10ms, max: 20ms, on: [408, 429, 503, network] }",
            ),
            &server,
            &[],
        );
        let w = c.create(&Call::default(), "contact", &json!({})).await;
        assert_eq!(w.map(|w| w.id), Ok(Some("7".into())));
        assert_eq!(server.to("/contacts").len(), 3);
    }
}

#[tokio::test]
async fn a_refused_connection_is_retried_for_a_create() {
    // Nothing listens on this port: the request is never sent, so it may go again.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let server = serve(|_, _| created()).await;
    let mut opts = options(&server, &[]);
    opts.base_url = Some(format!("http://127.0.0.1:{port}"));
    let yaml = simple(
        "none",
        "retry: { attempts: 3, base: 60ms, max: 60ms, on: [network] }",
    );
    let c = HttpConnector::new(&provider(&yaml), opts).expect("build");
    let started = Instant::now();
    let e = c
        .create(&Call::default(), "contact", &json!({}))
        .await
        .expect_err("nobody listens");
    assert!(!e.outcome_unknown, "{e:?}");
    assert!(e.message.contains("could not connect"), "{e:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(120),
        "two waits before the second and third attempt: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn updates_and_searches_are_retried_after_a_lost_answer() {
    let server = serve(|s, n| match (s.method.as_str(), n) {
        (_, 0) => Reply::hang_up(),
        (_, 1) => Reply::json(500, json!({"message": "oops"})),
        ("PATCH", _) => Reply::json(200, json!({"id": "7"})),
        _ => Reply::json(200, json!({"results": [{"id": "7", "properties": {}}]})),
    })
    .await;
    let c = connector(&simple("none", QUICK), &server, &[]);
    let w = c
        .update(&Call::default(), "contact", "7", &json!({"a": 1}))
        .await;
    assert_eq!(w.map(|w| w.id), Ok(Some("7".into())));
    let found = c
        .search(&Call::default(), "contact", "email", "a@x.com")
        .await
        .expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(server.to("/contacts/7").len(), 3);
    assert_eq!(server.to("/contacts/search").len(), 3);
}

#[tokio::test]
async fn an_idempotent_create_is_retried() {
    let server = serve(failing_first("/contacts", 2, Reply::hang_up, created)).await;
    let yaml = simple("none", QUICK).replace(
        r#"id: "$.id" }
      update"#,
        r#"id: "$.id", idempotent: true }
      update"#,
    );
    assert!(yaml.contains("idempotent: true"));
    let c = connector(&yaml, &server, &[]);
    assert!(c.capabilities("contact").idempotent_create);
    let w = c.create(&Call::default(), "contact", &json!({})).await;
    assert_eq!(w.map(|w| w.id), Ok(Some("7".into())));
    assert_eq!(server.to("/contacts").len(), 3);
    // Without the declaration the connector cannot know.
    let plain = connector(&simple("none", QUICK), &server, &[]);
    assert!(!plain.capabilities("contact").idempotent_create);
}

const REFRESH_AUTH: &str = r#"{ type: oauth2_refresh, token_url: /oauth/token, client_id: "${env:CID}", client_secret: "${env:CSECRET}", refresh_token: "${env:RT}" }"#;
const REFRESH_SECRETS: &[(&str, &str)] = &[("CID", "client-1"), ("CSECRET", "cs-1"), ("RT", "rt0")];

fn token(n: usize) -> Reply {
    Reply::json(
        200,
        json!({"access_token": format!("t{n}"), "token_type": "bearer"}),
    )
}

#[tokio::test]
async fn a_token_refresh_that_fails_for_now_is_retried() {
    // The first token is refused (revoked); the refresh meets a 503 and then a dropped
    // connection; the third refresh works and the create goes through with it, once.
    let server = serve(|s, n| match (s.path.as_str(), n) {
        ("/oauth/token", 0) => token(0),
        ("/oauth/token", 1) => Reply::json(503, json!({"message": "maintenance"})),
        ("/oauth/token", 2) => Reply::hang_up(),
        ("/oauth/token", n) => token(n),
        _ if s.header("authorization") == Some("Bearer t0") => {
            Reply::json(401, json!({"message": "expired"}))
        }
        _ => created(),
    })
    .await;
    let c = connector(&simple(REFRESH_AUTH, QUICK), &server, REFRESH_SECRETS);
    let w = c.create(&Call::default(), "contact", &json!({})).await;
    assert_eq!(w.map(|w| w.id), Ok(Some("7".into())));
    assert_eq!(server.to("/oauth/token").len(), 4);
    let data: Vec<Option<String>> = server
        .to("/contacts")
        .iter()
        .map(|s| s.header("authorization").map(str::to_string))
        .collect();
    assert_eq!(
        data,
        [Some("Bearer t0".to_string()), Some("Bearer t3".to_string())],
        "refused once, then created with the new token"
    );
}

#[tokio::test]
async fn a_first_token_that_fails_for_now_is_retried() {
    let server = serve(|s, n| match (s.path.as_str(), n) {
        ("/oauth/token", 0) => Reply::hang_up(),
        ("/oauth/token", n) => token(n),
        _ => created(),
    })
    .await;
    let c = connector(&simple(REFRESH_AUTH, QUICK), &server, REFRESH_SECRETS);
    let w = c.create(&Call::default(), "contact", &json!({})).await;
    assert_eq!(w.map(|w| w.id), Ok(Some("7".into())));
    assert_eq!(server.to("/oauth/token").len(), 2);
    assert_eq!(server.to("/contacts").len(), 1);
}

#[tokio::test]
async fn a_token_refresh_refused_for_good_is_an_auth_error() {
    let server = serve(|s, n| match (s.path.as_str(), n) {
        ("/oauth/token", 0) => token(0),
        ("/oauth/token", _) => Reply::json(400, json!({"error": "invalid_grant"})),
        _ => Reply::json(401, json!({"message": "expired"})),
    })
    .await;
    let c = connector(&simple(REFRESH_AUTH, QUICK), &server, REFRESH_SECRETS);
    let e = c
        .create(&Call::default(), "contact", &json!({}))
        .await
        .expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Auth, "{e:?}");
    assert_eq!(server.to("/oauth/token").len(), 2, "not retried");
}
