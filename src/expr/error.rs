//! Errors of the three phases. Each carries a range inside the expression text so the caller
//! can point into the rule file.

use std::fmt;

use crate::diagnostic::{Code, Diagnostic};
use crate::span::{SourceMap, Span};

use super::ast::TextRange;

/// A syntax error (diagnostic RB1001).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Where the problem is, inside the expression text.
    pub range: TextRange,
    pub message: String,
    /// How to fix it, when there is an obvious fix.
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
    /// One of RB1002–RB1009.
    pub code: Code,
    /// Where the problem is, inside the expression text.
    pub range: TextRange,
    pub message: String,
    /// Short text shown at the range ("expected string").
    pub label: Option<String>,
    /// A suggestion ("did you mean `lower`?") or the function's signature.
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
    /// The part of the expression that failed (a call, an operator, a path).
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

/// Maps a range inside an expression to the rule file. `at` is the span of the YAML value
/// holding the expression and `text` its decoded string.
fn file_span(at: Span, sources: &SourceMap, text: &str, range: TextRange) -> Span {
    at.inner(sources, text, range.start as usize, range.end as usize)
}

impl ParseError {
    /// This error as diagnostic RB1001 in the rule file.
    pub fn to_diagnostic(&self, at: Span, sources: &SourceMap, text: &str) -> Diagnostic {
        Diagnostic::new(
            Code::ExprSyntax,
            file_span(at, sources, text, self.range),
            self.message.clone(),
        )
        .with_help_opt(self.help.clone())
    }
}

impl CheckError {
    /// This error as a diagnostic in the rule file.
    pub fn to_diagnostic(&self, at: Span, sources: &SourceMap, text: &str) -> Diagnostic {
        let mut d = Diagnostic::new(
            self.code,
            file_span(at, sources, text, self.range),
            self.message.clone(),
        )
        .with_help_opt(self.help.clone());
        if let Some(label) = &self.label {
            d = d.with_label(label.clone());
        }
        d
    }
}

impl EvalError {
    /// Where in the rule file the failing part of the expression is.
    pub fn span(&self, at: Span, sources: &SourceMap, text: &str) -> Span {
        file_span(at, sources, text, self.range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_errors_point_into_the_file() {
        let mut map = SourceMap::new();
        let file = map.add("flow.yaml", "email: 'lowr(email)'\n");
        let at = Span::new(file, 7, 20);
        let e = CheckError::new(Code::UnknownFunction, TextRange::new(0, 4), "unknown")
            .label("here")
            .help(Some("did you mean `lower`?".into()));
        let d = e.to_diagnostic(at, &map, "lowr(email)");
        assert_eq!(map.slice(d.span), Some("lowr"));
        assert_eq!(d.code, Code::UnknownFunction);
        assert_eq!(d.label.as_deref(), Some("here"));
    }
}
