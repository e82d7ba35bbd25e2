//! `rulebridge functions`: the builtin function library.

use std::io::Write;

pub fn functions(markdown: bool) -> anyhow::Result<u8> {
    let registry = rulebridge::Registry::builtin();
    let mut out = crate::common::stdout();
    if markdown {
        out.write_all(rulebridge::functions::docs::markdown(&registry).as_bytes())?;
    } else {
        for f in registry.iter() {
            let sig = f.signature();
            let params: Vec<String> = sig
                .params
                .iter()
                .map(|p| format!("{}{}: {}", p.name, if p.optional { "?" } else { "" }, p.ty))
                .collect();
            writeln!(
                out,
                "{}({}) -> {}",
                f.name(),
                params.join(", "),
                sig.returns
            )?;
        }
    }
    Ok(0)
}
