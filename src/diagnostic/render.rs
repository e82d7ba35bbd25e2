//! Renderers for diagnostics: human, concise, JSON, SARIF.
