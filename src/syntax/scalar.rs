//! Where each byte of a YAML scalar's *value* was written in the file.
//!
//! Expressions, templates and JSONPath queries are checked on the decoded string, so their
//! errors come as offsets into that string. YAML changes the text on the way: block scalars
//! (`|`, `>`) lose their indentation, `>` and multi-line plain or quoted scalars fold line
//! breaks into spaces, quoted scalars drop their quotes and double-quoted ones decode escapes.
//! [`value_offsets`] redoes that decoding on the source text, remembering where every output
//! byte came from, and checks the result against the parser's value: when the two disagree
//! (a style this does not model) it gives up rather than point at the wrong place.

/// For a scalar whose value is `value` and whose node span is `start..end` in `text`, the
/// file offset of every byte of `value`, plus one entry for the end of the value.
///
/// Block scalars are recognised by their header (`|`, `>-`, `|2+`, ...) at the end of the
/// line before the span; the span itself starts at the first content character.
pub(crate) fn value_offsets(
    text: &str,
    start: usize,
    end: usize,
    value: &str,
) -> Option<Vec<usize>> {
    let slice = text.get(start..end)?;
    let (out, map) = if let Some(style) = block_header(text, start) {
        block(text, start, end, style)?
    } else if slice.starts_with('\'') && slice.len() >= 2 && slice.ends_with('\'') {
        flow(text, start + 1, end - 1, Quote::Single)?
    } else if slice.starts_with('"') && slice.len() >= 2 && slice.ends_with('"') {
        flow(text, start + 1, end - 1, Quote::Double)?
    } else {
        flow(text, start, end, Quote::Plain)?
    };
    // Chomping only removes trailing line breaks, which `block` keeps all of.
    if out.len() < value.len() || !out.starts_with(value) {
        return None;
    }
    let mut offsets: Vec<usize> = map[..value.len()].to_vec();
    let end_at = match value.len() {
        0 => start,
        n => map[n - 1] + value[..n].chars().next_back().map_or(1, char::len_utf8),
    };
    offsets.push(end_at);
    Some(offsets)
}

/// Maps a byte range of `value` to a file range, placing positions inside trailing
/// whitespace (an error "at the end of the expression") right after the last character.
pub(crate) fn map_range(
    offsets: &[usize],
    value: &str,
    start: usize,
    end: usize,
) -> (usize, usize) {
    let len = value.len();
    let clamp = |i: usize| {
        let mut i = i.min(len);
        while !value.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let trimmed = value.trim_end().len();
    let at = |i: usize| {
        let i = clamp(i);
        if i >= trimmed && trimmed < len {
            // Right after the last non-blank character.
            match value[..trimmed].chars().next_back() {
                Some(c) => offsets[trimmed - c.len_utf8()] + c.len_utf8(),
                None => offsets[0],
            }
        } else {
            offsets[i]
        }
    };
    let s = at(start);
    let e = if end <= start { s } else { at(end).max(s) };
    (s, e)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    Plain,
    Single,
    Double,
}

#[derive(Clone, Copy)]
struct BlockStyle {
    folded: bool,
    indent: Option<usize>,
}

/// The block scalar header ending the line before `start`, if the text between that line
/// and `start` is indentation only.
fn block_header(text: &str, start: usize) -> Option<BlockStyle> {
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    if !text[line_start..start].chars().all(|c| c == ' ') {
        return None;
    }
    // The header is on the closest line above that is not blank (leading blank lines of a
    // block scalar belong to its content).
    let mut end = line_start.checked_sub(1)?;
    loop {
        let prev_start = text[..end].rfind('\n').map_or(0, |i| i + 1);
        let line = &text[prev_start..end];
        if !line.trim().is_empty() {
            return parse_header(line);
        }
        end = prev_start.checked_sub(1)?;
    }
}

fn parse_header(line: &str) -> Option<BlockStyle> {
    // Drop a trailing comment: ` # ...`.
    let line = match line.find(" #") {
        Some(i) => &line[..i],
        None => line,
    };
    let line = line.trim_end();
    let at = line.rfind(['|', '>'])?;
    let head = &line[at..];
    let before = &line[..at];
    // `key: |`, `- |`, or a header alone on its line.
    if !(before.is_empty() || before.ends_with(' ')) {
        return None;
    }
    let mut indent = None;
    for c in head[1..].chars() {
        match c {
            '-' | '+' => {}
            '1'..='9' => indent = Some(c as usize - '0' as usize),
            _ => return None,
        }
    }
    Some(BlockStyle {
        folded: head.starts_with('>'),
        indent: indent.map(|i| i + leading_spaces(before)),
    })
}

fn leading_spaces(s: &str) -> usize {
    s.len() - s.trim_start_matches(' ').len()
}

/// Lines of `text[start..end]` as (file offset of the line, line text without its break).
fn lines(text: &str, start: usize, end: usize) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut at = start;
    for line in text[start..end].split_inclusive('\n') {
        out.push((at, line.trim_end_matches('\n').trim_end_matches('\r')));
        at += line.len();
    }
    out
}

/// Decodes a block scalar, keeping every trailing line break.
fn block(text: &str, start: usize, end: usize, style: BlockStyle) -> Option<(String, Vec<usize>)> {
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let indent = style.indent.unwrap_or(start - line_start);
    let mut out = String::new();
    let mut map = Vec::new();
    // Lines: (offset of the content after the indentation, content, line break offset).
    let mut content: Vec<(usize, &str, usize)> = Vec::new();
    for (off, line) in lines(text, line_start, end) {
        let stripped = if line.len() >= indent && line[..indent].chars().all(|c| c == ' ') {
            &line[indent..]
        } else if line.trim().is_empty() {
            ""
        } else {
            return None;
        };
        let content_at = off + (line.len() - stripped.len());
        content.push((content_at, stripped, off + line.len()));
    }
    let push = |out: &mut String, map: &mut Vec<usize>, s: &str, at: usize| {
        for (i, c) in s.char_indices() {
            out.push(c);
            map.extend(std::iter::repeat_n(at + i, c.len_utf8()));
        }
    };
    let spaced = |s: &str| s.starts_with([' ', '\t']);
    for (i, (at, line, brk)) in content.iter().enumerate() {
        push(&mut out, &mut map, line, *at);
        let Some((_, next, _)) = content.get(i + 1) else {
            out.push('\n');
            map.push(*brk);
            break;
        };
        // `>`: a break between two text lines is a space; one before blank lines is dropped
        // (the blank lines give the newlines); around more-indented lines breaks stay.
        let fold = style.folded && !line.is_empty() && !spaced(line) && !spaced(next);
        if fold && !next.is_empty() {
            out.push(' ');
            map.push(*brk);
        } else if fold && next.is_empty() {
            let following = content[i + 1..].iter().find(|(_, l, _)| !l.is_empty());
            if following.is_some_and(|(_, l, _)| spaced(l)) || following.is_none() {
                out.push('\n');
                map.push(*brk);
            }
        } else {
            out.push('\n');
            map.push(*brk);
        }
    }
    Some((out, map))
}

/// Decodes a plain or quoted scalar whose content (inside the quotes) is `start..end`.
fn flow(text: &str, start: usize, end: usize, quote: Quote) -> Option<(String, Vec<usize>)> {
    let src = text.get(start..end)?;
    let bytes = src.as_bytes();
    let mut out = String::new();
    let mut map: Vec<usize> = Vec::new();
    // Output before this length is never trimmed (escaped whitespace is content).
    let mut keep = 0usize;
    let mut i = 0usize;
    let push = |out: &mut String, map: &mut Vec<usize>, c: char, at: usize| {
        out.push(c);
        map.extend(std::iter::repeat_n(at, c.len_utf8()));
    };
    while i < bytes.len() {
        let c = src[i..].chars().next()?;
        match c {
            '\n' | '\r' => {
                // Fold: trailing blanks go, then the break and blank lines that follow.
                let trimmed = out.trim_end_matches([' ', '\t']).len().max(keep);
                out.truncate(trimmed);
                map.truncate(trimmed);
                let brk = start + i;
                let mut empty = 0;
                let mut j = skip_break(bytes, i);
                loop {
                    let k = skip_blanks(bytes, j);
                    if k < bytes.len() && (bytes[k] == b'\n' || bytes[k] == b'\r') {
                        empty += 1;
                        j = skip_break(bytes, k);
                    } else {
                        j = k;
                        break;
                    }
                }
                if empty == 0 {
                    push(&mut out, &mut map, ' ', brk);
                } else {
                    for _ in 0..empty {
                        push(&mut out, &mut map, '\n', brk);
                    }
                }
                i = j;
            }
            '\'' if quote == Quote::Single && bytes.get(i + 1) == Some(&b'\'') => {
                push(&mut out, &mut map, '\'', start + i);
                i += 2;
            }
            '\\' if quote == Quote::Double => {
                let at = start + i;
                let (decoded, len) = escape(&src[i + 1..])?;
                match decoded {
                    // An escaped line break joins the lines without a space.
                    None => {
                        keep = out.len();
                        i = skip_blanks(bytes, i + 1 + len);
                    }
                    Some(ch) => {
                        push(&mut out, &mut map, ch, at);
                        keep = out.len();
                        i += 1 + len;
                    }
                }
            }
            _ => {
                push(&mut out, &mut map, c, start + i);
                i += c.len_utf8();
            }
        }
    }
    Some((out, map))
}

fn skip_break(bytes: &[u8], i: usize) -> usize {
    match (bytes.get(i), bytes.get(i + 1)) {
        (Some(b'\r'), Some(b'\n')) => i + 2,
        _ => i + 1,
    }
}

fn skip_blanks(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
        i += 1;
    }
    i
}

/// A double-quoted escape after its backslash: the character (none for an escaped line
/// break) and how many bytes the escape takes after the backslash.
fn escape(rest: &str) -> Option<(Option<char>, usize)> {
    let c = rest.chars().next()?;
    let simple = match c {
        '0' => '\0',
        'a' => '\u{7}',
        'b' => '\u{8}',
        't' | '\t' => '\t',
        'n' => '\n',
        'v' => '\u{b}',
        'f' => '\u{c}',
        'r' => '\r',
        'e' => '\u{1b}',
        ' ' => ' ',
        '"' => '"',
        '/' => '/',
        '\\' => '\\',
        'N' => '\u{85}',
        '_' => '\u{a0}',
        'L' => '\u{2028}',
        'P' => '\u{2029}',
        '\n' => return Some((None, 1)),
        '\r' => return Some((None, if rest[1..].starts_with('\n') { 2 } else { 1 })),
        'x' | 'u' | 'U' => {
            let n = match c {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            let hex = rest.get(1..1 + n)?;
            let ch = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
            return Some((Some(ch), 1 + n));
        }
        _ => return None,
    };
    Some((Some(simple), c.len_utf8()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::FileId;
    use crate::syntax::node::parse_documents;

    /// Parses `text`, finds the scalar value of key `a` and returns the source text found
    /// at the value's byte range `from..to`.
    fn at(text: &str, from: usize, to: usize) -> (String, (usize, usize)) {
        let (docs, diags) = parse_documents(FileId(0), text);
        assert!(diags.is_empty(), "{diags:?}");
        let node = docs[0].get("a").expect("key a");
        let value = node.as_str().expect("string");
        let offsets = value_offsets(
            text,
            node.span.start as usize,
            node.span.end as usize,
            value,
        )
        .unwrap_or_else(|| panic!("no mapping for {value:?} in {text:?}"));
        let (s, e) = map_range(&offsets, value, from, to);
        let (line, col) = crate::span::SourceFile::new("t", text).line_col(s as u32);
        (text[s..e].to_string(), (line, col))
    }

    fn find(text: &str, needle: &str) -> usize {
        let (docs, _) = parse_documents(FileId(0), text);
        let v = docs[0]
            .get("a")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_string();
        v.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in {v:?}"))
    }

    fn check(text: &str, needle: &str, line: usize, col: usize) {
        check_as(text, needle, needle, line, col);
    }

    /// Like `check` where the source spells the value differently (escapes).
    fn check_as(text: &str, needle: &str, written: &str, line: usize, col: usize) {
        let i = find(text, needle);
        let (found, pos) = at(text, i, i + needle.len());
        assert_eq!(found, written, "in {text:?}");
        assert_eq!(pos, (line, col), "in {text:?}");
    }

    #[test]
    fn literal_block_strips_indentation() {
        let t = "a: |-\n  lower(x) +\n    upper(bad(\nb: 1\n";
        check(t, "bad", 3, 11);
        check(t, "lower", 2, 3);
    }

    #[test]
    fn folded_block_folds_lines() {
        let t = "a: >-\n  one +\n  two +\n\n  three(\nb: 1\n";
        check(t, "two", 3, 3);
        check(t, "three", 5, 3);
        let t = "a: >\n  if a\n    then b\n  else c\n";
        check(t, "else", 4, 3);
        check(t, "then", 3, 5);
    }

    #[test]
    fn block_with_indentation_indicator_and_comment() {
        let t = "a: |2- # note\n    x(\n   y\n";
        check(t, "y", 3, 4);
    }

    #[test]
    fn plain_scalars_continue_on_the_next_line() {
        let t = "a: lower(x) +\n     upper(y) +\n  z\nb: 2\n";
        check(t, "upper", 2, 6);
        check(t, "z", 3, 3);
    }

    #[test]
    fn single_quoted_with_doubled_quotes_and_folding() {
        let t = "a: 'x == ''it''\n    && lower(y)'\n";
        check(t, "lower", 2, 8);
        check_as(t, "'it'", "''it''", 1, 10);
    }

    #[test]
    fn double_quoted_escapes_and_escaped_breaks() {
        let t = "a: \"a\\t\\\"b\\\" + \\\n    é(y) + \\u00e9z\"\n";
        check(t, "é(y)", 2, 5);
        check_as(t, "éz", "\\u00e9z", 2, 12);
        check_as(t, "\"b\"", "\\\"b\\\"", 1, 8);
    }

    #[test]
    fn end_of_value_is_after_the_last_character() {
        let t = "a: |\n  lower(x\nb: 1\n";
        let (docs, _) = parse_documents(FileId(0), t);
        let n = docs[0].get("a").expect("a");
        let v = n.as_str().expect("str");
        let o = value_offsets(t, n.span.start as usize, n.span.end as usize, v).expect("map");
        let (s, _) = map_range(&o, v, v.len(), v.len());
        assert_eq!(
            crate::span::SourceFile::new("t", t).line_col(s as u32),
            (2, 10)
        );
    }

    #[test]
    fn a_value_that_does_not_match_is_not_mapped() {
        assert_eq!(value_offsets("a: x\n", 3, 4, "y"), None);
    }
}
