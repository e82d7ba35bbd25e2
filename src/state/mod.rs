//! Durable state: what a flow wrote, so a re-run sends only what changed, a crash never
//! yields a duplicate, and every record's outcome can be audited.
//!
//! - The **ledger** keeps, per (tenant, flow, record identity), the hash of the last payload
//!   written and the target id; a write is `pending` before its request and `done` or
//!   `failed` after. A pending entry found later (the process died in between) makes the
//!   next attempt look the record up before it creates anything.
//! - The **id map** keeps source identity → target id per provider object.
//! - The **changelog** holds one terminal outcome per record per run; the **snapshot** view
//!   the latest status per record; **runs** the counters and the checkpoint a resumed run
//!   continues from.
//! - **Dead letters** hold failed records with their input, retried by the next run.
//!
//! [`SqlStore`] implements [`Store`] on SQLite (one file, the default) and PostgreSQL
//! (several instances sharing state) with the same statements and migrations.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rulebridge::state::StoreError> {
//! use rulebridge::state::{SqlStore, Store};
//! let store = SqlStore::open(".rulebridge/state.db").await?;
//! for run in store.runs(&Default::default()).await? {
//!     println!("{} {} {}", run.id, run.flow, run.status.as_str());
//! }
//! # Ok(()) }
//! ```

mod api_keys;
mod credentials;
mod oauth;
mod sql;

use futures::future::BoxFuture;
use serde::Serialize;

pub use api_keys::{ApiKeyInfo, ApiKeys, KEY_PREFIX, NewApiKey, Refused};
pub use credentials::{
    CredentialError, CredentialInfo, CredentialStore, KeySpec, MASTER_KEY_VAR,
    MASTER_PASSPHRASE_VAR, NEW_MASTER_KEY_VAR, NEW_MASTER_PASSPHRASE_VAR, Rotated,
    TenantCredentials, env_name, split_reference,
};
pub use oauth::{
    LastFailure, OAUTH_CREDENTIAL, OAuthStates, StateRefused, TenantTokens, last_failure,
};
pub use sql::SqlStore;

use crate::db::DbError;

/// Why the store could not do something. Names the database and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Invalid(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Milliseconds since the Unix epoch, the store's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Counts of terminal outcomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub total: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl Counters {
    /// Counts one outcome by its status word (`created`, `failed`, ...).
    pub fn add(&mut self, status: &str) {
        self.total += 1;
        match status {
            "created" => self.created += 1,
            "updated" => self.updated += 1,
            "unchanged" => self.unchanged += 1,
            "failed" => self.failed += 1,
            _ => self.skipped += 1,
        }
    }
}

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Done,
    /// Its process ended before the run did; the same command resumes it.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> RunStatus {
        match s {
            "running" => RunStatus::Running,
            "done" => RunStatus::Done,
            _ => RunStatus::Interrupted,
        }
    }
}

/// What a new run is: a run of the same flow, rules and input whose process died is resumed
/// instead of started again.
#[derive(Clone, Debug, Default)]
pub struct RunStart {
    pub tenant: String,
    pub flow: String,
    /// Hash of the rule set the run executes.
    pub rules_hash: String,
    /// A fingerprint of the input (file, size, modification time); `None` for input that
    /// cannot be read again (stdin), which is never resumed.
    pub input: Option<String>,
}

/// A run, as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    pub id: String,
    pub tenant: String,
    pub flow: String,
    pub rules_hash: String,
    pub input: Option<String>,
    pub status: RunStatus,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    /// Records reported, in input order, when the run last checkpointed.
    pub checkpoint: u64,
    pub counters: Counters,
    /// This start continues an interrupted run.
    #[serde(skip)]
    pub resumed: bool,
}

/// Which runs to list.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub tenant: String,
    pub flow: Option<String>,
    pub limit: Option<u32>,
}

/// The state of a ledger entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// A write is (or was, when its process died) in progress.
    Pending,
    Done,
    Failed,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Pending => "pending",
            EntryState::Done => "done",
            EntryState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> EntryState {
        match s {
            "pending" => EntryState::Pending,
            "done" => EntryState::Done,
            _ => EntryState::Failed,
        }
    }
}

/// A flow's ledger entry for one record identity.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub identity: String,
    pub state: EntryState,
    /// Hash of the payload of the last successful write.
    pub done_hash: Option<String>,
    pub target_id: Option<String>,
    /// The last terminal status and the run that reported it.
    pub outcome: Option<String>,
    pub run_id: Option<String>,
}

/// The result of claiming an identity for a write.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// The entry is ours until settled. `was_pending`: an earlier attempt's write may have
    /// landed (its process died before settling it).
    Claimed {
        was_pending: bool,
        target_id: Option<String>,
    },
    /// Its last successful write had the payload claimed with: nothing to send. The entry
    /// says what that write was.
    Unchanged(Entry),
    /// Another live run holds it; try again once that run has settled it.
    Busy,
}

/// One identity to claim for a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claiming {
    pub identity: String,
    pub record_key: Option<String>,
    /// The hash of the payload about to be written: an entry whose last successful write
    /// had it is left alone ([`Claim::Unchanged`]). `None` claims it whatever was written.
    pub hash: Option<String>,
}

impl Claiming {
    /// A claim of `identity` whatever its last write was.
    pub fn any(identity: impl Into<String>) -> Claiming {
        Claiming {
            identity: identity.into(),
            record_key: None,
            hash: None,
        }
    }
}

/// The end of one write, for the ledger and the id map.
#[derive(Clone, Debug)]
pub struct Settle {
    pub identity: String,
    pub record_key: Option<String>,
    /// `created`, `updated`, `skipped`, `unchanged` or `failed`.
    pub outcome: &'static str,
    /// The payload hash now written (`None` for a failure: the last success stands).
    pub hash: Option<String>,
    pub target_id: Option<String>,
    /// (match key field, value) pairs that now map to `target_id`.
    pub ids: Vec<(String, String)>,
}

/// The ledger's scope: one flow of one tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    pub tenant: String,
    pub flow: String,
}

/// The id map's scope: one object of one provider of one tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Target {
    pub tenant: String,
    pub provider: String,
    pub object: String,
}

/// One record's terminal outcome in a run, for the changelog and the dead letters.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Change {
    pub run_id: String,
    pub index: u64,
    pub tenant: String,
    pub flow: String,
    pub record_key: Option<String>,
    pub identity: Option<String>,
    /// The status word: `created`, `updated`, `unchanged`, `skipped`, `failed`.
    pub action: String,
    pub provider: String,
    pub object: String,
    pub target_id: Option<String>,
    pub http_status: Option<u16>,
    pub correlation_id: Option<String>,
    pub duration_ms: Option<u64>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    /// The payload sent, only when the flow opts in.
    pub payload: Option<String>,
    /// Hash of the input line, to match a dead letter to a later run of the same record.
    #[serde(skip)]
    pub source_hash: Option<String>,
    pub at: i64,
}

/// A failed record with what is needed to retry it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeadLetter {
    pub tenant: String,
    pub flow: String,
    /// Stable id: the hash of the input line.
    pub id: String,
    pub identity: Option<String>,
    pub record_key: Option<String>,
    pub run_id: String,
    pub index: u64,
    pub kind: String,
    pub reason: String,
    /// `file:line:col` of the rule that failed.
    pub rule_at: Option<String>,
    pub provider_message: Option<String>,
    pub http_status: Option<u16>,
    /// The input line as read, or as [`DeadLetter::input_form`] says.
    #[serde(skip)]
    pub input: Vec<u8>,
    pub input_form: InputForm,
    pub attempts: u64,
    pub first_failed_at: i64,
    pub last_failed_at: i64,
}

/// A failure to queue: the change that reported it, and the input.
#[derive(Clone, Debug)]
pub struct Failure {
    pub change: Change,
    pub rule_at: Option<String>,
    pub provider_message: Option<String>,
    pub input: Vec<u8>,
    pub input_form: InputForm,
}

/// How a dead letter keeps its input line. A record whose declared fields include
/// `sensitive` ones is never kept in clear: sealed under the master key when there is one,
/// else without those fields' values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputForm {
    /// The line as read.
    #[default]
    Plain,
    /// AES-256-GCM under the master key ([`crate::secrets::sealed::Sealed::to_bytes`]),
    /// bound to the tenant, flow and dead-letter id ([`dead_letter_aad`]).
    Sealed,
    /// The line with its sensitive fields' values removed: it can be inspected, not retried.
    Redacted,
}

impl InputForm {
    /// The stored code (the `encrypted` column).
    pub fn code(self) -> i64 {
        match self {
            InputForm::Plain => 0,
            InputForm::Sealed => 1,
            InputForm::Redacted => 2,
        }
    }

    pub fn from_code(code: i64) -> InputForm {
        match code {
            0 => InputForm::Plain,
            1 => InputForm::Sealed,
            _ => InputForm::Redacted,
        }
    }
}

/// The associated data of a sealed dead-letter input: a ciphertext moved to another
/// tenant's, flow's or record's row does not open.
pub fn dead_letter_aad(tenant: &str, flow: &str, id: &str) -> Vec<u8> {
    crate::secrets::sealed::aad(tenant, &format!("dead-letter/{flow}"), id)
}

impl DeadLetter {
    /// The input line in clear: opened with `key` when sealed. A redacted input, or a sealed
    /// one without the key, is an error saying so.
    pub fn open_input(
        &self,
        key: Option<&crate::secrets::sealed::MasterKey>,
    ) -> Result<Vec<u8>, String> {
        match self.input_form {
            InputForm::Plain => Ok(self.input.clone()),
            InputForm::Redacted => Err(
                "its sensitive fields were not kept (no master key was set when it failed); send the record again from its source".into(),
            ),
            InputForm::Sealed => {
                let Some(key) = key else {
                    return Err("its input is encrypted: set RULEBRIDGE_MASTER_KEY (or RULEBRIDGE_MASTER_PASSPHRASE) to the key it was sealed with".into());
                };
                let sealed = crate::secrets::sealed::Sealed::from_bytes(&self.input)
                    .ok_or_else(|| "its sealed input is damaged".to_string())?;
                key.open(
                    &sealed,
                    &dead_letter_aad(&self.tenant, &self.flow, &self.id),
                    &format!("dead letter {} of flow {}", self.id, self.flow),
                )
                .map_err(|e| e.to_string())
            }
        }
    }
}

/// A batch of reported outcomes and the run's progress after them, stored in one
/// transaction: changelog rows, dead letters queued and cleared, counters and checkpoint.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub run_id: String,
    pub scope: Scope,
    pub changes: Vec<Change>,
    pub failures: Vec<Failure>,
    /// Dead letters cleared by records that succeeded: (source hash, identity).
    pub cleared: Vec<(String, Option<String>)>,
    pub checkpoint: u64,
    pub counters: Counters,
}

/// Which changelog rows to list.
#[derive(Clone, Debug, Default)]
pub struct ChangeFilter {
    pub tenant: String,
    pub flow: Option<String>,
    pub record_key: Option<String>,
    pub action: Option<String>,
    pub run_id: Option<String>,
    /// Only rows at or after this time (ms since the epoch).
    pub since: Option<i64>,
    pub limit: Option<u32>,
}

/// What pruning removes: changelog rows and done ledger entries older than the ages given.
#[derive(Clone, Copy, Debug, Default)]
pub struct Retention {
    pub changelog_ms: Option<i64>,
    pub ledger_ms: Option<i64>,
}

/// What a prune removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub changelog: u64,
    pub ledger: u64,
    pub runs: u64,
}

/// Durable state behind a flow's runs. Implementations must pass the shared suite in
/// `tests/state.rs`.
pub trait Store: Send + Sync {
    /// Starts a run, or resumes the interrupted run of the same flow, rules and input.
    fn begin_run(&self, start: &RunStart) -> BoxFuture<'_, StoreResult<Run>>;

    /// Ends a run with its final counters.
    fn finish_run<'a>(
        &'a self,
        run_id: &'a str,
        counters: Counters,
        checkpoint: u64,
    ) -> BoxFuture<'a, StoreResult<()>>;

    /// Marks a live run alive.
    fn heartbeat<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<()>>;

    /// The ledger entries of these identities (`None` where there is none), in order.
    fn entries<'a>(
        &'a self,
        scope: &'a Scope,
        identities: &'a [String],
    ) -> BoxFuture<'a, StoreResult<Vec<Option<Entry>>>>;

    /// Marks each identity `pending` for `run_id`, unless another live run holds it or its
    /// payload is unchanged since its last successful write; one answer per claim, in order.
    fn claim<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
        claims: &'a [Claiming],
    ) -> BoxFuture<'a, StoreResult<Vec<Claim>>>;

    /// Records the end of writes in the ledger and the id map, in one transaction.
    fn settle<'a>(
        &'a self,
        scope: &'a Scope,
        target: &'a Target,
        run_id: &'a str,
        settled: &'a [Settle],
    ) -> BoxFuture<'a, StoreResult<()>>;

    /// Target ids by one field's values (`None` where unknown), in order.
    fn ids<'a>(
        &'a self,
        target: &'a Target,
        field: &'a str,
        values: &'a [String],
    ) -> BoxFuture<'a, StoreResult<Vec<Option<String>>>>;

    /// Forgets target ids that no longer exist at the provider.
    fn forget_ids<'a>(
        &'a self,
        target: &'a Target,
        target_ids: &'a [String],
    ) -> BoxFuture<'a, StoreResult<()>>;

    /// Stores a batch of reported outcomes and the run's progress, in one transaction.
    fn report<'a>(&'a self, report: &'a Report) -> BoxFuture<'a, StoreResult<()>>;

    fn changes<'a>(&'a self, filter: &'a ChangeFilter) -> BoxFuture<'a, StoreResult<Vec<Change>>>;

    fn runs<'a>(&'a self, filter: &'a RunFilter) -> BoxFuture<'a, StoreResult<Vec<Run>>>;

    fn run<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Option<Run>>>;

    /// Dead letters of a tenant, of one flow or all, oldest first.
    fn dead_letters<'a>(
        &'a self,
        tenant: &'a str,
        flow: Option<&'a str>,
    ) -> BoxFuture<'a, StoreResult<Vec<DeadLetter>>>;

    /// Removes one dead letter; false when there was none.
    fn drop_dead_letter<'a>(
        &'a self,
        tenant: &'a str,
        flow: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, StoreResult<bool>>;

    /// Removes changelog rows, done ledger entries and finished runs older than `retention`
    /// allows.
    fn prune<'a>(&'a self, retention: &'a Retention) -> BoxFuture<'a, StoreResult<Pruned>>;
}

/// A stable hash of bytes, as stored (hex SHA-256, first 128 bits).
pub fn hash_bytes(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    hex::encode(&digest[..16])
}

/// The ledger's identity of a record: its match keys' values, joined by a separator no
/// value holds unescaped.
pub fn identity_of(values: &[String]) -> String {
    let mut s = String::new();
    for (n, v) in values.iter().enumerate() {
        if n > 0 {
            s.push('\u{1f}');
        }
        s.push_str(v);
    }
    s
}
