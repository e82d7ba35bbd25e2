//! Reading rule files: YAML with a source position for every value, decoded into the
//! [`doc`] model with every problem reported as a [`Diagnostic`].
//!
//! ```text
//! files ──read──> SourceMap ──parse (node)──> Node trees ──decode──> Vec<Document> + diagnostics
//! ```
//!
//! Loading never stops at the first problem: a bad key, value or document is reported and
//! skipped, and the rest of the file is still read. Names are not resolved here (duplicate
//! names and references across files are the compiler's business).
//!
//! # Spelling details and defaults
//!
//! The shapes follow [`doc`]; beyond them the loader decides:
//!
//! - YAML 1.2 scalars: only `true`/`false` are booleans (`on`, `yes`, `no` are strings, so
//!   `retry.on` works as a key). Duplicate keys are an `RB0001` error; the first entry is kept.
//!   Anchors, aliases and `<<` merge keys work; aliased values are located at the alias.
//! - A file may hold several `---` documents; a syntax error in one still lets the others
//!   load. Empty documents are skipped.
//! - Lists of names (`source.require`, `options.required`, `duplicates.match`, `policy.inputs`,
//!   `policy.outputs`, `retry.on`) also accept a single string.
//! - `source: lead` is short for `source: { record: lead }`.
//! - Mapping values: a string is an expression; a number, boolean or `null` a constant; a
//!   mapping with exactly one of the keys `value`, `template`, `expr` or `fields` is that form;
//!   any other mapping is a nested object. A list is an error (write `{ value: [...] }`), and so
//!   is an empty value.
//! - `duplicates.on_match` defaults to `update`, `on_multiple` to `fail`; `hit` to `first`.
//! - Flow `secrets` values must contain a secret reference (a literal would put the secret in
//!   the rule file). Secret references are checked in auth settings, headers, query values,
//!   `base_url` and flow secrets.
//! - Durations are `<number><unit>` groups with units `ms`, `s`, `m`, `h` (`1m30s`, `1.5s`);
//!   rates are `N per DURATION`, `N/DURATION`, `N per second|minute|hour` or
//!   `{ requests, per }`.
//! - `retry`: `attempts` 3, `base` 500ms, `max` 30s, `on` `[429, 502, 503, 504, network]`,
//!   `respect_retry_after` true unless given; `backoff: exponential` is accepted (the only
//!   strategy). `max` shorter than `base` is an `RB0009` error.
//! - `auth: none` is short for `{ type: none }`; `api_key.in` defaults to `header`;
//!   `token_exchange.token` defaults to `$.token`; `scopes` is a list or a space-separated
//!   string.
//! - HTTP methods may be written in any case and are stored in upper case.
//! - `base_url` must start with `http://` or `https://`, unless it starts with a secret
//!   reference or a template (`{{ instance_url }}`).
//! - An error rule needs `status` (a number or a list) or `contains`, or both.
//! - Record and object fields: `name: TYPE` or `{ type, required, options, label, description }`;
//!   `required` defaults to false; `type: enum` needs `options`. [`doc::FieldDecl::format`]
//!   keeps the type as written (`email`, `number?`).
//! - Policy rows: `[test..., output...]` split after as many cells as there are inputs, or
//!   `{ when: [tests], then: [outputs] }`. Row arity is checked by the compiler.
//! - Test cases: `input` defaults to `{}`; `expect` must check something; `status` is
//!   `dry_run`, `skipped` or `failed`; `error` goes with `failed`, `payload` with `dry_run`;
//!   policy tests may only expect `policy` (`RB4002` otherwise).
//! - A `kind: provider` document with `extends: BASE` is an [`doc::ExtensionDoc`]: fields added
//!   to the base's objects (it takes `name`, `description` and `objects.*.fields` only, and is
//!   named after its file unless it has a `name`).
//! - `kind: test` documents name one subject (`flow:` or `policy:`) and are named after their
//!   file unless they have a `name`.
//! - A document missing a required part (its `name`, a flow's `target` or `mapping`, ...) is
//!   left out of the rule set and listed in [`Loaded::incomplete`].

mod decode;
pub mod doc;
mod endpoint;
mod flow;
pub mod node;
pub mod outline;
mod policy;
mod provider;
mod record;
pub(crate) mod scalar;
pub mod schema;
mod testcase;
pub mod values;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::diagnostic::{self, Code, Diagnostic};
use crate::span::{FileId, SourceMap, Span};
use decode::Cx;
use doc::{Document, Spanned};
use node::Node;

pub use node::{NodeKind, parse_documents};

/// The document kinds, as written after `kind:`.
pub const KINDS: &[&str] = &["provider", "flow", "policy", "record", "test", "endpoint"];

/// A file id used by diagnostics that belong to no file (e.g. "no rule files found").
/// Renderers print such diagnostics without a position.
pub const NO_FILE: FileId = FileId(u32::MAX);

/// Every document of a rule set, with the source text they came from.
#[derive(Debug, Default, Clone)]
pub struct RuleSet {
    pub sources: SourceMap,
    pub documents: Vec<Document>,
}

/// The result of loading: the documents that could be read, and every problem found.
///
/// A document with an error may still be present (with the bad part left out) or be missing
/// (when a required part such as its `name` is missing); either way `diagnostics` says so.
#[derive(Debug, Default)]
pub struct Loaded {
    pub rules: RuleSet,
    /// Sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// Documents that have a name but were left out because of errors in required parts.
    /// Later stages should not report references to these names as undefined: the reason
    /// is already among `diagnostics`.
    pub incomplete: Vec<Incomplete>,
}

/// A named document that could not be decoded completely.
#[derive(Clone, Debug, PartialEq)]
pub struct Incomplete {
    /// `provider`, `flow`, `policy` or `record`.
    pub kind: &'static str,
    pub name: Spanned<String>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Rule files could not be loaded at all (the CLI exits with status 2).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("`{}`: no such file or directory", path.display())]
    NotFound { path: PathBuf },
    #[error("cannot read `{}`: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Loads files and directories as one rule set. Directories are walked recursively for
/// `*.yaml` and `*.yml` files in sorted order, skipping names that start with a dot; files
/// named explicitly are read whatever their extension.
///
/// A path that does not exist or cannot be read is a [`LoadError`]; a file inside a directory
/// that cannot be read is an `RB0007` diagnostic.
pub fn load_paths(paths: &[PathBuf]) -> Result<Loaded, LoadError> {
    load_paths_with(paths, &[])
}

/// Like [`load_paths`], with in-memory files (name, text) joining the same rule set.
pub fn load_paths_with(paths: &[PathBuf], extra: &[(String, String)]) -> Result<Loaded, LoadError> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut unreadable: Vec<(PathBuf, String)> = Vec::new();
    let mut seen_dirs = HashSet::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => LoadError::NotFound { path: path.clone() },
            _ => LoadError::Unreadable {
                path: path.clone(),
                source,
            },
        })?;
        if meta.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| LoadError::Unreadable {
                path: path.clone(),
                source,
            })?;
            walk(path, entries, &mut files, &mut unreadable, &mut seen_dirs);
        } else {
            files.push(path.clone());
        }
    }

    let mut sources = SourceMap::new();
    let mut ids = Vec::new();
    let mut broken = Vec::new();
    let mut diags = Vec::new();
    let mut seen_files = HashSet::new();
    for path in &files {
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        if !seen_files.insert(canonical) {
            continue;
        }
        let name = path.display().to_string();
        match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => ids.push(sources.add(name, text)),
                Err(e) => {
                    // Keep the text (the bad bytes become U+FFFD, three bytes each) so the
                    // byte can be shown at its line and column, and the names the file
                    // declares can be recovered.
                    let at = e.utf8_error().valid_up_to();
                    let bad = e.as_bytes().get(at).copied().unwrap_or(0);
                    let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                    let id = sources.add(name, text);
                    diags.push(invalid_utf8(id, at, bad));
                    ids.push(id);
                    broken.push(id);
                }
            },
            Err(e) if paths.contains(path) => {
                return Err(LoadError::Unreadable {
                    path: path.clone(),
                    source: e,
                });
            }
            Err(e) => {
                let id = sources.add(name, "");
                diags.push(unreadable_file(id, &e.to_string()));
            }
        }
    }
    for (path, why) in unreadable {
        let id = sources.add(path.display().to_string(), "");
        diags.push(unreadable_file(id, &why));
    }

    for (name, text) in extra {
        ids.push(sources.add(name.clone(), text.clone()));
    }

    if files.is_empty() && diags.is_empty() && extra.is_empty() {
        let shown = paths
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut loaded = Loaded::default();
        loaded.diagnostics.push(
            Diagnostic::new(
                Code::EmptyRuleSet,
                Span::new(NO_FILE, 0, 0),
                if shown.is_empty() {
                    "no rule files found".to_string()
                } else {
                    format!("no rule files found in {shown}")
                },
            )
            .with_help("rule files are YAML files ending in `.yaml` or `.yml`"),
        );
        return Ok(loaded);
    }
    let mut loaded = decode_all(sources, &ids, diags);
    recover_broken(&mut loaded, &broken);
    Ok(loaded)
}

/// Loads one in-memory file.
pub fn load_str(name: &str, text: &str) -> Loaded {
    load_sources(&[(name.to_string(), text.to_string())])
}

/// Loads several in-memory files (name, text) as one rule set.
pub fn load_sources(files: &[(String, String)]) -> Loaded {
    let mut sources = SourceMap::new();
    let ids: Vec<FileId> = files
        .iter()
        .map(|(name, text)| sources.add(name.clone(), text.clone()))
        .collect();
    decode_all(sources, &ids, Vec::new())
}

fn decode_all(sources: SourceMap, ids: &[FileId], mut diags: Vec<Diagnostic>) -> Loaded {
    let mut documents = Vec::new();
    let mut incomplete = Vec::new();
    for &id in ids {
        let Some(file) = sources.get(id) else {
            continue;
        };
        let parsed = node::parse_file(id, &file.text);
        if parsed.nodes.is_empty() && parsed.diagnostics.is_empty() {
            diags.push(empty_file(id, &file.text));
        }
        diags.extend(parsed.diagnostics);
        // A document that is not valid YAML still declares a name other documents refer to.
        for &(start, end) in &parsed.failed {
            incomplete.extend(recovered(id, &file.text, start, end));
        }
        let stem = Path::new(&file.name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        for node in &parsed.nodes {
            let (doc, doc_diags) = decode_document(&sources, node, &stem);
            diags.extend(doc_diags);
            match doc {
                Ok(doc) => documents.push(doc),
                Err(Some(named)) => incomplete.push(named),
                Err(None) => {}
            }
        }
    }
    if documents.is_empty() && !diags.iter().any(Diagnostic::is_error) {
        diags.push(
            Diagnostic::new(
                Code::EmptyRuleSet,
                Span::new(NO_FILE, 0, 0),
                "no rule documents found",
            )
            .with_help(
                "a rule document starts with `kind: flow` (or provider, policy, record, test)",
            ),
        );
    }
    diagnostic::sort(&mut diags);
    Loaded {
        rules: RuleSet { sources, documents },
        diagnostics: diags,
        incomplete,
    }
}

/// The documents named in a part of a file that could not be parsed.
fn recovered(id: FileId, text: &str, start: usize, end: usize) -> Vec<Incomplete> {
    node::recover_names(id, text, start, end)
        .into_iter()
        .filter_map(|(kind, span, name)| {
            let kind = KINDS.iter().copied().find(|k| *k == kind && *k != "test")?;
            Some(Incomplete {
                kind,
                name: Spanned::new(name, span),
            })
        })
        .collect()
}

/// A file that is not valid UTF-8 is not used, but what it declares is known: its
/// documents are moved to [`Loaded::incomplete`] and its other diagnostics dropped (they
/// would be about the replacement characters).
fn recover_broken(loaded: &mut Loaded, broken: &[FileId]) {
    if broken.is_empty() {
        return;
    }
    let mut kept = Vec::new();
    for doc in std::mem::take(&mut loaded.rules.documents) {
        if broken.contains(&doc.name().span.file) {
            if !matches!(doc.kind(), "test" | "extension") {
                loaded.incomplete.push(Incomplete {
                    kind: doc.kind(),
                    name: doc.name().clone(),
                });
            }
        } else {
            kept.push(doc);
        }
    }
    loaded.rules.documents = kept;
    loaded
        .diagnostics
        .retain(|d| !broken.contains(&d.span.file) || d.code == Code::UnreadableFile);
}

/// `RB0012`: a file with no document in it (empty, or only comments).
fn empty_file(id: FileId, text: &str) -> Diagnostic {
    let what = if text.trim().is_empty() {
        "this rule file is empty"
    } else {
        "this rule file holds only comments"
    };
    Diagnostic::new(Code::EmptyFile, Span::new(id, 0, 0), what)
        .with_label("no rule document in this file")
        .with_help(
            "add a document starting with `kind: flow` (or provider, policy, record, test), \
             or delete the file",
        )
}

/// `RB0007` at the first byte that is not UTF-8.
fn invalid_utf8(id: FileId, at: usize, byte: u8) -> Diagnostic {
    // U+FFFD takes three bytes in the stored text.
    let span = Span::new(id, at as u32, at as u32 + 3);
    Diagnostic::new(
        Code::UnreadableFile,
        span,
        format!("this rule file is not valid UTF-8: byte 0x{byte:02X} at offset {at}"),
    )
    .with_label("not UTF-8")
    .with_help(
        "rule files are UTF-8; re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`) \
         or replace the character",
    )
}

/// What became of one YAML document: the document, or (when it could not be completed)
/// its kind and name if it had one.
type DecodeResult = Result<Document, Option<Incomplete>>;

/// Decodes one YAML document into a [`Document`], with its diagnostics.
fn decode_document(
    sources: &SourceMap,
    node: &Node,
    file_stem: &str,
) -> (DecodeResult, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let kinds_help = format!(
        "the kind is one of {}",
        KINDS
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if node.as_map().is_none() {
        diags.push(
            Diagnostic::new(
                Code::WrongType,
                node.span,
                format!(
                    "a rule document must be a mapping, found {}",
                    node.describe()
                ),
            )
            .with_label("expected a mapping starting with `kind:`")
            .with_help("start the document with `kind: flow` (or provider, policy, record, test)"),
        );
        return (Err(None), diags);
    }
    let Some(kind_node) = node.get("kind") else {
        // A misspelt `kind:` key is the likely cause; point at it.
        let misspelt = node.as_map().and_then(|entries| {
            entries.iter().find(|(k, _)| {
                k.as_str()
                    .is_some_and(|k| decode::closest(k, &["kind"]).is_some())
            })
        });
        let d = match misspelt {
            Some((key, _)) => Diagnostic::new(
                Code::MissingField,
                key.span,
                format!("document has no `kind`; found `{}`", key.key_text()),
            )
            .with_label("misspelt `kind`?")
            .with_help(format!("did you mean `kind`? {kinds_help}")),
            None => Diagnostic::new(
                Code::MissingField,
                first_line(sources, node.span),
                "document has no `kind`",
            )
            .with_label("`kind` is required in every document")
            .with_help(format!("add `kind: ...` at the top; {kinds_help}")),
        };
        diags.push(d);
        return (Err(None), diags);
    };
    let Some(kind_text) = kind_node.as_str() else {
        diags.push(
            Diagnostic::new(
                Code::WrongType,
                kind_node.span,
                format!("`kind` must be a string, found {}", kind_node.describe()),
            )
            .with_label("expected a document kind")
            .with_help(kinds_help),
        );
        return (Err(None), diags);
    };
    let Some(kind) = KINDS.iter().copied().find(|k| *k == kind_text) else {
        let closest = decode::closest(kind_text, KINDS);
        let help = match closest {
            Some(s) => format!("did you mean `{s}`? {kinds_help}"),
            None => kinds_help,
        };
        // `kind: flwo` with a name: other documents' references to it are not unknown.
        let named = closest.filter(|k| *k != "test").and_then(|kind| {
            let name = node.get("name")?;
            Some(Incomplete {
                kind,
                name: Spanned::new(name.as_str()?.to_string(), name.span),
            })
        });
        diags.push(
            Diagnostic::new(
                Code::UnknownKind,
                kind_node.span,
                format!("unknown document kind `{kind_text}`"),
            )
            .with_label("unknown kind")
            .with_help(help),
        );
        return (Err(named), diags);
    };

    let mut cx = Cx::new(sources, kind);
    let keys = match kind {
        "provider" if provider::is_sql(node) => provider::SQL_KEYS,
        "provider" => provider::KEYS,
        "flow" => flow::KEYS,
        "policy" => policy::KEYS,
        "record" => record::KEYS,
        "endpoint" => endpoint::KEYS,
        _ => testcase::KEYS,
    };
    let Some(fields) = cx.fields(node, None, keys) else {
        return (Err(None), cx.diags);
    };
    // Missing fields of a document are reported on its `kind: ...` entry.
    let kind_line = node
        .as_map()
        .and_then(|entries| entries.iter().find(|(k, _)| k.as_str() == Some("kind")))
        .map_or(node.span, |(k, v)| k.span.to(v.span));
    let fields = decode::Fields {
        owner: kind_line,
        ..fields
    };
    let name = fields.opt(&mut cx, "name", |cx, n, _| {
        let name = cx.text(n)?;
        if name.value.trim().is_empty() {
            cx.wrong_type(n, "a non-empty name", None);
            return None;
        }
        Some(name)
    });
    let doc = if kind == "test" {
        let stem = Spanned::new(file_stem.to_string(), kind_node.span);
        testcase::decode(&mut cx, &fields, name, stem)
            .map(Document::Tests)
            .ok_or(None)
    } else if kind == "provider" && fields.has("extends") {
        // An extension is named after its file unless it has a name: nothing refers to it.
        let name = name.unwrap_or_else(|| Spanned::new(file_stem.to_string(), kind_node.span));
        provider::decode_extension(&mut cx, &fields, name)
            .map(Document::Extension)
            .ok_or(None)
    } else {
        if !fields.has("name") {
            cx.missing(
                kind_line,
                "name",
                Some(format!("give the {kind} a name: `name: my_{kind}`")),
            );
        }
        let placeholder = name
            .clone()
            .unwrap_or_else(|| Spanned::new(String::new(), kind_line));
        let doc = match kind {
            "provider" if provider::is_sql(node) => {
                provider::decode_sql(&mut cx, &fields, placeholder).map(Document::Provider)
            }
            "provider" => provider::decode(&mut cx, &fields, placeholder).map(Document::Provider),
            "flow" => flow::decode(&mut cx, &fields, placeholder).map(Document::Flow),
            "policy" => policy::decode(&mut cx, &fields, placeholder).map(Document::Policy),
            "endpoint" => endpoint::decode(&mut cx, &fields, placeholder).map(Document::Endpoint),
            _ => record::decode(&mut cx, &fields, placeholder).map(Document::Record),
        };
        match (doc, name) {
            (Some(doc), Some(_)) => Ok(doc),
            (_, name) => Err(name.map(|name| Incomplete { kind, name })),
        }
    };
    (doc, cx.diags)
}

/// The first line of a span (without trailing spaces).
fn first_line(sources: &SourceMap, span: Span) -> Span {
    let text = sources.slice(span).unwrap_or("");
    let len = text.find('\n').unwrap_or(text.len());
    Span::new(
        span.file,
        span.start,
        span.start + text[..len].trim_end().len() as u32,
    )
}

fn unreadable_file(id: FileId, why: &str) -> Diagnostic {
    Diagnostic::new(
        Code::UnreadableFile,
        Span::new(id, 0, 0),
        format!("could not read this rule file: {why}"),
    )
    .with_help("check the file's permissions and encoding (rule files are UTF-8 YAML)")
}

/// Collects rule files under a directory, sorted, skipping dot-files and dot-directories.
fn walk(
    dir: &Path,
    entries: std::fs::ReadDir,
    files: &mut Vec<PathBuf>,
    unreadable: &mut Vec<(PathBuf, String)>,
    seen: &mut HashSet<PathBuf>,
) {
    if let Ok(canonical) = std::fs::canonicalize(dir)
        && !seen.insert(canonical)
    {
        return;
    }
    let mut children: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => {
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') {
                    children.push((name, dir.join(e.file_name())));
                }
            }
            Err(e) => unreadable.push((dir.to_path_buf(), e.to_string())),
        }
    }
    children.sort();
    for (name, path) in children {
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => match std::fs::read_dir(&path) {
                Ok(entries) => walk(&path, entries, files, unreadable, seen),
                Err(e) => unreadable.push((path, e.to_string())),
            },
            Ok(_) if name.ends_with(".yaml") || name.ends_with(".yml") => files.push(path),
            Ok(_) => {}
            Err(e) if name.ends_with(".yaml") || name.ends_with(".yml") => {
                unreadable.push((path, e.to_string()))
            }
            Err(_) => {}
        }
    }
}
