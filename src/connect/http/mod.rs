//! The HTTP connector: runs a compiled [`ProviderPlan`] (auth, pacing, retries, operations,
//! batching, error classification) to implement [`Connector`].
//!
//! Everything in the provider file was compiled by `compile` (templates, JSONPath queries,
//! error-rule and field-mapping expressions, with the engine's function registry); building a
//! connector only resolves credentials, declared secrets, variables and the base URL. One
//! `reqwest` client (and its connection pool) serves every request of a connector.
//!
//! ```no_run
//! # async fn demo(plan: &rulebridge::plan::Plan) -> Result<(), Box<dyn std::error::Error>> {
//! use rulebridge::connect::Connector;
//! use rulebridge::connect::http::{HttpConnector, HttpOptions};
//!
//! use rulebridge::connect::Call;
//!
//! let kit = plan.provider("hubspot").ok_or("no hubspot provider")?;
//! let hubspot = HttpConnector::new(kit, HttpOptions::default())?;
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
//! | `id` | the target record's id (update, get, delete) |
//! | `key`, `field` | the identity value and field name (search, one batch item) |
//! | `match` | search: every field looked up and its value (`match.project_id`), for a compound match key or a reference found by several fields |
//! | `items` (also `inputs`, `records`) | a batch (`batch_*` operations): the rendered `item` template of every item, or the payloads when the operation has none |
//! | `payloads`, `keys` | a batch: the payloads and the identity values (`keys`: upserts only) |
//! | `ids` | `batch_update`: the target ids (an item's template reads its own as `id`) |
//! | `values` | `batch_search`: the values looked up (with `field`) |
//! | `first` | a batch: the first item's payload |
//! | `secrets.NAME` | a secret the provider declares under `secrets:` |
//! | the provider's `vars` | values the application passes in [`HttpOptions::vars`], e.g. a tenant id |
//!
//! `fields` and `list` operations read none of the per-request names. A string that is
//! exactly one `{{ expression }}` stands for the expression's JSON value. The `soql` filter
//! escapes a value for a SOQL string literal (`WHERE Email = '{{ key | soql }}'`). Templates
//! reading anything else are lint errors. Relative paths (and a `token_url` starting with
//! `/`) are appended to the base URL.
//!
//! # Base URL
//!
//! [`HttpOptions::base_url`] replaces the provider's: one with a path replaces it whole; one
//! with a host only (`http://127.0.0.1:8080`) keeps the provider's path
//! (`/services/data/v58.0`).
//!
//! # Results
//!
//! * `search`: the `results` JSONPath selects the items (default: a top-level array). The
//!   object's `response` paths say where an item's id (default: its `id`), modification time
//!   and flat field map (default: the item) are; `omit` drops keys that are not fields.
//! * `create`/`update`: the id is the operation's `id` JSONPath over the response, else `id`;
//!   an update that returns no id reports the id it was given.
//! * `upsert_batch`: see [`batch`]; `search_many` (`batch_search`), `create_batch`
//!   (`batch_create`) and `update_batch` (`batch_update`) work the same way (module docs of
//!   `batch_search` and `batch_write`).
//!
//! # Writes that are safe to retry
//!
//! A request is sent again after a failure only when that cannot write twice. A `create` or
//! `batch_create` whose request may have reached the server — a timeout, a connection lost
//! after it was sent, a 5xx other than a 503 with `Retry-After` — is not repeated: it fails
//! with [`ConnectError::outcome_unknown`] and the engine looks the record up before creating
//! again. Failures that say the request was not processed (a refused connection, DNS, 408,
//! 429, a 503 with `Retry-After`, a 401 answered by a token refresh, a token that could not be
//! fetched) are retried as the provider's `retry` says. A kit whose creates carry an
//! idempotency key declares `idempotent: true` on them; those are retried like any request.

mod auth;
pub mod batch;
mod batch_search;
mod batch_write;
mod classify;
mod context;
mod group;
mod operation;
mod pacing;
mod retry;
mod send;
mod shape;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value};

use self::auth::{Auth, SecretSource, TokenKind, TokenSource};
use self::context::{Context, Part};
use self::operation::id_text;
use self::pacing::{Limiter, Pacer};
use self::retry::RetrySettings;
use self::send::{Failed, Prepared, Response};
use super::{
    Call, Capabilities, ConnectError, Connector, ErrorKind, Found, UpdateItem, UpsertItem, Written,
};
use crate::plan::ProviderPlan;
use crate::plan::provider::{AuthPlan, BaseUrl, ObjectPlan, OperationPlan, ResponsePlan};
use crate::secrets::{Resolver, Secret, SecretRef};
use crate::syntax::doc::ApiKeyLocation;

/// Per-request timeout when the provider file sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How a connector is built, besides the provider file.
#[derive(Clone)]
pub struct HttpOptions {
    /// Replaces the provider's `base_url` (a sandbox, a test server, a tenant's instance). A
    /// URL with a host only keeps the provider's path; one with a path replaces it. Absolute
    /// URLs of the provider file on the same origin as its `base_url` (a `token_url`, say)
    /// follow it.
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
    /// Values of the provider's declared `vars` (e.g. `tenant_id`), readable in every template.
    pub vars: Map<String, Value>,
    /// Reads `${vault:..}` and `${secret:..}` credentials (cached); the process-wide one
    /// ([`Resolver::global`]) when `None`.
    pub resolver: Option<Arc<Resolver>>,
    /// A tenant's OAuth connection (the kit's `connect:`): its tokens replace the kit's
    /// `auth`, refreshed through the connect section's token URL.
    pub oauth: Option<crate::connect::oauth::OAuthSession>,
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
            resolver: None,
            oauth: None,
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

/// A provider that cannot be turned into a connector here: a missing credential, secret or
/// variable, an unusable base URL. Never contains a credential's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provider `{provider}`: {message}")]
pub struct BuildError {
    pub provider: String,
    pub message: String,
}

/// A [`Connector`] over HTTP, driven by a compiled provider.
pub struct HttpConnector {
    plan: Arc<ProviderPlan>,
    /// Without a trailing slash.
    base_url: String,
    /// Whether an OAuth token response's `instance_url` replaces the base URL's origin
    /// (an org on its own host); off when the caller chose the base URL.
    follow_instance_url: bool,
    client: reqwest::Client,
    /// Credentials, provider headers and the template context's `secrets`: replaced when a
    /// refused credential from Vault or the store is read again.
    creds: std::sync::RwLock<Arc<Creds>>,
    /// What building the credentials again needs.
    rebuild: Rebuild,
    retry: RetrySettings,
    timeout: Duration,
    pacer: Pacer,
    /// Per-operation limits, by `object.operation`.
    limiters: HashMap<String, Limiter>,
}

/// What the credentials resolve to.
pub(crate) struct Creds {
    pub auth: Auth,
    pub headers: HeaderMap,
    /// The caller's variables and the resolved `secrets`: the base of every template context.
    pub context: Map<String, Value>,
}

/// The inputs of [`HttpConnector::build_creds`], kept to build the credentials again.
struct Rebuild {
    options: HttpOptions,
    resolver: Arc<Resolver>,
    /// The base URL as the provider declares it (after resolving it).
    declared_base: String,
    /// Credentials read from Vault or the store; empty when nothing can be read again.
    remote: Vec<SecretRef>,
    /// One re-read at a time.
    lock: tokio::sync::Mutex<u64>,
}

impl std::fmt::Debug for HttpConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConnector")
            .field("provider", &self.plan.name)
            .field("base_url", &self.base_url)
            .field("auth", &self.creds().auth)
            .field("objects", &self.plan.objects.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl HttpConnector {
    /// Builds a connector for a compiled provider: resolves its credentials, declared
    /// secrets, variables and base URL.
    pub fn new(
        provider: &Arc<ProviderPlan>,
        options: HttpOptions,
    ) -> Result<HttpConnector, BuildError> {
        let plan = provider.clone();
        let fail = |message: String| BuildError {
            provider: plan.name.clone(),
            message,
        };
        let resolver = options.resolver.clone().unwrap_or_else(Resolver::global);
        let secrets = SecretSource {
            overrides: &options.secrets,
            base_dir: &options.secrets_base_dir,
            read_env: options.read_env,
            resolver: &resolver,
            remote: Default::default(),
        };
        let missing: Vec<&str> = plan
            .vars
            .iter()
            .filter(|v| !options.vars.contains_key(v.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(fail(format!(
                "the templates read {}, which the application did not pass (HttpOptions::vars)",
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let base_context = secrets_context(&plan, &options, &secrets).map_err(&fail)?;
        let declared_base = resolve_base(&plan, &secrets, &base_context)
            .map_err(|e| fail(format!("base_url: {e}")))?;
        let base_url = effective_base(&declared_base, options.base_url.as_deref());
        url::Url::parse(&base_url).map_err(|e| fail(format!("base_url `{base_url}`: {e}")))?;

        let timeout = plan.timeout.unwrap_or(options.timeout);
        let client = crate::http_client::builder()
            .map_err(|e| fail(e.to_string()))?
            .user_agent(options.user_agent.clone())
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| fail(format!("cannot create the HTTP client: {e}")))?;

        let creds = build_creds(
            &plan,
            &options,
            &secrets,
            &client,
            timeout,
            &base_url,
            &declared_base,
        )
        .map_err(&fail)?;
        let remote = secrets.remote.into_inner();

        let limiters = plan
            .objects
            .values()
            .flat_map(|o| o.operations.values())
            .filter_map(|op| Some((op.what.clone(), Limiter::new(op.rate_limit?)?)))
            .collect();

        Ok(HttpConnector {
            follow_instance_url: options.base_url.is_none(),
            base_url,
            client,
            creds: std::sync::RwLock::new(Arc::new(creds)),
            retry: RetrySettings::new(plan.retry.as_ref()),
            timeout,
            pacer: Pacer::new(plan.rate_limit),
            limiters,
            rebuild: Rebuild {
                options,
                resolver,
                declared_base,
                remote,
                lock: tokio::sync::Mutex::new(0),
            },
            plan,
        })
    }

    /// The current credentials.
    pub(crate) fn creds(&self) -> Arc<Creds> {
        self.creds.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// After the provider refused credentials of `generation` (see [`HttpConnector::creds_generation`]):
    /// forgets the Vault and store values they came from, reads them again and rebuilds the
    /// credentials. `false` when there is nothing to read again or reading failed.
    pub(crate) async fn reread_credentials(&self, generation: u64) -> bool {
        let rb = &self.rebuild;
        if rb.remote.is_empty() {
            return false;
        }
        let mut current = rb.lock.lock().await;
        if *current != generation {
            // Another request already read them again.
            return true;
        }
        for r in &rb.remote {
            rb.resolver.invalidate(r);
        }
        let plan = self.plan.clone();
        let options = rb.options.clone();
        let resolver = rb.resolver.clone();
        let client = self.client.clone();
        let (timeout, base_url, declared) = (
            self.timeout,
            self.base_url.clone(),
            rb.declared_base.clone(),
        );
        // Resolving blocks (a Vault read on a runtime of its own).
        let built = tokio::task::spawn_blocking(move || {
            let secrets = SecretSource {
                overrides: &options.secrets,
                base_dir: &options.secrets_base_dir,
                read_env: options.read_env,
                resolver: &resolver,
                remote: Default::default(),
            };
            build_creds(
                &plan, &options, &secrets, &client, timeout, &base_url, &declared,
            )
        })
        .await;
        match built {
            Ok(Ok(creds)) => {
                *self.creds.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(creds);
                *current += 1;
                tracing::info!(provider = %self.plan.name, "credentials refused: read them again");
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(provider = %self.plan.name, error = %crate::secrets::scrub::scrub(&e), "reading the refused credentials again failed");
                false
            }
            Err(_) => false,
        }
    }

    /// Counts the credential re-reads; a refusal reports the generation it saw.
    pub(crate) async fn creds_generation(&self) -> u64 {
        *self.rebuild.lock.lock().await
    }

    /// The provider's name.
    pub fn provider(&self) -> &str {
        &self.plan.name
    }

    /// The compiled provider this connector runs.
    pub fn plan(&self) -> &Arc<ProviderPlan> {
        &self.plan
    }

    /// The base URL requests go to (after `HttpOptions::base_url`).
    pub fn base_url(&self) -> &str {
        &self.base_url
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
        let creds = self.creds();
        let cx = vars
            .into_iter()
            .fold(Context::new(&creds.context), |cx, (k, v)| {
                cx.with(k, Part::Owned(v))
            });
        let resp = self.run(obj, op, &cx, None).await?;
        Ok(resp.body)
    }

    pub(crate) fn operation(
        &self,
        object: &str,
        operation: &str,
    ) -> Result<(&ObjectPlan, &OperationPlan), ConnectError> {
        let obj = self.plan.objects.get(object).ok_or_else(|| {
            ConnectError::new(
                ErrorKind::Fatal,
                format!("provider `{}` has no object `{object}`", self.plan.name),
            )
        })?;
        let op = obj.operations.get(operation).ok_or_else(|| {
            ConnectError::new(
                ErrorKind::Fatal,
                format!(
                    "object `{object}` of provider `{}` has no `{operation}` operation",
                    self.plan.name
                ),
            )
        })?;
        Ok((obj, op))
    }

    fn prepare(&self, op: &OperationPlan, cx: &Context<'_>) -> Result<Prepared, ConnectError> {
        let t = &self.plan.templates;
        let path = t.render_text(&op.path, cx)?;
        let mut query = Vec::with_capacity(op.query.len());
        for (k, v) in &op.query {
            query.push((k.clone(), t.render_text(v, cx)?));
        }
        let mut headers = HeaderMap::new();
        for (k, v) in &op.headers {
            let value = t.render_text(v, cx)?;
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                ConnectError::new(
                    ErrorKind::Fatal,
                    format!("{}: header `{k}` rendered to an invalid value", op.what),
                )
            })?;
            value.set_sensitive(v.reads_secrets());
            headers.insert(k.clone(), value);
        }
        // Serialized once, straight from the borrowed payloads; every attempt sends these bytes.
        let body = match &op.body {
            Some(b) => Some(serde_json::to_vec(&t.render_body(b, cx)?).map_err(|e| {
                ConnectError::new(
                    ErrorKind::Fatal,
                    format!("{}: the body could not be written as JSON: {e}", op.what),
                )
            })?),
            None => None,
        };
        Ok(Prepared {
            what: op.what.clone(),
            method: op.method.clone(),
            path,
            query,
            headers,
            body,
            repeatable: op.repeatable(),
            shape: None,
        })
    }

    async fn run(
        &self,
        obj: &ObjectPlan,
        op: &OperationPlan,
        cx: &Context<'_>,
        deadline: Option<Instant>,
    ) -> Result<Response, ConnectError> {
        self.run_keeping_response(obj, op, cx, deadline, None)
            .await
            .map_err(|f| f.error)
    }

    /// Like `run`, keeping the response of a failure (batches read per-item errors from it);
    /// a success is parsed only as far as `shape` reads it.
    async fn run_keeping_response(
        &self,
        obj: &ObjectPlan,
        op: &OperationPlan,
        cx: &Context<'_>,
        deadline: Option<Instant>,
        shape: Option<shape::Shape>,
    ) -> Result<Response, Failed> {
        let generation = self.creds_generation().await;
        let mut req = self.prepare(op, cx)?;
        req.shape = shape;
        let deadline = deadline.map(tokio::time::Instant::from_std);
        let limiter = self.limiters.get(&op.what);
        match self.send(&req, limiter, &obj.errors, deadline).await {
            // A key or token from Vault or the store that the provider calls invalid: it may
            // have been rotated there. Read it again, once, and send again.
            Err(f)
                if f.error.kind == ErrorKind::Auth && self.reread_credentials(generation).await =>
            {
                let creds = self.creds();
                let cx = cx.rebased(&creds.context);
                let shape = req.shape.take();
                let mut req = self.prepare(op, &cx)?;
                req.shape = shape;
                self.send(&req, limiter, &obj.errors, deadline).await
            }
            other => other,
        }
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
        self.search_where_impl(object, &[(field, value)], deadline)
            .await
    }

    /// A search by every `(field, value)` of `criteria`: the first is `key` and `field`, and
    /// all of them are `match.FIELD` in the operation's templates.
    async fn search_where_impl(
        &self,
        object: &str,
        criteria: &[(&str, &str)],
        deadline: Option<Instant>,
    ) -> Result<Vec<Found>, ConnectError> {
        let Some((field, value)) = criteria.first() else {
            return Ok(Vec::new());
        };
        let (obj, op) = self.operation(object, "search")?;
        let by: Map<String, Value> = criteria
            .iter()
            .map(|(f, v)| ((*f).to_string(), Value::from(*v)))
            .collect();
        let creds = self.creds();
        let cx = Context::new(&creds.context)
            .with("key", Part::Str(value))
            .with("field", Part::Str(field))
            .with("match", Part::Owned(Value::Object(by)));
        let resp = self.run(obj, op, &cx, deadline).await?;
        let items = match &op.results {
            Some(q) => q.all(&resp.body),
            None => match resp.body {
                Value::Array(items) => items,
                _ => Vec::new(),
            },
        };
        let mut out = items
            .into_iter()
            .map(|item| found(&obj.response, op, item))
            .collect::<Result<Vec<Found>, ConnectError>>()?;
        if criteria.len() > 1 {
            // A search that filtered by fewer fields than asked finds no false matches.
            out.retain(|f| super::fields_agree(&f.fields, criteria, false));
        }
        Ok(out)
    }

    async fn create_impl(
        &self,
        object: &str,
        payload: &Value,
        deadline: Option<Instant>,
    ) -> Result<Written, ConnectError> {
        let (obj, op) = self.operation(object, "create")?;
        let creds = self.creds();
        let cx = Context::new(&creds.context).with("payload", Part::Json(payload));
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
        let creds = self.creds();
        let cx = Context::new(&creds.context)
            .with("payload", Part::Json(payload))
            .with("id", Part::Str(id));
        let resp = self.run(obj, op, &cx, deadline).await?;
        Ok(Written {
            id: response_id(op, &resp.body).or_else(|| Some(id.to_string())),
            created: Some(false),
        })
    }

    fn capabilities_of(&self, object: &str) -> Capabilities {
        let Some(obj) = self.plan.objects.get(object) else {
            return Capabilities::default();
        };
        let max = |name: &str| {
            obj.operations
                .get(name)
                .map(|op| op.max_batch.unwrap_or(batch::DEFAULT_MAX_BATCH).max(1))
        };
        // Creates the connector may repeat itself: every create operation the engine may use
        // is declared idempotent.
        let idempotent_create = ["create", "batch_create"]
            .iter()
            .filter_map(|n| obj.operations.get(*n))
            .all(|op| op.idempotent)
            && obj.operations.contains_key("create");
        Capabilities {
            search: obj.operations.contains_key("search"),
            batch_search: max("batch_search"),
            create: obj.operations.contains_key("create"),
            update: obj.operations.contains_key("update"),
            batch_upsert: max("batch_upsert"),
            batch_create: max("batch_create"),
            batch_update: max("batch_update"),
            idempotent_create,
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

/// The path of an absolute URL, without a trailing slash (`""` for a host only).
fn path_of(u: &str) -> &str {
    match origin(u) {
        Some(o) => u[o.len()..].trim_end_matches('/'),
        None => "",
    }
}

/// The base URL requests go to: the caller's, completed with the provider's path when it
/// names a host only; else the provider's.
fn effective_base(declared: &str, chosen: Option<&str>) -> String {
    let declared = declared.trim_end_matches('/');
    match chosen.map(|c| c.trim_end_matches('/')) {
        None => declared.to_string(),
        Some(c) if path_of(c).is_empty() => format!("{c}{}", path_of(declared)),
        Some(c) => c.to_string(),
    }
}

/// Where an absolute or `/`-relative URL of the provider file (a `token_url`) goes. With a
/// caller-chosen base, a URL on the declared base's origin follows it, keeping any prefix the
/// chosen base adds before the declared base's own path (a sandbox mounts each API under its
/// own path).
fn rebase(u: &str, base_url: &str, declared_base: &str, chosen: bool) -> String {
    if u.starts_with('/') {
        return format!("{base_url}{u}");
    }
    match (chosen, origin(u), origin(declared_base)) {
        (true, Some(o), Some(d)) if o == d => {
            let declared_path = path_of(declared_base);
            let root = base_url
                .strip_suffix(declared_path)
                .filter(|_| !declared_path.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| {
                    if declared_path.is_empty() {
                        base_url.to_string()
                    } else {
                        origin(base_url).unwrap_or_default()
                    }
                });
            format!("{root}{}", &u[o.len()..])
        }
        _ => u.to_string(),
    }
}

/// Resolves the credentials, provider headers and declared secrets.
fn build_creds(
    plan: &ProviderPlan,
    options: &HttpOptions,
    secrets: &SecretSource<'_>,
    client: &reqwest::Client,
    timeout: Duration,
    base_url: &str,
    declared_base: &str,
) -> Result<Creds, String> {
    let context = secrets_context(plan, options, secrets)?;
    let rebase = |u: &str| rebase(u, base_url, declared_base, options.base_url.is_some());
    let auth = match &options.oauth {
        Some(session) => session_auth(session, client, timeout),
        None => build_auth(&plan.auth, secrets, client, timeout, &rebase)?,
    };

    let mut headers = HeaderMap::new();
    for (name, v) in &plan.headers {
        let is_ref = v.trim().starts_with("${");
        let value = secrets.resolve(v, &format!("header `{name}`"))?;
        let mut value = HeaderValue::from_str(value.expose())
            .map_err(|_| format!("header `{name}` has an invalid value"))?;
        value.set_sensitive(is_ref);
        headers.insert(name.clone(), value);
    }
    headers
        .entry(http::header::ACCEPT)
        .or_insert(HeaderValue::from_static("application/json"));
    Ok(Creds {
        auth,
        headers,
        context,
    })
}

/// The caller's variables and the provider's declared secrets.
fn secrets_context(
    plan: &ProviderPlan,
    options: &HttpOptions,
    secrets: &SecretSource<'_>,
) -> Result<Map<String, Value>, String> {
    let mut context = options.vars.clone();
    if !plan.secrets.is_empty() {
        let mut values = Map::new();
        for (name, reference) in &plan.secrets {
            let v = secrets.resolve(reference, &format!("secret `{name}`"))?;
            values.insert(name.clone(), Value::String(v.expose().to_string()));
        }
        context.insert("secrets".into(), Value::Object(values));
    }
    Ok(context)
}

/// `base_url` may be a secret reference (`${env:CRM_URL}`) or a template over the variables.
fn resolve_base(
    plan: &ProviderPlan,
    secrets: &SecretSource<'_>,
    vars: &Map<String, Value>,
) -> Result<String, String> {
    match &plan.base_url {
        BaseUrl::Literal(u) => Ok(u.clone()),
        BaseUrl::Secret(r) => secrets
            .resolve(r, "base_url")
            .map(|s| s.expose().trim().to_string()),
        BaseUrl::Template(t) => plan
            .templates
            .render_text(t, &Context::new(vars))
            .map(|u| u.trim().to_string())
            .map_err(|e| e.message),
    }
}

/// A Basic `user:pass` pair is masked as a whole too (its base64 is the header's value).
/// OAuth clients URL-encode both halves before (RFC 6749 section 2.3.1).
fn basic_pair(username: &Secret, password: &Secret) {
    let (u, p) = (username.expose(), password.expose());
    crate::secrets::register(&format!("{u}:{p}"));
    let enc = |t: &str| url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>();
    crate::secrets::register(&format!("{}:{}", enc(u), enc(p)));
}

/// A tenant's OAuth connection: its access token, refreshed with its refresh token at the
/// connect section's token URL. Without a refresh token the access token is all there is.
fn session_auth(
    session: &crate::connect::oauth::OAuthSession,
    client: &reqwest::Client,
    timeout: Duration,
) -> Auth {
    let Some(refresh_token) = session.tokens.refresh_token.clone() else {
        return Auth::Bearer(session.tokens.access_token.clone());
    };
    let app = &session.app;
    basic_pair(&app.client_id, &app.client_secret);
    let kind = TokenKind::OAuthRefresh {
        token_url: app.token_url.clone(),
        client_id: app.client_id.clone(),
        client_secret: app.client_secret.clone(),
        refresh_token,
        scopes: Vec::new(),
        base_url_from: app.base_url_from.clone(),
    };
    Auth::Token(Box::new(TokenSource::from_session(
        kind,
        client.clone(),
        timeout,
        session,
    )))
}

fn build_auth(
    auth: &AuthPlan,
    secrets: &SecretSource<'_>,
    client: &reqwest::Client,
    timeout: Duration,
    rebase: &dyn Fn(&str) -> String,
) -> Result<Auth, String> {
    let s = |field: &str, what: &str| secrets.resolve(field, &format!("auth.{what}"));
    let url = |field: &str, what: &str| -> Result<String, String> {
        let u = rebase(s(field, what)?.expose());
        url::Url::parse(&u).map_err(|e| format!("auth.{what} `{u}`: {e}"))?;
        Ok(u)
    };
    let token = |kind| Auth::Token(Box::new(TokenSource::new(kind, client.clone(), timeout)));
    Ok(match auth {
        AuthPlan::None => Auth::None,
        AuthPlan::ApiKey {
            location,
            name,
            value,
        } => {
            let value = s(value, "value")?;
            match location {
                ApiKeyLocation::Header => Auth::Header {
                    name: http::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| format!("auth.name `{name}` is not a valid header name"))?,
                    value,
                },
                ApiKeyLocation::Query => Auth::Query {
                    name: name.clone(),
                    value,
                },
            }
        }
        AuthPlan::Bearer { token } => Auth::Bearer(s(token, "token")?),
        AuthPlan::Basic { username, password } => {
            let (username, password) = (s(username, "username")?, s(password, "password")?);
            basic_pair(&username, &password);
            Auth::Basic { username, password }
        }
        AuthPlan::OAuth2Refresh {
            token_url,
            client_id,
            client_secret,
            refresh_token,
            scopes,
            base_url_from,
        } => token(TokenKind::OAuthRefresh {
            token_url: url(token_url, "token_url")?,
            client_id: s(client_id, "client_id")?,
            client_secret: {
                let secret = s(client_secret, "client_secret")?;
                basic_pair(&s(client_id, "client_id")?, &secret);
                secret
            },
            refresh_token: s(refresh_token, "refresh_token")?,
            scopes: scopes.clone(),
            base_url_from: base_url_from.clone(),
        }),
        AuthPlan::OAuth2ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scopes,
            base_url_from,
        } => token(TokenKind::OAuthClientCredentials {
            token_url: url(token_url, "token_url")?,
            client_id: s(client_id, "client_id")?,
            client_secret: {
                let secret = s(client_secret, "client_secret")?;
                basic_pair(&s(client_id, "client_id")?, &secret);
                secret
            },
            scopes: scopes.clone(),
            base_url_from: base_url_from.clone(),
        }),
        AuthPlan::TokenExchange {
            token_url,
            username,
            password,
            token: token_path,
            expires,
            keep_alive_url,
        } => token(TokenKind::Exchange {
            token_url: url(token_url, "token_url")?,
            username: s(username, "username")?,
            password: {
                let password = s(password, "password")?;
                basic_pair(&s(username, "username")?, &password);
                password
            },
            token: token_path.clone(),
            expires: expires.clone(),
            keep_alive_url: keep_alive_url
                .as_ref()
                .map(|k| url(k, "keep_alive_url"))
                .transpose()?,
        }),
    })
}

/// The id in a create/update response: the operation's `id` query, else `id`.
fn response_id(op: &OperationPlan, body: &Value) -> Option<String> {
    match &op.id {
        Some(q) => q.first_ref(body).and_then(id_text),
        None => body.get("id").and_then(id_text),
    }
}

/// The flat field map of a result item, by the object's `response.fields` path (borrowed
/// unless `response.omit` takes fields out).
pub(crate) fn item_fields<'v>(response: &ResponsePlan, item: &'v Value) -> Cow<'v, Value> {
    let fields = match &response.fields {
        Some(q) => q.first_ref(item).unwrap_or(&Value::Null),
        None => item,
    };
    match fields {
        Value::Object(m) if response.omit.iter().any(|k| m.contains_key(k)) => {
            let mut m = m.clone();
            for k in &response.omit {
                m.remove(k);
            }
            Cow::Owned(Value::Object(m))
        }
        _ => Cow::Borrowed(fields),
    }
}

/// A search result item as a [`Found`], read by the object's `response` paths.
fn found(response: &ResponsePlan, op: &OperationPlan, item: Value) -> Result<Found, ConnectError> {
    let id = match &response.id {
        Some(q) => q.first_ref(&item).and_then(id_text),
        None => response_id(op, &item),
    }
    .ok_or_else(|| {
        ConnectError::new(ErrorKind::Fatal, format!("{}: a result has no id", op.what))
    })?;
    let updated_at = response
        .updated_at
        .as_ref()
        .and_then(|q| q.first(&item))
        .and_then(|v| v.as_str().map(str::to_string));
    Ok(Found {
        id,
        updated_at,
        fields: item_fields(response, &item).into_owned(),
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

    fn search_where<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        criteria: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<Vec<Found>, ConnectError>> {
        Box::pin(self.search_where_impl(object, criteria, call.deadline))
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

    fn search_many<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        field: &'a str,
        values: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<(usize, Found)>, ConnectError>> {
        Box::pin(async move {
            if self.capabilities_of(object).batch_search.is_none() {
                // No batch search: one search per value.
                let mut out = Vec::new();
                for (i, v) in values.iter().enumerate() {
                    for f in self.search_impl(object, field, v, call.deadline).await? {
                        out.push((i, f));
                    }
                }
                return Ok(out);
            }
            self.search_many_impl(object, field, values, call.deadline)
                .await
        })
    }

    fn create_batch<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        payloads: &'a [&'a Value],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>> {
        Box::pin(self.create_batch_impl(object, payloads, call.deadline))
    }

    fn update_batch<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        items: &'a [UpdateItem<'a>],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>> {
        Box::pin(self.update_batch_impl(object, items, call.deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SF: &str = "https://login.salesforce.com/services/data/v58.0";

    #[test]
    fn a_host_only_base_url_keeps_the_providers_path() {
        assert_eq!(effective_base(SF, None), SF);
        assert_eq!(
            effective_base(SF, Some("http://127.0.0.1:8080")),
            "http://127.0.0.1:8080/services/data/v58.0"
        );
        assert_eq!(
            effective_base(SF, Some("http://127.0.0.1:8080/")),
            "http://127.0.0.1:8080/services/data/v58.0"
        );
        // A base URL with a path replaces the provider's.
        assert_eq!(
            effective_base(
                SF,
                Some("http://127.0.0.1:8080/salesforce/services/data/v58.0/")
            ),
            "http://127.0.0.1:8080/salesforce/services/data/v58.0"
        );
        assert_eq!(
            effective_base("https://api.hubapi.com", Some("http://h:1")),
            "http://h:1"
        );
    }

    #[test]
    fn urls_on_the_declared_origin_follow_the_chosen_base() {
        let token = "https://login.salesforce.com/services/oauth2/token";
        // Host only: the token URL moves to that host.
        let base = effective_base(SF, Some("http://h:1"));
        assert_eq!(
            rebase(token, &base, SF, true),
            "http://h:1/services/oauth2/token"
        );
        // A prefix before the declared path (a sandbox) is kept.
        let base = effective_base(SF, Some("http://h:1/sf/services/data/v58.0"));
        assert_eq!(
            rebase(token, &base, SF, true),
            "http://h:1/sf/services/oauth2/token"
        );
        // Other origins, and no chosen base, are left alone.
        assert_eq!(
            rebase("https://other.example/t", &base, SF, true),
            "https://other.example/t"
        );
        assert_eq!(rebase(token, SF, SF, false), token);
        assert_eq!(
            rebase("/oauth/token", "http://h:1/api", "http://x/api", true),
            "http://h:1/api/oauth/token"
        );
    }
}
