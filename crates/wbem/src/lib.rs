//! WMI providers in safe Rust.
//!
//! What an author gets:
//!
//! - one trait per role — [`InstanceProvider`] (get, enumerate, query, put, delete),
//!   [`MethodProvider`] (exec), [`EventProvider`] (provide events) — and [`ProviderInit`]
//!   (`IWbemProviderInit::Initialize`), every method optional, the role defaults answering
//!   `WBEM_E_PROVIDER_NOT_CAPABLE` (R-WMI-6);
//! - a move-only guard per asynchronous call, branded with the call's lifetime like every
//!   winprov guard: [`Response`] for enumerations and queries (`indicate` in batches of at most
//!   [`BATCH_SIZE`], `progress` only when the client asked with `WBEM_FLAG_SEND_STATUS`,
//!   `finish`), [`GetCall`] (`not_found` is `WBEM_E_NOT_FOUND` without an `Indicate`),
//!   [`PutCall`] (the object path rides in the final status), [`DeleteCall`], [`MethodCall`]
//!   (the out-parameters are indicated once before the final status). Each finishing method
//!   consumes its guard and returns the [`Completed`] proof the trait method must return, so
//!   exactly one final `SetStatus`, after every `Indicate`, is a compile-time matter; a guard
//!   dropped unfinished sends `WBEM_E_FAILED` once and logs an error;
//! - each guard's [`Context`] (`call.context()`): dependent requests back into WMI with the
//!   call's `IWbemContext` (R-WMI-14);
//! - `CancelAsyncCall` handled by the framework: every call sharing the sink (by its COM
//!   identity) is cancelled, its cancellation trips, and its sink gets exactly one final status
//!   whatever the race; method calls are not cancelled;
//! - an [`EventSink`] for event providers that can only indicate, and returns WMI's answer
//!   (`WBEM_E_SERVER_TOO_BUSY`: the event may be re-fired);
//! - typed classes, each described once with [`wmi_class!`] ([`class`]): a struct per class
//!   with its conversions to and from [`Instance`], the object paths of its instances
//!   (written as WMI writes them, parsed with `WBEM_E_INVALID_OBJECT_PATH` for a malformed
//!   one), typed method in- and out-parameters, and conversion errors that keep their WBEM
//!   code ([`ClassError`]); a class without a key does not compile;
//! - the [`Mof`] written from those descriptions ([`mof`]): the namespace, the classes, the
//!   `__Win32Provider` with its hosting model (`Decoupled:Com` for a decoupled provider) and
//!   its instance, method and event registrations, and the MOF that uninstalls them;
//! - the COM layer: the provider's object (`IWbemProviderInit`, `IWbemServices`,
//!   `IWbemEventProvider`, made with windows-core's `#[implement]`), `Initialize` reported
//!   through the init sink once (R-WMI-1), each call's sink held for the call (R-WMI-2),
//!   instances converted to and from `IWbemClassObject` by WMI's CIM conventions (`uint32` as
//!   `VT_I4`, 64-bit integers as strings), wrong `VARIANT` types and NULL pointers answered
//!   with `WBEM_E_*` codes, every COM method inside the panic boundary;
//! - the in-process server: [`export_provider!`] generates `DllGetClassObject` (a class factory
//!   of the provider's CLSID), `DllCanUnloadNow` (live objects and locks of the module,
//!   [`Module`]), `DllRegisterServer` / `DllUnregisterServer` (`HKCR\CLSID\{…}`), in one line:
//!
//! ```text
//! winprov_wbem::export_provider!(CLSID, Greetings, Greetings::new);
//! ```
//!
//! - decoupled providers (a process of the author's own): [`Decoupled`] registers the provider
//!   with `IWbemDecoupledRegistrar` while it lives (R-WMI-16);
//! - [`impersonate_client`] / [`as_client`]: the calling client's identity for the work of a
//!   call, reverted on every path; [`compile_mof`]: a provider's MOF into WMI, for installers.
//!
//! For Rust code that calls WMI (a tool, or a decoupled provider's own requests), [`client`]:
//! a [`Connection`](client::Connection) to a namespace whose calls (enumerate, query, get, put,
//! delete, exec_method) each get an `IWbemObjectSink` of their own, so `CancelAsyncCall`, made
//! when an unfinished [`AsyncCall`](client::AsyncCall) is dropped, cancels that call alone;
//! each call yields its objects, then its one final status.
//!
//! The simulator (`testing`, feature `testing`) activates a provider as WMI does and drives it
//! through the COM vtables with a namespace, class objects, contexts and sinks of its own; it
//! plays WMI's decoupled registrar (`testing::Registrar`), and its WMI serves a
//! [`Connection`](client::Connection) too (`Host::client`).

#[allow(unsafe_code)]
mod abi;
pub mod class;
pub mod client;
mod host;
#[cfg(all(test, loom))]
mod loom_models;
pub mod mof;
mod op;
mod provider;
pub mod runtime;
#[cfg(feature = "testing")]
#[allow(unsafe_code)]
pub mod testing;
mod value;

pub use abi::{
    Decoupled, Impersonation, Module, MofCompileError, Server, as_client, compile_mof,
    impersonate_client,
};
pub use class::{ClassError, KeyedClass, MethodParameters, WmiClass};
pub use host::{
    CallFlags, CallServices, EventIndicate, Services, SinkMessage, WBEM_STATUS_COMPLETE,
    WBEM_STATUS_PROGRESS,
};
pub use mof::{Hosting, InstanceRegistration, Mof, MofError, Registration};
pub use provider::{
    BATCH_SIZE, Cancellation, Context, DeleteCall, EventProvider, EventSink, GetCall, Init,
    InstanceProvider, MethodCall, MethodProvider, Provider, ProviderInit, PutCall, PutMode,
    Response,
};
pub use value::{Instance, Value};
/// A COM class identifier (the `CLSID` of [`export_provider!`]).
pub use windows_core::GUID;
pub use winprov_core::{
    CancelRegistration, CancellationToken, Cancelled, Completed, Delivery, HResult, WaitOutcome,
};

/// Refuses `panic = "abort"` in the crate it expands in (see
/// [`winprov_core::refuse_panic_abort!`]): at this crate's root and in [`export_provider!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __refuse_panic_abort {
    () => {
        $crate::__private::refuse_panic_abort!(
            "winprov-wbem",
            "wmiprvse.exe, the WMI provider host, with every other provider it hosts"
        );
    };
}
__refuse_panic_abort!();

/// What the code generated by [`export_provider!`] calls. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::abi::exports::*;
    pub use windows_core::{GUID, HRESULT};
    pub use winprov_core::refuse_panic_abort;
}

/// Generates the four exports of an in-process COM server for one provider class, in the crate
/// that builds the DLL (`crate-type = ["cdylib"]`):
///
/// ```text
/// winprov_wbem::export_provider!(CLSID, MyProvider, MyProvider::new);
/// ```
///
/// - `DllGetClassObject`: the class factory of `CLSID` (`CLASS_E_CLASSNOTAVAILABLE` for any
///   other); each `CreateInstance` makes a provider object around a provider `$make` constructs
///   (`CLASS_E_NOAGGREGATION` when aggregated);
/// - `DllCanUnloadNow`: `S_OK` only when no object and no `LockServer` lock of the DLL is alive;
/// - `DllRegisterServer` / `DllUnregisterServer`: `HKCR\CLSID\{CLSID}\InprocServer32` = the
///   DLL's full path, `ThreadingModel` = `Both`; unregistering a class that is not registered
///   succeeds.
///
/// `$clsid` is a `windows_core::GUID` constant (`GUID::from_u128(…)`), `$make` a function or a
/// closure without captures. Each export runs inside the export boundary.
#[macro_export]
macro_rules! export_provider {
    ($clsid:expr, $provider:ty, $make:expr $(,)?) => {
        $crate::__refuse_panic_abort!();

        #[doc(hidden)]
        static __WINPROV_WBEM_SERVER: $crate::Server<$provider> =
            $crate::Server::new($clsid, $make);

        /// `DllGetClassObject` (generated by `winprov_wbem::export_provider!`).
        ///
        /// # Safety
        /// COM's contract: GUID pointers readable, `ppv` writable (each checked).
        #[unsafe(no_mangle)]
        pub unsafe extern "system" fn DllGetClassObject(
            rclsid: *const $crate::__private::GUID,
            riid: *const $crate::__private::GUID,
            ppv: *mut *mut ::core::ffi::c_void,
        ) -> $crate::__private::HRESULT {
            // SAFETY: forwarded from COM, under this function's own contract.
            unsafe {
                $crate::__private::get_class_object(&__WINPROV_WBEM_SERVER, rclsid, riid, ppv)
            }
        }

        /// `DllCanUnloadNow` (generated by `winprov_wbem::export_provider!`).
        #[unsafe(no_mangle)]
        pub extern "system" fn DllCanUnloadNow() -> $crate::__private::HRESULT {
            $crate::__private::can_unload_now(&__WINPROV_WBEM_SERVER)
        }

        /// `DllRegisterServer` (generated by `winprov_wbem::export_provider!`).
        #[unsafe(no_mangle)]
        pub extern "system" fn DllRegisterServer() -> $crate::__private::HRESULT {
            $crate::__private::register_server(&__WINPROV_WBEM_SERVER)
        }

        /// `DllUnregisterServer` (generated by `winprov_wbem::export_provider!`).
        #[unsafe(no_mangle)]
        pub extern "system" fn DllUnregisterServer() -> $crate::__private::HRESULT {
            $crate::__private::unregister_server(&__WINPROV_WBEM_SERVER)
        }
    };
}
