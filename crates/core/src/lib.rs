#![doc = include_str!("../README.md")]
// No unsafe code outside the `ffi` and `lease` modules (enforced by a test that reads the
// sources, too).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod boundary;
pub mod call;
pub mod call_slot;
pub mod cancel;
pub mod completion;
pub mod error;
#[allow(unsafe_code)]
pub mod ffi;
pub mod handle;
pub mod host;
#[allow(unsafe_code)]
pub mod lease;
mod park;
// The loom-switchable synchronisation types, for the interface crates' state machines and
// their loom models: not part of the API.
#[doc(hidden)]
pub mod sync;

pub use boundary::{Panic, boundary, boundary_with};
pub use call::{Completed, Issuer, Scope};
pub use call_slot::{CallSlot, Claimed};
pub use cancel::{
    CancelRegistration, CancellationSource, CancellationToken, Cancelled, WaitOutcome,
};
pub use completion::{Completion, CompletionHandle, Delivery, completion};
pub use error::{HResult, LineErr, WsaError};
pub use ffi::PtrError;
pub use handle::{Handle, HandleError, TableFull};
pub use host::{HostMessage, HostSink};
pub use lease::{Lease, LeaseTable};
