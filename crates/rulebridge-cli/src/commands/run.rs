//! `rulebridge run`: flows over NDJSON records — a dry run or a send — printing one outcome
//! per input line, in input order, and a summary on stderr.
//!
//! Several flows run one after the other, in dependency order (a flow after those it declares
//! in `depends_on` and after those writing the objects its references point at), each over its
//! own input: `--input FLOW=FILE` (repeatable), or `--input DIR` where flow `F` reads
//! `DIR/F.ndjson` (or `DIR/F.jsonl`). Each outcome then carries its flow's name (`"flow"`).

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rulebridge::Engine;
use rulebridge::exec::pipeline::{NdjsonOutput, Output};
use rulebridge::exec::send::SendOptions;
use rulebridge::exec::{Outcome, RunOptions};
use rulebridge::state::Store;

use crate::common::{EXIT_PROBLEMS, build, progress_bar, sandbox_credentials};

/// What `run` was asked to do.
pub struct RunArgs {
    pub flows: Vec<String>,
    pub rules: PathBuf,
    pub input: Vec<String>,
    pub dry_run: bool,
    pub sandbox: bool,
    pub concurrency: usize,
    pub threads: Option<usize>,
    pub base_urls: Vec<String>,
    pub payloads: bool,
    pub batch: bool,
    pub record_timeout: u64,
    pub max_record_size: usize,
    /// The state store (`--state`); `None` for the default.
    pub state: Option<String>,
    pub no_state: bool,
    pub full: bool,
    /// The tenant the run is for (`""`: none).
    pub tenant: String,
}

/// The input each flow reads, in the order of `flows` (flow names): `-` or a file for a single
/// flow, else `FLOW=FILE` entries and at most one directory holding `FLOW.ndjson`/`.jsonl`.
pub fn inputs_for(flows: &[&str], specs: &[String]) -> anyhow::Result<Vec<String>> {
    let mut named: Vec<(&str, &str)> = Vec::new();
    let mut plain: Vec<&str> = Vec::new();
    for spec in specs {
        match spec.split_once('=') {
            Some((flow, file)) if flows.contains(&flow) => named.push((flow, file)),
            Some((flow, _)) if !Path::new(spec).exists() => anyhow::bail!(
                "--input {spec}: `{flow}` is not one of the flows being run ({})",
                flows.join(", ")
            ),
            _ => plain.push(spec),
        }
    }
    if flows.len() == 1 && named.is_empty() {
        let only = match plain.as_slice() {
            [] => "-",
            [one] => one,
            _ => anyhow::bail!("one flow reads one --input; got {}", plain.len()),
        };
        return Ok(vec![if Path::new(only).is_dir() {
            in_dir(only, flows[0])?
        } else {
            only.to_string()
        }]);
    }
    // `-` is the default of --input: with several flows it only counts if given alone.
    let dirs: Vec<&str> = plain.iter().copied().filter(|p| *p != "-").collect();
    let dir = match dirs.as_slice() {
        [] => None,
        [d] if Path::new(d).is_dir() => Some(*d),
        [f] => anyhow::bail!(
            "--input {f}: with several flows, give `FLOW=FILE` for each or a directory of `FLOW.ndjson` files"
        ),
        _ => anyhow::bail!("give at most one input directory"),
    };
    let mut out = Vec::with_capacity(flows.len());
    let mut missing = Vec::new();
    for flow in flows {
        let file = named
            .iter()
            .rev()
            .find(|(f, _)| f == flow)
            .map(|(_, file)| file.to_string());
        match (file, dir) {
            (Some(f), _) => out.push(f),
            (None, Some(d)) => out.push(in_dir(d, flow)?),
            (None, None) => missing.push(*flow),
        }
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "no input for {}: give `--input FLOW=FILE` or `--input DIR` with `FLOW.ndjson`",
            missing.join(", ")
        );
    }
    if out.iter().filter(|f| *f == "-").count() > 1 {
        anyhow::bail!("standard input (`-`) can feed one flow only");
    }
    Ok(out)
}

/// `DIR/FLOW.ndjson`, or `DIR/FLOW.jsonl`.
fn in_dir(dir: &str, flow: &str) -> anyhow::Result<String> {
    for ext in ["ndjson", "jsonl"] {
        let p = Path::new(dir).join(format!("{flow}.{ext}"));
        if p.is_file() {
            return Ok(p.to_string_lossy().into_owned());
        }
    }
    anyhow::bail!("{dir} holds no {flow}.ndjson or {flow}.jsonl")
}

/// Outcomes as NDJSON, each with the name of the flow it belongs to.
struct FlowOutput<W> {
    flow: String,
    out: W,
}

impl<W: io::Write + Send> Output for FlowOutput<W> {
    fn outcome(&mut self, outcome: &Outcome) -> io::Result<()> {
        let mut line = serde_json::Map::new();
        line.insert("flow".into(), serde_json::Value::String(self.flow.clone()));
        if let serde_json::Value::Object(m) = serde_json::to_value(outcome)? {
            line.extend(m);
        }
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")
    }
    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
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
    // The tenant's credentials, then (with --sandbox) the sandbox's: the first value given
    // for a variable wins. A dry run reads the store too (templates may need a value).
    let state_spec = args
        .state
        .clone()
        .unwrap_or_else(|| crate::commands::state::DEFAULT_STATE.to_string());
    let builder = crate::commands::creds::with_tenant(
        &rt,
        // The field cache describes the real system, not the fresh sandbox (prepared below).
        Engine::builder()
            .rules_dir(&args.rules)
            .field_cache(!args.sandbox),
        &args.rules,
        &state_spec,
        &args.tenant,
        None,
    )?;
    let mut builder = sandbox_credentials(builder, args.sandbox);
    if let Some(sb) = &sandbox {
        for (kit, _, _) in rulebridge_sandbox::KITS {
            if let Some(url) = sb.kit_base_url(kit) {
                builder = builder.base_url(*kit, url);
            }
        }
        for (kit, _, _) in rulebridge_sandbox::CONNECT {
            if let Some((authorize, token)) = sb.kit_connect_urls(kit) {
                builder = builder.connect_urls(*kit, authorize, token);
            }
        }
    }
    for (provider, url) in overrides {
        builder = builder.base_url(provider, url);
    }
    let engine = build(builder)?;
    if let Some(sb) = &sandbox {
        for flow in &args.flows {
            prepare_sandbox(&engine, sb, flow, &rt)?;
        }
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
    let names: Vec<&str> = args.flows.iter().map(String::as_str).collect();
    let order = engine.plan().run_order(&names)?;
    let ordered: Vec<&str> = order.iter().map(|f| f.name.as_str()).collect();
    // Inputs may name a flow as listed (a file path) or by its name.
    let listed: Vec<&str> = names
        .iter()
        .copied()
        .chain(ordered.iter().copied())
        .collect();
    let specs: Vec<String> = args
        .input
        .iter()
        .map(|spec| match spec.split_once('=') {
            Some((f, file)) if listed.contains(&f) => {
                let name = engine.plan().find_flow(f).map_or(f, |p| p.name.as_str());
                format!("{name}={file}")
            }
            _ => spec.clone(),
        })
        .collect();
    let inputs = inputs_for(&ordered, &specs)?;
    let several = order.len() > 1;
    if several {
        eprintln!("running {}", ordered.join(" → "));
    }
    let send = SendOptions {
        include_payload: args.payloads,
        batch: args.batch,
        ..SendOptions::default()
    };
    // A send keeps state unless told not to; the built-in sandbox starts empty each time, so
    // its runs keep theirs in a file of their own, removed at the end.
    let scratch = (args.sandbox && args.state.is_none()).then(|| {
        std::env::temp_dir().join(format!("rulebridge-sandbox-{}.db", std::process::id()))
    });
    let store = if args.dry_run || args.no_state {
        None
    } else {
        let spec = match (&args.state, &scratch) {
            (Some(s), _) => s.clone(),
            (None, Some(p)) => p.display().to_string(),
            (None, None) => crate::commands::state::DEFAULT_STATE.to_string(),
        };
        Some(rt.block_on(crate::commands::state::open(&spec))?)
    };
    let rules_hash = crate::commands::state::rules_hash(&args.rules);
    let mut failed = 0;
    for (flow, input) in ordered.iter().zip(&inputs) {
        let label = several.then(|| flow.to_string());
        let summary = match &store {
            None => {
                let pipeline = if args.dry_run {
                    engine.runner(flow)?.dry_run_pipeline(options.clone())
                } else {
                    engine.sender(flow, options.clone(), send.clone())?
                };
                let summary = run_pipeline(&rt, &pipeline, open_input(input)?, label.clone())?;
                failed += summary.failed;
                summary.to_string()
            }
            Some(store) => {
                let fingerprint = crate::commands::state::input_fingerprint(input);
                let start = rulebridge::state::RunStart {
                    tenant: args.tenant.clone(),
                    flow: flow.to_string(),
                    rules_hash: rules_hash.clone(),
                    input: fingerprint,
                };
                let run = rt.block_on(store.begin_run(&start))?;
                if run.resumed {
                    eprintln!(
                        "{flow}: resuming run {} after record {} (its process ended before the run did)",
                        run.id, run.checkpoint
                    );
                }
                let counters = crate::commands::state::send_recorded(
                    &rt,
                    &engine,
                    store.clone(),
                    flow,
                    run,
                    open_input(input)?,
                    &options,
                    &send,
                    args.full,
                    label.clone(),
                )?;
                let retried = crate::commands::state::retry_dead_letters(
                    &rt,
                    &engine,
                    store.clone(),
                    &args.tenant,
                    flow,
                    &rules_hash,
                    &options,
                    &send,
                    label.clone(),
                )?;
                failed += usize::try_from(retried.failed).unwrap_or(usize::MAX);
                failed += usize::try_from(counters.failed).unwrap_or(usize::MAX);
                let mut text = crate::commands::state::counters_text(&counters);
                if retried.total > 0 {
                    text.push_str(&format!(
                        "; dead letters retried: {}",
                        crate::commands::state::counters_text(&retried)
                    ));
                }
                text
            }
        };
        if several {
            eprintln!("{flow}: {summary}");
        } else {
            eprintln!("{summary}");
        }
    }
    if let Some(store) = &store {
        rt.block_on(store.db().close());
    }
    if let Some(p) = &scratch {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
        }
    }
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
    Ok(if failed > 0 { EXIT_PROBLEMS } else { 0 })
}

/// Opens a flow's input: a file, or `-` for standard input.
pub fn open_input(input: &str) -> anyhow::Result<Box<dyn BufRead + Send>> {
    Ok(if input == "-" {
        Box::new(BufReader::with_capacity(1 << 16, io::stdin()))
    } else {
        let file =
            std::fs::File::open(input).map_err(|e| anyhow::anyhow!("cannot read {input}: {e}"))?;
        Box::new(BufReader::with_capacity(1 << 20, file))
    })
}

/// Outcomes on standard output as NDJSON, each naming its flow when `label` is set.
pub fn stdout_output(label: Option<String>) -> Box<dyn Output> {
    // Buffered before the scrubber too: it then masks large chunks, not each small write of
    // the serializer.
    let stdout = io::BufWriter::with_capacity(
        1 << 20,
        rulebridge::secrets::ScrubWriter::new(io::BufWriter::with_capacity(1 << 16, io::stdout())),
    );
    match label {
        Some(flow) => Box::new(FlowOutput { flow, out: stdout }),
        None => Box::new(NdjsonOutput(stdout)),
    }
}

/// Runs a pipeline without state, outcomes on standard output, with a progress bar.
fn run_pipeline(
    rt: &tokio::runtime::Runtime,
    pipeline: &rulebridge::exec::Pipeline,
    input: Box<dyn BufRead + Send>,
    label: Option<String>,
) -> anyhow::Result<rulebridge::exec::Summary> {
    let (progress, bar) = progress();
    let summary = rt
        .block_on(pipeline.run(input, stdout_output(label), progress))?
        .0;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(summary)
}

/// A progress callback and the bar it moves (none when stderr is not a terminal).
pub fn progress() -> (
    impl FnMut(usize) + Send + 'static,
    Option<indicatif::ProgressBar>,
) {
    let bar = progress_bar();
    let ticker = bar.clone();
    let progress = move |n: usize| {
        if let Some(b) = &ticker {
            b.set_position(n as u64);
        }
    };
    (progress, bar)
}

/// A sandbox starts as a fresh account of each vendor, without the fields an integrator
/// created in theirs: the declared fields of the flow's target that the fake lacks are
/// created first (where the kit can create fields), as `fields --create-missing` would.
pub fn prepare_sandbox(
    engine: &Engine,
    sb: &rulebridge_sandbox::Sandbox,
    flow: &str,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let Some(flow) = engine.plan().find_flow(flow) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_flow_reads_a_file_or_stdin() {
        assert_eq!(
            inputs_for(&["a"], &specs(&["-"])).ok(),
            Some(vec!["-".to_string()])
        );
        assert_eq!(
            inputs_for(&["a"], &specs(&["x.ndjson"])).ok(),
            Some(vec!["x.ndjson".to_string()])
        );
        assert_eq!(
            inputs_for(&["a"], &specs(&["a=x.ndjson"])).ok(),
            Some(vec!["x.ndjson".to_string()])
        );
    }

    #[test]
    fn several_flows_need_one_input_each() {
        let got = inputs_for(&["a", "b"], &specs(&["-", "b=2.ndjson", "a=1.ndjson"]));
        assert_eq!(got.ok(), Some(specs(&["1.ndjson", "2.ndjson"])));
        let e = inputs_for(&["a", "b"], &specs(&["a=1.ndjson"])).err();
        assert!(e.is_some_and(|e| e.to_string().contains("no input for b")));
        let e = inputs_for(&["a", "b"], &specs(&["c=1.ndjson"])).err();
        assert!(e.is_some_and(|e| e.to_string().contains("not one of the flows")));
        let e = inputs_for(&["a", "b"], &specs(&["a=-", "b=-"])).err();
        assert!(e.is_some_and(|e| e.to_string().contains("one flow only")));
    }

    #[test]
    fn a_directory_holds_a_file_per_flow() {
        let dir = std::env::temp_dir().join(format!("rb-run-inputs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        std::fs::write(dir.join("a.ndjson"), "").ok();
        std::fs::write(dir.join("b.jsonl"), "").ok();
        let d = dir.to_string_lossy().into_owned();
        let got = inputs_for(&["a", "b"], &specs(&[&d, "b=other.ndjson"])).ok();
        assert_eq!(
            got,
            Some(vec![
                dir.join("a.ndjson").to_string_lossy().into_owned(),
                "other.ndjson".into()
            ])
        );
        let e = inputs_for(&["a", "c"], &specs(&[&d])).err();
        assert!(e.is_some_and(|e| e.to_string().contains("no c.ndjson")));
        std::fs::remove_dir_all(&dir).ok();
    }
}
