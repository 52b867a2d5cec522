//! Winsock namespace providers (NSPv2, `ws2spi.h`) in safe Rust.
//!
//! An NSPv2 provider is not a DLL Winsock loads: a hosting process advertises a routine table
//! with `WSAAdvertiseProvider`, and Winsock forwards its clients' `WSALookupService*` and
//! `WSASetService` calls to it. This crate owns that protocol:
//!
//! - you implement [`NamespaceProvider`] (sessions, Begin, SetServiceEx) and [`Lookup`] (one
//!   lookup's results); the framework fills every slot of the [`NSPV2_ROUTINE`](routine) and
//!   answers what you did not implement with `WSAEOPNOTSUPP`;
//! - [`Advertisement`] advertises a provider for as long as it lives (RAII around
//!   `WSAAdvertiseProvider` / `WSAUnadvertiseProvider`);
//! - `NSPv2LookupServiceEnd` on another thread while your `next` runs trips the call's
//!   cancellation and completes the NextEx with `WSA_E_CANCELLED` at once; the lookup is freed
//!   once, after both calls; its handle is then invalid (`WSA_INVALID_HANDLE`);
//! - every NextEx and SetServiceEx is completed exactly once through
//!   `WSAProviderCompleteAsyncCall` — the call guards ([`NextCall`], [`SetServiceCall`]) make
//!   forgetting or repeating it a compile error;
//! - results are typed ([`QueryResult`]) and serialized by the framework into the caller's
//!   buffer (pointers inside it, `WSAEFAULT` with the needed size on a short buffer and the
//!   result kept for the retry, `LUP_FLUSHPREVIOUS`, `LUP_RETURN_*` narrowing,
//!   `WSA_E_NO_MORE` at the end); restrictions arrive parsed ([`Query`]), malformed ones are
//!   refused with the documented codes;
//! - [`install`] / [`uninstall`] register the namespace (`WSCInstallNameSpaceEx` with a
//!   `NAPI_PROVIDER_INSTALLATION_BLOB`).
//!
//! The `testing` feature adds a host simulator ([`testing::Host`]) that plays Winsock against
//! any provider and checks the interface's rules.
//!
//! ```
//! use winprov_nspv2::{Completed, ControlFlags, Lookup, NamespaceProvider, NextCall, Query,
//!     QueryResult, WsaError};
//!
//! struct Echo;
//! struct EchoLookup(Option<String>);
//!
//! impl NamespaceProvider for Echo {
//!     type Session = ();
//!     type Lookup = EchoLookup;
//!     fn startup(&self) -> Result<(), WsaError> { Ok(()) }
//!     fn lookup_begin(&self, _: &(), query: &Query, _: ControlFlags)
//!         -> Result<EchoLookup, WsaError> {
//!         Ok(EchoLookup(query.service_instance_name.clone()))
//!     }
//! }
//!
//! impl Lookup for EchoLookup {
//!     fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
//!         match self.0.take() {
//!             Some(name) => call.found(QueryResult::named(name)),
//!             None => call.no_more(),
//!         }
//!     }
//! }
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[allow(unsafe_code)]
mod abi;
mod error;
mod host;
mod install;
mod lookup;
#[cfg(all(test, loom))]
mod loom_models;
mod provider;
mod query;
mod runtime;
#[cfg(feature = "testing")]
#[allow(unsafe_code)]
pub mod testing;
// The decoder and the sockaddr helpers serve the host simulator (feature `testing`).
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
mod wire;

pub use error::NspError;
pub use install::{Domain, NamespaceInstall, ProviderLevel, ProviderType, install, uninstall};
pub use provider::{Cancellation, Lookup, NamespaceProvider, NextCall, SetServiceCall};
pub use query::{
    AfProtocol, Comparator, ControlFlags, CsAddr, Guid, IPROTOCOL_ANY, OutputFlags, Query,
    QueryResult, RegInfo, SetServiceOp, Version,
};
pub use runtime::Stats;
pub use winprov_bindings::ws2spi::NSPV2_ROUTINE;
pub use winprov_core::{CancelRegistration, Cancelled, Completed, Delivery, WaitOutcome, WsaError};

/// The routine table of this process's providers. Every slot is filled; calls are routed to the
/// provider registered under the GUID Winsock passes (see [`register`]). Hand it to
/// `WSAAdvertiseProvider` yourself, or let [`Advertisement`] do it.
pub fn routine() -> &'static NSPV2_ROUTINE {
    &abi::ROUTINE
}

/// Makes `provider` answer calls of [`routine`] for provider id `id` until the returned
/// [`Registration`] is dropped. (A DLL that exports the routine table for another host uses
/// this; a service uses [`Advertisement`], which registers too.)
pub fn register<P: NamespaceProvider>(id: Guid, provider: P) -> Result<Registration, NspError> {
    abi::REGISTRY
        .register(id, provider)
        .map_err(|_| NspError::AlreadyRegistered { id })?;
    Ok(Registration { id })
}

/// A provider registered in this process's routine table; dropping it unregisters the provider:
/// its sessions close and its running lookups are cancelled.
#[must_use = "dropping the registration unregisters the provider"]
#[derive(Debug)]
pub struct Registration {
    id: Guid,
}

impl Registration {
    /// The provider id.
    pub fn id(&self) -> Guid {
        self.id
    }

    /// Live lookups and open sessions of this provider.
    pub fn stats(&self) -> Stats {
        abi::REGISTRY.stats(&self.id).unwrap_or_default()
    }

    /// Keeps the provider registered for the rest of the process (a DLL's export).
    pub fn leak(self) {
        std::mem::forget(self);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        abi::REGISTRY.unregister(self.id);
    }
}

/// A provider advertised to Winsock: `WSAStartup` + `WSAAdvertiseProvider` when created,
/// `WSAUnadvertiseProvider` + `WSACleanup` when dropped. The routine table is static, so it
/// outlives the advertisement as Winsock may require.
#[must_use = "dropping the advertisement withdraws the provider"]
#[derive(Debug)]
pub struct Advertisement {
    registration: Registration,
}

impl Advertisement {
    /// Registers `provider` under `id` (its catalog GUID, see [`install`]) and advertises it.
    pub fn new<P: NamespaceProvider>(id: Guid, provider: P) -> Result<Self, NspError> {
        let registration = register(id, provider)?;
        abi::advertise(id)?;
        Ok(Self { registration })
    }

    /// The provider id.
    pub fn id(&self) -> Guid {
        self.registration.id()
    }

    /// Live lookups and open sessions of the provider.
    pub fn stats(&self) -> Stats {
        self.registration.stats()
    }
}

impl Drop for Advertisement {
    /// Withdraws the provider from Winsock; the registration (a field) is dropped after this,
    /// closing what is left of its sessions.
    fn drop(&mut self) {
        abi::unadvertise(self.registration.id());
    }
}
