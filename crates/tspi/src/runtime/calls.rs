//! Calls: what the framework and the author's event sender share about one call
//! ([`CallShared`]), and the call requests — `TSPI_lineMakeCall`, `TSPI_lineDrop`,
//! `TSPI_lineAnswer` — and `TSPI_lineCloseCall` (R-TSP-6 … R-TSP-12).

use super::lines::LineShared;
use super::requests::{Effect, Frame, PendingSet, RequestId};
use super::{CallOf, FAILED, Inner};
use crate::dial::DialString;
use crate::dispatch::{Dispatcher, EventProc, Gate, Item, Ticket};
use crate::provider::{
    Call, CallFactory, CallLink, CallerId, Created, EventError, Line, MakeCall, Request,
    ServiceProvider,
};
use std::sync::Arc;
use winprov_bindings::tapi;
use winprov_core::sync::{AtomicUsize, Mutex, Ordering, lock};
use winprov_core::{CancellationToken, Lease, LineErr, call};

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
    gate: winprov_core::sync::Arc<Gate>,
    pub(super) pending: Arc<PendingSet>,
    dispatch: Arc<Dispatcher>,
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

    /// An accepted `TSPI_lineDrop` request of this call, as the request path makes it (for
    /// loom models).
    #[cfg(all(test, loom))]
    pub(crate) fn accept_drop(
        this: &Arc<Self>,
        id: u32,
        proc: crate::dispatch::CompletionProc,
        live: &'static AtomicUsize,
    ) -> crate::provider::Pending {
        let frame = Frame {
            id,
            proc,
            dispatch: &this.dispatch,
            set: &this.pending,
            token: this.token(),
            effect: Effect::Idle,
            call: Some(this),
            live,
        };
        crate::provider::RequestPort::accept(&frame)
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

impl<P: ServiceProvider> Inner<P> {
    pub(super) fn new_call(
        &self,
        line: &LineShared,
        ht_call: usize,
        state: u32,
        origin: u32,
        caller: CallerId,
    ) -> Arc<CallShared> {
        CallShared::new(
            Arc::clone(&self.dispatch),
            line.event_proc,
            line.ht_line,
            ht_call,
            state,
            origin,
            caller,
        )
    }

    /// Registers a call of `line`. Gives the call back if the line closed meanwhile (`None`
    /// if the table was full, which takes 2^32 live calls).
    pub(super) fn register_call(
        &self,
        line: &Arc<LineShared>,
        shared: &Arc<CallShared>,
        call: CallOf<P>,
    ) -> Result<usize, Option<CallOf<P>>> {
        let mut calls = lock(&line.calls);
        if !line.is_open() {
            return Err(Some(call));
        }
        let entry = CallEntry {
            shared: Arc::clone(shared),
            line: Arc::clone(line),
        };
        let handle = self.calls.insert(entry, Some(call)).map_err(|_| None)?;
        calls.push(handle.raw());
        Ok(handle.raw())
    }

    /// Terminates a call just removed from the table (R-TSP-7 … R-TSP-9): silences it, then
    /// waits for its turn (a request of the call running on another thread) and closes the
    /// author's call. The call leaves its line's list only then, so a `TSPI_lineClose` racing
    /// this waits for it.
    pub(super) fn finish_call(
        &self,
        raw: usize,
        mut entry: Lease<'_, CallEntry, Option<CallOf<P>>>,
    ) {
        let line = Arc::clone(&entry.line);
        entry.shared.terminate();
        let call = entry.wait_turn().1.take();
        drop(entry);
        if let Some(call) = call {
            winprov_core::boundary("Call::close", (), || call.close());
        }
        line.forget_call(raw);
    }

    /// `TSPI_lineCloseCall`.
    pub(crate) fn close_call(&self, raw: usize) -> Result<(), LineErr> {
        let entry = self
            .calls
            .remove(raw)
            .map_err(|_| LineErr::LINEERR_INVALCALLHANDLE)?;
        self.finish_call(raw, entry);
        Ok(())
    }

    /// `TSPI_lineMakeCall`. `publish` writes `*lphdCall`.
    pub(crate) fn make_call(
        &self,
        id: RequestId,
        line_raw: usize,
        ht_call: usize,
        destination: Option<&str>,
        country_code: u32,
        publish: &(dyn Fn(usize) + Sync),
    ) -> i32 {
        let lease = self.lines.lease(line_raw);
        self.serve(
            "Line::make_call",
            lease,
            LineErr::LINEERR_INVALLINEHANDLE,
            |line, author, reply| {
                let caps = &line.caps;
                let destination = destination
                    .map(|text| DialString::parse(text, caps.dev_cap_flags, caps.dial_prompt))
                    .transpose()?;
                if lock(&line.calls).len() >= caps.max_calls as usize {
                    return Err(LineErr::LINEERR_CALLUNAVAIL);
                }
                let frame =
                    self.frame(id, line, &line.pending, line.token(), Effect::Nothing, None);
                let factory = MakeCallFactory {
                    inner: self,
                    frame: &frame,
                    line,
                    ht_call,
                    dialled: destination.as_ref().map(|d| d.as_str().to_string()),
                    publish,
                };
                call::scope(|scope| {
                    let request = Request::new(scope.issuer(), &frame, reply);
                    let make_call = MakeCall::new(request, &factory, destination, country_code);
                    let _ = author.make_call(make_call).delivery();
                });
                Ok(())
            },
        )
    }

    /// `TSPI_lineDrop`.
    pub(crate) fn drop_call(&self, id: RequestId, raw: usize, user_user_info: &[u8]) -> i32 {
        let lease = self.calls.lease(raw);
        self.serve(
            "Call::drop_call",
            lease,
            LineErr::LINEERR_INVALCALLHANDLE,
            |entry, author, reply| {
                let call = &entry.shared;
                if call.current_state() == tapi::LINECALLSTATE_IDLE {
                    return Err(LineErr::LINEERR_INVALCALLSTATE);
                }
                let frame = self.frame(
                    id,
                    &entry.line,
                    &call.pending,
                    call.token(),
                    Effect::Idle,
                    Some(call),
                );
                call::scope(|scope| {
                    let request = Request::new(scope.issuer(), &frame, reply);
                    let _ = author.drop_call(request, user_user_info).delivery();
                });
                Ok(())
            },
        )
    }

    /// `TSPI_lineAnswer`.
    pub(crate) fn answer(&self, id: RequestId, raw: usize, user_user_info: &[u8]) -> i32 {
        let lease = self.calls.lease(raw);
        self.serve(
            "Call::answer",
            lease,
            LineErr::LINEERR_INVALCALLHANDLE,
            |entry, author, reply| {
                let call = &entry.shared;
                let state = call.current_state();
                if state != tapi::LINECALLSTATE_OFFERING && state != tapi::LINECALLSTATE_ACCEPTED {
                    return Err(LineErr::LINEERR_INVALCALLSTATE);
                }
                let frame = self.frame(
                    id,
                    &entry.line,
                    &call.pending,
                    call.token(),
                    Effect::Nothing,
                    None,
                );
                call::scope(|scope| {
                    let request = Request::new(scope.issuer(), &frame, reply);
                    let _ = author.answer(request, user_user_info).delivery();
                });
                Ok(())
            },
        )
    }
}

/// Creates the call of one `TSPI_lineMakeCall` when the author accepts it.
struct MakeCallFactory<'a, P: ServiceProvider> {
    inner: &'a Inner<P>,
    frame: &'a Frame<'a>,
    line: &'a Arc<LineShared>,
    ht_call: usize,
    dialled: Option<String>,
    publish: &'a (dyn Fn(usize) + Sync),
}

impl<P: ServiceProvider> CallFactory<CallOf<P>> for MakeCallFactory<'_, P> {
    fn create(&self, call: CallOf<P>) -> Result<Created, Created> {
        let shared = self.inner.new_call(
            self.line,
            self.ht_call,
            0,
            tapi::LINECALLORIGIN_OUTBOUND,
            CallerId::default(),
        );
        lock(&shared.status).dialled = self.dialled.clone();
        match self.inner.register_call(self.line, &shared, call) {
            Ok(raw) => {
                // R-TSP-6: *lphdCall is written before anything can complete the request.
                (self.publish)(raw);
                let pending = self.frame.accept_in(
                    &shared.pending,
                    shared.token(),
                    Effect::Created,
                    Some(&shared),
                );
                Ok((shared, pending))
            }
            Err(call) => {
                // The line closed meanwhile: the export fails synchronously
                // (LINEERR_INVALLINEHANDLE), so the request must never be completed.
                shared.terminate();
                if let Some(call) = call {
                    winprov_core::boundary("Call::close", (), || call.close());
                }
                let pending = self.frame.detached(shared.token());
                Err((shared, pending))
            }
        }
    }
}
