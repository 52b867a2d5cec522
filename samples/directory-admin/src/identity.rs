//! Who this provider is: the one file to edit when you copy the sample.
//!
//! Every value below must be unique to your provider: generate a new CLSID (`uuidgen`,
//! PowerShell `[guid]::NewGuid()`) and pick your own namespace, provider and class names.
//! Nothing else in the crate repeats these values.

/// The COM class id of the provider object (`__Win32Provider.CLSID`, `HKCR\CLSID\{…}`).
pub const CLSID: u128 = 0x715d_6d12_24e0_4836_b6f6_0fba_71b0_4a73;

/// The WMI namespace the classes live in (created by the provider's MOF).
pub const NAMESPACE: &str = r"root\winprov";

/// The provider's name (`__Win32Provider.Name`).
pub const PROVIDER_NAME: &str = "WinprovDirectoryAdmin";

/// The instance class: one instance per directory entry, keyed by its name.
pub const ENTRY_CLASS: &str = "Winprov_DirectoryEntry";

/// The extrinsic event class fired when the directory file changes.
pub const CHANGED_EVENT_CLASS: &str = "Winprov_DirectoryChanged";

/// The static method of the entry class that counts the entries.
pub const COUNT_METHOD: &str = "Count";
