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
//!   `NAPI_PROVIDER_INSTALLATION_BLOB`) and remove it; removing what is not registered
//!   succeeds ([`Uninstalled::NotInstalled`]);
//! - [`export_provider!`] generates a DLL's export of the routine table, so a provider's crate
//!   needs no `unsafe` code of its own.
//!
//! The `testing` feature adds a host simulator (`testing::Host`) that plays Winsock against
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
pub use install::{
    Domain, NamespaceInstall, ProviderLevel, ProviderType, Uninstalled, install, uninstall,
};
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

/// The provider behind a DLL export made by [`export_provider!`]: registered in this process's
/// routine table on the export's first call, and kept for the rest of the process.
pub struct Export<P: NamespaceProvider> {
    id: Guid,
    make: fn() -> P,
    registered: std::sync::OnceLock<Result<(), WsaError>>,
}

impl<P: NamespaceProvider> Export<P> {
    /// The provider `make` constructs, under `id`, once the export is first called.
    pub const fn new(id: Guid, make: fn() -> P) -> Self {
        Self {
            id,
            make,
            registered: std::sync::OnceLock::new(),
        }
    }

    /// The provider id.
    pub fn id(&self) -> Guid {
        self.id
    }

    /// Registers the provider (once per process; every call returns the first outcome):
    /// `WSAEALREADY` when another provider of this process holds the id.
    pub fn register(&self) -> Result<(), WsaError> {
        *self
            .registered
            .get_or_init(|| match register(self.id, (self.make)()) {
                Ok(registration) => {
                    // The routine table is process-wide and the host may call it until unload.
                    registration.leak();
                    Ok(())
                }
                Err(error) => {
                    tracing::error!(%error, "registering the provider of a DLL export");
                    Err(WsaError::WSAEALREADY)
                }
            })
    }
}

impl<P: NamespaceProvider> std::fmt::Debug for Export<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("id", &self.id)
            .field("registered", &self.registered.get())
            .finish_non_exhaustive()
    }
}

/// Refuses `panic = "abort"` in the crate it expands in (see
/// [`winprov_core::refuse_panic_abort!`]): at this crate's root and in [`export_provider!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __refuse_panic_abort {
    () => {
        $crate::__private::refuse_panic_abort!(
            "winprov-nspv2",
            "the process that serves the namespace, and every lookup of every application it answers"
        );
    };
}
__refuse_panic_abort!();

/// What the code generated by [`export_provider!`] calls. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::abi::exports::hand_out;
    pub use winprov_core::refuse_panic_abort;
}

/// Generates a DLL export that hands a host this process's routine table, for a provider the
/// host loads from the DLL instead of a service process that advertises it:
///
/// ```text
/// int $export(GUID *provider_id, const NSPV2_ROUTINE **routine)
/// ```
///
/// The first call registers the provider `$make` (a function or a closure without captures)
/// constructs under `$id`, in this process's routine table; every call writes `$id` to
/// `*provider_id` and the address of [`routine()`] to `*routine`, which the host passes to
/// `WSAAdvertiseProvider` (or calls directly). It returns 0, `WSAEFAULT` when an out-pointer is
/// null or misaligned (nothing is registered then), `WSAEALREADY` when another provider of the
/// process holds the id, or `WSASYSCALLFAILURE` after a panic. Use it once, in the crate that
/// builds the DLL (`crate-type = ["cdylib"]`), the way TSPI providers use
/// `winprov_tspi::export_provider!`.
#[macro_export]
macro_rules! export_provider {
    ($export:ident, $provider:ty, $id:expr, $make:expr $(,)?) => {
        $crate::__refuse_panic_abort!();

        #[doc(hidden)]
        static __WINPROV_NSPV2_EXPORT: $crate::Export<$provider> = $crate::Export::new($id, $make);

        #[doc = concat!(
            "`int ", stringify!($export), "(GUID *provider_id, const NSPV2_ROUTINE **routine)`: ",
            "registers the provider once and hands out its id and the routine table ",
            "(generated by `winprov_nspv2::export_provider!`)."
        )]
        ///
        /// # Safety
        /// Each pointer is null (refused) or points to memory writable as its type.
        #[unsafe(no_mangle)]
        #[allow(non_snake_case)]
        pub unsafe extern "system" fn $export(
            provider_id: *mut $crate::Guid,
            routine: *mut *const $crate::NSPV2_ROUTINE,
        ) -> i32 {
            // SAFETY: forwarded from the host, under this function's own contract.
            unsafe {
                $crate::__private::hand_out(
                    &__WINPROV_NSPV2_EXPORT,
                    stringify!($export),
                    provider_id,
                    routine,
                )
            }
        }
    };
}
