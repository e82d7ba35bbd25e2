//! HTTP connector authentication against a local server: every auth kind, token caching and
//! refresh (before expiry, after a 401, single-flight), and credentials kept out of errors.

mod http_support;

use rulebridge::connect::Call;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_support::{Reply, connector, options, provider, serve, simple};
use rulebridge::connect::http::HttpConnector;
use rulebridge::connect::{Connector, ErrorKind};
use serde_json::json;

fn created() -> Reply {
    Reply::json(201, json!({"id": "1"}))
}

#[tokio::test]
async fn api_key_in_a_header() {
    let server = serve(|s, _| match s.header("x-api-key") {
        Some("k-123") => created(),
        _ => Reply::json(401, json!({"message": "no key"})),
    })
    .await;
    let c = connector(
        &simple(
            r#"{ type: api_key, in: header, name: X-Api-Key, value: "${env:KEY}" }"#,
            "",
        ),
        &server,
        &[("KEY", "k-123")],
    );
    let w = c
        .create(&Call::default(), "contact", &json!({"email": "a@x.com"}))
        .await;
    assert_eq!(w.map(|w| w.id), Ok(Some("1".into())));
}

#[tokio::test]
async fn api_key_in_the_query() {
    let server = serve(|s, _| match s.query.as_deref() {
        Some("api_key=q%2F1") => Reply::json(200, json!({"results": [{"id": 5, "updatedAt": "2024-01-01T00:00:00Z", "properties": {"email": "a@x.com"}}]})),
        _ => Reply::json(401, json!({"message": "no key"})),
    })
    .await;
    let c = connector(
        &simple(
            r#"{ type: api_key, in: query, name: api_key, value: "${env:KEY}" }"#,
            "",
        ),
        &server,
        &[("KEY", "q/1")],
    );
    let found = c
        .search(&Call::default(), "contact", "email", "a@x.com")
        .await;
    let found = found.expect("search succeeds");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "5");
    assert_eq!(found[0].updated_at.as_deref(), Some("2024-01-01T00:00:00Z"));
    assert_eq!(found[0].fields, json!({"email": "a@x.com"}));
    assert_eq!(server.seen()[0].body, json!({"q": "a@x.com"}));
}

#[tokio::test]
async fn bearer_and_basic() {
    let server = serve(|s, _| match s.header("authorization") {
        Some("Bearer tok-1") | Some("Basic dXNlcjpwYXNz") => created(),
        _ => Reply::json(401, json!({"message": "who?"})),
    })
    .await;
    let bearer = connector(
        &simple(r#"{ type: bearer, token: "${env:TOKEN}" }"#, ""),
        &server,
        &[("TOKEN", "tok-1")],
    );
    assert!(
        bearer
            .create(&Call::default(), "contact", &json!({}))
            .await
            .is_ok()
    );
    let basic = connector(
        &simple(
            r#"{ type: basic, username: "${env:U}", password: "${env:P}" }"#,
            "",
        ),
        &server,
        &[("U", "user"), ("P", "pass")],
    );
    assert!(
        basic
            .create(&Call::default(), "contact", &json!({}))
            .await
            .is_ok()
    );
    let wrong = connector(
        &simple(r#"{ type: bearer, token: "${env:TOKEN}" }"#, ""),
        &server,
        &[("TOKEN", "nope")],
    );
    let e = wrong
        .create(&Call::default(), "contact", &json!({}))
        .await
        .expect_err("refused");
    assert_eq!((e.kind, e.status), (ErrorKind::Auth, Some(401)));
    assert_eq!(e.message, "who?");
}

/// An OAuth server issuing `at1`, `at2`, ... with `expires_in`; the API accepts tokens newer
/// than `revoked_below` that have not expired.
#[derive(Default)]
struct Tokens {
    issued: u32,
    revoked_below: u32,
    issued_at: Vec<std::time::Instant>,
    lifetime: Option<Duration>,
    refused: u32,
}

fn oauth_server(tokens: Arc<Mutex<Tokens>>) -> impl Fn(&http_support::Seen, usize) -> Reply {
    move |s, _| {
        let mut t = tokens.lock().unwrap_or_else(|e| e.into_inner());
        if s.path == "/oauth/token" {
            t.issued += 1;
            t.issued_at.push(std::time::Instant::now());
            let mut body = json!({"access_token": format!("at{}", t.issued), "token_type": "bearer", "refresh_token": format!("rt{}", t.issued)});
            if let Some(l) = t.lifetime {
                body["expires_in"] = json!(l.as_secs());
            }
            return Reply::json(200, body);
        }
        let n: Option<u32> = s
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer at"))
            .and_then(|n| n.parse().ok());
        let valid = n.is_some_and(|n| {
            n > t.revoked_below
                && t.lifetime.is_none_or(|l| {
                    t.issued_at
                        .get(n as usize - 1)
                        .is_some_and(|at| at.elapsed() < l)
                })
        });
        if valid {
            created()
        } else {
            t.refused += 1;
            Reply::json(
                401,
                json!({"message": "expired", "category": "EXPIRED_AUTHENTICATION"}),
            )
        }
    }
}

const REFRESH_AUTH: &str = r#"{ type: oauth2_refresh, token_url: /oauth/token, client_id: "${env:CID}", client_secret: "${env:CSECRET}", refresh_token: "${env:RT}" }"#;
const REFRESH_SECRETS: &[(&str, &str)] = &[("CID", "client-1"), ("CSECRET", "cs-1"), ("RT", "rt0")];

#[tokio::test]
async fn oauth2_refresh_token() {
    let tokens = Arc::new(Mutex::new(Tokens::default()));
    let server = serve(oauth_server(tokens.clone())).await;
    let c = connector(&simple(REFRESH_AUTH, ""), &server, REFRESH_SECRETS);
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
    let token_requests = server.to("/oauth/token");
    assert_eq!(token_requests.len(), 1, "the token is cached");
    let t = &token_requests[0];
    assert_eq!(t.form("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(t.form("refresh_token").as_deref(), Some("rt0"));
    assert_eq!(t.form("client_id").as_deref(), Some("client-1"));
    assert_eq!(t.form("client_secret").as_deref(), Some("cs-1"));
}

#[tokio::test]
async fn oauth2_client_credentials_with_scopes() {
    let tokens = Arc::new(Mutex::new(Tokens::default()));
    let server = serve(oauth_server(tokens.clone())).await;
    let auth = r#"{ type: oauth2_client_credentials, token_url: /oauth/token, client_id: "${env:CID}", client_secret: "${env:CSECRET}", scopes: [crm.read, crm.write] }"#;
    let c = connector(&simple(auth, ""), &server, REFRESH_SECRETS);
    assert!(
        c.create(&Call::default(), "contact", &json!({}))
            .await
            .is_ok()
    );
    let t = &server.to("/oauth/token")[0];
    assert_eq!(t.form("grant_type").as_deref(), Some("client_credentials"));
    assert_eq!(t.form("scope").as_deref(), Some("crm.read crm.write"));
}

#[tokio::test]
async fn token_refreshed_shortly_before_expiry() {
    let tokens = Arc::new(Mutex::new(Tokens {
        lifetime: Some(Duration::from_secs(1)),
        ..Tokens::default()
    }));
    let server = serve(oauth_server(tokens.clone())).await;
    let c = connector(&simple(REFRESH_AUTH, ""), &server, REFRESH_SECRETS);
    assert!(
        c.create(&Call::default(), "contact", &json!({}))
            .await
            .is_ok()
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        c.create(&Call::default(), "contact", &json!({}))
            .await
            .is_ok()
    );
    assert_eq!(server.to("/oauth/token").len(), 2);
    assert_eq!(
        tokens.lock().map(|t| t.refused).unwrap_or(99),
        0,
        "no request went out with a stale token"
    );
    // The rotated refresh token is used for the second refresh.
    assert_eq!(
        server.to("/oauth/token")[1]
            .form("refresh_token")
            .as_deref(),
        Some("rt1")
    );
}

#[tokio::test]
async fn a_401_refreshes_once_and_retries() {
    let tokens = Arc::new(Mutex::new(Tokens::default()));
    let server = serve(oauth_server(tokens.clone())).await;
    let c = connector(&simple(REFRESH_AUTH, ""), &server, REFRESH_SECRETS);
    assert!(
        c.create(&Call::default(), "contact", &json!({}))
            .await
            .is_ok()
    );
    tokens.lock().map(|mut t| t.revoked_below = 1).ok();
    let w = c.create(&Call::default(), "contact", &json!({})).await;
    assert!(w.is_ok(), "{w:?}");
    assert_eq!(server.to("/oauth/token").len(), 2);
    assert_eq!(server.to("/contacts").len(), 3);
}

#[tokio::test]
async fn a_second_401_is_an_auth_error() {
    let tokens = Arc::new(Mutex::new(Tokens {
        revoked_below: 1000,
        ..Tokens::default()
    }));
    let server = serve(oauth_server(tokens.clone())).await;
    let c = connector(&simple(REFRESH_AUTH, ""), &server, REFRESH_SECRETS);
    let e = c
        .create(&Call::default(), "contact", &json!({}))
        .await
        .expect_err("refused");
    assert_eq!((e.kind, e.status), (ErrorKind::Auth, Some(401)));
    assert_eq!(
        server.to("/contacts").len(),
        2,
        "one retry after one refresh"
    );
    assert_eq!(server.to("/oauth/token").len(), 2);
}

#[tokio::test]
async fn concurrent_401s_share_one_refresh() {
    let tokens = Arc::new(Mutex::new(Tokens::default()));
    let server = serve(oauth_server(tokens.clone())).await;
    let c = Arc::new(connector(
        &simple(REFRESH_AUTH, ""),
        &server,
        REFRESH_SECRETS,
    ));
    assert!(
        c.create(&Call::default(), "contact", &json!({}))
            .await
            .is_ok()
    );
    tokens.lock().map(|mut t| t.revoked_below = 1).ok();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                c.create(&Call::default(), "contact", &json!({"n": i}))
                    .await
            })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        assert!(matches!(t, Ok(Ok(_))), "{t:?}");
    }
    assert_eq!(
        server.to("/oauth/token").len(),
        2,
        "exactly one refresh for 20 refusals"
    );
}

#[tokio::test]
async fn token_exchange_with_expiry_and_keep_alive() {
    let server = serve(|s, n| {
        let expires =
            |secs: i64| (chrono::Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339();
        match s.path.as_str() {
            "/api/v1/auth/token" if s.header("authorization") == Some("Basic amFtZjpwdw==") => {
                Reply::json(
                    200,
                    json!({"token": format!("login{n}"), "expires": expires(2)}),
                )
            }
            "/api/v1/auth/keep-alive" if s.header("authorization") == Some("Bearer login0") => {
                Reply::json(200, json!({"token": "kept", "expires": expires(1800)}))
            }
            "/api/v1/departments"
                if s.header("authorization")
                    .is_some_and(|a| a.starts_with("Bearer ")) =>
            {
                Reply::json(201, json!({"id": "7", "href": "x"}))
            }
            _ => Reply::json(401, json!({"httpStatus": 401, "errors": []})),
        }
    })
    .await;
    let yaml = r#"kind: provider
name: jamf
base_url: https://jamf.invalid
auth: { type: token_exchange, token_url: /api/v1/auth/token, username: "${env:JU}", password: "${env:JP}", token: "$.token", expires: "$.expires", keep_alive_url: /api/v1/auth/keep-alive }
objects:
  department:
    operations:
      create: { method: POST, path: /api/v1/departments, body: "{{ payload }}", id: "$.id" }
"#;
    let c = connector(yaml, &server, &[("JU", "jamf"), ("JP", "pw")]);
    let w = c
        .create(&Call::default(), "department", &json!({"name": "IT"}))
        .await;
    assert_eq!(w.map(|w| w.id), Ok(Some("7".into())));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(
        c.create(&Call::default(), "department", &json!({"name": "HR"}))
            .await
            .is_ok()
    );
    assert!(
        c.create(&Call::default(), "department", &json!({"name": "Ops"}))
            .await
            .is_ok()
    );
    assert_eq!(server.to("/api/v1/auth/token").len(), 1);
    assert_eq!(server.to("/api/v1/auth/keep-alive").len(), 1);
    let used: Vec<Option<String>> = server
        .to("/api/v1/departments")
        .iter()
        .map(|s| s.header("authorization").map(str::to_string))
        .collect();
    assert_eq!(
        used,
        vec![
            Some("Bearer login0".into()),
            Some("Bearer kept".into()),
            Some("Bearer kept".into())
        ]
    );
}

#[tokio::test]
async fn secrets_stay_out_of_errors_and_debug_output() {
    const TOKEN: &str = "sekret-token-9f8e";
    const KEY: &str = "sekret-key-1a2b";
    let server = serve(|_, _| Reply::json(401, json!({"message": "denied"}))).await;
    let c = connector(
        &simple(
            r#"{ type: bearer, token: "${env:TOKEN}" }"#,
            "retry: { attempts: 1 }",
        ),
        &server,
        &[("TOKEN", TOKEN)],
    );
    let e = c
        .create(&Call::default(), "contact", &json!({}))
        .await
        .expect_err("refused");
    let shown = format!(
        "{e} {e:?} {c:?} {:?}",
        options(&server, &[("TOKEN", TOKEN)])
    );
    assert!(!shown.contains(TOKEN), "{shown}");

    // A transport failure with the key in the query string: the URL is not repeated.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut opts = options(&server, &[("KEY", KEY)]);
    opts.base_url = Some(format!("http://127.0.0.1:{port}"));
    let yaml = simple(
        r#"{ type: api_key, in: query, name: key, value: "${env:KEY}" }"#,
        "retry: { attempts: 1 }",
    );
    let c = HttpConnector::new(&provider(&yaml), opts).expect("build");
    let e = c
        .create(&Call::default(), "contact", &json!({}))
        .await
        .expect_err("nothing listens");
    assert_eq!(e.kind, ErrorKind::Transient);
    let shown = format!("{e} {e:?} {c:?}");
    assert!(!shown.contains(KEY), "{shown}");
}

#[tokio::test]
async fn a_missing_credential_is_a_build_error_naming_the_reference() {
    let server = serve(|_, _| created()).await;
    let yaml = simple(
        r#"{ type: basic, username: "${env:RB_USER}", password: "${env:RB_TEST_NOT_SET}" }"#,
        "",
    );
    let e = HttpConnector::new(
        &provider(&yaml),
        options(&server, &[("RB_USER", "ada-visible")]),
    )
    .expect_err("missing password");
    let text = e.to_string();
    assert!(text.contains("${env:RB_TEST_NOT_SET}"), "{text}");
    assert!(text.contains("auth.password"), "{text}");
    assert!(!text.contains("ada-visible"), "{text}");
}

#[tokio::test]
async fn an_oauth_instance_url_replaces_the_base_origin() {
    let instance = serve(|s, _| match (s.path.as_str(), s.header("authorization")) {
        ("/services/data/v58.0/sobjects/Lead", Some("Bearer tok")) => {
            Reply::json(201, json!({"id": "00Q9", "success": true, "errors": []}))
        }
        _ => Reply::json(404, json!([{"message": "no", "errorCode": "NOT_FOUND"}])),
    })
    .await;
    let instance_url = instance.url.clone();
    let login = serve(move |_, _| {
        Reply::json(
            200,
            json!({"access_token": "tok", "instance_url": instance_url, "token_type": "Bearer"}),
        )
    })
    .await;
    let yaml = format!(
        r#"kind: provider
name: sf
base_url: "{login}/services/data/v58.0"
auth: {{ type: oauth2_refresh, token_url: "{login}/services/oauth2/token", client_id: a, client_secret: b, refresh_token: c, base_url_from: "$.instance_url" }}
objects:
  lead:
    operations:
      create: {{ method: POST, path: /sobjects/Lead, body: "{{{{ payload }}}}", id: "$.id" }}
"#,
        login = login.url
    );
    let mut opts = options(&login, &[]);
    opts.base_url = None;
    let c = HttpConnector::new(&provider(&yaml), opts.clone()).expect("build");
    let w = c
        .create(&Call::default(), "lead", &json!({"LastName": "L"}))
        .await;
    assert_eq!(w.map(|w| w.id), Ok(Some("00Q9".into())));
    assert_eq!(login.seen().len(), 1);
    assert_eq!(instance.seen().len(), 1);

    // Without `base_url_from` the token response's fields name no host: the base URL stays.
    let plain = yaml.replace(", base_url_from: \"$.instance_url\"", "");
    assert_ne!(plain, yaml);
    let c = HttpConnector::new(&provider(&plain), opts).expect("build");
    let _ = c
        .create(&Call::default(), "lead", &json!({"LastName": "L"}))
        .await;
    assert_eq!(instance.seen().len(), 1, "the instance got nothing more");
    assert!(
        login
            .seen()
            .iter()
            .any(|r| r.path == "/services/data/v58.0/sobjects/Lead"),
        "the create went to the base URL"
    );
}

#[tokio::test]
async fn a_refused_refresh_is_an_auth_error_without_the_credentials() {
    let server = serve(|s, _| match s.path.as_str() {
        "/oauth/token" => Reply::json(400, json!({"error": "invalid_grant", "error_description": "refresh token revoked", "status": "BAD_REFRESH_TOKEN"})),
        _ => created(),
    })
    .await;
    let secrets = [
        ("CID", "client-1"),
        ("CSECRET", "cs-very-secret"),
        ("RT", "rt-very-secret"),
    ];
    let c = connector(&simple(REFRESH_AUTH, ""), &server, &secrets);
    let e = c
        .create(&Call::default(), "contact", &json!({}))
        .await
        .expect_err("no token");
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(
        e.message,
        "token request refused: invalid_grant: refresh token revoked"
    );
    assert!(!format!("{e:?} {c:?}").contains("very-secret"));
    assert!(server.to("/contacts").is_empty());
}

#[tokio::test]
async fn a_token_endpoint_outage_is_retried_as_transient() {
    let server = serve(|s, n| match (s.path.as_str(), n) {
        ("/oauth/token", 0) => Reply::json(503, json!({"message": "maintenance"})),
        ("/oauth/token", _) => {
            Reply::json(200, json!({"access_token": "at", "token_type": "bearer"}))
        }
        _ => created(),
    })
    .await;
    let c = connector(
        &simple(
            REFRESH_AUTH,
            "retry: { attempts: 3, base: 10ms, max: 20ms }",
        ),
        &server,
        REFRESH_SECRETS,
    );
    assert!(
        c.create(&Call::default(), "contact", &json!({}))
            .await
            .is_ok()
    );
    assert_eq!(server.to("/oauth/token").len(), 2);
}

#[tokio::test]
async fn declared_secrets_are_readable_in_templates() {
    let server = serve(|s, _| match s.header("authorization") {
        Some("Token s3cret") => Reply::json(201, json!({"id": "7"})),
        _ => Reply::json(401, json!({"message": "who?"})),
    })
    .await;
    let yaml = r#"kind: provider
name: desk
base_url: http://placeholder.invalid
secrets: { tok: "${env:DESK_TOKEN}" }
objects:
  ticket:
    operations:
      create:
        method: POST
        path: /tickets
        headers: { Authorization: "Token {{ secrets.tok }}" }
        body: "{{ payload }}"
"#;
    let c = connector(yaml, &server, &[("DESK_TOKEN", "s3cret")]);
    let w = c
        .create(&Call::default(), "ticket", &json!({"title": "t"}))
        .await;
    assert_eq!(w.map(|w| w.id), Ok(Some("7".into())));
    // Without its value the connector is not built, and the error names the reference only.
    let e = HttpConnector::new(&provider(yaml), options(&server, &[])).expect_err("no value");
    assert!(e.message.contains("${env:DESK_TOKEN}"), "{e}");
}
