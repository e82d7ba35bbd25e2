//! Source files and byte-offset spans.
//!
//! Every value read from a rule file keeps a [`Span`] (file + byte range). Line and column are
//! computed only when a diagnostic is rendered, from the [`SourceMap`] that owns the text.

use std::fmt;
use std::sync::Arc;

/// Index of a file inside a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// A byte range inside one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub const fn new(file: FileId, start: u32, end: u32) -> Self {
        Span { file, start, end }
    }

    /// A span covering both `self` and `other` (same file assumed).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// Maps a byte range relative to a string value back into the file.
    ///
    /// `value` is the decoded string that was read at `self` (a YAML scalar). The scalar's
    /// style is taken into account: quotes, escapes, the indentation of block scalars and the
    /// line folding of `>`, plain and quoted scalars. When the value cannot be traced back to
    /// the source text (it was not read from this span as written) the whole span is returned.
    pub fn inner(self, sources: &SourceMap, value: &str, start: usize, end: usize) -> Span {
        let Some(file) = sources.get(self.file) else {
            return self;
        };
        let Some(offsets) = crate::syntax::scalar::value_offsets(
            &file.text,
            self.start as usize,
            self.end as usize,
            value,
        ) else {
            return self;
        };
        let (s, e) = crate::syntax::scalar::map_range(&offsets, value, start, end);
        Span::new(self.file, s as u32, e as u32)
    }
}

/// One loaded file.
#[derive(Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    line_starts: Vec<u32>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0u32];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| (i + 1) as u32),
        );
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = offset.min(self.text.len() as u32);
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line] as usize;
        let mut end = offset as usize;
        while end > start && !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let col = self.text[start..end].chars().count() + 1;
        (line + 1, col)
    }

    /// The text of a 1-based line, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .map(|e| *e as usize)
            .unwrap_or(self.text.len());
        self.text[start as usize..end].trim_end_matches(['\n', '\r'])
    }
}

/// All files of a rule set, shared cheaply between the plan and its diagnostics.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    files: Vec<Arc<SourceFile>>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        self.files.push(Arc::new(SourceFile::new(name, text)));
        FileId((self.files.len() - 1) as u32)
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize).map(|f| f.as_ref())
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f.as_ref()))
    }

    /// The source text a span covers, if the span is valid.
    pub fn slice(&self, span: Span) -> Option<&str> {
        self.get(span.file)?
            .text
            .get(span.start as usize..span.end as usize)
    }

    /// `file:line:col` of the span's start.
    pub fn locate(&self, span: Span) -> Location {
        match self.get(span.file) {
            Some(f) => {
                let (line, column) = f.line_col(span.start);
                let (end_line, end_column) = f.line_col(span.end);
                Location {
                    file: f.name.clone(),
                    line,
                    column,
                    end_line,
                    end_column,
                }
            }
            None => Location {
                file: "<unknown>".into(),
                line: 0,
                column: 0,
                end_line: 0,
                end_column: 0,
            },
        }
    }
}

/// A resolved, human-facing position.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let f = SourceFile::new("a.yaml", "ab\ncé d\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        // 'é' is two bytes; the space after it is the third character.
        assert_eq!(f.line_col(6), (2, 3));
        assert_eq!(f.line_text(2), "cé d");
    }

    #[test]
    fn inner_maps_through_quotes() {
        let mut map = SourceMap::new();
        let id = map.add("f.yaml", "x: 'lower(a)'\n");
        let span = Span::new(id, 3, 13);
        let inner = span.inner(&map, "lower(a)", 6, 7);
        assert_eq!(map.slice(inner), Some("a"));
    }

    #[test]
    fn inner_maps_through_escapes() {
        let mut map = SourceMap::new();
        let id = map.add("f.yaml", "x: \"a\\tb\"\n");
        let span = Span::new(id, 3, 9);
        assert_eq!(map.slice(span.inner(&map, "a\tb", 1, 2)), Some("\\t"));
        assert_eq!(map.slice(span.inner(&map, "a\tb", 2, 3)), Some("b"));
    }

    #[test]
    fn inner_falls_back_to_the_whole_span_when_the_value_differs() {
        let mut map = SourceMap::new();
        let id = map.add("f.yaml", "x: 80\n");
        let span = Span::new(id, 3, 5);
        assert_eq!(span.inner(&map, "80.0", 1, 2), span);
    }
}
