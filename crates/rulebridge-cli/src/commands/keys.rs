//! `rulebridge keys`: the per-tenant API keys `serve` accepts (`Authorization: Bearer KEY`).
//! `create` prints a new key once; the store keeps only its hash. `list` never shows a key.

use std::io::{self, Write};

use rulebridge::state::ApiKeys;

use crate::commands::state::{open, time};

/// What `keys` was asked to do.
pub enum KeysAction {
    Create { tenant: String, label: String },
    List { tenant: Option<String>, json: bool },
    Revoke { id: String },
}

pub fn keys(state: &str, action: KeysAction) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = open(state).await?;
        let keys = ApiKeys::new(store.db().clone());
        let code = run(&keys, action).await;
        store.db().close().await;
        code
    })
}

async fn run(keys: &ApiKeys, action: KeysAction) -> anyhow::Result<u8> {
    match action {
        KeysAction::Create { tenant, label } => {
            if tenant.len() > 200 || tenant.chars().any(char::is_control) {
                anyhow::bail!("--tenant must be printable text of at most 200 bytes");
            }
            let new = keys.create(&tenant, &label).await?;
            let shown = if tenant.is_empty() {
                "the default tenant".to_string()
            } else {
                format!("tenant {tenant}")
            };
            eprintln!(
                "API key {} for {shown}: shown only now, the store keeps its hash alone",
                new.info.id
            );
            // Past the scrubber on purpose (the key is a registered secret): printing it is
            // the point. The key is the last word of the last line.
            let mut out = io::stdout().lock();
            writeln!(out, "id {}", new.info.id)?;
            writeln!(out, "key {}", new.key.expose())?;
            out.flush()?;
            Ok(0)
        }
        KeysAction::List { tenant, json } => {
            let all = keys.list(tenant.as_deref()).await?;
            let mut out = crate::common::stdout();
            if json {
                for k in &all {
                    writeln!(out, "{}", serde_json::to_string(k)?)?;
                }
                return Ok(0);
            }
            if all.is_empty() {
                eprintln!("no API keys; make one with `rulebridge keys create --tenant T`");
                return Ok(0);
            }
            writeln!(
                out,
                "{:<16}  {:<16}  {:<16}  {:<24}  {:<24}  REVOKED",
                "ID", "TENANT", "LABEL", "CREATED", "LAST USED"
            )?;
            let or_dash = |t: Option<i64>| t.map_or_else(|| "-".to_string(), time);
            for k in &all {
                writeln!(
                    out,
                    "{:<16}  {:<16}  {:<16}  {:<24}  {:<24}  {}",
                    k.id,
                    if k.tenant.is_empty() { "-" } else { &k.tenant },
                    if k.label.is_empty() { "-" } else { &k.label },
                    time(k.created_at),
                    or_dash(k.last_used_at),
                    or_dash(k.revoked_at),
                )?;
            }
            Ok(0)
        }
        KeysAction::Revoke { id } => match keys.revoke(&id).await? {
            Some(k) => {
                eprintln!(
                    "API key {} revoked{}",
                    k.id,
                    k.revoked_at
                        .map(|t| format!(" (since {})", time(t)))
                        .unwrap_or_default()
                );
                Ok(0)
            }
            None => anyhow::bail!("no API key `{id}` (see `rulebridge keys list`)"),
        },
    }
}
