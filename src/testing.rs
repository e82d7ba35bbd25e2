//! Snapshot testing of flows in an embedding service.
//!
//! [`dry_run`] gives the outcome of one record as a serializable value, with the fixed test
//! clock so snapshots are stable; [`assert_flow_snapshot!`](crate::assert_flow_snapshot) makes
//! an [insta](https://insta.rs) snapshot of it in one line (the calling crate depends on
//! `insta` with the `yaml` feature).
//!
//! ```no_run
//! # use rulebridge::Engine;
//! # use serde_json::json;
//! let engine = rulebridge::testing::engine("rules").unwrap();
//! rulebridge::assert_flow_snapshot!(engine, "lead_to_hubspot", json!({"email": "ada@example.com"}));
//! ```

use std::sync::Arc;

use serde_json::Value;

use crate::engine::{Engine, Error};
use crate::exec::Outcome;
use crate::functions::FixedClock;

/// An engine over a rules directory with the fixed test clock (2024-01-15T10:30:00Z).
pub fn engine(rules: impl Into<std::path::PathBuf>) -> Result<Engine, Error> {
    Engine::builder()
        .rules_dir(rules)
        .clock(Arc::new(FixedClock::default_test()))
        .build()
}

/// The dry-run outcome of `record` through `flow`.
pub fn dry_run(engine: &Engine, flow: &str, record: &Value) -> Result<Outcome, Error> {
    Ok(engine.runner(flow)?.evaluate(0, record))
}

/// Snapshots the dry-run outcome of a record: `assert_flow_snapshot!(engine, "flow", record)`.
#[macro_export]
macro_rules! assert_flow_snapshot {
    ($engine:expr, $flow:expr, $record:expr $(,)?) => {{
        let outcome = $crate::testing::dry_run(&$engine, $flow, &$record)
            .unwrap_or_else(|e| panic!("flow {} could not run: {e}", $flow));
        ::insta::assert_yaml_snapshot!(outcome);
    }};
    ($name:expr, $engine:expr, $flow:expr, $record:expr $(,)?) => {{
        let outcome = $crate::testing::dry_run(&$engine, $flow, &$record)
            .unwrap_or_else(|e| panic!("flow {} could not run: {e}", $flow));
        ::insta::assert_yaml_snapshot!($name, outcome);
    }};
}

/// The PostgreSQL server tests run against, from `RULEBRIDGE_TEST_POSTGRES` (a URL such as
/// `postgres://rulebridge@127.0.0.1:54329/postgres`, as `.ci/postgres` prints); `None` when
/// it is not set, and the caller says that the PostgreSQL half was not run.
pub fn postgres_server() -> Option<String> {
    std::env::var("RULEBRIDGE_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A new, empty database on the test server (see [`postgres_server`]), as a URL.
pub async fn postgres_database(server: &str) -> Result<String, crate::db::DbError> {
    let name = format!("rb_t_{:016x}", rand::random::<u64>());
    let db = crate::db::Db::open(crate::db::Location::Url(server.to_string())).await?;
    let sql = format!("CREATE DATABASE {name}");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(db.pool())
        .await
        .map_err(|e| db.error(&e))?;
    db.close().await;
    let mut url = url::Url::parse(server).map_err(|e| crate::db::DbError::Open {
        location: "RULEBRIDGE_TEST_POSTGRES".into(),
        message: e.to_string(),
    })?;
    url.set_path(&name);
    Ok(url.to_string())
}

/// Where a test's store lives: an SQLite file in a directory of its own (removed on drop),
/// or a fresh database on the PostgreSQL test server.
pub struct TestStore {
    /// `sqlite` or `postgres`, for assertion messages.
    pub backend: &'static str,
    /// What [`crate::state::SqlStore::open`] takes.
    pub spec: String,
    dir: Option<std::path::PathBuf>,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// The stores a shared suite runs against: a new SQLite file always, and a new PostgreSQL
/// database when [`postgres_server`] names a server (otherwise it says on stderr that
/// `suite`'s PostgreSQL half was not run).
pub async fn store_backends(suite: &str) -> Result<Vec<TestStore>, crate::db::DbError> {
    let dir = std::env::temp_dir().join(format!("rulebridge-test-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).map_err(|e| crate::db::DbError::Open {
        location: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let mut out = vec![TestStore {
        backend: "sqlite",
        spec: dir.join("state.db").display().to_string(),
        dir: Some(dir),
    }];
    match postgres_server() {
        Some(server) => out.push(TestStore {
            backend: "postgres",
            spec: postgres_database(&server).await?,
            dir: None,
        }),
        None => eprintln!(
            "RULEBRIDGE_TEST_POSTGRES is not set: the PostgreSQL half of the {suite} suite was not run"
        ),
    }
    Ok(out)
}
