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

/// The fields of a provider's object, as its system reports them.
pub struct Discovered {
    pub fields: Vec<FieldInfo>,
    /// For a SQL provider, the database the columns were read from.
    pub table: Option<String>,
}

/// Reads the fields of `provider`'s `object` with the credentials `engine` was built with: a
/// SQL provider's table columns from its database (after its migrations), an HTTP
/// provider's through its field discovery operation at `base_url` if given. `fields` and
/// `serve` both discover fields this way.
pub async fn discover(
    engine: &rulebridge::Engine,
    provider: &str,
    object: &str,
    base_url: Option<&str>,
) -> anyhow::Result<Discovered> {
    if engine
        .plan()
        .provider(provider)
        .is_some_and(|p| p.sql().is_some())
    {
        let connector = engine.sql_connector(provider)?;
        let table = connector.describe(object).await;
        connector.close().await;
        return Ok(Discovered {
            fields: table?.fields(),
            table: Some(connector.location().to_string()),
        });
    }
    let connector = engine.http_connector(provider, base_url)?;
    Ok(Discovered {
        fields: rulebridge::connect::fields::discover(&connector, object).await?,
        table: None,
    })
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
    let base_url = args
        .base_url
        .or_else(|| sb.as_ref().and_then(|sb| sb.kit_base_url(provider)));
    let is_sql = engine
        .plan()
        .provider(provider)
        .is_some_and(|p| p.sql().is_some());
    let mut code = 0;
    let found = if args.create_missing && !is_sql {
        let connector = engine.http_connector(provider, base_url.as_deref())?;
        let creation = rt.block_on(rulebridge::connect::fields::create_missing(
            &connector, object,
        ))?;
        report_creation(provider, object, &creation);
        if !creation.failed.is_empty() {
            code = EXIT_PROBLEMS;
        }
        creation.fields
    } else {
        let found = rt.block_on(discover(&engine, provider, object, base_url.as_deref()))?;
        if let Some(location) = found.table {
            let path = cache.store(provider, object, &found.fields)?;
            list(&found.fields, args.format)?;
            eprintln!(
                "{} columns of {provider}.{object} ({location}) cached in {}",
                found.fields.len(),
                path.display()
            );
            return Ok(0);
        }
        found.fields
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
