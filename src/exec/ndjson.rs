//! Outcomes as NDJSON text, byte for byte what `serde_json` writes for them, faster: a string
//! with nothing to escape (nearly all of them) is checked in one pass and copied whole, where
//! the serializer looks each byte up and writes in pieces. Failed outcomes, rarer and more
//! varied, go through `serde_json` itself.

use std::io::{self, Write};

use serde_json::Value;

use super::Outcome;

/// Writes `outcome` as one JSON object (no line end).
pub fn write_outcome<W: Write + ?Sized>(w: &mut W, outcome: &Outcome) -> io::Result<()> {
    // Every field is named, so a new one cannot be forgotten here.
    let Outcome {
        index,
        key,
        status,
        target_id,
        payload,
        policy,
        reason,
        error,
        provenance: _,
    } = outcome;
    if error.is_some() {
        return serde_json::to_writer(&mut *w, outcome).map_err(io::Error::from);
    }
    w.write_all(b"{\"index\":")?;
    write_usize(w, *index)?;
    if let Some(k) = key {
        w.write_all(b",\"key\":")?;
        write_str(w, k)?;
    }
    w.write_all(b",\"status\":\"")?;
    w.write_all(status.as_str().as_bytes())?;
    w.write_all(b"\"")?;
    if let Some(t) = target_id {
        w.write_all(b",\"target_id\":")?;
        write_str(w, t)?;
    }
    if let Some(p) = payload {
        w.write_all(b",\"payload\":")?;
        write_value(w, p)?;
    }
    if let Some(p) = policy {
        w.write_all(b",\"policy\":")?;
        write_value(w, p)?;
    }
    if let Some(r) = reason {
        w.write_all(b",\"reason\":")?;
        write_str(w, r)?;
    }
    w.write_all(b"}")
}

/// Writes a JSON value as `serde_json::to_writer` does (compact, object keys in map order).
pub fn write_value<W: Write + ?Sized>(w: &mut W, v: &Value) -> io::Result<()> {
    match v {
        Value::Null => w.write_all(b"null"),
        Value::Bool(true) => w.write_all(b"true"),
        Value::Bool(false) => w.write_all(b"false"),
        Value::Number(n) => serde_json::to_writer(&mut *w, n).map_err(io::Error::from),
        Value::String(s) => write_str(w, s),
        Value::Array(items) => {
            w.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                write_value(w, item)?;
            }
            w.write_all(b"]")
        }
        Value::Object(map) => {
            w.write_all(b"{")?;
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                write_str(w, k)?;
                w.write_all(b":")?;
                write_value(w, item)?;
            }
            w.write_all(b"}")
        }
    }
}

/// Whether `bytes` holds a control character, `"` or `\\`: eight bytes at a time (the last
/// word padded with a byte that needs no escape).
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Non-zero exactly when some byte of `w` is zero.
    let zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH;
    let special = |w: u64| {
        // A byte below 0x20 is one whose top three bits are zero.
        zero(w & 0xe0e0_e0e0_e0e0_e0e0)
            | zero(w ^ (ONES * u64::from(b'"')))
            | zero(w ^ (ONES * u64::from(b'\\')))
    };
    let n = bytes.len();
    let u16_at = |i: usize| u64::from(u16::from_le_bytes([bytes[i], bytes[i + 1]]));
    let u32_at = |i: usize| {
        u64::from(u32::from_le_bytes([
            bytes[i],
            bytes[i + 1],
            bytes[i + 2],
            bytes[i + 3],
        ]))
    };
    // Words are read whole or overlapping (a byte tested twice is still the same byte), so
    // no remainder is copied; shorter strings are padded with a byte that needs no escape.
    const PAD: u64 = ONES * b'a' as u64;
    let word = match n {
        0 => return false,
        1 => u64::from(bytes[0]) | (PAD << 8),
        2..=3 => u16_at(0) | (u16_at(n - 2) << 16) | (PAD << 32),
        4..=8 => u32_at(0) | (u32_at(n - 4) << 32),
        _ => {
            let mut chunks = bytes.chunks_exact(8);
            let mut found = 0;
            for c in &mut chunks {
                let mut word = [0u8; 8];
                word.copy_from_slice(c);
                found |= special(u64::from_le_bytes(word));
            }
            if !chunks.remainder().is_empty() {
                let mut word = [0u8; 8];
                word.copy_from_slice(&bytes[n - 8..]);
                found |= special(u64::from_le_bytes(word));
            }
            return found != 0;
        }
    };
    special(word) != 0
}

fn write_usize<W: Write + ?Sized>(w: &mut W, mut n: usize) -> io::Result<()> {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    w.write_all(&digits[at..])
}

/// A JSON string literal; one without bytes to escape is written whole.
fn write_str<W: Write + ?Sized>(w: &mut W, s: &str) -> io::Result<()> {
    if needs_escape(s.as_bytes()) {
        return serde_json::to_writer(&mut *w, s).map_err(io::Error::from);
    }
    w.write_all(b"\"")?;
    w.write_all(s.as_bytes())?;
    w.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::{FailureKind, RecordError, Status};
    use serde_json::json;

    fn fast(o: &Outcome) -> String {
        let mut out = Vec::new();
        write_outcome(&mut out, o).ok();
        String::from_utf8_lossy(&out).into_owned()
    }

    fn serde(o: &Outcome) -> String {
        serde_json::to_string(o).unwrap_or_default()
    }

    #[test]
    fn escapes_are_found_at_every_position() {
        let naive = |b: &[u8]| b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
        for len in 0..40 {
            for at in 0..len {
                for special in [0u8, 0x1f, b'"', b'\\', 0x20, b'!', 0x7f, 0x80, 0xc3, 0xff] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    assert_eq!(needs_escape(&bytes), naive(&bytes), "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let payload = json!({
            "plain": "text", "quote\"d": "a\"b", "back\\slash": "c:\\d", "ctl": "\u{1}\t\n\r\u{7f}",
            "unicode": "é ✓ 𝄞 \u{2028}", "n": [0, -1, 18446744073709551615u64, 1.5, 1e300, -0.0, 1e-7],
            "b": [true, false, null], "nested": {"a": {"b": []}, "c": {}}, "": ""
        });
        let mut all = Outcome {
            index: 7,
            key: Some("ada@example.com".into()),
            status: Status::Updated,
            target_id: Some("id \"1\"".into()),
            payload: Some(payload),
            policy: Some(json!({"owner": "na", "rank": 2})),
            reason: Some("why\nnot".into()),
            error: None,
            provenance: None,
        };
        assert_eq!(fast(&all), serde(&all));
        for status in [
            Status::DryRun,
            Status::Created,
            Status::Skipped,
            Status::Unchanged,
        ] {
            all.status = status;
            assert_eq!(fast(&all), serde(&all));
        }
        for index in [0, 9, 10, 123_456_789, usize::MAX] {
            all.index = index;
            assert_eq!(fast(&all), serde(&all));
        }
        let bare = Outcome::skipped(3, "blank_line");
        assert_eq!(fast(&bare), serde(&bare));
        let failed = Outcome::failed(
            4,
            Some("k".into()),
            RecordError::new(FailureKind::Mapping, "no").with_field("f"),
        );
        assert_eq!(fast(&failed), serde(&failed));
    }
}
