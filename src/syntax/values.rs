//! Small value syntaxes of rule files: durations (`500ms`, `1m30s`), rates (`100 per 10s`)
//! and secret references (`${env:NAME}`). Pure functions; the decoder turns their errors
//! into diagnostics.

use std::time::Duration;

/// The schemes a secret reference may use.
pub const SECRET_SCHEMES: &[&str] = &["env", "file", "vault", "secret"];

/// Duration units, longest first so `ms` wins over `m`.
const UNITS: &[(&str, u64)] = &[
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses `500ms`, `10s`, `1.5s`, `1m`, `2h` or a sequence like `1m30s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut rest = text;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        if number.is_empty() {
            return Err(format!("expected a number at `{rest}`"));
        }
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{number}` is not a number"))?;
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!("`{number}` has no unit"));
        }
        let Some((_, per)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(format!("unknown unit `{unit}`"));
        };
        let add = value * *per as f64;
        if !add.is_finite() || add > u64::MAX as f64 {
            return Err("duration is too long".into());
        }
        nanos += add.round() as u128;
        rest = after;
    }
    let nanos = u64::try_from(nanos).map_err(|_| "duration is too long".to_string())?;
    Ok(Duration::from_nanos(nanos))
}

/// Parses `100 per 10s`, `100/10s`, `5 per second`. Returns (requests, period).
pub fn parse_rate(text: &str) -> Result<(u32, Duration), String> {
    let text = text.trim();
    let (count, per) = if let Some((a, b)) = text.split_once(" per ") {
        (a, b)
    } else if let Some((a, b)) = text.split_once('/') {
        (a, b)
    } else {
        return Err("expected `N per DURATION`".into());
    };
    let requests: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("`{}` is not a whole number of requests", count.trim()))?;
    if requests == 0 {
        return Err("the number of requests must be at least 1".into());
    }
    let per = per.trim();
    let period = match per {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => parse_duration(per)?,
    };
    if period.is_zero() {
        return Err("the period must be longer than zero".into());
    }
    Ok((requests, period))
}

/// A problem in a secret reference, with its byte range inside the string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRefError {
    pub start: usize,
    pub end: usize,
    pub message: String,
    pub help: String,
}

/// Checks every `${...}` in `text`. Resolution happens later; this is syntax only.
pub fn check_secret_refs(text: &str) -> Vec<SecretRefError> {
    let mut errors = Vec::new();
    let mut from = 0;
    while let Some(rel) = text[from..].find("${") {
        let start = from + rel;
        let body_start = start + 2;
        let Some(close) = text[body_start..].find('}') else {
            errors.push(SecretRefError {
                start,
                end: text.len(),
                message: "unterminated secret reference".into(),
                help: "close it with `}`, e.g. `${env:API_TOKEN}`".into(),
            });
            break;
        };
        let end = body_start + close + 1;
        let body = &text[body_start..body_start + close];
        if let Some((message, help)) = check_secret_body(body) {
            errors.push(SecretRefError {
                start,
                end,
                message,
                help,
            });
        }
        from = end;
    }
    errors
}

fn check_secret_body(body: &str) -> Option<(String, String)> {
    let forms = "use `${env:NAME}`, `${file:PATH}`, `${vault:MOUNT/PATH#key}` or `${secret:NAME}`";
    let Some((scheme, rest)) = body.split_once(':') else {
        return Some((
            format!("secret reference `${{{body}}}` has no scheme"),
            forms.to_string(),
        ));
    };
    if !SECRET_SCHEMES.contains(&scheme) {
        let help = match super::decode::closest(scheme, SECRET_SCHEMES) {
            Some(s) => format!("did you mean `{s}`? ({forms})"),
            None => forms.to_string(),
        };
        return Some((format!("unknown secret scheme `{scheme}`"), help));
    }
    match scheme {
        "env" => {
            let valid = rest
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            (!valid).then(|| {
                (
                    format!("`{rest}` is not a valid environment variable name"),
                    "names are letters, digits and `_`, not starting with a digit, e.g. \
                     `${env:HUBSPOT_TOKEN}`"
                        .to_string(),
                )
            })
        }
        "file" => rest.trim().is_empty().then(|| {
            (
                "`${file:...}` needs a path".to_string(),
                "e.g. `${file:/run/secrets/api_token}`".to_string(),
            )
        }),
        // KV v2: the mount, the secret's path under it, and the key (`GET /v1/MOUNT/data/PATH`).
        "vault" => crate::secrets::SecretRef::parse(&format!("${{{body}}}"))
            .err()
            .map(|_| {
                (
                    format!("`${{vault:{rest}}}` needs a mount, a path and a key"),
                    "write `${vault:MOUNT/PATH#key}`, e.g. `${vault:secret/jamf-bootstrap-prod#encryption_key}`"
                        .to_string(),
                )
            }),
        _ if rest.is_empty() => Some((
            "`${secret:}` needs a name".to_string(),
            "e.g. `${secret:hubspot.refresh_token}`".to_string(),
        )),
        _ => {
            let valid = !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'));
            (!valid).then(|| {
                (
                    format!("`{rest}` is not a valid stored secret name"),
                    "names are letters, digits, `_`, `.`, `-` and `/`, e.g. \
                     `${secret:hubspot.refresh_token}`"
                        .to_string(),
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10 sec").is_err());
        assert!(parse_duration("ten s").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(
            parse_rate("100 per 10s"),
            Ok((100, Duration::from_secs(10)))
        );
        assert_eq!(parse_rate("4/1s"), Ok((4, Duration::from_secs(1))));
        assert_eq!(parse_rate("5 per second"), Ok((5, Duration::from_secs(1))));
        assert!(parse_rate("0 per 1s").is_err());
        assert!(parse_rate("100 per 0s").is_err());
        assert!(parse_rate("100").is_err());
        assert!(parse_rate("lots per 1s").is_err());
    }

    #[test]
    fn secret_refs() {
        for ok in [
            "${env:TOKEN}",
            "Bearer ${env:_T1}",
            "${file:/run/secrets/x}",
            "${vault:secret/x#token}",
            "${secret:hubspot.refresh_token}",
            "no references",
        ] {
            assert_eq!(check_secret_refs(ok), vec![], "{ok}");
        }
        assert_eq!(
            check_secret_refs("${vault:secret#k}")[0].message,
            "`${vault:secret#k}` needs a mount, a path and a key"
        );
        let errs = check_secret_refs("a ${evn:X} ${env:1X} ${vault:p} ${x");
        let messages: Vec<_> = errs.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unknown secret scheme `evn`",
                "`1X` is not a valid environment variable name",
                "`${vault:p}` needs a mount, a path and a key",
                "unterminated secret reference"
            ]
        );
        assert_eq!((errs[0].start, errs[0].end), (2, 10));
        assert!(errs[0].help.contains("did you mean `env`?"));
        assert_eq!(
            check_secret_refs("${TOKEN}")[0].message,
            "secret reference `${TOKEN}` has no scheme"
        );
    }
}
