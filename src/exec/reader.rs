//! Reading NDJSON input: one [`Line`] per input line, with memory bounded by bytes.
//!
//! A line longer than the maximum record size is never held: its bytes are counted and
//! dropped as they are read, and it becomes [`Line::TooLarge`]. Lines are handed out in
//! chunks of at most [`CHUNK_LINES`] lines or [`CHUNK_BYTES`] bytes (a single line may exceed
//! the byte figure up to the record maximum), so what is in flight is bounded by the number of
//! chunks a caller keeps, times their size.

use std::io::{self, BufRead};

/// Lines in one chunk at most.
pub const CHUNK_LINES: usize = 512;
/// Bytes in one chunk at most (a single larger line makes a chunk of its own).
pub const CHUNK_BYTES: usize = 1 << 20;
/// The default maximum size of one record (16 MiB).
pub const DEFAULT_MAX_RECORD: usize = 16 << 20;

/// One input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The line's bytes, without the line terminator.
    Record {
        index: usize,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// A line holding only whitespace.
    Blank { index: usize },
    /// A line longer than the maximum record size; its bytes were dropped unread.
    TooLarge { index: usize, offset: u64, len: u64 },
}

impl Line {
    pub fn index(&self) -> usize {
        match self {
            Line::Record { index, .. } | Line::Blank { index } | Line::TooLarge { index, .. } => {
                *index
            }
        }
    }

    /// Bytes this line holds in memory.
    pub fn held_bytes(&self) -> usize {
        match self {
            Line::Record { bytes, .. } => bytes.len(),
            _ => 0,
        }
    }
}

/// Splits a byte stream into [`Line`]s.
pub struct LineReader<R> {
    input: R,
    max_record: usize,
    index: usize,
    offset: u64,
    done: bool,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(input: R, max_record: usize) -> Self {
        LineReader {
            input,
            max_record: max_record.max(1),
            index: 0,
            offset: 0,
            done: false,
        }
    }

    /// Passes over the next `n` lines without holding them; their indexes are used up.
    pub fn skip(&mut self, n: usize) -> io::Result<()> {
        let mut left = n;
        while left > 0 && !self.done {
            let buf = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                // Fewer lines than the checkpoint: nothing left to read.
                self.done = true;
                break;
            }
            let (consumed, newline) = match memchr(buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            self.input.consume(consumed);
            self.offset += consumed as u64;
            if newline {
                self.index += 1;
                left -= 1;
            }
        }
        Ok(())
    }

    /// The next line, `None` at the end of the input. A read error ends the input after
    /// being returned once.
    pub fn next_line(&mut self) -> Option<io::Result<Line>> {
        if self.done {
            return None;
        }
        let start = self.offset;
        let mut bytes = Vec::new();
        let mut len: u64 = 0;
        let mut too_large = false;
        let mut saw_newline = false;
        loop {
            let buf = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if buf.is_empty() {
                self.done = true;
                break;
            }
            let (part, consumed, newline) = match memchr(buf) {
                Some(i) => (&buf[..i], i + 1, true),
                None => (buf, buf.len(), false),
            };
            len += part.len() as u64;
            if !too_large {
                if bytes.len() + part.len() > self.max_record {
                    too_large = true;
                    bytes = Vec::new();
                } else {
                    bytes.extend_from_slice(part);
                }
            }
            self.input.consume(consumed);
            self.offset += consumed as u64;
            if newline {
                saw_newline = true;
                break;
            }
        }
        if !saw_newline && len == 0 {
            // End of input right after the last newline: no further line.
            return None;
        }
        let index = self.index;
        self.index += 1;
        if too_large {
            return Some(Ok(Line::TooLarge {
                index,
                offset: start,
                len,
            }));
        }
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Some(Ok(Line::Blank { index }));
        }
        Some(Ok(Line::Record {
            index,
            offset: start,
            bytes,
        }))
    }

    /// The next chunk of lines (empty at the end of the input).
    pub fn next_chunk(&mut self) -> io::Result<Vec<Line>> {
        let mut chunk = Vec::new();
        let mut held = 0usize;
        while chunk.len() < CHUNK_LINES && held < CHUNK_BYTES {
            match self.next_line() {
                Some(Ok(line)) => {
                    held += line.held_bytes();
                    chunk.push(line);
                }
                Some(Err(e)) if chunk.is_empty() => return Err(e),
                // Hand out what was read; the error ends the input on the next call.
                Some(Err(_)) | None => break,
            }
        }
        Ok(chunk)
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> usize {
        self.index
    }
}

fn memchr(buf: &[u8]) -> Option<usize> {
    // Vectorized: the lines are read by one evaluation thread at a time, under a lock.
    memchr::memchr(b'\n', buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut r = LineReader::new(io::BufReader::with_capacity(4, input), max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line() {
            out.push(l.unwrap());
        }
        out
    }

    #[test]
    fn skipped_lines_keep_their_indexes_and_offsets() {
        let input: &[u8] = b"{\"a\":1}\n{\"long\":\"xxxxxxxxxxxxxxxx\"}\n{\"c\":3}\n";
        let mut r = LineReader::new(io::BufReader::with_capacity(4, input), 100);
        r.skip(2).unwrap();
        assert_eq!(
            r.next_line().unwrap().unwrap(),
            Line::Record {
                index: 2,
                offset: 36,
                bytes: b"{\"c\":3}".to_vec()
            }
        );
        assert!(r.next_line().is_none());
        // More lines skipped than there are: the input is simply done.
        let mut r = LineReader::new(input, 100);
        r.skip(10).unwrap();
        assert!(r.next_line().is_none());
    }

    #[test]
    fn every_line_has_its_index_and_offset() {
        let got = lines(b"{\"a\":1}\n\n  \r\n{\"b\":2}\r\n{\"c\":3}", 100);
        assert_eq!(
            got,
            vec![
                Line::Record {
                    index: 0,
                    offset: 0,
                    bytes: b"{\"a\":1}".to_vec()
                },
                Line::Blank { index: 1 },
                Line::Blank { index: 2 },
                Line::Record {
                    index: 3,
                    offset: 13,
                    bytes: b"{\"b\":2}".to_vec()
                },
                Line::Record {
                    index: 4,
                    offset: 22,
                    bytes: b"{\"c\":3}".to_vec()
                },
            ]
        );
    }

    #[test]
    fn a_trailing_newline_ends_the_input() {
        assert_eq!(lines(b"x\n", 10).len(), 1);
        assert_eq!(lines(b"", 10).len(), 0);
        assert_eq!(lines(b"\n", 10), vec![Line::Blank { index: 0 }]);
    }

    #[test]
    fn long_lines_are_dropped_not_held() {
        let mut input = vec![b'a'; 50];
        input.extend_from_slice(b"\nok\n");
        let got = lines(&input, 10);
        assert_eq!(
            got[0],
            Line::TooLarge {
                index: 0,
                offset: 0,
                len: 50
            }
        );
        assert_eq!(
            got[1],
            Line::Record {
                index: 1,
                offset: 51,
                bytes: b"ok".to_vec()
            }
        );
    }

    #[test]
    fn chunks_are_bounded_by_lines_and_bytes() {
        let input = "{}\n".repeat(CHUNK_LINES + 3);
        let mut r = LineReader::new(io::BufReader::new(input.as_bytes()), 100);
        assert_eq!(r.next_chunk().unwrap().len(), CHUNK_LINES);
        assert_eq!(r.next_chunk().unwrap().len(), 3);
        assert!(r.next_chunk().unwrap().is_empty());

        let big = format!("{}\n", "x".repeat(CHUNK_BYTES / 2 + 1)).repeat(3);
        let mut r = LineReader::new(io::BufReader::new(big.as_bytes()), CHUNK_BYTES);
        assert_eq!(r.next_chunk().unwrap().len(), 2);
        assert_eq!(r.next_chunk().unwrap().len(), 1);
    }
}
