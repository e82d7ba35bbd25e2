//! Salesforce record ids: 15-character keys and their 18-character checksummed form.

use chrono::{DateTime, Utc};

pub(super) const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 18-character id: the 15-character one plus its case-folding checksum.
pub(super) fn id18(id15: &str) -> String {
    const SUFFIX: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let bytes = id15.as_bytes();
    let mut out = id15.to_string();
    for chunk in bytes.chunks(5).take(3) {
        let mut flags = 0usize;
        for (j, b) in chunk.iter().enumerate() {
            if b.is_ascii_uppercase() {
                flags |= 1 << j;
            }
        }
        out.push(SUFFIX[flags] as char);
    }
    out
}

/// The 15-character key of a 15- or 18-character id whose checksum is right.
pub(super) fn key15(id: &str) -> Option<String> {
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match id.len() {
        15 => Some(id.to_string()),
        18 => (id18(&id[..15]) == id).then(|| id[..15].to_string()),
        _ => None,
    }
}

pub(super) fn make_id15(prefix: &str, n: u64) -> String {
    let mut digits = Vec::new();
    let mut n = n;
    for _ in 0..6 {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    digits.reverse();
    format!(
        "{prefix}8d0000{}",
        String::from_utf8(digits).unwrap_or_default()
    )
}

pub(super) fn sf_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_checksum() {
        // A well-known pair.
        assert_eq!(id18("001A0000006Vm9r"), "001A0000006Vm9rIAC");
        let id = id18(&make_id15("00Q", 1));
        assert_eq!(id.len(), 18);
        assert!(id.starts_with("00Q"));
        assert_eq!(key15(&id).as_deref(), Some(&id[..15]));
        assert_eq!(key15("00Q8d0000000001XXX"), None);
    }
}
