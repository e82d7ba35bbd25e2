//! Errors of the three phases. Each carries a range inside the expression text so the caller
//! can point into the rule file.

use std::fmt;

use crate::diagnostic::Code;

use super::ast::TextRange;

/// A syntax error (diagnostic RB1001).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub range: TextRange,
    pub message: String,
    pub help: Option<String>,
}

impl ParseError {
    pub(crate) fn new(range: TextRange, message: impl Into<String>) -> Self {
        ParseError {
            range,
            message: message.into(),
            help: None,
        }
    }

    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// A type or name error found while compiling; one expression may produce several.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckError {
    pub code: Code,
    pub range: TextRange,
    pub message: String,
    /// Short text shown at the range ("expected string").
    pub label: Option<String>,
    pub help: Option<String>,
}

impl CheckError {
    pub(crate) fn new(code: Code, range: TextRange, message: impl Into<String>) -> Self {
        CheckError {
            code,
            range,
            message: message.into(),
            label: None,
            help: None,
        }
    }

    pub(crate) fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub(crate) fn help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for CheckError {}

/// A per-record failure (a field of a string, division by zero, a function error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalError {
    pub range: TextRange,
    pub message: String,
}

impl EvalError {
    pub(crate) fn new(range: TextRange, message: impl Into<String>) -> Self {
        EvalError {
            range,
            message: message.into(),
        }
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EvalError {}
