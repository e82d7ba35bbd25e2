//! The fakes' OAuth connect: HubSpot's and Salesforce's authorize endpoints and the code
//! exchange of their token endpoints (RFC 6749 section 4.1, as the vendors implement it).

use reqwest::{Client, StatusCode, redirect::Policy};
use rulebridge_sandbox::{self as sandbox, Faults, Sandbox, SandboxConfig};
use serde_json::Value;

const HS_REDIRECT: &str = "http://localhost:3000/oauth/hubspot/callback";
const SF_REDIRECT: &str = "http://localhost:3000/oauth/salesforce/callback";

async fn start() -> (Sandbox, Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sb = sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = Client::builder().redirect(Policy::none()).build().unwrap();
    (sb, c)
}

/// The authorize answer: status and the redirect's query pairs.
async fn authorize(
    c: &Client,
    url: &str,
    q: &[(&str, &str)],
) -> (StatusCode, Vec<(String, String)>) {
    let resp = c.get(url).query(q).send().await.unwrap();
    let status = resp.status();
    let pairs = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| url::Url::parse(l).ok())
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    (status, pairs)
}

fn get<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

async fn exchange(
    c: &Client,
    url: &str,
    client: (&str, &str),
    code: &str,
    redirect: &str,
) -> (StatusCode, Value) {
    let resp = c
        .post(url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client.0),
            ("client_secret", client.1),
            ("code", code),
            ("redirect_uri", redirect),
        ])
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn hubspot_authorizes_once_per_code() {
    let (sb, c) = start().await;
    let base = sb.base_url("hubspot");
    let auth = format!("{base}/oauth/authorize");
    let token = format!("{base}/oauth/v1/token");
    let client = ("sandbox-hubspot-client", "sandbox-hubspot-secret");
    let ok = [
        ("client_id", client.0),
        ("redirect_uri", HS_REDIRECT),
        ("scope", "crm.objects.contacts.read"),
        ("state", "s-1"),
    ];
    // An unknown client or an unregistered redirect URI: refused, never redirected.
    for (k, v) in [
        ("client_id", "other"),
        ("redirect_uri", "https://evil.example/cb"),
    ] {
        let q: Vec<(&str, &str)> = ok
            .iter()
            .map(|(n, x)| if *n == k { (*n, v) } else { (*n, *x) })
            .collect();
        let (status, back) = authorize(&c, &auth, &q).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{k}");
        assert!(back.is_empty());
    }
    // No scope: back to the app with `invalid_scope`.
    let (status, back) = authorize(&c, &auth, &ok[..2]).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(get(&back, "error"), Some("invalid_scope"));

    let (status, back) = authorize(&c, &auth, &ok).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(get(&back, "state"), Some("s-1"));
    let code = get(&back, "code").unwrap().to_string();
    // Bound to its redirect URI, and gone after one try.
    let (status, body) = exchange(&c, &token, client, &code, "http://localhost:3000/other").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = exchange(&c, &token, client, &code, HS_REDIRECT).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");

    let (_, back) = authorize(&c, &auth, &ok).await;
    let code = get(&back, "code").unwrap().to_string();
    let (status, body) = exchange(&c, &token, client, &code, HS_REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    let (status, _) = exchange(&c, &token, client, &code, HS_REDIRECT).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a code is single-use");

    // The issued refresh token refreshes; with rotation a new one replaces it.
    let refresh_with = |rt: String| {
        let (c, token) = (c.clone(), token.clone());
        async move {
            let resp = c
                .post(&token)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", client.0),
                    ("client_secret", client.1),
                    ("refresh_token", rt.as_str()),
                ])
                .send()
                .await
                .unwrap();
            (
                resp.status(),
                resp.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = refresh_with(refresh.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["refresh_token"], refresh.as_str());
    sb.set_faults(Faults {
        rotate_refresh_tokens: true,
        ..Faults::none()
    });
    let (_, body) = refresh_with(refresh.clone()).await;
    let rotated = body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rotated, refresh);
    let (status, _) = refresh_with(refresh).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the rotated-out token is dead"
    );
    let (status, _) = refresh_with(rotated).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn salesforce_wants_response_type_code_and_answers_its_instance() {
    let (sb, c) = start().await;
    let base = sb.base_url("salesforce");
    let auth = format!("{base}/services/oauth2/authorize");
    let token = format!("{base}/services/oauth2/token");
    let client = ("sandbox-salesforce-client", "sandbox-salesforce-secret");
    let q = [
        ("client_id", client.0),
        ("redirect_uri", SF_REDIRECT),
        ("scope", "api refresh_token"),
        ("state", "xyz"),
    ];
    let (status, back) = authorize(&c, &auth, &q).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(get(&back, "error"), Some("unsupported_response_type"));
    assert_eq!(get(&back, "state"), Some("xyz"));
    let mut with_type = q.to_vec();
    with_type.push(("response_type", "code"));
    let (status, back) = authorize(&c, &auth, &with_type).await;
    assert_eq!(status, StatusCode::FOUND);
    let code = get(&back, "code").unwrap().to_string();
    let (status, body) = exchange(&c, &token, client, &code, SF_REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["instance_url"]
            .as_str()
            .unwrap()
            .ends_with("/salesforce")
    );
    assert!(body["refresh_token"].is_string());
    assert!(body.get("expires_in").is_none(), "Salesforce does not say");
    // Without the `refresh_token` scope there is no refresh token.
    with_type[2] = ("scope", "api");
    let (_, back) = authorize(&c, &auth, &with_type).await;
    let code = get(&back, "code").unwrap().to_string();
    let (_, body) = exchange(&c, &token, client, &code, SF_REDIRECT).await;
    assert!(body.get("refresh_token").is_none(), "{body}");
}
