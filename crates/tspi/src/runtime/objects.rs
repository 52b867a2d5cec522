//! The shared state of lines, calls and requests: what the framework, the author's event
//! senders and guards, and the close paths all see. The request path (`requests`), the call
//! and line operations (`calls`, `lines`) build on it; it names none of them.

use super::FAILED;
use crate::dispatch::{CompletionProc, Dispatcher, EventProc, Gate, Item, Ticket};
use crate::provider::{CallLink, CallerId, EventError, LineCaps, LineIndex};
use std::collections::HashMap;
use std::sync::Arc;
use winprov_bindings::tapi;
use winprov_core::sync::{AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex, Ordering, lock};
use winprov_core::{CancellationToken, CompletionHandle, LineErr};

/// TAPI's `dwRequestID`, validated: positive as a `LONG`, so the export's return value tells
/// it from a `LINEERR_*` (R-TSP-3).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestId(pub(super) u32);

impl RequestId {
    pub(crate) fn new(raw: u32) -> Result<Self, LineErr> {
        if raw == 0 || raw > i32::MAX as u32 {
            return Err(LineErr::LINEERR_INVALPARAM);
        }
        Ok(Self(raw))
    }
}

/// The requests of one call or line that are accepted and not yet completed.
pub(crate) struct PendingSet {
    entries: Mutex<HashMap<u64, CompletionHandle<'static, Result<(), LineErr>>>>,
    next_key: AtomicU64,
    /// Set under the `entries` lock by [`terminate`](Self::terminate); read under it by
    /// [`insert`](Self::insert) and without it by requests completed at once.
    closed: AtomicBool,
}

impl PendingSet {
    pub(super) fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            next_key: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    pub(super) fn key(&self) -> u64 {
        self.next_key.fetch_add(1, Ordering::Relaxed)
    }

    /// `false` if the set was closed: the caller aborts the request itself.
    pub(super) fn insert(
        &self,
        key: u64,
        handle: CompletionHandle<'static, Result<(), LineErr>>,
    ) -> bool {
        let mut entries = lock(&self.entries);
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        entries.insert(key, handle);
        true
    }

    pub(super) fn remove(&self, key: u64) {
        lock(&self.entries).remove(&key);
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the set and completes every request in it with `LINEERR_OPERATIONFAILED`; when
    /// this returns, each of them has been delivered (by this thread or by the one that was
    /// completing it).
    pub(super) fn terminate(&self) -> usize {
        let handles: Vec<_> = {
            let mut entries = lock(&self.entries);
            self.closed.store(true, Ordering::Release);
            entries.drain().map(|(_, handle)| handle).collect()
        };
        let count = handles.len();
        for handle in handles {
            let _ = handle.abort(Err(FAILED));
        }
        count
    }
}

/// What else a request's success sends, in the same dispatcher turn as its completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Effect {
    Nothing,
    /// The creating request of an outbound call: its success makes the call known to TAPI
    /// (R-TSP-6) — unless the call was dropped meanwhile, which turns it into a failure.
    Created,
    /// A successful drop: the call goes `IDLE` (R-TSP-10).
    Idle,
}

#[derive(Debug)]
pub(super) struct CallStatus {
    /// `LINECALLSTATE_*`; 0 until the creating request succeeded.
    pub(super) state: u32,
    /// TAPI knows the call: its creating request succeeded (outbound) or it was offered.
    created: bool,
    pub(super) mode: u32,
    pub(super) media: u32,
    pub(super) origin: u32,
    pub(super) dialled: Option<String>,
    pub(super) caller: CallerId,
}

/// What the framework and the author's [`CallEvents`](crate::provider::CallEvents) share about one call.
pub(crate) struct CallShared {
    /// The call's one closed state: closed by whoever terminates the call; its token is the
    /// cancellation the author sees.
    pub(super) gate: winprov_core::sync::Arc<Gate>,
    pub(super) pending: Arc<PendingSet>,
    pub(super) dispatch: Arc<Dispatcher>,
    event_proc: EventProc,
    ht_line: usize,
    pub(super) ht_call: AtomicUsize,
    pub(super) status: Mutex<CallStatus>,
    pub(super) id: u32,
}

static CALL_IDS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

impl CallShared {
    pub(crate) fn new(
        dispatch: Arc<Dispatcher>,
        event_proc: EventProc,
        ht_line: usize,
        ht_call: usize,
        state: u32,
        origin: u32,
        caller: CallerId,
    ) -> Arc<Self> {
        Arc::new(Self {
            gate: winprov_core::sync::Arc::new(Gate::new()),
            pending: Arc::new(PendingSet::new()),
            dispatch,
            event_proc,
            ht_line,
            ht_call: AtomicUsize::new(ht_call),
            status: Mutex::new(CallStatus {
                state,
                created: origin == tapi::LINECALLORIGIN_INBOUND,
                mode: 0,
                media: tapi::LINEMEDIAMODE_INTERACTIVEVOICE,
                origin,
                dialled: None,
                caller,
            }),
            id: CALL_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    pub(super) fn token(&self) -> &CancellationToken {
        self.gate.token()
    }

    pub(super) fn is_open(&self) -> bool {
        self.gate.is_open()
    }

    pub(super) fn state_item(&self, state: u32, mode: u32, media: u32) -> Item {
        Item::Event {
            proc: self.event_proc,
            ht_line: self.ht_line,
            ht_call: self.ht_call.load(Ordering::SeqCst),
            msg: tapi::LINE_CALLSTATE as u32,
            params: [state as usize, mode as usize, media as usize],
            gate: winprov_core::sync::Arc::clone(&self.gate),
        }
    }

    /// A successful drop's completion and the `IDLE` it implies, in one turn. A call TAPI
    /// does not know yet (its creating request is pending) gets no event: it just goes idle,
    /// and its creating request will fail.
    pub(super) fn enqueue_with_idle(&self, completion: Item) -> Option<Ticket> {
        let mut status = lock(&self.status);
        if !status.created {
            status.state = tapi::LINECALLSTATE_IDLE;
            return self.dispatch.enqueue([completion]);
        }
        if status.state == tapi::LINECALLSTATE_IDLE || !self.gate.is_open() {
            return self.dispatch.enqueue([completion]);
        }
        status.state = tapi::LINECALLSTATE_IDLE;
        status.mode = 0;
        let idle = self.state_item(tapi::LINECALLSTATE_IDLE, 0, status.media);
        self.dispatch.enqueue([completion, idle])
    }

    /// The creating request's completion: success makes the call known (and able to report
    /// events), unless it was dropped before, which reports `LINEERR_OPERATIONFAILED` instead.
    pub(super) fn enqueue_creation(&self, completion: Item) -> Option<Ticket> {
        let mut status = lock(&self.status);
        let completion = match completion {
            Item::Completion {
                proc,
                request,
                result: 0,
            } if status.state == tapi::LINECALLSTATE_IDLE => Item::Completion {
                proc,
                request,
                result: FAILED.raw(),
            },
            Item::Completion { result: 0, .. } => {
                status.created = true;
                completion
            }
            other => other,
        };
        self.dispatch.enqueue([completion])
    }

    /// Silences the call: after this returns no event carries its handle (R-TSP-9), and every
    /// pending request was completed with `LINEERR_OPERATIONFAILED` (R-TSP-7, R-TSP-8). An
    /// event queued before the gate closed is dropped at delivery, which the barrier waits for.
    pub(crate) fn terminate(&self) {
        self.gate.close();
        self.pending.terminate();
        let _ = self.dispatch.barrier();
    }
}

impl CallLink for CallShared {
    fn report_state(&self, state: u32, mode: u32) -> Result<(), EventError> {
        let ticket = {
            let mut status = lock(&self.status);
            if !self.gate.is_open() {
                tracing::debug!(state, "LINE_CALLSTATE after the call was closed: not sent");
                return Err(EventError::Closed);
            }
            if status.state == tapi::LINECALLSTATE_IDLE {
                tracing::debug!(state, "LINE_CALLSTATE for an idle call: not sent");
                return Err(EventError::Idle);
            }
            status.state = state;
            status.mode = mode;
            self.dispatch
                .enqueue([self.state_item(state, mode, status.media)])
        };
        if let Some(ticket) = ticket {
            let _ = self.dispatch.wait(ticket);
        }
        Ok(())
    }

    fn is_closed(&self) -> bool {
        !self.gate.is_open()
    }

    fn is_created(&self) -> bool {
        lock(&self.status).created
    }

    fn cancellation(&self) -> &CancellationToken {
        self.gate.token()
    }

    fn current_state(&self) -> u32 {
        lock(&self.status).state
    }
}

/// The shared part of a call's entry in the call table (the exclusive part is the author's
/// call, `None` once closed).
pub(crate) struct CallEntry {
    pub(super) shared: Arc<CallShared>,
    pub(super) line: Arc<LineShared>,
}

/// What the framework and the author's [`LineEvents`] share about one open line.
pub(crate) struct LineShared {
    /// The line's one closed state; its token is the cancellation the author sees.
    pub(super) gate: winprov_core::sync::Arc<Gate>,
    pub(super) index: LineIndex,
    pub(super) ht_line: usize,
    pub(super) event_proc: EventProc,
    /// TAPI's `ASYNC_COMPLETION` from the `TSPI_providerInit` the line was opened under (a line
    /// never outlives its Init/Shutdown pair), so requests need no lifecycle lock.
    pub(super) completion: CompletionProc,
    /// Call-less requests.
    pub(super) pending: Arc<PendingSet>,
    /// The `HDRVCALL` of each of the line's calls; a call leaves the list once it is closed.
    pub(super) calls: Mutex<Vec<usize>>,
    /// Signalled when a call leaves `calls`.
    pub(super) calls_gone: Condvar,
    pub(super) caps: LineCaps,
}

impl LineShared {
    pub(super) fn is_open(&self) -> bool {
        self.gate.is_open()
    }

    pub(super) fn token(&self) -> &CancellationToken {
        self.gate.token()
    }

    /// A closed call leaves the line.
    pub(super) fn forget_call(&self, raw: usize) {
        lock(&self.calls).retain(|call| *call != raw);
        self.calls_gone.notify_all();
    }

    /// Waits until every call of the (closed) line is closed, by whichever thread closes it.
    pub(super) fn wait_for_calls(&self) {
        let mut calls = lock(&self.calls);
        while !calls.is_empty() {
            calls = self
                .calls_gone
                .wait(calls)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}
