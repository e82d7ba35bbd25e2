//! The state store from the command line: sends that keep state (`run`), and `log`, `runs`,
//! `dlq` and `prune` over what the store holds.

use std::io::{self, BufRead, Write};
use std::path::Path;
use std::sync::Arc;

use rulebridge::Engine;
use rulebridge::exec::RunOptions;
use rulebridge::exec::send::SendOptions;
use rulebridge::state::{
    ChangeFilter, Counters, InputForm, Retention, Run, RunFilter, RunStart, SqlStore, Store,
};

use super::run::{progress, stdout_output};

/// Where state is kept unless `--state` or `RULEBRIDGE_STATE` says otherwise.
pub const DEFAULT_STATE: &str = ".rulebridge/state.db";

pub async fn open(spec: &str) -> anyhow::Result<Arc<SqlStore>> {
    Ok(Arc::new(SqlStore::open(spec).await?))
}

/// A hash of the rule files (paths and contents), so a run resumes only under the rules it
/// started with.
pub fn rules_hash(rules: &Path) -> String {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                // Caches written next to the rules are not rules.
                if p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                {
                    continue;
                }
                walk(&p, out);
            } else if p
                .extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "sql")
            {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    if rules.is_file() {
        files.push(rules.to_path_buf());
    } else {
        walk(rules, &mut files);
    }
    files.sort();
    let mut all = Vec::new();
    for f in files {
        all.extend_from_slice(f.to_string_lossy().as_bytes());
        all.push(0);
        all.extend(std::fs::read(&f).unwrap_or_default());
        all.push(0);
    }
    rulebridge::state::hash_bytes(&all)
}

/// What identifies an input that can be read again: its absolute path, size and modification
/// time. Standard input has none (it is never resumed).
pub fn input_fingerprint(input: &str) -> Option<String> {
    if input == "-" {
        return None;
    }
    let path = std::fs::canonicalize(input).ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Some(format!("{}|{}|{mtime}", path.display(), meta.len()))
}

pub fn counters_text(c: &Counters) -> String {
    let mut s = format!(
        "{} records: {} created, {} updated",
        c.total, c.created, c.updated
    );
    if c.unchanged > 0 {
        s.push_str(&format!(", {} unchanged", c.unchanged));
    }
    s.push_str(&format!(", {} skipped, {} failed", c.skipped, c.failed));
    s
}

/// Sends `input` through `flow` as run `run`, recording every outcome; returns the run's
/// counters (of the whole run, when it resumed one).
#[allow(clippy::too_many_arguments)]
pub fn send_recorded(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    store: Arc<SqlStore>,
    flow: &str,
    run: Run,
    input: Box<dyn BufRead + Send>,
    options: &RunOptions,
    send: &SendOptions,
    full: bool,
    label: Option<String>,
) -> anyhow::Result<Counters> {
    let run_id = run.id.clone();
    let (pipeline, recorder) = engine.recorded_sender(
        flow,
        options.clone(),
        send.clone(),
        store.clone(),
        run,
        full,
    )?;
    // A long request must not make the run look dead to another process.
    let beat = {
        let store = store.clone();
        let run_id = run_id.clone();
        rt.spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                if let Err(e) = store.heartbeat(&run_id).await {
                    tracing::warn!("state store: heartbeat failed: {e}");
                }
            }
        })
    };
    let recorder = recorder.with_input_key(input_key(rt, &store)?);
    let output = recorder.output(stdout_output(label), rt.handle().clone());
    let (progress, bar) = progress();
    let result = rt.block_on(pipeline.run(input, output, progress));
    beat.abort();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let (_, output) = result?;
    let counters = output.counters();
    rt.block_on(store.finish_run(&run_id, counters, output.checkpoint()))?;
    Ok(counters)
}

/// The master key, when one is set: dead letters of records with sensitive fields are
/// sealed under it, and opened with it to be retried or shown.
pub fn input_key(
    rt: &tokio::runtime::Runtime,
    store: &SqlStore,
) -> anyhow::Result<Option<rulebridge::secrets::sealed::MasterKey>> {
    let Some(spec) = rulebridge::state::KeySpec::from_env_if_set()? else {
        return Ok(None);
    };
    Ok(Some(rt.block_on(spec.key(store.db()))?))
}

/// Sends the flow's dead letters that this run did not already handle (a success clears
/// one, a failure re-queues it), as a run of their own. Encrypted inputs are left queued.
#[allow(clippy::too_many_arguments)]
pub fn retry_dead_letters(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    store: Arc<SqlStore>,
    tenant: &str,
    flow: &str,
    rules_hash: &str,
    options: &RunOptions,
    send: &SendOptions,
    label: Option<String>,
) -> anyhow::Result<Counters> {
    let latest = rt.block_on(store.runs(&RunFilter {
        tenant: tenant.to_string(),
        flow: Some(flow.to_string()),
        limit: Some(1),
    }))?;
    let just_ran = latest.first().map(|r| r.id.clone());
    let key = input_key(rt, &store)?;
    let mut lines = Vec::new();
    let (mut queued, mut kept) = (0usize, Vec::new());
    for d in rt.block_on(store.dead_letters(tenant, Some(flow)))? {
        if Some(&d.run_id) == just_ran.as_ref() {
            continue;
        }
        match d.open_input(key.as_ref()) {
            Ok(input) => {
                lines.extend_from_slice(&input);
                lines.push(b'\n');
                queued += 1;
            }
            Err(why) => kept.push((d.id, why)),
        }
    }
    if let Some((_, why)) = kept.first() {
        eprintln!(
            "{flow}: {} dead letter(s) left queued, not retried: {why}",
            kept.len()
        );
    }
    if queued == 0 {
        return Ok(Counters::default());
    }
    eprintln!("{flow}: retrying {queued} dead letter(s)");
    let start = RunStart {
        tenant: tenant.to_string(),
        flow: flow.to_string(),
        rules_hash: rules_hash.to_string(),
        input: None,
    };
    let run = rt.block_on(store.begin_run(&start))?;
    send_recorded(
        rt,
        engine,
        store,
        flow,
        run,
        Box::new(io::Cursor::new(lines)),
        options,
        send,
        false,
        label,
    )
}

/// Milliseconds since the epoch from `30s`, `15m`, `2h`, `7d` (that long ago) or an RFC 3339
/// time.
pub fn parse_since(text: &str) -> anyhow::Result<i64> {
    let ms = parse_age(text).ok();
    if let Some(age) = ms {
        return Ok(rulebridge::state::now_ms() - age);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            anyhow::anyhow!("`{text}` is neither an age (30s, 15m, 2h, 7d) nor an RFC 3339 time")
        })
}

/// Milliseconds in an age such as `90s`, `15m`, `2h`, `30d`.
pub fn parse_age(text: &str) -> anyhow::Result<i64> {
    let (n, unit) = text.split_at(text.trim_end_matches(char::is_alphabetic).len());
    let n: i64 = n
        .parse()
        .map_err(|_| anyhow::anyhow!("`{text}` is not an age such as 30s, 15m, 2h or 7d"))?;
    let per = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => anyhow::bail!("`{text}`: the unit is one of s, m, h, d"),
    };
    Ok(n.saturating_mul(per))
}

pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

fn json_line(out: &mut impl Write, value: &impl serde::Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

/// `rulebridge log`: the changelog.
pub fn log(state: &str, filter: ChangeFilter, json: bool) -> anyhow::Result<u8> {
    let rt = runtime()?;
    let store = rt.block_on(open(state))?;
    let changes = rt.block_on(store.changes(&filter))?;
    let mut out = io::BufWriter::new(crate::common::stdout());
    for c in &changes {
        if json {
            json_line(&mut out, c)?;
        } else {
            writeln!(
                out,
                "{}  {}  {}#{}  {:<9}  {}  {}{}",
                time(c.at),
                c.flow,
                c.run_id,
                c.index,
                c.action,
                c.record_key.as_deref().unwrap_or("-"),
                c.target_id
                    .as_deref()
                    .map_or(String::new(), |t| format!("→ {t}")),
                c.error
                    .as_deref()
                    .map_or(String::new(), |e| format!("  {e}")),
            )?;
        }
    }
    out.flush()?;
    Ok(0)
}

/// `rulebridge runs`: runs, newest first.
pub fn runs(state: &str, filter: RunFilter, json: bool) -> anyhow::Result<u8> {
    let rt = runtime()?;
    let store = rt.block_on(open(state))?;
    let runs = rt.block_on(store.runs(&filter))?;
    let mut out = io::BufWriter::new(crate::common::stdout());
    for r in &runs {
        if json {
            json_line(&mut out, r)?;
        } else {
            writeln!(
                out,
                "{}  {}  {:<11}  {}  started {}{}",
                r.id,
                r.flow,
                r.status.as_str(),
                counters_text(&r.counters),
                time(r.started_at),
                r.ended_at
                    .map_or(String::new(), |t| format!(", ended {}", time(t))),
            )?;
        }
    }
    out.flush()?;
    Ok(0)
}

/// What `dlq` does.
pub enum DlqAction {
    List {
        flow: Option<String>,
        json: bool,
    },
    Show {
        flow: String,
        id: String,
    },
    Drop {
        flow: String,
        id: String,
    },
    Retry {
        flow: String,
        rules: std::path::PathBuf,
        base_urls: Vec<String>,
    },
}

/// `rulebridge dlq`: the dead letters.
pub fn dlq(state: &str, action: DlqAction) -> anyhow::Result<u8> {
    let rt = runtime()?;
    let store = rt.block_on(open(state))?;
    let mut out = io::BufWriter::new(crate::common::stdout());
    match action {
        DlqAction::List { flow, json } => {
            for d in rt.block_on(store.dead_letters("", flow.as_deref()))? {
                if json {
                    json_line(&mut out, &d)?;
                } else {
                    writeln!(
                        out,
                        "{}  {}  {}  attempts {}  {}: {}",
                        d.id,
                        d.flow,
                        d.record_key.as_deref().unwrap_or("-"),
                        d.attempts,
                        d.kind,
                        d.reason
                    )?;
                }
            }
        }
        DlqAction::Show { flow, id } => {
            let d = rt
                .block_on(store.dead_letters("", Some(&flow)))?
                .into_iter()
                .find(|d| d.id == id)
                .ok_or_else(|| anyhow::anyhow!("no dead letter {id} in flow {flow}"))?;
            let mut v = serde_json::to_value(&d)?;
            if let serde_json::Value::Object(m) = &mut v {
                let opened = match d.input_form {
                    InputForm::Sealed => d.open_input(input_key(&rt, &store)?.as_ref()),
                    _ => Ok(d.input.clone()),
                };
                let input = match opened {
                    Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
                    }),
                    Err(why) => serde_json::Value::String(format!("(not shown: {why})")),
                };
                m.insert("input".into(), input);
            }
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        DlqAction::Drop { flow, id } => {
            if !rt.block_on(store.drop_dead_letter("", &flow, &id))? {
                anyhow::bail!("no dead letter {id} in flow {flow}");
            }
            writeln!(out, "dropped {id}")?;
        }
        DlqAction::Retry {
            flow,
            rules,
            base_urls,
        } => {
            drop(out);
            let mut builder = Engine::builder().rules_dir(&rules);
            for b in &base_urls {
                let Some((provider, url)) = b.split_once('=') else {
                    anyhow::bail!("--base-url takes PROVIDER=URL, got `{b}`");
                };
                builder = builder.base_url(provider, url);
            }
            let engine = crate::common::build(builder)?;
            let hash = rules_hash(&rules);
            let counters = retry_dead_letters(
                &rt,
                &engine,
                store.clone(),
                "",
                &flow,
                &hash,
                &RunOptions::default(),
                &SendOptions::default(),
                None,
            )?;
            eprintln!("{}", counters_text(&counters));
            return Ok(if counters.failed > 0 {
                crate::common::EXIT_PROBLEMS
            } else {
                0
            });
        }
    }
    out.flush()?;
    Ok(0)
}

/// `rulebridge prune`: drops changelog rows and done ledger entries older than the ages given.
pub fn prune(state: &str, retention: Retention) -> anyhow::Result<u8> {
    let rt = runtime()?;
    let store = rt.block_on(open(state))?;
    let p = rt.block_on(store.prune(&retention))?;
    writeln!(
        crate::common::stdout(),
        "pruned {} changelog rows, {} ledger entries, {} runs",
        p.changelog,
        p.ledger,
        p.runs
    )?;
    Ok(0)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_times() {
        assert_eq!(parse_age("90s").unwrap(), 90_000);
        assert_eq!(parse_age("2h").unwrap(), 7_200_000);
        assert_eq!(parse_age("7d").unwrap(), 604_800_000);
        assert!(parse_age("7w").is_err());
        assert!(parse_age("soon").is_err());
        assert_eq!(
            parse_since("2026-01-01T00:00:00Z").unwrap(),
            1_767_225_600_000
        );
        assert!(parse_since("yesterday").is_err());
    }
}
