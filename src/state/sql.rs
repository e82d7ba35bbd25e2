//! [`Store`] on SQL: one implementation for SQLite and PostgreSQL through [`Db`].

use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::*;
use crate::db::{Backend, Db, Location};

mod journal;

use journal::{Fold, Journal};

/// The store's migrations, applied on open; a file with a later version is refused.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "state", include_str!("migrations/0001_state.sql")),
    (
        2,
        "credentials",
        include_str!("migrations/0002_credentials.sql"),
    ),
    (3, "oauth", include_str!("migrations/0003_oauth.sql")),
    (4, "api_keys", include_str!("migrations/0004_api_keys.sql")),
];

/// Migrations after [`BACKEND_MIGRATIONS`], the same for both backends.
const LATER_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        6,
        "claim_hash",
        include_str!("migrations/0006_claim_hash.sql"),
    ),
    (
        7,
        "settle_journal",
        include_str!("migrations/0007_settle_journal.sql"),
    ),
];

/// Migrations whose SQL differs by backend, after [`MIGRATIONS`]: (version, description,
/// SQLite, PostgreSQL).
const BACKEND_MIGRATIONS: &[(i64, &str, &str, &str)] = &[(
    5,
    "ledger_layout",
    include_str!("migrations/0005_ledger_layout.sqlite.sql"),
    include_str!("migrations/0005_ledger_layout.postgres.sql"),
)];

/// The migrations for `backend`, in order.
fn migrations(backend: Backend) -> Vec<(i64, &'static str, &'static str)> {
    let own = BACKEND_MIGRATIONS
        .iter()
        .map(|&(v, d, sqlite, pg)| match backend {
            Backend::Sqlite => (v, d, sqlite),
            Backend::Postgres => (v, d, pg),
        });
    MIGRATIONS
        .iter()
        .copied()
        .chain(own)
        .chain(LATER_MIGRATIONS.iter().copied())
        .collect()
}

/// A run whose heartbeat is older than this is taken for dead (its process stopped without
/// ending it, on a host whose processes this one cannot see).
const STALE_MS: i64 = 30_000;

/// Rows per statement in batched reads and writes, which bounds a statement's size.
const ROWS_PER_STATEMENT: usize = 1000;

/// The state store on an SQLite file or a PostgreSQL database.
#[derive(Clone, Debug)]
pub struct SqlStore {
    db: Db,
    /// This process, as it marks the runs and ledger entries it holds: `host:pid:nonce`.
    owner: String,
    /// Settles appended and not yet folded into the ledger ([`journal`]).
    journal: Arc<Journal>,
}

impl SqlStore {
    /// Opens the store at `spec` (a file path, `sqlite://PATH` or a `postgres://` URL),
    /// creating and migrating it as needed.
    pub async fn open(spec: &str) -> StoreResult<SqlStore> {
        Self::open_location(Location::parse(spec)).await
    }

    /// [`SqlStore::open`], waiting at most `busy_timeout` for another process's lock.
    pub async fn open_with_timeout(
        spec: &str,
        busy_timeout: std::time::Duration,
    ) -> StoreResult<SqlStore> {
        Self::open_db(Db::open_with(Location::parse(spec), busy_timeout).await?).await
    }

    pub async fn open_location(location: Location) -> StoreResult<SqlStore> {
        Self::open_db(Db::open(location).await?).await
    }

    async fn open_db(db: Db) -> StoreResult<SqlStore> {
        db.migrate("rb_schema_migrations", &migrations(db.backend()))
            .await?;
        Ok(SqlStore {
            db,
            owner: format!(
                "{}:{}:{:08x}",
                host(),
                std::process::id(),
                rand::random::<u32>()
            ),
            journal: Arc::default(),
        })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    fn err(&self, e: sqlx::Error) -> StoreError {
        StoreError::Db(self.db.error(&e))
    }

    /// Whether the process that holds `owner` is gone: on this host, by its pid; elsewhere
    /// only its heartbeat can tell.
    fn owner_dead(owner: &str, heartbeat_at: i64, now: i64) -> bool {
        let mut parts = owner.split(':');
        if let (Some(h), Some(pid)) = (parts.next(), parts.next())
            && h == host()
            && let Ok(pid) = pid.parse::<u32>()
            && pid != std::process::id()
            && std::path::Path::new("/proc").is_dir()
        {
            return !std::path::Path::new(&format!("/proc/{pid}")).exists();
        }
        now - heartbeat_at > STALE_MS
    }

    /// One claim statement over `claims` (see [`Store::claim`]).
    async fn claim_once(
        &self,
        scope: &Scope,
        run_id: &str,
        claims: &[Claiming],
    ) -> StoreResult<Vec<Claim>> {
        let now = now_ms();
        let mut won = std::collections::HashMap::with_capacity(claims.len());
        // The update applies only where no other live process holds the entry, a dead one
        // has no journaled settle that may be its own (folded first), and the payload is
        // not the one last written; `prev_state` keeps what the entry was, `own` when this
        // process held it.
        let sql = self.db.sql(format!(
            "INSERT INTO rb_ledger (tenant, flow, identity, record_key, state, prev_state, owner, run_id, pending_hash, updated_at) \
             SELECT $1, $2, j.value ->> 0, j.value ->> 1, 'pending', NULL, $3, $4, j.value ->> 2, $5 FROM {} WHERE true \
             ON CONFLICT (tenant, flow, identity) DO UPDATE SET \
               prev_state = CASE WHEN rb_ledger.owner = excluded.owner THEN 'own' ELSE rb_ledger.state END, \
               state = 'pending', owner = excluded.owner, record_key = excluded.record_key, \
               pending_hash = excluded.pending_hash, updated_at = excluded.updated_at \
             WHERE (rb_ledger.state <> 'pending' OR rb_ledger.owner IS NULL OR rb_ledger.owner = excluded.owner \
               OR (NOT EXISTS (SELECT 1 FROM rb_runs r WHERE r.owner = rb_ledger.owner AND r.status = 'running' AND r.heartbeat_at > $7 - {STALE_MS}) \
                   AND NOT EXISTS (SELECT 1 FROM rb_settles s WHERE s.owner = rb_ledger.owner))) \
               AND (excluded.pending_hash IS NULL OR rb_ledger.state <> 'done' \
               OR COALESCE(rb_ledger.done_hash, '') <> excluded.pending_hash) \
             RETURNING identity, prev_state, target_id",
            self.db.json_rows(6)
        ));
        for part in claims.chunks(ROWS_PER_STATEMENT) {
            let rows = json_rows(part.iter().map(|c| (&c.identity, &c.record_key, &c.hash)))?;
            let q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(&scope.tenant)
                .bind(&scope.flow)
                .bind(&self.owner)
                .bind(run_id)
                .bind(now)
                .bind(rows)
                .bind(now);
            for r in q.fetch_all(self.db.pool()).await.map_err(|e| self.err(e))? {
                let was_pending = opt_text(&r, "prev_state").as_deref() == Some("pending");
                won.insert(
                    text(&r, "identity"),
                    Claim::Claimed {
                        was_pending,
                        target_id: opt_text(&r, "target_id"),
                    },
                );
            }
        }
        // The rest are unchanged or held: their entries tell which. A new record's
        // claim needs no read at all.
        let rest: Vec<String> = claims
            .iter()
            .filter(|c| !won.contains_key(&c.identity))
            .map(|c| c.identity.clone())
            .collect();
        let mut entries = std::collections::HashMap::with_capacity(rest.len());
        if !rest.is_empty() {
            for e in self.entries(scope, &rest).await?.into_iter().flatten() {
                entries.insert(e.identity.clone(), e);
            }
        }
        Ok(claims
            .iter()
            .map(|c| {
                if let Some(claim) = won.remove(&c.identity) {
                    return claim;
                }
                match entries.remove(&c.identity) {
                    Some(e)
                        if c.hash.is_some()
                            && e.state == EntryState::Done
                            && e.done_hash == c.hash =>
                    {
                        Claim::Unchanged(e)
                    }
                    _ => Claim::Busy,
                }
            })
            .collect())
    }

    async fn interrupt_dead_runs(&self, tenant: &str, flow: &str) -> StoreResult<()> {
        let now = now_ms();
        let rows = sqlx::query(
            "SELECT run_id, owner, heartbeat_at FROM rb_runs WHERE tenant = $1 AND flow = $2 AND status = 'running'",
        )
        .bind(tenant)
        .bind(flow)
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        for r in rows {
            let (id, owner, beat) = (
                text(&r, "run_id"),
                text(&r, "owner"),
                int(&r, "heartbeat_at"),
            );
            if Self::owner_dead(&owner, beat, now) {
                sqlx::query("UPDATE rb_runs SET status = 'interrupted' WHERE run_id = $1 AND status = 'running' AND owner = $2")
                    .bind(id)
                    .bind(owner)
                    .execute(self.db.pool())
                    .await
                    .map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().replace(':', "_"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn text(row: &AnyRow, col: &str) -> String {
    row.try_get::<String, _>(col).unwrap_or_default()
}

fn opt_text(row: &AnyRow, col: &str) -> Option<String> {
    row.try_get::<Option<String>, _>(col).ok().flatten()
}

fn int(row: &AnyRow, col: &str) -> i64 {
    row.try_get::<i64, _>(col).unwrap_or_default()
}

fn opt_int(row: &AnyRow, col: &str) -> Option<i64> {
    row.try_get::<Option<i64>, _>(col).ok().flatten()
}

fn count(row: &AnyRow, col: &str) -> u64 {
    u64::try_from(int(row, col)).unwrap_or(0)
}

fn i(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn run_of(r: &AnyRow) -> Run {
    Run {
        id: text(r, "run_id"),
        tenant: text(r, "tenant"),
        flow: text(r, "flow"),
        rules_hash: text(r, "rules_hash"),
        input: opt_text(r, "input"),
        status: RunStatus::parse(&text(r, "status")),
        started_at: int(r, "started_at"),
        ended_at: opt_int(r, "ended_at"),
        checkpoint: count(r, "checkpoint"),
        counters: Counters {
            total: count(r, "total"),
            created: count(r, "created"),
            updated: count(r, "updated"),
            unchanged: count(r, "unchanged"),
            skipped: count(r, "skipped"),
            failed: count(r, "failed"),
        },
        resumed: false,
    }
}

fn change_of(r: &AnyRow) -> Change {
    Change {
        run_id: text(r, "run_id"),
        index: count(r, "record_index"),
        tenant: text(r, "tenant"),
        flow: text(r, "flow"),
        record_key: opt_text(r, "record_key"),
        identity: opt_text(r, "identity"),
        action: text(r, "action"),
        provider: text(r, "provider"),
        object: text(r, "object"),
        target_id: opt_text(r, "target_id"),
        http_status: opt_int(r, "http_status").and_then(|s| u16::try_from(s).ok()),
        correlation_id: opt_text(r, "correlation_id"),
        duration_ms: opt_int(r, "duration_ms").and_then(|d| u64::try_from(d).ok()),
        error_kind: opt_text(r, "error_kind"),
        error: opt_text(r, "error"),
        payload: opt_text(r, "payload"),
        source_hash: opt_text(r, "source_hash"),
        at: int(r, "at"),
    }
}

fn dead_letter_of(r: &AnyRow) -> DeadLetter {
    DeadLetter {
        tenant: text(r, "tenant"),
        flow: text(r, "flow"),
        id: text(r, "source_hash"),
        identity: opt_text(r, "identity"),
        record_key: opt_text(r, "record_key"),
        run_id: text(r, "run_id"),
        index: count(r, "record_index"),
        kind: text(r, "kind"),
        reason: text(r, "reason"),
        rule_at: opt_text(r, "rule_at"),
        provider_message: opt_text(r, "provider_message"),
        http_status: opt_int(r, "http_status").and_then(|s| u16::try_from(s).ok()),
        input: r.try_get::<Vec<u8>, _>("input").unwrap_or_default(),
        input_form: InputForm::from_code(int(r, "encrypted")),
        attempts: count(r, "attempts"),
        first_failed_at: int(r, "first_failed_at"),
        last_failed_at: int(r, "last_failed_at"),
    }
}

const RUN_COLUMNS: &str = "run_id, tenant, flow, rules_hash, input, owner, status, started_at, heartbeat_at, ended_at, checkpoint, total, created, updated, unchanged, skipped, failed";

fn new_run_id() -> String {
    format!("r{:x}{:06x}", now_ms(), rand::random::<u32>() & 0xff_ffff)
}

/// Rows as one JSON array of arrays, bound as a single value and read by
/// [`Db::json_rows`]: a batch is one statement of fixed text whatever its size, so it is
/// prepared once per connection and binds one value instead of one per column and row.
fn json_rows<R: Serialize>(rows: impl Iterator<Item = R>) -> StoreResult<String> {
    let mut out = Vec::with_capacity(256);
    out.push(b'[');
    for (k, row) in rows.enumerate() {
        if k > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &row)
            .map_err(|e| StoreError::Invalid(format!("a batch could not be encoded: {e}")))?;
    }
    out.push(b']');
    // serde_json writes UTF-8 only.
    String::from_utf8(out)
        .map_err(|e| StoreError::Invalid(format!("a batch could not be encoded: {e}")))
}

/// A changelog row's own columns, in the order the report's statement reads them.
struct ChangeRow<'a>(&'a Change);

impl Serialize for ChangeRow<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        (
            c.index,
            &c.record_key,
            &c.identity,
            &c.action,
            &c.target_id,
            c.http_status,
            &c.correlation_id,
            c.duration_ms,
            &c.error_kind,
            &c.error,
            &c.payload,
            &c.source_hash,
            c.at,
        )
            .serialize(s)
    }
}

impl Store for SqlStore {
    fn begin_run(&self, start: &RunStart) -> BoxFuture<'_, StoreResult<Run>> {
        let start = start.clone();
        Box::pin(async move {
            self.interrupt_dead_runs(&start.tenant, &start.flow).await?;
            // What earlier runs journaled is in the ledger before this one reads it.
            let scope = Scope {
                tenant: start.tenant.clone(),
                flow: start.flow.clone(),
            };
            self.fold(Fold::Flow(&scope)).await?;
            let now = now_ms();
            if let Some(input) = &start.input {
                let sql = format!(
                    "SELECT {RUN_COLUMNS} FROM rb_runs WHERE tenant = $1 AND flow = $2 AND rules_hash = $3 AND input = $4 AND status = 'interrupted' ORDER BY started_at DESC LIMIT 1"
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&start.tenant)
                    .bind(&start.flow)
                    .bind(&start.rules_hash)
                    .bind(input)
                    .fetch_optional(self.db.pool())
                    .await
                    .map_err(|e| self.err(e))?;
                if let Some(row) = row {
                    let mut run = run_of(&row);
                    // Only one process resumes a run: the one whose update finds it interrupted.
                    let taken = sqlx::query(
                        "UPDATE rb_runs SET status = 'running', owner = $1, heartbeat_at = $2 WHERE run_id = $3 AND status = 'interrupted'",
                    )
                    .bind(&self.owner)
                    .bind(now)
                    .bind(&run.id)
                    .execute(self.db.pool())
                    .await
                    .map_err(|e| self.err(e))?;
                    if taken.rows_affected() == 1 {
                        run.status = RunStatus::Running;
                        run.resumed = true;
                        return Ok(run);
                    }
                }
            }
            let run = Run {
                id: new_run_id(),
                tenant: start.tenant.clone(),
                flow: start.flow.clone(),
                rules_hash: start.rules_hash.clone(),
                input: start.input.clone(),
                status: RunStatus::Running,
                started_at: now,
                ended_at: None,
                checkpoint: 0,
                counters: Counters::default(),
                resumed: false,
            };
            sqlx::query(
                "INSERT INTO rb_runs (run_id, tenant, flow, rules_hash, input, owner, status, started_at, heartbeat_at, ended_at, checkpoint, total, created, updated, unchanged, skipped, failed) VALUES ($1, $2, $3, $4, $5, $6, 'running', $7, $7, NULL, 0, 0, 0, 0, 0, 0, 0)",
            )
            .bind(&run.id)
            .bind(&run.tenant)
            .bind(&run.flow)
            .bind(&run.rules_hash)
            .bind(&run.input)
            .bind(&self.owner)
            .bind(now)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
            Ok(run)
        })
    }

    fn finish_run<'a>(
        &'a self,
        run_id: &'a str,
        c: Counters,
        checkpoint: u64,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.fold_own_if(true).await?;
            let now = now_ms();
            sqlx::query(
                "UPDATE rb_runs SET status = 'done', ended_at = $1, heartbeat_at = $1, checkpoint = $2, total = $3, created = $4, updated = $5, unchanged = $6, skipped = $7, failed = $8 WHERE run_id = $9",
            )
            .bind(now)
            .bind(i(checkpoint))
            .bind(i(c.total))
            .bind(i(c.created))
            .bind(i(c.updated))
            .bind(i(c.unchanged))
            .bind(i(c.skipped))
            .bind(i(c.failed))
            .bind(run_id)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    fn heartbeat<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            sqlx::query("UPDATE rb_runs SET heartbeat_at = $1 WHERE run_id = $2")
                .bind(now_ms())
                .bind(run_id)
                .execute(self.db.pool())
                .await
                .map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    fn entries<'a>(
        &'a self,
        scope: &'a Scope,
        identities: &'a [String],
    ) -> BoxFuture<'a, StoreResult<Vec<Option<Entry>>>> {
        Box::pin(async move {
            self.fold_own_if(
                self.journal
                    .holds_identities(scope, identities.iter().map(String::as_str)),
            )
            .await?;
            let mut by_identity = std::collections::HashMap::with_capacity(identities.len());
            // CROSS JOIN: SQLite keeps the written order, so each JSON value probes the
            // key (left to itself it scans the table and reads the JSON per row).
            let sql = self.db.sql(format!(
                "SELECT l.identity, l.state, l.done_hash, l.target_id, l.outcome, l.run_id \
                 FROM {} CROSS JOIN rb_ledger l WHERE l.tenant = $2 AND l.flow = $3 AND l.identity = j.value",
                self.db.json_values(1)
            ));
            for part in identities.chunks(ROWS_PER_STATEMENT) {
                let q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(json_rows(part.iter())?)
                    .bind(&scope.tenant)
                    .bind(&scope.flow);
                for r in q.fetch_all(self.db.pool()).await.map_err(|e| self.err(e))? {
                    let e = Entry {
                        identity: text(&r, "identity"),
                        state: EntryState::parse(&text(&r, "state")),
                        done_hash: opt_text(&r, "done_hash"),
                        target_id: opt_text(&r, "target_id"),
                        outcome: opt_text(&r, "outcome"),
                        run_id: opt_text(&r, "run_id"),
                    };
                    by_identity.insert(e.identity.clone(), e);
                }
            }
            Ok(identities.iter().map(|id| by_identity.remove(id)).collect())
        })
    }

    fn claim<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
        claims: &'a [Claiming],
    ) -> BoxFuture<'a, StoreResult<Vec<Claim>>> {
        Box::pin(async move {
            self.fold_own_if(
                self.journal
                    .holds_identities(scope, claims.iter().map(|c| c.identity.as_str())),
            )
            .await?;
            let mut results = self.claim_once(scope, run_id, claims).await?;
            let busy: Vec<usize> = (0..results.len())
                .filter(|&n| matches!(results[n], Claim::Busy))
                .collect();
            // A busy entry may be one another process settled in its journal: fold the
            // flow's rows and look again once.
            if !busy.is_empty() && self.fold(Fold::Flow(scope)).await? > 0 {
                let again: Vec<Claiming> = busy.iter().map(|&n| claims[n].clone()).collect();
                let second = self.claim_once(scope, run_id, &again).await?;
                for (n, claim) in busy.into_iter().zip(second) {
                    results[n] = claim;
                }
            }
            Ok(results)
        })
    }

    fn settle<'a>(
        &'a self,
        scope: &'a Scope,
        target: &'a Target,
        run_id: &'a str,
        settled: &'a [Settle],
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            if settled.is_empty() {
                return Ok(());
            }
            self.record_settled(scope, target, run_id, settled).await
        })
    }

    fn ids<'a>(
        &'a self,
        target: &'a Target,
        field: &'a str,
        values: &'a [String],
    ) -> BoxFuture<'a, StoreResult<Vec<Option<String>>>> {
        Box::pin(async move {
            self.fold_own_if(self.journal.holds_ids(target, field, values))
                .await?;
            let mut found = std::collections::HashMap::with_capacity(values.len());
            let sql = self.db.sql(format!(
                "SELECT m.value, m.target_id FROM {} CROSS JOIN rb_idmap m WHERE m.tenant = $2 AND m.provider = $3 \
                 AND m.object = $4 AND m.field = $5 AND m.value = j.value",
                self.db.json_values(1)
            ));
            for part in values.chunks(ROWS_PER_STATEMENT) {
                let q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(json_rows(part.iter())?)
                    .bind(&target.tenant)
                    .bind(&target.provider)
                    .bind(&target.object)
                    .bind(field);
                for r in q.fetch_all(self.db.pool()).await.map_err(|e| self.err(e))? {
                    found.insert(text(&r, "value"), text(&r, "target_id"));
                }
            }
            Ok(values.iter().map(|v| found.get(v).cloned()).collect())
        })
    }

    fn forget_ids<'a>(
        &'a self,
        target: &'a Target,
        target_ids: &'a [String],
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            // A journaled mapping folded later would bring the forgotten id back.
            self.fold_own_if(true).await?;
            let sql = self.db.sql(format!(
                "DELETE FROM rb_idmap WHERE tenant = $1 AND provider = $2 AND object = $3 \
                 AND target_id IN (SELECT j.value FROM {})",
                self.db.json_values(4)
            ));
            for part in target_ids.chunks(ROWS_PER_STATEMENT) {
                sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(&target.tenant)
                    .bind(&target.provider)
                    .bind(&target.object)
                    .bind(json_rows(part.iter())?)
                    .execute(self.db.pool())
                    .await
                    .map_err(|e| self.err(e))?;
            }
            Ok(())
        })
    }

    fn report<'a>(&'a self, report: &'a Report) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            // The columns a run's rows share are bound once per statement.
            let changes_sql = self.db.sql(format!(
                "INSERT INTO rb_changelog (run_id, tenant, flow, provider, object, record_index, record_key, identity, action, target_id, http_status, correlation_id, duration_ms, error_kind, error, payload, source_hash, at) \
                 SELECT $1, $2, $3, $4, $5, CAST(j.value ->> 0 AS BIGINT), j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, CAST(j.value ->> 5 AS BIGINT), \
                   j.value ->> 6, CAST(j.value ->> 7 AS BIGINT), j.value ->> 8, j.value ->> 9, j.value ->> 10, j.value ->> 11, CAST(j.value ->> 12 AS BIGINT) FROM {} WHERE true \
                 ON CONFLICT (run_id, record_index) DO UPDATE SET record_key = excluded.record_key, identity = excluded.identity, action = excluded.action, \
                   target_id = excluded.target_id, http_status = excluded.http_status, correlation_id = excluded.correlation_id, duration_ms = excluded.duration_ms, \
                   error_kind = excluded.error_kind, error = excluded.error, payload = excluded.payload, source_hash = excluded.source_hash, at = excluded.at",
                self.db.json_rows(6)
            ));
            let mut tx = self.db.begin_write().await.map_err(|e| self.err(e))?;
            for same in report.changes.chunk_by(|a, b| {
                (&a.run_id, &a.tenant, &a.flow, &a.provider, &a.object)
                    == (&b.run_id, &b.tenant, &b.flow, &b.provider, &b.object)
            }) {
                let first = &same[0];
                for part in same.chunks(ROWS_PER_STATEMENT) {
                    sqlx::query(sqlx::AssertSqlSafe(changes_sql.as_str()))
                        .bind(&first.run_id)
                        .bind(&first.tenant)
                        .bind(&first.flow)
                        .bind(&first.provider)
                        .bind(&first.object)
                        .bind(json_rows(part.iter().map(ChangeRow))?)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                }
            }
            // Successes clear their dead letters, by input line or by identity: one
            // statement per chunk, not one per record, and none when the flow has none.
            let any_dead = sqlx::query(
                "SELECT 1 AS one FROM rb_dead_letters WHERE tenant = $1 AND flow = $2 LIMIT 1",
            )
            .bind(&report.scope.tenant)
            .bind(&report.scope.flow)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .is_some();
            let hashes: Vec<&str> = report.cleared.iter().map(|(h, _)| h.as_str()).collect();
            let identities: Vec<&str> = report
                .cleared
                .iter()
                .filter_map(|(_, id)| id.as_deref())
                .collect();
            for (column, values) in [("source_hash", hashes), ("identity", identities)] {
                if !any_dead {
                    break;
                }
                let sql = self.db.sql(format!(
                    "DELETE FROM rb_dead_letters WHERE tenant = $1 AND flow = $2 AND {column} IN (SELECT j.value FROM {})",
                    self.db.json_values(3)
                ));
                for part in values.chunks(ROWS_PER_STATEMENT) {
                    sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(&report.scope.tenant)
                        .bind(&report.scope.flow)
                        .bind(json_rows(part.iter())?)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                }
            }
            for f in &report.failures {
                let c = &f.change;
                let Some(hash) = &c.source_hash else { continue };
                sqlx::query(
                    "INSERT INTO rb_dead_letters (tenant, flow, source_hash, identity, record_key, run_id, record_index, kind, reason, rule_at, provider_message, http_status, input, encrypted, attempts, first_failed_at, last_failed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, $15, $15) \
                     ON CONFLICT (tenant, flow, source_hash) DO UPDATE SET identity = excluded.identity, record_key = excluded.record_key, \
                       attempts = rb_dead_letters.attempts + CASE WHEN rb_dead_letters.run_id = excluded.run_id AND rb_dead_letters.record_index = excluded.record_index THEN 0 ELSE 1 END, \
                       run_id = excluded.run_id, record_index = excluded.record_index, kind = excluded.kind, reason = excluded.reason, rule_at = excluded.rule_at, \
                       provider_message = excluded.provider_message, http_status = excluded.http_status, input = excluded.input, encrypted = excluded.encrypted, \
                       last_failed_at = excluded.last_failed_at",
                )
                .bind(&report.scope.tenant)
                .bind(&report.scope.flow)
                .bind(hash)
                .bind(&c.identity)
                .bind(&c.record_key)
                .bind(&c.run_id)
                .bind(i(c.index))
                .bind(c.error_kind.as_deref().unwrap_or("failed"))
                .bind(c.error.as_deref().unwrap_or(""))
                .bind(&f.rule_at)
                .bind(&f.provider_message)
                .bind(c.http_status.map(i64::from))
                .bind(f.input.clone())
                .bind(f.input_form.code())
                .bind(c.at)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
            let k = &report.counters;
            sqlx::query(
                "UPDATE rb_runs SET heartbeat_at = $1, checkpoint = $2, total = $3, created = $4, updated = $5, unchanged = $6, skipped = $7, failed = $8 WHERE run_id = $9",
            )
            .bind(now_ms())
            .bind(i(report.checkpoint))
            .bind(i(k.total))
            .bind(i(k.created))
            .bind(i(k.updated))
            .bind(i(k.unchanged))
            .bind(i(k.skipped))
            .bind(i(k.failed))
            .bind(&report.run_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            tx.commit().await.map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    fn changes<'a>(&'a self, f: &'a ChangeFilter) -> BoxFuture<'a, StoreResult<Vec<Change>>> {
        Box::pin(async move {
            let mut sql = String::from("SELECT * FROM rb_changelog WHERE tenant = $1");
            let mut n = 1;
            let mut next = |col: &str, sql: &mut String| {
                n += 1;
                sql.push_str(&format!(" AND {col} ${n}"));
            };
            if f.flow.is_some() {
                next("flow =", &mut sql);
            }
            if f.record_key.is_some() {
                next("record_key =", &mut sql);
            }
            if f.action.is_some() {
                next("action =", &mut sql);
            }
            if f.run_id.is_some() {
                next("run_id =", &mut sql);
            }
            if f.since.is_some() {
                next("at >=", &mut sql);
            }
            sql.push_str(" ORDER BY at, run_id, record_index");
            if let Some(limit) = f.limit {
                sql.push_str(&format!(" LIMIT {limit}"));
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&f.tenant);
            for v in [&f.flow, &f.record_key, &f.action, &f.run_id]
                .into_iter()
                .flatten()
            {
                q = q.bind(v);
            }
            if let Some(since) = f.since {
                q = q.bind(since);
            }
            let rows = q.fetch_all(self.db.pool()).await.map_err(|e| self.err(e))?;
            Ok(rows.iter().map(change_of).collect())
        })
    }

    fn runs<'a>(&'a self, f: &'a RunFilter) -> BoxFuture<'a, StoreResult<Vec<Run>>> {
        Box::pin(async move {
            let mut sql = format!("SELECT {RUN_COLUMNS} FROM rb_runs WHERE tenant = $1");
            if f.flow.is_some() {
                sql.push_str(" AND flow = $2");
            }
            sql.push_str(" ORDER BY started_at DESC, run_id DESC");
            if let Some(limit) = f.limit {
                sql.push_str(&format!(" LIMIT {limit}"));
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&f.tenant);
            if let Some(flow) = &f.flow {
                q = q.bind(flow);
            }
            let rows = q.fetch_all(self.db.pool()).await.map_err(|e| self.err(e))?;
            Ok(rows.iter().map(run_of).collect())
        })
    }

    fn run<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Option<Run>>> {
        Box::pin(async move {
            let sql = format!("SELECT {RUN_COLUMNS} FROM rb_runs WHERE run_id = $1");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(run_id)
                .fetch_optional(self.db.pool())
                .await
                .map_err(|e| self.err(e))?;
            Ok(row.as_ref().map(run_of))
        })
    }

    fn dead_letters<'a>(
        &'a self,
        tenant: &'a str,
        flow: Option<&'a str>,
    ) -> BoxFuture<'a, StoreResult<Vec<DeadLetter>>> {
        Box::pin(async move {
            let rows = match flow {
                Some(flow) => sqlx::query(
                    "SELECT * FROM rb_dead_letters WHERE tenant = $1 AND flow = $2 ORDER BY first_failed_at, source_hash",
                )
                .bind(tenant)
                .bind(flow)
                .fetch_all(self.db.pool())
                .await,
                None => sqlx::query(
                    "SELECT * FROM rb_dead_letters WHERE tenant = $1 ORDER BY first_failed_at, source_hash",
                )
                .bind(tenant)
                .fetch_all(self.db.pool())
                .await,
            }
            .map_err(|e| self.err(e))?;
            Ok(rows.iter().map(dead_letter_of).collect())
        })
    }

    fn drop_dead_letter<'a>(
        &'a self,
        tenant: &'a str,
        flow: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(async move {
            let r = sqlx::query(
                "DELETE FROM rb_dead_letters WHERE tenant = $1 AND flow = $2 AND source_hash = $3",
            )
            .bind(tenant)
            .bind(flow)
            .bind(id)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn prune<'a>(&'a self, retention: &'a Retention) -> BoxFuture<'a, StoreResult<Pruned>> {
        Box::pin(async move {
            self.fold_own_if(true).await?;
            let now = now_ms();
            let mut pruned = Pruned::default();
            if let Some(age) = retention.changelog_ms {
                let r = sqlx::query("DELETE FROM rb_changelog WHERE at < $1")
                    .bind(now - age)
                    .execute(self.db.pool())
                    .await
                    .map_err(|e| self.err(e))?;
                pruned.changelog = r.rows_affected();
                let r = sqlx::query(
                    "DELETE FROM rb_runs WHERE status <> 'running' AND heartbeat_at < $1",
                )
                .bind(now - age)
                .execute(self.db.pool())
                .await
                .map_err(|e| self.err(e))?;
                pruned.runs = r.rows_affected();
            }
            if let Some(age) = retention.ledger_ms {
                // Only settled successes: a pending entry guards a write of unknown result.
                let r =
                    sqlx::query("DELETE FROM rb_ledger WHERE state = 'done' AND updated_at < $1")
                        .bind(now - age)
                        .execute(self.db.pool())
                        .await
                        .map_err(|e| self.err(e))?;
                pruned.ledger = r.rows_affected();
            }
            Ok(pruned)
        })
    }
}

impl SqlStore {
    /// Which backend this store is on.
    pub fn backend(&self) -> Backend {
        self.db.backend()
    }
}
