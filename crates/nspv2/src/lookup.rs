//! One lookup's shared state, and the one delivery of each of its NextEx calls.
//!
//! A NextEx call is an [`Op`]: a core [`CallSlot`] armed for the call, the host's
//! `hAsyncCall` and the code the call completed with. The lookup embeds one `Op`, reused call
//! after call by the NextEx that holds the lookup's turn (the common case: no allocation); a
//! NextEx that has to wait for the turn gets an `Op` of its own, registered in the lookup while
//! it runs. Whoever claims an `Op`'s slot delivers: the author's guard ([`NextDelivery`], with
//! the caller's buffer), the framework at the end of the call (a leaked guard), or End
//! ([`LookupShared::end`], which closes every `Op` of the lookup). Every other claimer returns
//! only once that delivery has happened.
//!
//! The caller's buffer is a [`ResultBuffer<'call>`](ResultBuffer): a borrow for the duration of
//! the NextEx call, held only by the call's own guard. End's delivery never needs it (it only
//! reports `WSA_E_CANCELLED`), so nothing can write to the buffer after the call returned —
//! the borrow checker says so, not a drop order.

use crate::host::{self, NO_ERROR, Sink};
use crate::query::{ControlFlags, QueryResult};
use crate::wire::{self, ResultContext};
use winprov_core::sync::{Arc, AtomicBool, AtomicI32, AtomicUsize, Mutex, Ordering, lock};
use winprov_core::{CallSlot, CancellationSource, CancellationToken, Claimed, Delivery, WsaError};

/// What a NextEx call ends with.
#[derive(Debug)]
pub(crate) enum NextOutcome {
    Found(QueryResult),
    NoMore,
    Failed(WsaError),
    Cancelled,
    /// The call leased the lookup just before End retired it, and reached it only after End
    /// had closed it: for this call the handle is already released (`WSA_INVALID_HANDLE`,
    /// R-NSP-3), and End, which has returned or is returning, did not see it.
    Released,
}

/// The `lpdwBufferLength` / `lpqsResults` pair of one NextEx call, borrowed for the call.
#[derive(Debug)]
pub(crate) struct ResultBuffer<'call> {
    length: &'call mut u32,
    data: &'call mut [u8],
}

impl<'call> ResultBuffer<'call> {
    /// The caller's length word and the `*length` bytes it describes.
    pub(crate) fn new(length: &'call mut u32, data: &'call mut [u8]) -> Self {
        Self { length, data }
    }

    /// Runs `fill` over the buffer's bytes and their address (the base of the pointers a
    /// result writes into them).
    pub(crate) fn write<R>(&mut self, fill: impl FnOnce(&mut [u8], usize) -> R) -> R {
        // An empty buffer has no address to speak of (the host may pass NULL for it).
        let base = match self.data.is_empty() {
            true => 0,
            false => self.data.as_ptr().addr(),
        };
        fill(self.data, base)
    }

    /// Reports the size a result needs (`WSAEFAULT` answers).
    pub(crate) fn set_needed(&mut self, needed: u32) {
        *self.length = needed;
    }
}

/// One NextEx call's delivery state.
#[derive(Debug)]
pub(crate) struct Op {
    slot: CallSlot,
    /// The call's `hAsyncCall`, stored before the slot arms.
    async_call: AtomicUsize,
    /// The code the call completed with, stored by its delivery.
    code: AtomicI32,
}

impl Op {
    pub(crate) fn new() -> Self {
        Self {
            slot: CallSlot::new(),
            async_call: AtomicUsize::new(0),
            code: AtomicI32::new(NO_ERROR),
        }
    }

    /// Starts a call on this `Op`; `false` if End closed it (or its last call is still being
    /// delivered, which the owner's end-of-call claim rules out).
    #[inline]
    pub(crate) fn arm(&self, async_call: usize) -> bool {
        self.async_call.store(async_call, Ordering::Relaxed);
        self.slot.arm()
    }

    /// The code the call completed with.
    #[inline]
    pub(crate) fn code(&self) -> i32 {
        self.code.load(Ordering::Relaxed)
    }
}

/// The result kept for a retry, and the end.
struct Progress {
    /// The result that did not fit the caller's buffer, kept for the retry (R-NSP-5).
    pending: Option<QueryResult>,
    /// The author reported the end (R-NSP-4): later calls answer `WSA_E_NO_MORE` directly.
    exhausted: bool,
}

/// A lookup's state that does not depend on the provider's types.
pub(crate) struct LookupShared {
    cancel: CancellationSource,
    pub(crate) token: CancellationToken,
    pub(crate) begin_flags: ControlFlags,
    /// The session the lookup was begun in.
    pub(crate) session: usize,
    context: ResultContext,
    sink: Sink,
    /// The call of the NextEx that holds the lookup's turn, reused call after call.
    pub(crate) op: Op,
    progress: Mutex<Progress>,
    /// Whether `progress` holds a pending result or the end: lets NextEx skip its lock.
    replay: AtomicBool,
    /// Calls that had to wait for the turn (another NextEx was running): End closes them too.
    waiting: Mutex<Vec<Arc<Op>>>,
}

impl LookupShared {
    pub(crate) fn new(
        begin_flags: ControlFlags,
        session: usize,
        context: ResultContext,
        sink: Sink,
    ) -> Self {
        let cancel = CancellationSource::new();
        let token = cancel.token();
        Self {
            cancel,
            token,
            begin_flags,
            session,
            context,
            sink,
            op: Op::new(),
            progress: Mutex::new(Progress {
                pending: None,
                exhausted: false,
            }),
            replay: AtomicBool::new(false),
            waiting: Mutex::new(Vec::new()),
        }
    }

    /// `NSPv2LookupServiceEnd` (the handle is already removed): trips the cancellation and
    /// completes every running NextEx with `WSA_E_CANCELLED` itself — or waits for a delivery
    /// in progress — so that none is completed after End returns.
    pub(crate) fn end(&self) {
        self.cancel.cancel();
        self.close(&self.op);
        let waiting: Vec<_> = lock(&self.waiting).iter().map(Arc::clone).collect();
        for op in waiting {
            self.close(&op);
        }
    }

    fn close(&self, op: &Op) {
        if let Some(claimed) = op.slot.close() {
            self.deliver(op, claimed, NextOutcome::Cancelled, None);
        }
    }

    /// Registers a call that waits for the turn, so that End completes it meanwhile.
    pub(crate) fn register(&self, op: &Arc<Op>) {
        lock(&self.waiting).push(Arc::clone(op));
    }

    /// The calls registered (for the simulator).
    #[cfg(feature = "testing")]
    pub(crate) fn waiting_count(&self) -> usize {
        lock(&self.waiting).len()
    }

    pub(crate) fn unregister(&self, op: &Arc<Op>) {
        lock(&self.waiting).retain(|known| !Arc::ptr_eq(known, op));
    }

    /// Ends the call on `op` however it ended: finishes a guard the author leaked
    /// (`WSASYSCALLFAILURE`), or waits for a delivery End runs on another thread. Afterwards
    /// the `Op` is free for the next call (or closed).
    #[inline]
    pub(crate) fn end_of_call(&self, op: &Op) {
        if let Some(claimed) = op.slot.claim() {
            self.leaked(op, claimed);
        }
    }

    #[cold]
    fn leaked(&self, op: &Op, claimed: Claimed<'_>) {
        tracing::debug!("NextEx guard leaked: completed by the framework");
        let failure = NextOutcome::Failed(WsaError::WSASYSCALLFAILURE);
        self.deliver(op, claimed, failure, None);
    }

    /// The one delivery of the call on `op` (claimed by the caller): writes a result into the
    /// caller's buffer (only the call's own guard has it), records the end or a result that
    /// did not fit, completes the host's call and records the code. Once the lookup is ended
    /// every outcome becomes `WSA_E_CANCELLED`.
    #[inline]
    fn deliver(
        &self,
        op: &Op,
        claimed: Claimed<'_>,
        outcome: NextOutcome,
        buffer: Option<(&mut ResultBuffer<'_>, ControlFlags)>,
    ) {
        let code = if let NextOutcome::Released = outcome {
            WsaError::WSA_INVALID_HANDLE.raw()
        } else if self.token.is_cancelled() {
            WsaError::WSA_E_CANCELLED.raw()
        } else {
            match outcome {
                NextOutcome::Cancelled => WsaError::WSA_E_CANCELLED.raw(),
                NextOutcome::Released => WsaError::WSA_INVALID_HANDLE.raw(),
                NextOutcome::Failed(error) => error.raw(),
                NextOutcome::NoMore => {
                    lock(&self.progress).exhausted = true;
                    self.replay.store(true, Ordering::Release);
                    WsaError::WSA_E_NO_MORE.raw()
                }
                NextOutcome::Found(result) => match buffer {
                    // Only End and the framework deliver without the buffer, never a result.
                    None => WsaError::WSASYSCALLFAILURE.raw(),
                    Some((buffer, flags)) => self.write(buffer, flags, result),
                },
            }
        };
        let async_call = op.async_call.load(Ordering::Relaxed);
        host::complete(&self.sink, async_call, code);
        op.code.store(code, Ordering::Relaxed);
        drop(claimed);
    }

    /// Serializes `result` into the caller's buffer; keeps it for the retry if it does not fit.
    #[inline]
    fn write(
        &self,
        buffer: &mut ResultBuffer<'_>,
        flags: ControlFlags,
        result: QueryResult,
    ) -> i32 {
        match buffer.write(|bytes, base| wire::encode(&result, flags, &self.context, bytes, base)) {
            Ok(_) => NO_ERROR,
            Err(too_small) => {
                let code = match u32::try_from(too_small.needed) {
                    Ok(needed) => {
                        buffer.set_needed(needed);
                        WsaError::WSAEFAULT.raw()
                    }
                    Err(_) => WsaError::WSA_NOT_ENOUGH_MEMORY.raw(),
                };
                lock(&self.progress).pending = Some(result);
                self.replay.store(true, Ordering::Release);
                code
            }
        }
    }

    /// The pending result or the end, if there is one to answer with instead of asking the
    /// author. Called by the holder of the lookup's turn.
    #[inline]
    pub(crate) fn replay(&self, flags: ControlFlags) -> Option<NextOutcome> {
        if !self.replay.load(Ordering::Acquire) {
            return None;
        }
        let mut progress = lock(&self.progress);
        let replay = if progress.exhausted {
            Some(NextOutcome::NoMore)
        } else {
            match progress.pending.take() {
                Some(_) if flags.contains(ControlFlags::FLUSHPREVIOUS) => None,
                Some(result) => Some(NextOutcome::Found(result)),
                None => None,
            }
        };
        self.replay.store(progress.exhausted, Ordering::Release);
        replay
    }
}

/// The framework's half of an author's NextEx guard: the call's `Op` and the caller's buffer.
/// Dropped uncompleted (a panic, an early return) it completes the call with
/// `WSASYSCALLFAILURE`.
pub(crate) struct NextDelivery<'call> {
    shared: &'call LookupShared,
    op: &'call Op,
    buffer: ResultBuffer<'call>,
    flags: ControlFlags,
    finished: bool,
}

impl<'call> NextDelivery<'call> {
    pub(crate) fn new(
        shared: &'call LookupShared,
        op: &'call Op,
        buffer: ResultBuffer<'call>,
        flags: ControlFlags,
    ) -> Self {
        Self {
            shared,
            op,
            buffer,
            flags,
            finished: false,
        }
    }

    /// The lookup's cancellation.
    pub(crate) fn token(&self) -> &'call CancellationToken {
        &self.shared.token
    }

    /// Completes the call with `outcome`, unless End already did.
    #[inline]
    pub(crate) fn complete(mut self, outcome: NextOutcome) -> Delivery {
        self.finish(outcome)
    }

    #[inline]
    fn finish(&mut self, outcome: NextOutcome) -> Delivery {
        self.finished = true;
        match self.op.slot.claim() {
            Some(claimed) => {
                let buffer = Some((&mut self.buffer, self.flags));
                self.shared.deliver(self.op, claimed, outcome, buffer);
                Delivery::Delivered
            }
            None => {
                tracing::debug!("complete() after the lookup was ended: ignored");
                Delivery::AlreadyFinished
            }
        }
    }
}

impl Drop for NextDelivery<'_> {
    fn drop(&mut self) {
        if !self.finished {
            tracing::debug!("NextEx guard dropped uncompleted");
            let _ = self.finish(NextOutcome::Failed(WsaError::WSASYSCALLFAILURE));
        }
    }
}

impl std::fmt::Debug for NextDelivery<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextDelivery")
            .field("flags", &self.flags)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
