//! Compiled providers: what `compile` makes of a `kind: provider` document, and what the HTTP
//! connector runs.
//!
//! Everything here is checked and compiled once, at lint time: templates (minijinja, one
//! environment per provider), JSONPath queries, error-rule and field-mapping expressions
//! (with the engine's function registry), header names, rate-limit header rules. What is
//! left for run time is only what depends on the environment: secret values and base URLs.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderName, Method};
use jsonpath_rust::parser::model::JpQuery;
use minijinja::{Environment, Error as JinjaError, ErrorKind as JinjaErrorKind, Output, State};
use serde_json::Value;

use crate::connect::ErrorKind;
use crate::expr::Compiled;
use crate::span::Location;
use crate::syntax::doc::{ApiKeyLocation, RateLimit, ResetUnit, RetryPolicy};

/// A compiled provider.
pub struct ProviderPlan {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    /// As written: a URL, a secret reference (`${env:CRM_URL}`) or a template over `vars`.
    pub(crate) base_url: BaseUrl,
    pub(crate) auth: AuthPlan,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) timeout: Option<Duration>,
    /// Headers of every request; values are literals or secret references.
    pub(crate) headers: Vec<(HeaderName, String)>,
    /// Declared secrets (name, reference), readable in templates as `secrets.NAME`.
    pub(crate) secrets: Vec<(String, String)>,
    /// Variables the embedding application passes (`HttpOptions::vars`).
    pub(crate) vars: Vec<String>,
    pub(crate) rate_limit_headers: Vec<RateLimitHeader>,
    pub(crate) templates: Templates,
    pub(crate) objects: BTreeMap<String, ObjectPlan>,
    pub(crate) errors: Vec<ErrorRulePlan>,
    /// `type: sql`: the database (the HTTP parts above are then empty).
    pub(crate) sql: Option<SqlPlan>,
    /// What a user enters to connect the kit (`config:`).
    pub(crate) config: Vec<ConfigField>,
    /// How a user connects an account through the vendor's consent screen (`connect:`).
    pub(crate) connect: Option<ConnectPlan>,
    pub(crate) location: Location,
}

/// A kit's `connect:` section: the vendor's OAuth 2.0 authorization-code flow. URLs and
/// credentials are as written (literals or secret references, resolved at run time by
/// [`OAuthApp::resolve`](crate::connect::oauth::OAuthApp::resolve)); a URL starting with `/`
/// is relative to `login_url`.
#[derive(Clone, Debug)]
pub struct ConnectPlan {
    pub authorize_url: String,
    pub token_url: String,
    pub login_url: Option<String>,
    pub scopes: Vec<String>,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_url: String,
    /// More query parameters of the authorize URL.
    pub params: Vec<(String, String)>,
    /// Where the token response names the instance data calls go to.
    pub(crate) base_url_from: Option<Query>,
}

/// A setting a user enters to connect a kit, declared under the provider's `config:`: a
/// form or a prompt is built from these. Stored in the credential store as
/// (tenant, provider, `name`), read as `${secret:PROVIDER.NAME}`, and standing in for the
/// environment variable `PROVIDER_NAME` the kit reads.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ConfigField {
    pub name: String,
    /// What a form shows (the name when the kit gives none).
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Entered without echo, never shown again.
    pub sensitive: bool,
    pub required: bool,
}

/// The database of a `type: sql` provider, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlPlan {
    /// A file (relative to the rules directory), a `postgres://` URL or a secret reference.
    pub database: String,
    /// Per migration: the file for SQLite and the file for PostgreSQL (relative to the rules
    /// directory; `None` when the migration has no variant for that backend).
    pub migrations: Vec<(Option<String>, Option<String>)>,
}

impl std::fmt::Debug for ProviderPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderPlan")
            .field("name", &self.name)
            .field("objects", &self.objects.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ProviderPlan {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Where the provider document starts.
    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn objects(&self) -> impl Iterator<Item = &ObjectPlan> {
        self.objects.values()
    }

    pub fn object(&self, name: &str) -> Option<&ObjectPlan> {
        self.objects.get(name)
    }

    /// The names of the variables the embedding application must pass.
    pub fn vars(&self) -> &[String] {
        &self.vars
    }

    /// The database of a `type: sql` provider (`None` for an HTTP provider).
    /// The settings a user enters to connect this provider (`config:`), in file order.
    pub fn config(&self) -> &[ConfigField] {
        &self.config
    }

    pub fn sql(&self) -> Option<&SqlPlan> {
        self.sql.as_ref()
    }

    /// The kit's OAuth connect flow (`connect:`), if it has one.
    pub fn connect(&self) -> Option<&ConnectPlan> {
        self.connect.as_ref()
    }
}

/// `base_url` as written.
#[derive(Debug)]
pub(crate) enum BaseUrl {
    Literal(String),
    /// `${env:..}` / `${file:..}`.
    Secret(String),
    /// A template over the variables (`{{ instance_url }}`).
    Template(Text),
}

/// A compiled object.
#[derive(Debug)]
pub struct ObjectPlan {
    pub(crate) name: String,
    /// The fields the rule files declare (the kit's and its extensions').
    pub(crate) fields: Vec<DeclaredField>,
    pub(crate) response: ResponsePlan,
    pub(crate) operations: BTreeMap<String, OperationPlan>,
    pub(crate) errors: Vec<ErrorRulePlan>,
}

impl ObjectPlan {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn operations(&self) -> impl Iterator<Item = &OperationPlan> {
        self.operations.values()
    }

    pub fn operation(&self, name: &str) -> Option<&OperationPlan> {
        self.operations.get(name)
    }

    /// The fields the rule files declare for this object (a kit's, then its extensions').
    pub fn fields(&self) -> &[DeclaredField] {
        &self.fields
    }
}

/// A field a provider object declares in the rule files.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeclaredField {
    pub name: String,
    pub label: Option<String>,
    pub description: Option<String>,
    /// The type as written, without a trailing `?` (`string`, `datetime`, `enum`, ...).
    #[serde(rename = "type")]
    pub ty: String,
    /// The allowed values of an `enum`.
    pub options: Vec<String>,
    pub required: bool,
    /// Where it is declared.
    pub location: crate::span::Location,
}

/// Where a found record's parts are in one search result item.
#[derive(Debug, Default)]
pub(crate) struct ResponsePlan {
    /// The id; without it, the item's `id`.
    pub id: Option<Query>,
    pub updated_at: Option<Query>,
    /// The flat field map; without it, the item itself.
    pub fields: Option<Query>,
    /// Keys of the field map that are not fields.
    pub omit: Vec<String>,
}

/// A compiled operation.
#[derive(Debug)]
pub struct OperationPlan {
    pub(crate) name: String,
    /// `contact.create`, for logs and errors.
    pub(crate) what: String,
    pub(crate) method: Method,
    pub(crate) path: Text,
    pub(crate) path_source: String,
    pub(crate) query: Vec<(String, Text)>,
    pub(crate) headers: Vec<(HeaderName, Text)>,
    pub(crate) body: Option<Body>,
    pub(crate) item: Option<Body>,
    pub(crate) id: Option<Query>,
    pub(crate) results: Option<Query>,
    pub(crate) item_errors: Option<Query>,
    pub(crate) created: Option<Query>,
    pub(crate) max_batch: Option<usize>,
    /// Batch operations: the items of one request share this key's value.
    pub(crate) group_by: Option<GroupBy>,
    pub(crate) rate_limit: Option<RateLimit>,
    /// `fields` operations: how a listed item becomes a field.
    pub(crate) fields: Option<FieldMapping>,
    /// Creates: the kit sends an idempotency key, so a lost create may be sent again.
    pub(crate) idempotent: bool,
    /// `batch_search`: where a result item holds the value it matched.
    pub(crate) matched: Option<Query>,
    /// `batch_search`: where the response says how many records matched in all.
    pub(crate) total: Option<Query>,
    /// `batch_search`: the longest URL the API accepts.
    pub(crate) max_url_length: Option<usize>,
    pub(crate) location: Location,
}

impl OperationPlan {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn method(&self) -> &str {
        self.method.as_str()
    }

    /// The path template as written.
    pub fn path(&self) -> &str {
        &self.path_source
    }

    pub fn max_batch(&self) -> Option<usize> {
        self.max_batch
    }

    /// Whether the request may be sent again after its result was lost: everything but a
    /// create, unless the kit declares the create idempotent.
    pub fn repeatable(&self) -> bool {
        self.idempotent || !matches!(self.name.as_str(), "create" | "batch_create")
    }

    /// The `batch.group_by` expression as written.
    pub fn group_by(&self) -> Option<&str> {
        self.group_by.as_ref().map(|g| g.source.as_str())
    }

    pub fn location(&self) -> &Location {
        &self.location
    }
}

/// `batch: { group_by: ... }`: an expression over one item's payload (its fields as bare
/// names); one request holds the items of one value, which its templates read as `group`.
#[derive(Debug)]
pub(crate) struct GroupBy {
    pub compiled: Compiled,
    pub source: String,
}

/// One compiled `errors` rule.
#[derive(Debug)]
pub(crate) struct ErrorRulePlan {
    pub status: Vec<u16>,
    pub contains: Option<String>,
    pub kind: ErrorKind,
    /// Expressions over `{status, body, message}`.
    pub existing_id: Option<Compiled>,
    pub message: Option<Compiled>,
    pub field: Option<Compiled>,
    pub correlation_id: Option<Compiled>,
}

impl ErrorRulePlan {
    pub fn matches(&self, status: u16, text: &str) -> bool {
        (self.status.is_empty() || self.status.contains(&status))
            && self
                .contains
                .as_ref()
                .is_none_or(|c| text.contains(c.as_str()))
    }
}

/// Authentication, with credentials still as references (`${env:..}`) or literals.
#[derive(Debug)]
pub(crate) enum AuthPlan {
    None,
    ApiKey {
        location: ApiKeyLocation,
        name: String,
        value: String,
    },
    Bearer {
        token: String,
    },
    Basic {
        username: String,
        password: String,
    },
    OAuth2Refresh {
        token_url: String,
        client_id: String,
        client_secret: String,
        refresh_token: String,
        scopes: Vec<String>,
        base_url_from: Option<Query>,
    },
    OAuth2ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: String,
        scopes: Vec<String>,
        base_url_from: Option<Query>,
    },
    TokenExchange {
        token_url: String,
        username: String,
        password: String,
        token: Query,
        expires: Option<Query>,
        keep_alive_url: Option<String>,
    },
}

impl AuthPlan {
    /// The auth type as written in provider files.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthPlan::None => "none",
            AuthPlan::ApiKey { .. } => "api_key",
            AuthPlan::Bearer { .. } => "bearer",
            AuthPlan::Basic { .. } => "basic",
            AuthPlan::OAuth2Refresh { .. } => "oauth2_refresh",
            AuthPlan::OAuth2ClientCredentials { .. } => "oauth2_client_credentials",
            AuthPlan::TokenExchange { .. } => "token_exchange",
        }
    }
}

/// One `rate_limit_headers` entry.
#[derive(Debug)]
pub(crate) enum RateLimitHeader {
    /// `remaining` at 0 pauses every request until the window resets.
    Window {
        remaining: HeaderName,
        reset: Option<HeaderName>,
        unit: ResetUnit,
        /// The pause when `reset` is absent.
        wait: Duration,
    },
    /// An allowance whose use is logged when 90% spent.
    Usage {
        header: HeaderName,
        pattern: regex::Regex,
    },
}

/// The pause of a window entry without a `reset` header.
pub(crate) const DEFAULT_WINDOW_WAIT: Duration = Duration::from_secs(1);

/// How one item of a `fields` listing becomes a [`FieldInfo`](crate::connect::fields::FieldInfo):
/// expressions over the item; without one, the item's own `name`, `label`, `type`, `options`,
/// `required`, `read_only`.
#[derive(Debug, Default)]
pub(crate) struct FieldMapping {
    pub name: Option<Compiled>,
    pub label: Option<Compiled>,
    pub ty: Option<Compiled>,
    pub options: Option<Compiled>,
    pub required: Option<Compiled>,
    pub read_only: Option<Compiled>,
    /// Vendor type name → rulebridge type name (checked at compile time).
    pub types: BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------------------------
// Templates

/// Where a template's output goes, which decides how substituted values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A URL path: each substituted value is percent-encoded as one segment.
    Path,
    /// A query value, header value or body string: written as is.
    Plain,
}

/// A compiled text template.
#[derive(Clone, Debug)]
pub(crate) enum Text {
    Literal(String),
    Template {
        name: String,
        target: Target,
        /// Whether it reads `secrets` (a rendered header is then marked sensitive).
        secret: bool,
    },
}

/// A compiled body (or batch item) template.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    /// Constant JSON.
    Literal(Value),
    /// `"{{ payload }}"`, `"{{ first.tenant }}"`: the value at that place in the context.
    Lookup(Vec<String>),
    /// `"{{ expr }}"` with any other expression: rendered to JSON by minijinja.
    Expr(String),
    /// A string with text around or between its templates.
    Text(String),
    Array(Vec<Body>),
    Object(Vec<(String, Body)>),
}

/// The minijinja environments holding every template of one provider.
pub(crate) struct Templates {
    pub plain: Environment<'static>,
    pub path: Environment<'static>,
    count: usize,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

/// The filter that writes a value as JSON (bodies of `"{{ expr }}"`).
pub(crate) const JSON_FILTER: &str = "__rulebridge_json";

/// A template that does not compile: minijinja's message and the byte range in the source.
#[derive(Debug)]
pub(crate) struct TemplateError {
    pub message: String,
    pub detail: Option<String>,
    pub range: Option<std::ops::Range<usize>>,
}

impl Default for Templates {
    fn default() -> Self {
        Templates {
            plain: environment(Target::Plain),
            path: environment(Target::Path),
            count: 0,
        }
    }
}

impl Templates {
    /// Names minijinja itself defines (`range`, `dict`, `namespace`, ...).
    pub fn globals(&self) -> Vec<String> {
        self.plain.globals().map(|(n, _)| n.to_string()).collect()
    }

    /// Adds a template; returns its name.
    pub fn add(&mut self, source: &str, target: Target) -> Result<String, TemplateError> {
        self.count += 1;
        let name = format!("t{}", self.count);
        let env = self.env_mut(target);
        env.add_template_owned(name.clone(), source.to_string())
            .map_err(|e| TemplateError {
                message: e.kind().to_string(),
                detail: e.detail().map(str::to_string),
                range: e.range(),
            })?;
        Ok(name)
    }

    fn env_mut(&mut self, target: Target) -> &mut Environment<'static> {
        match target {
            Target::Path => &mut self.path,
            Target::Plain => &mut self.plain,
        }
    }

    pub fn env(&self, target: Target) -> &Environment<'static> {
        match target {
            Target::Path => &self.path,
            Target::Plain => &self.plain,
        }
    }

    /// The top-level variables a template reads, sorted.
    pub fn variables(&self, name: &str, target: Target) -> Vec<String> {
        let mut vars: Vec<String> = self
            .env(target)
            .get_template(name)
            .map(|t| t.undeclared_variables(false).into_iter().collect())
            .unwrap_or_default();
        vars.sort();
        vars
    }

    /// `secrets.NAME` reads of a template (nested lookups of `secrets`).
    pub fn secret_reads(&self, name: &str, target: Target) -> Vec<String> {
        let mut out: Vec<String> = self
            .env(target)
            .get_template(name)
            .map(|t| t.undeclared_variables(true))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| {
                v.strip_prefix("secrets.")
                    .map(|s| s.split('.').next().unwrap_or(s).to_string())
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Filters and tests a template uses that the environment does not define.
    pub fn unknown_filters(&self, name: &str, target: Target) -> Vec<(&'static str, String)> {
        use minijinja::machinery::Instruction;
        let env = self.env(target);
        let Ok(t) = env.get_template(name) else {
            return Vec::new();
        };
        let compiled = minijinja::machinery::get_compiled_template(&t);
        let mut out = Vec::new();
        let all = std::iter::once(&compiled.instructions).chain(compiled.blocks.values());
        for instructions in all {
            let mut idx = 0u32;
            while let Some(i) = instructions.get(idx) {
                let used = match i {
                    Instruction::ApplyFilter(n, ..) => Some(("filter", *n)),
                    Instruction::PerformTest(n, ..) => Some(("test", *n)),
                    _ => None,
                };
                if let Some((what, n)) = used
                    && !defined(env, what, n)
                    && !out.iter().any(|(w, o)| *w == what && o == n)
                {
                    out.push((what, n.to_string()));
                }
                idx += 1;
            }
        }
        out
    }
}

/// Whether `env` defines the filter or test `name` (probed: minijinja does not list them).
fn defined(env: &Environment<'static>, what: &str, name: &str) -> bool {
    let probe = match what {
        "filter" => format!("{{{{ none | {name} }}}}"),
        _ => format!("{{{{ none is {name} }}}}"),
    };
    match env.render_str(&probe, ()) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            JinjaErrorKind::UnknownFilter | JinjaErrorKind::UnknownTest
        ),
    }
}

/// A provider's template environment: no HTML escaping, null renders as nothing, the JSON
/// filter for single-expression bodies and `soql` for SOQL string literals.
pub(crate) fn environment(target: Target) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    match target {
        Target::Plain => env.set_formatter(|out, state, value| {
            if value.is_none() || value.is_undefined() {
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        }),
        Target::Path => env.set_formatter(path_formatter),
    }
    env.add_filter(JSON_FILTER, |v: minijinja::Value| {
        serde_json::to_string(&v)
            .map_err(|e| JinjaError::new(JinjaErrorKind::InvalidOperation, e.to_string()))
    });
    env.add_filter("soql", |v: minijinja::Value| soql_escape(&text_of(&v)));
    env
}

fn text_of(v: &minijinja::Value) -> String {
    match v.as_str() {
        Some(s) => s.to_string(),
        None if v.is_none() || v.is_undefined() => String::new(),
        None => v.to_string(),
    }
}

/// Escapes text for a SOQL string literal (`'...'`): `WHERE Email = '{{ key | soql }}'`.
pub(crate) fn soql_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
    out
}

fn path_formatter(
    out: &mut Output<'_>,
    _state: &mut State<'_, '_>,
    value: &minijinja::Value,
) -> Result<(), JinjaError> {
    if value.is_none() || value.is_undefined() {
        return Ok(());
    }
    let text = match value.as_str() {
        Some(s) => s.to_string(),
        None => value.to_string(),
    };
    out.write_str(&encode_segment(&text))
        .map_err(|e| JinjaError::new(JinjaErrorKind::WriteFailure, e.to_string()))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn encode_segment(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

pub(crate) fn has_template_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The expression of a string that is exactly one `{{ expression }}`.
pub(crate) fn single_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.trim_start_matches('-').trim_end_matches('-').trim();
    if inner.is_empty() || has_template_syntax(inner) || inner.contains("}}") {
        return None;
    }
    Some(inner)
}

/// `payload`, `first.tenant`: a dotted path of identifiers.
pub(crate) fn lookup_path(expr: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = expr.split('.').map(|p| p.trim().to_string()).collect();
    let ident = |p: &String| {
        let mut chars = p.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    (parts.iter().all(ident)
        && !parts
            .iter()
            .any(|p| p == "none" || p == "true" || p == "false"))
    .then_some(parts)
}

// ---------------------------------------------------------------------------------------------
// JSONPath

/// A parsed JSONPath query.
#[derive(Clone)]
pub(crate) struct Query {
    text: String,
    query: JpQuery,
    /// The steps of a query of member names and wildcards, run without the general evaluator.
    simple: Option<Vec<super::member_path::Step>>,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Query({})", self.text)
    }
}

impl Query {
    /// Parses `text`; the error has a message and, when known, the offset in `text`.
    pub fn compile(text: &str) -> Result<Query, crate::expr::JsonPathError> {
        jsonpath_rust::parser::parse_json_path(text)
            .map(|query| Query {
                text: text.to_string(),
                query,
                simple: super::member_path::parse(text),
            })
            .map_err(|e| crate::expr::jsonpath_error(text, e))
    }

    /// The query's steps when it is made of member names and wildcards only.
    pub fn steps(&self) -> Option<&[super::member_path::Step]> {
        self.simple.as_deref()
    }

    /// Every match, borrowed, in document order.
    pub fn refs<'v>(&self, value: &'v Value) -> Vec<&'v Value> {
        if let Some(steps) = &self.simple {
            let mut out = Vec::new();
            super::member_path::select(steps, value, &mut out);
            return out;
        }
        jsonpath_rust::query::js_path_process(&self.query, value)
            .map(|found| found.into_iter().map(|r| r.val()).collect())
            .unwrap_or_default()
    }

    /// Every match, in document order.
    pub fn all(&self, value: &Value) -> Vec<Value> {
        self.refs(value).into_iter().cloned().collect()
    }

    /// The first non-null match, borrowed.
    pub fn first_ref<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.refs(value).into_iter().find(|v| !v.is_null())
    }

    /// The first non-null match.
    pub fn first(&self, value: &Value) -> Option<Value> {
        self.first_ref(value).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_filters_and_tests_are_found() {
        let mut t = Templates::default();
        let name = t.add("{{ key | soql }}{{ key | upper }}{{ key | nope }}{% if key is odd %}{% endif %}{% if key is nah %}{% endif %}", Target::Plain);
        let Ok(name) = name else { panic!("{name:?}") };
        let found: Vec<(&str, String)> = t
            .unknown_filters(&name, Target::Plain)
            .into_iter()
            .collect();
        assert_eq!(
            found,
            [("filter", "nope".to_string()), ("test", "nah".to_string())]
        );
    }

    #[test]
    fn secret_reads() {
        let mut t = Templates::default();
        let Ok(name) = t.add("Token {{ secrets.tok }} {{ key }}", Target::Plain) else {
            panic!()
        };
        assert_eq!(t.secret_reads(&name, Target::Plain), ["tok"]);
        assert_eq!(t.variables(&name, Target::Plain), ["key", "secrets"]);
    }

    #[test]
    fn queries() {
        let q = Query::compile("$.results[*]");
        let Ok(q) = q else { panic!() };
        assert_eq!(
            q.all(&serde_json::json!({"results": [1, 2]})),
            vec![serde_json::json!(1), serde_json::json!(2)]
        );
        assert!(Query::compile("$.x[").is_err());
    }
}
