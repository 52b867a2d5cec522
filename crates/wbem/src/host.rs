//! What the provider tells WMI: the messages of a call's response sink (`IWbemObjectSink`
//! `Indicate` / `SetStatus`) and of an event provider's sink (`Indicate` only). Each call is
//! given its sink: the COM layer wraps the client's `IWbemObjectSink`, a host simulator may
//! give a recorder of its own. What a call may ask of WMI while it runs (its dependent
//! requests, R-WMI-14) is the call's [`Services`].

use crate::value::Instance;
use std::sync::Arc;
use winprov_core::{HResult, HostMessage, HostSink};

/// `lFlags` of `SetStatus`: the final status.
pub const WBEM_STATUS_COMPLETE: i32 = 0;
/// `lFlags` of `SetStatus`: a progress report (`hResult` = `MAKELONG(done, total)`).
pub const WBEM_STATUS_PROGRESS: i32 = 2;
/// `lFlags` of an `*Async` call: the client wants progress reports.
pub const WBEM_FLAG_SEND_STATUS: i32 = 0x80;

/// One call of the client's `IWbemObjectSink`.
#[derive(Clone, Debug, PartialEq)]
pub enum SinkMessage {
    /// `Indicate(objects.len(), objects)`.
    Indicate {
        /// The objects, in order.
        objects: Vec<Instance>,
    },
    /// `SetStatus(flags, hresult, param, NULL)`.
    SetStatus {
        /// [`WBEM_STATUS_COMPLETE`] or [`WBEM_STATUS_PROGRESS`].
        flags: i32,
        /// The status (or, for progress, `MAKELONG(done, total)`).
        hresult: HResult,
        /// `strParam`: the object path of a `PutInstanceAsync` (R-WMI-9), else `None`.
        param: Option<String>,
    },
}

impl SinkMessage {
    /// Whether this is the final `SetStatus(WBEM_STATUS_COMPLETE, …)`.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            SinkMessage::SetStatus {
                flags: WBEM_STATUS_COMPLETE,
                ..
            }
        )
    }
}

impl HostMessage for SinkMessage {
    /// What the sink's method returned; a failure is tolerated (logged, never fatal).
    type Reply = HResult;
}

/// One `Indicate` on an event provider's sink. There is no `SetStatus` message for that sink
/// (R-WMI-10): nothing in the crate can send one.
#[derive(Clone, Debug, PartialEq)]
pub struct EventIndicate {
    /// The event objects.
    pub objects: Vec<Instance>,
}

impl HostMessage for EventIndicate {
    /// What the sink's `Indicate` returned (`WBEM_E_SERVER_TOO_BUSY`: the event may be re-fired).
    type Reply = HResult;
}

/// A call's response sink, as the runtime is given it.
pub type ResponseSink = Arc<dyn HostSink<SinkMessage>>;
/// An event provider's sink, as the runtime is given it.
pub type EventHostSink = Arc<dyn HostSink<EventIndicate>>;

/// What a call may ask of WMI while it runs: its *dependent* requests, made on the namespace
/// the provider was initialized with and with the `IWbemContext` the call received (R-WMI-14).
/// The COM layer implements it for every call; an author reaches it through the guard's
/// `context()`.
pub trait Services: Send + Sync {
    /// `IWbemServices::GetObject(path)` with the call's context: the instance (or class) `path`
    /// names.
    fn get_object(&self, path: &str) -> Result<Instance, HResult>;
}

/// A call's dependent-request services, as the runtime is given them.
pub type CallServices = Arc<dyn Services>;
