//! Sealing credentials at rest: AES-256-GCM under a master key.
//!
//! - Every seal draws a fresh random 96-bit nonce: one key may seal billions of values before
//!   a nonce collision becomes likely, far more than a credential store holds.
//! - The associated data binds a value to where it is stored (tenant, provider, name, see
//!   [`aad`]): a ciphertext copied to another tenant's row does not open.
//! - The master key is 32 random bytes (base64 in `RULEBRIDGE_MASTER_KEY`) or derived from a
//!   passphrase with Argon2id and a salt kept in the store ([`MasterKey::derive`]).
//! - A [`MasterKey::id`] (a short hash of the key) is stored next to each ciphertext, so a
//!   record sealed under another key is reported as such instead of as tampered, and a
//!   rotation knows which records it has re-sealed.

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use sha2::Digest;

use super::Secret;

/// Bytes of a master key (AES-256).
pub const KEY_LEN: usize = 32;
/// Bytes of a nonce (96 bits, GCM's native size).
pub const NONCE_LEN: usize = 12;
/// Bytes of a passphrase salt.
pub const SALT_LEN: usize = 16;

/// Why a key could not be made or a value not opened. Never holds a key or a value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error(
        "the master key is not valid base64 of 32 bytes ({0}); make one with `rulebridge creds keygen`"
    )]
    BadKey(String),
    #[error("the master key cannot be derived from the passphrase: {0}")]
    Derive(String),
    /// The record was sealed under another key than the one given.
    #[error(
        "{what} was sealed with master key {found}, not with the key given ({given}); give the key it was sealed with (after a rotation: the new one)"
    )]
    WrongKey {
        what: String,
        found: String,
        given: String,
    },
    /// The ciphertext, nonce or associated data do not authenticate: the record was changed.
    #[error(
        "{what} does not decrypt: the stored record was altered or corrupted (its ciphertext, nonce or location); set it again"
    )]
    Tampered { what: String },
}

/// A 256-bit master key. `Debug` shows its id only.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; KEY_LEN],
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// A sealed value as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// Ciphertext followed by the 16-byte GCM tag.
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    /// [`MasterKey::id`] of the key that sealed it.
    pub key_id: String,
}

/// The associated data of a stored credential: its tenant, provider and name, each
/// length-prefixed so no two locations share one (`a|b` + `c` differs from `a` + `b|c`).
pub fn aad(tenant: &str, provider: &str, name: &str) -> Vec<u8> {
    let mut out = b"rulebridge-credential-v1".to_vec();
    for part in [tenant, provider, name] {
        out.extend_from_slice(format!("|{}:", part.len()).as_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Leads a [`Sealed::to_bytes`] frame.
const FRAME_MAGIC: &[u8; 4] = b"RBS1";

impl Sealed {
    /// One self-describing byte string (magic, key id, nonce, ciphertext), for a column that
    /// holds either plain or sealed bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let id = self.key_id.as_bytes();
        let mut out = Vec::with_capacity(5 + id.len() + self.nonce.len() + self.ciphertext.len());
        out.extend_from_slice(FRAME_MAGIC);
        out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&id[..id.len().min(255)]);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// The value [`Sealed::to_bytes`] wrote; `None` for bytes not in that form.
    pub fn from_bytes(bytes: &[u8]) -> Option<Sealed> {
        let rest = bytes.strip_prefix(FRAME_MAGIC.as_slice())?;
        let (&len, rest) = rest.split_first()?;
        let len = usize::from(len);
        if rest.len() < len + NONCE_LEN {
            return None;
        }
        let (id, rest) = rest.split_at(len);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        Some(Sealed {
            ciphertext: ciphertext.to_vec(),
            nonce: nonce.to_vec(),
            key_id: String::from_utf8(id.to_vec()).ok()?,
        })
    }
}

impl MasterKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, SealError> {
        let key: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| SealError::BadKey(format!("{} bytes", bytes.len())))?;
        let digest = sha2::Sha256::new()
            .chain_update(b"rulebridge master key id\0")
            .chain_update(key)
            .finalize();
        Ok(MasterKey {
            key,
            id: hex::encode(&digest[..6]),
        })
    }

    /// A key from base64 (standard or URL-safe, padded or not) of 32 bytes.
    pub fn from_base64(text: &str) -> Result<MasterKey, SealError> {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let t = text.trim();
        let padded = format!("{t}{}", "=".repeat((4 - t.len() % 4) % 4));
        let bytes = STANDARD
            .decode(&padded)
            .or_else(|_| URL_SAFE.decode(&padded))
            .map_err(|_| SealError::BadKey("not base64".into()))?;
        MasterKey::from_bytes(&bytes)
    }

    /// A key derived from a passphrase with Argon2id (19 MiB, 2 passes: the OWASP minimum)
    /// and a random salt of the store's.
    pub fn derive(passphrase: &str, salt: &[u8]) -> Result<MasterKey, SealError> {
        if passphrase.is_empty() {
            return Err(SealError::Derive("the passphrase is empty".into()));
        }
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::DEFAULT,
        );
        let mut key = [0u8; KEY_LEN];
        argon
            .hash_password_into(passphrase.as_bytes(), salt, &mut key)
            .map_err(|e| SealError::Derive(e.to_string()))?;
        MasterKey::from_bytes(&key)
    }

    /// A new random key.
    pub fn generate() -> MasterKey {
        let key = aes_gcm::Key::<Aes256Gcm>::generate();
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(&key);
        // 32 bytes always make a key.
        MasterKey::from_bytes(&bytes).unwrap_or_else(|_| unreachable!("32 bytes"))
    }

    /// The key as base64, for `RULEBRIDGE_MASTER_KEY` (registered for scrubbing).
    pub fn to_base64(&self) -> Secret {
        Secret::new(base64::engine::general_purpose::STANDARD.encode(self.key))
    }

    /// A short hash of the key that says which key sealed a record, and reveals nothing of it.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.key.into())
    }

    /// Seals `plaintext` bound to `aad`, under a fresh random nonce.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Sealed {
        let nonce = Nonce::generate();
        // Encryption fails only for inputs beyond GCM's limits (64 GiB): never a credential.
        let ciphertext = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap_or_default();
        Sealed {
            ciphertext,
            nonce: nonce.to_vec(),
            key_id: self.id.clone(),
        }
    }

    /// Opens a sealed value; `what` names it in errors (tenant, provider, name).
    pub fn open(&self, sealed: &Sealed, aad: &[u8], what: &str) -> Result<Vec<u8>, SealError> {
        if sealed.key_id != self.id {
            return Err(SealError::WrongKey {
                what: what.to_string(),
                found: sealed.key_id.clone(),
                given: self.id.clone(),
            });
        }
        let tampered = || SealError::Tampered {
            what: what.to_string(),
        };
        let nonce = Nonce::try_from(sealed.nonce.as_slice()).map_err(|_| tampered())?;
        self.cipher()
            .decrypt(
                &nonce,
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map_err(|_| tampered())
    }
}

/// A new random salt for [`MasterKey::derive`].
pub fn new_salt() -> [u8; SALT_LEN] {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::generate()
    }

    #[test]
    fn seals_and_opens_with_the_location_bound() {
        let k = key();
        let at = aad("acme", "hubspot", "token");
        let sealed = k.seal(&at, b"pat-na1-123");
        assert_eq!(sealed.nonce.len(), NONCE_LEN);
        assert_eq!(sealed.ciphertext.len(), b"pat-na1-123".len() + 16);
        assert!(!sealed.ciphertext.windows(4).any(|w| w == b"pat-"));
        assert_eq!(
            k.open(&sealed, &at, "x").as_deref(),
            Ok(&b"pat-na1-123"[..])
        );
        // Another tenant's location does not open it.
        let other = aad("globex", "hubspot", "token");
        assert_eq!(
            k.open(&sealed, &other, "globex/hubspot/token"),
            Err(SealError::Tampered {
                what: "globex/hubspot/token".into()
            })
        );
    }

    #[test]
    fn every_seal_has_its_own_nonce() {
        let k = key();
        let at = aad("t", "p", "n");
        let a = k.seal(&at, b"same");
        let b = k.seal(&at, b"same");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn a_changed_byte_is_tampering_and_another_key_is_named() {
        let k = key();
        let at = aad("t", "p", "n");
        let sealed = k.seal(&at, b"value");
        for i in 0..sealed.ciphertext.len() {
            let mut bad = sealed.clone();
            bad.ciphertext[i] ^= 1;
            assert!(matches!(
                k.open(&bad, &at, "t/p/n"),
                Err(SealError::Tampered { .. })
            ));
        }
        let mut bad = sealed.clone();
        bad.nonce[0] ^= 1;
        assert!(matches!(
            k.open(&bad, &at, "t/p/n"),
            Err(SealError::Tampered { .. })
        ));
        bad.nonce.truncate(5);
        assert!(matches!(
            k.open(&bad, &at, "t/p/n"),
            Err(SealError::Tampered { .. })
        ));
        let other = key();
        let err = other.open(&sealed, &at, "t/p/n").err();
        assert_eq!(
            err,
            Some(SealError::WrongKey {
                what: "t/p/n".into(),
                found: k.id().into(),
                given: other.id().into()
            })
        );
        // A forged key id does not make another key open it.
        let mut forged = sealed;
        forged.key_id = other.id().to_string();
        assert!(matches!(
            other.open(&forged, &at, "t/p/n"),
            Err(SealError::Tampered { .. })
        ));
    }

    #[test]
    fn keys_from_base64_and_passphrases() {
        let k = key();
        let again = MasterKey::from_base64(k.to_base64().expose());
        assert_eq!(again.as_ref().map(|k| k.id()), Ok(k.id()));
        assert!(matches!(
            MasterKey::from_base64("c2hvcnQ="),
            Err(SealError::BadKey(_))
        ));
        assert!(matches!(
            MasterKey::from_base64("not base64!"),
            Err(SealError::BadKey(_))
        ));
        let salt = new_salt();
        let a = MasterKey::derive("correct horse battery staple", &salt);
        let b = MasterKey::derive("correct horse battery staple", &salt);
        let c = MasterKey::derive("correct horse battery staple", &new_salt());
        let d = MasterKey::derive("another passphrase", &salt);
        let ids: Vec<_> = [&a, &b, &c, &d]
            .iter()
            .map(|k| k.as_ref().map(|k| k.id().to_string()).unwrap_or_default())
            .collect();
        assert_eq!(ids[0], ids[1]);
        assert_ne!(ids[0], ids[2]);
        assert_ne!(ids[0], ids[3]);
        assert_eq!(ids[0].len(), 12);
        assert!(MasterKey::derive("", &salt).is_err());
        assert_eq!(
            format!("{:?}", a.ok()),
            format!("Some(MasterKey({}))", ids[0])
        );
    }

    #[test]
    fn locations_are_unambiguous() {
        assert_ne!(aad("a|b", "c", "d"), aad("a", "b|c", "d"));
        assert_ne!(aad("a", "", "bc"), aad("a", "b", "c"));
    }
}
