//! rustc-like output with source snippets, via `annotate-snippets`:
//!
//! ```text
//! error[RB0003]: unknown key `mapings` in flow document
//!  --> rules/flows/lead.yaml:7:1
//!   |
//! 7 | mapings:
//!   | ^^^^^^^ unknown key
//!   |
//!   = help: did you mean `mapping`?
//! ```

use std::ops::Range;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use crate::diagnostic::{Diagnostic, Severity};
use crate::span::{FileId, SourceFile, SourceMap, Span};

pub(super) fn render(diags: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut out = String::new();
    for d in diags {
        out.push_str(&render_one(&renderer, d, sources));
        out.push_str("\n\n");
    }
    out
}

/// Spans of one file to show together, and the window of lines they need.
struct Window<'a> {
    file: &'a SourceFile,
    /// Byte range of whole lines covering every span.
    range: Range<usize>,
    first_line: usize,
}

impl<'a> Window<'a> {
    fn new(file: &'a SourceFile, spans: &[Span]) -> Self {
        let len = file.text.len();
        let start = spans.iter().map(|s| s.start as usize).min().unwrap_or(0);
        let start = floor_boundary(&file.text, start);
        let end = spans.iter().map(|s| s.end as usize).max().unwrap_or(0);
        let end = floor_boundary(&file.text, end.max(start));
        let line_start = file.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = file.text[end..].find('\n').map_or(len, |i| end + i);
        let (first_line, _) = file.line_col(line_start as u32);
        Window {
            file,
            range: line_start..line_end.max(line_start),
            first_line,
        }
    }

    fn text(&self) -> &'a str {
        &self.file.text[self.range.clone()]
    }

    /// A file span as a range within the window.
    fn local(&self, span: Span) -> Range<usize> {
        let clamp = |o: u32| {
            let o = (o as usize).clamp(self.range.start, self.range.end);
            floor_boundary(&self.file.text, o) - self.range.start
        };
        let start = clamp(span.start);
        start..clamp(span.end).max(start)
    }
}

fn render_one(renderer: &Renderer, d: &Diagnostic, sources: &SourceMap) -> String {
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let mut group = Group::with_title(level.primary_title(d.message.as_str()).id(d.code.as_str()));

    if let Some(file) = sources.get(d.span.file) {
        let same_file: Vec<_> = d
            .related
            .iter()
            .filter(|l| l.span.file == d.span.file)
            .collect();
        let mut spans = vec![d.span];
        spans.extend(same_file.iter().map(|l| l.span));
        let window = Window::new(file, &spans);
        let mut primary = AnnotationKind::Primary.span(window.local(d.span));
        if let Some(label) = &d.label {
            primary = primary.label(label.as_str());
        }
        let mut snippet = Snippet::source(window.text())
            .line_start(window.first_line)
            .path(file.name.as_str())
            .annotation(primary);
        for l in &same_file {
            snippet = snippet.annotation(
                AnnotationKind::Context
                    .span(window.local(l.span))
                    .label(l.message.as_str()),
            );
        }
        group = group.element(snippet);

        let mut other_files: Vec<FileId> = d
            .related
            .iter()
            .map(|l| l.span.file)
            .filter(|f| *f != d.span.file)
            .collect();
        other_files.dedup();
        for id in other_files {
            let Some(other) = sources.get(id) else {
                continue;
            };
            let labels: Vec<_> = d.related.iter().filter(|l| l.span.file == id).collect();
            let spans: Vec<Span> = labels.iter().map(|l| l.span).collect();
            let window = Window::new(other, &spans);
            let mut snippet = Snippet::source(window.text())
                .line_start(window.first_line)
                .path(other.name.as_str());
            for l in labels {
                snippet = snippet.annotation(
                    AnnotationKind::Context
                        .span(window.local(l.span))
                        .label(l.message.as_str()),
                );
            }
            group = group.element(snippet);
        }
    }
    if let Some(help) = &d.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    renderer.render(&[group])
}

/// The largest char boundary of `text` at or before `i`.
fn floor_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Code;

    #[test]
    fn spans_inside_characters_and_past_the_end_do_not_panic() {
        let mut map = SourceMap::new();
        let id = map.add("f.yaml", "name: é\n");
        for (start, end) in [(7, 8), (6, 100), (100, 200), (8, 7)] {
            let d = Diagnostic::new(Code::UnknownKey, Span::new(id, start, end), "m")
                .with_related(Span::new(id, 1, 7), "r");
            let out = render(&[d], &map, false);
            assert!(out.contains("f.yaml"), "{out}");
        }
    }
}
