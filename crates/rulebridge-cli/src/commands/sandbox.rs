//! `rulebridge sandbox`: serve the local fakes of the vendor APIs until Ctrl-C.

use std::io::Write;

pub fn sandbox(port: u16, faults: rulebridge_sandbox::Faults, seed: u64) -> anyhow::Result<u8> {
    use rulebridge_sandbox::{self as sandbox, SandboxConfig};
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
            let mut out = crate::common::stdout();
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
