//! `key` is the `key { … }` section's to write: a property qualified `key` elsewhere would be a
//! key in the MOF and not in the object paths.

use winprov_wbem::wmi_class;

wmi_class! {
    class WinProv_EmailEntry {
        key {
            Name: String,
        }
        properties {
            [key, read] Domain: String,
        }
    }
}

fn main() {}
