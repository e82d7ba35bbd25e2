//! `file:line:col: error[RB0003] message (help: ...)`, one line per diagnostic.

use std::fmt::Write;

use super::locate;
use crate::diagnostic::Diagnostic;
use crate::span::SourceMap;

pub(super) fn render(diags: &[Diagnostic], sources: &SourceMap) -> String {
    let mut out = String::new();
    for d in diags {
        if let Some(loc) = locate(sources, d.span) {
            let _ = write!(out, "{loc}: ");
        }
        let _ = write!(out, "{}[{}] {}", d.severity, d.code, one_line(&d.message));
        if let Some(help) = &d.help {
            let _ = write!(out, " (help: {})", one_line(help));
        }
        out.push('\n');
    }
    out
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
