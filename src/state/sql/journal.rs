//! The settle journal: a group's settled outcomes appended as one row (`rb_settles`) and
//! folded into the ledger and the id map later, many groups in one transaction. SQLite
//! stores journal; PostgreSQL ones write settles at once ([`SqlStore::record_settled`]
//! says why), and the same folds find nothing to apply there.
//!
//! Written straight into the ledger and the id map, a group of records with identities in
//! no order changes one b-tree page per record and table, and every commit writes each page
//! it changed again. Appended, a group's outcomes fill a few pages at the end of one table;
//! a fold writes each ledger and id-map page once for all the groups it applies.
//!
//! Reads stay exact because at most one unfolded row holds a given identity, so a fold
//! applies facts that no later write has superseded, whoever folds and in whatever order:
//! - a store folds its own rows before it reads or claims a key it journaled ([`Journal`]
//!   remembers which);
//! - an entry another process journaled is still `pending` under that process in the
//!   ledger: a claim of it finds it busy, folds the flow's rows and claims again;
//! - a claim does not take over a dead process's pending entry while rows of that process
//!   are unfolded (the same fold comes first).

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use super::*;

/// A store folds its own rows once they hold this many records, which bounds the journal
/// and the keys kept for it (16 bytes each).
const FOLD_AFTER: usize = 50_000;

/// This store's side of the journal.
#[derive(Debug, Default)]
pub(super) struct Journal {
    /// Held while this store appends or folds, so a fold sees every row appended before it.
    lock: tokio::sync::Mutex<()>,
    next_seq: AtomicI64,
    /// Hashes of the ledger and id-map keys of this store's unfolded rows. A hash shared by
    /// another key only costs a fold that was not needed.
    keys: std::sync::Mutex<HashSet<u64>>,
    hasher: RandomState,
    /// Records in this store's unfolded rows.
    records: AtomicUsize,
}

/// Whose rows a fold applies.
pub(super) enum Fold<'a> {
    /// This store's own.
    Own,
    /// Every process's rows of one flow.
    Flow(&'a Scope),
    /// All rows.
    All,
}

impl Journal {
    fn ledger_key(&self, scope: &Scope, identity: &str) -> u64 {
        self.hasher
            .hash_one((0u8, &scope.tenant, &scope.flow, identity))
    }

    fn id_key(&self, target: &Target, field: &str, value: &str) -> u64 {
        self.hasher.hash_one((
            1u8,
            &target.tenant,
            &target.provider,
            &target.object,
            field,
            value,
        ))
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether any of these identities may be in this store's unfolded rows.
    pub(super) fn holds_identities<'a>(
        &self,
        scope: &Scope,
        identities: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        if self.records.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let keys = self.keys();
        identities
            .into_iter()
            .any(|id| keys.contains(&self.ledger_key(scope, id)))
    }

    /// Whether any of these id-map keys may be in this store's unfolded rows.
    pub(super) fn holds_ids(&self, target: &Target, field: &str, values: &[String]) -> bool {
        if self.records.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let keys = self.keys();
        values
            .iter()
            .any(|v| keys.contains(&self.id_key(target, field, v)))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.records.load(Ordering::Relaxed) == 0
    }
}

/// The ledger's upsert of settled entries: `$1` tenant, `$2` flow, `$3` run, `$4` time,
/// `$5` the rows of [`ledger_rows`].
fn ledger_sql(db: &Db) -> String {
    db.sql(format!(
        "INSERT INTO rb_ledger (tenant, flow, identity, record_key, state, owner, done_hash, target_id, outcome, run_id, updated_at) \
         SELECT $1, $2, j.value ->> 0, j.value ->> 1, j.value ->> 2, NULL, j.value ->> 3, j.value ->> 4, j.value ->> 5, $3, $4 FROM {} WHERE true \
         ON CONFLICT (tenant, flow, identity) DO UPDATE SET \
           state = excluded.state, owner = NULL, prev_state = NULL, pending_hash = NULL, record_key = excluded.record_key, \
           done_hash = COALESCE(excluded.done_hash, rb_ledger.done_hash), \
           target_id = COALESCE(excluded.target_id, rb_ledger.target_id), \
           outcome = excluded.outcome, run_id = excluded.run_id, updated_at = excluded.updated_at",
        db.json_rows(5)
    ))
}

/// The id map's upsert: `$1` tenant, `$2` provider, `$3` object, `$4` time, `$5` the rows
/// of [`id_rows`]. A mapping that holds already (an update of a known record) is left
/// alone: rewriting it would write its page again for nothing.
fn ids_sql(db: &Db) -> String {
    db.sql(format!(
        "INSERT INTO rb_idmap (tenant, provider, object, field, value, target_id, updated_at) \
         SELECT $1, $2, $3, j.value ->> 0, j.value ->> 1, j.value ->> 2, $4 FROM {} WHERE true \
         ON CONFLICT (tenant, provider, object, field, value) DO UPDATE SET target_id = excluded.target_id, updated_at = excluded.updated_at \
         WHERE rb_idmap.target_id <> excluded.target_id",
        db.json_rows(5)
    ))
}

fn ledger_rows(settled: &[Settle]) -> StoreResult<String> {
    json_rows(settled.iter().map(|s| {
        let state = if s.outcome == "failed" {
            EntryState::Failed
        } else {
            EntryState::Done
        };
        (
            &s.identity,
            &s.record_key,
            state.as_str(),
            &s.hash,
            &s.target_id,
            s.outcome,
        )
    }))
}

/// (field, value, target id) for each match key of each settled write with a target id.
fn id_rows(settled: &[Settle]) -> StoreResult<String> {
    json_rows(
        settled
            .iter()
            .filter_map(|s| Some((s.target_id.as_deref()?, &s.ids)))
            .flat_map(|(id, pairs)| pairs.iter().map(move |(f, v)| (f, v, id))),
    )
}

/// Where a batch of settled rows belongs, and when it was settled.
struct Applied<'a> {
    tenant: &'a str,
    flow: &'a str,
    provider: &'a str,
    object: &'a str,
    run_id: &'a str,
    at: i64,
}

impl SqlStore {
    /// Writes settled rows ([`ledger_rows`], [`id_rows`]) into the ledger and the id map.
    async fn apply(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        to: &Applied<'_>,
        ledger_rows: String,
        id_rows: String,
    ) -> StoreResult<()> {
        sqlx::query(sqlx::AssertSqlSafe(ledger_sql(&self.db)))
            .bind(to.tenant)
            .bind(to.flow)
            .bind(to.run_id)
            .bind(to.at)
            .bind(ledger_rows)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        if id_rows != "[]" {
            sqlx::query(sqlx::AssertSqlSafe(ids_sql(&self.db)))
                .bind(to.tenant)
                .bind(to.provider)
                .bind(to.object)
                .bind(to.at)
                .bind(id_rows)
                .execute(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Records settled outcomes: journaled on SQLite, where a commit writes every b-tree
    /// page it changed; written at once on PostgreSQL, whose log holds the rows changed
    /// rather than their pages, so a fold would only move the same work to the run's end.
    pub(super) async fn record_settled(
        &self,
        scope: &Scope,
        target: &Target,
        run_id: &str,
        settled: &[Settle],
    ) -> StoreResult<()> {
        if self.db.backend() == Backend::Sqlite {
            return self.journal_settled(scope, target, run_id, settled).await;
        }
        let to = Applied {
            tenant: &scope.tenant,
            flow: &scope.flow,
            provider: &target.provider,
            object: &target.object,
            run_id,
            at: now_ms(),
        };
        let mut tx = self.db.begin_write().await.map_err(|e| self.err(e))?;
        for part in settled.chunks(ROWS_PER_STATEMENT) {
            self.apply(&mut tx, &to, ledger_rows(part)?, id_rows(part)?)
                .await?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Appends settled outcomes to the journal, one row per chunk, in one transaction.
    async fn journal_settled(
        &self,
        scope: &Scope,
        target: &Target,
        run_id: &str,
        settled: &[Settle],
    ) -> StoreResult<()> {
        let journal = &self.journal;
        let now = now_ms();
        {
            let _appending = journal.lock.lock().await;
            let mut tx = self.db.begin_write().await.map_err(|e| self.err(e))?;
            for part in settled.chunks(ROWS_PER_STATEMENT) {
                let seq = journal.next_seq.fetch_add(1, Ordering::Relaxed);
                sqlx::query(
                    "INSERT INTO rb_settles (owner, seq, tenant, flow, provider, object, run_id, at, ledger_rows, id_rows) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&self.owner)
                .bind(seq)
                .bind(&scope.tenant)
                .bind(&scope.flow)
                .bind(&target.provider)
                .bind(&target.object)
                .bind(run_id)
                .bind(now)
                .bind(ledger_rows(part)?)
                .bind(id_rows(part)?)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
            // Known before the rows are visible: a key kept for rows that did not commit
            // only costs a fold.
            {
                let mut keys = journal.keys();
                for s in settled {
                    keys.insert(journal.ledger_key(scope, &s.identity));
                    if s.target_id.is_some() {
                        for (f, v) in &s.ids {
                            keys.insert(journal.id_key(target, f, v));
                        }
                    }
                }
            }
            journal.records.fetch_add(settled.len(), Ordering::Relaxed);
            tx.commit().await.map_err(|e| self.err(e))?;
        }
        if journal.records.load(Ordering::Relaxed) >= FOLD_AFTER {
            self.fold(Fold::Own).await?;
        }
        Ok(())
    }

    /// Applies journaled rows to the ledger and the id map and removes them, in one
    /// transaction; returns how many rows it applied.
    pub(super) async fn fold(&self, which: Fold<'_>) -> StoreResult<usize> {
        let journal = &self.journal;
        let _folding = journal.lock.lock().await;
        let filter = match which {
            Fold::Own => "owner = $1",
            Fold::Flow(_) => "tenant = $1 AND flow = $2",
            Fold::All => "true",
        };
        let returning =
            "owner, seq, tenant, flow, provider, object, run_id, at, ledger_rows, id_rows";
        // PostgreSQL: rows taken in key order, so two folds at once wait for each other
        // instead of each holding rows the other needs.
        let take = match self.db.backend() {
            Backend::Sqlite => {
                format!("DELETE FROM rb_settles WHERE {filter} RETURNING {returning}")
            }
            Backend::Postgres => format!(
                "DELETE FROM rb_settles WHERE (owner, seq) IN \
                 (SELECT owner, seq FROM rb_settles WHERE {filter} ORDER BY owner, seq FOR UPDATE) \
                 RETURNING {returning}"
            ),
        };
        let mut q = sqlx::query(sqlx::AssertSqlSafe(take));
        match which {
            Fold::Own => q = q.bind(&self.owner),
            Fold::Flow(scope) => q = q.bind(&scope.tenant).bind(&scope.flow),
            Fold::All => {}
        }
        let started = std::time::Instant::now();
        let mut tx = self.db.begin_write().await.map_err(|e| self.err(e))?;
        let mut rows = q.fetch_all(&mut *tx).await.map_err(|e| self.err(e))?;
        rows.sort_by_cached_key(|r| (text(r, "owner"), int(r, "seq")));
        for r in &rows {
            let applied = Applied {
                tenant: &text(r, "tenant"),
                flow: &text(r, "flow"),
                provider: &text(r, "provider"),
                object: &text(r, "object"),
                run_id: &text(r, "run_id"),
                at: int(r, "at"),
            };
            self.apply(
                &mut tx,
                &applied,
                text(r, "ledger_rows"),
                text(r, "id_rows"),
            )
            .await?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        if !rows.is_empty() {
            tracing::debug!(
                rows = rows.len(),
                ms = started.elapsed().as_millis() as u64,
                "settle journal folded"
            );
        }
        // A flow's fold may leave rows of this store's other flows: its keys stay (only a
        // later fold that was not needed).
        if matches!(which, Fold::Own | Fold::All) {
            journal.keys().clear();
            journal.records.store(0, Ordering::Relaxed);
        }
        Ok(rows.len())
    }

    /// Folds this store's own rows if any are unfolded.
    pub(super) async fn fold_own_if(&self, needed: bool) -> StoreResult<()> {
        if needed && !self.journal.is_empty() {
            self.fold(Fold::Own).await?;
        }
        Ok(())
    }

    /// Applies every process's journaled settles to the ledger and the id map. Runs do this
    /// as they go; a reader that inspects the tables directly calls it first.
    pub async fn fold_journal(&self) -> StoreResult<usize> {
        self.fold(Fold::All).await
    }
}
