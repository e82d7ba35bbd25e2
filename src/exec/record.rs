//! Parsing one NDJSON input line into a record, strictly.
//!
//! `serde_json` silently keeps the last of two equal keys in an object; for input records that
//! hides a conflict (`{"email":"a","email":"b"}` — which one did the sender mean?). The parser
//! here builds the same [`Value`] as `serde_json::from_slice` in one pass, and refuses
//! duplicate keys at any depth while inserting, so detection costs no second parse.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

use super::outcome::{FailureKind, RecordError};

/// Parses one input line (without or with its line terminator) into a JSON object.
///
/// Every problem is a [`RecordError`] of kind `invalid_record` with the byte offset in `line`
/// where it was found:
/// - invalid UTF-8: the offset of the first bad byte;
/// - invalid JSON: the offset of the byte the parser stopped at (the line length when the
///   line ends too early);
/// - a top level that is not an object: offset 0 (or that of the first non-blank byte);
/// - a key repeated within one object, at any depth: the offset of the second occurrence's
///   opening quote, and `field` names the key's path (`contact.emails[1].type`).
///
/// A blank line is invalid JSON here; callers that give blank lines their own outcome check
/// for them first.
pub fn parse_record(line: &[u8]) -> Result<Value, RecordError> {
    let text = std::str::from_utf8(line).map_err(|e| {
        let at = e.valid_up_to();
        RecordError::new(
            FailureKind::InvalidRecord,
            format!("invalid UTF-8 at byte {at}"),
        )
        .with_offset(at)
    })?;
    let duplicate = RefCell::new(None);
    let seed = ValueSeed {
        base: text.as_ptr() as usize,
        len: text.len(),
        duplicate: &duplicate,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(other) => {
            let at = text.len() - text.trim_start().len();
            Err(RecordError::new(
                FailureKind::InvalidRecord,
                format!(
                    "record must be a JSON object, got {}",
                    crate::functions::type_name(&other)
                ),
            )
            .with_offset(at))
        }
        Err(e) => Err(match duplicate.into_inner() {
            Some(d) => d.into_error(text, &e),
            None => json_error(text, &e),
        }),
    }
}

/// A syntax error, located by byte offset rather than line and column.
fn json_error(text: &str, e: &serde_json::Error) -> RecordError {
    let at = if e.classify() == serde_json::error::Category::Eof {
        text.len()
    } else {
        // serde_json's column is one past the offending byte.
        offset_of(text, e.line(), e.column()).saturating_sub(1)
    };
    let full = e.to_string();
    // The text says "… at line L column C"; the offset replaces that.
    let reason = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(r, _)| r);
    RecordError::new(
        FailureKind::InvalidRecord,
        format!("invalid JSON at byte {at}: {reason}"),
    )
    .with_offset(at)
}

/// Byte offset of a serde_json (1-based line, byte column) position.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        text.bytes()
            .enumerate()
            .filter(|(_, b)| *b == b'\n')
            .nth(line - 2)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    (line_start + column).min(text.len())
}

/// A repeated key, found while building the value; `path` grows as the error unwinds.
struct Duplicate {
    key: String,
    /// Offset of the key's opening quote, when the key was read straight from the input.
    offset: Option<usize>,
    /// Enclosing keys and indices, innermost first.
    path: Vec<PathPart>,
}

enum PathPart {
    Key(String),
    Index(usize),
}

impl Duplicate {
    fn into_error(self, text: &str, e: &serde_json::Error) -> RecordError {
        let offset = self.offset.unwrap_or_else(|| {
            // An escaped key has no slice in the input; the parser stopped just after it.
            let end = offset_of(text, e.line(), e.column());
            opening_quote_before(text.as_bytes(), end)
        });
        let mut field = String::new();
        for part in self.path.iter().rev() {
            match part {
                PathPart::Key(k) => {
                    if !field.is_empty() {
                        field.push('.');
                    }
                    field.push_str(k);
                }
                PathPart::Index(i) => {
                    field.push('[');
                    field.push_str(&i.to_string());
                    field.push(']');
                }
            }
        }
        if !field.is_empty() {
            field.push('.');
        }
        field.push_str(&self.key);
        RecordError::new(
            FailureKind::InvalidRecord,
            format!("duplicate key `{field}` at byte {offset}"),
        )
        .with_field(&field)
        .with_offset(offset)
    }
}

/// The opening quote of the string that ends (with optional blanks after it) before `end`.
fn opening_quote_before(bytes: &[u8], end: usize) -> usize {
    let mut i = end.min(bytes.len());
    while i > 0 && bytes[i - 1].is_ascii_whitespace() {
        i -= 1;
    }
    // `i - 1` is the closing quote; find the previous quote not escaped by a backslash.
    let mut j = i.saturating_sub(1);
    while j > 0 {
        j -= 1;
        if bytes[j] == b'"' {
            let backslashes = bytes[..j].iter().rev().take_while(|b| **b == b'\\').count();
            if backslashes % 2 == 0 {
                return j;
            }
        }
    }
    0
}

/// Builds a [`Value`] like serde_json's own, refusing duplicate keys.
#[derive(Clone, Copy)]
struct ValueSeed<'a> {
    /// Address and length of the input, to turn borrowed keys into offsets.
    base: usize,
    len: usize,
    duplicate: &'a RefCell<Option<Duplicate>>,
}

impl ValueSeed<'_> {
    fn note(&self, part: PathPart) {
        if let Some(d) = self.duplicate.borrow_mut().as_mut() {
            d.path.push(part);
        }
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            match seq.next_element_seed(self) {
                Ok(Some(v)) => items.push(v),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    self.note(PathPart::Index(items.len()));
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        // Records have a handful of fields: room for them up front saves regrowing the map
        // (and its index) two or three times per record.
        let mut map = Map::with_capacity(8);
        let keys = KeySeed {
            base: self.base,
            len: self.len,
        };
        while let Some((key, offset)) = access.next_key_seed(keys)? {
            match map.entry(key) {
                Entry::Occupied(o) => {
                    *self.duplicate.borrow_mut() = Some(Duplicate {
                        key: o.key().clone(),
                        offset,
                        path: Vec::new(),
                    });
                    return Err(de::Error::custom(format_args!(
                        "duplicate key `{}`",
                        o.key()
                    )));
                }
                Entry::Vacant(slot) => match access.next_value_seed(self) {
                    Ok(v) => {
                        slot.insert(v);
                    }
                    Err(e) => {
                        self.note(PathPart::Key(slot.key().clone()));
                        return Err(e);
                    }
                },
            }
        }
        Ok(Value::Object(map))
    }
}

/// An object key and, when it is a slice of the input, the offset of its opening quote.
#[derive(Clone, Copy)]
struct KeySeed {
    base: usize,
    len: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = (String, Option<usize>);

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = (String, Option<usize>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        let start = (v.as_ptr() as usize).wrapping_sub(self.base);
        let offset = (start > 0 && start <= self.len).then(|| start - 1);
        Ok((v.to_owned(), offset))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok((v.to_owned(), None))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok((v, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(line: &str) -> RecordError {
        match parse_record(line.as_bytes()) {
            Ok(v) => panic!("{line} parsed as {v}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_like_serde_json_in_order() {
        let line = r#"{"b": 1, "a": [1.5, -2, 18446744073709551615, "x\n", null, true], "c": {"z": {}, "y": []}}"#;
        let ours = parse_record(line.as_bytes()).expect("valid");
        let theirs: Value = serde_json::from_str(line).expect("valid");
        assert_eq!(ours, theirs);
        // Same key order (preserve_order), not only the same map.
        assert_eq!(ours.to_string(), theirs.to_string());
        assert_eq!(
            parse_record(b"{\"a\":1}\r\n").expect("CRLF"),
            json!({"a": 1})
        );
    }

    #[test]
    fn duplicate_keys_fail_with_key_and_offset() {
        let e = err(r#"{"email":"a","email":"b"}"#);
        assert_eq!(e.kind, FailureKind::InvalidRecord);
        assert_eq!(e.field.as_deref(), Some("email"));
        assert_eq!(e.offset(), Some(13));
        assert!(
            e.message.contains("duplicate key `email` at byte 13"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_keys_fail_at_any_depth() {
        let line = r#"{"a": {"list": [{"k": 1}, {"k": 2, "k" : 3}]}}"#;
        let e = err(line);
        assert_eq!(e.field.as_deref(), Some("a.list[1].k"));
        assert_eq!(e.offset(), line.find(r#""k" :"#));
        // Equal keys in different objects are fine.
        assert!(parse_record(br#"{"k": {"k": {"k": 1}}, "j": [{"k": 1}, {"k": 2}]}"#).is_ok());
    }

    #[test]
    fn duplicate_escaped_key_is_located() {
        // `\u0065` is `e`: the same key spelled differently, read through the scratch buffer.
        let line = r#"{"email": 1, "\u0065mail"  : 2}"#;
        let e = err(line);
        assert_eq!(e.field.as_deref(), Some("email"));
        assert_eq!(e.offset(), Some(13));
        let line = r#"{"a\"b": 1, "a\"b": 2}"#;
        assert_eq!(err(line).offset(), Some(12));
    }

    #[test]
    fn invalid_utf8_gives_first_bad_byte() {
        let e = parse_record(b"{\"name\": \"caf\xe9\"}").expect_err("latin-1");
        assert_eq!(e.offset(), Some(13));
        assert!(e.message.starts_with("invalid UTF-8 at byte 13"), "{e}");
    }

    #[test]
    fn invalid_json_gives_offset() {
        let e = err(r#"{"a":}"#);
        assert_eq!(e.offset(), Some(5), "{e}");
        assert!(e.message.starts_with("invalid JSON at byte 5: "), "{e}");
        assert!(!e.message.contains("line 1"), "{e}");
        assert_eq!(err(r#"{"a" 1}"#).offset(), Some(5));
        assert_eq!(err(r#"{"a":1"#).offset(), Some(6));
        assert_eq!(err(r#"{"a":1} x"#).offset(), Some(8));
        assert_eq!(err("").offset(), Some(0));
        assert_eq!(err("{\"a\":1,\n \"b\":?}").offset(), Some(13));
    }

    #[test]
    fn top_level_must_be_an_object() {
        for (line, ty) in [("[1,2]", "array"), (" 3", "number"), ("\"x\"", "string")] {
            let e = err(line);
            assert!(e.message.contains(&format!("got {ty}")), "{e}");
        }
        assert_eq!(err(" 3").offset(), Some(1));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let line = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(err(&line).message.contains("recursion limit"));
    }
}
