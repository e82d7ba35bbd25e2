//! `kind: flow` documents.

use super::decode::{Cx, Fields};
use super::doc::{
    DuplicateRule, FlowDoc, LetDecl, Mapping, MappingEntry, MappingOptions, MappingValue, OnMatch,
    OnMultiple, RefDoc, RefKey, Repeats, SourceSpec, Spanned, TargetSpec,
};
use super::node::{Node, NodeKind};
use super::testcase::{self, Subject};
use crate::diagnostic::{Code, Diagnostic};

pub(crate) const KEYS: &[&str] = &[
    "kind",
    "name",
    "description",
    "source",
    "target",
    "key",
    "secrets",
    "policy",
    "let",
    "mapping",
    "options",
    "duplicates",
    "depends_on",
    "tests",
];

pub(crate) const ON_MATCH: &[(&str, OnMatch)] = &[
    ("update", OnMatch::Update),
    ("skip", OnMatch::Skip),
    ("create_new", OnMatch::CreateNew),
    ("merge", OnMatch::Merge),
];

pub(crate) const REPEATS: &[(&str, Repeats)] = &[
    ("in_order", Repeats::InOrder),
    ("last_wins", Repeats::LastWins),
    ("fail", Repeats::Fail),
];

pub(crate) const ON_MULTIPLE: &[(&str, OnMultiple)] = &[
    ("fail", OnMultiple::Fail),
    ("first", OnMultiple::First),
    ("most_recent", OnMultiple::MostRecent),
];

pub(crate) const SOURCE_KEYS: &[&str] = &["record", "require", "filter"];
pub(crate) const TARGET_KEYS: &[&str] = &["provider", "object"];
pub(crate) const OPTIONS_KEYS: &[&str] = &["omit_nulls", "required", "audit_payloads"];
/// Keys of a typed named value: `NAME: { type, expr }`.
pub(crate) const LET_KEYS: &[&str] = &["type", "expr", "description"];

pub(crate) const DUPLICATES_KEYS: &[&str] = &["match", "on_match", "on_multiple", "repeats"];

/// Keys with a meaning inside a mapping entry written as a mapping.
pub(crate) const VALUE_FORMS: &[&str] = &["value", "template", "expr", "fields"];

/// Keys of a reference, `{ ref: OBJECT, where: { FIELD: EXPR, .. } }`: a mapping entry with a
/// `ref` key is one (a nested object with a field named `ref` is written `{ fields: {..} }`).
pub(crate) const REF_KEYS: &[&str] = &["ref", "where"];

pub(crate) fn decode(cx: &mut Cx<'_>, f: &Fields<'_>, name: Spanned<String>) -> Option<FlowDoc> {
    let description = f.opt(cx, "description", |cx, n, _| cx.string(n).map(|s| s.value));
    let source = f.opt(cx, "source", source).unwrap_or_default();
    let target = f.require(cx, "target", target);
    let key = f.opt(cx, "key", |cx, n, _| cx.string(n));
    let secrets = f
        .opt(cx, "secrets", |cx, n, _| Some(secrets(cx, n)))
        .unwrap_or_default();
    let policy = f.opt(cx, "policy", |cx, n, _| cx.string(n));
    let lets = f
        .opt(cx, "let", |cx, n, _| Some(lets(cx, n)))
        .unwrap_or_default();
    let mapping = f.require(cx, "mapping", |cx, n, _| Some(mapping(cx, n)));
    let options = f.opt(cx, "options", options).unwrap_or_default();
    let duplicates = f.opt(cx, "duplicates", duplicates);
    let depends_on = f
        .opt(cx, "depends_on", |cx, n, _| Some(cx.string_list(n)))
        .unwrap_or_default();
    let tests = f
        .opt(cx, "tests", |cx, n, _| {
            Some(testcase::cases(cx, n, Subject::Flow))
        })
        .unwrap_or_default();
    Some(FlowDoc {
        name,
        description,
        source,
        target: target?,
        key,
        secrets,
        policy,
        lets,
        mapping: mapping.unwrap_or_default(),
        options,
        duplicates,
        depends_on,
        tests,
        span: f.span,
    })
}

/// `source: { record, require, filter }`, or `source: RECORD` for short.
fn source(cx: &mut Cx<'_>, node: &Node, key: crate::span::Span) -> Option<SourceSpec> {
    if let NodeKind::String(s) = &node.kind {
        return Some(SourceSpec {
            record: Some(Spanned::new(s.clone(), node.span)),
            ..SourceSpec::default()
        });
    }
    let f = cx.fields(node, Some(key), SOURCE_KEYS)?;
    Some(SourceSpec {
        record: f.opt(cx, "record", |cx, n, _| cx.string(n)),
        require: f
            .opt(cx, "require", |cx, n, _| Some(cx.string_list(n)))
            .unwrap_or_default(),
        filter: f.opt(cx, "filter", |cx, n, _| cx.string(n)),
    })
}

fn target(cx: &mut Cx<'_>, node: &Node, key: crate::span::Span) -> Option<TargetSpec> {
    if node.as_map().is_none() {
        cx.wrong_type(
            node,
            "a mapping",
            Some("write `target: { provider: NAME, object: NAME }`".into()),
        );
        return None;
    }
    let f = cx.fields(node, Some(key), TARGET_KEYS)?;
    let provider = f.require(cx, "provider", |cx, n, _| cx.string(n));
    let object = f.require(cx, "object", |cx, n, _| cx.string(n));
    Some(TargetSpec {
        provider: provider?,
        object: object?,
    })
}

/// `secrets: { NAME: "${env:VAR}" }`: each value must reference a secret, never hold one.
pub(crate) fn secrets(cx: &mut Cx<'_>, node: &Node) -> Vec<(Spanned<String>, Spanned<String>)> {
    let pairs = cx.string_map(node, true);
    for (name, value) in &pairs {
        if !value.value.contains("${") {
            let d = Diagnostic::new(
                Code::InvalidSecretRef,
                value.span,
                format!(
                    "secret `{}` in {} is not a secret reference",
                    name.value,
                    cx.here()
                ),
            )
            .with_label("a literal value here would put the secret in the rule file")
            .with_help(format!(
                "reference it instead, e.g. `${{env:{}}}`",
                name.value.to_ascii_uppercase()
            ));
            cx.push(d);
        }
    }
    pairs
}

/// `let: { NAME: EXPR | { type: TYPE, expr: EXPR } }`, in the order written.
fn lets(cx: &mut Cx<'_>, node: &Node) -> Vec<LetDecl> {
    let mut out = Vec::new();
    for (name, key, value) in cx.entries(node) {
        let decl = cx.at(name.value.clone(), |cx| let_decl(cx, name, key.span, value));
        out.extend(decl);
    }
    out
}

fn let_decl(
    cx: &mut Cx<'_>,
    name: Spanned<String>,
    key: crate::span::Span,
    node: &Node,
) -> Option<LetDecl> {
    if !is_name(&name.value) {
        let d = Diagnostic::new(
            Code::InvalidValue,
            name.span,
            format!("`{}` cannot name a value in {}", name.value, cx.here()),
        )
        .with_label("not a plain name")
        .with_help(
            "names start with a letter or `_` and hold letters, digits and `_` (e.g. \
             `full_name`); `null true false if then else in` are reserved",
        );
        cx.push(d);
        return None;
    }
    let (ty, ty_text, expr) = match &node.kind {
        NodeKind::String(_) | NodeKind::Number(_) | NodeKind::Bool(_) => {
            (None, String::new(), cx.text(node)?)
        }
        NodeKind::Map(_) => {
            let f = cx.fields(node, Some(key), LET_KEYS)?;
            let ty = f.opt(cx, "type", |cx, n, _| super::record::type_name(cx, n));
            let expr = f.require(cx, "expr", |cx, n, _| cx.text(n))?;
            match ty {
                Some((t, text)) => (Some(t), text, expr),
                None if f.has("type") => return None,
                None => (None, String::new(), expr),
            }
        }
        _ => {
            cx.wrong_type(
                node,
                "an expression or a mapping",
                Some("write `NAME: EXPR` or `NAME: { type: string, expr: EXPR }`".into()),
            );
            return None;
        }
    };
    Some(LetDecl {
        name,
        ty,
        ty_text,
        expr,
    })
}

/// A name an expression can read: an identifier that is not a keyword.
fn is_name(s: &str) -> bool {
    const KEYWORDS: &[&str] = &["null", "true", "false", "if", "then", "else", "in"];
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&s)
}

/// A mapping of target fields to how each is produced.
pub(crate) fn mapping(cx: &mut Cx<'_>, node: &Node) -> Mapping {
    let mut entries = Vec::new();
    for (target, _, value) in cx.entries(node) {
        let v = cx.at(target.value.clone(), |cx| mapping_value(cx, value));
        if let Some(value) = v {
            entries.push(MappingEntry { target, value });
        }
    }
    Mapping { entries }
}

fn mapping_value(cx: &mut Cx<'_>, node: &Node) -> Option<MappingValue> {
    match &node.kind {
        NodeKind::String(s) => Some(MappingValue::Expr(Spanned::new(s.clone(), node.span))),
        NodeKind::Null if node.span.start == node.span.end => {
            cx.wrong_type(
                node,
                "an expression",
                Some("write an expression, or `{ value: null }` for a null constant".into()),
            );
            None
        }
        NodeKind::Null | NodeKind::Bool(_) | NodeKind::Number(_) => {
            Some(MappingValue::Const(cx.json(node)))
        }
        NodeKind::Seq(_) => {
            cx.wrong_type(
                node,
                "an expression or a mapping",
                Some(
                    "for a constant list write `{ value: [...] }`; for a computed one write an \
                     expression in quotes, e.g. `\"[a, b]\"`"
                        .into(),
                ),
            );
            None
        }
        NodeKind::Map(entries) if entries.iter().any(|(k, _)| k.as_str() == Some("ref")) => {
            reference(cx, node).map(MappingValue::Ref)
        }
        NodeKind::Map(entries) => {
            let form = match entries.as_slice() {
                [(k, v)] => k
                    .as_str()
                    .filter(|k| VALUE_FORMS.contains(k))
                    .map(|k| (k, v)),
                _ => None,
            };
            match form {
                Some(("value", v)) => Some(MappingValue::Const(cx.json(v))),
                Some(("template", v)) => cx
                    .at("template", |cx| cx.string(v))
                    .map(MappingValue::Template),
                Some(("expr", v)) => cx.at("expr", |cx| cx.string(v)).map(MappingValue::Expr),
                Some((_, v)) => {
                    let inner = cx.at("fields", |cx| mapping(cx, v));
                    Some(MappingValue::Nested(inner, v.span))
                }
                None => Some(MappingValue::Nested(mapping(cx, node), node.span)),
            }
        }
    }
}

/// `{ ref: OBJECT, where: { FIELD: EXPR | { ref: .. }, .. } }`.
fn reference(cx: &mut Cx<'_>, node: &Node) -> Option<RefDoc> {
    let f = cx.fields(node, None, REF_KEYS)?;
    let object = f.require(cx, "ref", |cx, n, _| cx.string(n));
    let by = f.require(cx, "where", |cx, n, _| {
        let mut by = Vec::new();
        for (field, _, value) in cx.entries(n) {
            let key = cx.at(field.value.clone(), |cx| match &value.kind {
                NodeKind::Map(entries)
                    if entries.iter().any(|(k, _)| k.as_str() == Some("ref")) =>
                {
                    reference(cx, value).map(|r| RefKey::Ref(Box::new(r)))
                }
                NodeKind::String(_) | NodeKind::Number(_) | NodeKind::Bool(_) => {
                    cx.text(value).map(RefKey::Expr)
                }
                _ => {
                    cx.wrong_type(
                        value,
                        "an expression or a reference",
                        Some(
                            "write `FIELD: EXPR` (e.g. `external_id: '\"billing-${id}\"'`) or \
                             `FIELD: { ref: OBJECT, where: {..} }`"
                                .into(),
                        ),
                    );
                    None
                }
            });
            by.extend(key.map(|k| (field, k)));
        }
        if by.is_empty() {
            let d = Diagnostic::new(
                Code::MissingField,
                n.span,
                format!("{} names no field to find the record by", cx.here()),
            )
            .with_label("no fields")
            .with_help("write `where: { FIELD: EXPR }`, e.g. `where: { external_id: billing_id }`");
            cx.push(d);
            return None;
        }
        Some(by)
    });
    Some(RefDoc {
        object: object?,
        by: by?,
        span: node.span,
    })
}

fn options(cx: &mut Cx<'_>, node: &Node, key: crate::span::Span) -> Option<MappingOptions> {
    let f = cx.fields(node, Some(key), OPTIONS_KEYS)?;
    Some(MappingOptions {
        omit_nulls: f
            .opt(cx, "omit_nulls", |cx, n, _| cx.bool(n))
            .unwrap_or(false),
        required: f
            .opt(cx, "required", |cx, n, _| Some(cx.string_list(n)))
            .unwrap_or_default(),
        audit_payloads: f
            .opt(cx, "audit_payloads", |cx, n, _| cx.bool(n))
            .unwrap_or(false),
    })
}

fn duplicates(cx: &mut Cx<'_>, node: &Node, key: crate::span::Span) -> Option<DuplicateRule> {
    let f = cx.fields(node, Some(key), DUPLICATES_KEYS)?;
    let match_keys = f.require(cx, "match", |cx, n, _| Some(cx.string_list(n)));
    let on_match = f
        .opt(cx, "on_match", |cx, n, _| {
            cx.choice(n, ON_MATCH, "duplicate policy")
        })
        .unwrap_or(Spanned::new(OnMatch::Update, key));
    let on_multiple = f
        .opt(cx, "on_multiple", |cx, n, _| {
            cx.choice(n, ON_MULTIPLE, "multiple-match policy")
        })
        .unwrap_or(Spanned::new(OnMultiple::Fail, key));
    let repeats = f
        .opt(cx, "repeats", |cx, n, _| {
            cx.choice(n, REPEATS, "repeated-identity policy")
        })
        .unwrap_or(Spanned::new(Repeats::InOrder, key));
    let match_keys = match_keys?;
    if match_keys.is_empty()
        && let Some(n) = f.get("match")
    {
        let d = Diagnostic::new(
            Code::MissingField,
            n.span,
            format!("{} needs at least one match key", cx.here()),
        )
        .with_label("no match keys")
        .with_help("list the payload fields that identify a record, e.g. `match: [email]`");
        cx.push(d);
    }
    Some(DuplicateRule {
        match_keys,
        on_match,
        on_multiple,
        repeats,
        span: f.span,
    })
}
