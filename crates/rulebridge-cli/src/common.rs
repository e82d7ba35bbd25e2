//! What the commands share: exit codes, formats, loading the rules, the progress bar.

use std::io::{self, IsTerminal};
use std::path::PathBuf;

use clap::ValueEnum;

use rulebridge::connect::fields::FieldCache;
use rulebridge::diagnostic::render;
use rulebridge::diagnostic::{self, Diagnostic};
use rulebridge::{Engine, EngineBuilder, Error, compile, syntax};

/// Exit codes: 0 success, 1 problems found (lint errors, failed tests, failed records), 2 could
/// not run.
pub const EXIT_PROBLEMS: u8 = 1;
pub const EXIT_CANNOT_RUN: u8 = 2;

#[derive(Clone, Copy, ValueEnum)]
pub enum LintFormat {
    Human,
    Concise,
    Json,
    Sarif,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
}

pub fn default_paths(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        paths
    }
}

/// Loads and compiles; returns every diagnostic and the plan if there were no errors.
pub fn check(
    paths: &[PathBuf],
) -> anyhow::Result<(
    syntax::Loaded,
    Vec<Diagnostic>,
    Option<rulebridge::plan::Plan>,
)> {
    let loaded = syntax::load_paths(paths)?;
    let registry = rulebridge::Registry::builtin();
    // Objects without declared fields are checked against the discovered-field cache.
    let cache = paths
        .first()
        .map(|p| FieldCache::for_rules(p))
        .unwrap_or_default();
    let compiled = compile::compile_loaded_with_fields(&loaded, &registry, &cache);
    let mut diags = loaded.diagnostics.clone();
    diags.extend(compiled.diagnostics);
    diagnostic::sort(&mut diags);
    let plan = if diags.iter().any(|d| d.is_error()) {
        None
    } else {
        compiled.plan
    };
    Ok((loaded, diags, plan))
}

pub fn engine(rules: PathBuf) -> anyhow::Result<Engine> {
    engine_with(rules, false)
}

/// The engine over `rules`; with `sandbox`, the sandbox's credentials stand in for the
/// environment's.
pub fn engine_with(rules: PathBuf, sandbox: bool) -> anyhow::Result<Engine> {
    build(sandbox_credentials(
        Engine::builder().rules_dir(rules),
        sandbox,
    ))
}

/// The engine for refreshing the field cache: checked without the cache it replaces (a
/// mapped field the cache lacks is what `--create-missing` is for).
pub fn engine_without_cache(rules: PathBuf, sandbox: bool) -> anyhow::Result<Engine> {
    build(sandbox_credentials(
        Engine::builder().rules_dir(rules).field_cache(false),
        sandbox,
    ))
}

/// With `sandbox`, the sandbox's credentials stand in for the environment's.
pub fn sandbox_credentials(mut builder: EngineBuilder, sandbox: bool) -> EngineBuilder {
    if sandbox {
        for (name, value) in rulebridge_sandbox::CREDENTIALS {
            builder = builder.credential(*name, *value);
        }
    }
    builder
}

/// Builds the engine; rule problems are reported as a lint summary.
pub fn build(builder: EngineBuilder) -> anyhow::Result<Engine> {
    match builder.build() {
        Ok(e) => Ok(e),
        Err(Error::Invalid {
            rendered,
            diagnostics,
        }) => {
            anyhow::bail!(
                "the rules have problems ({}); run `rulebridge lint`:\n{rendered}",
                render::summary(&diagnostics)
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// Standard output, scrubbed of secrets (text is written line by line).
pub fn stdout() -> rulebridge::secrets::ScrubWriter<io::StdoutLock<'static>> {
    rulebridge::secrets::ScrubWriter::new(io::stdout().lock())
}

/// Standard error, scrubbed of secrets.
pub fn stderr() -> rulebridge::secrets::ScrubWriter<io::Stderr> {
    rulebridge::secrets::ScrubWriter::new(io::stderr())
}

pub fn progress_bar() -> Option<indicatif::ProgressBar> {
    io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} records {per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    })
}
