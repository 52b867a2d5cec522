//! The provider's WMI classes, each described once, and how a directory [`Entry`] becomes an
//! instance and back.
//!
//! - `Winprov_DirectoryEntry` (key `Name`; `Addresses` as `"ip:port"` strings; `Comment`;
//!   `Data`) mirrors one entry of the directory file; its static method `Count` answers the
//!   number of entries.
//! - `Winprov_DirectoryChanged` is the event fired when the file changes, with the number of
//!   entries it then holds.
//!
//! The descriptions generate the Rust types, their conversions to and from WMI objects, their
//! object paths and the MOF ([`mof`]).
#![allow(non_snake_case, reason = "WMI's names, written once")]

use crate::identity::{CLSID, NAMESPACE, PROVIDER_NAME};
use email_directory_file::{Entry, validate_name, validate_value};
use std::net::SocketAddr;
use winprov_wbem::class::{KeyedClass, WmiClass};
use winprov_wbem::{
    HResult, Hosting, Instance, InstanceRegistration, Mof, Registration, wmi_class,
};

wmi_class! {
    /// One entry of the e-mail directory.
    [dynamic, provider(PROVIDER_NAME), description("An entry of the winprov e-mail directory")]
    class Winprov_DirectoryEntry {
        key {
            /// The e-mail name, `local@domain`.
            [read, description("The e-mail name, local@domain")]
            Name: String,
        }
        properties {
            /// The service's addresses, as `ip:port`.
            [read, write, description("The service's addresses, as ip:port")]
            Addresses: Vec<String>,
            /// A human-readable comment.
            [read, write, description("A human-readable comment")]
            Comment: Option<String>,
            /// Free text returned with the lookup result.
            [read, write, description("Free text returned with the lookup result")]
            Data: Option<String>,
        }
        methods {
            /// How many entries the directory holds.
            [static, implemented, description("The number of entries in the directory")]
            fn Count(CountIn {}) -> CountOut { ReturnValue: u32 };
        }
    }
}

wmi_class! {
    /// The directory file changed.
    [description("The winprov e-mail directory file changed")]
    event class Winprov_DirectoryChanged : "__ExtrinsicEvent" {
        properties {
            /// The number of entries the directory now holds.
            [description("The number of entries the directory now holds")]
            Entries: u32,
        }
    }
}

/// The MOF that registers the provider: the namespace, the classes and the provider's
/// instance, method and event registrations.
pub fn mof() -> Mof {
    Mof::new(NAMESPACE)
        .create_namespace()
        .autorecover()
        .class::<Winprov_DirectoryEntry>()
        .class::<Winprov_DirectoryChanged>()
        .provider(
            Registration::new(PROVIDER_NAME, Hosting::LocalSystem { clsid: CLSID })
                .instances(
                    InstanceRegistration::new()
                        .supports_get()
                        .supports_put()
                        .supports_delete()
                        .supports_enumeration()
                        .query_support_levels(["WQL:UnarySelect"]),
                )
                .methods()
                .events([format!("SELECT * FROM {}", Winprov_DirectoryChanged::NAME)]),
        )
}

impl From<&Entry> for Winprov_DirectoryEntry {
    fn from(entry: &Entry) -> Self {
        Self {
            Name: entry.name.clone(),
            Addresses: entry.addresses.iter().map(SocketAddr::to_string).collect(),
            Comment: entry.comment.clone(),
            Data: entry.data.clone(),
        }
    }
}

impl TryFrom<Winprov_DirectoryEntry> for Entry {
    type Error = HResult;

    /// `WBEM_E_INVALID_PARAMETER` for a name, address or value the directory file cannot hold.
    fn try_from(instance: Winprov_DirectoryEntry) -> Result<Self, HResult> {
        let invalid = |_| HResult::WBEM_E_INVALID_PARAMETER;
        validate_name(&instance.Name).map_err(invalid)?;
        let addresses = instance
            .Addresses
            .iter()
            .map(|text| text.parse::<SocketAddr>())
            .collect::<Result<_, _>>()
            .map_err(|_| HResult::WBEM_E_INVALID_PARAMETER)?;
        let text = |value: Option<String>| -> Result<Option<String>, HResult> {
            match value.filter(|text| !text.is_empty()) {
                Some(text) => validate_value(&text).map(|()| Some(text)).map_err(invalid),
                None => Ok(None),
            }
        };
        Ok(Entry {
            name: instance.Name,
            addresses,
            comment: text(instance.Comment)?,
            data: text(instance.Data)?,
        })
    }
}

/// The instance of `Winprov_DirectoryEntry` for `entry`.
pub fn entry_to_instance(entry: &Entry) -> Instance {
    Winprov_DirectoryEntry::from(entry).to_instance()
}

/// The entry an instance describes: the class's conversion errors (`WBEM_E_INVALID_CLASS`,
/// `WBEM_E_INVALID_PARAMETER` for a missing name, `WBEM_E_TYPE_MISMATCH`), then
/// `WBEM_E_INVALID_PARAMETER` for what the file cannot hold.
pub fn entry_from_instance(instance: &Instance) -> Result<Entry, HResult> {
    let typed = Winprov_DirectoryEntry::from_instance(instance).map_err(|e| e.hresult())?;
    Entry::try_from(typed)
}

/// The object path of the entry named `name`.
pub fn entry_path(name: &str) -> String {
    Winprov_DirectoryEntry::path_of(&(name.to_string(),))
}

/// The name an entry's object path gives: `WBEM_E_INVALID_OBJECT_PATH` for a malformed path,
/// `WBEM_E_INVALID_CLASS` for a path of another class.
pub fn entry_name(path: &str) -> Result<String, HResult> {
    Winprov_DirectoryEntry::parse_path(path)
        .map(|(name,)| name)
        .map_err(|e| e.hresult())
}

/// The event fired when the directory file changed: it now holds `entries` entries.
pub fn changed_event(entries: usize) -> Instance {
    Winprov_DirectoryChanged {
        Entries: u32::try_from(entries).unwrap_or(u32::MAX),
    }
    .to_instance()
}

#[cfg(test)]
mod tests {
    use super::*;
    use winprov_wbem::Value;

    const ENTRY: &str = "Winprov_DirectoryEntry";

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
            r#"Winprov_DirectoryEntry.Name=a@b"#,
            r#"Winprov_DirectoryEntry.Other="a@b""#,
            r#"Winprov_DirectoryEntry.Name="a"b""#,
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
        let base = Instance::new(ENTRY)
            .with("Name", Value::Str("a@b".into()))
            .with("Addresses", Value::StrArray(vec![]));
        let cases = [
            (Instance::new("Other"), HResult::WBEM_E_INVALID_CLASS),
            (
                Instance::new(ENTRY).with("Addresses", Value::StrArray(vec![])),
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
