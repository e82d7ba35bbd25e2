//! Decoding helpers shared by the document decoders: checked access to mappings, typed
//! scalars and lists, enums, durations, rates and secret references. Every helper reports
//! what is wrong and returns `None` (or skips the item) so decoding continues.

use std::time::Duration;

use serde_json::Value;

use super::doc::{RateLimit, Spanned};
use super::node::{Node, NodeKind};
use super::values;
use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::span::{SourceMap, Span};

/// The keys of a rate written as a mapping.
pub(crate) const RATE_KEYS: &[&str] = &["requests", "per"];

/// The decoding context: where we are (for messages) and what went wrong so far.
pub(crate) struct Cx<'a> {
    pub sources: &'a SourceMap,
    pub diags: Vec<Diagnostic>,
    /// The document kind (`flow`, ...), for messages at the top level.
    pub kind: &'static str,
    path: Vec<String>,
}

impl<'a> Cx<'a> {
    pub fn new(sources: &'a SourceMap, kind: &'static str) -> Self {
        Cx {
            sources,
            diags: Vec::new(),
            kind,
            path: Vec::new(),
        }
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Runs `f` one level deeper (`mapping`, `[2]`, ...).
    pub fn at<R>(&mut self, segment: impl Into<String>, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(segment.into());
        let r = f(self);
        self.path.pop();
        r
    }

    /// Runs `f` for the list item `index`.
    pub fn item<R>(&mut self, index: usize, f: impl FnOnce(&mut Self) -> R) -> R {
        self.at(format!("[{index}]"), f)
    }

    /// `` `duplicates.on_match` `` or `a flow` at the top level.
    pub fn here(&self) -> String {
        if self.path.is_empty() {
            return format!("{} document", self.kind);
        }
        let mut s = String::new();
        for seg in &self.path {
            if !s.is_empty() && !seg.starts_with('[') {
                s.push('.');
            }
            s.push_str(seg);
        }
        format!("`{s}`")
    }

    // -----------------------------------------------------------------------------------------
    // Reports

    /// `RB0004`: `node` is not the expected shape.
    pub fn wrong_type(&mut self, node: &Node, expected: &str, help: Option<String>) {
        let d = Diagnostic::new(
            Code::WrongType,
            node.span,
            format!(
                "{} must be {expected}, found {}",
                self.here(),
                node.describe()
            ),
        )
        .with_label(format!("expected {expected}"))
        .with_help_opt(help.or_else(|| default_help(node, expected)));
        self.push(d);
    }

    /// `RB0004` for a mapping key that is not a name (`[a]: x`, `{a: b}: x`).
    pub fn bad_key(&mut self, key: &Node) {
        let d = Diagnostic::new(
            Code::WrongType,
            key.span,
            format!(
                "keys in {} must be names, found {}",
                self.here(),
                key.describe()
            ),
        )
        .with_label("expected a name")
        .with_help("write a plain name before the colon, e.g. `email: ...`");
        self.push(d);
    }

    /// `RB0008`: `found` is not one of `allowed`.
    pub fn invalid_value(&mut self, span: Span, found: &str, allowed: &[&str], what: &str) {
        let list = allowed
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let help = match closest(found, allowed) {
            Some(s) => format!("did you mean `{s}`? {what} is one of {list}"),
            None => format!("{what} is one of {list}"),
        };
        let d = Diagnostic::new(
            Code::InvalidValue,
            span,
            format!("invalid {what} `{found}` in {}", self.here()),
        )
        .with_label(format!("not a known {what}"))
        .with_help(help);
        self.push(d);
    }

    /// `RB0005`: `field` is missing where `owner` is.
    pub fn missing(&mut self, owner: Span, field: &str, help: Option<String>) {
        let d = Diagnostic::new(
            Code::MissingField,
            owner,
            format!("{} is missing required field `{field}`", self.here()),
        )
        .with_label(format!("`{field}` is required here"))
        .with_help(help.unwrap_or_else(|| match example(field) {
            Some(e) => format!("add `{field}: {e}`"),
            None => format!("add `{field}: ...`"),
        }));
        self.push(d);
    }

    // -----------------------------------------------------------------------------------------
    // Mappings

    /// Reads a mapping whose keys must be among `allowed`. Unknown keys are reported (`RB0003`)
    /// and left out. `parent_key` is the key the mapping is the value of, if any: missing
    /// fields are reported there when the mapping spans several lines.
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        parent_key: Option<Span>,
        allowed: &[&str],
    ) -> Option<Fields<'n>> {
        let Some(entries) = node.as_map() else {
            self.wrong_type(node, "a mapping", None);
            return None;
        };
        let mut fields = Fields {
            entries: Vec::new(),
            owner: owner_span(self.sources, node, parent_key),
            span: node.span,
        };
        for (key, value) in entries {
            let Some(name) = key.as_str() else {
                self.bad_key(key);
                continue;
            };
            if !allowed.contains(&name) {
                self.unknown_key(key, name, allowed);
                continue;
            }
            fields.entries.push((name, key, value));
        }
        Some(fields)
    }

    /// `RB0003` for `key`, with a did-you-mean or the list of allowed keys.
    pub fn unknown_key(&mut self, key: &Node, name: &str, allowed: &[&str]) {
        let help = match closest(name, allowed) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!(
                "allowed keys here: {}",
                allowed
                    .iter()
                    .filter(|k| **k != "kind")
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let d = Diagnostic::new(
            Code::UnknownKey,
            key.span,
            format!("unknown key `{name}` in {}", self.here()),
        )
        .with_label("unknown key")
        .with_help(help);
        self.push(d);
    }

    /// A mapping from names to values, in order; keys must be strings.
    pub fn entries<'n>(&mut self, node: &'n Node) -> Vec<(Spanned<String>, &'n Node, &'n Node)> {
        let Some(entries) = node.as_map() else {
            self.wrong_type(node, "a mapping", None);
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, value) in entries {
            match &key.kind {
                NodeKind::String(s) => out.push((Spanned::new(s.clone(), key.span), key, value)),
                // `200: ...` style keys: numbers and booleans are read as their text.
                NodeKind::Number(_) | NodeKind::Bool(_) => {
                    out.push((Spanned::new(key.to_string(), key.span), key, value))
                }
                _ => self.bad_key(key),
            }
        }
        out
    }

    // -----------------------------------------------------------------------------------------
    // Scalars

    /// A string (names, expressions, paths).
    pub fn string(&mut self, node: &Node) -> Option<Spanned<String>> {
        match &node.kind {
            NodeKind::String(s) => Some(Spanned::new(s.clone(), node.span)),
            _ => {
                self.wrong_type(node, "a string", None);
                None
            }
        }
    }

    /// A string, or a number/boolean taken as its text (header and query values, options).
    pub fn text(&mut self, node: &Node) -> Option<Spanned<String>> {
        match &node.kind {
            NodeKind::String(s) => Some(Spanned::new(s.clone(), node.span)),
            NodeKind::Number(_) | NodeKind::Bool(_) => {
                Some(Spanned::new(node.to_string(), node.span))
            }
            _ => {
                self.wrong_type(node, "a string", None);
                None
            }
        }
    }

    /// A string whose `${...}` secret references are checked (`RB0010`).
    pub fn secret_text(&mut self, node: &Node) -> Option<Spanned<String>> {
        let s = self.text(node)?;
        self.check_secrets(&s);
        Some(s)
    }

    /// Reports malformed secret references inside `s`.
    pub fn check_secrets(&mut self, s: &Spanned<String>) {
        for e in values::check_secret_refs(&s.value) {
            let span = s.span.inner(self.sources, &s.value, e.start, e.end);
            let d = Diagnostic::new(
                Code::InvalidSecretRef,
                span,
                format!("{} in {}", e.message, self.here()),
            )
            .with_label("invalid secret reference")
            .with_help(e.help);
            self.push(d);
        }
    }

    pub fn bool(&mut self, node: &Node) -> Option<bool> {
        match node.kind {
            NodeKind::Bool(b) => Some(b),
            _ => {
                let help = match node.as_str() {
                    Some("yes" | "on" | "y") => Some("write `true`".to_string()),
                    Some("no" | "off" | "n") => Some("write `false`".to_string()),
                    _ => Some("write `true` or `false`".to_string()),
                };
                self.wrong_type(node, "`true` or `false`", help);
                None
            }
        }
    }

    /// A whole number in `min..=u32::MAX`.
    pub fn u32(&mut self, node: &Node, min: u32) -> Option<Spanned<u32>> {
        let n = match &node.kind {
            NodeKind::Number(n) => n,
            _ => {
                self.wrong_type(node, "a whole number", None);
                return None;
            }
        };
        match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(v) if v >= min => Some(Spanned::new(v, node.span)),
            _ => {
                let d = Diagnostic::new(
                    Code::InvalidValue,
                    node.span,
                    format!(
                        "{} must be a whole number of at least {min}, found `{n}`",
                        self.here()
                    ),
                )
                .with_label("out of range")
                .with_help(format!(
                    "write a whole number between {min} and {}",
                    u32::MAX
                ));
                self.push(d);
                None
            }
        }
    }

    /// An HTTP status code (100–599).
    pub fn status(&mut self, node: &Node) -> Option<u16> {
        let code = match &node.kind {
            NodeKind::Number(n) => n.as_u64(),
            NodeKind::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match code {
            Some(c @ 100..=599) => Some(c as u16),
            _ => {
                let d = Diagnostic::new(
                    Code::InvalidValue,
                    node.span,
                    format!("`{node}` in {} is not an HTTP status code", self.here()),
                )
                .with_label("expected a status code between 100 and 599")
                .with_help("write a number such as `409` or `429`");
                self.push(d);
                None
            }
        }
    }

    /// One of `allowed` (written names, each with its value). `what` names the setting in
    /// messages ("duplicate policy").
    pub fn choice<T: Copy>(
        &mut self,
        node: &Node,
        allowed: &[(&str, T)],
        what: &str,
    ) -> Option<Spanned<T>> {
        let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
        let Some(s) = node.as_str() else {
            let list = names
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ");
            self.wrong_type(node, "a string", Some(format!("{what} is one of {list}")));
            return None;
        };
        match allowed.iter().find(|(n, _)| *n == s) {
            Some((_, v)) => Some(Spanned::new(*v, node.span)),
            None => {
                self.invalid_value(node.span, s, &names, what);
                None
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Lists

    /// The items of a list; a single scalar counts as a one-item list when `lenient`.
    pub fn list<'n>(&mut self, node: &'n Node, lenient: bool) -> Vec<&'n Node> {
        match &node.kind {
            NodeKind::Seq(items) => items.iter().collect(),
            NodeKind::String(_) if lenient => vec![node],
            _ => {
                self.wrong_type(node, "a list", None);
                Vec::new()
            }
        }
    }

    /// A list of strings; a single string is a one-item list.
    pub fn string_list(&mut self, node: &Node) -> Vec<Spanned<String>> {
        let items = self.list(node, true);
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let s = if matches!(node.kind, NodeKind::Seq(_)) {
                self.item(i, |cx| cx.string(item))
            } else {
                self.string(item)
            };
            out.extend(s);
        }
        out
    }

    /// `name: value` pairs of strings (headers, query parameters, secrets).
    pub fn string_map(
        &mut self,
        node: &Node,
        secrets: bool,
    ) -> Vec<(Spanned<String>, Spanned<String>)> {
        let mut out = Vec::new();
        for (name, _, value) in self.entries(node) {
            let v = self.at(name.value.clone(), |cx| {
                if secrets {
                    cx.secret_text(value)
                } else {
                    cx.text(value)
                }
            });
            if let Some(v) = v {
                out.push((name, v));
            }
        }
        out
    }

    // -----------------------------------------------------------------------------------------
    // Durations and rates

    /// `500ms`, `10s`, `1m`, `2h` (`RB0009` when malformed).
    pub fn duration(&mut self, node: &Node) -> Option<Spanned<Duration>> {
        let text = match &node.kind {
            NodeKind::String(s) => s.clone(),
            NodeKind::Number(n) => {
                let d = Diagnostic::new(
                    Code::InvalidDuration,
                    node.span,
                    format!("duration `{n}` in {} has no unit", self.here()),
                )
                .with_label("expected a duration such as `10s`")
                .with_help(format!(
                    "write `{n}s` for seconds or `{n}ms` for milliseconds (units: ms, s, m, h)"
                ));
                self.push(d);
                return None;
            }
            _ => {
                self.wrong_type(
                    node,
                    "a duration",
                    Some("write a duration such as `500ms`, `10s`, `1m` or `2h`".into()),
                );
                return None;
            }
        };
        match values::parse_duration(&text) {
            Ok(d) => Some(Spanned::new(d, node.span)),
            Err(why) => {
                let d = Diagnostic::new(
                    Code::InvalidDuration,
                    node.span,
                    format!("invalid duration `{text}` in {}: {why}", self.here()),
                )
                .with_label("not a duration")
                .with_help("write a number and a unit: `500ms`, `10s`, `1m`, `2h` or `1m30s`");
                self.push(d);
                None
            }
        }
    }

    /// `100 per 10s` or `{ requests: 100, per: 10s }` (`RB0009` when malformed).
    pub fn rate(&mut self, node: &Node, parent_key: Option<Span>) -> Option<Spanned<RateLimit>> {
        const HELP: &str = "write `100 per 10s` or `{ requests: 100, per: 10s }`";
        match &node.kind {
            NodeKind::String(s) => match values::parse_rate(s) {
                Ok((requests, per)) => Some(Spanned::new(RateLimit { requests, per }, node.span)),
                Err(why) => {
                    let d = Diagnostic::new(
                        Code::InvalidDuration,
                        node.span,
                        format!("invalid rate `{s}` in {}: {why}", self.here()),
                    )
                    .with_label("not a rate")
                    .with_help(HELP);
                    self.push(d);
                    None
                }
            },
            NodeKind::Map(_) => {
                let f = self.fields(node, parent_key, RATE_KEYS)?;
                let requests = f
                    .req(self, "requests")
                    .and_then(|n| self.at("requests", |cx| cx.u32(n, 1)));
                let per = f
                    .req(self, "per")
                    .and_then(|n| self.at("per", |cx| cx.duration(n)));
                let (requests, per) = (requests?, per?);
                if per.value.is_zero() {
                    let d = Diagnostic::new(
                        Code::InvalidDuration,
                        per.span,
                        format!(
                            "the period of the rate in {} must be longer than zero",
                            self.here()
                        ),
                    )
                    .with_label("zero period")
                    .with_help(HELP);
                    self.push(d);
                    return None;
                }
                Some(Spanned::new(
                    RateLimit {
                        requests: requests.value,
                        per: per.value,
                    },
                    node.span,
                ))
            }
            _ => {
                self.wrong_type(node, "a rate", Some(HELP.into()));
                None
            }
        }
    }

    /// Any value, as JSON.
    pub fn json(&mut self, node: &Node) -> Spanned<Value> {
        Spanned::new(node.to_json(), node.span)
    }
}

/// A checked mapping: the entries with allowed keys, and where to report missing ones.
pub(crate) struct Fields<'n> {
    pub entries: Vec<(&'n str, &'n Node, &'n Node)>,
    /// Where a missing field is reported.
    pub owner: Span,
    /// The whole mapping.
    pub span: Span,
}

impl<'n> Fields<'n> {
    pub fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, v)| *v)
    }

    pub fn key(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, k, _)| *k)
    }

    pub fn has(&self, name: &str) -> bool {
        self.entries.iter().any(|(n, _, _)| *n == name)
    }

    /// The value of a required field; reports `RB0005` when it is missing.
    pub fn req(&self, cx: &mut Cx<'_>, name: &str) -> Option<&'n Node> {
        let v = self.get(name);
        if v.is_none() {
            cx.missing(self.owner, name, None);
        }
        v
    }

    /// Decodes an optional field one level deeper in the path.
    pub fn opt<T>(
        &self,
        cx: &mut Cx<'_>,
        name: &str,
        f: impl FnOnce(&mut Cx<'_>, &'n Node, Span) -> Option<T>,
    ) -> Option<T> {
        let (_, key, value) = self.entries.iter().find(|(n, _, _)| *n == name)?;
        cx.at(name, |cx| f(cx, value, key.span))
    }

    /// Decodes a required field one level deeper in the path.
    pub fn require<T>(
        &self,
        cx: &mut Cx<'_>,
        name: &str,
        f: impl FnOnce(&mut Cx<'_>, &'n Node, Span) -> Option<T>,
    ) -> Option<T> {
        if !self.has(name) {
            cx.missing(self.owner, name, None);
            return None;
        }
        self.opt(cx, name, f)
    }
}

/// An example value for a required field, for "add `field: ...`" hints.
fn example(field: &str) -> Option<&'static str> {
    Some(match field {
        "target" => "{ provider: NAME, object: NAME }",
        "mapping" => "{ email: lower(email) }",
        "base_url" => "https://api.example.com",
        "method" => "POST",
        "path" => "/v1/things",
        "kind" => "duplicate",
        "type" => "string",
        "inputs" => "[department]",
        "outputs" => "[smart_group]",
        "rows" => "[ [ '\"IT\"', IT_Computers ] ]",
        "fields" => "{ email: string }",
        "cases" => "[ { name: ..., input: {...}, expect: {...} } ]",
        "expect" => "{ payload: {...} }",
        "match" => "[email]",
        "provider" | "object" | "name" => "NAME",
        "token" | "value" | "password" | "client_secret" | "refresh_token" => "\"${env:NAME}\"",
        "client_id" | "username" => "\"${env:NAME}\"",
        "token_url" => "/oauth/token",
        "authorize_url" => "https://app.example.com/oauth/authorize",
        "redirect_url" => "\"${env:NAME}\"",
        "requests" => "100",
        "per" => "10s",
        "when" => "['\"IT\"']",
        "then" => "[IT_Computers]",
        _ => return None,
    })
}

/// A generic hint for an `RB0004` that has no specific one.
fn default_help(node: &Node, expected: &str) -> Option<String> {
    if node_is_empty(node) {
        return Some("write a value after the colon".to_string());
    }
    Some(match expected {
        "a mapping" => {
            "write `key: value` entries, indented below the key or as `{ key: value }`".to_string()
        }
        "a list" => "write a list as `[a, b]` or as `- item` lines below the key".to_string(),
        "a string" if node.is_scalar() => format!("quote it to make it a string: `\"{node}\"`"),
        "a string" => "write a single value here".to_string(),
        "a whole number" => "write a number such as `100`, without quotes".to_string(),
        _ => return None,
    })
}

fn node_is_empty(node: &Node) -> bool {
    matches!(node.kind, NodeKind::Null) && node.span.start == node.span.end
}

/// Where to report a field missing from `node`: the mapping itself when it fits on one line,
/// else the key it belongs to, else its first line.
fn owner_span(sources: &SourceMap, node: &Node, parent_key: Option<Span>) -> Span {
    let text = sources.slice(node.span).unwrap_or("");
    match text.find('\n') {
        None => node.span,
        Some(first_line_len) => parent_key.unwrap_or(Span::new(
            node.span.file,
            node.span.start,
            node.span.start + text[..first_line_len].trim_end().len() as u32,
        )),
    }
}

/// The closest of `candidates` to `name`: [`did_you_mean`]'s similarity, or for short words
/// (where it is weak, e.g. `evn` → `env`) at most one edit or transposition per three letters.
pub(crate) fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    did_you_mean(name, candidates.iter().copied()).or_else(|| {
        let limit = (name.chars().count() / 3).max(1);
        candidates
            .iter()
            .map(|c| (strsim::osa_distance(name, c), *c))
            .filter(|(d, _)| *d <= limit)
            .min_by_key(|(d, _)| *d)
            .map(|(_, c)| c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_handles_short_words() {
        assert_eq!(closest("evn", &["env", "file", "vault"]), Some("env"));
        assert_eq!(closest("mapings", &["mapping", "name"]), Some("mapping"));
        assert_eq!(closest("xyz", &["env", "file"]), None);
    }
}
