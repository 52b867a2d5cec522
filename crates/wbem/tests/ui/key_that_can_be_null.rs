//! A key is always set: an `Option` (a property that may be NULL) cannot be one.

use winprov_wbem::wmi_class;

wmi_class! {
    class WinProv_EmailEntry {
        key {
            Name: Option<String>,
        }
    }
}

fn main() {}
