//! The embedding API of OAuth connect against the sandbox: a kit's `connect:` resolved
//! ([`Engine::oauth_app`]), the user's consent (the fake's authorize endpoint), the code
//! exchange, and an engine given the tenant's tokens ([`EngineBuilder::oauth_tokens`]) sending
//! with them, refreshing ahead of expiry and handing the refreshed tokens to its sink.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use rulebridge::Engine;
use rulebridge::connect::oauth::{TokenSet, TokenSink};
use rulebridge_sandbox::{self as sandbox, Sandbox, SandboxConfig};
use serde_json::json;

/// Keeps what it is given.
#[derive(Default)]
struct Kept(Mutex<Vec<TokenSet>>);

impl TokenSink for Kept {
    fn save<'a>(&'a self, tokens: &'a TokenSet) -> BoxFuture<'a, Result<(), String>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tokens.clone());
        Box::pin(async { Ok(()) })
    }
}

/// Contacts with HubSpot's default properties only (a fresh portal has no others).
const FLOW: &str = r#"
kind: flow
name: oauth_contacts
source: { require: [email] }
target: { provider: hubspot, object: contact }
mapping:
  email: normalize_email(email)
  firstname: name
duplicates: { match: [email] }
"#;

fn builder(sb: &Sandbox) -> rulebridge::EngineBuilder {
    let mut b = Engine::builder()
        .rules_dir("rules")
        .rules_str("oauth_contacts.yaml", FLOW)
        .field_cache(false);
    for (k, v) in sandbox::CREDENTIALS {
        b = b.credential(*k, *v);
    }
    for (kit, _, _) in sandbox::KITS {
        if let Some(u) = sb.kit_base_url(kit) {
            b = b.base_url(*kit, u);
        }
    }
    for (kit, _, _) in sandbox::CONNECT {
        if let Some((a, t)) = sb.kit_connect_urls(kit) {
            b = b.connect_urls(*kit, a, t);
        }
    }
    b
}

fn token_requests(sb: &Sandbox) -> usize {
    sb.state()
        .provider("hubspot")
        .map(|p| {
            p.log
                .iter()
                .filter(|e| e.endpoint == "POST /oauth/v1/token")
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn an_engine_sends_with_a_tenants_tokens_and_stores_the_refreshed_ones() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = builder(&sb).build().expect("rules compile");
    let app = engine.oauth_app("hubspot").expect("connect resolves");
    assert!(engine.oauth_app("chatwoot").is_err(), "no connect: section");

    // The user's consent: the fake redirects at once with a code.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = http
        .get(app.authorize_url("st-1"))
        .send()
        .await
        .expect("authorize");
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .and_then(|l| url::Url::parse(l).ok())
        .expect("a redirect");
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let mut tokens = app
        .exchange_code(&code, Duration::from_secs(10))
        .await
        .expect("exchanged");
    assert!(tokens.refresh_token.is_some());
    assert!(
        app.exchange_code(&code, Duration::from_secs(10))
            .await
            .is_err(),
        "a code is single-use"
    );
    assert_eq!(token_requests(&sb), 2);

    // 20 s left: the engine refreshes before its first request and hands the tokens over.
    tokens.expires_at = Some(rulebridge::state::now_ms() + 20_000);
    let kept = Arc::new(Kept::default());
    let engine = builder(&sb)
        .oauth_tokens("hubspot", tokens.clone(), Some(kept.clone()))
        .build()
        .expect("rules compile");
    let (run, send) = (
        rulebridge::exec::RunOptions::default(),
        rulebridge::exec::send::SendOptions::default(),
    );
    let sender = engine.sender("oauth_contacts", run, send).expect("sender");
    let lead = json!({"email": "oauth@example.com", "name": "O Auth", "score": 10});
    let outcome = sender.run_one(0, &lead).await;
    assert_eq!(outcome.status, rulebridge::Status::Created, "{outcome:?}");
    assert_eq!(token_requests(&sb), 3);
    let saved = kept.0.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(saved.len(), 1);
    assert_ne!(saved[0].access_token, tokens.access_token);
    assert_eq!(saved[0].refresh_token, tokens.refresh_token);
    assert_eq!(saved[0].connected_at, tokens.connected_at);
    assert!(saved[0].expires_at > tokens.expires_at);
    // The new token serves the next record without another refresh.
    let outcome = sender
        .run_one(
            1,
            &json!({"email": "oauth2@example.com", "name": "O Two", "score": 10}),
        )
        .await;
    assert_eq!(outcome.status, rulebridge::Status::Created, "{outcome:?}");
    assert_eq!(token_requests(&sb), 3);

    // Fresh stored tokens are used as they are.
    let engine = builder(&sb)
        .oauth_tokens("hubspot", saved[0].clone(), Some(kept.clone()))
        .build()
        .expect("rules compile");
    let sender = engine
        .sender(
            "oauth_contacts",
            rulebridge::exec::RunOptions::default(),
            rulebridge::exec::send::SendOptions::default(),
        )
        .expect("sender");
    let outcome = sender
        .run_one(
            0,
            &json!({"email": "oauth3@example.com", "name": "O Three", "score": 10}),
        )
        .await;
    assert_eq!(outcome.status, rulebridge::Status::Created, "{outcome:?}");
    assert_eq!(token_requests(&sb), 3);
    assert_eq!(kept.0.lock().map(|v| v.len()).unwrap_or(0), 1);
}
