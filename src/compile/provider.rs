//! Compiling providers into [`ProviderPlan`]s: every template (minijinja), JSONPath query,
//! error-rule and field-mapping expression, header name and rate-limit header rule of a
//! provider file is compiled here, once, and every problem becomes a located diagnostic.
//!
//! Template variables are checked against what each operation's template context holds at
//! run time (see [`provides`]), the provider's declared `vars` and `secrets`, and minijinja's
//! own globals.

use std::collections::{BTreeMap, BTreeSet};

use http::{HeaderName, HeaderValue, Method};
use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic, suggest};
use crate::expr::{Compiled, Scope};
use crate::plan::provider::{
    AuthPlan, BaseUrl, Body, ConnectPlan, DEFAULT_WINDOW_WAIT, DeclaredField, ErrorRulePlan,
    FieldMapping, GroupBy, JSON_FILTER, ObjectPlan, OperationPlan, ProviderPlan, Query,
    RateLimitHeader, ResponsePlan, Target, Templates, Text, has_template_syntax, lookup_path,
    single_expression,
};
use crate::span::Span;
use crate::syntax::doc::{
    self, ErrorRule, FieldMapDoc, ObjectDoc, Operation, ProviderDoc, Spanned,
};
use crate::types::Type;

use super::Context;

/// The body context of a batch operation: the rendered items (under three names), the
/// payloads, the identity values and field, and the first item's payload.
const BATCH_BODY: &[&str] = &[
    "items", "inputs", "records", "payloads", "keys", "field", "first",
];
/// The body context of a batch operation with `batch.group_by`: also the group's value.
const GROUPED_BATCH_BODY: &[&str] = &[
    "items", "inputs", "records", "payloads", "keys", "field", "first", "group",
];
/// The context of one batch item's `item` template.
const BATCH_ITEM: &[&str] = &["payload", "key", "field"];
/// Every name some operation provides: custom operations run through
/// [`HttpConnector::call`](crate::connect::http::HttpConnector::call) with the caller's values.
const ANY_OPERATION: &[&str] = &[
    "payload", "id", "key", "field", "items", "inputs", "records", "payloads", "keys", "first",
];

/// The body context of a batch create: the rendered items (under three names), the payloads
/// and the first item's payload.
const BATCH_CREATE_BODY: &[&str] = &["items", "inputs", "records", "payloads", "first"];
/// The body context of a batch update: a batch create's, and the target ids.
const BATCH_UPDATE_BODY: &[&str] = &["items", "inputs", "records", "payloads", "ids", "first"];
/// The names of a batch body that carry the whole batch (`first` is one item only).
const BATCH_CARRIERS: &[&str] = &["items", "inputs", "records", "payloads"];

/// What the template context of operation `name` holds at run time (besides the provider's
/// `vars` and `secrets`), for its path/query/headers/body and for its batch `item`.
pub(crate) fn provides(name: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match name {
        "search" => (&["key", "field", "match"], &[]),
        "batch_search" => (&["values", "field"], &[]),
        "batch_create" => (BATCH_CREATE_BODY, &["payload"]),
        "batch_update" => (BATCH_UPDATE_BODY, &["payload", "id"]),
        "create" => (&["payload"], &[]),
        "update" => (&["payload", "id"], &[]),
        "get" | "delete" => (&["id"], &[]),
        "fields" | "list" => (&[], &[]),
        // The declared field to create: `field.name`, `.label`, `.type`, `.options`, ...
        "create_field" => (&["field"], &[]),
        n if n.starts_with("batch_") => (BATCH_BODY, BATCH_ITEM),
        _ => (ANY_OPERATION, BATCH_ITEM),
    }
}

/// Whether operation `name` sends its items in batches (`batch_upsert`, ...).
fn is_batch(name: &str) -> bool {
    name.starts_with("batch_")
}

/// The rulebridge type names a `fields` operation's `types` may map to.
const FIELD_TYPES: &[&str] = &[
    "string", "number", "bool", "date", "datetime", "email", "phone", "url", "enum", "other",
];

/// What a template may read, and how to name it in messages.
struct Names<'a> {
    /// `contact.search path`.
    what: String,
    provided: &'a [&'static str],
    vars: &'a [String],
    secrets: &'a [String],
    globals: &'a [String],
    /// A request of an ungrouped batch: `first` is one item's value standing for all (RB5012).
    ungrouped_batch: bool,
}

impl Names<'_> {
    fn knows(&self, name: &str) -> bool {
        self.provided.contains(&name)
            || self.vars.iter().any(|v| v == name)
            || self.globals.iter().any(|g| g == name)
            // Which secrets it reads is checked on its own (RB5002).
            || name == "secrets"
    }

    fn candidates(&self) -> Vec<&str> {
        let mut c: Vec<&str> = self.provided.to_vec();
        c.extend(self.vars.iter().map(String::as_str));
        if !self.secrets.is_empty() {
            c.push("secrets");
        }
        c
    }
}

/// A template string and where it is.
struct Source<'a> {
    text: &'a str,
    /// The scalar holding it, or (for body strings) the whole body, searched for the text.
    span: Span,
}

impl Context<'_> {
    /// Compiles one provider; `None` when it has errors (all of them reported).
    pub(super) fn compile_provider(&mut self, doc: &ProviderDoc) -> Option<ProviderPlan> {
        let errors_before = self.error_count();
        self.check_config(doc);
        let mut templates = Templates::default();
        let globals = templates.globals();
        let vars: Vec<String> = doc.vars.iter().map(|v| v.value.clone()).collect();
        let secrets: Vec<String> = doc.secrets.iter().map(|(n, _)| n.value.clone()).collect();
        let names = |what: String, provided: &'static [&'static str]| Names {
            what,
            provided,
            vars: &vars,
            secrets: &secrets,
            globals: &globals,
            ungrouped_batch: false,
        };

        let base_url = if doc.sql.is_some() {
            Some(BaseUrl::Literal(String::new()))
        } else {
            self.base_url(
                &mut templates,
                &doc.base_url,
                &names("`base_url`".into(), &[]),
            )
        };
        let sql = doc.sql.as_ref().map(|s| self.sql_provider(doc, s));
        let auth = self.auth(doc);
        let connect = doc.connect.as_ref().map(|c| self.connect(c));
        let headers = self.static_headers(&doc.headers);
        let rate_limit_headers = self.rate_limit_headers(doc);
        let errors = self.error_rules(&doc.errors);

        let mut objects = BTreeMap::new();
        let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
        for o in &doc.objects {
            if let Some(first) = seen.insert(&o.name.value, o.name.span) {
                self.report(
                    Diagnostic::new(
                        Code::DuplicateName,
                        o.name.span,
                        format!(
                            "object `{}` is defined twice in provider `{}`",
                            o.name.value, doc.name.value
                        ),
                    )
                    .with_related(first, "first defined here")
                    .with_help("rename or merge one of them"),
                );
                continue;
            }
            let mut operations = BTreeMap::new();
            for op in &o.operations {
                let (body, item) = provides(&op.name.value);
                let batch = is_batch(&op.name.value);
                let grouped = op.batch.as_ref().is_some_and(|b| b.group_by.is_some());
                let body = if batch && grouped {
                    GROUPED_BATCH_BODY
                } else {
                    body
                };
                let what = format!("`{}.{}`", o.name.value, op.name.value);
                let main = Names {
                    ungrouped_batch: batch && !grouped,
                    ..names(what.clone(), body)
                };
                let item_names = names(format!("the item of {what}"), item);
                if let Some(plan) = self.operation(&mut templates, o, op, &main, &item_names) {
                    operations.insert(op.name.value.clone(), plan);
                }
            }
            let plan = ObjectPlan {
                name: o.name.value.clone(),
                fields: o
                    .fields
                    .iter()
                    .map(|f| DeclaredField {
                        name: f.name.value.clone(),
                        label: f.label.clone(),
                        description: f.description.clone(),
                        ty: f.format.trim_end_matches('?').to_string(),
                        options: f.options.clone(),
                        required: f.required,
                        location: self.sources.locate(f.name.span),
                    })
                    .collect(),
                response: self.response(o),
                operations,
                errors: self.error_rules(&o.errors),
            };
            objects.insert(o.name.value.clone(), plan);
        }

        if self.error_count() > errors_before {
            return None;
        }
        Some(ProviderPlan {
            name: doc.name.value.clone(),
            description: doc.description.clone(),
            base_url: base_url?,
            auth: auth?,
            rate_limit: doc.rate_limit.as_ref().map(|r| r.value),
            retry: doc.retry.as_ref().map(|r| r.value.clone()),
            timeout: doc.timeout.as_ref().map(|t| t.value),
            headers,
            secrets: doc
                .secrets
                .iter()
                .map(|(n, r)| (n.value.clone(), r.value.clone()))
                .collect(),
            vars,
            rate_limit_headers,
            templates,
            objects,
            errors,
            sql,
            config: doc
                .config
                .iter()
                .map(|c| crate::plan::provider::ConfigField {
                    name: c.name.value.clone(),
                    label: c
                        .label
                        .as_ref()
                        .map_or_else(|| c.name.value.clone(), |l| l.value.clone()),
                    description: c.description.clone(),
                    sensitive: c.sensitive,
                    required: c.required,
                })
                .collect(),
            connect: connect.flatten(),
            location: self.sources.locate(doc.name.span),
        })
    }

    fn base_url(
        &mut self,
        templates: &mut Templates,
        url: &Spanned<String>,
        names: &Names<'_>,
    ) -> Option<BaseUrl> {
        let t = url.value.trim();
        if t.starts_with("${") {
            return Some(BaseUrl::Secret(t.to_string()));
        }
        if has_template_syntax(t) {
            let source = Source {
                text: &url.value,
                span: url.span,
            };
            return self
                .text(templates, &source, Target::Plain, names)
                .map(BaseUrl::Template);
        }
        if let Err(e) = url::Url::parse(t) {
            self.report(
                Diagnostic::new(
                    Code::InvalidValue,
                    url.span,
                    format!("`base_url` `{t}` is not a valid URL: {e}"),
                )
                .with_help("write the API's root URL, e.g. `https://api.hubapi.com`"),
            );
            return None;
        }
        Some(BaseUrl::Literal(t.trim_end_matches('/').to_string()))
    }

    // -----------------------------------------------------------------------------------------
    // Templates

    /// Compiles a text template: syntax, variables, secrets, filters and tests.
    fn text(
        &mut self,
        templates: &mut Templates,
        source: &Source<'_>,
        target: Target,
        names: &Names<'_>,
    ) -> Option<Text> {
        if !has_template_syntax(source.text) {
            return Some(Text::Literal(source.text.to_string()));
        }
        let name = self.template(templates, source, source.text, target, names, 0)?;
        let secret = templates
            .variables(&name, target)
            .iter()
            .any(|v| v == "secrets");
        Some(Text::Template {
            name,
            target,
            secret,
        })
    }

    /// Adds `compiled` (the source text, or a rewrite of it whose offsets are `shift` bytes
    /// after the source's) and checks what it reads.
    fn template(
        &mut self,
        templates: &mut Templates,
        source: &Source<'_>,
        compiled: &str,
        target: Target,
        names: &Names<'_>,
        shift: usize,
    ) -> Option<String> {
        let at = |cx: &Self, range: Option<std::ops::Range<usize>>| -> Span {
            let (start, end) = range.map_or((0, source.text.len()), |r| {
                (r.start.saturating_sub(shift), r.end.saturating_sub(shift))
            });
            source.span.inner(cx.sources, source.text, start, end)
        };
        let name = match templates.add(compiled, target) {
            Ok(name) => name,
            Err(e) => {
                let span = at(self, e.range.clone());
                self.report(
                    Diagnostic::new(
                        Code::TemplateSyntax,
                        span,
                        match &e.detail {
                            Some(d) => {
                                format!("template error in {}: {}: {d}", names.what, e.message)
                            }
                            None => format!("template error in {}: {}", names.what, e.message),
                        },
                    )
                    .with_label("here")
                    .with_help(
                        "templates use minijinja syntax: `{{ key }}`, `{% if x %}…{% endif %}`",
                    ),
                );
                return None;
            }
        };
        let mut ok = true;
        for var in templates.variables(&name, target) {
            if names.knows(&var) {
                continue;
            }
            ok = false;
            let span = self.find_in(source, &var);
            let candidates = names.candidates();
            let available = if candidates.is_empty() {
                "its templates read no values".to_string()
            } else {
                format!("its templates read {}", list(&candidates))
            };
            let help = suggest(&var, candidates.iter().copied()).unwrap_or_else(|| {
                format!("{available}; values from the embedding application are declared in the provider's `vars:`")
            });
            self.report(
                Diagnostic::new(
                    Code::UnknownVariable,
                    span,
                    format!("`{var}` is not available in {}", names.what),
                )
                .with_label(available)
                .with_help(help),
            );
        }
        if names.ungrouped_batch
            && templates
                .variables(&name, target)
                .iter()
                .any(|v| v == "first")
        {
            let span = self.find_in(source, "first");
            self.report(
                Diagnostic::new(
                    Code::FirstItemForBatch,
                    span,
                    format!("{} reads `first`: the first item's value is sent for the whole batch", names.what),
                )
                .with_label("one item's value for every item of the request")
                .with_help("when it can differ between items (a tenant, an account), add `batch: { group_by: <field> }` to the operation so each request holds one value, and read it as `{{ group }}`"),
            );
        }
        for secret in templates.secret_reads(&name, target) {
            if names.secrets.contains(&secret) {
                continue;
            }
            ok = false;
            let span = self.find_in(source, &format!("secrets.{secret}"));
            let help =
                suggest(&secret, names.secrets.iter().map(String::as_str)).unwrap_or_else(|| {
                    format!(
                        "declare it in the provider: `secrets: {{ {secret}: \"${{env:{}}}\" }}`",
                        secret.to_ascii_uppercase()
                    )
                });
            self.report(
                Diagnostic::new(
                    Code::UnknownProviderSecret,
                    span,
                    format!(
                        "{} reads secret `{secret}`, which the provider does not declare",
                        names.what
                    ),
                )
                .with_label("not under the provider's `secrets:`")
                .with_help(help),
            );
        }
        for (what, unknown) in templates.unknown_filters(&name, target) {
            ok = false;
            let span = self.find_in(source, &unknown);
            let known: &[&str] = if what == "filter" {
                &[
                    "soql",
                    "upper",
                    "lower",
                    "trim",
                    "default",
                    "join",
                    "length",
                    "replace",
                    "tojson",
                    "urlencode",
                ]
            } else {
                &["defined", "none", "number", "string", "odd", "even"]
            };
            let help = suggest(&unknown, known.iter().copied()).unwrap_or_else(|| {
                format!("use one of minijinja's builtin {what}s, or `soql` to escape a SOQL string literal")
            });
            self.report(
                Diagnostic::new(
                    Code::UnknownTemplateFilter,
                    span,
                    format!("unknown {what} `{unknown}` in {}", names.what),
                )
                .with_label(format!("no {what} with this name"))
                .with_help(help),
            );
        }
        ok.then_some(name)
    }

    /// The span of `needle`'s first occurrence in the template source (the whole source when
    /// it is not found verbatim).
    fn find_in(&self, source: &Source<'_>, needle: &str) -> Span {
        let found = source.text.find(needle);
        let span = match found {
            Some(at) => source
                .span
                .inner(self.sources, source.text, at, at + needle.len()),
            None => source
                .span
                .inner(self.sources, source.text, 0, source.text.len()),
        };
        // A string of a body carries the whole body's span: where it is written verbatim
        // inside it, point at it there.
        if span != source.span || source.text.is_empty() {
            return span;
        }
        let Some(file) = self.sources.get(source.span.file) else {
            return span;
        };
        let (start, end) = (source.span.start as usize, source.span.end as usize);
        let Some(at) = file
            .text
            .get(start..end)
            .and_then(|region| region.find(source.text))
        else {
            return span;
        };
        let base = start + at;
        let (s, e) = found.map_or((base, base + source.text.len()), |f| {
            (base + f, base + f + needle.len())
        });
        Span::new(source.span.file, s as u32, e as u32)
    }

    /// Compiles a body template: every string in it may be a template; a string that is
    /// exactly one `{{ expression }}` stands for the expression's JSON value.
    fn body(
        &mut self,
        templates: &mut Templates,
        value: &Value,
        span: Span,
        names: &Names<'_>,
    ) -> Option<Body> {
        Some(match value {
            Value::String(s) => {
                let source = Source { text: s, span };
                if let Some(inner) = single_expression(s) {
                    match lookup_path(inner) {
                        Some(path) => {
                            // Checked like any template, so unknown roots and secrets are
                            // reported the same way; rendering reads the value directly.
                            self.template(templates, &source, s, Target::Plain, names, 0)?;
                            Body::Lookup(path)
                        }
                        None => {
                            let wrapped = format!("{{{{ ({inner}) | {JSON_FILTER} }}}}");
                            let shift = 4usize.saturating_sub(s.find(inner).unwrap_or(0));
                            let name = self.template(
                                templates,
                                &source,
                                &wrapped,
                                Target::Plain,
                                names,
                                shift,
                            )?;
                            Body::Expr(name)
                        }
                    }
                } else if has_template_syntax(s) {
                    Body::Text(self.template(templates, &source, s, Target::Plain, names, 0)?)
                } else {
                    Body::Literal(value.clone())
                }
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for i in items {
                    match self.body(templates, i, span, names) {
                        Some(b) => out.push(b),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                if out.iter().all(|b| matches!(b, Body::Literal(_))) {
                    Body::Literal(value.clone())
                } else {
                    Body::Array(out)
                }
            }
            Value::Object(fields) => {
                let mut out = Vec::with_capacity(fields.len());
                let mut ok = true;
                for (k, v) in fields {
                    match self.body(templates, v, span, names) {
                        Some(b) => out.push((k.clone(), b)),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                if out.iter().all(|(_, b)| matches!(b, Body::Literal(_))) {
                    Body::Literal(value.clone())
                } else {
                    Body::Object(out)
                }
            }
            other => Body::Literal(other.clone()),
        })
    }

    // -----------------------------------------------------------------------------------------
    // Operations

    fn operation(
        &mut self,
        templates: &mut Templates,
        object: &ObjectDoc,
        op: &Operation,
        names: &Names<'_>,
        item_names: &Names<'_>,
    ) -> Option<OperationPlan> {
        let before = self.error_count();
        let what = names.what.clone();
        let method = Method::from_bytes(op.method.value.as_bytes()).ok();
        let path = self.text(
            templates,
            &Source {
                text: &op.path.value,
                span: op.path.span,
            },
            Target::Path,
            &Names {
                what: format!("the path of {what}"),
                ..*names
            },
        );
        let mut query = Vec::new();
        for (k, v) in &op.query {
            let n = Names {
                what: format!("query parameter `{}` of {what}", k.value),
                ..*names
            };
            let source = Source {
                text: &v.value,
                span: v.span,
            };
            if let Some(t) = self.text(templates, &source, Target::Plain, &n) {
                query.push((k.value.clone(), t));
            }
        }
        let mut headers = Vec::new();
        for (k, v) in &op.headers {
            let name = self.header_name(k);
            let n = Names {
                what: format!("header `{}` of {what}", k.value),
                ..*names
            };
            let source = Source {
                text: &v.value,
                span: v.span,
            };
            let text = self.text(templates, &source, Target::Plain, &n);
            if let (Some(name), Some(text)) = (name, text) {
                headers.push((name, text));
            }
        }
        let body = op.body.as_ref().and_then(|b| {
            let n = Names {
                what: format!("the body of {what}"),
                ..*names
            };
            self.body(templates, &b.value, b.span, &n)
        });
        let item = op.item.as_ref().and_then(|b| {
            let n = Names {
                what: item_names.what.clone(),
                ..*item_names
            };
            self.body(templates, &b.value, b.span, &n)
        });
        let id = self.query(op.id.as_ref());
        let results = self.query(op.results.as_ref());
        let item_errors = self.query(op.item_errors.as_ref());
        let created = self.query(op.created.as_ref());
        let matched = self.query(op.matched.as_ref());
        let total = self.query(op.total.as_ref());
        self.only_for(op, &what);
        let group_by = self.group_by(object, op, &what);
        let fields = if op.name.value == "fields" {
            Some(self.field_mapping(op))
        } else {
            if let Some(f) = &op.field {
                self.only_for_fields(f.span, "field", &what);
            }
            if let Some((k, _)) = op.types.first() {
                self.only_for_fields(k.span, "types", &what);
            }
            None
        };
        if self.error_count() > before {
            return None;
        }
        let (path, body, item) = (path?, body, item);
        self.batch_is_read(templates, op, &what, &path, &query, &headers, body.as_ref());
        if self.error_count() > before {
            return None;
        }
        Some(OperationPlan {
            name: op.name.value.clone(),
            what: format!("{}.{}", object.name.value, op.name.value),
            method: method?,
            path,
            path_source: op.path.value.clone(),
            query,
            headers,
            body,
            item,
            id: id.flatten(),
            results: results.flatten(),
            item_errors: item_errors.flatten(),
            created: created.flatten(),
            max_batch: op.max_batch.as_ref().map(|m| m.value.max(1) as usize),
            group_by: group_by?,
            rate_limit: op.rate_limit.as_ref().map(|r| r.value),
            fields,
            idempotent: op.idempotent.as_ref().is_some_and(|i| i.value),
            matched: matched.flatten(),
            total: total.flatten(),
            max_url_length: op.max_url_length.as_ref().map(|m| m.value as usize),
            location: self.sources.locate(op.name.span),
        })
    }

    /// Keys that only some operations read, on another one (RB5007).
    fn only_for(&mut self, op: &Operation, what: &str) {
        let name = op.name.value.as_str();
        let creates = matches!(name, "create" | "batch_create");
        let batch_search = name == "batch_search";
        let spans = [
            (
                "idempotent",
                op.idempotent.as_ref().map(|s| s.span),
                creates,
                "`create` or `batch_create`",
            ),
            (
                "matched",
                op.matched.as_ref().map(|s| s.span),
                batch_search,
                "`batch_search`",
            ),
            (
                "total",
                op.total.as_ref().map(|s| s.span),
                batch_search,
                "`batch_search`",
            ),
            (
                "max_url_length",
                op.max_url_length.as_ref().map(|s| s.span),
                batch_search,
                "`batch_search`",
            ),
        ];
        for (key, span, applies, readers) in spans {
            let Some(span) = span.filter(|_| !applies) else {
                continue;
            };
            self.report(
                Diagnostic::new(
                    Code::OperationOnlyKey,
                    span,
                    format!("`{key}` has no effect on {what}"),
                )
                .with_label(format!("only {readers} reads it"))
                .with_help(format!(
                    "remove `{key}`, or move it to the object's {readers} operation"
                )),
            );
        }
    }

    /// A batch operation whose request never carries its batch (RB5008): a batch search must
    /// read `values`, a batch create or update its items.
    #[allow(clippy::too_many_arguments)]
    fn batch_is_read(
        &mut self,
        templates: &Templates,
        op: &Operation,
        what: &str,
        path: &Text,
        query: &[(String, Text)],
        headers: &[(HeaderName, Text)],
        body: Option<&Body>,
    ) {
        let (carriers, example): (&[&str], &str) = match op.name.value.as_str() {
            "batch_search" => (
                &["values"],
                r#"e.g. `body: { emails: "{{ values }}" }` or `query: { in: "{{ values | join(',') }}" }`"#,
            ),
            "batch_create" | "batch_update" => {
                (BATCH_CARRIERS, r#"e.g. `body: { records: "{{ items }}" }`"#)
            }
            _ => return,
        };
        let mut reads = BTreeSet::new();
        let mut text = |t: &Text| {
            if let Text::Template { name, target, .. } = t {
                reads.extend(templates.variables(name, *target));
            }
        };
        text(path);
        query.iter().for_each(|(_, t)| text(t));
        headers.iter().for_each(|(_, t)| text(t));
        if let Some(b) = body {
            body_reads(templates, b, &mut reads);
        }
        if carriers.iter().any(|c| reads.contains(*c)) {
            return;
        }
        self.report(
            Diagnostic::new(
                Code::BatchNotRead,
                op.name.span,
                format!(
                    "{what} never sends its batch: no template reads {}",
                    list(carriers)
                ),
            )
            .with_label("every request of this operation would look the same")
            .with_help(format!(
                "write {}{} into the path, query or body; {example}",
                if carriers.len() > 1 { "one of " } else { "" },
                list(carriers)
            )),
        );
    }

    /// `batch.group_by`: an expression over one item's payload, the object's declared fields
    /// as its names. `Some(None)` when absent, `None` when invalid (reported).
    fn group_by(
        &mut self,
        object: &ObjectDoc,
        op: &Operation,
        what: &str,
    ) -> Option<Option<GroupBy>> {
        let Some(batch) = &op.batch else {
            return Some(None);
        };
        let Some(text) = &batch.group_by else {
            return Some(None);
        };
        if !is_batch(&op.name.value) {
            self.report(
                Diagnostic::new(
                    Code::GroupByNotBatch,
                    batch.span,
                    format!("{what} sends one record per request: `batch.group_by` has no effect"),
                )
                .with_label("not a batch operation")
                .with_help(
                    "group the items of a batch operation (`batch_upsert`), or remove `batch:`",
                ),
            );
            return None;
        }
        // Fields the mapping may leave out are null here.
        let fields: BTreeMap<String, Type> = object
            .fields
            .iter()
            .map(|f| {
                let ty = if f.required {
                    f.ty.value.clone()
                } else {
                    Type::optional(f.ty.value.clone())
                };
                (f.name.value.clone(), ty)
            })
            .collect();
        let scope = Scope {
            registry: self.registry,
            record: (!fields.is_empty()).then_some(&fields),
            bindings: &[],
        };
        let at = self.compile_expr(text, &scope)?;
        if matches!(at.ty.non_null(), Type::Array(_) | Type::Object) {
            self.report(
                Diagnostic::new(
                    Code::GroupByType,
                    text.span,
                    format!("the group key of {what} is `{}`: items are grouped by a string, number or bool", at.ty),
                )
                .with_label("an array or object")
                .with_help("group by one field (`tenantId`), or build a text key: `\"${region}/${tenant}\"`"),
            );
            return None;
        }
        Some(Some(GroupBy {
            compiled: at.compiled,
            source: text.value.clone(),
        }))
    }

    fn only_for_fields(&mut self, span: Span, key: &str, what: &str) {
        self.report(
            Diagnostic::new(
                Code::FieldsOnlyKey,
                span,
                format!("`{key}` has no effect on {what}"),
            )
            .with_label("only a `fields` operation reads it")
            .with_help(format!("move `{key}` to the object's `fields` operation")),
        );
    }

    /// A JSONPath query: `Some(None)` when absent, `None` when invalid (reported).
    fn query(&mut self, text: Option<&Spanned<String>>) -> Option<Option<Query>> {
        let Some(text) = text else {
            return Some(None);
        };
        match Query::compile(&text.value) {
            Ok(q) => Some(Some(q)),
            Err(e) => {
                let (start, end) = e.offset.map_or((0, text.value.len()), |o| {
                    (o, (o + 1).min(text.value.len()))
                });
                let span = text.span.inner(self.sources, &text.value, start, end);
                self.report(
                    Diagnostic::new(Code::InvalidJsonPath, span, e.message)
                        .with_label("in this query")
                        .with_help(
                            "examples: `$.results[*]`, `$.id`, `$.payload.contact.id`, `$[*]`",
                        ),
                );
                None
            }
        }
    }

    fn response(&mut self, object: &ObjectDoc) -> ResponsePlan {
        let Some(r) = &object.response else {
            return ResponsePlan::default();
        };
        ResponsePlan {
            id: self.query(r.id.as_ref()).flatten(),
            updated_at: self.query(r.updated_at.as_ref()).flatten(),
            fields: self.query(r.fields.as_ref()).flatten(),
            omit: r.omit.iter().map(|o| o.value.clone()).collect(),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Discovery

    fn field_mapping(&mut self, op: &Operation) -> FieldMapping {
        let default = FieldMapDoc::default();
        let doc = op.field.as_ref().unwrap_or(&default);
        let scope = Scope {
            registry: self.registry,
            record: None,
            bindings: &[],
        };
        let expr = |cx: &mut Self, text: &Option<Spanned<String>>| -> Option<Compiled> {
            let text = text.as_ref()?;
            cx.compile_expr(text, &scope).map(|e| e.compiled)
        };
        let mut types = BTreeMap::new();
        for (vendor, ours) in &op.types {
            if FIELD_TYPES.contains(&ours.value.as_str()) {
                types.insert(vendor.value.clone(), ours.value.clone());
                continue;
            }
            let help = suggest(&ours.value, FIELD_TYPES.iter().copied())
                .unwrap_or_else(|| format!("the types are {}", list(FIELD_TYPES)));
            self.report(
                Diagnostic::new(
                    Code::UnknownFieldType,
                    ours.span,
                    format!(
                        "`{}` maps to `{}`, which is not a field type",
                        vendor.value, ours.value
                    ),
                )
                .with_label("not a rulebridge field type")
                .with_help(help),
            );
        }
        FieldMapping {
            name: expr(self, &doc.name),
            label: expr(self, &doc.label),
            ty: expr(self, &doc.ty),
            options: expr(self, &doc.options),
            required: expr(self, &doc.required),
            read_only: expr(self, &doc.read_only),
            types,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Errors

    /// Error-rule expressions run over `{status, body, message}`.
    fn error_rules(&mut self, rules: &[ErrorRule]) -> Vec<ErrorRulePlan> {
        let bindings = [
            ("status".to_string(), Type::Number),
            ("body".to_string(), Type::Any),
            ("message".to_string(), Type::optional(Type::String)),
        ];
        let empty = BTreeMap::new();
        let scope = Scope {
            registry: self.registry,
            record: Some(&empty),
            bindings: &bindings,
        };
        let mut out = Vec::with_capacity(rules.len());
        for r in rules {
            let expr = |cx: &mut Self, text: &Option<Spanned<String>>| {
                text.as_ref()
                    .map(|t| cx.compile_expr(t, &scope).map(|e| e.compiled))
            };
            let existing_id = expr(self, &r.existing_id);
            let message = expr(self, &r.message);
            let field = expr(self, &r.field);
            let correlation_id = expr(self, &r.correlation_id);
            out.push(ErrorRulePlan {
                status: r.status.clone(),
                contains: r.contains.as_ref().map(|c| c.value.clone()),
                kind: r.kind.value,
                existing_id: existing_id.flatten(),
                message: message.flatten(),
                field: field.flatten(),
                correlation_id: correlation_id.flatten(),
            });
        }
        out
    }

    // -----------------------------------------------------------------------------------------
    // Auth, headers, pacing

    fn auth(&mut self, doc: &ProviderDoc) -> Option<AuthPlan> {
        let Some(auth) = &doc.auth else {
            return Some(AuthPlan::None);
        };
        let s = |v: &Spanned<String>| v.value.clone();
        Some(match &auth.value {
            doc::Auth::None => AuthPlan::None,
            doc::Auth::ApiKey {
                location,
                name,
                value,
            } => {
                if *location == doc::ApiKeyLocation::Header {
                    self.header_name(name)?;
                }
                AuthPlan::ApiKey {
                    location: *location,
                    name: s(name),
                    value: s(value),
                }
            }
            doc::Auth::Bearer { token } => AuthPlan::Bearer { token: s(token) },
            doc::Auth::Basic { username, password } => AuthPlan::Basic {
                username: s(username),
                password: s(password),
            },
            doc::Auth::OAuth2Refresh {
                token_url,
                client_id,
                client_secret,
                refresh_token,
                scopes,
                base_url_from,
            } => AuthPlan::OAuth2Refresh {
                token_url: s(token_url),
                client_id: s(client_id),
                client_secret: s(client_secret),
                refresh_token: s(refresh_token),
                scopes: scopes.clone(),
                base_url_from: self.query(base_url_from.as_ref())?,
            },
            doc::Auth::OAuth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scopes,
                base_url_from,
            } => AuthPlan::OAuth2ClientCredentials {
                token_url: s(token_url),
                client_id: s(client_id),
                client_secret: s(client_secret),
                scopes: scopes.clone(),
                base_url_from: self.query(base_url_from.as_ref())?,
            },
            doc::Auth::TokenExchange {
                token_url,
                username,
                password,
                token,
                expires,
                keep_alive_url,
            } => {
                let token = self.query(Some(token));
                let expires = self.query(expires.as_ref());
                AuthPlan::TokenExchange {
                    token_url: s(token_url),
                    username: s(username),
                    password: s(password),
                    token: token.flatten()?,
                    expires: expires?,
                    keep_alive_url: keep_alive_url.as_ref().map(s),
                }
            }
        })
    }

    /// A `connect:` section: its URLs (RB5060, RB5064), client secret (RB5061), extra
    /// authorize parameters (RB5062), scopes (RB5063) and `base_url_from` (a JSONPath).
    fn connect(&mut self, c: &doc::ConnectDoc) -> Option<ConnectPlan> {
        let is_ref = |v: &Spanned<String>| v.value.trim().starts_with("${");
        let mut ok = true;
        if let Some(login) = &c.login_url
            && !is_ref(login)
            && !is_http_url(login.value.trim())
        {
            self.report(
                Diagnostic::new(
                    Code::ConnectUrl,
                    login.span,
                    format!("`connect.login_url` `{}` is not an http(s) URL", login.value.trim()),
                )
                .with_label("expected `https://...`")
                .with_help("write the vendor's login origin, e.g. `https://login.salesforce.com`, or a reference such as `${env:SALESFORCE_LOGIN_URL}`"),
            );
            ok = false;
        }
        let mut relative = false;
        for (key, url) in [
            ("authorize_url", &c.authorize_url),
            ("token_url", &c.token_url),
        ] {
            let v = url.value.trim();
            if is_ref(url) {
                continue;
            }
            if v.starts_with('/') {
                relative = true;
                if c.login_url.is_none() {
                    self.report(
                        Diagnostic::new(
                            Code::ConnectUrl,
                            url.span,
                            format!("`connect.{key}` `{v}` is relative, and `connect` has no `login_url` to resolve it against"),
                        )
                        .with_label("relative to what?")
                        .with_help(format!("add `login_url: \"${{env:LOGIN_URL}}\"` (the vendor's login origin) to `connect`, or write `{key}` as a full `https://` URL")),
                    );
                    ok = false;
                }
            } else if !is_http_url(v) {
                self.report(
                    Diagnostic::new(
                        Code::ConnectUrl,
                        url.span,
                        format!("`connect.{key}` `{v}` is not an http(s) URL"),
                    )
                    .with_label("expected `https://...` or a path starting with `/`")
                    .with_help(format!(
                        "write the vendor's {} endpoint, e.g. `https://app.example.com/oauth/{}`",
                        if key == "token_url" {
                            "token"
                        } else {
                            "authorize"
                        },
                        if key == "token_url" {
                            "token"
                        } else {
                            "authorize"
                        }
                    )),
                );
                ok = false;
            }
        }
        if let Some(login) = &c.login_url
            && !relative
            && !is_ref(&c.authorize_url)
            && !is_ref(&c.token_url)
        {
            self.report(
                Diagnostic::new(
                    Code::ConnectLoginUnused,
                    login.span,
                    "`connect.login_url` has no effect: `authorize_url` and `token_url` are full URLs",
                )
                .with_help("write them as paths (`/services/oauth2/authorize`) to resolve them against `login_url`, or remove `login_url`"),
            );
        }
        if !is_ref(&c.redirect_url) && !is_http_url(c.redirect_url.value.trim()) {
            self.report(
                Diagnostic::new(
                    Code::ConnectUrl,
                    c.redirect_url.span,
                    format!("`connect.redirect_url` `{}` is not an http(s) URL", c.redirect_url.value.trim()),
                )
                .with_label("where the vendor sends the user back")
                .with_help("write the URL registered with the vendor's app, or a reference such as `${env:HUBSPOT_REDIRECT_URL}`"),
            );
            ok = false;
        }
        if !is_ref(&c.client_secret) {
            self.report(
                Diagnostic::new(
                    Code::ConnectSecretLiteral,
                    c.client_secret.span,
                    "the client secret is written into the kit",
                )
                .with_label("anyone who can read the rules can act as the app")
                .with_help("read it from the environment or a store: `client_secret: \"${env:VENDOR_CLIENT_SECRET}\"`"),
            );
            ok = false;
        }
        const RESERVED: &[&str] = &[
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "response_type",
        ];
        for (k, _) in &c.params {
            if RESERVED.contains(&k.value.as_str()) {
                self.report(
                    Diagnostic::new(
                        Code::ConnectReservedParam,
                        k.span,
                        format!("`connect.params` sets `{}`, which the connect flow sets itself", k.value),
                    )
                    .with_label("set by rulebridge")
                    .with_help(match k.value.as_str() {
                        "client_id" => "the client id comes from `connect.client_id`; remove this parameter".to_string(),
                        "redirect_uri" => "the redirect URI comes from `connect.redirect_url`; remove this parameter".to_string(),
                        "scope" => "list the scopes under `connect.scopes`; remove this parameter".to_string(),
                        _ => format!("remove `{}`: rulebridge sets it for every authorization", k.value),
                    }),
                );
                ok = false;
            }
        }
        let scopes = c
            .scopes
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_default();
        if scopes.is_empty() {
            let span = c.scopes.as_ref().map_or(c.span, |s| s.span);
            self.report(
                Diagnostic::new(Code::ConnectNoScopes, span, "`connect` asks for no scopes")
                    .with_label("no `scopes`")
                    .with_help("list what the flows need, e.g. `scopes: [crm.objects.contacts.read, crm.objects.contacts.write]`: vendors refuse an authorization without scopes, or grant only the app's defaults"),
            );
        }
        let base_url_from = self.query(c.base_url_from.as_ref());
        if !ok {
            return None;
        }
        let s = |v: &Spanned<String>| v.value.trim().to_string();
        Some(ConnectPlan {
            authorize_url: s(&c.authorize_url),
            token_url: s(&c.token_url),
            login_url: c.login_url.as_ref().map(s),
            scopes,
            client_id: s(&c.client_id),
            client_secret: s(&c.client_secret),
            redirect_url: s(&c.redirect_url),
            params: c
                .params
                .iter()
                .map(|(k, v)| (k.value.clone(), v.value.clone()))
                .collect(),
            base_url_from: base_url_from?,
        })
    }

    fn header_name(&mut self, name: &Spanned<String>) -> Option<HeaderName> {
        match HeaderName::from_bytes(name.value.as_bytes()) {
            Ok(h) => Some(h),
            Err(_) => {
                self.report(
                    Diagnostic::new(
                        Code::InvalidHeader,
                        name.span,
                        format!("`{}` is not a valid HTTP header name", name.value),
                    )
                    .with_label("letters, digits and `-` only")
                    .with_help("header names look like `X-Api-Key` or `Content-Type`"),
                );
                None
            }
        }
    }

    /// Provider-wide headers: values are literals or secret references (resolved at run time).
    fn static_headers(
        &mut self,
        headers: &[(Spanned<String>, Spanned<String>)],
    ) -> Vec<(HeaderName, String)> {
        let mut out = Vec::new();
        for (k, v) in headers {
            let name = self.header_name(k);
            let is_ref = v.value.trim().starts_with("${");
            if !is_ref && HeaderValue::from_str(&v.value).is_err() {
                self.report(
                    Diagnostic::new(
                        Code::InvalidHeader,
                        v.span,
                        format!("header `{}` has a value HTTP does not allow", k.value),
                    )
                    .with_label("control characters or non-ASCII text")
                    .with_help("write a plain ASCII value, or a secret reference `${env:NAME}`"),
                );
                continue;
            }
            if let Some(name) = name {
                out.push((name, v.value.clone()));
            }
        }
        out
    }

    fn rate_limit_headers(&mut self, doc: &ProviderDoc) -> Vec<RateLimitHeader> {
        let Some(entries) = &doc.rate_limit_headers else {
            return default_rate_limit_headers();
        };
        let mut out = Vec::new();
        for e in entries {
            if let Some(remaining) = &e.remaining {
                let remaining = self.header_name(remaining);
                // `Some(None)`: no reset header; `None`: an invalid one (reported).
                let reset = match &e.reset {
                    None => Some(None),
                    Some(r) => self.header_name(r).map(Some),
                };
                if let (Some(remaining), Some(reset)) = (remaining, reset) {
                    out.push(RateLimitHeader::Window {
                        remaining,
                        reset,
                        unit: e.unit,
                        wait: e.wait.as_ref().map_or(DEFAULT_WINDOW_WAIT, |w| w.value),
                    });
                }
            }
            if let Some(usage) = &e.usage {
                let header = self.header_name(usage);
                let pattern = match &e.pattern {
                    None => {
                        self.report(
                            Diagnostic::new(
                                Code::InvalidUsagePattern,
                                usage.span,
                                "a `usage` header needs a `pattern`",
                            )
                            .with_label("no pattern to read it with")
                            .with_help(r#"add `pattern: "api-usage=(\d+)/(\d+)"`: a regex whose two groups are the used and the allowed count"#),
                        );
                        None
                    }
                    Some(p) => match regex::Regex::new(&p.value) {
                        Ok(re) if re.captures_len() >= 3 => Some(re),
                        Ok(_) => {
                            self.report(
                                Diagnostic::new(
                                    Code::InvalidUsagePattern,
                                    p.span,
                                    "the usage pattern needs two groups: used and limit",
                                )
                                .with_help(r#"e.g. `api-usage=(\d+)/(\d+)`"#),
                            );
                            None
                        }
                        Err(err) => {
                            self.report(
                                Diagnostic::new(
                                    Code::InvalidUsagePattern,
                                    p.span,
                                    format!("invalid regex: {err}"),
                                )
                                .with_help(r#"e.g. `api-usage=(\d+)/(\d+)`"#),
                            );
                            None
                        }
                    },
                };
                if let (Some(header), Some(pattern)) = (header, pattern) {
                    out.push(RateLimitHeader::Usage { header, pattern });
                }
            }
        }
        out
    }
}

/// The top-level variables a compiled body reads.
fn body_reads(templates: &Templates, b: &Body, out: &mut BTreeSet<String>) {
    match b {
        Body::Literal(_) => {}
        Body::Lookup(path) => out.extend(path.first().cloned()),
        Body::Expr(name) | Body::Text(name) => out.extend(templates.variables(name, Target::Plain)),
        Body::Array(items) => items.iter().for_each(|i| body_reads(templates, i, out)),
        Body::Object(fields) => fields
            .iter()
            .for_each(|(_, v)| body_reads(templates, v, out)),
    }
}

/// Without `rate_limit_headers`, the common convention: `X-RateLimit-Remaining` with
/// `X-RateLimit-Reset`, and the IETF draft's `RateLimit-Remaining` with `RateLimit-Reset`.
fn default_rate_limit_headers() -> Vec<RateLimitHeader> {
    [
        ("x-ratelimit-remaining", "x-ratelimit-reset"),
        ("ratelimit-remaining", "ratelimit-reset"),
    ]
    .into_iter()
    .map(|(remaining, reset)| RateLimitHeader::Window {
        remaining: HeaderName::from_static(remaining),
        reset: Some(HeaderName::from_static(reset)),
        unit: doc::ResetUnit::Seconds,
        wait: DEFAULT_WINDOW_WAIT,
    })
    .collect()
}

/// An absolute `http://` or `https://` URL with a host.
fn is_http_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

fn list(items: &[&str]) -> String {
    let mut seen = BTreeSet::new();
    items
        .iter()
        .filter(|i| seen.insert(**i))
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Context<'_> {
    /// `config:` fields and what the kit reads: every declared field is read (RB5050), and a
    /// kit that declares its fields reads no `${secret:THIS.NAME}` it does not declare
    /// (RB5051: `rulebridge creds set` would never ask for it). A `test` operation only reads
    /// (RB5052).
    fn check_config(&mut self, doc: &ProviderDoc) {
        for obj in &doc.objects {
            for op in &obj.operations {
                let m = &op.method;
                if op.name.value == "test" && !m.value.eq_ignore_ascii_case("GET") {
                    self.report(
                        Diagnostic::new(
                            Code::TestWrites,
                            m.span,
                            format!("the `test` operation of `{}.{}` is a {}", doc.name.value, obj.name.value, m.value),
                        )
                        .with_help("a connection test runs before anything is synced: read something small, e.g. `GET` one record or the account's profile"),
                    );
                }
            }
        }
        if doc.config.is_empty() {
            return;
        }
        let Some(text) = self.sources.slice(doc.span) else {
            return;
        };
        let provider = doc.name.value.as_str();
        // References written in the kit (not in comments), with their offsets.
        let mut reads: Vec<(usize, String)> = Vec::new();
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            let code = line.find('#').map_or(line, |h| {
                // `#` inside a reference (`${vault:a#b}`) or a quoted string is no comment;
                // a comment starts a line or follows a space.
                if h == 0 || line[..h].ends_with(' ') && !line[..h].contains('"') {
                    &line[..h]
                } else {
                    line
                }
            });
            let mut rest = code;
            let mut at = 0;
            while let Some(i) = rest.find("${") {
                let Some(end) = rest[i..].find('}') else {
                    break;
                };
                reads.push((offset + at + i, rest[i + 2..i + end].to_string()));
                at += i + end + 1;
                rest = &rest[i + end + 1..];
            }
            offset += line.len();
        }
        for field in &doc.config {
            let full = format!("{provider}.{}", field.name.value);
            let env = crate::state::env_name(&full);
            let read = reads.iter().any(|(_, r)| {
                r.strip_prefix("secret:") == Some(full.as_str())
                    || r.strip_prefix("env:") == Some(env.as_str())
            });
            if !read {
                self.report(
                    Diagnostic::new(
                        Code::ConfigUnread,
                        field.name.span,
                        format!("`{provider}` declares the setting `{}` but never reads it", field.name.value),
                    )
                    .with_help(format!("read it as `${{secret:{full}}}` (the tenant's stored value, then the environment variable {env}) or `${{env:{env}}}`, or remove it")),
                );
            }
        }
        let declared: Vec<&str> = doc.config.iter().map(|c| c.name.value.as_str()).collect();
        for (at, r) in &reads {
            let Some(name) = r
                .strip_prefix("secret:")
                .and_then(|n| n.strip_prefix(provider))
                .and_then(|n| n.strip_prefix('.'))
            else {
                continue;
            };
            if declared.contains(&name) {
                continue;
            }
            let start = doc.span.start + u32::try_from(*at).unwrap_or(0);
            let len = u32::try_from(r.len() + 3).unwrap_or(0);
            let mut d = Diagnostic::new(
                Code::ConfigUndeclared,
                Span::new(doc.span.file, start, start + len),
                format!("`${{{r}}}` reads a setting `{provider}` does not declare under `config:`"),
            );
            d = match crate::diagnostic::did_you_mean(name, declared.iter().copied()) {
                Some(c) => d.with_help(format!("did you mean `${{secret:{provider}.{c}}}`?")),
                None => d.with_help(format!(
                    "declare `{name}` under `config:` (label, sensitive, required) so `rulebridge creds set {provider}` asks for it"
                )),
            };
            self.report(d);
        }
    }
}
