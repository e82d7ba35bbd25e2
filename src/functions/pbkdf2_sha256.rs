use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `pbkdf2_sha256(secret, salt, iterations, length)`: a key derived with PBKDF2-HMAC-SHA256,
/// in hex.
pub struct Pbkdf2Sha256;

/// Bounds that keep one call from stalling a run (the work grows with both).
const MAX_ITERATIONS: i64 = 10_000_000;
const MAX_LENGTH: i64 = 1024;

fn check_iterations(n: i64) -> Result<u32, String> {
    if (1..=MAX_ITERATIONS).contains(&n) {
        Ok(n as u32)
    } else {
        Err(format!(
            "iterations must be between 1 and {MAX_ITERATIONS}, got {n}"
        ))
    }
}

fn check_length(n: i64) -> Result<usize, String> {
    if (1..=MAX_LENGTH).contains(&n) {
        Ok(n as usize)
    } else {
        Err(format!("length must be between 1 and {MAX_LENGTH} bytes, got {n}"))
    }
}

/// Derived keys by a digest of their inputs. A flow derives the same key from the same secret
/// for every record (the Jamf bootstrap guide's 100,000 rounds take tens of milliseconds):
/// deriving it once per process keeps a run's cost per record flat. The inputs are not kept,
/// only their digest; the map is bounded.
const CACHE_ENTRIES: usize = 64;

fn derive(secret: &str, salt: &str, rounds: u32, length: usize) -> String {
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], String>>> = OnceLock::new();
    let mut h = Sha256::new();
    for part in [secret.as_bytes(), salt.as_bytes()] {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update(rounds.to_le_bytes());
    h.update((length as u64).to_le_bytes());
    let id: [u8; 32] = h.finalize().into();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(hit) = cache.lock().ok().and_then(|c| c.get(&id).cloned()) {
        return hit;
    }
    let mut key = vec![0u8; length];
    pbkdf2::pbkdf2_hmac::<Sha256>(secret.as_bytes(), salt.as_bytes(), rounds, &mut key);
    let out = hex::encode(key);
    if let Ok(mut c) = cache.lock() {
        if c.len() >= CACHE_ENTRIES {
            c.clear();
        }
        c.insert(id, out.clone());
    }
    out
}

/// A literal whole number, or `None` when the argument is not a literal.
fn literal_int(v: Option<&Value>) -> Result<Option<i64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("expected a whole number, got {n}")),
        Some(_) => Ok(None),
    }
}

impl Function for Pbkdf2Sha256 {
    fn name(&self) -> &str {
        "pbkdf2_sha256"
    }
    fn category(&self) -> Category {
        Category::Encoding
    }
    fn doc(&self) -> &'static str {
        "Derives a key of `length` bytes from `secret` and `salt` (both as UTF-8 bytes) with \
         PBKDF2-HMAC-SHA256 and `iterations` rounds (RFC 8018), and returns the bytes as \
         lower-case hex, like `sha256` and `hmac_sha256`. Feed it to \
         `base64url_encode(..., \"hex\")` for a Fernet key, as Python's \
         `base64.urlsafe_b64encode(PBKDF2HMAC(...).derive(secret))` makes. The derived key \
         is as sensitive as the secret: it is not a sealed value. Iterations are limited to \
         10,000,000 and the length to 1024 bytes; a literal out of range is a lint error."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("secret", Type::String),
                Param::new("salt", Type::String),
                Param::new("iterations", Type::Number),
                Param::new("length", Type::Number),
            ],
            Type::String,
        )
        .fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "the RFC 7914 test vector, first 32 bytes",
                source: r#"pbkdf2_sha256("passwd", "salt", 1, 32)"#,
                record: "{}",
                result: r#""55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc""#,
            },
            Example {
                title: "a Fernet key derived from a vault key, as the Jamf bootstrap guide does",
                source: r#"base64url_encode(pbkdf2_sha256(vault_key, "jamf_bootstrap_salt", 1000, 32), "hex")"#,
                record: r#"{"vault_key": "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="}"#,
                result: r#""rWgFe5DTd9r5qf0fD0tusxm0XGDbeEAf9fePbnPornU=""#,
            },
            Example {
                title: "zero iterations",
                source: r#"pbkdf2_sha256("k", "s", rounds, 32)"#,
                record: r#"{"rounds": 0}"#,
                result: "error: iterations must be between 1",
            },
        ]
    }
    fn prepare(
        &self,
        consts: &[Option<&Value>],
    ) -> Result<Option<crate::functions::Prepared>, String> {
        if let Some(n) = literal_int(consts.get(2).copied().flatten())? {
            check_iterations(n)?;
        }
        if let Some(n) = literal_int(consts.get(3).copied().flatten())? {
            check_length(n)?;
        }
        Ok(None)
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let secret = arg::str(args, 0)?;
        let salt = arg::str(args, 1)?;
        let rounds = check_iterations(arg::int(args, 2)?).map_err(FnError)?;
        let length = check_length(arg::int(args, 3)?).map_err(FnError)?;
        Ok(Value::String(derive(secret, salt, rounds, length)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, call_dynamic};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Pbkdf2Sha256);
    }

    /// RFC 7914 §11 (PBKDF2-HMAC-SHA256) and the SHA-256 analogues of RFC 6070's vectors.
    #[test]
    fn known_vectors() {
        let cases = [
            ("passwd", "salt", 1, 64, "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"),
            ("Password", "NaCl", 80000, 64, "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"),
            ("password", "salt", 1, 32, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"),
            ("password", "salt", 4096, 32, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"),
        ];
        for (p, s, c, len, hex) in cases {
            assert_eq!(
                call(&Pbkdf2Sha256, vec![json!(p), json!(s), json!(c), json!(len)]),
                Ok(json!(hex)),
                "{p}/{s}/{c}"
            );
        }
    }

    #[test]
    fn derived_once_per_inputs() {
        let a = derive("vault", "salt", 1000, 32);
        // A second derivation of the same inputs is the first one's.
        assert_eq!(derive("vault", "salt", 1000, 32), a);
        // Any input changed is another key, also where the concatenation is the same.
        assert_ne!(derive("vaul", "tsalt", 1000, 32), a);
        assert_ne!(derive("vault", "salt", 1001, 32), a);
        assert_eq!(derive("vault", "salt", 1000, 16), a[..32]);
    }

    #[test]
    fn bounds() {
        let e = call(&Pbkdf2Sha256, vec![json!("k"), json!("s"), json!(1), json!(0)]);
        assert!(e.is_err_and(|e| e.0.contains("length must be between")));
        let e = call_dynamic(&Pbkdf2Sha256, vec![json!("k"), json!("s"), json!(1.5), json!(8)]);
        assert!(e.is_err_and(|e| e.0.contains("whole number")));
        let e = call_dynamic(
            &Pbkdf2Sha256,
            vec![json!("k"), json!("s"), json!(MAX_ITERATIONS + 1), json!(8)],
        );
        assert!(e.is_err_and(|e| e.0.contains("iterations")));
    }
}
