//! The SQL table connector: a `type: sql` provider's objects are the tables of an SQLite file
//! or a PostgreSQL database (the [`crate::db`] layer), written with bound values only.
//!
//! Statements are built from identifiers checked by [`is_identifier`] and quoted; every value
//! is a bound parameter. The columns of each table are introspected when the database is
//! opened (SQLite `pragma_table_info`, PostgreSQL `information_schema.columns`), and values
//! are converted by the column's type: JSON columns take arrays and objects (as JSON text,
//! cast `::jsonb` on PostgreSQL), booleans and numbers become the column's type, timestamps
//! are written as text.
//!
//! Values are read back as text (cast in the query) and turned into JSON by the column's
//! type: the `Any` driver decodes only a few SQL types, and text is the one both backends
//! give for every column.
//!
//! A batch runs in one transaction, one statement per row, each under a savepoint so a row
//! that is refused (a duplicate, a NOT NULL column left empty) fails alone. Multi-row
//! `INSERT … RETURNING` is not used: neither backend promises that `RETURNING` lists the
//! rows in the order of `VALUES`, and the engine needs each record's own id. The commit, one
//! per batch, is what costs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyPool, AssertSqlSafe, Row};

use super::fields::{FieldInfo, FieldType};
use super::{
    Call, Capabilities, ConnectError, Connector, ErrorKind, Found, UpdateItem, Written,
    fields_agree,
};
use crate::db::{Backend, Db, DbError, Location};
use crate::plan::ProviderPlan;
use crate::plan::provider::SqlPlan;
use crate::secrets::{Secret, SecretRef};

/// Largest number of rows of one batch (create, update, search).
pub const MAX_BATCH: usize = 500;

/// How many rows a search returns at most (more than one is already "several matches").
const SEARCH_LIMIT: usize = 100;

/// Whether `name` can be written into a statement: ASCII letters, digits and `_`, not
/// starting with a digit, at most 63 bytes (PostgreSQL's limit). Names from rule files and
/// records are checked by this before any statement is built.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `"name"`; the name was checked by [`is_identifier`], the doubling of `"` is defence in depth.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How a column's values are converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Integer,
    Real,
    Bool,
    Text,
    Timestamp,
    Date,
    /// `json` / `jsonb`: any value, stored as JSON text.
    Json,
    /// Anything else (an SQLite column without a type, a PostgreSQL type of its own).
    Other,
}

impl ColumnKind {
    /// The kind of a declared SQL type (SQLite's affinity rules, PostgreSQL's type names).
    pub fn of(sql_type: &str) -> ColumnKind {
        let t = sql_type.to_ascii_lowercase();
        if t.contains("json") {
            ColumnKind::Json
        } else if t.contains("bool") {
            ColumnKind::Bool
        } else if t.contains("timestamp") || t.contains("datetime") {
            ColumnKind::Timestamp
        } else if t == "date" {
            ColumnKind::Date
        } else if t.contains("int") || t == "serial" || t == "bigserial" || t == "smallserial" {
            ColumnKind::Integer
        } else if ["real", "floa", "doub", "numeric", "decimal"]
            .iter()
            .any(|k| t.contains(k))
        {
            ColumnKind::Real
        } else if ["char", "text", "clob", "uuid", "citext"]
            .iter()
            .any(|k| t.contains(k))
        {
            ColumnKind::Text
        } else {
            ColumnKind::Other
        }
    }
}

/// One introspected column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: String,
    /// The declared type as the database reports it (`VARCHAR(255)`, `jsonb`, `integer`).
    pub sql_type: String,
    pub kind: ColumnKind,
    pub not_null: bool,
    /// It has a default, or the database fills it (a serial, identity or SQLite rowid key).
    pub has_default: bool,
    pub primary_key: bool,
    /// Computed by the database: never written.
    pub generated: bool,
    /// PostgreSQL: the type a parameter is cast to (`int4`, `jsonb`); values are bound as
    /// text and converted by the server.
    #[serde(skip)]
    cast: Option<String>,
}

impl Column {
    /// A value must be given when a row is inserted.
    pub fn required(&self) -> bool {
        self.not_null && !self.has_default && !self.generated
    }

    /// The column in the field model lint checks mappings against.
    pub fn field_info(&self) -> FieldInfo {
        let ty = match self.kind {
            ColumnKind::Integer | ColumnKind::Real => FieldType::Number,
            ColumnKind::Bool => FieldType::Bool,
            ColumnKind::Text => FieldType::String,
            ColumnKind::Timestamp => FieldType::Datetime,
            ColumnKind::Date => FieldType::Date,
            ColumnKind::Json | ColumnKind::Other => FieldType::Other {
                name: self.sql_type.to_ascii_lowercase(),
            },
        };
        FieldInfo {
            name: self.name.clone(),
            label: None,
            ty,
            required: self.required(),
            read_only: self.generated,
        }
    }
}

/// One introspected table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    /// The primary key column; `None` without one (or with a key of several columns).
    pub primary_key: Option<String>,
    /// Columns with a unique constraint or index of their own (a duplicate is looked up by
    /// them to name the row that is already there).
    pub unique: Vec<String>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The columns as discovered fields (what `rulebridge fields` caches).
    pub fn fields(&self) -> Vec<FieldInfo> {
        self.columns.iter().map(Column::field_info).collect()
    }
}

/// Reads the columns of `table` (`None` when there is no such table).
pub async fn introspect(
    pool: &AnyPool,
    backend: Backend,
    table: &str,
) -> Result<Option<Table>, sqlx::Error> {
    let mut columns = Vec::new();
    let mut keys = Vec::new();
    match backend {
        Backend::Sqlite => {
            let rows = sqlx::query(
                "SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo($1) ORDER BY cid",
            )
            .bind(table)
            .fetch_all(pool)
            .await?;
            let pk_count = rows
                .iter()
                .filter(|r| r.try_get::<i64, _>(4).unwrap_or(0) > 0)
                .count();
            for r in rows {
                let name: String = r.try_get(0)?;
                let sql_type: String = r.try_get::<Option<String>, _>(1)?.unwrap_or_default();
                let pk = r.try_get::<i64, _>(4)? > 0;
                // 2 and 3: generated (virtual, stored) columns.
                let generated = r.try_get::<i64, _>(5)? >= 2;
                // `INTEGER PRIMARY KEY` is the rowid: SQLite numbers it.
                let rowid = pk && pk_count == 1 && sql_type.eq_ignore_ascii_case("integer");
                if pk {
                    keys.push(name.clone());
                }
                columns.push(Column {
                    kind: ColumnKind::of(&sql_type),
                    not_null: r.try_get::<i64, _>(2)? != 0 || (pk && !rowid),
                    has_default: r.try_get::<Option<String>, _>(3)?.is_some() || rowid,
                    primary_key: pk,
                    generated,
                    cast: None,
                    name,
                    sql_type,
                });
            }
        }
        Backend::Postgres => {
            let rows = sqlx::query(
                "SELECT column_name::text, data_type::text, udt_name::text, is_nullable::text, \
                 column_default::text, is_identity::text, is_generated::text \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(pool)
            .await?;
            let pk_rows = sqlx::query(
                "SELECT kcu.column_name::text FROM information_schema.table_constraints tc \
                 JOIN information_schema.key_column_usage kcu \
                   ON tc.constraint_name = kcu.constraint_name AND tc.table_schema = kcu.table_schema \
                 WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = current_schema() \
                   AND tc.table_name = $1",
            )
            .bind(table)
            .fetch_all(pool)
            .await?;
            for r in &pk_rows {
                keys.push(r.try_get::<String, _>(0)?);
            }
            for r in rows {
                let name: String = r.try_get(0)?;
                let data_type: String = r.try_get(1)?;
                let udt: String = r.try_get(2)?;
                let yes = |i: usize| -> Result<bool, sqlx::Error> {
                    Ok(r.try_get::<Option<String>, _>(i)?.as_deref() == Some("YES"))
                };
                let generated = r.try_get::<Option<String>, _>(6)?.as_deref() == Some("ALWAYS");
                let sql_type = if data_type == "USER-DEFINED" || data_type == "ARRAY" {
                    udt.clone()
                } else {
                    data_type
                };
                columns.push(Column {
                    kind: ColumnKind::of(&sql_type),
                    not_null: !yes(3)?,
                    has_default: r.try_get::<Option<String>, _>(4)?.is_some() || yes(5)?,
                    primary_key: keys.contains(&name),
                    generated,
                    cast: is_identifier(&udt).then_some(udt),
                    name,
                    sql_type,
                });
            }
        }
    }
    if columns.is_empty() {
        return Ok(None);
    }
    let unique = unique_columns(pool, backend, table).await?;
    Ok(Some(Table {
        name: table.to_string(),
        columns,
        primary_key: (keys.len() == 1).then(|| keys.remove(0)),
        unique,
    }))
}

/// The columns of `table` that are unique on their own.
async fn unique_columns(
    pool: &AnyPool,
    backend: Backend,
    table: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT min(ii.name) FROM pragma_index_list($1) il, pragma_index_info(il.name) ii \
             WHERE il.\"unique\" = 1 GROUP BY il.name HAVING count(*) = 1"
        }
        Backend::Postgres => {
            "SELECT min(a.attname)::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = to_regclass(quote_ident($1)) AND i.indisunique \
             GROUP BY i.indexrelid HAVING count(*) = 1"
        }
    };
    let rows = sqlx::query(sql).bind(table).fetch_all(pool).await?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(name) = r.try_get::<Option<String>, _>(0)?
            && !out.contains(&name)
        {
            out.push(name);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Values

/// A value ready to bind.
#[derive(Clone, Debug, PartialEq)]
enum Bound {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(String),
}

impl Bound {
    fn as_text(&self) -> Option<String> {
        match self {
            Bound::Null => None,
            Bound::Int(i) => Some(i.to_string()),
            Bound::Real(r) => Some(r.to_string()),
            Bound::Bool(b) => Some(b.to_string()),
            Bound::Text(t) => Some(t.clone()),
        }
    }
}

fn invalid(column: &Column, message: String) -> ConnectError {
    ConnectError {
        field: Some(column.name.clone()),
        ..ConnectError::new(ErrorKind::Validation, message)
    }
}

/// Converts a payload value for `column`; values of the wrong shape are refused (a
/// validation error naming the column), never coerced into text silently.
fn to_bound(column: &Column, v: &Value) -> Result<Bound, ConnectError> {
    let wrong = |what: &str| {
        invalid(
            column,
            format!(
                "column `{}` is `{}`; {what} cannot be written to it",
                column.name, column.sql_type
            ),
        )
    };
    Ok(match (column.kind, v) {
        (_, Value::Null) => Bound::Null,
        (ColumnKind::Json, v) => Bound::Text(v.to_string()),
        (ColumnKind::Other, Value::Array(_) | Value::Object(_)) => Bound::Text(v.to_string()),
        (_, Value::Array(_)) => return Err(wrong("an array")),
        (_, Value::Object(_)) => return Err(wrong("an object")),
        (ColumnKind::Bool, Value::Bool(b)) => Bound::Bool(*b),
        (ColumnKind::Bool, Value::Number(n)) if n.as_i64() == Some(0) => Bound::Bool(false),
        (ColumnKind::Bool, Value::Number(n)) if n.as_i64() == Some(1) => Bound::Bool(true),
        (ColumnKind::Bool, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Bound::Bool(true),
            "false" | "0" => Bound::Bool(false),
            _ => return Err(wrong(&format!("`{s}`"))),
        },
        (ColumnKind::Bool, _) => return Err(wrong(&format!("`{v}`"))),
        (ColumnKind::Integer, Value::Number(n)) => match n.as_i64() {
            Some(i) => Bound::Int(i),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Bound::Int(f as i64),
                _ => return Err(wrong(&format!("{n} (not an integer)"))),
            },
        },
        (ColumnKind::Integer, Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(i) => Bound::Int(i),
            Err(_) => return Err(wrong(&format!("`{s}` (not an integer)"))),
        },
        (ColumnKind::Real, Value::Number(n)) => match n.as_f64() {
            Some(f) => Bound::Real(f),
            None => return Err(wrong(&format!("{n}"))),
        },
        (ColumnKind::Real, Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(f) => Bound::Real(f),
            Err(_) => return Err(wrong(&format!("`{s}` (not a number)"))),
        },
        (ColumnKind::Integer | ColumnKind::Real, Value::Bool(_)) => {
            return Err(wrong("a boolean"));
        }
        (_, Value::String(s)) => Bound::Text(s.clone()),
        (_, Value::Number(n)) => match (column.kind, n.as_i64(), n.as_f64()) {
            (ColumnKind::Other, Some(i), _) => Bound::Int(i),
            (ColumnKind::Other, None, Some(f)) => Bound::Real(f),
            _ => Bound::Text(n.to_string()),
        },
        (_, Value::Bool(b)) => match column.kind {
            ColumnKind::Other => Bound::Bool(*b),
            _ => Bound::Text(b.to_string()),
        },
    })
}

/// A value read back (as text) as JSON, by the column's type.
fn from_text(column: &Column, text: Option<String>) -> Value {
    let Some(t) = text else {
        return Value::Null;
    };
    match column.kind {
        ColumnKind::Bool => match t.as_str() {
            "1" | "t" | "true" | "TRUE" => Value::Bool(true),
            "0" | "f" | "false" | "FALSE" => Value::Bool(false),
            _ => Value::String(t),
        },
        ColumnKind::Integer => t
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::String(t)),
        ColumnKind::Real => t
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::String(t)),
        ColumnKind::Json => serde_json::from_str(&t).unwrap_or(Value::String(t)),
        _ => Value::String(t),
    }
}

/// A statement under construction: its text and its values, numbered as bound.
struct Statement {
    backend: Backend,
    sql: String,
    values: Vec<Bound>,
}

impl Statement {
    fn new(backend: Backend) -> Self {
        Statement {
            backend,
            sql: String::new(),
            values: Vec::new(),
        }
    }

    /// Adds a value for `column` and returns its placeholder (`$3`, or `$3::"jsonb"` on
    /// PostgreSQL, where every value is bound as text and converted by the server).
    fn value(&mut self, column: &Column, v: Bound) -> String {
        self.values.push(v);
        let n = self.values.len();
        match (self.backend, &column.cast) {
            (Backend::Postgres, Some(cast)) => format!("${n}::{}", quote(cast)),
            _ => format!("${n}"),
        }
    }

    fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
        let mut q = sqlx::query(AssertSqlSafe(self.sql.clone()));
        for v in &self.values {
            q = match (self.backend, v) {
                (_, Bound::Null) => q.bind(None::<String>),
                (Backend::Postgres, v) => q.bind(v.as_text()),
                (Backend::Sqlite, Bound::Int(i)) => q.bind(*i),
                (Backend::Sqlite, Bound::Real(r)) => q.bind(*r),
                (Backend::Sqlite, Bound::Bool(b)) => q.bind(i64::from(*b)),
                (Backend::Sqlite, Bound::Text(t)) => q.bind(t.clone()),
            };
        }
        q
    }
}

/// `"a"::text AS "a", …` / `CAST("a" AS TEXT) AS "a", …`: every column as text.
fn select_list(backend: Backend, table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|c| as_text(backend, &c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn as_text(backend: Backend, column: &str) -> String {
    let q = quote(column);
    match backend {
        Backend::Postgres => format!("{q}::text AS {q}"),
        Backend::Sqlite => format!("CAST({q} AS TEXT) AS {q}"),
    }
}

fn found(table: &Table, row: &sqlx::any::AnyRow) -> Result<Found, sqlx::Error> {
    let mut fields = serde_json::Map::new();
    for (i, c) in table.columns.iter().enumerate() {
        let text: Option<String> = row.try_get(i)?;
        fields.insert(c.name.clone(), from_text(c, text));
    }
    let text = |name: &str| {
        fields.get(name).and_then(|v| match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            v => Some(v.to_string()),
        })
    };
    Ok(Found {
        id: table
            .primary_key
            .as_deref()
            .and_then(text)
            .unwrap_or_default(),
        updated_at: text("updated_at"),
        fields: Value::Object(fields),
    })
}

// ---------------------------------------------------------------------------------------------
// Errors

/// A driver error in the categories the engine acts on. `sent`: the statement may have been
/// executed (a create whose answer was lost must be looked up, not repeated).
fn classify(e: &sqlx::Error, sent: bool) -> ConnectError {
    use sqlx::error::ErrorKind as Db;
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.to_string()).unwrap_or_default();
            let sqlite_primary = code.parse::<i64>().ok().map(|c| c & 0xff);
            let kind = match d.kind() {
                Db::UniqueViolation => ErrorKind::Duplicate,
                Db::ForeignKeyViolation | Db::NotNullViolation | Db::CheckViolation => {
                    ErrorKind::Validation
                }
                _ if matches!(sqlite_primary, Some(5 | 6)) => ErrorKind::Transient,
                // Serialization failure, deadlock, lock not available, too many connections,
                // the server shutting down.
                _ if matches!(
                    code.as_str(),
                    "40001" | "40P01" | "55P03" | "53300" | "57P01" | "57P02" | "57P03"
                ) =>
                {
                    ErrorKind::Transient
                }
                // Data exceptions (a value the column's type does not accept) and integrity
                // violations.
                _ if code.starts_with("22") || code.starts_with("23") => ErrorKind::Validation,
                _ if matches!(sqlite_primary, Some(19 | 20 | 25)) => ErrorKind::Validation,
                _ => ErrorKind::Fatal,
            };
            ConnectError::new(kind, d.message().to_string())
        }
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => {
            ConnectError {
                outcome_unknown: sent,
                ..ConnectError::new(ErrorKind::Transient, e.to_string())
            }
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            ConnectError::new(ErrorKind::Transient, e.to_string())
        }
        _ => ConnectError::new(ErrorKind::Fatal, e.to_string()),
    }
}

fn open_error(e: DbError) -> ConnectError {
    let kind = match e {
        DbError::Locked { .. } => ErrorKind::Transient,
        _ => ErrorKind::Fatal,
    };
    ConnectError::new(kind, e.to_string())
}

// ---------------------------------------------------------------------------------------------
// The connector

/// What a [`SqlConnector`] is built with besides the provider.
#[derive(Clone, Debug, Default)]
pub struct SqlOptions {
    /// The rules directory: relative database files, migration files and `${file:..}`
    /// references are relative to it.
    pub base_dir: PathBuf,
    /// Credential values by reference name (`NAME` of `${env:NAME}`), used before the
    /// environment.
    pub secrets: Vec<(String, Secret)>,
    /// Replaces the provider's `database` (a test database, a tenant's own).
    pub database: Option<String>,
}

/// Writes a `type: sql` provider's tables. The database is opened (and its migrations
/// applied, and its tables introspected) on first use.
pub struct SqlConnector {
    provider: String,
    location: Location,
    /// Version, description, SQL for this backend.
    migrations: Vec<(i64, String, String)>,
    tables: Vec<String>,
    opened: tokio::sync::OnceCell<Opened>,
}

struct Opened {
    db: Db,
    tables: BTreeMap<String, Table>,
}

impl std::fmt::Debug for SqlConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlConnector")
            .field("provider", &self.provider)
            .field("database", &self.location.to_string())
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

/// Where a `database:` value points: the secret resolved, a relative file made relative to
/// `base`.
pub fn resolve_database(
    database: &str,
    base: &Path,
    secrets: &[(String, Secret)],
) -> Result<Location, String> {
    let text = match SecretRef::parse(database.trim())? {
        SecretRef::Env(var) => match secrets.iter().find(|(n, _)| *n == var) {
            Some((_, v)) => v.expose().to_string(),
            None => SecretRef::Env(var)
                .resolve(base)
                .map_err(|e| e.to_string())?
                .expose()
                .to_string(),
        },
        r => r
            .resolve(base)
            .map_err(|e| e.to_string())?
            .expose()
            .to_string(),
    };
    check_scheme(&text)?;
    Ok(match Location::parse(text.trim()) {
        Location::File(p) if p.is_relative() => Location::File(base.join(p)),
        l => l,
    })
}

/// Refuses a URL of a database other than SQLite and PostgreSQL (`mysql://…`), which would
/// otherwise be taken for a file name.
pub fn check_scheme(database: &str) -> Result<(), String> {
    let t = database.trim();
    if t.is_empty() {
        return Err("the database is empty; give an SQLite file or a postgres:// URL".into());
    }
    if let Some((scheme, _)) = t.split_once("://")
        && !matches!(scheme, "postgres" | "postgresql" | "sqlite")
    {
        return Err(format!(
            "`{scheme}://` databases are not supported; give an SQLite file or a postgres:// URL"
        ));
    }
    Ok(())
}

/// The migration table of a provider: one per provider, so two providers on one database
/// keep their own versions.
fn migration_table(provider: &str) -> String {
    let safe: String = provider
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("_rulebridge_migrations_{safe}")
}

/// Reads the migration files for `backend` (`(version, description, sql)`).
pub fn read_migrations(
    sql: &SqlPlan,
    backend: Backend,
    base: &Path,
) -> Result<Vec<(i64, String, String)>, String> {
    let mut out = Vec::new();
    for (i, (sqlite, postgres)) in sql.migrations.iter().enumerate() {
        let (file, name) = match backend {
            Backend::Sqlite => (sqlite, "sqlite"),
            Backend::Postgres => (postgres, "postgres"),
        };
        let Some(file) = file else {
            return Err(format!(
                "migration {} has no `{name}` file, and the database is {name}",
                i + 1
            ));
        };
        let path = base.join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read migration {}: {e}", path.display()))?;
        out.push((i as i64 + 1, file.clone(), text));
    }
    Ok(out)
}

impl SqlConnector {
    /// The connector of a `type: sql` provider; resolves the database reference and reads
    /// the migration files (nothing is opened yet).
    pub fn new(provider: &ProviderPlan, options: SqlOptions) -> Result<SqlConnector, ConnectError> {
        let fatal = |m: String| {
            ConnectError::new(
                ErrorKind::Fatal,
                format!("provider `{}`: {m}", provider.name()),
            )
        };
        let sql = provider
            .sql()
            .ok_or_else(|| fatal("not a `type: sql` provider".into()))?;
        let database = options.database.as_deref().unwrap_or(&sql.database);
        let location =
            resolve_database(database, &options.base_dir, &options.secrets).map_err(fatal)?;
        let migrations =
            read_migrations(sql, location.backend(), &options.base_dir).map_err(fatal)?;
        Ok(SqlConnector {
            provider: provider.name().to_string(),
            location,
            migrations,
            tables: provider.objects().map(|o| o.name().to_string()).collect(),
            opened: tokio::sync::OnceCell::new(),
        })
    }

    /// The database this connector writes (safe to print).
    pub fn location(&self) -> &Location {
        &self.location
    }

    async fn open(&self) -> Result<&Opened, ConnectError> {
        self.opened
            .get_or_try_init(|| async {
                let db = Db::open(self.location.clone()).await.map_err(open_error)?;
                if !self.migrations.is_empty() {
                    db.migrate_owned(migration_table(&self.provider), self.migrations.clone())
                        .await
                        .map_err(open_error)?;
                }
                let mut tables = BTreeMap::new();
                for name in &self.tables {
                    if !is_identifier(name) {
                        continue;
                    }
                    if let Some(t) = introspect(db.pool(), db.backend(), name)
                        .await
                        .map_err(|e| classify(&e, false))?
                    {
                        tables.insert(name.clone(), t);
                    }
                }
                Ok(Opened { db, tables })
            })
            .await
    }

    async fn table(&self, object: &str) -> Result<(&Opened, &Table), ConnectError> {
        let opened = self.open().await?;
        match opened.tables.get(object) {
            Some(t) => Ok((opened, t)),
            None => Err(ConnectError::new(
                ErrorKind::Fatal,
                format!(
                    "{} has no table `{object}` (provider `{}`)",
                    self.location, self.provider
                ),
            )),
        }
    }

    /// The introspected columns of a table (after the migrations), for `rulebridge fields`.
    pub async fn describe(&self, object: &str) -> Result<Table, ConnectError> {
        self.table(object).await.map(|(_, t)| t.clone())
    }

    /// Closes the connections (pending statements finish first).
    pub async fn close(&self) {
        if let Some(o) = self.opened.get() {
            o.db.close().await;
        }
    }

    fn column<'t>(&self, table: &'t Table, name: &str) -> Result<&'t Column, ConnectError> {
        table.column(name).ok_or_else(|| ConnectError {
            field: Some(name.to_string()),
            ..ConnectError::new(
                ErrorKind::Validation,
                format!("table `{}` has no column `{name}`", table.name),
            )
        })
    }

    fn key<'t>(&self, table: &'t Table) -> Result<&'t Column, ConnectError> {
        table
            .primary_key
            .as_deref()
            .and_then(|k| table.column(k))
            .ok_or_else(|| {
                ConnectError::new(
                    ErrorKind::Fatal,
                    format!(
                        "table `{}` has no single-column primary key to return ids by",
                        table.name
                    ),
                )
            })
    }

    /// Rows whose columns equal every `(column, value)`.
    async fn search_by(
        &self,
        object: &str,
        criteria: &[(&str, &str)],
    ) -> Result<Vec<Found>, ConnectError> {
        let (opened, table) = self.table(object).await?;
        let st = self.select(opened.db.backend(), table, criteria)?;
        let rows = st
            .query()
            .fetch_all(opened.db.pool())
            .await
            .map_err(|e| classify(&e, false))?;
        rows.iter()
            .map(|r| found(table, r).map_err(|e| classify(&e, false)))
            .collect()
    }

    /// `SELECT … WHERE a = $1 AND b = $2`.
    fn select(
        &self,
        backend: Backend,
        table: &Table,
        criteria: &[(&str, &str)],
    ) -> Result<Statement, ConnectError> {
        let mut st = Statement::new(backend);
        let mut conditions = Vec::new();
        for (field, value) in criteria {
            let c = self.column(table, field)?;
            let v = to_bound(c, &Value::String((*value).to_string()))?;
            let ph = st.value(c, v);
            conditions.push(format!("{} = {ph}", quote(&c.name)));
        }
        st.sql = format!(
            "SELECT {} FROM {} WHERE {} LIMIT {SEARCH_LIMIT}",
            select_list(backend, table),
            quote(&table.name),
            if conditions.is_empty() {
                "1 = 0".to_string()
            } else {
                conditions.join(" AND ")
            }
        );
        Ok(st)
    }

    /// `INSERT INTO t (…) VALUES (…) RETURNING key`.
    fn insert(
        &self,
        backend: Backend,
        table: &Table,
        payload: &Value,
    ) -> Result<Statement, ConnectError> {
        let key = self.key(table)?;
        let mut st = Statement::new(backend);
        let mut names = Vec::new();
        let mut values = Vec::new();
        for (name, v) in payload_fields(payload)? {
            let c = self.writable(table, name)?;
            let b = to_bound(c, v)?;
            names.push(quote(&c.name));
            values.push(st.value(c, b));
        }
        let returning = returning(backend, key);
        st.sql = if names.is_empty() {
            format!(
                "INSERT INTO {} DEFAULT VALUES RETURNING {returning}",
                quote(&table.name)
            )
        } else {
            format!(
                "INSERT INTO {} ({}) VALUES ({}) RETURNING {returning}",
                quote(&table.name),
                names.join(", "),
                values.join(", ")
            )
        };
        Ok(st)
    }

    /// `UPDATE t SET … WHERE key = $n RETURNING key` (a `SELECT` of the key when there is
    /// nothing to set).
    fn update_statement(
        &self,
        backend: Backend,
        table: &Table,
        id: &str,
        payload: &Value,
    ) -> Result<Statement, ConnectError> {
        let key = self.key(table)?;
        let mut st = Statement::new(backend);
        let mut sets = Vec::new();
        for (name, v) in payload_fields(payload)? {
            let c = self.writable(table, name)?;
            let b = to_bound(c, v)?;
            let ph = st.value(c, b);
            sets.push(format!("{} = {ph}", quote(&c.name)));
        }
        let id = to_bound(key, &Value::String(id.to_string()))?;
        let ph = st.value(key, id);
        let returning = returning(backend, key);
        st.sql = if sets.is_empty() {
            format!(
                "SELECT {returning} FROM {} WHERE {} = {ph}",
                quote(&table.name),
                quote(&key.name)
            )
        } else {
            format!(
                "UPDATE {} SET {} WHERE {} = {ph} RETURNING {returning}",
                quote(&table.name),
                sets.join(", "),
                quote(&key.name)
            )
        };
        Ok(st)
    }

    /// A create refused as a duplicate gets the id of the row already there: the first row
    /// holding one of the payload's values of a unique column.
    async fn name_existing(
        &self,
        table: &Table,
        payload: &Value,
        result: Result<Written, ConnectError>,
    ) -> Result<Written, ConnectError> {
        let mut e = match result {
            Err(e) if e.kind == ErrorKind::Duplicate && e.existing_id.is_none() => e,
            r => return r,
        };
        for column in &table.unique {
            let Some(v) = payload.get(column).filter(|v| !v.is_null()) else {
                continue;
            };
            let text = match v {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            if let Ok(found) = self.search_by(&table.name, &[(column, &text)]).await
                && let Some(f) = found.into_iter().next()
            {
                e.existing_id = Some(f.id);
                e.field = Some(column.clone());
                break;
            }
        }
        Err(e)
    }

    fn writable<'t>(&self, table: &'t Table, name: &str) -> Result<&'t Column, ConnectError> {
        let c = self.column(table, name)?;
        if c.generated {
            return Err(invalid(
                c,
                format!("column `{name}` is generated by the database and cannot be written"),
            ));
        }
        Ok(c)
    }

    /// Runs write statements in one transaction, each under a savepoint: a refused row fails
    /// alone, the others are committed together.
    async fn write_batch(
        &self,
        db: &Db,
        statements: Vec<Result<Statement, ConnectError>>,
        creating: bool,
        missing: impl Fn() -> ConnectError,
    ) -> Vec<Result<Written, ConnectError>> {
        let n = statements.len();
        let all = |e: ConnectError| (0..n).map(|_| Err(e.clone())).collect::<Vec<_>>();
        let mut tx = match db.begin_write().await {
            Ok(tx) => tx,
            Err(e) => return all(classify(&e, false)),
        };
        let mut results = Vec::with_capacity(n);
        for st in statements {
            let st = match st {
                Ok(st) => st,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            if let Err(e) = sqlx::query("SAVEPOINT rb_row").execute(&mut *tx).await {
                return all(classify(&e, false));
            }
            let r = st.query().fetch_optional(&mut *tx).await;
            let undo = match &r {
                Ok(Some(_)) => "RELEASE SAVEPOINT rb_row",
                _ => "ROLLBACK TO SAVEPOINT rb_row",
            };
            if let Err(e) = sqlx::query(AssertSqlSafe(undo)).execute(&mut *tx).await {
                return all(classify(&e, false));
            }
            results.push(match r {
                Ok(Some(row)) => match row.try_get::<Option<String>, _>(0) {
                    Ok(id) => Ok(Written {
                        id,
                        created: Some(creating),
                    }),
                    Err(e) => Err(classify(&e, false)),
                },
                Ok(None) => Err(missing()),
                Err(e) => Err(classify(&e, false)),
            });
        }
        if let Err(e) = tx.commit().await {
            // Nothing of the batch is known to be written.
            let e = classify(&e, creating);
            return results.into_iter().map(|r| r.and(Err(e.clone()))).collect();
        }
        results
    }
}

/// The payload's fields; a payload is an object of column values.
fn payload_fields(payload: &Value) -> Result<Vec<(&str, &Value)>, ConnectError> {
    match payload {
        Value::Object(m) => Ok(m.iter().map(|(k, v)| (k.as_str(), v)).collect()),
        Value::Null => Ok(Vec::new()),
        _ => Err(ConnectError::new(
            ErrorKind::Validation,
            "a row is written from an object of column values",
        )),
    }
}

fn returning(backend: Backend, key: &Column) -> String {
    let q = quote(&key.name);
    match backend {
        Backend::Postgres => format!("{q}::text"),
        Backend::Sqlite => format!("CAST({q} AS TEXT)"),
    }
}

fn not_found(object: &str, id: &str) -> ConnectError {
    ConnectError::new(
        ErrorKind::NotFound,
        format!("no row of `{object}` has the key `{id}`"),
    )
}

impl Connector for SqlConnector {
    fn capabilities(&self, object: &str) -> Capabilities {
        if !self.tables.iter().any(|t| t == object) {
            return Capabilities::default();
        }
        Capabilities {
            search: true,
            batch_search: Some(MAX_BATCH),
            create: true,
            update: true,
            batch_upsert: None,
            batch_create: Some(MAX_BATCH),
            batch_update: Some(MAX_BATCH),
            // A unique constraint refuses a repeated create as a duplicate; the engine then
            // looks the row up, so a repeat never writes twice either way.
            idempotent_create: false,
        }
    }

    fn search<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        field: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Found>, ConnectError>> {
        let _ = call;
        Box::pin(async move { self.search_by(object, &[(field, value)]).await })
    }

    fn search_where<'a>(
        &'a self,
        _call: &'a Call,
        object: &'a str,
        criteria: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<Vec<Found>, ConnectError>> {
        Box::pin(self.search_by(object, criteria))
    }

    fn search_many<'a>(
        &'a self,
        _call: &'a Call,
        object: &'a str,
        field: &'a str,
        values: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<(usize, Found)>, ConnectError>> {
        Box::pin(async move {
            let (opened, table) = self.table(object).await?;
            let backend = opened.db.backend();
            let c = self.column(table, field)?;
            let mut out = Vec::new();
            for chunk_start in (0..values.len()).step_by(MAX_BATCH) {
                let chunk = &values[chunk_start..values.len().min(chunk_start + MAX_BATCH)];
                let mut st = Statement::new(backend);
                let mut phs = Vec::with_capacity(chunk.len());
                for v in chunk {
                    let b = to_bound(c, &Value::String((*v).to_string()))?;
                    phs.push(st.value(c, b));
                }
                st.sql = format!(
                    "SELECT {} FROM {} WHERE {} IN ({})",
                    select_list(backend, table),
                    quote(&table.name),
                    quote(&c.name),
                    phs.join(", ")
                );
                let rows = st
                    .query()
                    .fetch_all(opened.db.pool())
                    .await
                    .map_err(|e| classify(&e, false))?;
                for row in &rows {
                    let f = found(table, row).map_err(|e| classify(&e, false))?;
                    // Each row goes with every value it equals (the same value may be asked
                    // for twice).
                    for (i, v) in chunk.iter().enumerate() {
                        if fields_agree(&f.fields, &[(field, v)], true) {
                            out.push((chunk_start + i, f.clone()));
                        }
                    }
                }
            }
            Ok(out)
        })
    }

    fn create<'a>(
        &'a self,
        _call: &'a Call,
        object: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>> {
        Box::pin(async move {
            let (opened, table) = self.table(object).await?;
            let st = self.insert(opened.db.backend(), table, payload)?;
            let mut results = self
                .write_batch(&opened.db, vec![Ok(st)], true, || {
                    ConnectError::new(ErrorKind::Fatal, "the insert returned no row")
                })
                .await;
            let r = results.pop().unwrap_or_else(|| {
                Err(ConnectError::new(
                    ErrorKind::Fatal,
                    "the insert returned no result",
                ))
            });
            self.name_existing(table, payload, r).await
        })
    }

    fn update<'a>(
        &'a self,
        _call: &'a Call,
        object: &'a str,
        id: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>> {
        Box::pin(async move {
            let (opened, table) = self.table(object).await?;
            let st = self.update_statement(opened.db.backend(), table, id, payload)?;
            let mut results = self
                .write_batch(&opened.db, vec![Ok(st)], false, || not_found(object, id))
                .await;
            results.pop().unwrap_or_else(|| Err(not_found(object, id)))
        })
    }

    fn create_batch<'a>(
        &'a self,
        _call: &'a Call,
        object: &'a str,
        payloads: &'a [&'a Value],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>> {
        Box::pin(async move {
            let (opened, table) = match self.table(object).await {
                Ok(t) => t,
                Err(e) => return payloads.iter().map(|_| Err(e.clone())).collect(),
            };
            let backend = opened.db.backend();
            let statements = payloads
                .iter()
                .map(|p| self.insert(backend, table, p))
                .collect();
            let results = self
                .write_batch(&opened.db, statements, true, || {
                    ConnectError::new(ErrorKind::Fatal, "the insert returned no row")
                })
                .await;
            let mut out = Vec::with_capacity(results.len());
            for (r, p) in results.into_iter().zip(payloads) {
                out.push(self.name_existing(table, p, r).await);
            }
            out
        })
    }

    fn update_batch<'a>(
        &'a self,
        _call: &'a Call,
        object: &'a str,
        items: &'a [UpdateItem<'a>],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>> {
        Box::pin(async move {
            let (opened, table) = match self.table(object).await {
                Ok(t) => t,
                Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
            };
            let backend = opened.db.backend();
            let statements: Vec<_> = items
                .iter()
                .map(|i| self.update_statement(backend, table, i.id, i.payload))
                .collect();
            // Which item a missing row belongs to is known from the order of results.
            let mut results = self
                .write_batch(&opened.db, statements, false, || {
                    ConnectError::new(ErrorKind::NotFound, String::new())
                })
                .await;
            for (r, item) in results.iter_mut().zip(items) {
                if let Err(e) = r
                    && e.kind == ErrorKind::NotFound
                    && e.message.is_empty()
                {
                    *e = not_found(object, item.id);
                }
            }
            results
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Lint

/// What lint learns of a SQL provider's tables.
#[derive(Clone, Debug, PartialEq)]
pub enum LintSchema {
    /// The tables found, by name (a declared table missing from the map does not exist), and
    /// where they were read: `the migrations` or the database.
    Known {
        source: String,
        tables: BTreeMap<String, Table>,
    },
    /// The columns cannot be checked now, and why (the database is not reachable, its URL
    /// comes from a secret that is not set, its file does not exist yet).
    Unknown(String),
    /// Migration `index` (from 0) cannot be read (`unreadable`) or applied.
    Migration {
        index: usize,
        message: String,
        unreadable: bool,
    },
}

/// How long lint waits for a PostgreSQL server before it leaves the columns unchecked.
const LINT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The tables of a SQL provider as lint checks mappings against them, without writing to
/// its database: with migrations that have an SQLite variant, the tables they create (applied
/// to an in-memory database); otherwise the database's own tables when it can be reached.
/// Blocking; runs on a thread of its own, so it may be called inside an async runtime.
pub fn lint_schema(sql: &SqlPlan, tables: &[String], base: &Path) -> LintSchema {
    let run = || -> LintSchema {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => return LintSchema::Unknown(format!("no runtime to read the tables: {e}")),
        };
        rt.block_on(lint_schema_async(sql, tables, base))
    };
    std::thread::scope(|s| {
        s.spawn(run).join().unwrap_or_else(|_| {
            LintSchema::Unknown("reading the tables failed unexpectedly".into())
        })
    })
}

async fn lint_schema_async(sql: &SqlPlan, tables: &[String], base: &Path) -> LintSchema {
    sqlx::any::install_default_drivers();
    let names: Vec<&String> = tables.iter().filter(|t| is_identifier(t)).collect();
    if !sql.migrations.is_empty() && sql.migrations.iter().all(|(s, _)| s.is_some()) {
        return scratch_schema(sql, &names, base).await;
    }
    let location = match resolve_database(&sql.database, base, &[]) {
        Ok(l) => l,
        Err(e) => return LintSchema::Unknown(e),
    };
    if let Location::File(path) = &location
        && !path.exists()
    {
        return LintSchema::Unknown(format!("{} does not exist yet", path.display()));
    }
    let db = match tokio::time::timeout(LINT_CONNECT_TIMEOUT, Db::open(location.clone())).await {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return LintSchema::Unknown(e.to_string()),
        Err(_) => {
            return LintSchema::Unknown(format!(
                "{location} did not answer within {}s",
                LINT_CONNECT_TIMEOUT.as_secs()
            ));
        }
    };
    let mut found = BTreeMap::new();
    for name in names {
        match introspect(db.pool(), db.backend(), name).await {
            Ok(Some(t)) => {
                found.insert(name.clone(), t);
            }
            Ok(None) => {}
            Err(e) => {
                db.close().await;
                return LintSchema::Unknown(db.error(&e).to_string());
            }
        }
    }
    db.close().await;
    LintSchema::Known {
        source: location.to_string(),
        tables: found,
    }
}

/// The migrations' SQLite variants applied to an empty in-memory database.
async fn scratch_schema(sql: &SqlPlan, names: &[&String], base: &Path) -> LintSchema {
    let pool = match sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
    {
        Ok(p) => p,
        Err(e) => return LintSchema::Unknown(format!("no in-memory SQLite database: {e}")),
    };
    for (index, (file, _)) in sql.migrations.iter().enumerate() {
        let Some(file) = file else { continue };
        let path = base.join(file);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                return LintSchema::Migration {
                    index,
                    message: format!("cannot read {}: {e}", path.display()),
                    unreadable: true,
                };
            }
        };
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(text)).execute(&pool).await {
            let message = match &e {
                sqlx::Error::Database(d) => d.message().to_string(),
                e => e.to_string(),
            };
            return LintSchema::Migration {
                index,
                message: format!("{} fails on SQLite: {message}", path.display()),
                unreadable: false,
            };
        }
    }
    let mut found = BTreeMap::new();
    for name in names {
        match introspect(&pool, Backend::Sqlite, name).await {
            Ok(Some(t)) => {
                found.insert((*name).clone(), t);
            }
            Ok(None) => {}
            Err(e) => return LintSchema::Unknown(e.to_string()),
        }
    }
    pool.close().await;
    LintSchema::Known {
        source: "the migrations".into(),
        tables: found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn column(kind: ColumnKind) -> Column {
        Column {
            name: "c".into(),
            sql_type: "t".into(),
            kind,
            not_null: false,
            has_default: false,
            primary_key: false,
            generated: false,
            cast: None,
        }
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("users"));
        assert!(is_identifier("_x9"));
        for bad in [
            "",
            "9a",
            "a b",
            "a\"b",
            "a;b",
            "naïve",
            "x--",
            &"a".repeat(64),
        ] {
            assert!(!is_identifier(bad), "{bad}");
        }
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn kinds_of_declared_types() {
        let kinds: Vec<ColumnKind> = [
            "INTEGER",
            "int4",
            "BOOLEAN",
            "bool",
            "JSONB",
            "json",
            "VARCHAR(255)",
            "text",
            "TIMESTAMP",
            "timestamp without time zone",
            "date",
            "double precision",
            "numeric",
            "uuid",
            "",
        ]
        .iter()
        .map(|t| ColumnKind::of(t))
        .collect();
        use ColumnKind::*;
        assert_eq!(
            kinds,
            [
                Integer, Integer, Bool, Bool, Json, Json, Text, Text, Timestamp, Timestamp, Date,
                Real, Real, Text, Other
            ]
        );
    }

    #[test]
    fn values_take_the_column_type() {
        let b = |k, v: Value| to_bound(&column(k), &v);
        assert_eq!(
            b(ColumnKind::Json, json!(["a"])),
            Ok(Bound::Text("[\"a\"]".into()))
        );
        assert_eq!(
            b(ColumnKind::Json, json!("a")),
            Ok(Bound::Text("\"a\"".into()))
        );
        assert_eq!(b(ColumnKind::Bool, json!("TRUE")), Ok(Bound::Bool(true)));
        assert_eq!(b(ColumnKind::Bool, json!(0)), Ok(Bound::Bool(false)));
        assert_eq!(b(ColumnKind::Integer, json!(5.0)), Ok(Bound::Int(5)));
        assert_eq!(b(ColumnKind::Integer, json!("42")), Ok(Bound::Int(42)));
        assert_eq!(b(ColumnKind::Text, json!(7)), Ok(Bound::Text("7".into())));
        assert_eq!(b(ColumnKind::Text, Value::Null), Ok(Bound::Null));
        for (k, v) in [
            (ColumnKind::Text, json!([1])),
            (ColumnKind::Bool, json!("maybe")),
            (ColumnKind::Integer, json!(1.5)),
            (ColumnKind::Integer, json!(true)),
            (ColumnKind::Timestamp, json!({"a": 1})),
        ] {
            let e = b(k, v.clone()).expect_err("refused");
            assert_eq!(
                (e.kind, e.field.as_deref()),
                (ErrorKind::Validation, Some("c")),
                "{v}"
            );
        }
    }

    #[test]
    fn values_read_back_by_the_column_type() {
        let r = |k, t: &str| from_text(&column(k), Some(t.to_string()));
        assert_eq!(r(ColumnKind::Bool, "1"), json!(true));
        assert_eq!(r(ColumnKind::Bool, "false"), json!(false));
        assert_eq!(r(ColumnKind::Json, "{\"a\":[1]}"), json!({"a": [1]}));
        assert_eq!(r(ColumnKind::Integer, "12"), json!(12));
        assert_eq!(r(ColumnKind::Text, "12"), json!("12"));
        assert_eq!(from_text(&column(ColumnKind::Text), None), Value::Null);
    }

    #[test]
    fn databases() {
        let base = Path::new("/rules");
        assert_eq!(
            resolve_database("data/u.db", base, &[]),
            Ok(Location::File("/rules/data/u.db".into()))
        );
        let secrets = vec![("DB".to_string(), Secret::new("postgres://u@h/db".into()))];
        assert_eq!(
            resolve_database("${env:DB}", base, &secrets).map(|l| l.backend()),
            Ok(Backend::Postgres)
        );
        assert!(resolve_database("mysql://h/db", base, &[]).is_err());
        assert!(resolve_database("  ", base, &[]).is_err());
        assert_eq!(
            migration_table("users-db"),
            "_rulebridge_migrations_users_db"
        );
    }
}
