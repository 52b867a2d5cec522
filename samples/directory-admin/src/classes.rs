//! The provider's WMI classes, and how a directory [`Entry`] becomes an instance and back.
//!
//! `Winprov_DirectoryEntry` (key `Name`; `Addresses` as `"ip:port"` strings; `Comment`;
//! `Data`) mirrors one entry of the directory file. `Winprov_DirectoryChanged` is the event
//! fired when the file changes, with the number of entries it then holds.

use crate::identity::{CHANGED_EVENT_CLASS, ENTRY_CLASS};
use email_directory_file::{Entry, validate_name, validate_value};
use std::net::SocketAddr;
use winprov_wbem::{HResult, Instance, Value};

/// The instance of `Winprov_DirectoryEntry` for `entry`.
pub fn entry_to_instance(entry: &Entry) -> Instance {
    let addresses = entry.addresses.iter().map(SocketAddr::to_string).collect();
    let text = |value: &Option<String>| value.clone().map_or(Value::Null, Value::Str);
    Instance::new(ENTRY_CLASS)
        .with("Name", Value::Str(entry.name.clone()))
        .with("Addresses", Value::StrArray(addresses))
        .with("Comment", text(&entry.comment))
        .with("Data", text(&entry.data))
}

/// The entry an instance describes: `WBEM_E_INVALID_CLASS` for another class,
/// `WBEM_E_INVALID_PARAMETER` for a missing or invalid name, address or value,
/// `WBEM_E_TYPE_MISMATCH` for a property of the wrong type.
pub fn entry_from_instance(instance: &Instance) -> Result<Entry, HResult> {
    if !instance.class().eq_ignore_ascii_case(ENTRY_CLASS) {
        return Err(HResult::WBEM_E_INVALID_CLASS);
    }
    let name = match instance.get("Name") {
        Some(Value::Str(name)) => name.clone(),
        None | Some(Value::Null) => return Err(HResult::WBEM_E_INVALID_PARAMETER),
        Some(_) => return Err(HResult::WBEM_E_TYPE_MISMATCH),
    };
    validate_name(&name).map_err(|_| HResult::WBEM_E_INVALID_PARAMETER)?;
    let addresses = match instance.get("Addresses") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::StrArray(addresses)) => addresses
            .iter()
            .map(|text| text.parse::<SocketAddr>())
            .collect::<Result<_, _>>()
            .map_err(|_| HResult::WBEM_E_INVALID_PARAMETER)?,
        Some(_) => return Err(HResult::WBEM_E_TYPE_MISMATCH),
    };
    let text = |property: &str| -> Result<Option<String>, HResult> {
        match instance.get(property) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Str(text)) if text.is_empty() => Ok(None),
            Some(Value::Str(text)) => {
                validate_value(text).map_err(|_| HResult::WBEM_E_INVALID_PARAMETER)?;
                Ok(Some(text.clone()))
            }
            Some(_) => Err(HResult::WBEM_E_TYPE_MISMATCH),
        }
    };
    Ok(Entry {
        name,
        addresses,
        comment: text("Comment")?,
        data: text("Data")?,
    })
}

/// The object path of the entry named `name`: `Winprov_DirectoryEntry.Name="…"`, with `\` and
/// `"` escaped.
pub fn entry_path(name: &str) -> String {
    let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{ENTRY_CLASS}.Name=\"{escaped}\"")
}

/// The name an entry's object path gives (`Winprov_DirectoryEntry.Name="…"` or
/// `Winprov_DirectoryEntry="…"`, the class name in any case, a `\\server\namespace:` prefix
/// allowed): `WBEM_E_INVALID_OBJECT_PATH` for anything else, `WBEM_E_INVALID_CLASS` for a path
/// of another class.
pub fn entry_name(path: &str) -> Result<String, HResult> {
    // A namespace prefix ends at the last ':' before the key values.
    let head = path.find('"').map_or(path, |quote| &path[..quote]);
    let relative = head.rfind(':').map_or(path, |colon| &path[colon + 1..]);
    let (class, keys) = relative
        .split_once(['.', '='])
        .ok_or(HResult::WBEM_E_INVALID_OBJECT_PATH)?;
    if !class.eq_ignore_ascii_case(ENTRY_CLASS) {
        return Err(HResult::WBEM_E_INVALID_CLASS);
    }
    let quoted = match relative.as_bytes()[class.len()] {
        b'=' => keys,
        _ => {
            let (key, value) = keys
                .split_once('=')
                .ok_or(HResult::WBEM_E_INVALID_OBJECT_PATH)?;
            if !key.trim().eq_ignore_ascii_case("Name") {
                return Err(HResult::WBEM_E_INVALID_OBJECT_PATH);
            }
            value
        }
    };
    let inner = quoted
        .trim()
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .ok_or(HResult::WBEM_E_INVALID_OBJECT_PATH)?;
    let mut name = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => name.push(chars.next().ok_or(HResult::WBEM_E_INVALID_OBJECT_PATH)?),
            '"' => return Err(HResult::WBEM_E_INVALID_OBJECT_PATH),
            c => name.push(c),
        }
    }
    Ok(name)
}

/// The event fired when the directory file changed: it now holds `entries` entries.
pub fn changed_event(entries: usize) -> Instance {
    Instance::new(CHANGED_EVENT_CLASS).with(
        "Entries",
        Value::U32(u32::try_from(entries).unwrap_or(u32::MAX)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_with_escapes() {
        for name in ["alice@example.org", r#"o"dd\@x.y"#, "a@b", "sip:bob@x.y"] {
            assert_eq!(entry_name(&entry_path(name)).as_deref(), Ok(name));
        }
        assert_eq!(
            entry_name(r#"\\.\root\winprov:WINPROV_DIRECTORYENTRY="a@b""#).as_deref(),
            Ok("a@b")
        );
        for bad in [
            "",
            "Winprov_DirectoryEntry",
            r#"Winprov_DirectoryEntry.Name=a@b"#,
            r#"Winprov_DirectoryEntry.Other="a@b""#,
            r#"Winprov_DirectoryEntry.Name="a"b""#,
            r#"Winprov_DirectoryEntry.Name="a\""#,
        ] {
            assert_eq!(
                entry_name(bad),
                Err(HResult::WBEM_E_INVALID_OBJECT_PATH),
                "{bad}"
            );
        }
        assert_eq!(
            entry_name(r#"Other.Name="a@b""#),
            Err(HResult::WBEM_E_INVALID_CLASS)
        );
    }

    #[test]
    fn instances_round_trip_and_bad_ones_get_their_codes() {
        let mut entry = Entry::new("alice@example.org");
        entry.addresses = vec![
            "192.0.2.1:25".parse().unwrap(),
            "[2001:db8::1]:587".parse().unwrap(),
        ];
        entry.comment = Some("mail".into());
        assert_eq!(entry_from_instance(&entry_to_instance(&entry)), Ok(entry));
        let base = Instance::new(ENTRY_CLASS).with("Name", Value::Str("a@b".into()));
        let cases = [
            (Instance::new("Other"), HResult::WBEM_E_INVALID_CLASS),
            (
                Instance::new(ENTRY_CLASS),
                HResult::WBEM_E_INVALID_PARAMETER,
            ),
            (
                base.clone().with("Name", Value::U32(1)),
                HResult::WBEM_E_TYPE_MISMATCH,
            ),
            (
                base.clone().with("Name", Value::Str("nobody".into())),
                HResult::WBEM_E_INVALID_PARAMETER,
            ),
            (
                base.clone()
                    .with("Addresses", Value::StrArray(vec!["x".into()])),
                HResult::WBEM_E_INVALID_PARAMETER,
            ),
            (
                base.clone()
                    .with("Addresses", Value::Str("1.2.3.4:5".into())),
                HResult::WBEM_E_TYPE_MISMATCH,
            ),
            (
                base.clone()
                    .with("Comment", Value::Str("two\nlines".into())),
                HResult::WBEM_E_INVALID_PARAMETER,
            ),
        ];
        for (instance, code) in cases {
            assert_eq!(entry_from_instance(&instance), Err(code), "{instance:?}");
        }
    }
}
