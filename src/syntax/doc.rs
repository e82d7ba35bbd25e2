//! The rule-file document model: what the loader produces from YAML and the compiler consumes.
//!
//! Every value that a diagnostic may point at is [`Spanned`]. Expressions and templates are
//! kept as text here (with the span of the YAML scalar that holds them); the compiler parses
//! them, so one place reports all expression errors.

use serde_json::Value;

use crate::span::Span;
use crate::types::Type;

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// One YAML document of a rule file.
#[derive(Clone, Debug)]
pub enum Document {
    Provider(ProviderDoc),
    /// `kind: provider` with `extends:`: fields added to another provider's objects.
    Extension(ExtensionDoc),
    Flow(FlowDoc),
    Policy(PolicyDoc),
    Record(RecordDoc),
    Tests(TestsDoc),
    /// `kind: endpoint`: an inbound endpoint of `rulebridge serve`.
    Endpoint(EndpointDoc),
}

impl Document {
    pub fn kind(&self) -> &'static str {
        match self {
            Document::Provider(_) => "provider",
            Document::Extension(_) => "extension",
            Document::Flow(_) => "flow",
            Document::Policy(_) => "policy",
            Document::Record(_) => "record",
            Document::Tests(_) => "test",
            Document::Endpoint(_) => "endpoint",
        }
    }

    /// The document's name and its span (test files are named after their file).
    pub fn name(&self) -> &Spanned<String> {
        match self {
            Document::Provider(d) => &d.name,
            Document::Extension(d) => &d.name,
            Document::Flow(d) => &d.name,
            Document::Policy(d) => &d.name,
            Document::Record(d) => &d.name,
            Document::Tests(d) => &d.name,
            Document::Endpoint(d) => &d.name,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Records

/// `kind: record`: a declared record schema. Expressions over a flow whose source names a
/// record may only use its fields.
#[derive(Clone, Debug)]
pub struct RecordDoc {
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

/// A declared field: of a record schema or of a provider object.
#[derive(Clone, Debug)]
pub struct FieldDecl {
    pub name: Spanned<String>,
    /// The field's type, e.g. `string`, `number?`, `array<string>`; `email`, `phone`, `url`,
    /// `date`, `datetime` and `enum` are strings with a format.
    pub ty: Spanned<Type>,
    /// The type name as written (`email`, `enum`, ...), for format checks and docs.
    pub format: String,
    pub required: bool,
    /// Allowed values of an `enum` field.
    pub options: Vec<String>,
    /// How the field is shown in the target system (used when creating it there).
    pub label: Option<String>,
    pub description: Option<String>,
    /// Personal or confidential data (`sensitive: true`): a record field's value is kept
    /// only encrypted at rest (dead letters), an object field's is masked in audited payloads.
    pub sensitive: bool,
}

// ---------------------------------------------------------------------------------------------
// Flows

/// `kind: flow`: which records go where, how they are mapped, which policy applies and how
/// duplicates are handled.
#[derive(Clone, Debug)]
pub struct FlowDoc {
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub source: SourceSpec,
    pub target: TargetSpec,
    /// Expression giving each record's key in outcomes (defaults to the first match key).
    pub key: Option<Spanned<String>>,
    /// Named secrets usable in expressions as `secrets.NAME`, e.g. `${env:JAMF_KEY}`.
    pub secrets: Vec<(Spanned<String>, Spanned<String>)>,
    /// The policy table applied to every record; its outputs are `policy.OUTPUT`.
    pub policy: Option<Spanned<String>>,
    /// Named values (`let:`), computed once per record and read as bare names.
    pub lets: Vec<LetDecl>,
    pub mapping: Mapping,
    pub options: MappingOptions,
    pub duplicates: Option<DuplicateRule>,
    /// Flows that must run before this one in a multi-flow run (besides those inferred from
    /// its references).
    pub depends_on: Vec<Spanned<String>>,
    pub tests: Vec<TestCase>,
    pub span: Span,
}

/// `let: { NAME: EXPR }` or `NAME: { type: TYPE, expr: EXPR }`: a value computed once per
/// record, before the mapping, and visible to every expression of the flow by its name.
#[derive(Clone, Debug)]
pub struct LetDecl {
    pub name: Spanned<String>,
    /// The declared type, checked against the expression and, where needed, at run time.
    pub ty: Option<Spanned<Type>>,
    /// The type as written, for messages.
    pub ty_text: String,
    pub expr: Spanned<String>,
}

#[derive(Clone, Debug, Default)]
pub struct SourceSpec {
    /// A `kind: record` schema the input records follow.
    pub record: Option<Spanned<String>>,
    /// Fields that must be present and non-null; records without them fail before mapping.
    pub require: Vec<Spanned<String>>,
    /// A boolean expression; records for which it is false are skipped.
    pub filter: Option<Spanned<String>>,
}

#[derive(Clone, Debug)]
pub struct TargetSpec {
    pub provider: Spanned<String>,
    pub object: Spanned<String>,
}

#[derive(Clone, Debug, Default)]
pub struct MappingOptions {
    /// Leave out target fields whose value is null (reverse-ETL "don't sync nulls").
    pub omit_nulls: bool,
    /// Target fields that must be non-null in every payload.
    pub required: Vec<Spanned<String>>,
    /// Keep each payload sent in the state store's changelog (off: the changelog holds what
    /// was done, not the data).
    pub audit_payloads: bool,
}

/// An ordered list of target fields and how each is produced.
#[derive(Clone, Debug, Default)]
pub struct Mapping {
    pub entries: Vec<MappingEntry>,
}

#[derive(Clone, Debug)]
pub struct MappingEntry {
    pub target: Spanned<String>,
    pub value: MappingValue,
}

#[derive(Clone, Debug)]
pub enum MappingValue {
    /// `field: lower(email)` — an expression.
    Expr(Spanned<String>),
    /// `field: { value: lead }`, or a YAML number/bool — a constant.
    Const(Spanned<Value>),
    /// `field: { template: "Lead from {{ source }}" }` — a minijinja template over the record.
    Template(Spanned<String>),
    /// `field: { fields: { ... } }` or a nested mapping — an object built the same way.
    Nested(Mapping, Span),
    /// `field: { ref: client, where: { external_id: EXPR } }` — the target's own id of
    /// another object's record, found by its search operation when the record is sent.
    Ref(RefDoc),
}

/// A reference to a record of another object of the flow's provider.
#[derive(Clone, Debug)]
pub struct RefDoc {
    /// The referenced object.
    pub object: Spanned<String>,
    /// The fields the record is found by, each with how its value is produced; every one
    /// must match.
    pub by: Vec<(Spanned<String>, RefKey)>,
    pub span: Span,
}

/// How the value of one field of a reference's `where` is produced.
#[derive(Clone, Debug)]
pub enum RefKey {
    /// An expression over the record.
    Expr(Spanned<String>),
    /// The id of another referenced record (`project_id: { ref: project, where: .. }`).
    Ref(Box<RefDoc>),
}

/// How to find an existing target record and what to do when one exists.
#[derive(Clone, Debug)]
pub struct DuplicateRule {
    /// Payload fields that identify a record, tried in order.
    pub match_keys: Vec<Spanned<String>>,
    pub on_match: Spanned<OnMatch>,
    pub on_multiple: Spanned<OnMultiple>,
    pub repeats: Spanned<Repeats>,
    pub span: Span,
}

/// What happens when one input holds several records of the same identity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Repeats {
    /// Applied one after the other, in input order: with `on_match: update` a later record
    /// updates what an earlier one created.
    #[default]
    InOrder,
    /// Only the last record of each identity is sent; earlier ones are skipped as
    /// `superseded`.
    LastWins,
    /// A later record fails as `duplicate_key` without being sent.
    Fail,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMatch {
    #[default]
    Update,
    Skip,
    CreateNew,
    Merge,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMultiple {
    #[default]
    Fail,
    First,
    MostRecent,
}

// ---------------------------------------------------------------------------------------------
// Policy tables

/// `kind: policy`: a decision table.
#[derive(Clone, Debug)]
pub struct PolicyDoc {
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub hit: Spanned<HitPolicy>,
    /// One expression per input column, evaluated on the record (`department`).
    pub inputs: Vec<Spanned<String>>,
    pub outputs: Vec<OutputDecl>,
    pub rows: Vec<Row>,
    pub tests: Vec<TestCase>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HitPolicy {
    /// The first matching row wins.
    First,
    /// Every matching row, in order; outputs become arrays.
    Collect,
    /// At most one row may match (a second match is a runtime error).
    Unique,
}

#[derive(Clone, Debug)]
pub struct OutputDecl {
    pub name: Spanned<String>,
    /// Declared type; when absent the first row's value decides.
    pub ty: Option<Spanned<Type>>,
}

#[derive(Clone, Debug)]
pub struct Row {
    /// Input cells (unary tests, as text with spans) then output cells (constants).
    pub inputs: Vec<Spanned<Cell>>,
    pub outputs: Vec<Spanned<Value>>,
    pub span: Span,
}

/// An input cell as written: a string is parsed as a unary test; other scalars are equality
/// tests against that constant.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Test(String),
    Const(Value),
}

// ---------------------------------------------------------------------------------------------
// Tests

/// A test file (`kind: test`): cases for one flow or policy.
#[derive(Clone, Debug)]
pub struct TestsDoc {
    /// The file's stem, for reporting.
    pub name: Spanned<String>,
    /// `flow: NAME` or `policy: NAME`.
    pub subject: TestSubject,
    pub cases: Vec<TestCase>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum TestSubject {
    Flow(Spanned<String>),
    Policy(Spanned<String>),
}

/// One fixture: an input record and what must come out.
#[derive(Clone, Debug)]
pub struct TestCase {
    pub name: Spanned<String>,
    pub input: Spanned<Value>,
    /// Secret values for this case (tests never read the environment).
    pub secrets: Vec<(String, String)>,
    /// Records the target object already holds (ids `1`, `2`, ... in order): the case is
    /// sent through the flow's duplicate rule against an in-memory target.
    pub existing: Vec<Spanned<Value>>,
    pub expect: Expectation,
    pub span: Span,
}

#[derive(Clone, Debug, Default)]
pub struct Expectation {
    /// `equals` (default): the payload must be exactly this; `contains`: a subset.
    pub matching: MatchMode,
    pub payload: Option<Spanned<Value>>,
    pub policy: Option<Spanned<Value>>,
    /// `dry_run` (mapped fine), `skipped` (filtered out) or `failed`.
    pub status: Option<Spanned<String>>,
    /// Text the failure reason must contain.
    pub error: Option<Spanned<String>>,
    /// The outcome key.
    pub key: Option<Spanned<String>>,
    /// The target id the record was written to (or skipped at).
    pub target_id: Option<Spanned<String>>,
    /// The target record after the write (fields as the in-memory target holds them).
    pub record: Option<Spanned<Value>>,
    /// Every key written under `payload`, as a path from the payload's top (`["address",
    /// "city"]`) at the key's span; lint checks the flow can produce them.
    pub payload_fields: Vec<Spanned<Vec<String>>>,
    /// The keys written under `policy` (policy outputs), at their spans.
    pub policy_fields: Vec<Spanned<String>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatchMode {
    #[default]
    Equals,
    Contains,
}

// ---------------------------------------------------------------------------------------------
// Providers

/// `kind: provider`: how to talk to one system over HTTP.
#[derive(Clone, Debug)]
pub struct ProviderDoc {
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub base_url: Spanned<String>,
    pub auth: Option<Spanned<Auth>>,
    pub rate_limit: Option<Spanned<RateLimit>>,
    pub retry: Option<Spanned<RetryPolicy>>,
    /// Per-request timeout.
    pub timeout: Option<Spanned<std::time::Duration>>,
    /// Headers sent with every request (values may hold secret references).
    pub headers: Vec<(Spanned<String>, Spanned<String>)>,
    /// `secrets: { NAME: "${env:VAR}" }`: values templates read as `secrets.NAME`.
    pub secrets: Vec<(Spanned<String>, Spanned<String>)>,
    /// `vars: [tenant_id]`: variables the embedding application passes to every template.
    pub vars: Vec<Spanned<String>>,
    /// Response headers that tell how much of a rate-limit window is left.
    pub rate_limit_headers: Option<Vec<RateLimitHeaderDoc>>,
    pub objects: Vec<ObjectDoc>,
    /// Error classification shared by all objects (objects may add their own first).
    pub errors: Vec<ErrorRule>,
    /// `type: sql`: a database whose objects are tables (`base_url` and the HTTP keys are
    /// then absent; `base_url` holds an empty placeholder).
    pub sql: Option<SqlDoc>,
    /// `config:`: the settings a user gives to connect (a form, `rulebridge creds set`).
    pub config: Vec<ConfigFieldDoc>,
    /// `connect:`: how a user connects an account through the vendor's consent screen.
    pub connect: Option<Box<ConnectDoc>>,
    pub span: Span,
}

/// A provider's `connect:` section: the vendor's OAuth 2.0 authorization-code flow
/// (`type: oauth2`). URLs and credentials are literals or secret references; a URL starting
/// with `/` is relative to `login_url`.
#[derive(Clone, Debug)]
pub struct ConnectDoc {
    pub authorize_url: Spanned<String>,
    pub token_url: Spanned<String>,
    /// The origin relative URLs are resolved against (Salesforce: `SALESFORCE_LOGIN_URL`).
    pub login_url: Option<Spanned<String>>,
    pub scopes: Option<Spanned<Vec<String>>>,
    pub client_id: Spanned<String>,
    pub client_secret: Spanned<String>,
    pub redirect_url: Spanned<String>,
    /// More query parameters of the authorize URL (`prompt: consent`, ...).
    pub params: Vec<(Spanned<String>, Spanned<String>)>,
    /// Where the token response names the instance data calls go to (`$.instance_url`).
    pub base_url_from: Option<Spanned<String>>,
    pub span: Span,
}

/// One `config:` field of a provider: what a user enters to connect the kit.
#[derive(Clone, Debug)]
pub struct ConfigFieldDoc {
    pub name: Spanned<String>,
    pub label: Option<Spanned<String>>,
    pub description: Option<String>,
    /// Entered without echo and never shown again (tokens, passwords).
    pub sensitive: bool,
    pub required: bool,
    pub span: Span,
}

/// The database of a `type: sql` provider.
#[derive(Clone, Debug)]
pub struct SqlDoc {
    /// An SQLite file (relative to the rules directory), a `postgres://` URL, or a secret
    /// reference to either (`${env:USERS_DB_URL}`).
    pub database: Spanned<String>,
    /// SQL files applied in order when the database is opened.
    pub migrations: Vec<MigrationDoc>,
}

/// One `migrations:` entry: a file for both backends, or one file per backend.
#[derive(Clone, Debug)]
pub struct MigrationDoc {
    pub sqlite: Option<Spanned<String>>,
    pub postgres: Option<Spanned<String>>,
    pub span: Span,
}

/// `kind: provider` with `extends: BASE`: an integrator's additions to a kit, e.g. the custom
/// properties of their own HubSpot portal. The fields join the base provider's objects; flows
/// keep targeting the base provider.
#[derive(Clone, Debug)]
pub struct ExtensionDoc {
    /// The document's `name`, else its file's name.
    pub name: Spanned<String>,
    pub description: Option<String>,
    /// The provider extended.
    pub base: Spanned<String>,
    pub objects: Vec<ObjectExtension>,
    pub span: Span,
}

/// Fields an extension adds to one object of its base provider.
#[derive(Clone, Debug)]
pub struct ObjectExtension {
    pub name: Spanned<String>,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

/// Authentication. Secret values are kept as text with `${env:..}` / `${file:..}` references.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    ApiKey {
        /// `header` or `query`.
        location: ApiKeyLocation,
        name: Spanned<String>,
        value: Spanned<String>,
    },
    Bearer {
        token: Spanned<String>,
    },
    Basic {
        username: Spanned<String>,
        password: Spanned<String>,
    },
    OAuth2Refresh {
        token_url: Spanned<String>,
        client_id: Spanned<String>,
        client_secret: Spanned<String>,
        refresh_token: Spanned<String>,
        scopes: Vec<String>,
        /// JSONPath of a URL in the token response whose origin replaces the base URL's
        /// (a per-tenant instance host).
        base_url_from: Option<Spanned<String>>,
    },
    OAuth2ClientCredentials {
        token_url: Spanned<String>,
        client_id: Spanned<String>,
        client_secret: Spanned<String>,
        scopes: Vec<String>,
        base_url_from: Option<Spanned<String>>,
    },
    /// Basic credentials exchanged for a bearer token with an expiry (Jamf Pro).
    TokenExchange {
        token_url: Spanned<String>,
        username: Spanned<String>,
        password: Spanned<String>,
        /// JSONPath of the token in the response.
        token: Spanned<String>,
        /// JSONPath of the expiry (RFC 3339 timestamp) or `expires_in` seconds.
        expires: Option<Spanned<String>>,
        keep_alive_url: Option<Spanned<String>>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKeyLocation {
    Header,
    Query,
}

/// `100 per 10s`, or `{ requests: 100, per: 10s }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: std::time::Duration,
}

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: std::time::Duration,
    pub max: std::time::Duration,
    /// Status codes to retry, plus transport errors when `network` is listed.
    pub on_status: Vec<u16>,
    pub on_network: bool,
    pub respect_retry_after: bool,
}

/// One entry of `rate_limit_headers`: a window whose `remaining` header says `0` pauses every
/// request, or a `usage` header that is only reported when nearly used up.
#[derive(Clone, Debug)]
pub struct RateLimitHeaderDoc {
    /// Header holding the requests left in the current window.
    pub remaining: Option<Spanned<String>>,
    /// Header holding when the window resets (see `unit`).
    pub reset: Option<Spanned<String>>,
    pub unit: ResetUnit,
    /// The pause when `reset` is absent.
    pub wait: Option<Spanned<std::time::Duration>>,
    /// Header holding an allowance's usage (e.g. `api-usage=18/5000`).
    pub usage: Option<Spanned<String>>,
    /// Regex with two groups, used and limit, over the `usage` header.
    pub pattern: Option<Spanned<String>>,
    pub span: Span,
}

/// How a rate-limit `reset` header counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResetUnit {
    /// Seconds from now; values beyond 10⁹ are read as a Unix time.
    #[default]
    Seconds,
    Milliseconds,
    /// A Unix time in seconds.
    EpochSeconds,
}

/// Where a found record's id, modification time and fields are in one search result item
/// (JSONPath queries over the item).
#[derive(Clone, Debug, Default)]
pub struct ResponseDoc {
    pub id: Option<Spanned<String>>,
    pub updated_at: Option<Spanned<String>>,
    pub fields: Option<Spanned<String>>,
    /// Keys of the field map that are not fields (e.g. metadata).
    pub omit: Vec<Spanned<String>>,
    pub span: Span,
}

/// How one item of a `fields` listing becomes a field of the type model: expressions over the
/// item (its keys read as record fields).
#[derive(Clone, Debug, Default)]
pub struct FieldMapDoc {
    pub name: Option<Spanned<String>>,
    pub label: Option<Spanned<String>>,
    /// The vendor's type name, looked up in `types`.
    pub ty: Option<Spanned<String>>,
    pub options: Option<Spanned<String>>,
    pub required: Option<Spanned<String>>,
    pub read_only: Option<Spanned<String>>,
    pub span: Span,
}

/// `batch: { group_by: tenantId }` of a batch operation: how one batch call's items are
/// split into requests.
#[derive(Clone, Debug)]
pub struct BatchDoc {
    /// An expression over one item's payload (its fields read as bare names): items with
    /// different values go in different requests, which read the value as `group`.
    pub group_by: Option<Spanned<String>>,
    pub span: Span,
}

/// An object (entity) of a provider: its fields and operations.
#[derive(Clone, Debug)]
pub struct ObjectDoc {
    pub name: Spanned<String>,
    /// Declared fields; mapping targets are checked against them.
    pub fields: Vec<FieldDecl>,
    /// Where a search result's id, modification time and fields are.
    pub response: Option<ResponseDoc>,
    pub operations: Vec<Operation>,
    pub errors: Vec<ErrorRule>,
    /// Per-operation rate limits (e.g. HubSpot search: 4 per 1s).
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Operation {
    /// `create`, `update`, `search`, `batch_upsert`, `get`, `delete`, `list`, or custom.
    pub name: Spanned<String>,
    pub method: Spanned<String>,
    /// Path template (minijinja), e.g. `/crm/v3/objects/contacts/{{ id }}`.
    pub path: Spanned<String>,
    pub query: Vec<(Spanned<String>, Spanned<String>)>,
    pub headers: Vec<(Spanned<String>, Spanned<String>)>,
    /// Body template: a YAML value whose strings are minijinja templates.
    pub body: Option<Spanned<Value>>,
    /// Batch operations: the template of one item (over `payload`, `key`, `field`); the body
    /// reads the rendered items as `items` (e.g. HubSpot's `{id, idProperty, properties}`).
    pub item: Option<Spanned<Value>>,
    /// JSONPath of the created/updated record's id in the response.
    pub id: Option<Spanned<String>>,
    /// JSONPath of the result items (search results, batch results).
    pub results: Option<Spanned<String>>,
    /// JSONPath of per-item errors in a batch response.
    pub item_errors: Option<Spanned<String>>,
    /// JSONPath, relative to one result item, of the flag telling whether an upsert created
    /// the record (HubSpot `$.new`, Salesforce `$.created`).
    pub created: Option<Spanned<String>>,
    pub max_batch: Option<Spanned<u32>>,
    /// Batch operations: how the items are grouped into requests.
    pub batch: Option<BatchDoc>,
    pub rate_limit: Option<Spanned<RateLimit>>,
    /// `fields` operations: how one listed item becomes a field.
    pub field: Option<FieldMapDoc>,
    /// `fields` operations: vendor type names to rulebridge's (`picklist: enum`).
    pub types: Vec<(Spanned<String>, Spanned<String>)>,
    /// `create`/`batch_create`: the kit sends an idempotency key, so a create whose result
    /// was lost may be sent again as it is.
    pub idempotent: Option<Spanned<bool>>,
    /// `batch_search`: JSONPath, relative to one result item, of the value of the looked-up
    /// field, which says which value the item matched (default: the field in the item's
    /// field map).
    pub matched: Option<Spanned<String>>,
    /// `batch_search`: JSONPath of the total number of matches; a response holding fewer
    /// (a page) is looked up again in halves.
    pub total: Option<Spanned<String>>,
    /// `batch_search`: the longest URL (with its query) the API accepts; longer requests are
    /// split.
    pub max_url_length: Option<Spanned<u32>>,
    pub span: Span,
}

/// How to recognise a kind of error in a response.
#[derive(Clone, Debug)]
pub struct ErrorRule {
    pub status: Vec<u16>,
    /// Optional text the body must contain (e.g. `DUPLICATE_VALUE`).
    pub contains: Option<Spanned<String>>,
    pub kind: Spanned<ErrorKind>,
    /// Expression over `{status, body, message}` extracting the existing record's id.
    pub existing_id: Option<Spanned<String>>,
    /// Expression giving the provider's message.
    pub message: Option<Spanned<String>>,
    /// Expression naming the offending field of a validation error.
    pub field: Option<Spanned<String>>,
    /// Expression giving the provider's id of the failed request (for its support), kept in
    /// the changelog.
    pub correlation_id: Option<Spanned<String>>,
    pub span: Span,
}

/// The kind an error rule assigns: the connector's own error kinds.
pub use crate::connect::ErrorKind;

/// Pairs of a name and an expression, in file order.
pub type ExprMap = Vec<(Spanned<String>, Spanned<String>)>;

/// `kind: endpoint`: an inbound HTTP endpoint of `rulebridge serve`, declared instead of
/// written: how a request is authenticated and checked, how its body becomes records and a
/// tenant, which flow they go through, and how the outcomes become the answer.
///
/// Expressions read the request as fields: `body`, `headers` (names in lower case), and
/// `tenant`; `result` also reads `input` (the record as in the body), `outcome` (the flow's
/// outcome) and `status` (its word after `statuses`); `response` reads `results` and
/// `counters`; `invalid` reads `errors` (`[{field, message}]`). A key whose value is null is
/// left out of the answer.
#[derive(Debug, Clone)]
pub struct EndpointDoc {
    pub name: Spanned<String>,
    pub description: Option<String>,
    /// `POST`, `PUT` or `PATCH`.
    pub method: Spanned<String>,
    /// Where it is served, e.g. `/api/internal/sync/users`.
    pub path: Spanned<String>,
    pub auth: Option<EndpointAuth>,
    /// Headers every request must have (else 400).
    pub require_headers: Vec<Spanned<String>>,
    /// Body fields (dotted paths) every request must have (else 400).
    pub require_body: Vec<Spanned<String>>,
    /// The body of a 400 answer.
    pub invalid: ExprMap,
    /// The tenant the records belong to (default: the server's tenant resolution).
    pub tenant: Option<Spanned<String>>,
    /// The records: an expression yielding an array of objects.
    pub records: Spanned<String>,
    /// Fields added to every record before it enters the flow.
    pub with: ExprMap,
    pub flow: Spanned<String>,
    /// Outcome status → the word the answer uses (`unchanged: updated`); unlisted: as is.
    pub statuses: ExprMap,
    /// One entry of `results` per record, in input order.
    pub result: ExprMap,
    /// The body of the answer.
    pub response: ExprMap,
    pub span: crate::span::Span,
}

/// How an endpoint checks its caller: a header that must equal a secret.
#[derive(Debug, Clone)]
pub struct EndpointAuth {
    pub header: Spanned<String>,
    /// A secret reference (`${env:INTERNAL_API_KEY}`).
    pub secret: Spanned<String>,
    /// The body of the 401 answer.
    pub unauthorized: ExprMap,
}
