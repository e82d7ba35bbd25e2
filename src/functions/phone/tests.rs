use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};

use phonenumber::metadata::{DATABASE, Descriptor};
use phonenumber::{Mode, country::Id};
use proptest::prelude::*;

use super::*;

/// What the phonenumber crate says: parse for the region, check, format as E.164. A panic
/// inside the crate is `Err`.
fn reference(region: &str, text: &str) -> Result<Option<String>, ()> {
    let id: Id = region.parse().map_err(|_| ())?;
    catch_unwind(AssertUnwindSafe(|| {
        let number = phonenumber::parse(Some(id), text).ok()?;
        if !phonenumber::is_valid(&number) {
            return None;
        }
        let mut out = String::new();
        write!(out, "{}", number.format().mode(Mode::E164)).ok()?;
        Some(out)
    }))
    .map_err(|_| ())
}

/// One plan per region for the whole test binary: compiling patterns is the slow part.
fn numbering(region: &str) -> &'static Numbering {
    static ALL: std::sync::OnceLock<Vec<(&'static str, Numbering)>> = std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| {
        REGIONS_TRIED
            .iter()
            .map(|r| {
                (
                    *r,
                    Numbering::new(r).unwrap_or_else(|| panic!("no metadata for {r}")),
                )
            })
            .collect()
    });
    &all.iter().find(|(r, _)| *r == region).unwrap().1
}

/// The fast path agrees with the crate wherever it answers; how often it answered.
fn agrees(n: &Numbering, region: &str, text: &str) -> Result<bool, String> {
    match n.e164(text) {
        Fast::Delegate => Ok(false),
        Fast::Done(got) => match reference(region, text) {
            Ok(want) if want == got => Ok(true),
            want => Err(format!(
                "{region} {text:?}: fast path {got:?}, crate {want:?}"
            )),
        },
    }
}

const REGIONS_TRIED: &[&str] = &[
    "US", "CA", "AG", "DE", "GB", "FR", "IT", "BR", "NZ", "JP", "AR", "MX", "RU", "KZ", "IN", "CN",
    "AU", "SG", "CH", "AT", "NL", "ES", "PL", "ZA", "KR", "IL", "UA", "HU", "FI", "IE",
];

/// Example numbers of every type of a region, written the ways people write them.
fn spellings(code: u16, national_prefix: Option<&str>, idd: &str, example: &str) -> Vec<String> {
    let np = national_prefix.unwrap_or("");
    let spaced: String = example
        .chars()
        .enumerate()
        .flat_map(|(i, c)| (i > 0 && i % 3 == 0).then_some(' ').into_iter().chain([c]))
        .collect();
    vec![
        example.to_string(),
        format!("{np}{example}"),
        format!("+{code} {spaced}"),
        format!("+{code}{example}"),
        format!("{idd}{code}{example}"),
        format!("{code}{example}"),
        format!(
            "({np}{}) {}",
            &example[..example.len().min(3)],
            &example[example.len().min(3)..]
        ),
        format!("{code}-{}", spaced.replace(' ', "-")),
        format!("+{code}-{}", spaced.replace(' ', ".")),
        format!("+{code}({np}){example}"),
        example[..example.len() - 1].to_string(),
        format!("{example}9"),
        format!("{example}  "),
        format!("++{code} {example}"),
    ]
}

#[test]
fn examples_of_every_type_agree_with_the_crate() {
    let mut answered = 0;
    let mut total = 0;
    for region in REGIONS_TRIED {
        let n = numbering(region);
        let meta = DATABASE.by_id(*region).unwrap();
        let d = meta.descriptors();
        let descs: Vec<&Descriptor> = [
            Some(d.general()),
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let idd = meta
            .preferred_international_prefix()
            .unwrap_or("00")
            .to_string();
        for desc in descs {
            let Some(example) = desc.example() else {
                continue;
            };
            for text in spellings(meta.country_code(), meta.national_prefix(), &idd, example) {
                total += 1;
                answered += usize::from(agrees(n, region, &text).unwrap());
            }
        }
    }
    // Simple spellings of the region's own numbers take the fast path.
    assert!(answered * 10 >= total * 7, "{answered} of {total} answered");
}

#[test]
fn lead_spellings_take_the_fast_path() {
    let n = numbering("US");
    for text in [
        "(415) 555-0132",
        "415-555-0132",
        "415.555.0132",
        "+1 415 555 0132",
        "4155550132",
        "1-415-555-0132",
        "+1-604-555-0132",
        "555-01",
        "",
        "1",
        "+",
        "00",
    ] {
        assert!(agrees(n, "US", text).unwrap(), "{text:?} was delegated");
    }
    assert_eq!(
        n.e164("(415) 555-0132"),
        Fast::Done(Some("+14155550132".into()))
    );
    // Canada shares +1: found among the code's regions as the crate does.
    assert_eq!(
        n.e164("(604) 555-0132"),
        Fast::Done(Some("+16045550132".into()))
    );
    // Letters, other country codes: the crate.
    assert_eq!(n.e164("tel:+1-415-555-0132"), Fast::Delegate);
    assert_eq!(n.e164("+44 20 7946 0958"), Fast::Delegate);
    assert_eq!(n.e164("011 44 20 7946 0958"), Fast::Delegate);
}

/// Strings of digits and the characters of phone numbers, with a few the fast path leaves
/// to the crate.
fn phoneish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => "[0-9]{1,4}",
        3 => Just(" ".to_string()),
        2 => Just("-".to_string()),
        1 => Just(".".to_string()),
        1 => Just("(".to_string()),
        1 => Just(")".to_string()),
        2 => Just("+".to_string()),
        1 => Just("+1".to_string()),
        1 => Just("011".to_string()),
        1 => Just("00".to_string()),
        1 => Just(" ext 12".to_string()),
        1 => Just("x".to_string()),
        1 => Just("#".to_string()),
        1 => Just(";".to_string()),
        1 => Just("tel:".to_string()),
        1 => Just("a".to_string()),
        1 => Just("\u{ff11}".to_string()),
    ];
    proptest::collection::vec(piece, 0..9).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn generated_numbers_agree_with_the_crate(
        text in phoneish(),
        region in proptest::sample::select(REGIONS_TRIED),
    ) {
        let n = numbering(region);
        prop_assert!(agrees(n, region, &text).is_ok(), "{}", agrees(n, region, &text).unwrap_err());
    }

    #[test]
    fn viable_is_the_crates_on_simple_input(text in "[0-9 +().-]{0,12}") {
        prop_assert_eq!(viable(&text), phonenumber::is_viable(&text), "{:?}", text);
    }

    #[test]
    fn generated_us_numbers_agree_with_the_crate(
        area in "[2-9][0-9]{2}",
        rest in "[0-9]{7}",
        form in 0usize..8,
    ) {
        let text = match form {
            0 => format!("({area}) {}-{}", &rest[..3], &rest[3..]),
            1 => format!("{area}-{}-{}", &rest[..3], &rest[3..]),
            2 => format!("{area}.{}.{}", &rest[..3], &rest[3..]),
            3 => format!("+1 {area} {} {}", &rest[..3], &rest[3..]),
            4 => format!("{area}{rest}"),
            5 => format!("1-{area}-{}-{}", &rest[..3], &rest[3..]),
            6 => format!("011 1 {area} {rest}"),
            _ => format!("+1{area}{rest}"),
        };
        let n = numbering("US");
        prop_assert_eq!(agrees(n, "US", &text), Ok(true));
    }
}

/// The metadata module as the crate's metadata says it should be.
fn generated_metadata() -> String {
    fn lengths(l: &[u16]) -> String {
        let items: Vec<String> = l.iter().map(u16::to_string).collect();
        format!("&[{}]", items.join(", "))
    }
    fn desc(d: &Descriptor) -> String {
        format!(
            "Desc {{ pattern: {:?}, possible_length: {}, possible_local_length: {} }}",
            d.national_number().as_str(),
            lengths(d.possible_length()),
            lengths(d.possible_local_length()),
        )
    }
    fn opt(s: Option<&str>) -> String {
        s.map_or("None".into(), |s| format!("Some({s:?})"))
    }
    let mut out = String::from(HEADER);
    let mut codes = Vec::new();
    let mut regions = String::new();
    for code in 1..=999u16 {
        let Some(metas) = DATABASE.by_code(&code) else {
            continue;
        };
        let ids: Vec<&str> = metas.iter().map(|m| m.id()).collect();
        assert_eq!(DATABASE.region(&code), Some(ids), "region order of +{code}");
        codes.push(code.to_string());
        for m in metas {
            let d = m.descriptors();
            // In the order of the crate's `number_type`.
            let types = [
                d.premium_rate(),
                d.toll_free(),
                d.shared_cost(),
                d.voip(),
                d.personal_number(),
                d.pager(),
                d.uan(),
                d.voicemail(),
                d.fixed_line(),
                d.mobile(),
            ];
            let types: Vec<String> = types
                .iter()
                .map(|t| t.map_or("None".into(), |t| format!("Some({})", desc(t))))
                .collect();
            writeln!(
                regions,
                "    Meta {{\n        id: {:?},\n        code: {},\n        international_prefix: {},\n        national_prefix: {},\n        national_prefix_for_parsing: {},\n        national_prefix_transform_rule: {},\n        leading_digits: {},\n        general: {},\n        types: [\n            {},\n        ],\n    }},",
                m.id(),
                code,
                opt(m.international_prefix().map(|r| r.as_str())),
                opt(m.national_prefix()),
                opt(m.national_prefix_for_parsing().map(|r| r.as_str())),
                opt(m.national_prefix_transform_rule()),
                opt(m.leading_digits().map(|r| r.as_str())),
                desc(d.general()),
                types.join(",\n            "),
            )
            .unwrap();
        }
    }
    writeln!(
        out,
        "pub(super) static CODES: &[u16] = &[{}];\n",
        codes.join(", ")
    )
    .unwrap();
    writeln!(out, "pub(super) static REGIONS: &[Meta] = &[\n{regions}];").unwrap();
    out
}

const HEADER: &str = r#"//! The phonenumber crate's metadata, as much as `normalize_phone` reads, so that a run
//! need not load (and check the patterns of) every country's metadata before its first
//! number. Generated; a test fails when it differs from the crate's. To regenerate:
//! `UPDATE_PHONE_METADATA=1 cargo test --lib functions::phone::tests::metadata`.
#![allow(clippy::all)]

/// A number type's pattern and lengths (`phonenumber::metadata::Descriptor`).
pub(super) struct Desc {
    pub pattern: &'static str,
    pub possible_length: &'static [u16],
    pub possible_local_length: &'static [u16],
}

/// A region's numbering plan (`phonenumber::Metadata`).
pub(super) struct Meta {
    pub id: &'static str,
    pub code: u16,
    pub international_prefix: Option<&'static str>,
    pub national_prefix: Option<&'static str>,
    pub national_prefix_for_parsing: Option<&'static str>,
    pub national_prefix_transform_rule: Option<&'static str>,
    pub leading_digits: Option<&'static str>,
    pub general: Desc,
    /// Premium rate, toll free, shared cost, VoIP, personal, pager, UAN, voicemail, fixed
    /// line, mobile.
    pub types: [Option<Desc>; 10],
}

/// Every country code with metadata, ascending.
"#;

#[test]
fn metadata_is_the_crates() {
    let want = generated_metadata();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/functions/phone/metadata.rs"
    );
    if std::env::var_os("UPDATE_PHONE_METADATA").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "src/functions/phone/metadata.rs differs from the phonenumber crate's metadata; \
         regenerate it with UPDATE_PHONE_METADATA=1 cargo test --lib functions::phone::tests::metadata"
    );
}

#[test]
fn country_codes_in_decimal() {
    for n in (0..=u16::MAX)
        .step_by(7)
        .chain([0, 1, 9, 10, 99, 100, 999, 1000, u16::MAX])
    {
        assert_eq!(super::decimal(n), n.to_string());
    }
}
