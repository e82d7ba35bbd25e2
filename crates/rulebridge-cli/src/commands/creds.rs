//! `rulebridge creds`: the encrypted credential store. Values come from standard input or a
//! prompt (never the command line) and are never printed; `list` shows where credentials
//! are and when they were written.

use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rulebridge::EngineBuilder;
use rulebridge::plan::ConfigField;
use rulebridge::secrets::Secret;
use rulebridge::secrets::sealed::MasterKey;
use rulebridge::state::{CredentialStore, KeySpec, TenantCredentials};

/// What `creds` was asked to do.
pub enum CredsAction {
    Keygen,
    Set {
        provider: String,
        name: Option<String>,
        rules: PathBuf,
    },
    List {
        provider: Option<String>,
        json: bool,
    },
    Delete {
        provider: String,
        name: Option<String>,
    },
    Rotate,
}

/// `-` on the command line: a credential of no provider (`${secret:NAME}` without a dot).
fn provider_arg(p: &str) -> &str {
    if p == "-" { "" } else { p }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// The credential store of the state store at `spec`, unlocked with the master key of the
/// environment.
pub async fn unlock(spec: &str) -> anyhow::Result<Arc<CredentialStore>> {
    let store = crate::commands::state::open(spec).await?;
    let key = KeySpec::from_env()?;
    Ok(Arc::new(
        CredentialStore::unlock(store.db().clone(), &key).await?,
    ))
}

/// Gives `builder` the tenant's credentials: `${secret:..}` from the store (then the
/// environment), and the tenant's stored `config:` values of every provider in place of the
/// environment variables the kits read (`chatwoot.api_key` for `CHATWOOT_API_KEY`). A named
/// tenant needs the master key; without one (and no tenant), only the environment is read.
/// `only`: read the settings of this provider alone (the others are not needed).
pub fn with_tenant(
    rt: &tokio::runtime::Runtime,
    builder: EngineBuilder,
    rules: &Path,
    state: &str,
    tenant: &str,
    only: Option<&str>,
) -> anyhow::Result<EngineBuilder> {
    if !has_master_key() {
        if !tenant.is_empty() {
            anyhow::bail!(
                "--tenant {tenant} reads the tenant's credentials from the encrypted store: set {} (or {})",
                rulebridge::state::MASTER_KEY_VAR,
                rulebridge::state::MASTER_PASSPHRASE_VAR
            );
        }
        return rt.block_on(tenant_builder(builder, rules, None, tenant, only));
    }
    let creds = rt.block_on(unlock(state))?;
    rt.block_on(tenant_builder(builder, rules, Some(creds), tenant, only))
}

/// Whether the environment holds a master key (or a passphrase) for the credential store.
pub fn has_master_key() -> bool {
    [
        rulebridge::state::MASTER_KEY_VAR,
        rulebridge::state::MASTER_PASSPHRASE_VAR,
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|v| !v.is_empty()))
}

/// [`with_tenant`] over a credential store already unlocked (`None`: the environment only,
/// for a tenant that has nothing stored). Reads the rule files (a blocking call).
pub async fn tenant_builder(
    mut builder: EngineBuilder,
    rules: &Path,
    creds: Option<Arc<CredentialStore>>,
    tenant: &str,
    only: Option<&str>,
) -> anyhow::Result<EngineBuilder> {
    let Some(creds) = creds else {
        return Ok(builder.credential_source(Arc::new(TenantCredentials::env_only())));
    };
    if let Ok((_, _, Some(plan))) = crate::common::check(&[rules.to_path_buf()]) {
        for provider in plan
            .providers()
            .filter(|p| only.is_none_or(|o| o == p.name()))
        {
            // A connection made through the kit's `connect:` (`serve`'s OAuth routes).
            if provider.connect().is_some() {
                let tokens = rulebridge::state::TenantTokens {
                    creds: creds.clone(),
                    tenant: tenant.to_string(),
                    provider: provider.name().to_string(),
                };
                if let Some(t) = tokens.load().await? {
                    builder = builder.oauth_tokens(provider.name(), t, Some(Arc::new(tokens)));
                }
            }
            for field in provider.config() {
                if let Some(v) = creds.get(tenant, provider.name(), &field.name).await? {
                    let env =
                        rulebridge::state::env_name(&format!("{}.{}", provider.name(), field.name));
                    builder = builder.credential(env, v.expose());
                }
            }
        }
    }
    Ok(builder.credential_source(Arc::new(TenantCredentials::new(creds, tenant))))
}

pub fn creds(state: &str, tenant: &str, action: CredsAction) -> anyhow::Result<u8> {
    if let CredsAction::Keygen = action {
        let key = MasterKey::generate();
        // Written past the scrubber on purpose: printing the new key is the point.
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "{}={}",
            rulebridge::state::MASTER_KEY_VAR,
            key.to_base64().expose()
        )?;
        eprintln!(
            "master key {} (keep it apart from the store; it is not saved anywhere)",
            key.id()
        );
        return Ok(0);
    }
    let rt = runtime()?;
    let code = rt.block_on(async {
        match action {
            CredsAction::Keygen => Ok(0),
            CredsAction::Set {
                provider,
                name,
                rules,
            } => {
                let provider = provider_arg(&provider);
                let values = match &name {
                    Some(n) => vec![(n.clone(), read_one(n)?)],
                    None => {
                        let fields = declared(&rules, provider)?;
                        read_fields(provider, &fields)?
                    }
                };
                let creds = unlock(state).await?;
                for (n, v) in &values {
                    creds.set(tenant, provider, n, v).await?;
                }
                let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
                eprintln!(
                    "stored {} credential(s) of {} for tenant `{tenant}`: {} (key {})",
                    values.len(),
                    shown(provider),
                    names.join(", "),
                    creds.key_id()
                );
                Ok(0)
            }
            CredsAction::List { provider, json } => {
                let creds = unlock(state).await?;
                let list = creds
                    .list(tenant, provider.as_deref().map(provider_arg))
                    .await?;
                let mut out = crate::common::stdout();
                for c in &list {
                    if json {
                        writeln!(out, "{}", serde_json::to_string(c)?)?;
                    } else {
                        writeln!(
                            out,
                            "{:<16} {:<24} key {}  updated {}",
                            shown(&c.provider),
                            c.name,
                            c.key_id,
                            crate::commands::state::time(c.updated_at)
                        )?;
                    }
                }
                if list.is_empty() && !json {
                    eprintln!("tenant `{tenant}` has no stored credentials");
                }
                Ok(0)
            }
            CredsAction::Delete { provider, name } => {
                let provider = provider_arg(&provider);
                let creds = unlock(state).await?;
                let n = creds.delete(tenant, provider, name.as_deref()).await?;
                eprintln!(
                    "removed {n} credential(s) of {} for tenant `{tenant}`",
                    shown(provider)
                );
                Ok(if n == 0 { crate::common::EXIT_PROBLEMS } else { 0 })
            }
            CredsAction::Rotate => {
                let Some(new) = KeySpec::new_from_env()? else {
                    anyhow::bail!(
                        "rotate needs the new key: set {} (base64 of 32 bytes, `rulebridge creds keygen`) or {}",
                        rulebridge::state::NEW_MASTER_KEY_VAR,
                        rulebridge::state::NEW_MASTER_PASSPHRASE_VAR
                    );
                };
                let store = crate::commands::state::open(state).await?;
                let creds =
                    CredentialStore::unlock(store.db().clone(), &KeySpec::from_env()?).await?;
                let new = new.key(store.db()).await?;
                let (rotated, done) = creds.rotate(new).await?;
                eprintln!(
                    "re-sealed {} credential(s) under master key {} ({} already were); from now on give the new key as {}",
                    done.resealed,
                    rotated.key_id(),
                    done.current,
                    rulebridge::state::MASTER_KEY_VAR
                );
                Ok(0)
            }
        }
    })?;
    Ok(code)
}

fn shown(provider: &str) -> &str {
    if provider.is_empty() { "-" } else { provider }
}

/// The `config:` fields `provider` declares in the rules.
fn declared(rules: &Path, provider: &str) -> anyhow::Result<Vec<ConfigField>> {
    let (_, diags, plan) = crate::common::check(&[rules.to_path_buf()])?;
    let Some(plan) = plan else {
        anyhow::bail!(
            "the rules have problems ({}); run `rulebridge lint`",
            rulebridge::diagnostic::render::summary(&diags)
        );
    };
    let Some(p) = plan.provider(provider) else {
        anyhow::bail!(
            "the rules in {} have no provider `{provider}`",
            rules.display()
        );
    };
    if p.config().is_empty() {
        anyhow::bail!(
            "provider `{provider}` declares no `config:` fields; name the credential: `rulebridge creds set {provider} NAME`"
        );
    }
    Ok(p.config().to_vec())
}

/// One value: typed at a prompt without echo, or all of standard input (without its final
/// line break).
fn read_one(name: &str) -> anyhow::Result<Secret> {
    let value = if io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{name}: "))?
    } else {
        let mut s = String::new();
        io::stdin().read_to_string(&mut s)?;
        s.strip_suffix('\n')
            .map(|s| s.strip_suffix('\r').unwrap_or(s))
            .unwrap_or(&s)
            .to_string()
    };
    if value.is_empty() {
        anyhow::bail!("no value given for `{name}`");
    }
    Ok(Secret::new(value))
}

/// The kit's declared fields: prompted one by one on a terminal (sensitive ones without
/// echo), or `NAME=VALUE` lines on standard input.
fn read_fields(provider: &str, fields: &[ConfigField]) -> anyhow::Result<Vec<(String, Secret)>> {
    let mut out = Vec::new();
    if io::stdin().is_terminal() {
        for f in fields {
            let optional = if f.required { "" } else { " (optional)" };
            let prompt = format!("{}{optional}: ", f.label);
            let value = if f.sensitive {
                rpassword::prompt_password(prompt)?
            } else {
                eprint!("{prompt}");
                let mut line = String::new();
                io::stdin().read_line(&mut line)?;
                line.trim_end_matches(['\n', '\r']).to_string()
            };
            out.push((f.name.clone(), value));
        }
    } else {
        let mut text = String::new();
        io::stdin().read_to_string(&mut text)?;
        out = parse_lines(&text, provider, fields)?;
    }
    let missing: Vec<&str> = fields
        .iter()
        .filter(|f| f.required && !out.iter().any(|(n, v)| n == &f.name && !v.is_empty()))
        .map(|f| f.name.as_str())
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "{provider} needs {} (nothing was stored)",
            missing.join(", ")
        );
    }
    Ok(out
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, v)| (n, Secret::new(v)))
        .collect())
}

/// `NAME=VALUE` lines (blank lines and `#` comments skipped) naming declared fields only.
fn parse_lines(
    text: &str,
    provider: &str,
    fields: &[ConfigField],
) -> anyhow::Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            anyhow::bail!(
                "standard input line {}: expected NAME=VALUE (one of {})",
                n + 1,
                names(fields)
            );
        };
        let name = name.trim();
        if !fields.iter().any(|f| f.name == name) {
            anyhow::bail!(
                "standard input line {}: `{provider}` declares no setting `{name}` (it has {})",
                n + 1,
                names(fields)
            );
        }
        out.retain(|(n, _)| n != name);
        out.push((name.to_string(), value.to_string()));
    }
    Ok(out)
}

fn names(fields: &[ConfigField]) -> String {
    fields
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<ConfigField> {
        ["api_key", "account_id"]
            .iter()
            .map(|n| ConfigField {
                name: n.to_string(),
                label: n.to_string(),
                description: None,
                sensitive: *n == "api_key",
                required: true,
            })
            .collect()
    }

    #[test]
    fn settings_lines() {
        let got = parse_lines(
            "# comment\napi_key=a=b\n\naccount_id=7\r\n",
            "chatwoot",
            &fields(),
        );
        assert_eq!(
            got.ok(),
            Some(vec![
                ("api_key".to_string(), "a=b".to_string()),
                ("account_id".to_string(), "7".to_string())
            ])
        );
        let err = parse_lines("apikey=x\n", "chatwoot", &fields())
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "standard input line 1: `chatwoot` declares no setting `apikey` (it has api_key, account_id)"
            )
        );
        assert!(parse_lines("just text\n", "chatwoot", &fields()).is_err());
    }
}
