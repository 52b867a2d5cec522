//! WMI providers in safe Rust.
//!
//! This is the first, portable layer of the crate: the author's API, the runtime and a host
//! simulator. What an author gets:
//!
//! - one trait per role — [`InstanceProvider`] (get, enumerate, query, put, delete),
//!   [`MethodProvider`] (exec), [`EventProvider`] (provide events) — every method optional, its
//!   default answering `WBEM_E_PROVIDER_NOT_CAPABLE` (R-WMI-6);
//! - a move-only guard per asynchronous call, branded with the call's lifetime like every
//!   winprov guard: [`Response`] for enumerations and queries (`indicate` in batches of at most
//!   [`BATCH_SIZE`], `progress` only when the client asked with `WBEM_FLAG_SEND_STATUS`,
//!   `finish`), [`GetCall`] (`not_found` is `WBEM_E_NOT_FOUND` without an `Indicate`),
//!   [`PutCall`] (the object path rides in the final status), [`DeleteCall`], [`MethodCall`]
//!   (the out-parameters are indicated once before the final status). Each finishing method
//!   consumes its guard and returns the [`Completed`] proof the trait method must return, so
//!   exactly one final `SetStatus`, after every `Indicate`, is a compile-time matter; a guard
//!   dropped unfinished sends `WBEM_E_FAILED` once and logs an error;
//! - `CancelAsyncCall` handled by the framework ([`runtime::Runtime::cancel_async_call`]):
//!   every call sharing the sink is cancelled, its cancellation trips (the author's loop sees
//!   it, `indicate` answers `Err(Cancelled)`), and its sink gets exactly one final status
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
//!   its instance, method and event registrations, and the MOF that uninstalls them.
//!
//! Not in this layer yet: the COM objects (`IWbemProviderInit`, `IWbemServices`,
//! `IWbemEventProvider` with `#[implement]`), the class factory and DLL exports, the
//! conversion of instances to and from `IWbemClassObject`, the `IWbemContext` of dependent
//! requests, decoupled registration with `IWbemDecoupledRegistrar`. Until then the runtime
//! exchanges plain [`Instance`] maps (which the typed classes convert to and from) and object
//! paths as strings, and the simulator (`testing`, feature `testing`) drives it directly.

pub mod class;
mod host;
pub mod mof;
mod op;
mod provider;
pub mod runtime;
#[cfg(feature = "testing")]
pub mod testing;
mod value;

pub use class::{ClassError, KeyedClass, MethodParameters, WmiClass};
pub use host::{
    EventIndicate, SinkMessage, WBEM_FLAG_SEND_STATUS, WBEM_STATUS_COMPLETE, WBEM_STATUS_PROGRESS,
};
pub use mof::{Hosting, InstanceRegistration, Mof, MofError, Registration};
pub use provider::{
    BATCH_SIZE, Cancellation, DeleteCall, EventProvider, EventSink, GetCall, InstanceProvider,
    MethodCall, MethodProvider, Provider, PutCall, Response,
};
pub use value::{Instance, Value};
pub use winprov_core::{Cancelled, Completed, Delivery, HResult, WaitOutcome};
