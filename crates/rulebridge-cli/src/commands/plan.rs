//! `rulebridge plan`: the compiled plan of a flow.

use std::io::Write;
use std::path::PathBuf;

use rulebridge::plan::PlanView;
use rulebridge::{Error, diagnostic};

use crate::common::{PlanFormat, engine};

pub fn plan(flow: &str, rules: PathBuf, format: PlanFormat) -> anyhow::Result<u8> {
    let engine = engine(rules)?;
    let Some(f) = engine.plan().find_flow(flow) else {
        anyhow::bail!(
            "{}",
            Error::UnknownFlow {
                name: flow.to_string(),
                suggestion: diagnostic::suggest(
                    flow,
                    engine.plan().flows().map(|f| f.name.as_str())
                ),
            }
        );
    };
    let view = PlanView::of(f).with_provider(engine.plan().provider(&f.provider).map(|p| &**p));
    let mut out = crate::common::stdout();
    match format {
        PlanFormat::Text => out.write_all(view.to_text().as_bytes())?,
        PlanFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&view)?)?,
    }
    Ok(0)
}
