//! `kind: record` documents and field declarations (shared with provider objects).

use super::decode::closest;
use super::decode::{Cx, Fields};
use super::doc::{FieldDecl, RecordDoc, Spanned};
use super::node::{Node, NodeKind};
use crate::diagnostic::{Code, Diagnostic};
use crate::span::Span;
use crate::types::Type;

pub(crate) const KEYS: &[&str] = &["kind", "name", "description", "fields"];

pub(crate) const FIELD_KEYS: &[&str] = &[
    "type",
    "required",
    "options",
    "label",
    "description",
    "sensitive",
];

pub(crate) fn decode(cx: &mut Cx<'_>, f: &Fields<'_>, name: Spanned<String>) -> Option<RecordDoc> {
    let description = f.opt(cx, "description", |cx, n, _| cx.string(n).map(|s| s.value));
    let fields = f.require(cx, "fields", |cx, n, _| Some(field_decls(cx, n)));
    Some(RecordDoc {
        name,
        description,
        fields: fields.unwrap_or_default(),
        span: f.span,
    })
}

/// `fields: { name: TYPE | { type, required, options } }`.
pub(crate) fn field_decls(cx: &mut Cx<'_>, node: &Node) -> Vec<FieldDecl> {
    let mut out = Vec::new();
    for (name, key, value) in cx.entries(node) {
        let decl = cx.at(name.value.clone(), |cx| {
            field_decl(cx, name, key.span, value)
        });
        out.extend(decl);
    }
    out
}

fn field_decl(cx: &mut Cx<'_>, name: Spanned<String>, key: Span, node: &Node) -> Option<FieldDecl> {
    if let NodeKind::String(_) = node.kind {
        let (ty, format) = type_name(cx, node)?;
        if format == "enum" {
            enum_without_options(cx, node.span);
        }
        return Some(FieldDecl {
            name,
            ty,
            format,
            required: false,
            options: Vec::new(),
            label: None,
            description: None,
            sensitive: false,
        });
    }
    if node.as_map().is_none() {
        cx.wrong_type(
            node,
            "a type name or a mapping",
            Some("write `name: string` or `name: { type: string, required: true }`".into()),
        );
        return None;
    }
    let f = cx.fields(node, Some(key), FIELD_KEYS)?;
    let ty = f.require(cx, "type", |cx, n, _| type_name(cx, n));
    let required = f
        .opt(cx, "required", |cx, n, _| cx.bool(n))
        .unwrap_or(false);
    let options = f.opt(cx, "options", |cx, n, _| {
        let items = cx.list(n, false);
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            if let Some(s) = cx.item(i, |cx| cx.text(item)) {
                out.push(s.value);
            }
        }
        Some(out)
    });
    let label = f.opt(cx, "label", |cx, n, _| cx.text(n).map(|s| s.value));
    let description = f.opt(cx, "description", |cx, n, _| cx.text(n).map(|s| s.value));
    let sensitive = f
        .opt(cx, "sensitive", |cx, n, _| cx.bool(n))
        .unwrap_or(false);
    let (ty, format) = ty?;
    if format == "enum" && options.as_ref().is_none_or(Vec::is_empty) {
        let at = f.get("options").map_or(f.owner, |n| n.span);
        enum_without_options(cx, at);
    }
    Some(FieldDecl {
        name,
        ty,
        format,
        required,
        options: options.unwrap_or_default(),
        label,
        description,
        sensitive,
    })
}

fn enum_without_options(cx: &mut Cx<'_>, span: Span) {
    let d = Diagnostic::new(
        Code::MissingField,
        span,
        format!("enum field {} has no `options`", cx.here()),
    )
    .with_label("an enum needs its allowed values")
    .with_help("write `{ type: enum, options: [a, b] }`");
    cx.push(d);
}

/// A type name (`string`, `number?`, `array<string>`, `email`, ...) and its text as written.
pub(crate) fn type_name(cx: &mut Cx<'_>, node: &Node) -> Option<(Spanned<Type>, String)> {
    let text = cx.string(node)?;
    match Type::parse(&text.value) {
        Some(t) => Some((Spanned::new(t, text.span), text.value.trim().to_string())),
        None => {
            let written = text.value.trim();
            let (prefix, base, suffix) = split_type(written);
            let help = match closest(base, Type::NAMES) {
                Some(s) => format!("did you mean `{prefix}{s}{suffix}`? "),
                None => String::new(),
            };
            let names = Type::NAMES
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let d = Diagnostic::new(
                Code::InvalidValue,
                text.span,
                format!("unknown type `{written}` in {}", cx.here()),
            )
            .with_label("not a known type")
            .with_help(format!(
                "{help}types are {names}; `T?` makes a type optional and `array<T>` a list"
            ));
            cx.push(d);
            None
        }
    }
}

/// `array<strng>?` → (`array<`, `strng`, `>?`), to suggest a fix for the innermost name.
fn split_type(text: &str) -> (String, &str, String) {
    let mut base = text;
    let mut prefix = String::new();
    let mut suffix = String::new();
    loop {
        if let Some(inner) = base.strip_suffix('?') {
            suffix.insert(0, '?');
            base = inner;
        } else if let Some(inner) = base
            .strip_prefix("array<")
            .and_then(|b| b.strip_suffix('>'))
        {
            prefix.push_str("array<");
            suffix.insert(0, '>');
            base = inner;
        } else {
            return (prefix, base, suffix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_type_wrappers() {
        assert_eq!(
            split_type("array<strng>?"),
            ("array<".to_string(), "strng", ">?".to_string())
        );
        assert_eq!(split_type("nmber"), (String::new(), "nmber", String::new()));
    }
}
