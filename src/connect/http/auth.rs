//! Authentication: static credentials, and tokens that are fetched, cached and refreshed.
//!
//! Token kinds (`oauth2_refresh`, `oauth2_client_credentials` through the `oauth2` crate, and
//! `token_exchange`, Basic credentials exchanged for a bearer token) share one cache per connector:
//!
//! * a token is refreshed shortly before it expires (60 s, or a quarter of its lifetime when
//!   that is shorter); `token_exchange` extends a still-valid token through `keep_alive_url` when the
//!   provider has one, and logs in again otherwise;
//! * a 401 refreshes once, and the request is sent again with the new token;
//! * refreshes are single-flight: one lock and a generation counter, so twenty requests refused
//!   together cause one refresh, and the other nineteen reuse its token.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AsyncHttpClient, AuthType, ClientId, ClientSecret, ExtraTokenFields, HttpClientError,
    HttpRequest, HttpResponse, RefreshToken, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use crate::connect::{ConnectError, ErrorKind};
use crate::plan::provider::Query;
use crate::secrets::{Resolver, Secret, SecretRef};

/// Where credentials are looked up: caller-supplied values first, then the environment (for
/// `${env:NAME}`) or the file system (for `${file:PATH}`, relative to `base_dir`).
pub(crate) struct SecretSource<'a> {
    pub overrides: &'a [(String, Secret)],
    pub base_dir: &'a Path,
    pub read_env: bool,
    /// Vault and the credential store, cached.
    pub resolver: &'a Resolver,
    /// The remote references resolved (read again when the provider refuses them).
    pub remote: std::cell::RefCell<Vec<SecretRef>>,
}

impl SecretSource<'_> {
    /// Resolves `text` (a reference or a literal). Errors name `what` and the reference only.
    pub fn resolve(&self, text: &str, what: &str) -> Result<Secret, String> {
        let r = SecretRef::parse(text.trim()).map_err(|e| format!("{what}: {e}"))?;
        let key = match &r {
            SecretRef::Env(name) => Some(name.clone()),
            SecretRef::File(path) => Some(path.display().to_string()),
            SecretRef::Vault { .. } | SecretRef::Store(_) => Some(r.to_string()),
            SecretRef::Literal(_) => None,
        };
        if let Some(key) = &key
            && let Some((_, s)) = self.overrides.iter().find(|(n, _)| n == key)
        {
            return Ok(s.clone());
        }
        if r.is_remote() {
            let mut remote = self.remote.borrow_mut();
            if !remote.contains(&r) {
                remote.push(r.clone());
            }
            return self
                .resolver
                .resolve_blocking(&r, self.base_dir)
                .map_err(|e| {
                    format!(
                        "{what}: credential `{}` is not available ({e})",
                        text.trim()
                    )
                });
        }
        if matches!(r, SecretRef::Env(_)) && !self.read_env {
            return Err(format!(
                "{what}: credential `{}` is not available (no value was supplied)",
                text.trim()
            ));
        }
        r.resolve(self.base_dir).map_err(|e| {
            format!(
                "{what}: credential `{}` is not available ({e})",
                text.trim()
            )
        })
    }
}

/// How requests are authenticated.
pub(crate) enum Auth {
    None,
    Header { name: HeaderName, value: Secret },
    Query { name: String, value: Secret },
    Bearer(Secret),
    Basic { username: Secret, password: Secret },
    Token(Box<TokenSource>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "Auth::None",
            Auth::Header { .. } => "Auth::ApiKeyHeader(***)",
            Auth::Query { .. } => "Auth::ApiKeyQuery(***)",
            Auth::Bearer(_) => "Auth::Bearer(***)",
            Auth::Basic { .. } => "Auth::Basic(***)",
            Auth::Token(_) => "Auth::Token(***)",
        })
    }
}

/// What a request needs from [`Auth::credentials`].
pub(crate) enum Credentials {
    None,
    Header(HeaderName, HeaderValue),
    Query(String, String),
    Basic(String, String),
    /// A bearer token of a generation (reported back on a 401).
    Token {
        value: HeaderValue,
        generation: u64,
        instance_url: Option<String>,
    },
}

impl Auth {
    /// The credentials for one attempt (fetching or refreshing a token when needed).
    pub async fn credentials(&self) -> Result<Credentials, ConnectError> {
        Ok(match self {
            Auth::None => Credentials::None,
            Auth::Header { name, value } => {
                Credentials::Header(name.clone(), sensitive(value.expose())?)
            }
            Auth::Query { name, value } => {
                Credentials::Query(name.clone(), value.expose().to_string())
            }
            Auth::Bearer(token) => Credentials::Header(
                http::header::AUTHORIZATION,
                sensitive(&format!("Bearer {}", token.expose()))?,
            ),
            Auth::Basic { username, password } => {
                Credentials::Basic(username.expose().to_string(), password.expose().to_string())
            }
            Auth::Token(source) => {
                let t = source.current().await?;
                Credentials::Token {
                    value: sensitive(&format!("Bearer {}", t.value.expose()))?,
                    generation: t.generation,
                    instance_url: t.instance_url,
                }
            }
        })
    }

    /// After a 401 with a token of `generation`: replaces the token unless another request
    /// already did. `Ok(false)` when this auth has nothing to refresh.
    pub async fn refused(&self, generation: u64) -> Result<bool, ConnectError> {
        match self {
            Auth::Token(source) => source.replace(generation).await.map(|()| true),
            _ => Ok(false),
        }
    }
}

fn sensitive(text: &str) -> Result<HeaderValue, ConnectError> {
    let mut v = HeaderValue::from_str(text).map_err(|_| {
        ConnectError::new(
            ErrorKind::Auth,
            "the credential contains characters not allowed in an HTTP header",
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// Tokens

pub(crate) enum TokenKind {
    OAuthRefresh {
        token_url: String,
        client_id: Secret,
        client_secret: Secret,
        refresh_token: Secret,
        scopes: Vec<String>,
        /// Where the token response names the instance whose origin replaces the base URL's.
        base_url_from: Option<Query>,
    },
    OAuthClientCredentials {
        token_url: String,
        client_id: Secret,
        client_secret: Secret,
        scopes: Vec<String>,
        base_url_from: Option<Query>,
    },
    Exchange {
        token_url: String,
        username: Secret,
        password: Secret,
        token: Query,
        expires: Option<Query>,
        keep_alive_url: Option<String>,
    },
}

/// A cached token and how to get a new one.
pub(crate) struct TokenSource {
    kind: TokenKind,
    http: reqwest::Client,
    timeout: Duration,
    state: Mutex<State>,
    refresh: tokio::sync::Mutex<()>,
    /// A tenant's connection: where refreshed tokens are stored, and when it was made.
    sink: Option<(std::sync::Arc<dyn crate::connect::oauth::TokenSink>, i64)>,
}

#[derive(Default)]
struct State {
    token: Option<Token>,
    /// Bumped by every new token.
    generation: u64,
    /// A refresh token the server rotated.
    refresh_token: Option<Secret>,
}

#[derive(Clone)]
struct Token {
    value: Secret,
    /// When to stop using it (shortly before it expires).
    refresh_at: Option<Instant>,
    expires_at: Option<Instant>,
    instance_url: Option<String>,
}

pub(crate) struct Current {
    pub value: Secret,
    pub generation: u64,
    pub instance_url: Option<String>,
}

impl TokenSource {
    pub fn new(kind: TokenKind, http: reqwest::Client, timeout: Duration) -> Self {
        TokenSource {
            kind,
            http,
            timeout,
            state: Mutex::new(State::default()),
            refresh: tokio::sync::Mutex::new(()),
            sink: None,
        }
    }

    /// A source that starts from a tenant's stored tokens (an OAuth connection): the access
    /// token is used until [`REFRESH_BEFORE`](crate::connect::oauth::REFRESH_BEFORE) before
    /// its expiry, and every refresh is handed to the session's sink.
    pub fn from_session(
        kind: TokenKind,
        http: reqwest::Client,
        timeout: Duration,
        session: &crate::connect::oauth::OAuthSession,
    ) -> Self {
        let mut source = TokenSource::new(kind, http, timeout);
        let t = &session.tokens;
        let now = Instant::now();
        let left = t.expires_at.map(|at| {
            Duration::from_millis(u64::try_from(at - crate::state::now_ms()).unwrap_or(0))
        });
        let margin = crate::connect::oauth::REFRESH_BEFORE;
        {
            let mut st = source.state();
            st.token = Some(Token {
                value: t.access_token.clone(),
                refresh_at: left.map(|l| now + l.saturating_sub(margin)),
                expires_at: left.map(|l| now + l),
                instance_url: t.instance_url.clone(),
            });
            st.generation = 1;
        }
        source.sink = session.sink.clone().map(|s| (s, t.connected_at));
        source
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self) -> Option<Current> {
        let st = self.state();
        let t = st.token.as_ref()?;
        t.refresh_at
            .is_none_or(|at| Instant::now() < at)
            .then(|| Current {
                value: t.value.clone(),
                generation: st.generation,
                instance_url: t.instance_url.clone(),
            })
    }

    /// A usable token: the cached one, or a new one (one fetch at a time).
    pub async fn current(&self) -> Result<Current, ConnectError> {
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        let _guard = self.refresh.lock().await;
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        // Near expiry but still valid: a keep-alive can extend it.
        let still_valid = {
            let st = self.state();
            st.token
                .as_ref()
                .filter(|t| t.expires_at.is_none_or(|e| Instant::now() < e))
                .map(|t| t.value.clone())
        };
        let token = self.fetch(still_valid).await?;
        Ok(self.store(token))
    }

    /// Replaces a token the server refused, unless it was replaced since. When no new token
    /// can be had, the refused one is dropped all the same, so the next request fetches one
    /// instead of being refused again.
    async fn replace(&self, generation: u64) -> Result<(), ConnectError> {
        let _guard = self.refresh.lock().await;
        if self.state().generation != generation {
            return Ok(());
        }
        match self.fetch(None).await {
            Ok(token) => {
                self.store(token);
                Ok(())
            }
            Err(e) => {
                let mut st = self.state();
                if st.generation == generation {
                    st.token = None;
                }
                Err(e)
            }
        }
    }

    fn store(&self, token: Token) -> Current {
        let mut st = self.state();
        st.generation += 1;
        let current = Current {
            value: token.value.clone(),
            generation: st.generation,
            instance_url: token.instance_url.clone(),
        };
        st.token = Some(token);
        current
    }

    async fn fetch(&self, still_valid: Option<Secret>) -> Result<Token, ConnectError> {
        match &self.kind {
            TokenKind::OAuthRefresh {
                token_url,
                client_id,
                client_secret,
                refresh_token,
                scopes,
                base_url_from,
            } => {
                // A connection's refreshes are serialised across connectors, and one that
                // another connector already made (and stored) is used instead of a second.
                let lock = self.sink.as_ref().and_then(|(s, _)| s.refresh_lock());
                let _held = match &lock {
                    Some(l) => Some(l.lock().await),
                    None => None,
                };
                if let Some((sink, _)) = &self.sink
                    && let Ok(Some(stored)) = sink.current().await
                {
                    let mine = self.state().token.as_ref().map(|t| t.value.clone());
                    if let Some(rt) = &stored.refresh_token {
                        self.state().refresh_token = Some(rt.clone());
                    }
                    let now = crate::state::now_ms();
                    if mine.as_ref() != Some(&stored.access_token) && !stored.needs_refresh(now) {
                        let left = stored
                            .expires_at
                            .map(|at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0)));
                        let at = Instant::now();
                        return Ok(Token {
                            value: stored.access_token.clone(),
                            refresh_at: left.map(|l| {
                                at + l.saturating_sub(crate::connect::oauth::REFRESH_BEFORE)
                            }),
                            expires_at: left.map(|l| at + l),
                            instance_url: stored.instance_url.clone(),
                        });
                    }
                }
                let rotated = self.state().refresh_token.clone();
                let refresh = rotated.as_ref().unwrap_or(refresh_token);
                let client = oauth_client(token_url, client_id, client_secret)?;
                let adapter = OAuthHttp::new(self.http.clone(), self.timeout);
                let refresh = RefreshToken::new(refresh.expose().to_string());
                let result = client
                    .exchange_refresh_token(&refresh)
                    .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())))
                    .request_async(&adapter)
                    .await;
                let response = result.map_err(|e| oauth_error(e, adapter.status()))?;
                if let Some(rt) = response.refresh_token() {
                    self.state().refresh_token = Some(Secret::new(rt.secret().clone()));
                }
                let token = oauth_token(&response, base_url_from.as_ref());
                if let Some((sink, connected_at)) = &self.sink {
                    let now = crate::state::now_ms();
                    let kept = self.state().refresh_token.clone();
                    let tokens = crate::connect::oauth::TokenSet {
                        access_token: token.value.clone(),
                        refresh_token: kept.or_else(|| Some(refresh_token.clone())),
                        expires_at: response.expires_in().map(|l| {
                            now.saturating_add(i64::try_from(l.as_millis()).unwrap_or(i64::MAX))
                        }),
                        instance_url: token.instance_url.clone(),
                        scope: response
                            .scopes()
                            .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
                        connected_at: *connected_at,
                        refreshed_at: now,
                    };
                    // A rotated refresh token that is not stored is lost for the next run:
                    // said loudly, but this request goes on with the new access token.
                    if let Err(e) = sink.save(&tokens).await {
                        tracing::error!(error = %crate::secrets::scrub::scrub(&e), "the refreshed OAuth tokens could not be stored");
                    }
                }
                Ok(token)
            }
            TokenKind::OAuthClientCredentials {
                token_url,
                client_id,
                client_secret,
                scopes,
                base_url_from,
            } => {
                let client = oauth_client(token_url, client_id, client_secret)?;
                let adapter = OAuthHttp::new(self.http.clone(), self.timeout);
                let result = client
                    .exchange_client_credentials()
                    .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())))
                    .request_async(&adapter)
                    .await;
                let response = result.map_err(|e| oauth_error(e, adapter.status()))?;
                Ok(oauth_token(&response, base_url_from.as_ref()))
            }
            TokenKind::Exchange {
                token_url,
                username,
                password,
                token,
                expires,
                keep_alive_url,
            } => {
                if let (Some(url), Some(current)) = (keep_alive_url, still_valid) {
                    let request = self.http.post(url).bearer_auth(current.expose());
                    match self.exchange(request, token, expires.as_ref()).await {
                        Ok(t) => return Ok(t),
                        Err(e) => {
                            tracing::debug!(error = %e, "token keep-alive failed; logging in again");
                        }
                    }
                }
                let request = self
                    .http
                    .post(token_url)
                    .basic_auth(username.expose(), Some(password.expose()));
                self.exchange(request, token, expires.as_ref()).await
            }
        }
    }

    /// Sends a token request of `token_exchange` and reads the token and its expiry.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        token: &Query,
        expires: Option<&Query>,
    ) -> Result<Token, ConnectError> {
        let response = request
            .header(http::header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| token_transport(&e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| token_transport(&e))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            let kind = if status == 429 || status >= 500 {
                ErrorKind::Transient
            } else {
                ErrorKind::Auth
            };
            let said = super::classify::provider_message(&body, &text).unwrap_or_default();
            let mut e = ConnectError::new(kind, format!("token request refused: {said}"));
            e.status = Some(status);
            return Err(e);
        }
        let value = token
            .first(&body)
            .and_then(|v| v.as_str().map(str::to_string))
            .ok_or_else(|| {
                ConnectError::new(
                    ErrorKind::Auth,
                    "the token response has no token where the provider file says",
                )
            })?;
        let lifetime = match expires {
            Some(q) => q.first(&body).and_then(|v| lifetime(&v)),
            None => ["expires", "expires_in", "expiresIn"]
                .iter()
                .find_map(|k| body.get(*k).and_then(lifetime)),
        };
        Ok(token_with_lifetime(Secret::new(value), lifetime, None))
    }
}

/// A token's lifetime from an RFC 3339 expiry or a number of seconds.
fn lifetime(v: &Value) -> Option<Duration> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| *s >= 0.0)
            .map(Duration::from_secs_f64),
        Value::String(s) => {
            if let Ok(secs) = s.parse::<f64>() {
                return (secs >= 0.0).then(|| Duration::from_secs_f64(secs));
            }
            let at = chrono::DateTime::parse_from_rfc3339(s).ok()?;
            Some(
                (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO),
            )
        }
        _ => None,
    }
}

/// How long before expiry a token is replaced.
fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 4).min(Duration::from_secs(60))
}

fn token_with_lifetime(
    value: Secret,
    lifetime: Option<Duration>,
    instance_url: Option<String>,
) -> Token {
    let now = Instant::now();
    Token {
        value,
        refresh_at: lifetime.map(|l| now + l - refresh_margin(l)),
        expires_at: lifetime.map(|l| now + l),
        instance_url,
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth2 through the `oauth2` crate, over the connector's reqwest client

/// Token response fields beyond the standard ones, kept whole: the kit's `base_url_from`
/// says which one (if any) names the instance to call.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct Extra {
    #[serde(flatten)]
    fields: serde_json::Map<String, serde_json::Value>,
}

impl ExtraTokenFields for Extra {}

type OAuthTokenResponse = StandardTokenResponse<Extra, BasicTokenType>;

/// An `oauth2` client with a token endpoint (and none of the other endpoints).
type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    OAuthTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn oauth_client(
    token_url: &str,
    client_id: &Secret,
    client_secret: &Secret,
) -> Result<OAuthClient, ConnectError> {
    let url = TokenUrl::new(token_url.to_string())
        .map_err(|e| ConnectError::new(ErrorKind::Fatal, format!("bad token URL: {e}")))?;
    Ok(
        oauth2::Client::new(ClientId::new(client_id.expose().to_string()))
            .set_client_secret(ClientSecret::new(client_secret.expose().to_string()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(url),
    )
}

fn oauth_token(response: &OAuthTokenResponse, base_url_from: Option<&Query>) -> Token {
    let instance_url = base_url_from.and_then(|q| {
        let extra = serde_json::Value::Object(response.extra_fields().fields.clone());
        q.first(&extra)
            .and_then(|v| v.as_str().map(str::to_string))
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
    });
    token_with_lifetime(
        Secret::new(response.access_token().secret().clone()),
        response.expires_in(),
        instance_url,
    )
}

fn oauth_error(
    e: RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse>,
    status: Option<u16>,
) -> ConnectError {
    let transient = status.is_some_and(|s| s == 429 || s >= 500);
    let mut err = match e {
        RequestTokenError::ServerResponse(r) => {
            let mut m = format!("token request refused: {}", r.error().as_ref());
            if let Some(d) = r.error_description() {
                m.push_str(": ");
                m.push_str(&super::classify::truncate(d));
            }
            ConnectError::new(ErrorKind::Auth, m)
        }
        RequestTokenError::Request(HttpClientError::Reqwest(e)) => token_transport(&e),
        RequestTokenError::Request(other) => ConnectError::new(
            ErrorKind::Transient,
            format!("token request failed: {other}"),
        ),
        // The parse error may quote the body (which holds tokens): only its place is kept.
        RequestTokenError::Parse(e, _) => ConnectError::new(
            ErrorKind::Auth,
            format!(
                "the token endpoint's response could not be read (at `{}`)",
                e.path()
            ),
        ),
        RequestTokenError::Other(m) => {
            ConnectError::new(ErrorKind::Auth, format!("token request failed: {m}"))
        }
    };
    if transient {
        err.kind = ErrorKind::Transient;
    }
    if err.status.is_none() {
        err.status = status.filter(|s| *s != 200);
    }
    err
}

fn token_transport(e: &reqwest::Error) -> ConnectError {
    let mut err = super::send::transport_error(e, None);
    err.message = format!("token request failed: {}", err.message);
    err
}

/// `oauth2`'s HTTP client interface over reqwest 0.13 (the crate's own support is for 0.12).
pub(crate) struct OAuthHttp {
    client: reqwest::Client,
    timeout: Duration,
    status: Mutex<Option<u16>>,
}

impl OAuthHttp {
    fn new(client: reqwest::Client, timeout: Duration) -> Self {
        OAuthHttp {
            client,
            timeout,
            status: Mutex::new(None),
        }
    }

    /// The status of the last response.
    fn status(&self) -> Option<u16> {
        *self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<'c> AsyncHttpClient<'c> for OAuthHttp {
    type Error = HttpClientError<reqwest::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let response = self
                .client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .timeout(self.timeout)
                .send()
                .await
                .map_err(Box::new)?;
            let status = response.status();
            *self.status.lock().unwrap_or_else(|e| e.into_inner()) = Some(status.as_u16());
            let headers = response.headers().clone();
            let bytes = response.bytes().await.map_err(Box::new)?;
            let mut out = http::Response::builder().status(status);
            if let Some(h) = out.headers_mut() {
                h.extend(headers);
            }
            Ok(out.body(bytes.to_vec())?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_and_margins() {
        assert_eq!(
            lifetime(&Value::from(1800)),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(
            lifetime(&Value::from("2000-01-01T00:00:00Z")),
            Some(Duration::ZERO)
        );
        assert!(
            lifetime(&Value::from("2999-01-01T00:00:00.373Z"))
                .is_some_and(|d| d > Duration::from_secs(1000))
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(1800)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn debug_hides_credentials() {
        let a = Auth::Bearer(Secret::new("hunter2".into()));
        assert!(!format!("{a:?}").contains("hunter2"));
    }
}
