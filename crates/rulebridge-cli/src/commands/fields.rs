//! `rulebridge fields`: discover a provider object's fields and cache them for `lint`.

use std::io::{self, Write};
use std::path::PathBuf;

use rulebridge::connect::fields::FieldCache;

use crate::common::{PlanFormat, engine_with};

pub fn fields(
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
        Some(rt.block_on(rulebridge_sandbox::start(
            rulebridge_sandbox::SandboxConfig::default(),
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
