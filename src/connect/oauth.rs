//! OAuth connect: a kit's `connect:` section at run time.
//!
//! [`OAuthApp`] is the section with its references resolved: it builds the vendor's
//! authorize URL for a `state` and exchanges the authorization code the vendor sends back for
//! a [`TokenSet`] (RFC 6749 sections 4.1.1 and 4.1.3). A tenant's stored tokens go to the HTTP
//! connector as an [`OAuthSession`] ([`HttpOptions::oauth`](super::http::HttpOptions::oauth)):
//! its access token is used until shortly before it expires, then refreshed with the refresh
//! token, and what the refresh answers (a new access token, a rotated refresh token) is handed
//! to the session's [`TokenSink`] to be stored.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{ConnectError, ErrorKind};
use crate::plan::ConnectPlan;
use crate::plan::provider::Query;
use crate::secrets::Secret;

/// An access token is refreshed when less than this is left of it.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(60);

/// A `connect:` section with its references resolved.
#[derive(Clone)]
pub struct OAuthApp {
    pub provider: String,
    pub authorize_url: String,
    pub token_url: String,
    /// Public (RFC 6749 section 2.2), but resolved like a secret.
    pub client_id: Secret,
    pub client_secret: Secret,
    pub redirect_url: String,
    pub scopes: Vec<String>,
    pub params: Vec<(String, String)>,
    pub(crate) base_url_from: Option<Query>,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("provider", &self.provider)
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("redirect_url", &self.redirect_url)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Joins a path of the kit to the login origin.
fn join(origin: &str, path: &str) -> String {
    format!("{}{path}", origin.trim_end_matches('/'))
}

fn http_url(what: &str, u: &str) -> Result<String, String> {
    match url::Url::parse(u) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host_str().is_some() => {
            Ok(u.to_string())
        }
        _ => Err(format!("connect.{what} `{u}` is not an http(s) URL")),
    }
}

impl OAuthApp {
    /// Resolves `plan`'s references with `resolve(reference, what)`. `urls` replaces the
    /// authorize and token URLs (a sandbox); `login_url` is then not read.
    pub fn resolve(
        provider: &str,
        plan: &ConnectPlan,
        resolve: &dyn Fn(&str, &str) -> Result<Secret, String>,
        urls: Option<(&str, &str)>,
    ) -> Result<OAuthApp, String> {
        let (authorize_url, token_url) = match urls {
            Some((a, t)) => (a.to_string(), t.to_string()),
            None => {
                let mut a = resolve(&plan.authorize_url, "connect.authorize_url")?
                    .expose()
                    .trim()
                    .to_string();
                let mut t = resolve(&plan.token_url, "connect.token_url")?
                    .expose()
                    .trim()
                    .to_string();
                if a.starts_with('/') || t.starts_with('/') {
                    let login = match &plan.login_url {
                        Some(l) => resolve(l, "connect.login_url")?.expose().trim().to_string(),
                        None => {
                            return Err("connect: a relative URL needs `login_url`".to_string());
                        }
                    };
                    let login = http_url("login_url", &login)?;
                    if a.starts_with('/') {
                        a = join(&login, &a);
                    }
                    if t.starts_with('/') {
                        t = join(&login, &t);
                    }
                }
                (a, t)
            }
        };
        let redirect_url = resolve(&plan.redirect_url, "connect.redirect_url")?
            .expose()
            .trim()
            .to_string();
        Ok(OAuthApp {
            provider: provider.to_string(),
            authorize_url: http_url("authorize_url", &authorize_url)?,
            token_url: http_url("token_url", &token_url)?,
            client_id: resolve(&plan.client_id, "connect.client_id")?,
            client_secret: resolve(&plan.client_secret, "connect.client_secret")?,
            redirect_url: http_url("redirect_url", &redirect_url)?,
            scopes: plan.scopes.clone(),
            params: plan.params.clone(),
            base_url_from: plan.base_url_from.clone(),
        })
    }

    /// The URL a user's browser is sent to: `client_id`, `redirect_uri`, `scope` (space
    /// separated), `state`, `response_type=code` and the kit's `params`. `clear` writes the
    /// values that go into it (a caller masking secrets passes its scrubber, leaving the
    /// public client id and redirect URI as they are).
    pub fn authorize_url_with(&self, state: &str, clear: &dyn Fn(&str) -> String) -> String {
        let base = clear(&self.authorize_url);
        let mut url = match url::Url::parse(&base) {
            Ok(u) => u,
            // The mask made it unparsable: append the query by hand.
            Err(_) => return format!("{base}?state={state}"),
        };
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", self.client_id.expose());
            q.append_pair("redirect_uri", &self.redirect_url);
            if !self.scopes.is_empty() {
                q.append_pair("scope", &clear(&self.scopes.join(" ")));
            }
            q.append_pair("state", state);
            for (k, v) in &self.params {
                q.append_pair(k, &clear(v));
            }
        }
        url.to_string()
    }

    /// [`OAuthApp::authorize_url_with`] writing every value as it is.
    pub fn authorize_url(&self, state: &str) -> String {
        self.authorize_url_with(state, &|s| s.to_string())
    }

    /// Exchanges an authorization code at the token URL (form body, client credentials in
    /// it, as HubSpot and Salesforce take them). Errors carry the vendor's `error` and
    /// `error_description`, never the response body.
    pub async fn exchange_code(
        &self,
        code: &str,
        timeout: Duration,
    ) -> Result<TokenSet, ConnectError> {
        let cannot = |e: &dyn std::fmt::Display| {
            ConnectError::new(
                ErrorKind::Fatal,
                format!("cannot create the HTTP client: {e}"),
            )
        };
        // A token endpoint that redirects is not followed: the form carries the secret.
        let http = crate::http_client::builder()
            .map_err(|e| cannot(&e))?
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| cannot(&e))?;
        // The code is a credential until it is used.
        let code = Secret::new(code.to_string());
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.expose()),
            ("redirect_uri", &self.redirect_url),
            ("client_id", self.client_id.expose()),
            ("client_secret", self.client_secret.expose()),
        ];
        let response = http
            .post(&self.token_url)
            .header(http::header::ACCEPT, "application/json")
            .form(&form)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                ConnectError::new(
                    ErrorKind::Transient,
                    format!(
                        "the token endpoint could not be reached: {}",
                        without_url(&e)
                    ),
                )
            })?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            let kind = if status == 429 || status >= 500 {
                ErrorKind::Transient
            } else {
                ErrorKind::Auth
            };
            let word = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
            let said = match (word("error"), word("error_description").or(word("message"))) {
                (Some(e), Some(d)) => format!("{e}: {d}"),
                (Some(e), None) => e,
                (None, Some(d)) => d,
                (None, None) => format!("HTTP {status}"),
            };
            let mut e = ConnectError::new(kind, format!("the code exchange was refused: {said}"));
            e.status = Some(status);
            return Err(e);
        }
        let now = crate::state::now_ms();
        TokenSet::from_response(&body, self.base_url_from.as_ref(), now, now).ok_or_else(|| {
            ConnectError::new(
                ErrorKind::Auth,
                "the token endpoint answered no `access_token`",
            )
        })
    }
}

/// A transport error without its URL (which may carry a query).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(u) = e.url() {
        text = text.replace(u.as_str(), "the token URL");
    }
    text
}

/// The tokens of one connection, as stored (sealed) in the credential store.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// When the access token expires (ms since the epoch); `None` when the vendor does not
    /// say (Salesforce: until a call answers 401).
    pub expires_at: Option<i64>,
    /// The instance data calls go to (`base_url_from` of the token response).
    pub instance_url: Option<String>,
    /// The scopes granted, as the vendor wrote them.
    pub scope: Option<String>,
    /// When the user connected (ms).
    pub connected_at: i64,
    /// When the tokens were last issued (ms).
    pub refreshed_at: i64,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("expires_at", &self.expires_at)
            .field("instance_url", &self.instance_url)
            .field("connected_at", &self.connected_at)
            .finish_non_exhaustive()
    }
}

impl TokenSet {
    /// Reads a token response (`access_token`, `refresh_token`, `expires_in`, `scope`, and
    /// the instance where `base_url_from` says). `None` without an access token.
    pub(crate) fn from_response(
        body: &Value,
        base_url_from: Option<&Query>,
        connected_at: i64,
        now: i64,
    ) -> Option<TokenSet> {
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        let access = text("access_token").filter(|t| !t.is_empty())?;
        let expires_in = body.get("expires_in").and_then(|v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse::<f64>().ok(),
            _ => None,
        });
        let instance_url = base_url_from
            .and_then(|q| q.first(body))
            .and_then(|v| v.as_str().map(str::to_string))
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
        Some(TokenSet {
            access_token: Secret::new(access),
            refresh_token: text("refresh_token")
                .filter(|t| !t.is_empty())
                .map(Secret::new),
            expires_at: expires_in
                .filter(|s| *s >= 0.0)
                .map(|s| now.saturating_add((s * 1000.0) as i64)),
            instance_url,
            scope: text("scope"),
            connected_at,
            refreshed_at: now,
        })
    }

    /// The stored form: JSON.
    pub fn to_json(&self) -> String {
        json!({
            "access_token": self.access_token.expose(),
            "refresh_token": self.refresh_token.as_ref().map(Secret::expose),
            "expires_at": self.expires_at,
            "instance_url": self.instance_url,
            "scope": self.scope,
            "connected_at": self.connected_at,
            "refreshed_at": self.refreshed_at,
        })
        .to_string()
    }

    /// Reads [`TokenSet::to_json`]'s text. The error never quotes it.
    pub fn from_json(text: &str) -> Result<TokenSet, String> {
        let v: Value = serde_json::from_str(text)
            .map_err(|_| "the stored OAuth tokens are not JSON".to_string())?;
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let int = |k: &str| v.get(k).and_then(Value::as_i64);
        Ok(TokenSet {
            access_token: Secret::new(
                text("access_token").ok_or("the stored OAuth tokens have no access token")?,
            ),
            refresh_token: text("refresh_token").map(Secret::new),
            expires_at: int("expires_at"),
            instance_url: text("instance_url"),
            scope: text("scope"),
            connected_at: int("connected_at").unwrap_or(0),
            refreshed_at: int("refreshed_at").unwrap_or(0),
        })
    }

    /// Whether the access token is to be refreshed at `now` (ms): less than
    /// [`REFRESH_BEFORE`] left of it.
    pub fn needs_refresh(&self, now: i64) -> bool {
        self.expires_at
            .is_some_and(|at| at - now < i64::try_from(REFRESH_BEFORE.as_millis()).unwrap_or(0))
    }
}

/// Where a session's refreshed tokens are kept (the tenant's credential store).
pub trait TokenSink: Send + Sync {
    fn save<'a>(&'a self, tokens: &'a TokenSet) -> BoxFuture<'a, Result<(), String>>;

    /// The tokens stored now: another connector of the same connection may have refreshed
    /// (and rotated the refresh token) since this one started. `None` when not known.
    fn current<'a>(&'a self) -> BoxFuture<'a, Result<Option<TokenSet>, String>> {
        Box::pin(async { Ok(None) })
    }

    /// One refresh of this connection at a time in the process: connectors of concurrent
    /// requests share the connection, and a refresh token rotated by one is dead for the
    /// others.
    fn refresh_lock(&self) -> Option<Arc<tokio::sync::Mutex<()>>> {
        None
    }
}

/// A tenant's connection, for one connector: the app it was made with, its tokens, and where
/// refreshed tokens go.
#[derive(Clone)]
pub struct OAuthSession {
    pub app: Arc<OAuthApp>,
    pub tokens: TokenSet,
    pub sink: Option<Arc<dyn TokenSink>>,
}

impl std::fmt::Debug for OAuthSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSession")
            .field("provider", &self.app.provider)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> OAuthApp {
        OAuthApp {
            provider: "crm".into(),
            authorize_url: "https://app.example.com/oauth/authorize".into(),
            token_url: "https://api.example.com/oauth/token".into(),
            client_id: Secret::new("client-1".into()),
            client_secret: Secret::new("oauth-test-secret-77".into()),
            redirect_url: "https://example.com/cb".into(),
            scopes: vec!["a.read".into(), "a.write".into()],
            params: vec![("prompt".into(), "consent".into())],
            base_url_from: Query::compile("$.instance_url").ok(),
        }
    }

    #[test]
    fn the_authorize_url_carries_the_flow_parameters() {
        let u = url::Url::parse(&app().authorize_url("st4te")).expect("a URL");
        let q: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(u.path(), "/oauth/authorize");
        assert_eq!(get("response_type"), Some("code"));
        assert_eq!(get("client_id"), Some("client-1"));
        assert_eq!(get("redirect_uri"), Some("https://example.com/cb"));
        assert_eq!(get("scope"), Some("a.read a.write"));
        assert_eq!(get("state"), Some("st4te"));
        assert_eq!(get("prompt"), Some("consent"));
        assert!(!u.as_str().contains("oauth-test-secret-77"));
    }

    #[test]
    fn relative_urls_follow_the_login_url() {
        let plan = ConnectPlan {
            authorize_url: "/services/oauth2/authorize".into(),
            token_url: "/services/oauth2/token".into(),
            login_url: Some("${env:LOGIN}".into()),
            scopes: vec!["api".into()],
            client_id: "id".into(),
            client_secret: "${env:SECRET}".into(),
            redirect_url: "https://example.com/cb".into(),
            params: Vec::new(),
            base_url_from: None,
        };
        let resolve = |r: &str, _: &str| -> Result<Secret, String> {
            Ok(Secret::new(match r {
                "${env:LOGIN}" => "https://test.salesforce.com/".into(),
                "${env:SECRET}" => "s3cret-value-1".into(),
                other => other.to_string(),
            }))
        };
        let a = OAuthApp::resolve("sf", &plan, &resolve, None).expect("resolves");
        assert_eq!(
            a.authorize_url,
            "https://test.salesforce.com/services/oauth2/authorize"
        );
        assert_eq!(
            a.token_url,
            "https://test.salesforce.com/services/oauth2/token"
        );
        let bad = |r: &str, _: &str| -> Result<Secret, String> {
            Ok(Secret::new(if r == "${env:LOGIN}" {
                "login.salesforce.com".into()
            } else {
                r.to_string()
            }))
        };
        let e = OAuthApp::resolve("sf", &plan, &bad, None).err();
        assert!(e.is_some_and(|e| e.contains("login_url")));
        let sandbox = OAuthApp::resolve(
            "sf",
            &plan,
            &bad,
            Some(("http://127.0.0.1:1/a", "http://127.0.0.1:1/t")),
        )
        .expect("the sandbox's URLs need no login URL");
        assert_eq!(sandbox.token_url, "http://127.0.0.1:1/t");
    }

    #[test]
    fn token_sets_round_trip_and_expire() {
        let body = json!({"access_token": "at-1234567", "refresh_token": "rt-1234567", "expires_in": 1800, "instance_url": "https://eu1.example.com", "scope": "api"});
        let q = Query::compile("$.instance_url").ok();
        let t = TokenSet::from_response(&body, q.as_ref(), 5, 1_000).expect("tokens");
        assert_eq!(t.expires_at, Some(1_801_000));
        assert_eq!(t.instance_url.as_deref(), Some("https://eu1.example.com"));
        assert_eq!(TokenSet::from_json(&t.to_json()), Ok(t.clone()));
        assert!(!t.needs_refresh(1_000));
        assert!(!t.needs_refresh(1_740_999));
        assert!(t.needs_refresh(1_741_001));
        assert!(!format!("{t:?}").contains("at-1234567"));
        assert!(TokenSet::from_response(&json!({"error": "x"}), None, 0, 0).is_none());
        // No `expires_in` (Salesforce): never refreshed ahead of time.
        let sf = TokenSet::from_response(&json!({"access_token": "at-7654321"}), None, 0, 0)
            .expect("tokens");
        assert!(!sf.needs_refresh(i64::MAX / 2));
    }
}
