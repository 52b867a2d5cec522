//! What the provider tells Winsock: the completion of one asynchronous call
//! (`WSAProviderCompleteAsyncCall`). Every runtime instance is given its sink when it is made:
//! the exports' registry sends to Winsock, a host simulator's to its recorder.

use winprov_core::{HostMessage, HostSink};

/// `WSAProviderCompleteAsyncCall(hAsyncCall, iRetCode)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AsyncCompletion {
    /// The host's `hAsyncCall` of the call being completed.
    pub(crate) async_call: usize,
    /// `NO_ERROR` or a `WSA*` code.
    pub(crate) code: i32,
}

impl HostMessage for AsyncCompletion {
    type Reply = ();
}

/// The sink a registry and its lookups complete calls through.
pub(crate) type Sink = std::sync::Arc<dyn HostSink<AsyncCompletion>>;

/// `NO_ERROR`.
pub(crate) const NO_ERROR: i32 = 0;

/// Completes the host's call `async_call` with `code` through `sink`. A NULL `hAsyncCall`
/// names no call: nothing is sent.
pub(crate) fn complete(sink: &Sink, async_call: usize, code: i32) {
    if async_call == 0 {
        tracing::warn!(code, "NULL hAsyncCall: nothing to complete");
        return;
    }
    sink.deliver(AsyncCompletion { async_call, code });
}
