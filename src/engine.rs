//! The embedding API: build an [`Engine`] from rule files or strings, then evaluate records.
//!
//! ```
//! use rulebridge::Engine;
//! use serde_json::json;
//!
//! let engine = Engine::builder()
//!     .rules_str("rules.yaml", r#"
//! kind: provider
//! name: crm
//! base_url: https://crm.example.com
//! objects:
//!   contact:
//!     operations:
//!       create: { method: POST, path: /contacts }
//! ---
//! kind: flow
//! name: signup
//! source: { require: [email] }
//! target: { provider: crm, object: contact }
//! mapping:
//!   email: lower(trim(email))
//!   tier: if seats > 10 then "team" else "solo"
//! duplicates: { match: [email] }
//! "#)
//!     .build()?;
//!
//! let outcome = engine.runner("signup")?.evaluate(0, &json!({"email": " Ada@Example.com ", "seats": 12}));
//! assert_eq!(outcome.payload, Some(json!({"email": "ada@example.com", "tier": "team"})));
//! # Ok::<(), rulebridge::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::compile;
use crate::connect::Connector;
use crate::diagnostic::{self, Diagnostic};
use crate::exec::send::{ConnectorSink, SendOptions};
use crate::exec::{self, ExecContext, Outcome, Pipeline, RunOptions, Summary};
use crate::functions::{Clock, Function, Registry, SystemClock};
use crate::plan::{FlowPlan, Plan};
use crate::secrets::{CredentialSource, Resolver, Secret, SecretRef};
use crate::syntax;

/// Errors of the embedding API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Load(#[from] syntax::LoadError),
    /// The rule set has errors; `rendered` is the human-readable report.
    #[error("the rule set has {} error(s):\n{rendered}", diagnostics.iter().filter(|d| d.is_error()).count())]
    Invalid {
        diagnostics: Vec<Diagnostic>,
        rendered: String,
    },
    #[error("unknown flow `{name}`{}", suggestion.as_ref().map(|s| format!(" ({s})")).unwrap_or_default())]
    UnknownFlow {
        name: String,
        suggestion: Option<String>,
    },
    #[error("flow `{flow}` needs secret `{name}`: {source}")]
    Secret {
        flow: String,
        name: String,
        #[source]
        source: crate::secrets::SecretError,
    },
    #[error("flow `{flow}`: secret `{name}` has an invalid reference: {message}")]
    SecretRef {
        flow: String,
        name: String,
        message: String,
    },
    #[error("no connector for provider `{provider}`: {reason}")]
    Connector { provider: String, reason: String },
}

/// Builds an [`Engine`].
pub struct EngineBuilder {
    paths: Vec<PathBuf>,
    strings: Vec<(String, String)>,
    registry: Registry,
    clock: Arc<dyn Clock>,
    secrets: Vec<(String, Secret)>,
    credentials: Vec<(String, Secret)>,
    connectors: BTreeMap<String, Arc<dyn Connector>>,
    base_urls: BTreeMap<String, String>,
    use_field_cache: bool,
    resolver: Option<Resolver>,
    connect_urls: BTreeMap<String, (String, String)>,
    oauth_tokens: BTreeMap<String, OAuthTokens>,
}

/// A tenant's stored OAuth tokens for one provider, and where refreshed ones go.
type OAuthTokens = (
    crate::connect::oauth::TokenSet,
    Option<Arc<dyn crate::connect::oauth::TokenSink>>,
);

impl EngineBuilder {
    /// Sends a provider's requests with a tenant's OAuth connection (made through the kit's
    /// `connect:`) instead of the kit's `auth`: `tokens` as stored, refreshed through the
    /// connect section's token URL, and every refresh handed to `sink` to be stored.
    pub fn oauth_tokens(
        mut self,
        provider: impl Into<String>,
        tokens: crate::connect::oauth::TokenSet,
        sink: Option<Arc<dyn crate::connect::oauth::TokenSink>>,
    ) -> Self {
        self.oauth_tokens.insert(provider.into(), (tokens, sink));
        self
    }

    /// Replaces the authorize and token URLs of a provider's `connect:` section (a sandbox
    /// standing in for the vendor).
    pub fn connect_urls(
        mut self,
        provider: impl Into<String>,
        authorize_url: impl Into<String>,
        token_url: impl Into<String>,
    ) -> Self {
        self.connect_urls
            .insert(provider.into(), (authorize_url.into(), token_url.into()));
        self
    }

    /// Sends a provider's requests to `url` instead of its `base_url` (a sandbox, a test
    /// server, a tenant's instance). A URL with only a scheme and host keeps the provider's
    /// base path.
    pub fn base_url(mut self, provider: impl Into<String>, url: impl Into<String>) -> Self {
        self.base_urls.insert(provider.into(), url.into());
        self
    }

    /// Whether mappings are checked against the fields discovered earlier and cached next to
    /// the rules (`rulebridge fields`; on by default). Off for talking to a system the cache
    /// does not describe (a sandbox) or for refreshing the cache itself.
    pub fn field_cache(mut self, on: bool) -> Self {
        self.use_field_cache = on;
        self
    }

    /// Adds a rules directory or file (may be called several times; all form one rule set).
    pub fn rules_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.paths.push(path.into());
        self
    }

    /// Adds an in-memory rule file.
    pub fn rules_str(mut self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.strings.push((name.into(), text.into()));
        self
    }

    /// Registers a custom function, type-checked like the builtins.
    pub fn function(mut self, f: Arc<dyn Function>) -> Self {
        self.registry.register(f);
        self
    }

    /// Sets where `now()` comes from (a fixed clock makes results reproducible).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Supplies the value of a credential that rule files reference as `${env:NAME}` (used
    /// before the process environment; e.g. sandbox credentials, a tenant's keys).
    pub fn credential(mut self, env_name: impl Into<String>, value: impl Into<String>) -> Self {
        self.credentials
            .push((env_name.into(), Secret::new(value.into())));
        self
    }

    /// Registers a custom connector for a provider: flows targeting `provider` write through
    /// it instead of the HTTP connector built from the provider file.
    pub fn connector(mut self, provider: impl Into<String>, connector: Arc<dyn Connector>) -> Self {
        self.connectors.insert(provider.into(), connector);
        self
    }

    /// Supplies a secret value directly, instead of the flow's `${env:..}`/`${file:..}`
    /// reference.
    pub fn secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.secrets.push((name.into(), Secret::new(value.into())));
        self
    }

    /// Where `${secret:NAME}` references are read (the credential store). Without one they
    /// fail with [`SecretError::NoStore`](crate::secrets::SecretError::NoStore).
    pub fn credential_source(mut self, source: Arc<dyn CredentialSource>) -> Self {
        self.resolver = Some(
            self.resolver
                .take()
                .unwrap_or_default()
                .with_credential_source(source),
        );
        self
    }

    /// Reads `${vault:..}` with this configuration instead of Vault's environment variables.
    pub fn vault(mut self, config: crate::secrets::VaultConfig) -> Self {
        self.resolver = Some(self.resolver.take().unwrap_or_default().with_vault(config));
        self
    }

    /// How long Vault and store values are used before they are read again (default
    /// [`DEFAULT_TTL`](crate::secrets::DEFAULT_TTL)).
    pub fn secret_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.resolver = Some(self.resolver.take().unwrap_or_default().with_ttl(ttl));
        self
    }

    /// Loads, checks and compiles the rules. Any error diagnostic fails the build.
    pub fn build(self) -> Result<Engine, Error> {
        let loaded = if self.paths.is_empty() {
            syntax::load_sources(&self.strings)
        } else {
            syntax::load_paths_with(&self.paths, &self.strings)?
        };
        let cache = self
            .paths
            .first()
            .map(|p| {
                if self.use_field_cache {
                    crate::connect::fields::FieldCache::for_rules(p)
                } else {
                    crate::connect::fields::FieldCache::unread(p)
                }
            })
            .unwrap_or_default();
        let compiled = compile::compile_loaded_with_fields(&loaded, &self.registry, &cache);
        let mut diagnostics = loaded.diagnostics;
        diagnostics.extend(compiled.diagnostics);
        diagnostic::sort(&mut diagnostics);
        let plan = match compiled.plan {
            Some(plan) if !diagnostics.iter().any(|d| d.is_error()) => plan,
            _ => {
                let rendered = diagnostic::render::render(
                    &diagnostics,
                    &loaded.rules.sources,
                    diagnostic::render::Format::Concise,
                    false,
                );
                return Err(Error::Invalid {
                    diagnostics,
                    rendered,
                });
            }
        };
        let base = self
            .paths
            .first()
            .map(|p| {
                if p.is_dir() {
                    p.clone()
                } else {
                    p.parent().map(Path::to_path_buf).unwrap_or_default()
                }
            })
            .unwrap_or_default();
        Ok(Engine {
            plan,
            warnings: diagnostics,
            registry: self.registry,
            clock: self.clock,
            secrets: self.secrets,
            credentials: self.credentials,
            connectors: self.connectors,
            base_urls: self.base_urls,
            base,
            resolver: Arc::new(self.resolver.unwrap_or_default()),
            connect_urls: self.connect_urls,
            oauth_tokens: self.oauth_tokens,
            built: std::sync::Mutex::new(BTreeMap::new()),
        })
    }
}

/// A compiled rule set ready to evaluate records. Cheap to share across threads.
pub struct Engine {
    plan: Plan,
    warnings: Vec<Diagnostic>,
    registry: Registry,
    clock: Arc<dyn Clock>,
    secrets: Vec<(String, Secret)>,
    credentials: Vec<(String, Secret)>,
    connectors: BTreeMap<String, Arc<dyn Connector>>,
    base_urls: BTreeMap<String, String>,
    base: PathBuf,
    /// Reads and caches Vault and store values for the flows and connectors.
    resolver: Arc<Resolver>,
    connect_urls: BTreeMap<String, (String, String)>,
    oauth_tokens: BTreeMap<String, OAuthTokens>,
    /// The connectors built from provider files, once per engine: every run of a provider
    /// shares one connection pool, one token and one pacer (its rate limit is the credential
    /// set's, not a run's).
    built: std::sync::Mutex<BTreeMap<String, Arc<dyn Connector>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            paths: Vec::new(),
            strings: Vec::new(),
            registry: Registry::builtin(),
            clock: Arc::new(SystemClock),
            secrets: Vec::new(),
            credentials: Vec::new(),
            connectors: BTreeMap::new(),
            base_urls: BTreeMap::new(),
            use_field_cache: true,
            resolver: None,
            connect_urls: BTreeMap::new(),
            oauth_tokens: BTreeMap::new(),
        }
    }

    fn credential(&self, env_name: &str) -> Option<&Secret> {
        self.credentials
            .iter()
            .find(|(n, _)| n == env_name)
            .map(|(_, v)| v)
    }

    /// The connector for a provider: a registered custom one, or the HTTP connector built
    /// from the provider file (see [`Engine::http_connector`]), with the tenant's OAuth
    /// connection when one was given ([`EngineBuilder::oauth_tokens`]). One built from the
    /// provider file is built on first use and shared by every later call, so runs of the
    /// same engine share its token, connections and rate limit.
    pub fn connector(&self, provider: &str) -> Result<Arc<dyn Connector>, Error> {
        if let Some(c) = self.connectors.get(provider) {
            return Ok(c.clone());
        }
        if let Some((tokens, sink)) = self.oauth_tokens.get(provider) {
            let session = crate::connect::oauth::OAuthSession {
                app: Arc::new(self.oauth_app(provider)?),
                tokens: tokens.clone(),
                sink: sink.clone(),
            };
            return self.oauth_connector(provider, session);
        }
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = built.get(provider) {
            return Ok(c.clone());
        }
        let connector: Arc<dyn Connector> = if self
            .plan
            .provider(provider)
            .is_some_and(|p| p.sql().is_some())
        {
            Arc::new(self.sql_connector(provider)?)
        } else {
            Arc::new(self.http_connector(provider, None)?)
        };
        built.insert(provider.to_string(), connector.clone());
        Ok(connector)
    }

    /// The connector of a `type: sql` provider: its database (relative files are relative to
    /// the rules directory; credentials given to the builder stand in for `${env:..}`). The
    /// environment variable `RULEBRIDGE_DATABASE_<PROVIDER>`, if set, replaces `database`.
    pub fn sql_connector(
        &self,
        provider: &str,
    ) -> Result<crate::connect::sql::SqlConnector, Error> {
        let doc = self
            .plan
            .provider(provider)
            .ok_or_else(|| Error::Connector {
                provider: provider.to_string(),
                reason: "no provider file defines it".into(),
            })?;
        let env_var = format!(
            "RULEBRIDGE_DATABASE_{}",
            provider.to_uppercase().replace('-', "_")
        );
        let options = crate::connect::sql::SqlOptions {
            base_dir: self.base.clone(),
            secrets: self.credentials.clone(),
            database: std::env::var(env_var).ok(),
        };
        crate::connect::sql::SqlConnector::new(doc, options).map_err(|e| Error::Connector {
            provider: provider.to_string(),
            reason: e.message,
        })
    }

    /// A pipeline that sends a flow's records to its target through the provider's
    /// connector. Must run inside a Tokio runtime.
    pub fn sender(
        &self,
        flow: &str,
        run: RunOptions,
        send: SendOptions,
    ) -> Result<Pipeline, Error> {
        let runner = self.runner(flow)?;
        let connector = self.connector(&runner.flow.provider)?;
        Ok(runner.send_through(connector, run, send))
    }

    /// A pipeline that sends a flow's records and keeps state in `store`: a record unchanged
    /// since its last write makes no request, and every outcome is recorded (see
    /// [`exec::ledger`]). Returns the recorder, whose [`output`](exec::ledger::Recorder::output)
    /// wraps the outcome writer. Must run inside a Tokio runtime.
    pub fn recorded_sender(
        &self,
        flow: &str,
        run: RunOptions,
        send: SendOptions,
        store: Arc<dyn crate::state::Store>,
        state: crate::state::Run,
        full: bool,
    ) -> Result<(Pipeline, exec::ledger::Recorder), Error> {
        let runner = self.runner(flow)?;
        let connector = self.connector(&runner.flow.provider)?;
        self.recorded_sender_through(flow, connector, run, send, store, state, full)
    }

    /// [`Engine::recorded_sender`] through a connector of the caller's (a tenant's OAuth
    /// connection, see [`Engine::oauth_connector`]).
    #[allow(clippy::too_many_arguments)]
    pub fn recorded_sender_through(
        &self,
        flow: &str,
        connector: Arc<dyn Connector>,
        run: RunOptions,
        send: SendOptions,
        store: Arc<dyn crate::state::Store>,
        state: crate::state::Run,
        full: bool,
    ) -> Result<(Pipeline, exec::ledger::Recorder), Error> {
        let runner = self.runner(flow)?;
        let ids = exec::refs::IdMap {
            store: store.clone(),
            tenant: state.tenant.clone(),
            provider: runner.flow.provider.clone(),
        };
        let mut recorder = exec::ledger::Recorder::new(store, state, runner.flow.clone(), full);
        if send.on_match.is_some() {
            recorder = recorder.with_policy_override();
        }
        let sink =
            Arc::new(ConnectorSink::new(runner.flow.clone(), connector, send).with_id_map(ids));
        let options = RunOptions {
            keep_source: true,
            first_line: usize::try_from(recorder.run().checkpoint).unwrap_or(usize::MAX),
            ..run
        };
        Ok((
            runner.pipeline(Arc::new(recorder.sink(sink)), options),
            recorder,
        ))
    }

    /// The HTTP connector built from a provider file. `base_url` overrides the file's base
    /// URL; otherwise the environment variable `RULEBRIDGE_BASE_URL_<PROVIDER>` does, if set.
    pub fn http_connector(
        &self,
        provider: &str,
        base_url: Option<&str>,
    ) -> Result<crate::connect::http::HttpConnector, Error> {
        self.http_connector_with(provider, base_url, None)
    }

    /// The HTTP connector of a provider for a tenant's OAuth connection: the session's tokens
    /// replace the kit's `auth`, and refreshed tokens go to its sink.
    pub fn oauth_connector(
        &self,
        provider: &str,
        session: crate::connect::oauth::OAuthSession,
    ) -> Result<Arc<dyn Connector>, Error> {
        Ok(Arc::new(self.http_connector_with(
            provider,
            None,
            Some(session),
        )?))
    }

    /// A provider's `connect:` section with its references resolved (as `${env:..}` in a
    /// kit is: credentials given to the builder first), and the URLs given to
    /// [`EngineBuilder::connect_urls`] in place of the kit's.
    pub fn oauth_app(&self, provider: &str) -> Result<crate::connect::oauth::OAuthApp, Error> {
        let fail = |reason: String| Error::Connector {
            provider: provider.to_string(),
            reason,
        };
        let doc = self
            .plan
            .provider(provider)
            .ok_or_else(|| fail("no provider file defines it".into()))?;
        let connect = doc
            .connect()
            .ok_or_else(|| fail("its kit has no `connect:` section".into()))?;
        let resolve = |text: &str, what: &str| -> Result<Secret, String> {
            let r = SecretRef::parse(text.trim()).map_err(|e| format!("{what}: {e}"))?;
            if let SecretRef::Env(var) = &r
                && let Some(v) = self.credential(var)
            {
                return Ok(v.clone());
            }
            self.resolver
                .resolve_blocking(&r, &self.base)
                .map_err(|e| format!("{what}: `{}` is not available ({e})", text.trim()))
        };
        let urls = self
            .connect_urls
            .get(provider)
            .map(|(a, t)| (a.as_str(), t.as_str()));
        crate::connect::oauth::OAuthApp::resolve(provider, connect, &resolve, urls).map_err(fail)
    }

    fn http_connector_with(
        &self,
        provider: &str,
        base_url: Option<&str>,
        oauth: Option<crate::connect::oauth::OAuthSession>,
    ) -> Result<crate::connect::http::HttpConnector, Error> {
        let doc = self
            .plan
            .provider(provider)
            .ok_or_else(|| Error::Connector {
                provider: provider.to_string(),
                reason: "no provider file defines it".into(),
            })?;
        if doc.sql().is_some() {
            return Err(Error::Connector {
                provider: provider.to_string(),
                reason: "it is a `type: sql` provider, written through its database, not HTTP"
                    .into(),
            });
        }
        let env_var = format!(
            "RULEBRIDGE_BASE_URL_{}",
            provider.to_uppercase().replace('-', "_")
        );
        let base_url = base_url
            .map(str::to_string)
            .or_else(|| self.base_urls.get(provider).cloned())
            .or_else(|| std::env::var(env_var).ok());
        let options = crate::connect::http::HttpOptions {
            base_url,
            secrets_base_dir: self.base.clone(),
            secrets: self.credentials.clone(),
            resolver: Some(self.resolver.clone()),
            oauth,
            ..Default::default()
        };
        crate::connect::http::HttpConnector::new(doc, options).map_err(|e| Error::Connector {
            provider: provider.to_string(),
            reason: e.message,
        })
    }

    /// The connector registered for `provider`, if any.
    pub fn registered_connector(&self, provider: &str) -> Option<Arc<dyn Connector>> {
        self.connectors.get(provider).cloned()
    }

    /// Reads and caches the engine's Vault and store values.
    pub fn resolver(&self) -> &Arc<Resolver> {
        &self.resolver
    }

    /// The compiled plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Warnings found while compiling (errors fail [`EngineBuilder::build`]).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A runner for one flow (by name or file path), with its secrets resolved.
    pub fn runner(&self, flow: &str) -> Result<FlowRunner, Error> {
        let plan = self
            .plan
            .find_flow(flow)
            .ok_or_else(|| Error::UnknownFlow {
                name: flow.to_string(),
                suggestion: diagnostic::suggest(flow, self.plan.flows().map(|f| f.name.as_str())),
            })?;
        let mut cx = ExecContext::new(self.clock.clone());
        for (name, reference) in &plan.secrets {
            let value = match self.secrets.iter().find(|(n, _)| n == name) {
                Some((_, v)) => v.clone(),
                None => {
                    let r = SecretRef::parse(reference).map_err(|message| Error::SecretRef {
                        flow: plan.name.clone(),
                        name: name.clone(),
                        message,
                    })?;
                    // Credentials given to the builder stand in for the environment.
                    let given = match &r {
                        SecretRef::Env(var) => self.credential(var).cloned(),
                        _ => None,
                    };
                    match given {
                        Some(v) => v,
                        None => {
                            self.resolver
                                .resolve_blocking(&r, &self.base)
                                .map_err(|source| Error::Secret {
                                    flow: plan.name.clone(),
                                    name: name.clone(),
                                    source,
                                })?
                        }
                    }
                }
            };
            cx = cx.with_secret(name, &value);
        }
        Ok(FlowRunner {
            flow: plan.clone(),
            cx,
        })
    }
}

/// One flow with everything it needs to run.
#[derive(Debug, Clone)]
pub struct FlowRunner {
    flow: Arc<FlowPlan>,
    cx: ExecContext,
}

impl FlowRunner {
    pub fn flow(&self) -> &FlowPlan {
        &self.flow
    }

    pub fn context(&self) -> &ExecContext {
        &self.cx
    }

    /// A pipeline of this flow into any sink (an embedder's own, a dry run, a connector).
    pub fn pipeline(&self, sink: Arc<dyn exec::Sink>, options: RunOptions) -> Pipeline {
        Pipeline::new(self.flow.clone(), self.cx.clone(), sink, options)
    }

    /// A pipeline that sends this flow's records through `connector`.
    pub fn send_through(
        &self,
        connector: Arc<dyn Connector>,
        run: RunOptions,
        send: SendOptions,
    ) -> Pipeline {
        let sink = Arc::new(ConnectorSink::new(self.flow.clone(), connector, send));
        self.pipeline(sink, run)
    }

    /// A dry-run pipeline: outcomes show what would be sent.
    pub fn dry_run_pipeline(&self, options: RunOptions) -> Pipeline {
        let sink = Arc::new(exec::dry_run::DryRunSink::new(self.flow.clone()));
        self.pipeline(sink, options)
    }

    /// Dry-runs one record: the payload and policy result that would be sent.
    pub fn evaluate(&self, index: usize, record: &Value) -> Outcome {
        exec::pipeline::dry_run_outcome(&self.flow, &self.cx, index, record)
    }

    /// Dry-runs an NDJSON stream, writing one outcome line per input line to `out` (given
    /// back with the summary); for callers without a Tokio runtime of their own (it runs one
    /// on the calling thread).
    pub fn dry_run<W: std::io::Write + Send + 'static>(
        &self,
        input: impl std::io::BufRead + Send + 'static,
        out: W,
        progress: impl FnMut(usize) + Send + 'static,
    ) -> std::io::Result<(Summary, W)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let pipeline = self.dry_run_pipeline(RunOptions::default());
        let (summary, out) =
            rt.block_on(pipeline.run(input, exec::pipeline::NdjsonOutput(out), progress))?;
        Ok((summary, out.0))
    }
}
