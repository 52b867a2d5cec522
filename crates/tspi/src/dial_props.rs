//! Property tests of dial-string validation (R-TSP-17) over arbitrary strings and every
//! combination of the capabilities it depends on (`LINEDEVCAPFLAGS_DIALBILLING`, `_DIALQUIET`,
//! `_DIALDIALTONE`, the prompt): the outcome is that of the dialable address format in the
//! module documentation, read character by character; an accepted string only holds
//! characters the line can dial, more capabilities never refuse a string fewer accepted, and
//! parsing what an accepted string renders gives it back.

use super::*;
use crate::flags::DevCapFlags;
use crate::var::props::config;
use proptest::collection::vec;
use proptest::prelude::*;
use winprov_bindings::tapi;

const CAPABILITY_FLAGS: [u32; 3] = [
    tapi::LINEDEVCAPFLAGS_DIALBILLING,
    tapi::LINEDEVCAPFLAGS_DIALQUIET,
    tapi::LINEDEVCAPFLAGS_DIALDIALTONE,
];

/// What parsing depends on of a line's capabilities.
#[derive(Clone, Debug)]
struct LineCaps {
    dev_cap_flags: u32,
    dial_prompt: bool,
}

impl DialString {
    fn parse_for(raw: &str, caps: &LineCaps) -> Result<Self, LineErr> {
        Self::parse(
            raw,
            DevCapFlags::from_bits_retain(caps.dev_cap_flags),
            caps.dial_prompt,
        )
    }
}

fn caps() -> impl Strategy<Value = LineCaps> {
    (0u32..8, any::<u32>(), any::<bool>(), any::<bool>()).prop_map(
        |(chosen, noise, other_bits, dial_prompt)| {
            let mut flags = CAPABILITY_FLAGS
                .iter()
                .enumerate()
                .filter(|(i, _)| chosen & (1 << i) != 0)
                .fold(0, |flags, (_, flag)| flags | flag);
            if other_bits {
                // Unrelated capability bits change nothing.
                flags |= noise & !CAPABILITY_FLAGS.iter().fold(0, |a, b| a | b);
            }
            LineCaps {
                dev_cap_flags: flags,
                dial_prompt,
            }
        },
    )
}

/// Mostly characters the format gives a meaning to, in both cases, and any others.
fn dial_text() -> impl Strategy<Value = String> {
    let meaningful: Vec<char> = "0123456789ABCDabcd*#!PpTt,Ww@$?;+ -.()/|^\r\nxE\u{e9}\t"
        .chars()
        .collect();
    let ch = prop_oneof![
        8 => proptest::sample::select(meaningful),
        1 => any::<char>(),
    ];
    vec(ch, 0..16).prop_map(String::from_iter)
}

/// What the dialable address format says of `raw` on a line with `caps`.
struct Expected {
    elements: Vec<DialElement>,
    international: bool,
    incomplete: bool,
    subaddress: Option<String>,
    name: Option<String>,
    raw: String,
}

fn model(raw: &str, caps: &LineCaps) -> Result<Expected, LineErr> {
    let has = |flag: u32| caps.dev_cap_flags & flag != 0;
    // A line break ends the string; `^` starts the name, `|` the subaddress.
    let text: String = raw
        .chars()
        .take_while(|&c| c != '\r' && c != '\n')
        .collect();
    let (before_name, name) = match text.find('^') {
        Some(at) => (&text[..at], Some(text[at + 1..].to_string())),
        None => (&text[..], None),
    };
    let (number, subaddress) = match before_name.find('|') {
        Some(at) => (&before_name[..at], Some(before_name[at + 1..].to_string())),
        None => (before_name, None),
    };
    let mut elements = Vec::new();
    let mut international = false;
    let mut incomplete = false;
    let mut only_spaces_so_far = true;
    for c in number.chars() {
        if incomplete {
            // Nothing may follow `;` in the dialable number.
            return Err(LineErr::LINEERR_INVALADDRESS);
        }
        let element = match c {
            '0'..='9' | 'A'..='D' | '*' | '#' => Some(DialElement::Digit(c)),
            'a'..='d' => Some(DialElement::Digit(c.to_ascii_uppercase())),
            '!' => Some(DialElement::Flash),
            'P' | 'p' => Some(DialElement::Pulse),
            'T' | 't' => Some(DialElement::Tone),
            ',' => Some(DialElement::Pause),
            'W' | 'w' if has(tapi::LINEDEVCAPFLAGS_DIALDIALTONE) => {
                Some(DialElement::WaitForDialtone)
            }
            'W' | 'w' => return Err(LineErr::LINEERR_DIALDIALTONE),
            '@' if has(tapi::LINEDEVCAPFLAGS_DIALQUIET) => Some(DialElement::WaitForQuiet),
            '@' => return Err(LineErr::LINEERR_DIALQUIET),
            '$' if has(tapi::LINEDEVCAPFLAGS_DIALBILLING) => Some(DialElement::WaitForBilling),
            '$' => return Err(LineErr::LINEERR_DIALBILLING),
            '?' if caps.dial_prompt => Some(DialElement::Prompt),
            '?' => return Err(LineErr::LINEERR_DIALPROMPT),
            ';' => {
                incomplete = true;
                None
            }
            // `+` opens a canonical number: only spaces may come before it.
            '+' if only_spaces_so_far => {
                international = true;
                None
            }
            ' ' | '-' | '.' | '(' | ')' | '/' => None,
            _ => return Err(LineErr::LINEERR_INVALADDRESS),
        };
        only_spaces_so_far &= c == ' ';
        elements.extend(element);
    }
    if elements.is_empty() && !incomplete {
        return Err(LineErr::LINEERR_INVALADDRESS);
    }
    Ok(Expected {
        elements,
        international,
        incomplete,
        subaddress,
        name,
        raw: text,
    })
}

/// Whether `c` may appear in the dialable number of a line with `caps`.
fn dialable(c: char, caps: &LineCaps) -> bool {
    let has = |flag: u32| caps.dev_cap_flags & flag != 0;
    match c.to_ascii_uppercase() {
        '0'..='9' | 'A'..='D' | '*' | '#' | '!' | 'P' | 'T' | ',' | ';' | '+' => true,
        ' ' | '-' | '.' | '(' | ')' | '/' => true,
        'W' => has(tapi::LINEDEVCAPFLAGS_DIALDIALTONE),
        '@' => has(tapi::LINEDEVCAPFLAGS_DIALQUIET),
        '$' => has(tapi::LINEDEVCAPFLAGS_DIALBILLING),
        '?' => caps.dial_prompt,
        _ => false,
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn parse_follows_the_dialable_address_format(raw in dial_text(), caps in caps()) {
        let parsed = DialString::parse_for(&raw, &caps);
        match model(&raw, &caps) {
            Err(error) => prop_assert_eq!(parsed, Err(error)),
            Ok(expected) => {
                let parsed = parsed.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                prop_assert_eq!(parsed.elements(), &expected.elements[..]);
                prop_assert_eq!(parsed.is_international(), expected.international);
                prop_assert_eq!(parsed.is_incomplete(), expected.incomplete);
                prop_assert_eq!(parsed.subaddress(), expected.subaddress.as_deref());
                prop_assert_eq!(parsed.name(), expected.name.as_deref());
                prop_assert_eq!(parsed.as_str(), expected.raw.as_str());
            }
        }
    }

    #[test]
    fn accepted_strings_hold_only_what_the_line_dials_and_parse_back(
        raw in dial_text(),
        caps in caps(),
        tail in dial_text(),
    ) {
        let Ok(parsed) = DialString::parse_for(&raw, &caps) else {
            return Ok(());
        };
        let number = parsed.as_str().split(['|', '^']).next().unwrap_or_default();
        for c in number.chars() {
            prop_assert!(dialable(c, &caps), "{:?} accepted in {:?}", c, raw);
        }
        let digits: String = number
            .chars()
            .map(|c| c.to_ascii_uppercase())
            .filter(|c| matches!(c, '0'..='9' | 'A'..='D' | '*' | '#'))
            .collect();
        prop_assert_eq!(parsed.digits(), digits);
        // What it renders parses back to it, and anything after a line break is ignored.
        let rendered = parsed.to_string();
        prop_assert_eq!(DialString::parse_for(&rendered, &caps), Ok(parsed.clone()));
        prop_assert_eq!(
            DialString::parse_for(&format!("{rendered}\r\n{tail}"), &caps),
            Ok(parsed)
        );
    }

    #[test]
    fn more_capabilities_never_refuse_what_fewer_accept(raw in dial_text(), caps in caps()) {
        let all = LineCaps {
            dev_cap_flags: caps.dev_cap_flags | CAPABILITY_FLAGS.iter().fold(0, |a, b| a | b),
            dial_prompt: true,
        };
        if let Ok(parsed) = DialString::parse_for(&raw, &caps) {
            prop_assert_eq!(DialString::parse_for(&raw, &all), Ok(parsed));
        }
    }
}
