//! The HTTP connector: interprets a provider file (auth, pacing, retries, operations, batching,
//! error classification) to implement [`Connector`].
//!
//! Everything in the provider file is parsed and compiled once, in [`HttpConnector::new`]:
//! templates, JSONPath queries, error-rule expressions, credentials. One `reqwest` client (and
//! its connection pool) serves every request of a connector.
//!
//! ```no_run
//! # async fn demo(doc: &rulebridge::syntax::doc::ProviderDoc) -> Result<(), Box<dyn std::error::Error>> {
//! use rulebridge::connect::Connector;
//! use rulebridge::connect::http::{HttpConnector, HttpOptions};
//!
//! use rulebridge::connect::Call;
//!
//! let hubspot = HttpConnector::new(doc, HttpOptions::default())?;
//! let found = hubspot.search(&Call::default(), "contact", "email", "ada@example.com").await?;
//! // A per-record deadline: no attempt starts after it.
//! let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
//! let call = Call::with_deadline(Some(deadline));
//! let written = hubspot
//!     .create(&call, "contact", &serde_json::json!({"email": "ada@example.com"}))
//!     .await?;
//! # let _ = (found, written); Ok(()) }
//! ```
//!
//! # Templates
//!
//! Operation paths, query values, header values and body strings are minijinja templates over:
//!
//! | name | value |
//! |---|---|
//! | `payload` | the mapped record (create, update, one batch item) |
//! | `id` | the target record's id (update) |
//! | `key`, `field` | the identity value and field name (search, one batch item) |
//! | `items` (also `inputs`, `records`) | a batch: the rendered `item` template of every item, or the payloads when the operation has none |
//! | `payloads`, `keys` | a batch: the payloads and the identity values |
//! | `first` | a batch: the first item's payload |
//! | any of [`HttpOptions::vars`] | e.g. a tenant id |
//!
//! A string that is exactly one `{{ expression }}` stands for the expression's JSON value.
//! The `soql` filter escapes a value for a SOQL string literal
//! (`WHERE Email = '{{ key | soql }}'`). Templates reading a variable that is neither in this
//! table nor in the variables are refused when the connector is built.
//! Relative paths (and a `token_url` starting with `/`) are appended to the base URL.
//!
//! # Results
//!
//! * `search`: the `results` JSONPath selects the items (default: a top-level array). An item's
//!   id is the operation's `id` JSONPath applied to the item, else its `id` or `Id`; its
//!   modification time is `updatedAt`, `LastModifiedDate`, `updated_at` or
//!   `properties.lastmodifieddate`; its fields are its `properties` object when it has one
//!   (HubSpot), else the item without Salesforce's `attributes`.
//! * `create`/`update`: the id is the operation's `id` JSONPath over the response, else `id`/`Id`;
//!   an update that returns no id reports the id it was given.
//! * `upsert_batch`: see [`batch`].

mod auth;
pub mod batch;
mod classify;
mod operation;
mod pacing;
mod retry;
mod send;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Map, Value};

use self::auth::{Auth, SecretSource, TokenKind, TokenSource};
use self::classify::Rule;
use self::operation::{Body, Context, Query, Target, Templates, Text, id_text};
use self::pacing::{Limiter, Pacer};
use self::retry::RetrySettings;
use self::send::{Failed, Prepared, Response};
use super::{Call, Capabilities, ConnectError, Connector, ErrorKind, Found, UpsertItem, Written};
use crate::functions::Registry;
use crate::secrets::Secret;
use crate::syntax::doc::{self, ApiKeyLocation, ProviderDoc};

/// Per-request timeout when the provider file sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How a connector is built, besides the provider file.
#[derive(Clone)]
pub struct HttpOptions {
    /// Replaces the provider's `base_url` (a sandbox, a test server, a tenant's instance).
    /// Absolute URLs of the provider file on the same origin as its `base_url` (a
    /// `token_url`, say) follow it.
    pub base_url: Option<String>,
    /// Relative `${file:..}` references are read from here.
    pub secrets_base_dir: PathBuf,
    /// Credential values by reference name (`NAME` of `${env:NAME}`, `PATH` of
    /// `${file:PATH}`), used before the environment and the file system.
    pub secrets: Vec<(String, Secret)>,
    /// Whether `${env:..}` references not in `secrets` are read from the environment.
    pub read_env: bool,
    /// Per-request timeout when the provider file sets none.
    pub timeout: Duration,
    pub user_agent: String,
    /// Extra template variables (e.g. `tenant_id`), readable in every template.
    pub vars: Map<String, Value>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            base_url: None,
            secrets_base_dir: PathBuf::from("."),
            secrets: Vec::new(),
            read_env: true,
            timeout: DEFAULT_TIMEOUT,
            user_agent: concat!("rulebridge/", env!("CARGO_PKG_VERSION")).to_string(),
            vars: Map::new(),
        }
    }
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("base_url", &self.base_url)
            .field("secrets_base_dir", &self.secrets_base_dir)
            .field(
                "secrets",
                &self.secrets.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("read_env", &self.read_env)
            .field("timeout", &self.timeout)
            .field("user_agent", &self.user_agent)
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A provider file that cannot be turned into a connector: a missing credential, a template
/// or JSONPath or expression that does not compile. Never contains a credential's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provider `{provider}`: {message}")]
pub struct BuildError {
    pub provider: String,
    pub message: String,
}

/// A [`Connector`] over HTTP, driven by a provider file.
pub struct HttpConnector {
    name: String,
    /// Without a trailing slash.
    base_url: String,
    /// Whether an OAuth token response's `instance_url` replaces the base URL's origin
    /// (Salesforce); off when the caller chose the base URL.
    follow_instance_url: bool,
    client: reqwest::Client,
    auth: Auth,
    headers: HeaderMap,
    retry: RetrySettings,
    timeout: Duration,
    pacer: Pacer,
    templates: Templates,
    objects: HashMap<String, ObjectPlan>,
    rules: Vec<Rule>,
    vars: Map<String, Value>,
}

impl std::fmt::Debug for HttpConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut objects: Vec<&String> = self.objects.keys().collect();
        objects.sort();
        f.debug_struct("HttpConnector")
            .field("provider", &self.name)
            .field("base_url", &self.base_url)
            .field("auth", &self.auth)
            .field("objects", &objects)
            .finish_non_exhaustive()
    }
}

struct ObjectPlan {
    rules: Vec<Rule>,
    ops: HashMap<String, OpPlan>,
}

/// One compiled operation.
pub(crate) struct OpPlan {
    what: String,
    method: Method,
    path: Text,
    query: Vec<(String, Text)>,
    headers: Vec<(HeaderName, Text)>,
    body: Option<Body>,
    item: Option<Body>,
    id: Option<Query>,
    results: Option<Query>,
    item_errors: Option<Query>,
    created: Option<Query>,
    max_batch: Option<usize>,
    limiter: Option<Limiter>,
}

impl HttpConnector {
    /// Compiles `provider` and resolves its credentials.
    pub fn new(provider: &ProviderDoc, options: HttpOptions) -> Result<HttpConnector, BuildError> {
        let name = provider.name.value.clone();
        let fail = |message: String| BuildError {
            provider: name.clone(),
            message,
        };
        let secrets = SecretSource {
            overrides: &options.secrets,
            base_dir: &options.secrets_base_dir,
            read_env: options.read_env,
        };
        // rustls needs a process-wide crypto provider; a second install is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let declared_base = resolve_base(&provider.base_url.value, &secrets, &options.vars)
            .map_err(|e| fail(format!("base_url: {e}")))?;
        let base_url = options
            .base_url
            .clone()
            .unwrap_or_else(|| declared_base.clone())
            .trim_end_matches('/')
            .to_string();
        url::Url::parse(&base_url).map_err(|e| fail(format!("base_url `{base_url}`: {e}")))?;
        let rebase = |u: &str| -> String {
            if u.starts_with('/') {
                return format!("{base_url}{u}");
            }
            match (&options.base_url, origin(u), origin(&declared_base)) {
                (Some(_), Some(o), Some(d)) if o == d => {
                    // The override stands for the declared base: keep any prefix it adds
                    // before the declared base's own path (a sandbox mounts each API under
                    // its own path).
                    let declared_path = declared_base[d.len()..].trim_end_matches('/');
                    let root = base_url
                        .strip_suffix(declared_path)
                        .filter(|_| !declared_path.is_empty())
                        .map(str::to_string)
                        .unwrap_or_else(|| {
                            let over = origin(&base_url).unwrap_or_default();
                            if declared_path.is_empty() {
                                base_url.clone()
                            } else {
                                over
                            }
                        });
                    format!("{root}{}", &u[o.len()..])
                }
                _ => u.to_string(),
            }
        };

        let timeout = provider
            .timeout
            .as_ref()
            .map_or(options.timeout, |t| t.value);
        let client = reqwest::Client::builder()
            .user_agent(options.user_agent.clone())
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| fail(format!("cannot create the HTTP client: {e}")))?;

        let auth = build_auth(provider, &secrets, &client, timeout, &rebase).map_err(&fail)?;

        let mut headers = HeaderMap::new();
        for (k, v) in &provider.headers {
            let header = HeaderName::from_bytes(k.value.as_bytes())
                .map_err(|_| fail(format!("`{}` is not a valid header name", k.value)))?;
            let is_ref = v.value.trim().starts_with("${");
            let value = secrets
                .resolve(&v.value, &format!("header `{}`", k.value))
                .map_err(&fail)?;
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| fail(format!("header `{}` has an invalid value", k.value)))?;
            value.set_sensitive(is_ref);
            headers.insert(header, value);
        }
        headers
            .entry(http::header::ACCEPT)
            .or_insert(HeaderValue::from_static("application/json"));

        let registry = Registry::builtin();
        let rules =
            classify::compile_rules(&provider.errors, &registry, "provider").map_err(&fail)?;
        let mut templates = Templates::new(options.vars.keys());
        let mut objects = HashMap::new();
        for object in &provider.objects {
            let oname = &object.name.value;
            let orules =
                classify::compile_rules(&object.errors, &registry, &format!("object `{oname}`"))
                    .map_err(&fail)?;
            let mut ops = HashMap::new();
            for op in &object.operations {
                let plan = compile_operation(&mut templates, oname, op).map_err(&fail)?;
                ops.insert(op.name.value.clone(), plan);
            }
            objects.insert(oname.clone(), ObjectPlan { rules: orules, ops });
        }

        Ok(HttpConnector {
            follow_instance_url: options.base_url.is_none(),
            name,
            base_url,
            client,
            auth,
            headers,
            retry: RetrySettings::new(provider.retry.as_ref().map(|r| &r.value)),
            timeout,
            pacer: Pacer::new(provider.rate_limit.as_ref().map(|r| r.value)),
            templates,
            objects,
            rules,
            vars: options.vars,
        })
    }

    /// The provider's name.
    pub fn provider(&self) -> &str {
        &self.name
    }

    /// Runs any operation of an object (`get`, `list`, `delete`, a custom one) with `vars`
    /// added to the template context, and returns the response body (JSON, a string when it
    /// is not JSON, null when empty).
    pub async fn call(
        &self,
        object: &str,
        operation: &str,
        vars: Map<String, Value>,
    ) -> Result<Value, ConnectError> {
        let (obj, op) = self.operation(object, operation)?;
        let cx = self.context(vars);
        let resp = self.run(obj, op, &cx, None).await?;
        Ok(resp.body)
    }

    fn operation(
        &self,
        object: &str,
        operation: &str,
    ) -> Result<(&ObjectPlan, &OpPlan), ConnectError> {
        let obj = self.objects.get(object).ok_or_else(|| {
            ConnectError::new(
                ErrorKind::Fatal,
                format!("provider `{}` has no object `{object}`", self.name),
            )
        })?;
        let op = obj.ops.get(operation).ok_or_else(|| {
            ConnectError::new(
                ErrorKind::Fatal,
                format!(
                    "object `{object}` of provider `{}` has no `{operation}` operation",
                    self.name
                ),
            )
        })?;
        Ok((obj, op))
    }

    /// The template context: the caller's variables, then `entries`.
    fn context(&self, entries: Map<String, Value>) -> Context {
        let mut map = self.vars.clone();
        map.extend(entries);
        Context::new(map)
    }

    fn prepare(&self, op: &OpPlan, cx: &Context) -> Result<Prepared, ConnectError> {
        let path = self.templates.render_text(&op.path, cx)?;
        let mut query = Vec::with_capacity(op.query.len());
        for (k, v) in &op.query {
            query.push((k.clone(), self.templates.render_text(v, cx)?));
        }
        let mut headers = HeaderMap::new();
        for (k, v) in &op.headers {
            let value = self.templates.render_text(v, cx)?;
            let value = HeaderValue::from_str(&value).map_err(|_| {
                ConnectError::new(
                    ErrorKind::Fatal,
                    format!("{}: header `{k}` rendered to an invalid value", op.what),
                )
            })?;
            headers.insert(k.clone(), value);
        }
        let body = op
            .body
            .as_ref()
            .map(|b| self.templates.render_body(b, cx))
            .transpose()?;
        Ok(Prepared {
            what: op.what.clone(),
            method: op.method.clone(),
            path,
            query,
            headers,
            body,
        })
    }

    async fn run(
        &self,
        obj: &ObjectPlan,
        op: &OpPlan,
        cx: &Context,
        deadline: Option<Instant>,
    ) -> Result<Response, ConnectError> {
        self.run_keeping_response(obj, op, cx, deadline)
            .await
            .map_err(|f| f.error)
    }

    /// Like `run`, keeping the response of a failure (batches read per-item errors from it).
    async fn run_keeping_response(
        &self,
        obj: &ObjectPlan,
        op: &OpPlan,
        cx: &Context,
        deadline: Option<Instant>,
    ) -> Result<Response, Failed> {
        let req = self.prepare(op, cx)?;
        self.send(
            &req,
            op.limiter.as_ref(),
            &obj.rules,
            deadline.map(tokio::time::Instant::from_std),
        )
        .await
    }

    /// The URL of a rendered path; `instance_url` (from an OAuth token) replaces the base
    /// URL's origin when allowed.
    fn url(&self, path: &str, instance_url: Option<&str>) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_string();
        }
        let base = match instance_url.filter(|_| self.follow_instance_url) {
            Some(inst) => match origin(&self.base_url) {
                Some(o) => format!(
                    "{}{}",
                    inst.trim_end_matches('/'),
                    &self.base_url[o.len()..]
                ),
                None => self.base_url.clone(),
            },
            None => self.base_url.clone(),
        };
        if path.is_empty() {
            base
        } else if path.starts_with('/') {
            format!("{base}{path}")
        } else {
            format!("{base}/{path}")
        }
    }

    async fn search_impl(
        &self,
        object: &str,
        field: &str,
        value: &str,
        deadline: Option<Instant>,
    ) -> Result<Vec<Found>, ConnectError> {
        let (obj, op) = self.operation(object, "search")?;
        let mut m = Map::new();
        m.insert("key".into(), Value::from(value));
        m.insert("field".into(), Value::from(field));
        let cx = self.context(m);
        let resp = self.run(obj, op, &cx, deadline).await?;
        let items = match &op.results {
            Some(q) => q.all(&resp.body),
            None => match resp.body {
                Value::Array(items) => items,
                _ => Vec::new(),
            },
        };
        items.into_iter().map(|item| found(op, item)).collect()
    }

    async fn create_impl(
        &self,
        object: &str,
        payload: &Value,
        deadline: Option<Instant>,
    ) -> Result<Written, ConnectError> {
        let (obj, op) = self.operation(object, "create")?;
        let mut m = Map::new();
        m.insert("payload".into(), payload.clone());
        let cx = self.context(m);
        let resp = self.run(obj, op, &cx, deadline).await?;
        Ok(Written {
            id: response_id(op, &resp.body),
            created: Some(true),
        })
    }

    async fn update_impl(
        &self,
        object: &str,
        id: &str,
        payload: &Value,
        deadline: Option<Instant>,
    ) -> Result<Written, ConnectError> {
        let (obj, op) = self.operation(object, "update")?;
        let mut m = Map::new();
        m.insert("payload".into(), payload.clone());
        m.insert("id".into(), Value::from(id));
        let cx = self.context(m);
        let resp = self.run(obj, op, &cx, deadline).await?;
        Ok(Written {
            id: response_id(op, &resp.body).or_else(|| Some(id.to_string())),
            created: Some(false),
        })
    }

    fn capabilities_of(&self, object: &str) -> Capabilities {
        let Some(obj) = self.objects.get(object) else {
            return Capabilities::default();
        };
        Capabilities {
            search: obj.ops.contains_key("search"),
            create: obj.ops.contains_key("create"),
            update: obj.ops.contains_key("update"),
            batch_upsert: obj
                .ops
                .get("batch_upsert")
                .map(|op| op.max_batch.unwrap_or(batch::DEFAULT_MAX_BATCH)),
            ..Capabilities::default()
        }
    }
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(u: &str) -> Option<String> {
    let scheme_end = u.find("://")? + 3;
    let rest = &u[scheme_end..];
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(u[..scheme_end + host_end].to_string())
}

/// `base_url` may be a secret reference (`${env:CRM_URL}`) or a template over the variables.
fn resolve_base(
    text: &str,
    secrets: &SecretSource<'_>,
    vars: &Map<String, Value>,
) -> Result<String, String> {
    let t = text.trim();
    if t.starts_with("${") {
        return secrets
            .resolve(t, "base_url")
            .map(|s| s.expose().to_string());
    }
    if t.contains("{{") {
        let env = minijinja::Environment::new();
        return env
            .render_str(t, minijinja::Value::from(minijinja::value::Serde(vars)))
            .map_err(|e| format!("template error: {e}"));
    }
    Ok(t.to_string())
}

fn build_auth(
    provider: &ProviderDoc,
    secrets: &SecretSource<'_>,
    client: &reqwest::Client,
    timeout: Duration,
    rebase: &dyn Fn(&str) -> String,
) -> Result<Auth, String> {
    let Some(auth) = &provider.auth else {
        return Ok(Auth::None);
    };
    let s = |field: &doc::Spanned<String>, what: &str| {
        secrets.resolve(&field.value, &format!("auth.{what}"))
    };
    let url = |field: &doc::Spanned<String>, what: &str| -> Result<String, String> {
        let u = rebase(s(field, what)?.expose());
        url::Url::parse(&u).map_err(|e| format!("auth.{what} `{u}`: {e}"))?;
        Ok(u)
    };
    let token = |kind| Auth::Token(Box::new(TokenSource::new(kind, client.clone(), timeout)));
    Ok(match &auth.value {
        doc::Auth::None => Auth::None,
        doc::Auth::ApiKey {
            location,
            name,
            value,
        } => {
            let value = s(value, "value")?;
            match location {
                ApiKeyLocation::Header => Auth::Header {
                    name: HeaderName::from_bytes(name.value.as_bytes()).map_err(|_| {
                        format!("auth.name `{}` is not a valid header name", name.value)
                    })?,
                    value,
                },
                ApiKeyLocation::Query => Auth::Query {
                    name: name.value.clone(),
                    value,
                },
            }
        }
        doc::Auth::Bearer { token } => Auth::Bearer(s(token, "token")?),
        doc::Auth::Basic { username, password } => Auth::Basic {
            username: s(username, "username")?,
            password: s(password, "password")?,
        },
        doc::Auth::OAuth2Refresh {
            token_url,
            client_id,
            client_secret,
            refresh_token,
            scopes,
        } => token(TokenKind::OAuthRefresh {
            token_url: url(token_url, "token_url")?,
            client_id: s(client_id, "client_id")?,
            client_secret: s(client_secret, "client_secret")?,
            refresh_token: s(refresh_token, "refresh_token")?,
            scopes: scopes.clone(),
        }),
        doc::Auth::OAuth2ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scopes,
        } => token(TokenKind::OAuthClientCredentials {
            token_url: url(token_url, "token_url")?,
            client_id: s(client_id, "client_id")?,
            client_secret: s(client_secret, "client_secret")?,
            scopes: scopes.clone(),
        }),
        doc::Auth::TokenExchange {
            token_url,
            username,
            password,
            token: token_path,
            expires,
            keep_alive_url,
        } => token(TokenKind::Exchange {
            token_url: url(token_url, "token_url")?,
            username: s(username, "username")?,
            password: s(password, "password")?,
            token: Query::compile(&token_path.value).map_err(|e| format!("auth.token: {e}"))?,
            expires: expires
                .as_ref()
                .map(|e| Query::compile(&e.value).map_err(|e| format!("auth.expires: {e}")))
                .transpose()?,
            keep_alive_url: keep_alive_url
                .as_ref()
                .map(|k| url(k, "keep_alive_url"))
                .transpose()?,
        }),
    })
}

fn compile_operation(
    templates: &mut Templates,
    object: &str,
    op: &doc::Operation,
) -> Result<OpPlan, String> {
    let what = format!("{object}.{}", op.name.value);
    let at = |part: &str| format!("object `{object}`, operation `{}`, {part}", op.name.value);
    let method = Method::from_bytes(op.method.value.as_bytes()).map_err(|_| {
        format!(
            "{}: `{}` is not an HTTP method",
            at("method"),
            op.method.value
        )
    })?;
    let path = templates.text(&op.path.value, Target::Path, &at("path"))?;
    let query = op
        .query
        .iter()
        .map(|(k, v)| {
            let t = templates.text(
                &v.value,
                Target::Plain,
                &at(&format!("query `{}`", k.value)),
            )?;
            Ok((k.value.clone(), t))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let headers = op
        .headers
        .iter()
        .map(|(k, v)| {
            let name = HeaderName::from_bytes(k.value.as_bytes()).map_err(|_| {
                format!(
                    "{}: `{}` is not a valid header name",
                    at("headers"),
                    k.value
                )
            })?;
            let t = templates.text(
                &v.value,
                Target::Plain,
                &at(&format!("header `{}`", k.value)),
            )?;
            Ok((name, t))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let body = op
        .body
        .as_ref()
        .map(|b| templates.body(&b.value, &at("body")))
        .transpose()?;
    let item = op
        .item
        .as_ref()
        .map(|b| templates.body(&b.value, &at("item")))
        .transpose()?;
    let query_of = |q: &Option<doc::Spanned<String>>, part: &str| {
        q.as_ref()
            .map(|q| Query::compile(&q.value).map_err(|e| format!("{}: {e}", at(part))))
            .transpose()
    };
    Ok(OpPlan {
        what,
        method,
        path,
        query,
        headers,
        body,
        item,
        id: query_of(&op.id, "id")?,
        results: query_of(&op.results, "results")?,
        item_errors: query_of(&op.item_errors, "item_errors")?,
        created: query_of(&op.created, "created")?,
        max_batch: op.max_batch.as_ref().map(|m| m.value.max(1) as usize),
        limiter: op.rate_limit.as_ref().and_then(|r| Limiter::new(r.value)),
    })
}

/// The id in a create/update response.
fn response_id(op: &OpPlan, body: &Value) -> Option<String> {
    match &op.id {
        Some(q) => q.first(body).as_ref().and_then(id_text),
        None => ["id", "Id"]
            .iter()
            .find_map(|k| body.get(*k).and_then(id_text)),
    }
}

/// A search result item as a [`Found`].
fn found(op: &OpPlan, item: Value) -> Result<Found, ConnectError> {
    let id = response_id(op, &item).ok_or_else(|| {
        ConnectError::new(ErrorKind::Fatal, format!("{}: a result has no id", op.what))
    })?;
    let updated_at = ["updatedAt", "LastModifiedDate", "updated_at"]
        .iter()
        .find_map(|k| item.get(*k))
        .or_else(|| {
            item.get("properties")
                .and_then(|p| p.get("lastmodifieddate"))
        })
        .and_then(Value::as_str)
        .map(str::to_string);
    let fields = match item {
        Value::Object(mut m) => match m.remove("properties") {
            Some(p @ Value::Object(_)) => p,
            other => {
                if let Some(p) = other {
                    m.insert("properties".into(), p);
                }
                m.remove("attributes");
                Value::Object(m)
            }
        },
        other => other,
    };
    Ok(Found {
        id,
        updated_at,
        fields,
    })
}

impl Connector for HttpConnector {
    fn capabilities(&self, object: &str) -> Capabilities {
        self.capabilities_of(object)
    }

    fn search<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        field: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Found>, ConnectError>> {
        Box::pin(self.search_impl(object, field, value, call.deadline))
    }

    fn create<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>> {
        Box::pin(self.create_impl(object, payload, call.deadline))
    }

    fn update<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        id: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>> {
        Box::pin(self.update_impl(object, id, payload, call.deadline))
    }

    fn upsert_batch<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        field: &'a str,
        items: &'a [UpsertItem<'a>],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>> {
        Box::pin(self.upsert_batch_impl(object, field, items, call.deadline))
    }
}
