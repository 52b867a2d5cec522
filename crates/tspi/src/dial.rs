//! Dial strings (`lpszDestAddress` of `TSPI_lineMakeCall`), validated before the author sees
//! them (R-TSP-17): a string with characters the line cannot dial fails synchronously, without
//! going off-hook or dialling part of it.
//!
//! The dialable address format (tapi.h "Dialable Addresses"): digits `0-9 A-D * #`, the
//! modifiers `!` (flash), `P`/`T` (pulse/tone), `,` (pause), `W` (wait for dial tone), `@` (wait
//! for quiet answer), `$` (wait for billing tone), `?` (prompt), then optionally `;` (more to
//! dial later), `|` subaddress, `^` name, and a line break ending the string. Spaces, `-`, `.`,
//! `(`, `)`, `/`, `+` are formatting the dialler skips.

use crate::flags::DevCapFlags;
use winprov_core::LineErr;

/// One dialable element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialElement {
    /// `0-9`, `A-D`, `*`, `#`.
    Digit(char),
    /// `!`: a hook flash.
    Flash,
    /// `P`: pulse dialling from here.
    Pulse,
    /// `T`: tone dialling from here.
    Tone,
    /// `,`: a pause.
    Pause,
    /// `W`: wait for dial tone.
    WaitForDialtone,
    /// `@`: wait for quiet answer.
    WaitForQuiet,
    /// `$`: wait for the billing tone.
    WaitForBilling,
    /// `?`: prompt the user.
    Prompt,
}

/// A validated dial string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialString {
    raw: String,
    elements: Vec<DialElement>,
    international: bool,
    incomplete: bool,
    subaddress: Option<String>,
    name: Option<String>,
}

impl DialString {
    /// Parses `raw` and checks it against what the line can dial: `dev_cap_flags` are its
    /// `LINEDEVCAPFLAGS_*` (`DIALBILLING`, `DIALQUIET` and `DIALDIALTONE` allow `$`, `@` and
    /// `W`), `dial_prompt` whether `?` is allowed.
    pub fn parse(
        raw: &str,
        dev_cap_flags: DevCapFlags,
        dial_prompt: bool,
    ) -> Result<Self, LineErr> {
        let end = raw.find(['\r', '\n']).unwrap_or(raw.len());
        let text = &raw[..end];
        let (number, name) = match text.split_once('^') {
            Some((number, name)) => (number, Some(name.to_string())),
            None => (text, None),
        };
        let (number, subaddress) = match number.split_once('|') {
            Some((number, sub)) => (number, Some(sub.to_string())),
            None => (number, None),
        };
        let mut elements = Vec::new();
        let mut international = false;
        let mut incomplete = false;
        for (position, ch) in number.char_indices() {
            if incomplete {
                // `;` ends the dialable part.
                return Err(LineErr::LINEERR_INVALADDRESS);
            }
            let element = match ch.to_ascii_uppercase() {
                digit @ ('0'..='9' | 'A'..='D' | '*' | '#') => DialElement::Digit(digit),
                '!' => DialElement::Flash,
                'P' => DialElement::Pulse,
                'T' => DialElement::Tone,
                ',' => DialElement::Pause,
                'W' if dev_cap_flags.contains(DevCapFlags::DIALDIALTONE) => {
                    DialElement::WaitForDialtone
                }
                'W' => return Err(LineErr::LINEERR_DIALDIALTONE),
                '@' if dev_cap_flags.contains(DevCapFlags::DIALQUIET) => DialElement::WaitForQuiet,
                '@' => return Err(LineErr::LINEERR_DIALQUIET),
                '$' if dev_cap_flags.contains(DevCapFlags::DIALBILLING) => {
                    DialElement::WaitForBilling
                }
                '$' => return Err(LineErr::LINEERR_DIALBILLING),
                '?' if dial_prompt => DialElement::Prompt,
                '?' => return Err(LineErr::LINEERR_DIALPROMPT),
                ';' => {
                    incomplete = true;
                    continue;
                }
                '+' if position == 0 || number[..position].trim().is_empty() => {
                    international = true;
                    continue;
                }
                ' ' | '-' | '.' | '(' | ')' | '/' => continue,
                _ => return Err(LineErr::LINEERR_INVALADDRESS),
            };
            elements.push(element);
        }
        if elements.is_empty() && !incomplete {
            return Err(LineErr::LINEERR_INVALADDRESS);
        }
        Ok(Self {
            raw: text.to_string(),
            elements,
            international,
            incomplete,
            subaddress,
            name,
        })
    }

    /// The string as TAPI passed it (up to a line break).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// What to dial, in order.
    pub fn elements(&self) -> &[DialElement] {
        &self.elements
    }

    /// The digits only (`0-9 A-D * #`), e.g. to look a number up.
    pub fn digits(&self) -> String {
        self.elements
            .iter()
            .filter_map(|element| match element {
                DialElement::Digit(digit) => Some(*digit),
                _ => None,
            })
            .collect()
    }

    /// Whether the number started with `+` (canonical, international).
    pub fn is_international(&self) -> bool {
        self.international
    }

    /// Whether it ended with `;`: more digits follow with `TSPI_lineDial`.
    pub fn is_incomplete(&self) -> bool {
        self.incomplete
    }

    /// The ISDN subaddress after `|`.
    pub fn subaddress(&self) -> Option<&str> {
        self.subaddress.as_deref()
    }

    /// The name after `^`.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl std::fmt::Display for DialString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(raw: &str) -> Result<DialString, LineErr> {
        DialString::parse(raw, DevCapFlags::empty(), false)
    }

    #[test]
    fn digits_and_formatting() {
        let dial = plain("+1 (555) 010-4477\r\n").unwrap();
        assert_eq!(dial.digits(), "15550104477");
        assert!(dial.is_international());
        assert!(!dial.is_incomplete());
        assert_eq!(dial.as_str(), "+1 (555) 010-4477");
    }

    #[test]
    fn modifiers_need_the_capability() {
        assert_eq!(plain("9W5551234"), Err(LineErr::LINEERR_DIALDIALTONE));
        assert_eq!(plain("555@1"), Err(LineErr::LINEERR_DIALQUIET));
        assert_eq!(plain("555$1"), Err(LineErr::LINEERR_DIALBILLING));
        assert_eq!(plain("555?"), Err(LineErr::LINEERR_DIALPROMPT));
        let flags = DevCapFlags::DIALDIALTONE | DevCapFlags::DIALQUIET | DevCapFlags::DIALBILLING;
        let dial = DialString::parse("9W555@1$2?", flags, true).unwrap();
        assert_eq!(dial.elements()[1], DialElement::WaitForDialtone);
        assert_eq!(dial.digits(), "955512");
    }

    #[test]
    fn bad_characters_and_empty_strings_are_invalid_addresses() {
        for bad in ["", "   ", "555x", "12;34", "555\u{e9}"] {
            assert_eq!(plain(bad), Err(LineErr::LINEERR_INVALADDRESS), "{bad:?}");
        }
    }

    #[test]
    fn subaddress_name_and_partial_dialling() {
        let dial = plain("5551234|77^Front desk").unwrap();
        assert_eq!(dial.subaddress(), Some("77"));
        assert_eq!(dial.name(), Some("Front desk"));
        let partial = plain("9;").unwrap();
        assert!(partial.is_incomplete());
        assert_eq!(partial.digits(), "9");
    }
}

#[cfg(test)]
#[path = "dial_props.rs"]
mod props;
