//! `rulebridge connect test PROVIDER`: calls the kit's `test` operation with the tenant's
//! credentials (seed per-user-crm-credentials, "Test Connection") and reports success or the
//! classified error.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use rulebridge::Engine;
use rulebridge::connect::ConnectError;

use crate::common::{EXIT_PROBLEMS, build, sandbox_credentials};

/// What `connect test` was asked to do.
pub struct TestArgs {
    pub provider: String,
    pub rules: PathBuf,
    pub tenant: String,
    pub state: String,
    pub sandbox: bool,
    pub base_url: Option<String>,
    pub json: bool,
}

/// What calling a provider's `test` operation came to.
pub struct Tested {
    /// `METHOD /path` of the operation.
    pub request: String,
    pub ms: u128,
    /// Success, or the classified error.
    pub result: Result<(), ConnectError>,
}

/// Why a provider's connection cannot be tested.
#[derive(Debug, thiserror::Error)]
pub enum Untestable {
    #[error("no provider `{0}`")]
    NoProvider(String),
    #[error(
        "provider `{0}` has no `test` operation: add one to an object's operations, e.g. `test: {{ method: GET, path: /me }}`"
    )]
    NoTest(String),
    #[error(transparent)]
    Engine(#[from] rulebridge::Error),
}

/// Calls the kit's `test` operation of `provider` with the credentials `engine` was built
/// with, at `base_url` if given. `connect test` and `serve` both test connections this way.
pub async fn test_connection(
    engine: &Engine,
    provider: &str,
    base_url: Option<&str>,
) -> Result<Tested, Untestable> {
    let Some(plan) = engine.plan().provider(provider) else {
        return Err(Untestable::NoProvider(provider.to_string()));
    };
    let Some((object, op)) = plan
        .objects()
        .find_map(|o| o.operation("test").map(|op| (o.name().to_string(), op)))
    else {
        return Err(Untestable::NoTest(provider.to_string()));
    };
    let request = format!("{} {}", op.method(), op.path());
    let connector = engine.http_connector(provider, base_url)?;
    let started = Instant::now();
    let result = connector
        .call(&object, "test", serde_json::Map::new())
        .await
        .map(|_| ());
    Ok(Tested {
        request,
        ms: started.elapsed().as_millis(),
        result,
    })
}

pub fn test(args: TestArgs) -> anyhow::Result<u8> {
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
    // A tenant's stored credentials stand in for the sandbox's: testing a bad key against
    // the sandbox is how a user sees what a real provider would answer.
    // (The first value given for a variable wins, so the tenant's come first.)
    let builder = crate::commands::creds::with_tenant(
        &rt,
        Engine::builder().rules_dir(&args.rules).field_cache(false),
        &args.rules,
        &args.state,
        &args.tenant,
        Some(&args.provider),
    )?;
    let builder = sandbox_credentials(builder, args.sandbox);
    let engine = build(builder)?;
    let provider = args.provider.as_str();
    let base_url = args
        .base_url
        .clone()
        .or_else(|| sb.as_ref().and_then(|sb| sb.kit_base_url(provider)));
    let tested = rt.block_on(test_connection(&engine, provider, base_url.as_deref()));
    if let Some(sb) = sb {
        rt.block_on(sb.shutdown());
    }
    let tested = match tested {
        Ok(t) => t,
        Err(Untestable::NoProvider(_)) => anyhow::bail!(
            "the rules in {} have no provider `{provider}`",
            args.rules.display()
        ),
        Err(e) => anyhow::bail!("{e}"),
    };
    let (what, ms, result) = (tested.request, tested.ms, tested.result);
    let mut out = crate::common::stdout();
    let tenant = if args.tenant.is_empty() {
        String::new()
    } else {
        format!(" (tenant {})", args.tenant)
    };
    match result {
        Ok(_) => {
            if args.json {
                let v = serde_json::json!({"provider": provider, "tenant": args.tenant, "ok": true, "request": what, "ms": ms});
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "{provider}{tenant}: connected ({what}, {ms} ms)")?;
            }
            Ok(0)
        }
        Err(e) => {
            if args.json {
                let v = serde_json::json!({"provider": provider, "tenant": args.tenant, "ok": false, "request": what, "error": e});
                writeln!(out, "{v}")?;
            } else {
                let kind = serde_json::to_value(e.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                let status = e.status.map(|s| format!(" {s}")).unwrap_or_default();
                writeln!(
                    out,
                    "{provider}{tenant}: failed ({kind}{status}, {what}): {}",
                    e.message
                )?;
                let hint = match kind.as_str() {
                    "auth" => "check the credentials: `rulebridge creds set PROVIDER --tenant T`",
                    "not_found" => {
                        "check the account or instance the credentials point at (an id, a base URL)"
                    }
                    "rate_limited" => "the provider is throttling: try again shortly",
                    "transient" => "the provider or the network failed: try again",
                    _ => "",
                };
                if !hint.is_empty() {
                    eprintln!("hint: {}", hint.replace("PROVIDER", provider));
                }
            }
            Ok(EXIT_PROBLEMS)
        }
    }
}
