//! `email-directory`: the reference `NS_EMAIL` namespace provider of winprov, and the template
//! for your own.
//!
//! It answers Winsock e-mail name lookups (`WSALookupServiceBegin` / `Next` / `End` with
//! `NS_EMAIL`) from a text file mapping names such as `alice@example.org` to addresses, a
//! comment and data (see [`Directory`] for the format), and stores `WSASetService`
//! registrations in that file. All protocol work (handles, buffers, cancellation, completion)
//! is `winprov-nspv2`'s; this crate is only the behaviour:
//!
//! - [`identity`]: the provider GUID, service and catalog names — the one place to edit when
//!   copying the sample;
//! - [`Config`]: where the file is, and an optional backend delay;
//! - [`EmailDirectory`]: the [`NamespaceProvider`](winprov_nspv2::NamespaceProvider);
//! - [`export`]: the one DLL export, `EmailDirectoryNspv2`, for a host that loads the provider
//!   from this DLL instead of running the `email-directory` service executable.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod directory;
#[allow(unsafe_code)]
pub mod export;
pub mod identity;
mod provider;
mod store;

pub use config::{Config, ENV_DIRECTORY_FILE, ENV_LOOKUP_DELAY_MS};
pub use directory::{Directory, Entry, NamePattern, ParseError};
pub use provider::{EmailDirectory, EmailLookup};
