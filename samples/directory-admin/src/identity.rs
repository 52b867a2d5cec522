//! Who this provider is: the one file to edit when you copy the sample.
//!
//! Every value below must be unique to your provider: generate a new CLSID (`uuidgen`,
//! PowerShell `[guid]::NewGuid()`) and pick your own namespace and provider name (the class
//! names are in `classes.rs`). The CLSID is repeated once, in the MSI descriptor of
//! `Cargo.toml` (`tests/installer.rs` compares the two).

use winprov_wbem::mof::Guid;

/// The COM class id of the provider object (`__Win32Provider.CLSID`, `HKCR\CLSID\{…}`).
pub const CLSID: Guid = Guid::from_u128(0x715d_6d12_24e0_4836_b6f6_0fba_71b0_4a73);

/// The WMI namespace the classes live in (created by the provider's MOF).
pub const NAMESPACE: &str = r"root\winprov";

/// The provider's name (`__Win32Provider.Name`, the classes' `provider` qualifier).
pub const PROVIDER_NAME: &str = "WinprovDirectoryAdmin";
