//! `rulebridge lint`: every problem of a rule set, with its location.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use rulebridge::diagnostic::Severity;
use rulebridge::diagnostic::render::{self, Format};

use crate::common::{EXIT_PROBLEMS, LintFormat, check, default_paths};

pub fn lint(paths: Vec<PathBuf>, format: LintFormat, deny_warnings: bool) -> anyhow::Result<u8> {
    let paths = default_paths(paths);
    let (loaded, diags, _) = check(&paths)?;
    let color = io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let fmt = match format {
        LintFormat::Human => Format::Human,
        LintFormat::Concise => Format::Concise,
        LintFormat::Json => Format::Json,
        LintFormat::Sarif => Format::Sarif,
    };
    let mut out = crate::common::stdout();
    out.write_all(render::render(&diags, &loaded.rules.sources, fmt, color).as_bytes())?;
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    if matches!(format, LintFormat::Human | LintFormat::Concise) {
        if diags.is_empty() {
            let files = loaded.rules.sources.files().count();
            eprintln!("{files} file(s) checked, no problems");
        } else {
            eprintln!("{}", render::summary(&diags));
        }
    }
    Ok(if errors > 0 || (deny_warnings && warnings > 0) {
        EXIT_PROBLEMS
    } else {
        0
    })
}
