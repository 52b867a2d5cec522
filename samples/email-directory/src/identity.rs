//! Who this provider is: the one file to edit when you copy the sample.
//!
//! Every value below must be unique to your provider. Generate a new GUID (`uuidgen`,
//! PowerShell `[guid]::NewGuid()`), pick your own service and catalog names, and set the domains
//! you answer for. Nothing else in the crate repeats these values.

use winprov_nspv2::Guid;

/// The provider id: the catalog GUID of the namespace entry (`WSCInstallNameSpaceEx`) and the
/// GUID the service advertises (`WSAAdvertiseProvider`).
pub const PROVIDER_ID: Guid = Guid::from_u128(0xf622_4131_6065_4f05_a013_2e27_9596_285a);

/// The display name of the namespace entry in the Winsock catalog (`netsh winsock show catalog`).
pub const NAMESPACE_IDENTIFIER: &str = "winprov e-mail directory (NS_EMAIL)";

/// The Windows service's key name (`sc query EmailDirectory`).
pub const SERVICE_NAME: &str = "EmailDirectory";

/// The Windows service's display name (services.msc).
pub const SERVICE_DISPLAY_NAME: &str = "winprov E-mail Directory";

/// The Windows service's description (services.msc).
pub const SERVICE_DESCRIPTION: &str =
    "Answers Winsock NS_EMAIL name lookups from the e-mail directory file.";

/// The domains registered with the namespace when `install` is given no `--domain`.
pub const DEFAULT_DOMAINS: &[&str] = &["example.org"];
