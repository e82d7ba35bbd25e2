//! Lint of `type: sql` providers and of the flows that write their tables: identifiers,
//! the database value, migration files, and the mapped columns checked against the tables
//! as introspected (after the migrations, or in the database itself).

use std::path::{Path, PathBuf};

use crate::connect::sql::{self, LintSchema, is_identifier};
use crate::diagnostic::{Code, Diagnostic};
use crate::plan::provider::SqlPlan;
use crate::syntax::doc::{FieldDecl, FlowDoc, ObjectDoc, ProviderDoc, Spanned, SqlDoc};

use super::Context;

/// A provider's introspected tables, read once per compilation.
pub(super) struct SqlLint {
    schema: LintSchema,
    /// Whether the schema's own problem (unreachable, a failing migration) was reported.
    reported: bool,
}

impl Context<'_> {
    /// The directory relative database and migration files are resolved against: the
    /// rules directory when the caller named it (through the field cache), else the deepest
    /// directory holding every loaded file (what a loaded directory's files have in common).
    fn rules_dir(&self) -> PathBuf {
        if let Some(dir) = self.fields.and_then(|c| c.rules_dir()) {
            return dir;
        }
        let mut common: Option<PathBuf> = None;
        for (_, f) in self.sources.files() {
            let dir = Path::new(&f.name)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            common = Some(match common {
                None => dir,
                Some(c) => c
                    .components()
                    .zip(dir.components())
                    .take_while(|(a, b)| a == b)
                    .map(|(a, _)| a)
                    .collect(),
            });
        }
        match common {
            Some(c) if !c.as_os_str().is_empty() => c,
            _ => PathBuf::from("."),
        }
    }

    /// Checks a `type: sql` provider on its own: the database value, table and column names,
    /// and the migration files.
    pub(super) fn sql_provider(&mut self, doc: &ProviderDoc, s: &SqlDoc) -> SqlPlan {
        let db = s.database.value.trim();
        if !db.starts_with("${")
            && let Err(message) = sql::check_scheme(db)
        {
            self.report(
                Diagnostic::new(Code::SqlDatabase, s.database.span, message)
                    .with_label("not an SQLite file or a PostgreSQL URL")
                    .with_help("write a file (`users.db`, relative to the rules directory), `postgres://user@host/db`, or a secret reference `${env:USERS_DB_URL}`"),
            );
        }
        for o in &doc.objects {
            self.sql_identifier(&o.name, "table");
            for f in &o.fields {
                self.sql_identifier(&f.name, "column");
            }
        }
        let literal_backend =
            (!db.starts_with("${")).then(|| crate::db::Location::parse(db).backend());
        let dir = self.rules_dir();
        for (i, m) in s.migrations.iter().enumerate() {
            for file in [&m.sqlite, &m.postgres].into_iter().flatten() {
                let path = dir.join(&file.value);
                if !path.is_file() {
                    self.report(
                        Diagnostic::new(
                            Code::SqlMigration,
                            file.span,
                            format!("migration file `{}` does not exist", path.display()),
                        )
                        .with_label("no such file")
                        .with_help("migration files are relative to the rules directory"),
                    );
                }
            }
            let missing = match literal_backend {
                Some(crate::db::Backend::Sqlite) if m.sqlite.is_none() => Some("sqlite"),
                Some(crate::db::Backend::Postgres) if m.postgres.is_none() => Some("postgres"),
                _ => None,
            };
            if let Some(backend) = missing {
                self.report(
                    Diagnostic::new(
                        Code::SqlMigration,
                        m.span,
                        format!(
                            "migration {} has no `{backend}` file, and the database is {backend}",
                            i + 1
                        ),
                    )
                    .with_label("not applied to this database")
                    .with_help(format!(
                        "add `{backend}: FILE` to the entry, or give one file for both backends"
                    )),
                );
            }
        }
        SqlPlan {
            database: s.database.value.clone(),
            migrations: s
                .migrations
                .iter()
                .map(|m| {
                    (
                        m.sqlite.as_ref().map(|f| f.value.clone()),
                        m.postgres.as_ref().map(|f| f.value.clone()),
                    )
                })
                .collect(),
        }
    }

    fn sql_identifier(&mut self, name: &Spanned<String>, what: &str) {
        if is_identifier(&name.value) {
            return;
        }
        self.report(
            Diagnostic::new(
                Code::SqlIdentifier,
                name.span,
                format!("`{}` is not a valid SQL {what} name", name.value),
            )
            .with_label("letters, digits and `_` only")
            .with_help(format!(
                "{what} names are written into statements: use ASCII letters, digits and `_`, not starting with a digit, at most 63 characters"
            )),
        );
    }

    /// The columns a flow into a SQL table is checked against (as declared fields), with the
    /// table's problems reported: `None` when the table could not be read (a warning says
    /// why, unless the field cache of `rulebridge fields` stands in).
    pub(super) fn sql_target(
        &mut self,
        doc: &FlowDoc,
        provider: &ProviderDoc,
        object: &ObjectDoc,
    ) -> Option<Vec<FieldDecl>> {
        let s = provider.sql.as_ref()?;
        for entry in &doc.mapping.entries {
            self.sql_identifier(&entry.target, "column");
        }
        let name = provider.name.value.clone();
        if !self.sql.contains_key(&name) {
            let plan = SqlPlan {
                database: s.database.value.clone(),
                migrations: s
                    .migrations
                    .iter()
                    .map(|m| {
                        (
                            m.sqlite.as_ref().map(|f| f.value.clone()),
                            m.postgres.as_ref().map(|f| f.value.clone()),
                        )
                    })
                    .collect(),
            };
            let tables: Vec<String> = provider
                .objects
                .iter()
                .map(|o| o.name.value.clone())
                .collect();
            let schema = sql::lint_schema(&plan, &tables, &self.rules_dir());
            self.sql.insert(
                name.clone(),
                SqlLint {
                    schema,
                    reported: false,
                },
            );
        }
        let lint = self.sql.get_mut(&name)?;
        let first = !lint.reported;
        lint.reported = true;
        let schema = lint.schema.clone();
        match schema {
            LintSchema::Known { source, tables } => {
                let Some(table) = tables.get(&object.name.value) else {
                    if is_identifier(&object.name.value) {
                        self.report(
                            Diagnostic::new(
                                Code::SqlUnknownTable,
                                doc.target.object.span,
                                format!(
                                    "table `{}` does not exist in {source}",
                                    object.name.value
                                ),
                            )
                            .with_label("no such table")
                            .with_related(object.name.span, "declared here")
                            .with_help("create the table, or add a migration that creates it to the provider's `migrations:`"),
                        );
                    }
                    return Some(Vec::new());
                };
                if table.primary_key.is_none() {
                    self.report(
                        Diagnostic::new(
                            Code::SqlNoPrimaryKey,
                            doc.target.object.span,
                            format!(
                                "table `{}` has no single-column primary key",
                                object.name.value
                            ),
                        )
                        .with_label("rows cannot be updated by id")
                        .with_related(object.name.span, "declared here")
                        .with_help("give the table a primary key (`id INTEGER PRIMARY KEY`, `id SERIAL PRIMARY KEY`): the engine updates and refers to rows by it"),
                    );
                }
                let at = object.name.span;
                Some(
                    table
                        .columns
                        .iter()
                        .filter(|c| !c.generated)
                        .map(|c| {
                            let f = c.field_info();
                            FieldDecl {
                                name: Spanned::new(c.name.clone(), at),
                                ty: Spanned::new(f.ty.value_type(), at),
                                format: f.ty.name().to_string(),
                                required: f.required,
                                options: Vec::new(),
                                label: None,
                                description: Some(c.sql_type.clone()),
                                sensitive: false,
                            }
                        })
                        .collect(),
                )
            }
            LintSchema::Migration {
                index,
                message,
                unreadable,
            } => {
                // A file that cannot be read was reported with the provider.
                if first
                    && !unreadable
                    && let Some(m) = s.migrations.get(index)
                {
                    self.report(
                        Diagnostic::new(Code::SqlMigration, m.span, message)
                            .with_label("this migration")
                            .with_help("fix the SQL (SQLite and PostgreSQL differ: give each its own file with `{ sqlite: FILE, postgres: FILE }`)"),
                    );
                }
                Some(Vec::new())
            }
            LintSchema::Unknown(why) => {
                // The cache of `rulebridge fields` stands in for a database lint cannot reach.
                let cached = self
                    .fields
                    .and_then(|c| c.load(&provider.name.value, &object.name.value));
                if cached.is_some() {
                    return None;
                }
                if first {
                    self.report(
                        Diagnostic::new(
                            Code::SqlColumnsUnchecked,
                            s.database.span,
                            format!(
                                "the columns of `{}` are not checked: {why}",
                                provider.name.value
                            ),
                        )
                        .with_label("tables not read")
                        .with_help(format!(
                            "make the database reachable when linting (or add `migrations:` that create its tables), or cache its columns with `rulebridge fields {} {}`",
                            provider.name.value, object.name.value
                        )),
                    );
                }
                None
            }
        }
    }
}
