//! A class whose instances would have no object path: every `class` declares its keys.

use winprov_wbem::wmi_class;

wmi_class! {
    [dynamic, provider("WinProvEmailDirectory")]
    class WinProv_EmailEntry {
        properties {
            Name: String,
        }
    }
}

fn main() {}
