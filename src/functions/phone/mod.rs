//! Phone numbers parsed and validated for one region with its patterns compiled once.
//!
//! `normalize_phone` gives what the phonenumber crate's `parse`, `is_valid` and E.164
//! formatting give, but the crate looks up every pattern it uses in a process-wide,
//! mutex-guarded regex cache (keyed by a hash of the pattern text) and loads the metadata of
//! every country on first use. [`Numbering`] holds the patterns of the requested region's
//! country code, compiled on first use and then shared read-only by every thread.
//!
//! The fast path is a transcription of the crate's algorithm (0.3.10: `parser::parse_with`,
//! `parser::helper`, `validator::is_valid_with`) for the input it handles — ASCII digits,
//! spaces, `+ - . ( )` — and numbers of the region's own country code. Anything else (letters,
//! `tel:` URIs, extensions, other digits, other country codes, metadata quirks) goes to the
//! crate itself, so the result is the crate's for every input. The tests check both paths
//! against the crate over many generated numbers, and the metadata copy
//! ([`metadata`], generated from the crate's) against the crate's own.

// Generated, and compared with the generator's text by a test: kept as generated.
#[rustfmt::skip]
mod metadata;

use std::sync::OnceLock;

use regex::{Regex, RegexBuilder};

use metadata::{CODES, Desc, Meta, REGIONS};

/// Shortest and longest national significant number the crate accepts.
const MIN_NSN: usize = 2;
const MAX_NSN: usize = 17;

/// The fast path's answer: the E.164 form or "not a valid number", or "ask the crate".
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fast {
    Done(Option<String>),
    Delegate,
}

/// One region's numbering plan, as `normalize_phone(s, REGION)` needs it.
pub(crate) struct Numbering {
    /// Index of the region in [`REGIONS`].
    home: usize,
    code: u16,
    /// The regions of the country code, in the crate's order (main country first), each
    /// with its patterns compiled on first use.
    group: Vec<(usize, OnceLock<Option<Compiled>>)>,
    /// Whether each of those regions' ids is a country id the crate knows (it unwraps it
    /// when it finds a number's region).
    known_ids: Vec<bool>,
}

/// A descriptor: the lengths it allows and its pattern, anchored at the start.
struct Check {
    lengths: &'static [u16],
    re: Regex,
}

impl Check {
    /// The crate's `Descriptor::is_match`: a length it allows (or any, when it lists none),
    /// and a match starting at 0. (The crate takes the leftmost match and tests its start;
    /// a match at 0 is always the leftmost, so an anchored match is the same test.)
    fn is_match(&self, national: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.contains(&(national.len() as u16)))
            && self.re.is_match(national)
    }
}

struct Compiled {
    general: Check,
    /// Every type descriptor the crate's `number_type` tries; a number's type is known iff
    /// the general descriptor and at least one of these match.
    types: Vec<Check>,
    leading_digits: Option<Regex>,
    /// As the crate compiles them (unanchored): their match ends and groups are used.
    international_prefix: Option<Regex>,
    national_prefix_for_parsing: Option<Regex>,
}

/// The crate compiles every metadata pattern with `ignore_whitespace`.
fn compile(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(pattern)
        .ignore_whitespace(true)
        .build()
        .ok()
}

/// Anchored at the start; the line break ends a `#` comment the pattern might end with.
fn compile_anchored(pattern: &str) -> Option<Regex> {
    compile(&format!("^(?:{pattern}\n)"))
}

fn check(desc: &Desc) -> Option<Check> {
    Some(Check {
        lengths: desc.possible_length,
        re: compile_anchored(desc.pattern)?,
    })
}

impl Compiled {
    fn new(meta: &Meta) -> Option<Compiled> {
        let opt = |p: Option<&str>, f: fn(&str) -> Option<Regex>| match p {
            Some(p) => f(p).map(Some),
            None => Some(None),
        };
        Some(Compiled {
            general: check(&meta.general)?,
            types: meta
                .types
                .iter()
                .flatten()
                .map(check)
                .collect::<Option<_>>()?,
            leading_digits: opt(meta.leading_digits, compile_anchored)?,
            international_prefix: opt(meta.international_prefix, compile)?,
            national_prefix_for_parsing: opt(meta.national_prefix_for_parsing, compile)?,
        })
    }

    /// The crate's `number_type(..) != Type::Unknown`.
    fn known_type(&self, national: &str) -> bool {
        self.general.is_match(national) && self.types.iter().any(|c| c.is_match(national))
    }
}

/// The crate's `Validation` for `Type::Unknown`, as far as parsing uses it.
#[derive(PartialEq, Eq)]
enum Length {
    Possible,
    TooShort,
    Other,
}

/// The crate's `validator::length(meta, number, Type::Unknown)`.
fn length(meta: &Meta, national: &str) -> Length {
    let len = national.len() as u16;
    let possible = meta.general.possible_length;
    let (Some(&min), Some(&max)) = (possible.first(), possible.last()) else {
        return Length::Other;
    };
    if meta.general.possible_local_length.contains(&len) || len == min {
        Length::Possible
    } else if len < min {
        Length::TooShort
    } else if len > max {
        Length::Other
    } else if possible.contains(&len) {
        Length::Possible
    } else {
        Length::Other
    }
}

/// Characters the fast path reads; anything else goes to the crate.
fn simple(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'+' | b'-' | b'.' | b'(' | b')'))
}

fn separator(c: char) -> bool {
    matches!(c, '-' | '.' | '(' | ')')
}

/// A country code in decimal, as `to_string` writes it, without the formatting machinery.
fn decimal(n: u16) -> String {
    let mut buf = [0u8; 5];
    let mut at = buf.len();
    let mut n = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf[at..].iter().map(|&b| char::from(b)).collect()
}

fn digits(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    out.extend(s.chars().filter(char::is_ascii_digit));
    out
}

/// The crate's RFC 3966 parser on simple input: `(national, prefix)`.
fn rfc3966(i: &str) -> Option<(&str, Option<&str>)> {
    if i.contains(' ') {
        return None;
    }
    let mut rest = i;
    let mut prefix = None;
    if let Some(after) = rest.strip_prefix('+') {
        let n = after.find(separator).unwrap_or(after.len());
        if n > 0 {
            prefix = Some(&after[..n]);
            rest = &after[n..];
        }
    }
    let m = rest
        .find(|c: char| !(c.is_ascii_digit() || separator(c)))
        .unwrap_or(rest.len());
    // At least one character, and nothing after it (parameters start with `;`).
    (m > 0 && m == rest.len()).then_some((rest, prefix))
}

/// The crate's natural-language extraction on simple input: from the first `+` or digit,
/// without trailing characters that are neither digits nor letters. (Extensions need
/// letters, `#`, `,` or `;`: none on simple input.)
fn natural(i: &str) -> Option<&str> {
    let start = i.find(|c: char| c == '+' || c.is_ascii_digit())?;
    let result = i[start..].trim_end_matches(|c: char| !c.is_ascii_digit());
    (!result.is_empty()).then_some(result)
}

/// The crate's `is_viable` on simple input. Its grammar: exactly two digits, or leading `+`s,
/// then at least three digits among punctuation (`space - . ( )` here), letters after them.
/// On simple input that is: no `+` after the leading ones and three digits.
fn viable(s: &str) -> bool {
    let rest = s.trim_start_matches('+');
    s.len() >= MIN_NSN
        && ((s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
            || (!rest.contains('+') && rest.bytes().filter(u8::is_ascii_digit).count() >= 3))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Plus,
    Idd,
    /// The crate's `Number` (a country code read from the digits) is set only after the
    /// source stops mattering, so it is not kept here.
    Default,
}

impl Numbering {
    /// The numbering plan of a region, when the metadata has it.
    pub(crate) fn new(region: &str) -> Option<Numbering> {
        let home = REGIONS.iter().position(|m| m.id == region)?;
        let code = REGIONS[home].code;
        let group = REGIONS
            .iter()
            .enumerate()
            .filter(|(_, m)| m.code == code)
            .map(|(i, _)| (i, OnceLock::new()))
            .collect::<Vec<_>>();
        let known_ids = group
            .iter()
            .map(|(i, _)| REGIONS[*i].id.parse::<phonenumber::country::Id>().is_ok())
            .collect();
        Some(Numbering {
            home,
            code,
            group,
            known_ids,
        })
    }

    fn compiled(&self, slot: usize) -> Option<&Compiled> {
        let (i, cell) = &self.group[slot];
        cell.get_or_init(|| Compiled::new(&REGIONS[*i])).as_ref()
    }

    fn home_slot(&self) -> usize {
        self.group
            .iter()
            .position(|(i, _)| *i == self.home)
            .unwrap_or(0)
    }

    /// `text` in E.164 form if it is a valid number, as the crate would say.
    pub(crate) fn e164(&self, text: &str) -> Fast {
        match self.fast(text) {
            Some(fast) => fast,
            None => Fast::Delegate,
        }
    }

    /// `None`: delegate.
    fn fast(&self, text: &str) -> Option<Fast> {
        const INVALID: Option<Fast> = Some(Fast::Done(None));
        if !simple(text) {
            return None;
        }
        let home_meta = &REGIONS[self.home];
        let home = self.compiled(self.home_slot())?;

        // parse_with: RFC 3966 first, then natural language.
        let (raw, rfc_prefix) = match rfc3966(text) {
            Some(r) => r,
            None => match natural(text) {
                Some(n) => (n, None),
                None => return INVALID,
            },
        };
        if !viable(raw) {
            return INVALID;
        }

        // helper::country_code with helper::international_prefix.
        let idd_end = |national: &str| {
            home.international_prefix
                .as_ref()
                .and_then(|re| re.find(national))
                .filter(|m| m.start() == 0)
                .map(|m| m.end())
        };
        let mut source;
        let mut national;
        let mut prefix: Option<String> = rfc_prefix.map(digits);
        if prefix.is_some() {
            source = Source::Plus;
            national = digits(raw);
        } else {
            let plus = raw.len() - raw.trim_start_matches('+').len();
            let mut check_idd = true;
            if plus > 0 {
                source = Source::Plus;
                national = digits(&raw[plus..]);
                check_idd = idd_end(&national).is_some();
            } else {
                source = Source::Default;
                national = digits(raw);
            }
            if check_idd
                && let Some(end) = idd_end(&national)
                && !national[end..].starts_with('0')
            {
                if source != Source::Plus {
                    source = Source::Idd;
                }
                national.drain(..end);
            }
        }
        let code: u16 = match source {
            Source::Plus | Source::Idd => {
                if national.len() <= MIN_NSN {
                    return INVALID;
                }
                if let Some(p) = &prefix {
                    match p.parse::<u16>() {
                        Ok(c) if CODES.binary_search(&c).is_ok() => c,
                        _ => return INVALID,
                    }
                } else {
                    if national.starts_with('0') {
                        return INVALID;
                    }
                    let found = (1..=3).find_map(|len| {
                        let c = national[..len].parse::<u16>().ok()?;
                        CODES.binary_search(&c).is_ok().then_some((len, c))
                    });
                    let Some((len, c)) = found else {
                        return INVALID;
                    };
                    national.drain(..len);
                    prefix = Some(decimal(c));
                    c
                }
            }
            Source::Default => {
                let code = decimal(self.code);
                if national.starts_with(&code)
                    && (!home.general.is_match(&national)
                        || length(home_meta, &national) != Length::Possible)
                {
                    national.drain(..code.len());
                }
                prefix = Some(code);
                self.code
            }
        };
        if code != self.code {
            return None;
        }

        // helper::national_number, then the national prefix, unless that leaves too little.
        let mut potential = self.national_number(home_meta, home, &national)?;
        if let Some(np) = home_meta.national_prefix
            && potential.starts_with(np)
        {
            potential.drain(..np.len());
        }
        if length(home_meta, &potential) != Length::TooShort {
            national = potential;
        }
        if national.len() < MIN_NSN || national.len() > MAX_NSN {
            return INVALID;
        }
        // The country code is the prefix parsed again: its digits were checked above.
        if prefix.as_deref().map(str::parse::<u16>) != Some(Ok(code)) {
            return None;
        }
        // NationalNumber: leading zeros and a value below 2^56 (else `TooLong`).
        let zeros = national.bytes().take_while(|&b| b == b'0').count();
        match national[zeros..].parse::<u64>() {
            Ok(v) if v < 1 << 56 => {}
            _ => return INVALID,
        }

        // validator::is_valid_with: the region among the code's, then its number types.
        let valid = match self.source_for(&national)? {
            Some((_, Some(known))) => known,
            Some((slot, None)) => self.compiled(slot)?.known_type(&national),
            None => false,
        };
        Some(Fast::Done(valid.then(|| {
            let code = decimal(code);
            let mut e164 = String::with_capacity(1 + code.len() + national.len());
            e164.push('+');
            e164.push_str(&code);
            e164.push_str(&national);
            e164
        })))
    }

    /// The crate's `helper::national_number` (its national string only). `None`: delegate.
    fn national_number(&self, meta: &Meta, home: &Compiled, national: &str) -> Option<String> {
        let Some(parsing) = &home.national_prefix_for_parsing else {
            return Some(match meta.national_prefix {
                Some(p) if national.starts_with(p) => national[p.len()..].to_string(),
                _ => national.to_string(),
            });
        };
        let Some(m) = parsing.find(national) else {
            return Some(national.to_string());
        };
        if m.start() != 0 {
            return Some(national.to_string());
        }
        let end = m.end();
        let viable = home.general.is_match(national);
        let caps = parsing.captures(national)?;
        let first = caps.get(1);
        let last = caps.get(caps.len() - 1);
        match meta.national_prefix_transform_rule {
            Some(transform) if last.is_some() => {
                let transformed = parsing.replace(national, transform).into_owned();
                if viable && !home.general.is_match(&transformed) {
                    return Some(national.to_string());
                }
                // The crate unwraps the first group here; let it decide when there is none.
                first?;
                Some(transformed)
            }
            _ => {
                if viable && !home.general.is_match(national) {
                    return Some(national.to_string());
                }
                Some(national[end..].to_string())
            }
        }
    }

    /// The crate's `validator::source_for`: which of the code's regions the number belongs
    /// to, with `Some(true)` when that was decided by the region's number types (the
    /// validity check would only repeat it). Outer `None`: delegate.
    fn source_for(&self, national: &str) -> Option<Option<(usize, Option<bool>)>> {
        if self.group.len() == 1 {
            let id = REGIONS[self.group[0].0].id;
            // A single region other than "001" must be a known country id.
            let known = id == "001" || self.known_ids[0];
            return Some(known.then_some((0, None)));
        }
        for slot in 0..self.group.len() {
            let c = self.compiled(slot)?;
            let (hit, typed) = match &c.leading_digits {
                Some(re) => (re.is_match(national), None),
                None => (c.known_type(national), Some(true)),
            };
            if hit {
                // The crate unwraps the region's id as a country id.
                if !self.known_ids[slot] {
                    return None;
                }
                return Some(Some((slot, typed)));
            }
        }
        Some(None)
    }
}

#[cfg(test)]
mod tests;
