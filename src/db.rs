//! The SQL layer under the state store and the SQL table connector: one connection pool over
//! an SQLite file (the embedded default) or a PostgreSQL server (state shared by several
//! instances), with what differs between the two kept here.
//!
//! Statements are written once, with `$1`-style placeholders, which both backends accept.
//! Large statements go through [`Db::sql`]: SQLite looks a numbered parameter up by a linear
//! scan of the statement's names, once when it is prepared and once per value bound, so a
//! statement of thousands of `$n` costs time quadratic in their number; anonymous `?` costs none.
//! Batches are bound as one JSON value and read as a table ([`Db::json_rows`]): one
//! statement text per batch operation, prepared once per connection, whatever the batch's size.
//! Errors name the database (the file, or the URL without its password) and say what to do.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// Which database a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a database is: an SQLite file or a PostgreSQL URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Url(String),
}

impl Location {
    /// `postgres://…` / `postgresql://…` is a server; `sqlite://PATH`, `sqlite:PATH` or a
    /// plain path is a file.
    pub fn parse(spec: &str) -> Location {
        if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
            return Location::Url(spec.to_string());
        }
        let path = spec
            .strip_prefix("sqlite://")
            .or_else(|| spec.strip_prefix("sqlite:"))
            .unwrap_or(spec);
        Location::File(PathBuf::from(path))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Location::File(_) => Backend::Sqlite,
            Location::Url(_) => Backend::Postgres,
        }
    }
}

impl std::fmt::Display for Location {
    /// The file, or the URL with its password replaced: safe to print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Url(u) => match url::Url::parse(u) {
                Ok(mut url) => {
                    if url.password().is_some() {
                        let _ = url.set_password(Some("***"));
                    }
                    write!(f, "{url}")
                }
                Err(_) => f.write_str("(a PostgreSQL URL that does not parse)"),
            },
        }
    }
}

/// Why a database could not be used. Every variant names the database and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "{location} is not a rulebridge database (it is corrupt, or another kind of file); nothing was changed: move it aside to start with a new one, or point --state at another file"
    )]
    NotADatabase { location: String },
    #[error(
        "{location} is locked by another process; wait for it to finish, or give this run its own --state"
    )]
    Locked { location: String },
    #[error(
        "{location} is read-only; make it writable (the store records every write), or point --state at a writable file"
    )]
    ReadOnly { location: String },
    #[error(
        "{location} was written by a newer rulebridge (schema version {found}; this one knows up to {known}); upgrade rulebridge, or point --state at another file"
    )]
    NewerSchema {
        location: String,
        found: i64,
        known: i64,
    },
    #[error("cannot open {location}: {message}")]
    Open { location: String, message: String },
    #[error("{location}: {message}")]
    Query { location: String, message: String },
}

/// A pool of connections to one database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    location: Location,
}

/// How long a statement waits for another process's write lock before it fails as locked.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Db {
    /// Opens (creating an SQLite file and its directory when missing) and checks the
    /// database is usable; applies no migrations.
    pub async fn open(location: Location) -> Result<Db, DbError> {
        Self::open_with(location, BUSY_TIMEOUT).await
    }

    /// [`Db::open`], waiting at most `busy_timeout` for another process's lock.
    pub async fn open_with(location: Location, busy_timeout: Duration) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let shown = location.to_string();
        let url = match &location {
            Location::File(path) => {
                check_file(path, &shown)?;
                sqlite_url(path)
            }
            Location::Url(u) => u.clone(),
        };
        let backend = location.backend();
        // One connection first: a pool retries a failing connect until its timeout and
        // hides why; this says it at once (corrupt file, server down, bad password).
        {
            use sqlx::Connection;
            let mut conn = sqlx::AnyConnection::connect(&url)
                .await
                .map_err(|e| classify(&shown, &e))?;
            prepare(&mut conn, backend, busy_timeout)
                .await
                .map_err(|e| classify(&shown, &e))?;
            if backend == Backend::Sqlite {
                // A file that passed the header check can still be damaged past it.
                sqlx::query("SELECT count(*) FROM sqlite_master")
                    .execute(&mut conn)
                    .await
                    .map_err(|e| classify(&shown, &e))?;
            }
            let _ = conn.close().await;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // One writer at a time in SQLite anyway; a few readers beside it.
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(busy_timeout + Duration::from_secs(5))
            .after_connect(move |conn, _| Box::pin(prepare(conn, backend, busy_timeout)))
            .connect(&url)
            .await
            .map_err(|e| classify(&shown, &e))?;
        Ok(Db {
            pool,
            backend,
            location,
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`, waiting for another writer as any statement does): a transaction
    /// that read first and wrote later would fail as locked, without waiting, whenever
    /// another connection committed in between.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// A database error as a [`DbError`] naming this database.
    pub fn error(&self, e: &sqlx::Error) -> DbError {
        classify(&self.location.to_string(), e)
    }

    /// Applies `migrations` (version, description, SQL) not yet applied, in order, in a
    /// table of its own per owner (`table`). A database with a version this build does not
    /// know was written by a newer build: an error, and nothing is changed.
    pub async fn migrate(
        &self,
        table: &'static str,
        migrations: &[(i64, &'static str, &'static str)],
    ) -> Result<(), DbError> {
        let owned = migrations
            .iter()
            .map(|&(v, d, sql)| (v, d.to_string(), sql.to_string()))
            .collect();
        self.migrate_owned(table.to_string(), owned).await
    }

    /// [`Db::migrate`] for migrations read at run time (a SQL provider's `migrations:`
    /// files), recorded in the table `table`.
    pub async fn migrate_owned(
        &self,
        table: String,
        migrations: Vec<(i64, String, String)>,
    ) -> Result<(), DbError> {
        let known = migrations.iter().map(|m| m.0).max().unwrap_or(0);
        let mut migrator = Migrator::with_migrations(
            migrations
                .into_iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        version,
                        description.into(),
                        MigrationType::Simple,
                        sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(sql)),
                        false,
                    )
                })
                .collect(),
        );
        migrator.dangerous_set_table_name(table);
        // PostgreSQL's migrations hold an advisory lock; SQLite's take none, so two processes
        // opening a new file at once can both apply a migration, and the one that commits
        // second fails (its version is recorded already, or its table exists). Each
        // migration is one transaction, so the loser changed nothing: it runs the migrator
        // again, which now skips what the other applied. A migration that fails on its own
        // fails the same way again and is reported.
        let mut attempt = 0u64;
        let result = loop {
            let result = migrator.run(&self.pool).await;
            let raced = matches!(
                &result,
                Err(sqlx::migrate::MigrateError::Execute(_)
                    | sqlx::migrate::MigrateError::ExecuteMigration(..))
            );
            if raced && self.backend == Backend::Sqlite && attempt < 3 {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
                continue;
            }
            break result;
        };
        result.map_err(|e| match e {
            sqlx::migrate::MigrateError::VersionMissing(found) => DbError::NewerSchema {
                location: self.location.to_string(),
                found,
                known,
            },
            sqlx::migrate::MigrateError::Execute(e)
            | sqlx::migrate::MigrateError::ExecuteMigration(e, _) => self.error(&e),
            other => DbError::Query {
                location: self.location.to_string(),
                message: other.to_string(),
            },
        })
    }

    /// `sql` as this backend runs it best. For SQLite, a statement whose placeholders are
    /// `$1, $2, …, $n` in that order, each once, is given anonymous `?` instead (bound in
    /// the same order; see the module docs). Anything else is returned as written.
    ///
    /// ```
    /// # use rulebridge::db::{Backend, Db};
    /// assert_eq!(Db::sql_for(Backend::Sqlite, "VALUES ($1,$2),($3,$4)"), "VALUES (?,?),(?,?)");
    /// assert_eq!(Db::sql_for(Backend::Sqlite, "WHERE a = $1 OR b = $1"), "WHERE a = $1 OR b = $1");
    /// assert_eq!(Db::sql_for(Backend::Postgres, "VALUES ($1,$2)"), "VALUES ($1,$2)");
    /// ```
    pub fn sql(&self, sql: String) -> String {
        match Self::sql_for(self.backend, &sql) {
            std::borrow::Cow::Borrowed(_) => sql,
            std::borrow::Cow::Owned(s) => s,
        }
    }

    /// [`Db::sql`] for a backend.
    pub fn sql_for(backend: Backend, sql: &str) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        if backend != Backend::Sqlite || !sql.contains('$') {
            return Cow::Borrowed(sql);
        }
        let bytes = sql.as_bytes();
        let mut out = String::with_capacity(sql.len());
        let (mut expect, mut copied, mut i) = (1usize, 0usize, 0usize);
        let mut in_literal = false;
        while i < bytes.len() {
            match bytes[i] {
                b'\'' => in_literal = !in_literal,
                b'$' if !in_literal => {
                    let digits = bytes[i + 1..]
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                    if digits == 0 {
                        return Cow::Borrowed(sql);
                    }
                    let n: usize = match sql[i + 1..i + 1 + digits].parse() {
                        Ok(n) => n,
                        Err(_) => return Cow::Borrowed(sql),
                    };
                    if n != expect {
                        return Cow::Borrowed(sql);
                    }
                    out.push_str(&sql[copied..i]);
                    out.push('?');
                    expect += 1;
                    i += 1 + digits;
                    copied = i;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        out.push_str(&sql[copied..]);
        Cow::Owned(out)
    }

    /// A table `j` of the rows of a JSON array of arrays bound at placeholder `$n` (as
    /// `FROM {json_rows}`): a row's `k`th value is `j.value ->> k`, as text (`CAST(… AS
    /// BIGINT)` for a number), SQL `NULL` for JSON `null`. A batch written this way is one
    /// statement of fixed text, prepared once, binding one value however many rows it has.
    ///
    /// ```
    /// # use rulebridge::db::{Backend, Db};
    /// assert_eq!(Db::json_rows_for(Backend::Sqlite, 3), "jsonb_each($3) AS j");
    /// assert_eq!(
    ///     Db::json_rows_for(Backend::Postgres, 3),
    ///     "jsonb_array_elements(CAST($3 AS jsonb)) AS j"
    /// );
    /// ```
    pub fn json_rows(&self, n: usize) -> String {
        Self::json_rows_for(self.backend, n)
    }

    /// [`Db::json_rows`] for a backend.
    pub fn json_rows_for(backend: Backend, n: usize) -> String {
        match backend {
            Backend::Sqlite => format!("jsonb_each(${n}) AS j"),
            Backend::Postgres => format!("jsonb_array_elements(CAST(${n} AS jsonb)) AS j"),
        }
    }

    /// A table `j` of the strings of a JSON array bound at placeholder `$n`, each as the
    /// text `j.value` (see [`Db::json_rows`]).
    ///
    /// ```
    /// # use rulebridge::db::{Backend, Db};
    /// assert_eq!(Db::json_values_for(Backend::Sqlite, 1), "json_each($1) AS j");
    /// ```
    pub fn json_values(&self, n: usize) -> String {
        Self::json_values_for(self.backend, n)
    }

    /// [`Db::json_values`] for a backend.
    pub fn json_values_for(backend: Backend, n: usize) -> String {
        match backend {
            Backend::Sqlite => format!("json_each(${n}) AS j"),
            Backend::Postgres => {
                format!("jsonb_array_elements_text(CAST(${n} AS jsonb)) AS j(value)")
            }
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Per-connection settings.
async fn prepare(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    busy_timeout: Duration,
) -> Result<(), sqlx::Error> {
    use sqlx::Executor;
    if backend == Backend::Sqlite {
        // WAL: readers do not block the writer; NORMAL is durable at each checkpoint in WAL
        // mode and much faster than FULL.
        let ms = busy_timeout.as_millis();
        conn.execute(sqlx::AssertSqlSafe(format!("PRAGMA busy_timeout = {ms}")))
            .await?;
        // Changing the journal mode does not wait on the busy timeout: another process
        // setting up the same new file holds it for a moment, so wait here as long.
        let started = std::time::Instant::now();
        loop {
            match conn.execute("PRAGMA journal_mode = WAL").await {
                Err(e)
                    if matches!(classify("", &e), DbError::Locked { .. })
                        && started.elapsed() < busy_timeout =>
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                r => {
                    r?;
                    break;
                }
            }
        }
        conn.execute("PRAGMA synchronous = NORMAL").await?;
        // Each commit appends every page it changed to the WAL, and a checkpoint copies the
        // WAL's pages back into the file. The ledger's keys (e-mails, ids) land on random
        // pages, so SQLite's default of a checkpoint every 1,000 pages copies nearly every
        // page written; at 16,384 the pages rewritten between checkpoints are copied once.
        // The WAL left on disk after a checkpoint is cut back to the same 64 MiB.
        conn.execute("PRAGMA wal_autocheckpoint = 16384").await?;
        conn.execute("PRAGMA journal_size_limit = 67108864").await?;
        // For the same reason most lookups miss SQLite's default 2 MiB of cached pages and
        // cost a read from the file; 16 MiB per connection (taken as pages are read).
        conn.execute("PRAGMA cache_size = -16384").await?;
        // A statement inside a transaction (a settle's ledger and id-map upserts, a report's
        // changelog rows) keeps a journal of the pages it changes, to undo it alone on a
        // constraint error. SQLite spills that journal to a temporary file past 64 KiB, and
        // a batch of random keys changes a page per row: hundreds of `pwrite`s to a file
        // that is deleted unread. In memory it costs at most the pages of one statement.
        conn.execute("PRAGMA temp_store = MEMORY").await?;
    }
    Ok(())
}

/// The URL sqlx opens an SQLite file by: the path percent-encoded, created when missing.
fn sqlite_url(path: &Path) -> String {
    use std::fmt::Write;
    let mut url = String::from("sqlite://");
    for b in path.to_string_lossy().bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' | b'~' => {
                url.push(char::from(b))
            }
            _ => {
                let _ = write!(url, "%{b:02X}");
            }
        }
    }
    url.push_str("?mode=rwc");
    url
}

/// Refuses, before SQLite sees it, a file that is not an SQLite database or cannot be
/// written, and creates the directory of a new one.
fn check_file(path: &Path, shown: &str) -> Result<(), DbError> {
    use std::io::Read;
    let open_error = |message: String| DbError::Open {
        location: shown.to_string(),
        message,
    };
    match std::fs::metadata(path) {
        Ok(meta) => {
            if meta.is_dir() {
                return Err(open_error(
                    "it is a directory; give the path of a file".into(),
                ));
            }
            let mut header = [0u8; 16];
            let mut file = std::fs::File::open(path).map_err(|e| open_error(e.to_string()))?;
            let n = file
                .read(&mut header)
                .map_err(|e| open_error(e.to_string()))?;
            // An empty file is a new database; anything else must start with SQLite's header.
            if n > 0 && (n < 16 || &header != b"SQLite format 3\0") {
                return Err(DbError::NotADatabase {
                    location: shown.to_string(),
                });
            }
            if meta.permissions().readonly() {
                return Err(DbError::ReadOnly {
                    location: shown.to_string(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
                .map_err(|e| open_error(format!("cannot create {}: {e}", dir.display()))),
            _ => Ok(()),
        },
        Err(e) => Err(open_error(e.to_string())),
    }
}

/// Sorts a driver error into what an operator can act on.
fn classify(location: &str, e: &sqlx::Error) -> DbError {
    let location = location.to_string();
    if let sqlx::Error::Database(d) = e {
        let code = d.code().map(|c| c.to_string()).unwrap_or_default();
        let message = d.message().to_lowercase();
        // SQLite result codes (primary code in the low byte) and PostgreSQL SQLSTATEs.
        let primary = code.parse::<i64>().ok().map(|c| c & 0xff);
        match primary {
            Some(5) | Some(6) => return DbError::Locked { location },
            Some(8) => return DbError::ReadOnly { location },
            Some(11) | Some(26) => return DbError::NotADatabase { location },
            _ => {}
        }
        if code == "25006" || message.contains("read-only") || message.contains("readonly") {
            return DbError::ReadOnly { location };
        }
        if code == "55P03" {
            return DbError::Locked { location };
        }
    }
    let message = e.to_string();
    let lower = message.to_lowercase();
    if lower.contains("database is locked") {
        DbError::Locked { location }
    } else if lower.contains("not a database") || lower.contains("malformed") {
        DbError::NotADatabase { location }
    } else if lower.contains("readonly") {
        DbError::ReadOnly { location }
    } else {
        DbError::Query { location, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse("postgres://u:p@h/db").backend(),
            Backend::Postgres
        );
        assert_eq!(
            Location::parse("sqlite://x/y.db"),
            Location::File("x/y.db".into())
        );
        assert_eq!(
            Location::parse("state.db"),
            Location::File("state.db".into())
        );
        assert_eq!(
            Location::parse("postgres://u:secret@h/db").to_string(),
            "postgres://u:***@h/db"
        );
    }

    #[test]
    fn sqlite_gets_anonymous_placeholders_only_when_they_are_in_order() {
        let to = |s| Db::sql_for(Backend::Sqlite, s).into_owned();
        assert_eq!(to("SELECT 1"), "SELECT 1");
        assert_eq!(to("a = $1 AND b IN ($2,$3)"), "a = ? AND b IN (?,?)");
        assert_eq!(to("a = $2 AND b = $1"), "a = $2 AND b = $1");
        assert_eq!(to("a = $1 AND b = $3"), "a = $1 AND b = $3");
        assert_eq!(to("a = '$1' AND b = $1"), "a = '$1' AND b = ?");
        assert_eq!(to("a = $"), "a = $");
        let many: Vec<String> = (1..=5400).map(|n| format!("${n}")).collect();
        assert_eq!(to(&many.join(",")).matches('?').count(), 5400);
    }

    #[test]
    fn sqlite_urls_encode_the_path() {
        assert_eq!(
            sqlite_url(Path::new("/tmp/a b/state.db")),
            "sqlite:///tmp/a%20b/state.db?mode=rwc"
        );
    }

    /// A new SQLite database in a directory of its own (kept while the directory lives).
    async fn temp_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("dir");
        let db = Db::open(Location::File(dir.path().join("t.db")))
            .await
            .expect("open");
        (dir, db)
    }

    /// The WAL is copied back into the file every 16,384 pages, not SQLite's 1,000, on
    /// every pooled connection: 2,000 pages written in 20 commits are all still in the WAL.
    #[tokio::test]
    async fn the_wal_is_checkpointed_every_16384_pages() {
        let (dir, db) = temp_db().await;
        sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
            .execute(db.pool())
            .await
            .expect("create");
        for commit in 0..20i64 {
            let mut tx = db.begin_write().await.expect("begin");
            for n in 0..100i64 {
                sqlx::query("INSERT INTO t (k, v) VALUES ($1, zeroblob(4000))")
                    .bind(commit * 100 + n)
                    .execute(&mut *tx)
                    .await
                    .expect("insert");
            }
            tx.commit().await.expect("commit");
        }
        let frames = std::fs::metadata(dir.path().join("t.db-wal"))
            .expect("wal")
            .len()
            / 4120;
        assert!(frames >= 2000, "the WAL holds {frames} pages");
    }

    /// Every pooled connection keeps 16 MiB of pages, not SQLite's 2 MiB, and its statement
    /// journals in memory.
    #[tokio::test]
    async fn pooled_connections_cache_16_mib_of_pages_and_journal_in_memory() {
        let (_dir, db) = temp_db().await;
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut conn = db.pool().acquire().await.expect("connection");
            let (kib,): (i64,) = sqlx::query_as("PRAGMA cache_size")
                .fetch_one(&mut *conn)
                .await
                .expect("pragma");
            assert_eq!(kib, -16384);
            let (temp,): (i64,) = sqlx::query_as("PRAGMA temp_store")
                .fetch_one(&mut *conn)
                .await
                .expect("pragma");
            assert_eq!(temp, 2, "statement journals are kept in memory");
            held.push(conn);
        }
    }
}
