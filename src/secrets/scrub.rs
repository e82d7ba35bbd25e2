//! Masking secret values in everything the process lets out, the way CI systems mask secrets.
//!
//! A [`Scrubber`] is built from a set of secret values. Each value is searched for as written
//! and in the encodings it travels in: JSON string escaping, base64 (standard and URL-safe,
//! padded or not, and at each of the three byte alignments it can have inside a longer
//! base64 text such as a Basic `user:pass` header), percent-encoding (upper- and lower-case
//! hex) and form encoding. Every occurrence becomes [`MASK`]. One Aho-Corasick automaton
//! finds all patterns in a single pass.
//!
//! Every [`Secret`](super::Secret) registers its value with a process-wide registry when it
//! is made ([`register`]); [`scrubber`] returns a snapshot over everything resolved so far, and
//! [`scrub`], [`scrub_value`] and [`ScrubWriter`] use it. Output points (outcomes, connector
//! errors, the CLI's stdout, stderr and logs) go through it.
//!
//! Values shorter than [`MIN_LEN`] characters are not masked: masking `1` or `yes` would
//! garble every output while protecting nothing.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::sync::{Arc, OnceLock, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::Value;

/// What a masked secret is replaced with.
pub const MASK: &str = "***";

/// Shortest value (in bytes) that is masked, and shortest encoded fragment searched for.
pub const MIN_LEN: usize = 4;

/// Finds secret values and their encodings in text and replaces them with [`MASK`].
/// Immutable; cheap to share behind an `Arc`.
pub struct Scrubber {
    automaton: Option<AhoCorasick>,
    /// Used when the automaton could not be built (far more patterns than any process has).
    patterns: Vec<String>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber")
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

impl Default for Scrubber {
    fn default() -> Self {
        Scrubber::empty()
    }
}

impl Scrubber {
    /// A scrubber that masks nothing.
    pub fn empty() -> Self {
        Scrubber {
            automaton: None,
            patterns: Vec::new(),
        }
    }

    /// A scrubber for `secrets` and their encodings.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        for s in secrets {
            set.extend(variants(s.as_ref()));
        }
        let patterns: Vec<String> = set.into_iter().collect();
        if patterns.is_empty() {
            return Scrubber::empty();
        }
        // Leftmost-longest: the padded encoding wins over its unpadded prefix, a value over
        // a fragment of it.
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok();
        Scrubber {
            automaton,
            patterns,
        }
    }

    /// Whether it masks nothing.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `text` with every secret (in any of its encodings) replaced by [`MASK`]; borrowed when
    /// there was nothing to mask.
    pub fn scrub<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.patterns.is_empty() {
            return Cow::Borrowed(text);
        }
        match &self.automaton {
            Some(ac) => {
                if !ac.is_match(text) {
                    return Cow::Borrowed(text);
                }
                let mut out = String::with_capacity(text.len());
                ac.replace_all_with(text, &mut out, |_, _, dst| {
                    dst.push_str(MASK);
                    true
                });
                Cow::Owned(out)
            }
            None => {
                let mut out = Cow::Borrowed(text);
                // Longest first, as the automaton would match.
                let mut by_len: Vec<&String> = self.patterns.iter().collect();
                by_len.sort_by_key(|p| std::cmp::Reverse(p.len()));
                for p in by_len {
                    if out.contains(p.as_str()) {
                        out = Cow::Owned(out.replace(p.as_str(), MASK));
                    }
                }
                out
            }
        }
    }

    /// Scrubs a string in place (no allocation when there is nothing to mask).
    pub fn scrub_string(&self, s: &mut String) {
        if let Cow::Owned(clean) = self.scrub(s) {
            *s = clean;
        }
    }

    /// Scrubs every string of a JSON value in place, object keys included.
    pub fn scrub_value(&self, v: &mut Value) {
        if self.patterns.is_empty() {
            return;
        }
        match v {
            Value::String(s) => self.scrub_string(s),
            Value::Array(items) => items.iter_mut().for_each(|i| self.scrub_value(i)),
            Value::Object(map) => {
                let dirty_keys = map.keys().any(|k| matches!(self.scrub(k), Cow::Owned(_)));
                if dirty_keys {
                    let old = std::mem::take(map);
                    for (k, mut val) in old {
                        self.scrub_value(&mut val);
                        map.insert(self.scrub(&k).into_owned(), val);
                    }
                } else {
                    map.values_mut().for_each(|val| self.scrub_value(val));
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// The forms `secret` may take in output.
fn variants(secret: &str) -> Vec<String> {
    if secret.len() < MIN_LEN {
        return Vec::new();
    }
    let mut out = vec![secret.to_string()];
    // Inside JSON text (a body echoed in an error message, a log field).
    if let Ok(json) = serde_json::to_string(secret) {
        out.push(json[1..json.len() - 1].to_string());
    }
    // URL query strings and OAuth form bodies.
    out.push(percent(secret, true));
    out.push(percent(secret, false));
    out.push(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect());
    // Base64, whole and at every alignment inside a longer encoded text.
    let bytes = secret.as_bytes();
    for engine in [&STANDARD, &URL_SAFE] {
        out.push(engine.encode(bytes));
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for offset in 0..3usize {
            let mut padded = vec![0u8; offset];
            padded.extend_from_slice(bytes);
            let encoded = engine.encode(&padded);
            // Characters whose 6 bits all come from the secret: from the first one after the
            // `offset` prefix bytes, to the last one before the secret's end.
            let start = (8 * offset).div_ceil(6);
            let end = (8 * (offset + bytes.len())) / 6;
            if end > start
                && let Some(core) = encoded.get(start..end)
            {
                out.push(core.to_string());
            }
        }
    }
    let encoded: Vec<String> = out[1..].to_vec();
    // A base64 text in a URL.
    for e in encoded.iter().filter(|e| e.contains(['+', '/', '='])) {
        out.push(percent(e, true));
    }
    out.retain(|v| v.len() >= MIN_LEN);
    out.sort();
    out.dedup();
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent(text: &str, upper: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else if upper {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The process-wide registry

struct Registry {
    values: BTreeSet<String>,
    current: Arc<Scrubber>,
    /// Values were added since `current` was built. The automaton is rebuilt when a scrubber
    /// is next asked for, so values registered together (a tenant's credentials, a rule
    /// set's secrets) cost one build, not one each over every value so far.
    stale: bool,
}

fn registry() -> &'static RwLock<Registry> {
    static REGISTRY: OnceLock<RwLock<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        RwLock::new(Registry {
            values: BTreeSet::new(),
            current: Arc::new(Scrubber::empty()),
            stale: false,
        })
    })
}

/// Adds a value to the process-wide set that [`scrubber`] masks. Every
/// [`Secret`](super::Secret) calls it when made; call it for any other value that must never be
/// printed (a credential an embedder holds outside rulebridge).
pub fn register(value: &str) {
    if value.len() < MIN_LEN {
        return;
    }
    let reg = registry();
    if reg
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values
        .contains(value)
    {
        return;
    }
    let mut reg = reg.write().unwrap_or_else(|e| e.into_inner());
    if reg.values.insert(value.to_string()) {
        reg.stale = true;
    }
}

/// A snapshot of the process-wide scrubber: every secret registered so far.
pub fn scrubber() -> Arc<Scrubber> {
    let reg = registry();
    {
        let read = reg.read().unwrap_or_else(|e| e.into_inner());
        if !read.stale {
            return read.current.clone();
        }
    }
    let mut write = reg.write().unwrap_or_else(|e| e.into_inner());
    // Another thread may have rebuilt it between the two locks.
    if write.stale {
        write.current = Arc::new(Scrubber::new(write.values.iter()));
        write.stale = false;
    }
    write.current.clone()
}

/// [`Scrubber::scrub`] with the process-wide scrubber.
pub fn scrub(text: &str) -> Cow<'_, str> {
    match scrubber().scrub(text) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(s) => Cow::Owned(s),
    }
}

/// [`Scrubber::scrub_string`] with the process-wide scrubber.
pub fn scrub_string(s: &mut String) {
    scrubber().scrub_string(s);
}

/// [`Scrubber::scrub_value`] with the process-wide scrubber.
pub fn scrub_value(v: &mut Value) {
    scrubber().scrub_value(v);
}

/// A writer that masks secrets (with the process-wide scrubber) before they reach `inner`.
///
/// Text is held until a line ends, so a value split across `write` calls is still found; the
/// rest is written by `flush` and on drop. One writer per log event or output stream.
pub struct ScrubWriter<W: Write> {
    /// `None` only after `into_inner`.
    inner: Option<W>,
    pending: Vec<u8>,
}

impl<W: Write> ScrubWriter<W> {
    pub fn new(inner: W) -> Self {
        ScrubWriter {
            inner: Some(inner),
            pending: Vec::new(),
        }
    }

    /// The writer, after writing what is held.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.write_pending(self.pending.len())?;
        self.inner
            .take()
            .ok_or_else(|| io::Error::other("the writer was taken"))
    }

    fn write_pending(&mut self, upto: usize) -> io::Result<()> {
        if upto == 0 {
            return Ok(());
        }
        let chunk: Vec<u8> = if upto == self.pending.len() {
            std::mem::take(&mut self.pending)
        } else {
            self.pending.drain(..upto).collect()
        };
        write_clean(self.inner.as_mut(), &chunk)
    }
}

/// Masks `chunk` (whole lines) and writes it. Valid UTF-8, the common case, is checked without
/// the lossy conversion's per-character decoding.
fn write_clean<W: Write>(inner: Option<&mut W>, chunk: &[u8]) -> io::Result<()> {
    let Some(w) = inner else { return Ok(()) };
    let text = match std::str::from_utf8(chunk) {
        Ok(t) => Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(chunk),
    };
    w.write_all(scrub(&text).as_bytes())
}

impl<W: Write> Write for ScrubWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Only the new bytes can hold a new line end: searching all that is held would make
        // a line written in many small pieces quadratic.
        let Some(last_newline) = buf.iter().rposition(|b| *b == b'\n') else {
            self.pending.extend_from_slice(buf);
            return Ok(buf.len());
        };
        let (mut lines, rest) = buf.split_at(last_newline + 1);
        if !self.pending.is_empty() {
            // The held text ends with the first new line; the whole lines after it go out
            // without being copied (a buffered writer's chunks rarely end at a line end).
            let first = lines
                .iter()
                .position(|b| *b == b'\n')
                .unwrap_or(lines.len() - 1);
            self.pending.extend_from_slice(&lines[..=first]);
            self.write_pending(self.pending.len())?;
            lines = &lines[first + 1..];
        }
        if !lines.is_empty() {
            write_clean(self.inner.as_mut(), lines)?;
        }
        self.pending.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_pending(self.pending.len())?;
        match &mut self.inner {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> Drop for ScrubWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CANARY: &str = "canary-Zq9/x+Y7 &secret";

    fn masked(s: &Scrubber, text: &str) -> bool {
        !s.scrub(text).contains(CANARY) && s.scrub(text).contains(MASK)
    }

    #[test]
    fn masks_the_value_and_its_encodings() {
        let s = Scrubber::new([CANARY]);
        let forms = [
            CANARY.to_string(),
            STANDARD.encode(CANARY),
            STANDARD_NO_PAD.encode(CANARY),
            URL_SAFE.encode(CANARY),
            URL_SAFE_NO_PAD.encode(CANARY),
            percent(CANARY, true),
            percent(CANARY, false),
            url::form_urlencoded::byte_serialize(CANARY.as_bytes()).collect(),
            serde_json::to_string(CANARY).unwrap_or_default(),
        ];
        for form in forms {
            let text = format!("before {form} after");
            let out = s.scrub(&text);
            assert!(!out.contains(&form), "{form} survived in {out}");
            assert!(
                out.starts_with("before ") && out.ends_with(" after"),
                "{out}"
            );
        }
    }

    #[test]
    fn masks_basic_auth_at_every_alignment() {
        let s = Scrubber::new([CANARY]);
        for user in ["", "a", "ab", "abc", "someone"] {
            let header = STANDARD.encode(format!("{user}:{CANARY}"));
            let line = format!("Authorization: Basic {header}");
            let out = s.scrub(&line);
            assert!(out.contains(MASK), "{user}: {out}");
            // No run of characters long enough to carry the secret survives.
            let rest = out.trim_start_matches("Authorization: Basic ");
            let longest = rest.split(MASK).map(str::len).max().unwrap_or(0);
            assert!(longest <= 12, "{user}: {out}");
            // A different secret in the same place is left alone.
            let other = STANDARD.encode(format!("{user}:not-the-canary-at-all"));
            assert_eq!(s.scrub(&other), other);
        }
    }

    #[test]
    fn leaves_clean_text_borrowed_and_short_values_alone() {
        let s = Scrubber::new(["1", "abc", CANARY]);
        assert!(matches!(s.scrub("account 1, abc"), Cow::Borrowed(_)));
        assert!(masked(&s, &format!("x{CANARY}y")));
        assert!(Scrubber::new(["ab"]).is_empty());
    }

    #[test]
    fn scrubs_json_values_and_keys() {
        let s = Scrubber::new([CANARY]);
        let mut v = json!({"a": [format!("t={CANARY}")], CANARY: 1, "n": 2});
        s.scrub_value(&mut v);
        assert_eq!(v, json!({"a": ["t=***"], "***": 1, "n": 2}));
    }

    #[test]
    fn writer_masks_values_split_across_writes() {
        let value = "split-canary-4d1e";
        register(value);
        let mut w = ScrubWriter::new(Vec::new());
        let (a, b) = value.split_at(6);
        write!(w, "one {a}").ok();
        write!(w, "{b} two\nthree {value}").ok();
        let out = w.into_inner().unwrap_or_default();
        assert_eq!(String::from_utf8_lossy(&out), "one *** two\nthree ***");
    }

    #[test]
    fn writer_masks_whole_lines_written_at_once_and_holds_the_rest() {
        let value = "bulk-canary-7a3b";
        register(value);
        let mut w = ScrubWriter::new(Vec::new());
        w.write_all(format!("a {value}\nb {value}\nc {}", &value[..5]).as_bytes())
            .ok();
        w.write_all(format!("{}\n", &value[5..]).as_bytes()).ok();
        // Invalid UTF-8 is replaced, as before, and the rest of the line still masked.
        w.write_all(b"d \xff ").ok();
        w.write_all(format!("{value}\n").as_bytes()).ok();
        let out = w.into_inner().unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "a ***\nb ***\nc ***\nd \u{fffd} ***\n"
        );
    }

    #[test]
    fn the_registry_grows() {
        let value = "registry-canary-8c2f";
        assert!(scrub(value).contains(value));
        register(value);
        assert_eq!(scrub(&format!("[{value}]")), "[***]");
    }

    #[test]
    fn values_registered_together_are_all_masked() {
        let values: Vec<String> = (0..200)
            .map(|i| format!("burst-canary-{i:03}-5e1a"))
            .collect();
        for v in &values {
            register(v);
        }
        let text = values.join(" ");
        let masked = scrub(&text);
        assert_eq!(masked, vec![MASK; values.len()].join(" "));
        // One more after the rebuild is masked too.
        register("burst-canary-late-5e1a");
        assert_eq!(scrub("x burst-canary-late-5e1a"), "x ***");
    }
}
