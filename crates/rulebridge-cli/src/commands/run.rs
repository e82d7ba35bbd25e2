//! `rulebridge run`: a flow over NDJSON records — a dry run or a send — printing one outcome
//! per input line, in input order, and a summary on stderr.

use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::time::Duration;

use rulebridge::Engine;
use rulebridge::exec::RunOptions;
use rulebridge::exec::pipeline::NdjsonOutput;
use rulebridge::exec::send::SendOptions;

use crate::common::{EXIT_PROBLEMS, build, progress_bar, sandbox_credentials};

/// What `run` was asked to do.
pub struct RunArgs {
    pub flow: String,
    pub rules: PathBuf,
    pub input: String,
    pub dry_run: bool,
    pub sandbox: bool,
    pub concurrency: usize,
    pub threads: Option<usize>,
    pub base_urls: Vec<String>,
    pub payloads: bool,
    pub batch: bool,
    pub record_timeout: u64,
    pub max_record_size: usize,
}

pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let mut overrides = Vec::new();
    for b in &args.base_urls {
        let Some((provider, url)) = b.split_once('=') else {
            anyhow::bail!("--base-url takes PROVIDER=URL, got `{b}`");
        };
        overrides.push((provider.to_string(), url.to_string()));
    }
    // One runtime for the sandbox and the run.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let sandbox = if args.sandbox && !args.dry_run {
        let sb = rt.block_on(rulebridge_sandbox::start(
            rulebridge_sandbox::SandboxConfig::default(),
        ))?;
        eprintln!("sandbox serving on {}", sb.url());
        Some(sb)
    } else {
        None
    };
    // The field cache describes the real system, not the fresh sandbox (prepared below).
    let mut builder = sandbox_credentials(
        Engine::builder()
            .rules_dir(&args.rules)
            .field_cache(!args.sandbox),
        args.sandbox,
    );
    if let Some(sb) = &sandbox {
        for (kit, _, _) in rulebridge_sandbox::KITS {
            if let Some(url) = sb.kit_base_url(kit) {
                builder = builder.base_url(*kit, url);
            }
        }
    }
    for (provider, url) in overrides {
        builder = builder.base_url(provider, url);
    }
    let engine = build(builder)?;
    if let Some(sb) = &sandbox {
        prepare_sandbox(&engine, sb, &args.flow, &rt)?;
    }

    let mut options = RunOptions {
        concurrency: args.concurrency.max(1),
        record_deadline: Some(Duration::from_secs(args.record_timeout.max(1))),
        max_record_bytes: args.max_record_size.max(1),
        ..RunOptions::default()
    };
    if let Some(t) = args.threads {
        options.threads = t.max(1);
    }
    let pipeline = if args.dry_run {
        engine.runner(&args.flow)?.dry_run_pipeline(options)
    } else {
        let send = SendOptions {
            include_payload: args.payloads,
            batch: args.batch,
            ..SendOptions::default()
        };
        engine.sender(&args.flow, options, send)?
    };

    let input: Box<dyn BufRead + Send> = if args.input == "-" {
        Box::new(BufReader::with_capacity(1 << 16, io::stdin()))
    } else {
        let file = std::fs::File::open(&args.input)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.input))?;
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let out = NdjsonOutput(io::BufWriter::with_capacity(1 << 20, io::stdout()));
    let bar = progress_bar();
    let ticker = bar.clone();
    let (summary, _) = rt.block_on(pipeline.run(input, out, move |n| {
        if let Some(b) = &ticker {
            b.set_position(n as u64);
        }
    }))?;
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

/// A sandbox starts as a fresh account of each vendor, without the fields an integrator
/// created in theirs: the declared fields of the flow's target that the fake lacks are
/// created first (where the kit can create fields), as `fields --create-missing` would.
fn prepare_sandbox(
    engine: &Engine,
    sb: &rulebridge_sandbox::Sandbox,
    flow: &str,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let Some(flow) = engine.plan().flow(flow) else {
        return Ok(());
    };
    let (provider, object) = (flow.provider.as_str(), flow.object.as_str());
    let can_create = engine
        .plan()
        .provider(provider)
        .and_then(|p| p.object(object))
        .is_some_and(|o| o.operation("create_field").is_some() && !o.fields().is_empty());
    let Some(url) = sb.kit_base_url(provider).filter(|_| can_create) else {
        return Ok(());
    };
    let connector = engine.http_connector(provider, Some(&url))?;
    let creation = rt.block_on(rulebridge::connect::fields::create_missing(
        &connector, object,
    ))?;
    if !creation.created.is_empty() {
        eprint!("sandbox: ");
    }
    crate::commands::fields::report_creation(provider, object, &creation);
    Ok(())
}
