//! `rulebridge test`: the test cases written next to the rules.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use rulebridge::diagnostic::render::{self, Format};
use rulebridge::suite;

use crate::common::{EXIT_PROBLEMS, check, default_paths};

pub fn test(paths: Vec<PathBuf>, update: bool, filter: Option<String>) -> anyhow::Result<u8> {
    let paths = default_paths(paths);
    let (loaded, diags, plan) = check(&paths)?;
    let Some(plan) = plan else {
        eprint!(
            "{}",
            render::render(
                &diags,
                &loaded.rules.sources,
                Format::Human,
                io::stderr().is_terminal()
            )
        );
        eprintln!("{}", render::summary(&diags));
        return Ok(EXIT_PROBLEMS);
    };
    let report = suite::run(&plan, filter.as_deref());
    let mut out = crate::common::stdout();
    for case in &report.cases {
        if case.passed {
            writeln!(out, "ok      {}", case.name)?;
        } else {
            writeln!(out, "FAILED  {} ({})", case.name, case.at)?;
            for f in &case.failures {
                writeln!(out, "          {f}")?;
            }
        }
    }
    writeln!(
        out,
        "{} passed, {} failed",
        report.passed(),
        report.failed()
    )?;
    if update && report.failed() > 0 {
        let files = suite::update(&plan, &report)?;
        eprintln!("updated expectations in {files} file(s)");
        return Ok(0);
    }
    Ok(if report.failed() > 0 {
        EXIT_PROBLEMS
    } else {
        0
    })
}
