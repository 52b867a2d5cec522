//! `directory-admin`: the reference WMI provider of winprov, and the template for your own.
//!
//! Administrators manage the e-mail directory that the `email-directory` sample serves to
//! Winsock, with the tools they already use (`Get-CimInstance`, `wmic`, WMI Explorer). The
//! provider reads and writes the very file the namespace provider answers from, through that
//! sample's [`DirectoryFile`](email_directory_file::DirectoryFile) (one file code, two front ends):
//!
//! - [`identity`]: the CLSID, namespace and class names — the one place to edit when copying;
//! - [`classes`]: the WMI classes and how an entry becomes an instance and back;
//! - [`DirectoryAdmin`]: the provider — instances of `Winprov_DirectoryEntry` (enumerate, get,
//!   query by name, put, delete), the static method `Count`, and the extrinsic event
//!   `Winprov_DirectoryChanged` fired when the file changes.
//!
//! The DLL's four COM exports (`DllGetClassObject`, `DllCanUnloadNow`, `DllRegisterServer`,
//! `DllUnregisterServer`) are the one [`winprov_wbem::export_provider!`] line below. Every WMI
//! rule (one final status per call, cancellation, the roles not played) is `winprov-wbem`'s;
//! this crate is only the behaviour, and has no `unsafe` code.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod classes;
mod events;
pub mod identity;
mod provider;

pub use provider::{DEFAULT_POLL_INTERVAL, DirectoryAdmin, ENV_PANIC_ON, ENV_POLL_MS};

winprov_wbem::export_provider!(identity::CLSID, DirectoryAdmin, DirectoryAdmin::from_env);
