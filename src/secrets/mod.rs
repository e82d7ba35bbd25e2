//! Secret references and the [`Secret`] wrapper that keeps resolved values out of logs,
//! errors and output.
//!
//! | reference | value |
//! |---|---|
//! | `${env:NAME}` | an environment variable |
//! | `${file:PATH}` | a file's contents (trailing newline removed; relative to the rules) |
//! | `${vault:MOUNT/PATH#KEY}` | key `KEY` of the KV v2 secret `PATH` of Vault mount `MOUNT` ([`vault`]) |
//! | `${secret:NAME}` | the credential store, through a [`CredentialSource`] |
//!
//! Values are read at run time only (never by lint). Vault and store values are cached by a
//! [`Resolver`] for its TTL and read again when a provider refuses them (see
//! [`Resolver::invalidate`]). Every resolved value is registered with the process-wide
//! [`scrub`] registry, which masks it (and its encodings) in everything the process prints.

pub mod scrub;
pub mod sealed;
pub mod vault;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

pub use scrub::{MASK, ScrubWriter, Scrubber, register, scrubber};
pub use vault::VaultConfig;

/// Where a secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file's contents (trailing newline removed); relative paths are relative to the rules
    /// directory.
    File(PathBuf),
    /// A key of a HashiCorp Vault KV v2 secret: `${vault:mount/path#key}`.
    Vault {
        mount: String,
        path: String,
        key: String,
    },
    /// A credential in the credential store: `${secret:name}`.
    Store(String),
    /// A literal value written in the rule file (discouraged; lint does not forbid it).
    Literal(String),
}

const SYNTAX: &str = "use ${env:NAME}, ${file:PATH}, ${vault:MOUNT/PATH#KEY} or ${secret:NAME}";

impl SecretRef {
    /// Parses a reference; any text not of the form `${...}` is a literal.
    pub fn parse(text: &str) -> Result<SecretRef, String> {
        let Some(inner) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) else {
            return Ok(SecretRef::Literal(text.to_string()));
        };
        let bad = || format!("`{text}` is not a supported secret reference ({SYNTAX})");
        match inner.split_once(':') {
            Some(("env", name)) if !name.is_empty() => Ok(SecretRef::Env(name.to_string())),
            Some(("file", path)) if !path.is_empty() => Ok(SecretRef::File(PathBuf::from(path))),
            Some(("secret", name)) if !name.is_empty() => Ok(SecretRef::Store(name.to_string())),
            Some(("vault", spec)) => {
                let (location, key) = spec.rsplit_once('#').ok_or_else(|| {
                    format!("`{text}`: a Vault reference names the key after `#`: ${{vault:MOUNT/PATH#KEY}}")
                })?;
                let (mount, path) = location.trim_matches('/').split_once('/').ok_or_else(|| {
                    format!("`{text}`: a Vault reference names the mount and the path: ${{vault:MOUNT/PATH#KEY}}")
                })?;
                if mount.is_empty() || path.is_empty() || key.is_empty() {
                    return Err(bad());
                }
                Ok(SecretRef::Vault {
                    mount: mount.to_string(),
                    path: path.to_string(),
                    key: key.to_string(),
                })
            }
            _ => Err(bad()),
        }
    }

    /// Whether the value lives outside the process (Vault, the credential store): cached for
    /// a TTL, and read again when a provider refuses it.
    pub fn is_remote(&self) -> bool {
        matches!(self, SecretRef::Vault { .. } | SecretRef::Store(_))
    }

    /// Reads an environment, file or literal value. Remote references need a [`Resolver`].
    /// Errors name the reference, never a value.
    pub fn resolve(&self, base: &Path) -> Result<Secret, SecretError> {
        match self {
            SecretRef::Env(name) => std::env::var(name)
                .map(Secret::new)
                .map_err(|_| SecretError::NotSet(format!("environment variable {name}"))),
            SecretRef::File(path) => {
                let path = if path.is_relative() {
                    base.join(path)
                } else {
                    path.clone()
                };
                std::fs::read_to_string(&path)
                    .map(|s| Secret::new(s.trim_end_matches(['\n', '\r']).to_string()))
                    .map_err(|e| SecretError::NotSet(format!("file {} ({e})", path.display())))
            }
            SecretRef::Literal(v) => Ok(Secret::new(v.clone())),
            SecretRef::Vault { .. } | SecretRef::Store(_) => Err(SecretError::Source(format!(
                "{self} is read through a resolver (Resolver::resolve)"
            ))),
        }
    }
}

impl fmt::Display for SecretRef {
    /// The reference as written (a literal prints as `literal`, never its value).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "${{env:{n}}}"),
            SecretRef::File(p) => write!(f, "${{file:{}}}", p.display()),
            SecretRef::Vault { mount, path, key } => write!(f, "${{vault:{mount}/{path}#{key}}}"),
            SecretRef::Store(n) => write!(f, "${{secret:{n}}}"),
            SecretRef::Literal(_) => f.write_str("literal"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret is not available: {0}")]
    NotSet(String),
    /// The source could not be asked (Vault unreachable or refusing, the store failing).
    #[error("secret source failed: {0}")]
    Source(String),
    /// `${secret:NAME}` without a credential store.
    #[error(
        "`${{secret:{0}}}` reads the credential store, which is not configured (give the engine a credential source)"
    )]
    NoStore(String),
}

/// A secret value. `Debug` and `Display` print `***`; making one registers the value with the
/// process-wide [`scrub`] registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        scrub::register(&value);
        Secret(value)
    }

    /// The value, for the one place that must use it (a request header, a function argument).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where `${secret:NAME}` values come from: the credential store (implemented over the state
/// store), or anything else an embedder keeps credentials in.
pub trait CredentialSource: Send + Sync {
    /// The credential stored under `name`; `Ok(None)` when there is none.
    fn credential<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, SecretError>>;
}

/// How long Vault and store values are used before they are read again, by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// Resolves secret references: environment and files directly, Vault and the credential
/// store through a cache with a TTL. Shared by an engine's flows and connectors.
pub struct Resolver {
    vault_config: Option<VaultConfig>,
    vault: OnceLock<vault::VaultClient>,
    store: Option<Arc<dyn CredentialSource>>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Secret, Instant)>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("vault", &self.vault_config)
            .field("store", &self.store.is_some())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new()
    }
}

impl Resolver {
    /// Vault from its environment variables (read when first needed), no credential store,
    /// [`DEFAULT_TTL`].
    pub fn new() -> Self {
        Resolver {
            vault_config: None,
            vault: OnceLock::new(),
            store: None,
            ttl: DEFAULT_TTL,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Reads Vault with this configuration instead of the environment's.
    pub fn with_vault(mut self, config: VaultConfig) -> Self {
        self.vault_config = Some(config);
        self
    }

    /// Where `${secret:NAME}` comes from.
    pub fn with_credential_source(mut self, source: Arc<dyn CredentialSource>) -> Self {
        self.store = Some(source);
        self
    }

    /// How long a Vault or store value is used before it is read again.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The resolver of callers that bring none (Vault from the environment, no store).
    pub fn global() -> Arc<Resolver> {
        static GLOBAL: OnceLock<Arc<Resolver>> = OnceLock::new();
        GLOBAL.get_or_init(|| Arc::new(Resolver::new())).clone()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Secret, Instant)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached(&self, r: &SecretRef) -> Option<Secret> {
        let cache = self.cache();
        let (value, at) = cache.get(&r.to_string())?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// Forgets a cached value, so the next use reads it again (after a provider refused it).
    /// Returns whether anything was forgotten.
    pub fn invalidate(&self, r: &SecretRef) -> bool {
        self.cache().remove(&r.to_string()).is_some()
    }

    /// Resolves any reference; Vault and store values come from the cache while fresh.
    pub async fn resolve(&self, r: &SecretRef, base: &Path) -> Result<Secret, SecretError> {
        if !r.is_remote() {
            return r.resolve(base);
        }
        if let Some(v) = self.cached(r) {
            return Ok(v);
        }
        let value = match r {
            SecretRef::Vault { mount, path, key } => {
                let client = self.vault.get_or_init(|| {
                    vault::VaultClient::new(
                        self.vault_config
                            .clone()
                            .unwrap_or_else(VaultConfig::from_env),
                    )
                });
                client.read(mount, path, key).await?
            }
            SecretRef::Store(name) => {
                let store = self
                    .store
                    .as_ref()
                    .ok_or_else(|| SecretError::NoStore(name.clone()))?;
                store.credential(name).await?.ok_or_else(|| {
                    SecretError::NotSet(format!("the credential store has no `{name}`"))
                })?
            }
            _ => return r.resolve(base),
        };
        tracing::debug!(reference = %r, "secret read");
        self.cache()
            .insert(r.to_string(), (value.clone(), Instant::now()));
        Ok(value)
    }

    /// [`Resolver::resolve`] for synchronous callers, inside or outside a Tokio runtime: a
    /// remote read runs on a thread and runtime of its own, and blocks the calling thread
    /// until it is done (a server on a single-threaded runtime of the caller's would wait).
    pub fn resolve_blocking(&self, r: &SecretRef, base: &Path) -> Result<Secret, SecretError> {
        if !r.is_remote() {
            return r.resolve(base);
        }
        if let Some(v) = self.cached(r) {
            return Ok(v);
        }
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| SecretError::Source(format!("cannot start a runtime: {e}")))?;
                rt.block_on(self.resolve(r, base))
            })
            .join()
            .unwrap_or_else(|_| Err(SecretError::Source("the secret read panicked".into())))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        assert_eq!(SecretRef::parse("${env:A}"), Ok(SecretRef::Env("A".into())));
        assert_eq!(
            SecretRef::parse("${file:k.txt}"),
            Ok(SecretRef::File("k.txt".into()))
        );
        assert!(SecretRef::parse("${vault:x}").is_err());
        assert!(SecretRef::parse("${vault:secret/jamf#}").is_err());
        assert!(SecretRef::parse("${nope:x}").is_err());
        assert_eq!(
            SecretRef::parse("${vault:secret/jamf/prod#encryption_key}"),
            Ok(SecretRef::Vault {
                mount: "secret".into(),
                path: "jamf/prod".into(),
                key: "encryption_key".into()
            })
        );
        assert_eq!(
            SecretRef::parse("${secret:hubspot_token}"),
            Ok(SecretRef::Store("hubspot_token".into()))
        );
        for text in [
            "${env:A}",
            "${file:k.txt}",
            "${vault:kv/a/b#c}",
            "${secret:x}",
        ] {
            assert_eq!(
                SecretRef::parse(text).map(|r| r.to_string()),
                Ok(text.to_string())
            );
        }
        assert_eq!(
            SecretRef::parse("plain"),
            Ok(SecretRef::Literal("plain".into()))
        );
    }

    #[test]
    fn resolves_files_relative_to_base() {
        let dir = tempfile::tempdir().map_err(|e| e.to_string());
        let Ok(dir) = dir else { return };
        std::fs::write(dir.path().join("k"), "s3cret\n").ok();
        let s = SecretRef::File("k".into()).resolve(dir.path());
        assert_eq!(
            s.ok().map(|s| s.expose().to_string()),
            Some("s3cret".into())
        );
    }

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        let err = SecretRef::Env("RB_TEST_SURELY_UNSET".into())
            .resolve(Path::new("."))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("secret is not available: environment variable RB_TEST_SURELY_UNSET")
        );
    }

    /// A store that counts its reads and answers with the current value.
    struct Counting {
        reads: std::sync::atomic::AtomicUsize,
        value: Mutex<String>,
    }

    impl CredentialSource for Counting {
        fn credential<'a>(
            &'a self,
            name: &'a str,
        ) -> BoxFuture<'a, Result<Option<Secret>, SecretError>> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let v = (name == "crm_token")
                .then(|| Secret::new(self.value.lock().map(|v| v.clone()).unwrap_or_default()));
            Box::pin(async move { Ok(v) })
        }
    }

    #[test]
    fn store_values_are_cached_until_invalidated_or_stale() {
        let store = Arc::new(Counting {
            reads: Default::default(),
            value: Mutex::new("store-value-one".into()),
        });
        let r = Resolver::new().with_credential_source(store.clone());
        let token = SecretRef::Store("crm_token".into());
        let read = |r: &Resolver| {
            r.resolve_blocking(&token, Path::new("."))
                .ok()
                .map(|s| s.expose().to_string())
        };
        assert_eq!(read(&r).as_deref(), Some("store-value-one"));
        if let Ok(mut v) = store.value.lock() {
            *v = "store-value-two".into();
        }
        assert_eq!(read(&r).as_deref(), Some("store-value-one"), "cached");
        assert_eq!(store.reads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(r.invalidate(&token));
        assert_eq!(read(&r).as_deref(), Some("store-value-two"), "read again");
        let stale = Resolver::new()
            .with_credential_source(store.clone())
            .with_ttl(Duration::ZERO);
        read(&stale);
        read(&stale);
        assert_eq!(store.reads.load(std::sync::atomic::Ordering::SeqCst), 4);
        let missing = Resolver::new()
            .with_credential_source(store)
            .resolve_blocking(&SecretRef::Store("other".into()), Path::new("."));
        assert!(matches!(missing, Err(SecretError::NotSet(_))));
    }

    #[test]
    fn store_references_without_a_store_say_so() {
        let err = Resolver::new()
            .resolve_blocking(&SecretRef::Store("crm_token".into()), Path::new("."))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "`${secret:crm_token}` reads the credential store, which is not configured (give the engine a credential source)"
            )
        );
    }
}
