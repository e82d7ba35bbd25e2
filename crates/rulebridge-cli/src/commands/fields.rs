//! `rulebridge fields`: discover a provider object's fields and cache them for `lint`; with
//! `--create-missing`, first create the declared fields the system lacks.

use std::io::Write;
use std::path::PathBuf;

use rulebridge::connect::fields::{Creation, FieldCache, FieldInfo};

use crate::common::{EXIT_PROBLEMS, PlanFormat, engine_without_cache};

/// What `fields` was asked to do.
pub struct FieldsArgs {
    pub provider: String,
    pub object: String,
    pub rules: PathBuf,
    pub sandbox: bool,
    pub base_url: Option<String>,
    pub create_missing: bool,
    pub format: PlanFormat,
}

pub fn fields(args: FieldsArgs) -> anyhow::Result<u8> {
    let (provider, object) = (args.provider.as_str(), args.object.as_str());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let sb = if args.sandbox {
        Some(rt.block_on(rulebridge_sandbox::start(
            rulebridge_sandbox::SandboxConfig::default(),
        ))?)
    } else {
        None
    };
    let cache = FieldCache::for_rules(&args.rules);
    let engine = engine_without_cache(args.rules, args.sandbox)?;
    // A SQL provider's fields are its table's columns, read from the database (after its
    // migrations).
    if engine
        .plan()
        .provider(provider)
        .is_some_and(|p| p.sql().is_some())
    {
        let connector = engine.sql_connector(provider)?;
        let table = rt.block_on(connector.describe(object))?;
        rt.block_on(connector.close());
        let found = table.fields();
        let path = cache.store(provider, object, &found)?;
        list(&found, args.format)?;
        eprintln!(
            "{} columns of {provider}.{object} ({}) cached in {}",
            found.len(),
            connector.location(),
            path.display()
        );
        return Ok(0);
    }
    let base_url = args
        .base_url
        .or_else(|| sb.as_ref().and_then(|sb| sb.kit_base_url(provider)));
    let connector = engine.http_connector(provider, base_url.as_deref())?;
    let mut code = 0;
    let found = if args.create_missing {
        let creation = rt.block_on(rulebridge::connect::fields::create_missing(
            &connector, object,
        ))?;
        report_creation(provider, object, &creation);
        if !creation.failed.is_empty() {
            code = EXIT_PROBLEMS;
        }
        creation.fields
    } else {
        rt.block_on(rulebridge::connect::fields::discover(&connector, object))?
    };
    let path = cache.store(provider, object, &found)?;
    list(&found, args.format)?;
    eprintln!(
        "{} fields of {provider}.{object} cached in {}",
        found.len(),
        path.display()
    );
    if let Some(sb) = sb {
        rt.block_on(sb.shutdown());
    }
    Ok(code)
}

fn list(found: &[FieldInfo], format: PlanFormat) -> anyhow::Result<()> {
    let mut out = crate::common::stdout();
    match format {
        PlanFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(found)?)?,
        PlanFormat::Text => {
            for f in found {
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
    Ok(())
}

/// Says on stderr what creating the missing fields did.
pub fn report_creation(provider: &str, object: &str, c: &Creation) {
    let names = |v: &[String]| v.join(", ");
    if c.created.is_empty() && c.already_there.is_empty() && c.failed.is_empty() {
        eprintln!("{provider}.{object} has every declared field; nothing to create");
    }
    if !c.created.is_empty() {
        eprintln!(
            "created {} field(s) of {provider}.{object}: {}",
            c.created.len(),
            names(&c.created)
        );
    }
    if !c.already_there.is_empty() {
        eprintln!(
            "{provider}.{object} got these meanwhile (not created again): {}",
            names(&c.already_there)
        );
    }
    for (name, e) in &c.failed {
        eprintln!("could not create {provider}.{object} field `{name}`: {e}");
    }
}
