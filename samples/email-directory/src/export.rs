//! The DLL's one export, for a host that loads the provider from `email_directory.dll` rather
//! than running the `email-directory` service:
//!
//! `int EmailDirectoryNspv2(GUID *provider_id, const NSPV2_ROUTINE **routine)` registers the
//! provider in this process (once; configured by `EMAIL_DIRECTORY_FILE` and
//! `EMAIL_DIRECTORY_DELAY_MS`), then hands out its GUID and the `NSPV2_ROUTINE` table, which the
//! host passes to `WSAAdvertiseProvider` (or calls directly, as the Wine test harness does).
//! It returns 0, `WSAEFAULT` (10014) when an out-pointer is null or misaligned (nothing is
//! registered then), `WSAEALREADY` (10037) when another provider of this process holds the
//! GUID, or `WSASYSCALLFAILURE` (10107) after an internal error. `winprov_nspv2` generates it.

use crate::{Config, EmailDirectory, identity};

winprov_nspv2::export_provider!(
    EmailDirectoryNspv2,
    EmailDirectory,
    identity::PROVIDER_ID,
    || EmailDirectory::new(Config::from_env()),
);
