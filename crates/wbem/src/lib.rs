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
//!   (`WBEM_E_SERVER_TOO_BUSY`: the event may be re-fired).
//!
//! Not in this layer yet: the COM objects (`IWbemProviderInit`, `IWbemServices`,
//! `IWbemEventProvider` with `#[implement]`), the class factory and DLL exports, the
//! conversion of instances to and from `IWbemClassObject`, the `IWbemContext` of dependent
//! requests, typed classes and their MOF, decoupled registration. Until then an instance is a
//! plain [`Instance`] map and an object path a string, and the simulator
//! (`testing`, feature `testing`) drives the runtime directly.

mod host;
#[cfg(all(test, loom))]
mod loom_models;
mod op;
mod provider;
pub mod runtime;
#[cfg(feature = "testing")]
pub mod testing;
mod value;

pub use host::{
    EventIndicate, SinkMessage, WBEM_FLAG_SEND_STATUS, WBEM_STATUS_COMPLETE, WBEM_STATUS_PROGRESS,
};
pub use provider::{
    BATCH_SIZE, Cancellation, DeleteCall, EventProvider, EventSink, GetCall, InstanceProvider,
    MethodCall, MethodProvider, Provider, PutCall, Response,
};
pub use value::{Instance, Value};
pub use winprov_core::{Cancelled, Completed, Delivery, HResult, WaitOutcome};
