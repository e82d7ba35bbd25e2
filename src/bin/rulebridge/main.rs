//! The `rulebridge` command line: a thin layer over the library.

use std::io::{self, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use rulebridge::diagnostic::render::{self, Format};
use rulebridge::diagnostic::{self, Diagnostic, Severity};
use rulebridge::plan::PlanView;
use rulebridge::{Engine, Error, compile, suite, syntax};

/// Exit codes: 0 success, 1 problems found (lint errors, failed tests, failed records), 2 could
/// not run.
const EXIT_PROBLEMS: u8 = 1;
const EXIT_CANNOT_RUN: u8 = 2;

#[derive(Parser)]
#[command(
    name = "rulebridge",
    version,
    about = "Check, test and run rule files that move records between business systems"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check rule files and report every problem with its location.
    Lint {
        /// Rule files or directories (default: ./rules).
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = LintFormat::Human)]
        format: LintFormat,
        /// Treat warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Run the test cases written next to the rules.
    Test {
        /// Rule files or directories (default: ./rules).
        paths: Vec<PathBuf>,
        /// Write the actual results into failing expectations.
        #[arg(long)]
        update: bool,
        /// Only run cases whose `subject/case` name contains this text.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Show the compiled plan of a flow.
    Plan {
        /// Flow name or path of the flow's file.
        flow: String,
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
    /// Run a flow over NDJSON records; prints one outcome per record, in input order.
    Run {
        /// Flow name or path of the flow's file.
        flow: String,
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// NDJSON input file, or `-` for standard input.
        #[arg(long, default_value = "-")]
        input: String,
        /// Evaluate and print payloads without sending anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the builtin functions (or print their reference as Markdown).
    Functions {
        #[arg(long)]
        markdown: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LintFormat {
    Human,
    Concise,
    Json,
    Sarif,
}

#[derive(Clone, Copy, ValueEnum)]
enum PlanFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("RULEBRIDGE_LOG"))
        .with_writer(io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lint {
            paths,
            format,
            deny_warnings,
        } => lint(paths, format, deny_warnings),
        Command::Test {
            paths,
            update,
            filter,
        } => test(paths, update, filter),
        Command::Plan {
            flow,
            rules,
            format,
        } => plan(&flow, rules, format),
        Command::Run {
            flow,
            rules,
            input,
            dry_run,
        } => run(&flow, rules, &input, dry_run),
        Command::Functions { markdown } => functions(markdown),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_CANNOT_RUN)
        }
    }
}

fn default_paths(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        paths
    }
}

/// Loads and compiles; returns every diagnostic and the plan if there were no errors.
fn check(
    paths: &[PathBuf],
) -> anyhow::Result<(
    syntax::Loaded,
    Vec<Diagnostic>,
    Option<rulebridge::plan::Plan>,
)> {
    let loaded = syntax::load_paths(paths)?;
    let registry = rulebridge::Registry::builtin();
    let compiled = compile::compile_loaded(&loaded, &registry);
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

fn lint(paths: Vec<PathBuf>, format: LintFormat, deny_warnings: bool) -> anyhow::Result<u8> {
    let paths = default_paths(paths);
    let (loaded, diags, _) = check(&paths)?;
    let color = io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let fmt = match format {
        LintFormat::Human => Format::Human,
        LintFormat::Concise => Format::Concise,
        LintFormat::Json => Format::Json,
        LintFormat::Sarif => Format::Sarif,
    };
    let mut out = io::stdout().lock();
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

fn test(paths: Vec<PathBuf>, update: bool, filter: Option<String>) -> anyhow::Result<u8> {
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
    let mut out = io::stdout().lock();
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

fn engine(rules: PathBuf) -> anyhow::Result<Engine> {
    match Engine::builder().rules_dir(rules).build() {
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

fn plan(flow: &str, rules: PathBuf, format: PlanFormat) -> anyhow::Result<u8> {
    let engine = engine(rules)?;
    let Some(f) = engine.plan().find_flow(flow) else {
        anyhow::bail!(
            "{}",
            Error::UnknownFlow {
                name: flow.to_string(),
                suggestion: diagnostic::suggest(
                    flow,
                    engine.plan().flows().map(|f| f.name.as_str())
                ),
            }
        );
    };
    let view = PlanView::of(f);
    let mut out = io::stdout().lock();
    match format {
        PlanFormat::Text => out.write_all(view.to_text().as_bytes())?,
        PlanFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&view)?)?,
    }
    Ok(0)
}

fn run(flow: &str, rules: PathBuf, input: &str, dry_run: bool) -> anyhow::Result<u8> {
    if !dry_run {
        anyhow::bail!(
            "sending records needs the HTTP connectors, which this build does not include; use --dry-run to see the payloads"
        );
    }
    let engine = engine(rules)?;
    let runner = engine.runner(flow)?;
    let reader: Box<dyn io::BufRead> = if input == "-" {
        Box::new(io::stdin().lock())
    } else {
        let file =
            std::fs::File::open(input).map_err(|e| anyhow::anyhow!("cannot read {input}: {e}"))?;
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let bar = if io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} records {per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        Some(bar)
    } else {
        None
    };
    let out = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
    let summary = runner.dry_run(reader, out, |n| {
        if let Some(b) = &bar {
            b.set_position(n as u64);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    eprintln!("{summary}");
    Ok(if summary.failed > 0 { EXIT_PROBLEMS } else { 0 })
}

fn functions(markdown: bool) -> anyhow::Result<u8> {
    let registry = rulebridge::Registry::builtin();
    let mut out = io::stdout().lock();
    if markdown {
        out.write_all(rulebridge::functions::docs::markdown(&registry).as_bytes())?;
    } else {
        for f in registry.iter() {
            let sig = f.signature();
            let params: Vec<String> = sig
                .params
                .iter()
                .map(|p| format!("{}{}: {}", p.name, if p.optional { "?" } else { "" }, p.ty))
                .collect();
            writeln!(
                out,
                "{}({}) -> {}",
                f.name(),
                params.join(", "),
                sig.returns
            )?;
        }
    }
    Ok(0)
}
