//! Renderers for diagnostics: human (rustc-like snippets), concise (one line each), JSON and
//! SARIF 2.1.0.
//!
//! Every renderer takes the diagnostics in the order given (callers sort them with
//! [`sort`](super::sort)) and the [`SourceMap`] their spans point into. A diagnostic whose
//! file is not in the map (e.g. "no rule files found") is printed without a position.

mod concise;
mod human;
mod json;
mod sarif;

use crate::span::{Location, SourceMap, Span};

use super::{Diagnostic, Severity};

/// Output format of `rulebridge lint --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Source snippets with underlined spans, labels and help (like rustc).
    #[default]
    Human,
    /// `file:line:col: error[CODE] message (help: ...)`, one line each.
    Concise,
    /// A JSON array of `{file, line, column, end_line, end_column, severity, code, message, help?}`.
    Json,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
}

impl Format {
    /// The names accepted on the command line.
    pub const NAMES: &'static [&'static str] = &["human", "concise", "json", "sarif"];

    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "human" => Format::Human,
            "concise" => Format::Concise,
            "json" => Format::Json,
            "sarif" => Format::Sarif,
            _ => return None,
        })
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::from_name(s).ok_or_else(|| {
            format!(
                "unknown format `{s}` (expected one of: {})",
                Format::NAMES.join(", ")
            )
        })
    }
}

/// Renders `diags` in `format`. `color` adds ANSI colors to the human format only.
pub fn render(diags: &[Diagnostic], sources: &SourceMap, format: Format, color: bool) -> String {
    match format {
        Format::Human => human::render(diags, sources, color),
        Format::Concise => concise::render(diags, sources),
        Format::Json => json::render(diags, sources),
        Format::Sarif => sarif::render(diags, sources),
    }
}

/// The closing line of a lint run: `error: 3 errors, 1 warning emitted`, `warning: 1 warning
/// emitted`, or empty when there is nothing to report.
pub fn summary(diags: &[Diagnostic]) -> String {
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    let plural = |n: usize, what: &str| {
        if n == 1 {
            format!("1 {what}")
        } else {
            format!("{n} {what}s")
        }
    };
    match (errors, warnings) {
        (0, 0) => String::new(),
        (0, w) => format!("warning: {} emitted", plural(w, "warning")),
        (e, 0) => format!("error: {} emitted", plural(e, "error")),
        (e, w) => format!(
            "error: {}, {} emitted",
            plural(e, "error"),
            plural(w, "warning")
        ),
    }
}

/// The position of a span, or `None` when its file is unknown.
fn locate(sources: &SourceMap, span: Span) -> Option<Location> {
    sources.get(span.file)?;
    Some(sources.locate(span))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Code;

    #[test]
    fn summary_counts() {
        let span = Span::default();
        let e = Diagnostic::new(Code::UnknownKey, span, "x");
        let w = Diagnostic::new(Code::EmptyRuleSet, span, "y");
        assert_eq!(summary(&[]), "");
        assert_eq!(summary(std::slice::from_ref(&e)), "error: 1 error emitted");
        assert_eq!(
            summary(std::slice::from_ref(&w)),
            "warning: 1 warning emitted"
        );
        assert_eq!(
            summary(&[e.clone(), e, w.clone(), w]),
            "error: 2 errors, 2 warnings emitted"
        );
    }

    #[test]
    fn formats_by_name() {
        assert_eq!("sarif".parse::<Format>(), Ok(Format::Sarif));
        assert!("xml".parse::<Format>().is_err());
    }
}
