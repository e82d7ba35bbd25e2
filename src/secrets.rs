//! Secret references (`${env:NAME}`, `${file:PATH}`) and the [`Secret`] wrapper that keeps
//! resolved values out of logs, errors and output.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file's contents (trailing newline removed); relative paths are relative to the rules
    /// directory.
    File(PathBuf),
    /// A literal value written in the rule file (discouraged; lint does not forbid it).
    Literal(String),
}

impl SecretRef {
    /// Parses `${env:NAME}` / `${file:PATH}`; any other text is a literal.
    pub fn parse(text: &str) -> Result<SecretRef, String> {
        let Some(inner) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) else {
            return Ok(SecretRef::Literal(text.to_string()));
        };
        match inner.split_once(':') {
            Some(("env", name)) if !name.is_empty() => Ok(SecretRef::Env(name.to_string())),
            Some(("file", path)) if !path.is_empty() => Ok(SecretRef::File(PathBuf::from(path))),
            _ => Err(format!(
                "`{text}` is not a supported secret reference (use ${{env:NAME}} or ${{file:PATH}})"
            )),
        }
    }

    /// Reads the value. Errors name the reference, never a value.
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
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret is not available: {0}")]
    NotSet(String),
}

/// A secret value. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
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
}
