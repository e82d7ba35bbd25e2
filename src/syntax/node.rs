//! A generic YAML tree in which every value, key included, knows its byte span.
//!
//! [`parse_documents`] reads a file (possibly several `---` documents) with `serde-saphyr`,
//! capturing the location of every node through its `Spanned` wrapper, and turns the result
//! into [`Node`]s whose spans are byte ranges of the file. Decoding into the typed document
//! model happens afterwards, by hand, so that one file yields all of its problems at once.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

use crate::diagnostic::{Code, Diagnostic};
use crate::span::{FileId, Span};

/// A YAML value with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    /// For scalars: the scalar as written (quotes included). For collections: from the first
    /// character of the collection (`-`, `{`, `[` or the first key) to the end of its last
    /// item (the closing bracket of a flow collection included).
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Seq(Vec<Node>),
    /// Entries in document order; duplicate keys are reported and dropped while parsing.
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn new(kind: NodeKind, span: Span) -> Self {
        Node { kind, span }
    }

    /// The value as JSON (keys that are not strings are written as their JSON text).
    pub fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Number(n) => Value::Number(n.clone()),
            NodeKind::String(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.key_text(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// A key's text: the string itself, or the JSON text of a non-string key.
    pub fn key_text(&self) -> String {
        match &self.kind {
            NodeKind::String(s) => s.clone(),
            _ => self.to_json().to_string(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// Whether this is a scalar (not a list or mapping).
    pub fn is_scalar(&self) -> bool {
        !matches!(self.kind, NodeKind::Seq(_) | NodeKind::Map(_))
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// What this node is, for "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Null if self.span.start == self.span.end => "nothing",
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Number(_) => "a number",
            NodeKind::String(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

impl fmt::Display for Node {
    /// Short YAML-ish rendering for messages (`lead`, `5`, `[...]`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            NodeKind::Null => f.write_str("null"),
            NodeKind::Bool(b) => write!(f, "{b}"),
            NodeKind::Number(n) => write!(f, "{n}"),
            NodeKind::String(s) => f.write_str(s),
            NodeKind::Seq(_) => f.write_str("[...]"),
            NodeKind::Map(_) => f.write_str("{...}"),
        }
    }
}

/// Parses every document of `text` (belonging to `file`). Empty documents are skipped.
///
/// A YAML error becomes an `RB0001` diagnostic. When a file holds several documents and one
/// of them is malformed, the others are still returned: the file is split at its `---` lines
/// and each part parsed on its own.
pub fn parse_documents(file: FileId, text: &str) -> (Vec<Node>, Vec<Diagnostic>) {
    let parsed = parse_file(file, text);
    (parsed.nodes, parsed.diagnostics)
}

/// What [`parse_file`] made of a file.
pub(crate) struct Parsed {
    pub nodes: Vec<Node>,
    pub diagnostics: Vec<Diagnostic>,
    /// Byte ranges of the parts that could not be parsed, for recovering the names of the
    /// documents they hold.
    pub failed: Vec<(usize, usize)>,
}

/// [`parse_documents`], also saying which parts of the file failed.
pub(crate) fn parse_file(file: FileId, text: &str) -> Parsed {
    let mut diags = Vec::new();
    match parse_part(file, text, 0, &mut diags) {
        Ok(docs) => Parsed {
            nodes: docs,
            diagnostics: diags,
            failed: Vec::new(),
        },
        Err(whole_error) => {
            let parts = split_documents(text);
            if parts.len() <= 1 {
                diags.push(whole_error);
                return Parsed {
                    nodes: Vec::new(),
                    diagnostics: diags,
                    failed: vec![(0, text.len())],
                };
            }
            diags.clear();
            let mut docs = Vec::new();
            let mut failed = Vec::new();
            for (start, end) in parts {
                match parse_part(file, &text[start..end], start, &mut diags) {
                    Ok(part_docs) => docs.extend(part_docs),
                    Err(d) => {
                        failed.push((start, end));
                        diags.push(d);
                    }
                }
            }
            if failed.is_empty() {
                // The parts are fine on their own; the file as a whole is not.
                diags.push(whole_error);
            }
            Parsed {
                nodes: docs,
                diagnostics: diags,
                failed,
            }
        }
    }
}

/// The `kind:` and `name:` of each document in a part of a file that is not valid YAML,
/// read from unindented `key: value` lines, with the span of the name. Only documents
/// that have both are returned.
pub(crate) fn recover_names(
    file: FileId,
    text: &str,
    start: usize,
    end: usize,
) -> Vec<(String, Span, String)> {
    let mut out = Vec::new();
    let mut kind: Option<String> = None;
    let mut name: Option<(String, Span)> = None;
    let mut flush = |kind: &mut Option<String>, name: &mut Option<(String, Span)>| {
        if let (Some(k), Some((n, span))) = (kind.take(), name.take()) {
            out.push((k, span, n));
        }
    };
    let mut offset = start;
    for line in text[start..end].split_inclusive('\n') {
        let at = offset;
        offset += line.len();
        if is_document_marker(line) {
            flush(&mut kind, &mut name);
            continue;
        }
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        if !matches!(key, "kind" | "name") || !rest.starts_with([' ', '\t', '\n', '\r']) {
            continue;
        }
        // The value without a trailing comment and without quotes.
        let raw = rest.split(" #").next().unwrap_or("");
        let value = raw.trim();
        let quoted = value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"'))
                || (value.starts_with('\'') && value.ends_with('\'')));
        let unquoted = if quoted {
            &value[1..value.len() - 1]
        } else {
            value
        };
        if unquoted.is_empty() || unquoted.contains(['"', '\'', '{', '[', '\\']) {
            continue;
        }
        let value_at = at + key.len() + 1 + (raw.len() - raw.trim_start().len());
        let span = Span::new(file, value_at as u32, (value_at + value.len()) as u32);
        match key {
            "kind" if kind.is_none() => kind = Some(unquoted.to_string()),
            "name" if name.is_none() => name = Some((unquoted.to_string(), span)),
            _ => {}
        }
    }
    flush(&mut kind, &mut name);
    out
}

/// Byte ranges of the parts of `text` that start at a `---` document marker line.
fn split_documents(text: &str) -> Vec<(usize, usize)> {
    let mut starts = vec![0];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset > 0 && is_document_marker(line) {
            starts.push(offset);
        }
        offset += line.len();
    }
    let mut parts = Vec::new();
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        parts.push((start, end));
    }
    parts
}

fn is_document_marker(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

fn options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    // YAML 1.2 booleans only: `on`, `yes`, `no` stay strings (`retry.on` is a key).
    o.strict_booleans = true;
    // Duplicate keys are reported by the loader with both positions, and decoding continues.
    o.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    o.non_finite_float_policy = serde_saphyr::NonFiniteFloatPolicy::AsString;
    o.with_snippet = false;
    o
}

/// Parses one part of a file that starts at byte `base`.
fn parse_part(
    file: FileId,
    part: &str,
    base: usize,
    diags: &mut Vec<Diagnostic>,
) -> Result<Vec<Node>, Diagnostic> {
    let raw: Vec<serde_saphyr::Spanned<Raw>> =
        serde_saphyr::from_multiple_with_options(part, options())
            .map_err(|e| yaml_error(file, part, base, &e))?;
    let conv = Converter {
        file,
        text: part,
        base,
    };
    Ok(raw
        .into_iter()
        .map(|r| conv.node(r, diags))
        .filter(|n| !(matches!(n.kind, NodeKind::Null)))
        .collect())
}

fn yaml_error(file: FileId, part: &str, base: usize, err: &serde_saphyr::Error) -> Diagnostic {
    use serde_saphyr::MessageFormatter;
    let inner = err.without_snippet();
    let message = serde_saphyr::DefaultMessageFormatter
        .format_message(inner)
        .into_owned();
    let mut at = err
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| byte_offset(part, &l))
        .unwrap_or(0);
    // The scanner reports a tab at the start of the scalar it was reading; point at the tab.
    if message.contains("tab")
        && let Some(tab) = part[at..].find('\t')
    {
        at += tab;
    }
    let len = part[at..].chars().next().map_or(0, |c| c.len_utf8());
    let span = Span::new(file, (base + at) as u32, (base + at + len) as u32);
    let message = clean_message(&message);
    // A quote or bracket left open is noticed only where the text stops making sense,
    // usually a line or more later; the opening is where the fix goes.
    if !message.contains("tab")
        && let Some((open, ch)) = unclosed_opener(part, at)
        && part[open..at].contains('\n')
    {
        let opener = Span::new(file, (base + open) as u32, (base + open + 1) as u32);
        let (what, help) = match ch {
            '\'' | '"' => (
                format!("this {ch} string is never closed"),
                format!(
                    "close the string with {ch} before the end of the value (a quoted value \
                     may continue on more-indented lines, but must end with {ch})"
                ),
            ),
            _ => {
                let close = if ch == '{' { '}' } else { ']' };
                (
                    format!("this `{ch}` is never closed"),
                    format!(
                        "add the closing `{close}`; a `{ch} ... {close}` collection may span \
                         lines, but its items must be separated by `,`"
                    ),
                )
            }
        };
        return Diagnostic::new(Code::YamlSyntax, opener, format!("invalid YAML: {what}"))
            .with_label("opened here")
            .with_related(span, format!("the parser stopped here: {message}"))
            .with_help(help);
    }
    Diagnostic::new(Code::YamlSyntax, span, format!("invalid YAML: {message}"))
        .with_label(message)
        .with_help(
            "check indentation (spaces only, no tabs), colons after keys, and matching quotes \
             and brackets",
        )
}

/// The innermost quote or flow bracket (`{`, `[`) still open at byte `upto` of `text`, by a
/// light scan that knows comments, quoted strings and where a value starts. Brackets and
/// quotes inside plain scalars (`a: x{y}`, `don't`) do not open anything.
fn unclosed_opener(text: &str, upto: usize) -> Option<(usize, char)> {
    let bytes = text.as_bytes();
    let upto = upto.min(bytes.len());
    let mut stack: Vec<(usize, char)> = Vec::new();
    let mut quote: Option<(usize, char)> = None;
    // The last significant character before the current one on this line (None at the
    // start of a line) and whether whitespace came after it.
    let mut prev: Option<u8> = None;
    let mut spaced = false;
    let mut i = 0;
    while i < upto {
        let b = bytes[i];
        if let Some((_, q)) = quote {
            match (b, q) {
                (b'\\', '"') => i += 1,
                (b'\'', '\'') if bytes.get(i + 1) == Some(&b'\'') => i += 1,
                (b'\'', '\'') | (b'"', '"') => {
                    quote = None;
                    prev = Some(b);
                    spaced = false;
                }
                _ => {}
            }
            i += 1;
            continue;
        }
        // Where a value (or a flow item) may start.
        let at_start = match prev {
            None => true,
            Some(b'[' | b'{' | b',') => true,
            Some(b':' | b'-' | b'?') => spaced,
            Some(_) => false,
        };
        match b {
            b'\n' => {
                prev = None;
                spaced = false;
            }
            b' ' | b'\t' | b'\r' => spaced = true,
            b'#' if prev.is_none() || spaced => {
                while i < upto && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\'' | b'"' if at_start => quote = Some((i, b as char)),
            b'{' | b'[' if at_start || !stack.is_empty() => {
                stack.push((i, b as char));
                prev = Some(b);
                spaced = false;
            }
            b'}' | b']' if !stack.is_empty() => {
                let want = if b == b'}' { '{' } else { '[' };
                if stack.last().is_some_and(|(_, c)| *c == want) {
                    stack.pop();
                }
                prev = Some(b);
                spaced = false;
            }
            _ => {
                prev = Some(b);
                spaced = false;
            }
        }
        i += 1;
    }
    quote.or_else(|| stack.last().copied())
}

/// The parser's messages sometimes end with their own position; ours comes from the span.
fn clean_message(message: &str) -> String {
    let message = message.trim();
    let cut = message
        .rfind(" at line ")
        .filter(|i| message[i + 9..].contains("column"))
        .unwrap_or(message.len());
    message[..cut].trim().to_string()
}

/// Byte offset of a location within `text`, from the byte info or, when the parser only
/// knows characters, from the character offset.
fn byte_offset(text: &str, loc: &serde_saphyr::Location) -> usize {
    let span = loc.span();
    if let Some(b) = span.byte_offset() {
        return floor_boundary(text, b as usize);
    }
    let chars = span.offset() as usize;
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

/// The largest char boundary of `text` at or before `i`.
fn floor_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The shape `serde-saphyr` fills in; children carry their locations.
enum Raw {
    Null,
    Bool(bool),
    Number(Number),
    /// A float that JSON cannot hold (cannot happen with the non-finite policy; kept safe).
    Text(String),
    Seq(Vec<serde_saphyr::Spanned<Raw>>),
    Map(Vec<(serde_saphyr::Spanned<Raw>, serde_saphyr::Spanned<Raw>)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Number(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Raw::Number(i.into()),
            Err(_) => float(v as f64),
        })
    }
    fn visit_u128<E>(self, v: u128) -> Result<Raw, E> {
        Ok(match u64::try_from(v) {
            Ok(u) => Raw::Number(u.into()),
            Err(_) => float(v as f64),
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(float(v))
    }
    fn visit_char<E>(self, v: char) -> Result<Raw, E> {
        Ok(Raw::Text(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Text(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Text(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Raw, E> {
        Ok(Raw::Text(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Raw::Map(entries))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> Result<Raw, A::Error> {
        Err(de::Error::custom("unsupported YAML tag"))
    }
}

fn float(v: f64) -> Raw {
    match Number::from_f64(v) {
        Some(n) => Raw::Number(n),
        None => Raw::Text(v.to_string()),
    }
}

struct Converter<'a> {
    file: FileId,
    text: &'a str,
    base: usize,
}

impl Converter<'_> {
    fn node(&self, raw: serde_saphyr::Spanned<Raw>, diags: &mut Vec<Diagnostic>) -> Node {
        let (mut start, len) = self.range(&raw.referenced);
        // An empty value (`key:`) is located at its colon; place it right after the colon.
        if len == 0 && matches!(raw.value, Raw::Null) && self.text[start..].starts_with(':') {
            start += 1;
        }
        let mut end = start + len;
        let kind = match raw.value {
            Raw::Null => NodeKind::Null,
            Raw::Bool(b) => NodeKind::Bool(b),
            Raw::Number(n) => NodeKind::Number(n),
            Raw::Text(s) => NodeKind::String(s),
            Raw::Seq(items) => {
                let items: Vec<Node> = items.into_iter().map(|i| self.node(i, diags)).collect();
                end = items
                    .iter()
                    .map(|n| self.rel(n.span.end))
                    .fold(end, usize::max);
                end = self.closing(start, end, '[', ']');
                NodeKind::Seq(items)
            }
            Raw::Map(entries) => {
                let mut out: Vec<(Node, Node)> = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let key = self.node(k, diags);
                    let value = self.node(v, diags);
                    end = end
                        .max(self.rel(key.span.end))
                        .max(self.rel(value.span.end));
                    if let Some((first, _)) = out.iter().find(|(k, _)| k.kind == key.kind) {
                        diags.push(
                            Diagnostic::new(
                                Code::YamlSyntax,
                                key.span,
                                format!("duplicate key `{}`", key.key_text()),
                            )
                            .with_label("this key is already defined in this mapping")
                            .with_related(first.span, "first defined here")
                            .with_help("remove one of the two entries; this one is ignored"),
                        );
                        continue;
                    }
                    out.push((key, value));
                }
                end = self.closing(start, end, '{', '}');
                NodeKind::Map(out)
            }
        };
        Node::new(
            kind,
            Span::new(
                self.file,
                (self.base + start) as u32,
                (self.base + end) as u32,
            ),
        )
    }

    /// A file offset back to an offset within this part.
    fn rel(&self, file_offset: u32) -> usize {
        (file_offset as usize).saturating_sub(self.base)
    }

    /// Start and length (bytes, within the part) of a location.
    fn range(&self, loc: &serde_saphyr::Location) -> (usize, usize) {
        if loc.line() == 0 {
            return (0, 0);
        }
        let start = byte_offset(self.text, loc);
        let span = loc.span();
        let len = match span.byte_len() {
            Some(l) => l as usize,
            None => self.text[start..]
                .chars()
                .take(span.len() as usize)
                .map(char::len_utf8)
                .sum(),
        };
        (start, floor_boundary(self.text, start + len) - start)
    }

    /// Extends a flow collection's end over its closing bracket.
    fn closing(&self, start: usize, end: usize, open: char, close: char) -> usize {
        if !self.text[start..].starts_with(open) {
            return end;
        }
        let rest = &self.text[end.min(self.text.len())..];
        let skipped = rest
            .char_indices()
            .find(|(_, c)| !(c.is_whitespace() || *c == ','))
            .map_or(rest.len(), |(i, _)| i);
        if rest[skipped..].starts_with(close) {
            end + skipped + close.len_utf8()
        } else {
            end
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::SourceMap;

    fn parse(text: &str) -> (SourceMap, Vec<Node>, Vec<Diagnostic>) {
        let mut map = SourceMap::new();
        let id = map.add("t.yaml", text);
        let (docs, diags) = parse_documents(id, text);
        (map, docs, diags)
    }

    #[test]
    fn scalars_keep_their_spans() {
        let (map, docs, diags) = parse("kind: flow\nname: 'lead'\nn: 5\nb: true\nz: ~\non: yes\n");
        assert!(diags.is_empty(), "{diags:?}");
        let doc = &docs[0];
        let name = doc.get("name").expect("name");
        assert_eq!(name.as_str(), Some("lead"));
        assert_eq!(map.slice(name.span), Some("'lead'"));
        let keys: Vec<_> = doc
            .as_map()
            .expect("map")
            .iter()
            .map(|(k, _)| map.slice(k.span).unwrap_or_default().to_string())
            .collect();
        assert_eq!(keys, ["kind", "name", "n", "b", "z", "on"]);
        assert_eq!(
            doc.get("n").map(|n| n.to_json()),
            Some(serde_json::json!(5))
        );
        assert_eq!(doc.get("b").map(|n| &n.kind), Some(&NodeKind::Bool(true)));
        assert_eq!(doc.get("z").map(|n| &n.kind), Some(&NodeKind::Null));
        // YAML 1.2: `yes` is a string.
        assert_eq!(doc.get("on").and_then(Node::as_str), Some("yes"));
    }

    #[test]
    fn flow_collections_span_their_brackets() {
        let (map, docs, _) = parse("a: { x: [1, 2 ] , y: z }\nb:\n  - c\n  - d\n");
        let a = docs[0].get("a").expect("a");
        assert_eq!(map.slice(a.span), Some("{ x: [1, 2 ] , y: z }"));
        let x = a.get("x").expect("x");
        assert_eq!(map.slice(x.span), Some("[1, 2 ]"));
        let b = docs[0].get("b").expect("b");
        assert_eq!(map.slice(b.span), Some("- c\n  - d"));
    }

    #[test]
    fn several_documents_with_offsets() {
        let text = "kind: flow\n---\nkind: policy\nname: é\n";
        let (map, docs, diags) = parse(text);
        assert!(diags.is_empty());
        assert_eq!(docs.len(), 2);
        let name = docs[1].get("name").expect("name");
        assert_eq!(map.slice(name.span), Some("é"));
        assert_eq!(map.locate(name.span).line, 4);
    }

    #[test]
    fn syntax_error_in_one_document_keeps_the_others() {
        let text = "kind: flow\n---\nkind: [a\n---\nkind: record\n";
        let (map, docs, diags) = parse(text);
        assert_eq!(docs.len(), 2);
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].code, Code::YamlSyntax);
        let loc = map.locate(diags[0].span);
        assert!(loc.line >= 3, "{loc:?}");
    }

    #[test]
    fn syntax_error_points_at_the_tab() {
        let (map, docs, diags) = parse("a: 1\n\tb: 2\n");
        assert!(docs.is_empty());
        let loc = map.locate(diags[0].span);
        assert_eq!((loc.line, loc.column), (2, 1));
        assert!(diags[0].message.contains("tab"), "{}", diags[0].message);
    }

    #[test]
    fn syntax_error_position_is_the_parsers() {
        let (map, _, diags) = parse("kind: flow\nname: a\nx: 1\n y: 2\n");
        let loc = map.locate(diags[0].span);
        assert_eq!(loc.line, 4, "{}", diags[0].message);
    }

    #[test]
    fn unclosed_brackets_and_quotes_are_reported_where_they_open() {
        for (text, line, col) in [
            ("kind: flow\nname: [a, b\nx: 1\n", 2, 7),
            ("kind: flow\nm: { a: 1\nz: 1\nq: 2\n", 2, 4),
            ("kind: flow\nm:\n  a: { b: 1, c: [2, 3]\n  z: 1\n", 3, 6),
            ("kind: flow\nm: 'it''s\nz: 1\n", 2, 4),
            ("kind: flow\nm: \"a \\\" b\nz: 1\n", 2, 4),
            ("# don't\nkind: flow\nm: x{y} 'z\nq: {a\nz: 1\n", 4, 4),
        ] {
            let (map, _, diags) = parse(text);
            assert_eq!(diags.len(), 1, "{text:?}: {diags:?}");
            let loc = map.locate(diags[0].span);
            assert_eq!(
                (loc.line, loc.column),
                (line, col),
                "{text:?}: {}",
                diags[0].message
            );
            let m = &diags[0].message;
            assert!(
                m.contains("never closed") || m.contains("unclosed"),
                "{text:?}: {m}"
            );
        }
    }

    #[test]
    fn names_are_recovered_from_broken_documents() {
        let text = "kind: flow\nname: 'lead_sync'  # x\nmapping: { a: [\n---\nkind: record\nname: r\nfields: {}\n";
        let parsed = parse_file(FileId(0), text);
        assert_eq!(parsed.failed.len(), 1, "{:?}", parsed.failed);
        let (s, e) = parsed.failed[0];
        let names = recover_names(FileId(0), text, s, e);
        assert_eq!(names.len(), 1);
        assert_eq!(
            (names[0].0.as_str(), names[0].2.as_str()),
            ("flow", "lead_sync")
        );
        assert_eq!(
            &text[names[0].1.start as usize..names[0].1.end as usize],
            "'lead_sync'"
        );
    }

    #[test]
    fn duplicate_keys_are_reported_once() {
        let (map, docs, diags) = parse("a: 1\nb: 2\na: 3\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(map.locate(diags[0].span).line, 3);
        assert_eq!(map.locate(diags[0].related[0].span).line, 1);
        assert_eq!(docs[0].to_json(), serde_json::json!({"a": 1, "b": 2}));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = format!("a: {}{}\n", "[".repeat(500), "]".repeat(500));
        let (_, _, diags) = parse(&text);
        assert_eq!(diags.len(), 1);
    }

    #[test]
    fn anchors_and_merge_keys_expand() {
        let text = "base: &b { method: POST, path: /x }\nop:\n  <<: *b\n  path: /y\nalias: *b\n";
        let (map, docs, diags) = parse(text);
        assert!(diags.is_empty(), "{diags:?}");
        let op = docs[0].get("op").expect("op");
        assert_eq!(
            op.to_json(),
            serde_json::json!({"method": "POST", "path": "/y"})
        );
        let alias = docs[0].get("alias").expect("alias");
        assert_eq!(alias.get("method").and_then(Node::as_str), Some("POST"));
        // Aliased values point at the alias.
        assert_eq!(map.slice(alias.span), Some("*b"));
    }

    #[test]
    fn empty_values_sit_after_their_colon() {
        let (map, docs, _) = parse("a:\nb: 1\n");
        let a = docs[0].get("a").expect("a");
        assert_eq!(a.kind, NodeKind::Null);
        assert_eq!((a.span.start, a.span.end), (2, 2));
        assert_eq!(a.describe(), "nothing");
        assert_eq!(map.locate(a.span).column, 3);
    }

    #[test]
    fn empty_documents_are_skipped() {
        let (_, docs, diags) = parse("# nothing\n---\n---\n");
        assert!(docs.is_empty());
        assert!(diags.is_empty());
    }
}
