//! The SQL table connector against real databases: one suite, run on SQLite files
//! (tempfile) and, when `RULEBRIDGE_TEST_POSTGRES` holds a server URL, on a fresh PostgreSQL
//! database per test (`CREATE DATABASE rb_t_<random>`). Without the variable the PostgreSQL
//! half says it was not run.

use std::path::Path;
use std::sync::Arc;

use rulebridge::Engine;
use rulebridge::connect::sql::{SqlConnector, SqlOptions};
use rulebridge::connect::{Call, Connector, ErrorKind, UpdateItem};
use serde_json::{Value, json};
use sqlx::Executor;

/// The shipped example (provider, migrations, flow) copied into a directory of its own.
fn example_rules() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    for (from, to) in [
        ("providers/users_db.yaml", "providers/users_db.yaml"),
        ("sql/users.sqlite.sql", "sql/users.sqlite.sql"),
        ("sql/users.postgres.sql", "sql/users.postgres.sql"),
        ("records/sync_user.yaml", "records/sync_user.yaml"),
        ("flows/user_sync.yaml", "flows/user_sync.yaml"),
    ] {
        let target = dir.path().join(to);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::copy(root.join(from), &target).expect("copy");
    }
    dir
}

fn engine(rules: &Path) -> Engine {
    Engine::builder()
        .rules_dir(rules)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn connector(rules: &Path, database: String) -> SqlConnector {
    let engine = engine(rules);
    let provider = engine.plan().provider("users_db").expect("provider");
    SqlConnector::new(
        provider,
        SqlOptions {
            base_dir: rules.to_path_buf(),
            database: Some(database),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh PostgreSQL database on the test server, or `None` (said on stderr) without one.
async fn postgres_database(test: &str) -> Option<String> {
    let Ok(server) = std::env::var("RULEBRIDGE_TEST_POSTGRES") else {
        eprintln!(
            "{test}: RULEBRIDGE_TEST_POSTGRES is not set; the PostgreSQL half was not run (start one with .ci/postgres)"
        );
        return None;
    };
    sqlx::any::install_default_drivers();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = format!("rb_t_{}_{nanos}", std::process::id());
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("cannot reach {server}: {e}"));
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create database");
    let mut url = url::Url::parse(&server).expect("server URL");
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

fn user(email: &str, name: &str) -> Value {
    json!({
        "email": email,
        "name": name,
        "tenant_id": "t1",
        "is_active": true,
        "is_admin": false,
        "roles": ["user", "manager"],
        "permissions": [],
        "last_synced_at": "2024-01-15T10:30:00Z",
    })
}

async fn suite(c: &SqlConnector) {
    let call = Call::default();
    let caps = c.capabilities("users");
    assert!(caps.search && caps.create && caps.update);
    assert_eq!(caps.batch_create, Some(500));

    // Insert, then look up by the match key: the id is the primary key as text.
    let ada = user("ada@example.com", "Ada");
    let w = c.create(&call, "users", &ada).await.expect("create");
    let id = w.id.clone().expect("an id");
    assert_eq!(id, "1");
    let found = c
        .search(&call, "users", "email", "ada@example.com")
        .await
        .expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id);
    let f = &found[0].fields;
    // JSON(B) round trip, booleans as booleans, defaults filled by the table.
    assert_eq!(f["roles"], json!(["user", "manager"]));
    assert_eq!(f["permissions"], json!([]));
    assert_eq!(f["is_active"], json!(true));
    assert_eq!(f["is_admin"], json!(false));
    assert_eq!(f["synced_from"], json!("wrapper"));
    assert!(
        f["last_synced_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("2024-01-15"))
    );
    assert!(
        c.search(&call, "users", "email", "nobody@example.com")
            .await
            .expect("search")
            .is_empty()
    );

    // Update by id; a missing row is NotFound.
    let w = c
        .update(
            &call,
            "users",
            &id,
            &json!({"name": "Ada Lovelace", "roles": {"nested": [1, 2]}}),
        )
        .await
        .expect("update");
    assert_eq!(w.id.as_deref(), Some("1"));
    let f = &c
        .search(&call, "users", "email", "ada@example.com")
        .await
        .expect("search")[0]
        .fields;
    assert_eq!(f["name"], json!("Ada Lovelace"));
    assert_eq!(f["roles"], json!({"nested": [1, 2]}));
    let e = c
        .update(&call, "users", "999", &json!({"name": "x"}))
        .await
        .expect_err("no such row");
    assert_eq!(e.kind, ErrorKind::NotFound);

    // A second row with the same e-mail is a duplicate naming the row already there.
    let e = c
        .create(&call, "users", &user("ada@example.com", "Other"))
        .await
        .expect_err("duplicate");
    assert_eq!(e.kind, ErrorKind::Duplicate);
    assert_eq!(e.existing_id.as_deref(), Some("1"));

    // A NOT NULL column left out is refused as invalid data.
    let e = c
        .create(&call, "users", &json!({"email": "x@example.com"}))
        .await
        .expect_err("not null");
    assert_eq!(e.kind, ErrorKind::Validation);

    // Record data never reaches the statement: quotes and SQL in values are stored as text;
    // a column name that is not a column is refused before any statement is built.
    let evil = "robert'); DROP TABLE users; --@example.com";
    let w = c
        .create(&call, "users", &user(evil, "Bobby \" Tables"))
        .await
        .expect("create");
    let found = c
        .search(&call, "users", "email", evil)
        .await
        .expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, w.id.clone().expect("id"));
    assert_eq!(found[0].fields["name"], json!("Bobby \" Tables"));
    let e = c
        .create(
            &call,
            "users",
            &json!({"email": "y@example.com", "name; DROP TABLE users": "x"}),
        )
        .await
        .expect_err("unknown column");
    assert_eq!(e.kind, ErrorKind::Validation);
    assert_eq!(e.field.as_deref(), Some("name; DROP TABLE users"));
    let e = c
        .search(&call, "users", "email\" OR 1=1 --", "x")
        .await
        .expect_err("unknown column");
    assert_eq!(e.kind, ErrorKind::Validation);

    // A value the column cannot hold fails that record only.
    let e = c
        .create(&call, "users", &json!({"email": "z@example.com", "name": "Z", "tenant_id": "t", "is_admin": "perhaps"}))
        .await
        .expect_err("not a boolean");
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (ErrorKind::Validation, Some("is_admin"))
    );

    // A batch: one transaction, the duplicate fails alone, the others are committed.
    let batch = [
        user("b1@example.com", "B1"),
        user("ada@example.com", "dup"),
        user("b2@example.com", "B2"),
    ];
    let refs: Vec<&Value> = batch.iter().collect();
    let results = c.create_batch(&call, "users", &refs).await;
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    let dup = results[1].as_ref().expect_err("duplicate");
    assert_eq!(dup.kind, ErrorKind::Duplicate);
    assert_eq!(dup.existing_id.as_deref(), Some("1"));
    let b1 = results[0]
        .as_ref()
        .ok()
        .and_then(|w| w.id.clone())
        .expect("id");
    let b2 = results[2]
        .as_ref()
        .ok()
        .and_then(|w| w.id.clone())
        .expect("id");
    assert_ne!(b1, b2);

    // Batch search pairs each row with the value it matched.
    let values = ["b2@example.com", "nobody@example.com", "b1@example.com"];
    let mut many = c
        .search_many(&call, "users", "email", &values)
        .await
        .expect("search_many");
    many.sort_by_key(|(i, _)| *i);
    let got: Vec<(usize, String)> = many.into_iter().map(|(i, f)| (i, f.id)).collect();
    assert_eq!(got, vec![(0, b2.clone()), (2, b1.clone())]);

    // Batch update; a missing id fails alone.
    let p1 = json!({"department": "Sales"});
    let p2 = json!({"department": "Ops"});
    let items = [
        UpdateItem {
            id: &b1,
            payload: &p1,
        },
        UpdateItem {
            id: "424242",
            payload: &p1,
        },
        UpdateItem {
            id: &b2,
            payload: &p2,
        },
    ];
    let results = c.update_batch(&call, "users", &items).await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert_eq!(
        results[1].as_ref().expect_err("missing").kind,
        ErrorKind::NotFound
    );
    let f = c
        .search_where(
            &call,
            "users",
            &[("department", "Ops"), ("tenant_id", "t1")],
        )
        .await
        .expect("search");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].id, b2);

    // Introspection for `rulebridge fields`.
    let t = c.describe("users").await.expect("describe");
    assert_eq!(t.primary_key.as_deref(), Some("id"));
    assert!(t.unique.contains(&"email".to_string()));
    let tenant = t.column("tenant_id").expect("column");
    assert!(tenant.required());
    assert!(!t.column("id").expect("id").required());
    assert!(!t.column("is_active").expect("col").required());
    c.close().await;
}

#[tokio::test]
async fn sqlite_file() {
    let rules = example_rules();
    let db = tempfile::tempdir().expect("temp dir");
    let path = db.path().join("users.db");
    suite(&connector(rules.path(), path.display().to_string())).await;
    // Opened again, the migration is not applied twice and the rows are there.
    let c = connector(rules.path(), path.display().to_string());
    let found = c
        .search(&Call::default(), "users", "email", "ada@example.com")
        .await
        .expect("search");
    assert_eq!(found.len(), 1);
    c.close().await;
}

#[tokio::test]
async fn postgres_database_suite() {
    let Some(url) = postgres_database("postgres_database_suite").await else {
        return;
    };
    let rules = example_rules();
    suite(&connector(rules.path(), url.clone())).await;
    // The PostgreSQL table is the guide's own: `jsonb` columns, a serial key.
    let c = connector(rules.path(), url);
    let t = c.describe("users").await.expect("describe");
    assert_eq!(t.column("roles").expect("roles").sql_type, "jsonb");
    c.close().await;
}

/// A create that meets the unique e-mail although the flow's own match key found nothing
/// (another writer got there first): the engine updates the row already there.
async fn duplicate_becomes_update(database: String) {
    let rules = example_rules();
    // Match by Kinde id, so the e-mail's unique constraint is what refuses the create.
    let flow = rules.path().join("flows/user_sync.yaml");
    let text = std::fs::read_to_string(&flow).expect("flow");
    let text = text.replace(
        "duplicates: { match: [email], on_match: update, on_multiple: fail }",
        "duplicates: { match: [kinde_user_id], on_match: update, on_multiple: fail }",
    );
    std::fs::write(&flow, text).expect("write");
    let engine = engine(rules.path());
    let c = Arc::new(connector(rules.path(), database));
    c.create(
        &Call::default(),
        "users",
        &json!({"email": "ada@example.com", "name": "Ada", "tenant_id": "t1", "kinde_user_id": "k-old"}),
    )
    .await
    .expect("seed row");
    let runner = engine.runner("user_sync").expect("runner");
    let pipeline = runner.send_through(c.clone(), Default::default(), Default::default());
    let outcome = pipeline
        .run_one(
            0,
            &json!({"email": "Ada@Example.com", "name": "Ada Lovelace", "tenantId": "t1", "kindeUserId": "k-new"}),
        )
        .await;
    assert_eq!(json!(outcome.status), json!("updated"), "{outcome:?}");
    assert_eq!(outcome.target_id.as_deref(), Some("1"));
    let f = &c
        .search(&Call::default(), "users", "email", "ada@example.com")
        .await
        .expect("search")[0]
        .fields;
    assert_eq!(f["name"], json!("Ada Lovelace"));
    assert_eq!(f["kinde_user_id"], json!("k-new"));
    c.close().await;
}

#[tokio::test]
async fn sqlite_duplicate_becomes_update() {
    let db = tempfile::tempdir().expect("temp dir");
    duplicate_becomes_update(db.path().join("u.db").display().to_string()).await;
}

#[tokio::test]
async fn postgres_duplicate_becomes_update() {
    if let Some(url) = postgres_database("postgres_duplicate_becomes_update").await {
        duplicate_becomes_update(url).await;
    }
}

/// Lint reads the tables the migrations make, without a database: a mapping into a column
/// the table lacks, a value of the wrong type, and a NOT NULL column left unmapped are errors
/// at the flow's lines; an injected column name is refused as an identifier.
#[test]
fn lint_checks_mapped_columns_against_the_table() {
    let rules = example_rules();
    let flow = rules.path().join("flows/user_sync.yaml");
    let text = std::fs::read_to_string(&flow).expect("flow");
    let text = text
        .replace(
            "  tenant_id: tenantId\n",
            "  \"name; DROP TABLE users\": name\n  nickname: name\n",
        )
        .replace("is_admin: isAdmin ?? false", "is_admin: title");
    std::fs::write(&flow, text).expect("write");
    let err = Engine::builder()
        .rules_dir(rules.path())
        .build()
        .expect_err("lint errors");
    let rulebridge::Error::Invalid { diagnostics, .. } = err else {
        panic!("{err}")
    };
    let codes: Vec<(&str, String)> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.code.as_str(), d.message.clone()))
        .collect();
    let has = |code: &str, text: &str| codes.iter().any(|(c, m)| *c == code && m.contains(text));
    assert!(has("RB5032", "name; DROP TABLE users"), "{codes:?}");
    assert!(has("RB2003", "nickname"), "{codes:?}");
    assert!(has("RB2004", "tenant_id"), "{codes:?}");
    assert!(has("RB2002", "is_admin"), "{codes:?}");
}
