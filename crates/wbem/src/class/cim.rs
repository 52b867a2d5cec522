//! The CIM types a typed class's fields may have, and how each converts to and from a
//! [`Value`]: [`CimType`] for every property and parameter, [`KeyType`] for the few that can be
//! keys, and [`Datetime`] for CIM's `datetime`.

use super::ClassError;
use super::path::KeyValue;
use crate::value::Value;
use std::fmt;
use std::str::FromStr;

/// A CIM type as MOF writes it: `string`, `uint32` … and whether it is an array (`string[]`,
/// whose brackets MOF puts after the property's name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CimKind {
    name: &'static str,
    array: bool,
}

impl CimKind {
    /// `boolean`.
    pub const BOOLEAN: Self = Self::scalar("boolean");
    /// `sint32`.
    pub const SINT32: Self = Self::scalar("sint32");
    /// `uint32`.
    pub const UINT32: Self = Self::scalar("uint32");
    /// `sint64`.
    pub const SINT64: Self = Self::scalar("sint64");
    /// `uint64`.
    pub const UINT64: Self = Self::scalar("uint64");
    /// `string`.
    pub const STRING: Self = Self::scalar("string");
    /// `datetime`.
    pub const DATETIME: Self = Self::scalar("datetime");
    /// `string[]`.
    pub const STRING_ARRAY: Self = Self {
        name: "string",
        array: true,
    };

    const fn scalar(name: &'static str) -> Self {
        Self { name, array: false }
    }

    /// The element type's MOF name (`string` for `string[]`).
    pub const fn name(self) -> &'static str {
        self.name
    }

    /// Whether this is an array type.
    pub const fn is_array(self) -> bool {
        self.array
    }
}

impl fmt::Display for CimKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.array {
            true => write!(f, "{}[]", self.name),
            false => f.write_str(self.name),
        }
    }
}

/// The CIM type of a [`Value`] as it was found, for [`ClassError::TypeMismatch`].
pub(crate) fn found(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Bool(_) => "boolean",
        Value::I32(_) => "sint32",
        Value::U32(_) => "uint32",
        Value::I64(_) => "sint64",
        Value::U64(_) => "uint64",
        Value::Str(_) => "string",
        Value::StrArray(_) => "string[]",
    }
}

/// A Rust type a property or method parameter of a [`wmi_class!`](crate::wmi_class) may have:
/// its CIM type and its conversion to and from a [`Value`].
///
/// | Rust | CIM |
/// |---|---|
/// | `String` | `string` |
/// | `bool` | `boolean` |
/// | `i32`, `u32`, `i64`, `u64` | `sint32`, `uint32`, `sint64`, `uint64` |
/// | [`Datetime`] | `datetime` |
/// | `Vec<String>` | `string[]` |
/// | `Option<T>` | `T`'s, and the property may be NULL |
///
/// A property whose type is not an `Option` must be set: converting an instance where it is
/// missing or NULL fails ([`ClassError::MissingProperty`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a CIM type a WMI property or parameter can have",
    label = "not a CIM type",
    note = "the CIM types are String, bool, i32, u32, i64, u64, Datetime and Vec<String>, or an Option of one of them"
)]
pub trait CimType: Sized {
    /// The CIM type MOF declares.
    const CIM: CimKind;

    /// The value WMI is given.
    fn to_value(&self) -> Value;

    /// The field from a value that is not NULL; `None` when the value is of another type.
    fn from_value(value: &Value) -> Option<Self>;

    /// The field when the property is missing or NULL: `None` (an error) unless the type is an
    /// `Option`.
    fn from_null() -> Option<Self> {
        None
    }
}

/// A [`CimType`] that can be a key of a class: it has an object-path form. (WMI allows no
/// array, real or embedded object as a key, and no character below U+0020 in a key's text.)
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a key of a WMI class",
    label = "not a key type",
    note = "keys are String, bool, i32, u32, i64, u64 or Datetime: never an Option (a key is always set) nor an array"
)]
pub trait KeyType: CimType + Clone {
    /// The value as an object path writes it.
    fn to_key(&self) -> KeyValue;

    /// The field from a value parsed out of an object path; `None` when it is of another type
    /// or out of range.
    fn from_key(key: &KeyValue) -> Option<Self>;
}

impl CimType for String {
    const CIM: CimKind = CimKind::STRING;

    fn to_value(&self) -> Value {
        Value::Str(self.clone())
    }

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl KeyType for String {
    fn to_key(&self) -> KeyValue {
        KeyValue::Str(self.clone())
    }

    fn from_key(key: &KeyValue) -> Option<Self> {
        match key {
            KeyValue::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl CimType for bool {
    const CIM: CimKind = CimKind::BOOLEAN;

    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl KeyType for bool {
    fn to_key(&self) -> KeyValue {
        KeyValue::Bool(*self)
    }

    fn from_key(key: &KeyValue) -> Option<Self> {
        match key {
            KeyValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// The integer types: a key is written as a number; one given as a quoted decimal string
/// (as clients holding a 64-bit integer as text write it) is read too.
macro_rules! integers {
    ($($ty:ty => $variant:ident, $cim:ident;)*) => {$(
        impl CimType for $ty {
            const CIM: CimKind = CimKind::$cim;

            fn to_value(&self) -> Value {
                Value::$variant(*self)
            }

            fn from_value(value: &Value) -> Option<Self> {
                match value {
                    Value::$variant(n) => Some(*n),
                    _ => None,
                }
            }
        }

        impl KeyType for $ty {
            fn to_key(&self) -> KeyValue {
                KeyValue::Int(i128::from(*self))
            }

            fn from_key(key: &KeyValue) -> Option<Self> {
                match key {
                    KeyValue::Int(n) => <$ty>::try_from(*n).ok(),
                    KeyValue::Str(s) => s.parse().ok(),
                    KeyValue::Bool(_) => None,
                }
            }
        }
    )*};
}

integers! {
    i32 => I32, SINT32;
    u32 => U32, UINT32;
    i64 => I64, SINT64;
    u64 => U64, UINT64;
}

impl CimType for Vec<String> {
    const CIM: CimKind = CimKind::STRING_ARRAY;

    fn to_value(&self) -> Value {
        Value::StrArray(self.clone())
    }

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::StrArray(items) => Some(items.clone()),
            _ => None,
        }
    }
}

impl<T: CimType> CimType for Option<T> {
    const CIM: CimKind = T::CIM;

    fn to_value(&self) -> Value {
        match self {
            Some(value) => value.to_value(),
            None => Value::Null,
        }
    }

    fn from_value(value: &Value) -> Option<Self> {
        T::from_value(value).map(Some)
    }

    fn from_null() -> Option<Self> {
        Some(None)
    }
}

/// A CIM `datetime`: the DMTF text WMI exchanges, `yyyymmddHHMMSS.mmmmmmsUUU` (a point in time,
/// `s` the sign of the offset `UUU` from UTC in minutes) or `ddddddddHHMMSS.mmmmmm:000` (an
/// interval), any digit possibly `*` (not significant). It travels as a string; parsing checks
/// the form, not the calendar.
///
/// ```
/// use winprov_wbem::class::Datetime;
/// let at: Datetime = "20240131120000.000000+060".parse().unwrap();
/// assert_eq!(at.as_str(), "20240131120000.000000+060");
/// assert!("2024-01-31".parse::<Datetime>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Datetime(String);

impl Datetime {
    /// The DMTF text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_valid(text: &str) -> bool {
        let bytes = text.as_bytes();
        let digits = |range: std::ops::Range<usize>| {
            bytes[range]
                .iter()
                .all(|&b| b.is_ascii_digit() || b == b'*')
        };
        bytes.len() == 25
            && digits(0..14)
            && bytes[14] == b'.'
            && digits(15..21)
            && match bytes[21] {
                b'+' | b'-' => digits(22..25),
                b':' => &bytes[22..25] == b"000",
                _ => false,
            }
    }
}

impl FromStr for Datetime {
    type Err = ClassError;

    /// `Err(ClassError::InvalidDatetime)` (`WBEM_E_TYPE_MISMATCH`) unless `text` has the DMTF
    /// form.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match Self::is_valid(text) {
            true => Ok(Self(text.to_string())),
            false => Err(ClassError::InvalidDatetime {
                text: text.to_string(),
            }),
        }
    }
}

impl fmt::Display for Datetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl CimType for Datetime {
    const CIM: CimKind = CimKind::DATETIME;

    fn to_value(&self) -> Value {
        Value::Str(self.0.clone())
    }

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Str(s) => s.parse().ok(),
            _ => None,
        }
    }
}

impl KeyType for Datetime {
    fn to_key(&self) -> KeyValue {
        KeyValue::Str(self.0.clone())
    }

    fn from_key(key: &KeyValue) -> Option<Self> {
        match key {
            KeyValue::Str(s) => s.parse().ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_have_the_dmtf_form() {
        for good in [
            "20240131120000.000000+060",
            "20240131120000.000000-300",
            "2024****120000.000000+000",
            "00000001020304.000000:000",
        ] {
            assert_eq!(good.parse::<Datetime>().unwrap().as_str(), good);
        }
        for bad in [
            "",
            "20240131120000.000000+06",
            "20240131120000.000000+0600",
            "20240131120000,000000+060",
            "2024013112000a.000000+060",
            "20240131120000.000000*060",
            "00000001020304.000000:001",
            "20240131120000.000000+06é",
        ] {
            let error = bad.parse::<Datetime>().unwrap_err();
            assert_eq!(error.hresult(), winprov_core::HResult::WBEM_E_TYPE_MISMATCH);
        }
    }

    #[test]
    fn integer_keys_keep_their_range() {
        assert_eq!(u32::from_key(&KeyValue::Int(4_294_967_295)), Some(u32::MAX));
        assert_eq!(u32::from_key(&KeyValue::Int(4_294_967_296)), None);
        assert_eq!(u32::from_key(&KeyValue::Int(-1)), None);
        assert_eq!(
            i64::from_key(&KeyValue::Int(i128::from(i64::MIN))),
            Some(i64::MIN)
        );
        assert_eq!(
            u64::from_key(&KeyValue::Str("18446744073709551615".into())),
            Some(u64::MAX)
        );
        assert_eq!(u64::from_key(&KeyValue::Str("x".into())), None);
        assert_eq!(i32::from_key(&KeyValue::Bool(true)), None);
    }
}
