//! The values a provider exchanges with WMI, in their first, minimal form: an instance is a
//! class name and a map of property names to [`Value`]s, an object path is a string. The typed
//! classes ([`class`](crate::class)) convert to and from them.

use std::collections::BTreeMap;

/// One property value (a small subset of the CIM types).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `NULL` (an unset property).
    Null,
    /// `boolean`.
    Bool(bool),
    /// `sint32`.
    I32(i32),
    /// `uint32`.
    U32(u32),
    /// `sint64`.
    I64(i64),
    /// `uint64`.
    U64(u64),
    /// `string`.
    Str(String),
    /// `string[]`.
    StrArray(Vec<String>),
}

/// One WMI object: an instance of a class, or a method's out-parameters (`__PARAMETERS`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Instance {
    class: String,
    properties: BTreeMap<String, Value>,
}

impl Instance {
    /// An instance of `class` with no property set.
    pub fn new(class: impl Into<String>) -> Self {
        Self {
            class: class.into(),
            properties: BTreeMap::new(),
        }
    }

    /// Out-parameters of a method (`__PARAMETERS`) with `ReturnValue` set.
    pub fn out_parameters(return_value: Value) -> Self {
        Self::new("__PARAMETERS").with("ReturnValue", return_value)
    }

    /// Sets `name` to `value` (builder style).
    pub fn with(mut self, name: impl Into<String>, value: Value) -> Self {
        self.set(name, value);
        self
    }

    /// Sets `name` to `value`.
    pub fn set(&mut self, name: impl Into<String>, value: Value) {
        self.properties.insert(name.into(), value);
    }

    /// The class name.
    pub fn class(&self) -> &str {
        &self.class
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.properties.get(name)
    }

    /// Every property set, by name.
    pub fn properties(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.properties.iter().map(|(k, v)| (k.as_str(), v))
    }
}
