//! What the provider tells WMI: the messages of a call's response sink (`IWbemObjectSink`
//! `Indicate` / `SetStatus`) and of an event provider's sink (`Indicate` only). Each call is
//! given its sink: the COM layer wraps the client's `IWbemObjectSink`, a host simulator may
//! give a recorder of its own. What a call may ask of WMI while it runs (its dependent
//! requests, R-WMI-14) is the call's [`Services`].

use crate::value::Instance;
use std::sync::Arc;
use winprov_bindings::wbem;
use winprov_core::{HResult, HostMessage, HostSink};

/// `lFlags` of `SetStatus`: the final status.
pub const WBEM_STATUS_COMPLETE: i32 = 0;
/// `lFlags` of `SetStatus`: a progress report (`hResult` = `MAKELONG(done, total)`).
pub const WBEM_STATUS_PROGRESS: i32 = 2;
bitflags::bitflags! {
    /// `lFlags` of a call (`WBEM_FLAG_*`): the raw value is `bits()`, and bits this crate
    /// does not name are kept (`from_bits_retain`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct CallFlags: i32 {
        /// `WBEM_FLAG_UPDATE_ONLY` (`PutInstanceAsync`): the instance must exist.
        const UPDATE_ONLY = wbem::WBEM_FLAG_UPDATE_ONLY.0;
        /// `WBEM_FLAG_CREATE_ONLY` (`PutInstanceAsync`): the instance must not exist.
        const CREATE_ONLY = wbem::WBEM_FLAG_CREATE_ONLY.0;
        /// `WBEM_FLAG_RETURN_IMMEDIATELY`.
        const RETURN_IMMEDIATELY = wbem::WBEM_FLAG_RETURN_IMMEDIATELY.0;
        /// `WBEM_FLAG_FORWARD_ONLY`.
        const FORWARD_ONLY = wbem::WBEM_FLAG_FORWARD_ONLY.0;
        /// `WBEM_FLAG_SEND_STATUS`: the client wants progress reports.
        const SEND_STATUS = wbem::WBEM_FLAG_SEND_STATUS.0;
        /// `WBEM_FLAG_ENSURE_LOCATABLE`.
        const ENSURE_LOCATABLE = wbem::WBEM_FLAG_ENSURE_LOCATABLE.0;
        /// `WBEM_FLAG_DIRECT_READ`.
        const DIRECT_READ = wbem::WBEM_FLAG_DIRECT_READ.0;
        /// `WBEM_FLAG_USE_AMENDED_QUALIFIERS`.
        const USE_AMENDED_QUALIFIERS = wbem::WBEM_FLAG_USE_AMENDED_QUALIFIERS.0;
        /// `WBEM_FLAG_ADVISORY`.
        const ADVISORY = wbem::WBEM_FLAG_ADVISORY.0;
        // Bits of later versions are kept as they are.
        const _ = !0;
    }
}

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
