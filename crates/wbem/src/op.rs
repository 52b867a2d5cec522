//! One asynchronous call's shared state, and the one final `SetStatus` it delivers.
//!
//! An [`Op`] is shared by the author's guard (through the call's lifetime), the runtime's
//! table of calls in flight (for `CancelAsyncCall`) and the runtime's end of the call. The
//! final status is a core [`CallSlot`], armed when the call starts: whoever claims it delivers
//! the one `SetStatus(WBEM_STATUS_COMPLETE, …)` — the author's guard, the guard's drop, the
//! runtime finishing a leaked guard, or a cancel — and every other claimer returns only once that
//! delivery has happened (R-WMI-3, R-WMI-11).
//!
//! `Indicate` and progress reports go out while no final status was claimed, and the final
//! status is never claimed while one is on its way: a cancel that finds an `Indicate` running
//! only records itself, and the `Indicate`'s thread delivers `WBEM_E_CALL_CANCELLED` when the
//! sink returns. So nothing reaches the sink after the final status, and no lock is held while
//! the sink runs (a sink that calls `CancelAsyncCall` from inside `Indicate` — which WMI
//! documents as not operational — does not deadlock).

use crate::host::{
    CallFlags, CallServices, ResponseSink, Services, SinkMessage, WBEM_STATUS_COMPLETE,
};
use winprov_core::sync::{Mutex, MutexGuard, lock};
use winprov_core::{CallSlot, CancellationSource, CancellationToken, Claimed, Delivery, HResult};

/// What happened to a cancel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CancelOutcome {
    /// The cancel won: the call's final status is `WBEM_E_CALL_CANCELLED` (delivered, or
    /// delivered by the running `Indicate`'s thread as soon as the sink returns).
    Cancelled,
    /// The call had already finished (or been cancelled); nothing changed.
    AlreadyFinished,
}

#[derive(Debug, Default)]
struct State {
    /// The final status was claimed.
    closed: bool,
    /// An `Indicate` or progress report is with the sink.
    sending: bool,
    /// A cancel came while `sending`: the sender delivers `WBEM_E_CALL_CANCELLED`.
    cancel_requested: bool,
}

/// See the [module documentation](self).
pub(crate) struct Op {
    sink: ResponseSink,
    slot: CallSlot,
    state: Mutex<State>,
    cancel: CancellationSource,
    token: CancellationToken,
    /// The call's `lFlags`.
    pub(crate) flags: CallFlags,
    /// The call's dependent-request services (R-WMI-14), when its host gives any.
    services: Option<CallServices>,
}

impl Op {
    pub(crate) fn new(sink: ResponseSink, flags: CallFlags) -> Self {
        let slot = CallSlot::new();
        let armed = slot.arm();
        debug_assert!(armed, "a new slot arms");
        let cancel = CancellationSource::new();
        Self {
            token: cancel.token(),
            sink,
            slot,
            state: Mutex::new(State::default()),
            cancel,
            flags,
            services: None,
        }
    }

    /// This call, whose dependent requests go to `services` (R-WMI-14).
    pub(crate) fn with_services(mut self, services: Option<CallServices>) -> Self {
        self.services = services;
        self
    }

    /// The call's dependent-request services, if its host gave any.
    pub(crate) fn services(&self) -> Option<&dyn Services> {
        self.services.as_deref()
    }

    /// The call's cancellation, tripped by a cancel that won.
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Claims the final status under the state lock; `None` if it was claimed before (then
    /// this returns only once that delivery has happened).
    fn claim_final<'a>(&'a self, mut state: MutexGuard<'_, State>) -> Option<Claimed<'a>> {
        if state.closed {
            drop(state);
            // Waits for a delivery running on another thread.
            let none = self.slot.claim();
            debug_assert!(none.is_none());
            return None;
        }
        state.closed = true;
        let claimed = self.slot.claim();
        drop(state);
        debug_assert!(
            claimed.is_some(),
            "the slot is armed until the state closes"
        );
        claimed
    }

    fn deliver_final(&self, claimed: Claimed<'_>, hresult: HResult, param: Option<String>) {
        let reply = self.sink.deliver(SinkMessage::SetStatus {
            flags: WBEM_STATUS_COMPLETE,
            hresult,
            param,
        });
        drop(claimed);
        if !reply.is_ok() {
            tracing::debug!(%reply, "the client's SetStatus failed (tolerated)");
        }
    }

    /// Sends a non-final message (`Indicate`, progress) unless the call is over or being
    /// cancelled. `Err(())` when nothing was sent.
    pub(crate) fn send(&self, message: SinkMessage) -> Result<HResult, ()> {
        {
            let mut state = lock(&self.state);
            if state.closed || state.cancel_requested {
                return Err(());
            }
            state.sending = true;
        }
        let reply = self.sink.deliver(message);
        let mut state = lock(&self.state);
        state.sending = false;
        if state.cancel_requested && !state.closed {
            // A cancel came while the sink ran: its status is ours to deliver.
            if let Some(claimed) = self.claim_final(state) {
                self.deliver_final(claimed, HResult::WBEM_E_CALL_CANCELLED, None);
            }
        }
        if !reply.is_ok() {
            tracing::debug!(%reply, "the client's Indicate failed (tolerated)");
        }
        Ok(reply)
    }

    /// Delivers the final status, unless the call was already finished or cancelled.
    pub(crate) fn finish(&self, hresult: HResult, param: Option<String>) -> Delivery {
        let state = lock(&self.state);
        match self.claim_final(state) {
            Some(claimed) => {
                self.deliver_final(claimed, hresult, param);
                Delivery::Delivered
            }
            None => Delivery::AlreadyFinished,
        }
    }

    /// `CancelAsyncCall` for this call: unless it finished, its final status becomes
    /// `WBEM_E_CALL_CANCELLED`, and its cancellation trips.
    pub(crate) fn cancel(&self) -> CancelOutcome {
        let mut state = lock(&self.state);
        if state.closed {
            drop(state);
            // Returns once the final status is delivered.
            let none = self.slot.claim();
            debug_assert!(none.is_none(), "a closed state's slot was claimed");
            return CancelOutcome::AlreadyFinished;
        }
        if state.cancel_requested {
            // An earlier cancel is waiting for the running Indicate.
            return CancelOutcome::AlreadyFinished;
        }
        if state.sending {
            state.cancel_requested = true;
            drop(state);
        } else if let Some(claimed) = self.claim_final(state) {
            self.deliver_final(claimed, HResult::WBEM_E_CALL_CANCELLED, None);
        }
        self.cancel.cancel();
        CancelOutcome::Cancelled
    }

    /// Whether the final status was claimed (or a cancel is waiting for an `Indicate`).
    pub(crate) fn is_over(&self) -> bool {
        let state = lock(&self.state);
        state.closed || state.cancel_requested
    }
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op")
            .field("flags", &self.flags)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}
