//! The `rulebridge` command line: a thin layer over the library.

use std::io::{self, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use rulebridge::connect::fields::FieldCache;
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
        /// Run against the built-in sandbox (local fakes of the providers' APIs, with their
        /// credentials): no account or key needed.
        #[arg(long)]
        sandbox: bool,
        /// Records (or batches) in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Send to another base URL: `PROVIDER=URL` (repeatable). The environment variable
        /// `RULEBRIDGE_BASE_URL_<PROVIDER>` does the same.
        #[arg(long = "base-url", value_name = "PROVIDER=URL")]
        base_urls: Vec<String>,
        /// Include each record's (redacted) payload in its outcome.
        #[arg(long)]
        payloads: bool,
        /// Send records one by one even where the target has a batch upsert.
        #[arg(long)]
        no_batch: bool,
        /// Seconds allowed per record, retries included.
        #[arg(long, default_value_t = 120)]
        record_timeout: u64,
    },
    /// Fetch a provider object's fields, normalize them and cache them next to the rules, where
    /// `lint` uses them to check mappings.
    Fields {
        provider: String,
        object: String,
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// Ask the built-in sandbox instead of the real system.
        #[arg(long)]
        sandbox: bool,
        /// Send to another base URL.
        #[arg(long = "base-url")]
        base_url: Option<String>,
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
    /// List the builtin functions (or print their reference as Markdown).
    Functions {
        #[arg(long)]
        markdown: bool,
    },
    /// Serve local fakes of the vendor APIs (HubSpot, Salesforce, Chatwoot, Jamf, ...) on
    /// 127.0.0.1 until Ctrl-C.
    Sandbox {
        /// Port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Fraction of requests answered 500/502/503.
        #[arg(long, default_value_t = 0.0)]
        error_rate: f64,
        /// Latency added to every response, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Up to this much more latency, uniformly, in milliseconds.
        #[arg(long, default_value_t = 0)]
        jitter_ms: u64,
        /// Fraction of requests whose connection is closed without a response.
        #[arg(long, default_value_t = 0.0)]
        drop_rate: f64,
        /// Fraction of requests processed (records written) whose connection is then closed
        /// without the response.
        #[arg(long, default_value_t = 0.0)]
        drop_after_rate: f64,
        /// Multiplies every rate limit (0.1: a 429 storm).
        #[arg(long, default_value_t = 1.0)]
        rate_limit_factor: f64,
        /// Seed of the fault decisions, ids and tokens.
        #[arg(long, default_value_t = 0)]
        seed: u64,
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
            sandbox,
            concurrency,
            base_urls,
            payloads,
            no_batch,
            record_timeout,
        } => {
            if dry_run {
                run(&flow, rules, &input, sandbox)
            } else {
                let send = SendArgs {
                    sandbox,
                    concurrency,
                    base_urls,
                    payloads,
                    batch: !no_batch,
                    record_timeout,
                };
                send_records(&flow, rules, &input, send)
            }
        }
        Command::Fields {
            provider,
            object,
            rules,
            sandbox,
            base_url,
            format,
        } => fields(&provider, &object, rules, sandbox, base_url, format),
        Command::Functions { markdown } => functions(markdown),
        Command::Sandbox {
            port,
            error_rate,
            latency_ms,
            jitter_ms,
            drop_rate,
            drop_after_rate,
            rate_limit_factor,
            seed,
        } => sandbox(
            port,
            rulebridge::sandbox::Faults {
                error_rate,
                latency_ms,
                jitter_ms,
                drop_rate,
                drop_after_rate,
                rate_limit_factor,
                ..Default::default()
            },
            seed,
        ),
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
    engine_with(rules, false)
}

/// The engine over `rules`; with `sandbox`, the sandbox's credentials stand in for the
/// environment's.
fn engine_with(rules: PathBuf, sandbox: bool) -> anyhow::Result<Engine> {
    let mut builder = Engine::builder().rules_dir(rules);
    if sandbox {
        for (name, value) in rulebridge::sandbox::CREDENTIALS {
            builder = builder.credential(*name, *value);
        }
    }
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
    let view = PlanView::of(f).with_provider(engine.plan().provider(&f.provider).map(|p| &**p));
    let mut out = io::stdout().lock();
    match format {
        PlanFormat::Text => out.write_all(view.to_text().as_bytes())?,
        PlanFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&view)?)?,
    }
    Ok(0)
}

struct SendArgs {
    sandbox: bool,
    concurrency: usize,
    base_urls: Vec<String>,
    payloads: bool,
    batch: bool,
    record_timeout: u64,
}

fn progress_bar() -> Option<indicatif::ProgressBar> {
    io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} records {per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    })
}

/// Sends the records of a flow to its target system.
fn send_records(flow: &str, rules: PathBuf, input: &str, args: SendArgs) -> anyhow::Result<u8> {
    let mut overrides = std::collections::BTreeMap::new();
    for b in &args.base_urls {
        let Some((provider, url)) = b.split_once('=') else {
            anyhow::bail!("--base-url takes PROVIDER=URL, got `{b}`");
        };
        overrides.insert(provider.to_string(), url.to_string());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let sandbox = if args.sandbox {
        let sb = rt.block_on(rulebridge::sandbox::start(
            rulebridge::sandbox::SandboxConfig::default(),
        ))?;
        eprintln!("sandbox serving on {}", sb.url());
        Some(sb)
    } else {
        None
    };
    let engine = engine_with(rules, args.sandbox)?;
    let runner = engine.runner(flow)?;
    let provider = runner.flow().provider.clone();
    let base_url =
        match (overrides.get(&provider), &sandbox) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(sb)) => Some(sb.kit_base_url(&provider).ok_or_else(|| {
                anyhow::anyhow!("the sandbox has no fake of provider `{provider}`")
            })?),
            (None, None) => None,
        };
    let connector = engine.connector(&provider, base_url.as_deref())?;
    let options = rulebridge::exec::send::SendOptions {
        concurrency: args.concurrency.max(1),
        record_deadline: Some(std::time::Duration::from_secs(args.record_timeout.max(1))),
        include_payload: args.payloads,
        batch: args.batch,
    };
    let sender = runner.sender(connector, options);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let bar = progress_bar();
    let summary = rt.block_on(async {
        let out = io::BufWriter::new(io::stdout().lock());
        let progress = |n: usize| {
            if let Some(b) = &bar {
                b.set_position(n as u64);
            }
        };
        if input == "-" {
            sender
                .run(tokio::io::BufReader::new(tokio::io::stdin()), out, progress)
                .await
        } else {
            let file = tokio::fs::File::open(input)
                .await
                .map_err(|e| io::Error::other(format!("cannot read {input}: {e}")))?;
            sender
                .run(tokio::io::BufReader::new(file), out, progress)
                .await
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    eprintln!("{summary}");
    if let Some(sb) = sandbox {
        let state = sb.state();
        for (name, p) in state.providers.iter().filter(|(_, p)| p.requests > 0) {
            let held: Vec<String> = p
                .records
                .iter()
                .map(|(c, r)| format!("{} {c}", r.len()))
                .collect();
            eprintln!(
                "sandbox {name}: {} requests ({} rate limited), holds {}",
                p.requests,
                p.rate_limited,
                held.join(", ")
            );
        }
        rt.block_on(sb.shutdown());
    }
    Ok(if summary.failed > 0 { EXIT_PROBLEMS } else { 0 })
}

fn run(flow: &str, rules: PathBuf, input: &str, sandbox: bool) -> anyhow::Result<u8> {
    let engine = engine_with(rules, sandbox)?;
    let runner = engine.runner(flow)?;
    let reader: Box<dyn io::BufRead> = if input == "-" {
        Box::new(io::stdin().lock())
    } else {
        let file =
            std::fs::File::open(input).map_err(|e| anyhow::anyhow!("cannot read {input}: {e}"))?;
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let bar = progress_bar();
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

fn fields(
    provider: &str,
    object: &str,
    rules: PathBuf,
    sandbox: bool,
    base_url: Option<String>,
    format: PlanFormat,
) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let sb = if sandbox {
        Some(rt.block_on(rulebridge::sandbox::start(
            rulebridge::sandbox::SandboxConfig::default(),
        ))?)
    } else {
        None
    };
    let cache = FieldCache::for_rules(&rules);
    let engine = engine_with(rules, sandbox)?;
    let base_url = base_url.or_else(|| sb.as_ref().and_then(|sb| sb.kit_base_url(provider)));
    let connector = engine.http_connector(provider, base_url.as_deref())?;
    let found = rt.block_on(rulebridge::connect::fields::discover(&connector, object))?;
    let path = cache.store(provider, object, &found)?;
    let mut out = io::stdout().lock();
    match format {
        PlanFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&found)?)?,
        PlanFormat::Text => {
            for f in &found {
                let options = match &f.ty {
                    rulebridge::connect::fields::FieldType::Enum { options } => {
                        format!(" [{}]", options.join(", "))
                    }
                    _ => String::new(),
                };
                let flags = [(f.required, " required"), (f.read_only, " read-only")]
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, s)| *s)
                    .collect::<String>();
                writeln!(out, "{:<28} {}{options}{flags}", f.name, f.ty.name())?;
            }
        }
    }
    eprintln!(
        "{} fields of {provider}.{object} cached in {}",
        found.len(),
        path.display()
    );
    if let Some(sb) = sb {
        rt.block_on(sb.shutdown());
    }
    Ok(0)
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

fn sandbox(port: u16, faults: rulebridge::sandbox::Faults, seed: u64) -> anyhow::Result<u8> {
    use rulebridge::sandbox::{self, SandboxConfig};
    for (name, rate) in [
        ("--error-rate", faults.error_rate),
        ("--drop-rate", faults.drop_rate),
        ("--drop-after-rate", faults.drop_after_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            anyhow::bail!("{name} must be between 0 and 1 (got {rate})");
        }
    }
    if !(faults.rate_limit_factor.is_finite() && faults.rate_limit_factor > 0.0) {
        anyhow::bail!("--rate-limit-factor must be a positive number");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let sb = sandbox::start(SandboxConfig {
            port,
            seed,
            faults,
            ..SandboxConfig::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{port}: {e}"))?;
        {
            let mut out = io::stdout().lock();
            writeln!(out, "sandbox listening on {}", sb.url())?;
            for p in sandbox::PROVIDERS {
                writeln!(out, "  {p:<15} {}", sb.base_url(p))?;
            }
            writeln!(out, "  {:<15} {}/_sandbox", "control", sb.url())?;
            writeln!(out, "provider kits (base_url, token_url):")?;
            for (kit, _, _) in sandbox::KITS {
                let base = sb.kit_base_url(kit).unwrap_or_default();
                match sb.kit_token_url(kit) {
                    Some(t) => writeln!(out, "  {kit:<15} {base}  {t}")?,
                    None => writeln!(out, "  {kit:<15} {base}")?,
                }
            }
            writeln!(out, "credentials:")?;
            for (k, v) in sandbox::CREDENTIALS {
                writeln!(out, "  {k}={v}")?;
            }
            out.flush()?;
        }
        eprintln!("press Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
        sb.shutdown().await;
        Ok(0)
    })
}
