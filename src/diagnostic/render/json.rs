//! A JSON array of `{file, line, column, end_line, end_column, severity, code, message, help?}`.

use serde::Serialize;

use super::locate;
use crate::diagnostic::{Code, Diagnostic, Severity};
use crate::span::SourceMap;

/// One diagnostic as JSON; field order is the output's key order. Position fields are null
/// for a diagnostic that belongs to no file.
#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    file: Option<String>,
    line: Option<usize>,
    column: Option<usize>,
    end_line: Option<usize>,
    end_column: Option<usize>,
    severity: Severity,
    code: Code,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<&'a str>,
}

pub(super) fn render(diags: &[Diagnostic], sources: &SourceMap) -> String {
    let items: Vec<JsonDiagnostic<'_>> = diags
        .iter()
        .map(|d| {
            let loc = locate(sources, d.span);
            JsonDiagnostic {
                file: loc.as_ref().map(|l| l.file.clone()),
                line: loc.as_ref().map(|l| l.line),
                column: loc.as_ref().map(|l| l.column),
                end_line: loc.as_ref().map(|l| l.end_line),
                end_column: loc.as_ref().map(|l| l.end_column),
                severity: d.severity,
                code: d.code,
                message: &d.message,
                help: d.help.as_deref(),
            }
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_string());
    out.push('\n');
    out
}
