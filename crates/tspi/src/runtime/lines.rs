//! Lines: `TSPI_lineOpen` and `TSPI_lineClose` (R-TSP-13), call-less requests
//! (`TSPI_lineDevSpecific`), and inbound calls offered through the author's
//! [`LineEvents`] (R-TSP-14).

use super::lifecycle::Phase;
use super::objects::{CallShared, Effect, LineShared, PendingSet, RequestId};
use super::{CallOf, FAILED, Inner};
use crate::dispatch::{EventProc, Gate, Item, NewCallReply, Sent};
use crate::provider::{
    CallEvents, CallerId, Line, LineEvents, LineIndex, LineLink, NewCallError, ServiceProvider,
};
use std::sync::Arc;
use winprov_bindings::tapi;
use winprov_core::sync::{Condvar, Mutex, lock};
use winprov_core::{CancellationToken, LineErr};

/// The runtime's side of one line's [`LineEvents`].
struct LineEventsLink<P: ServiceProvider> {
    inner: &'static Inner<P>,
    line: Arc<LineShared>,
}

impl<P: ServiceProvider> LineLink<P> for LineEventsLink<P> {
    fn offer(&self, call: CallOf<P>, caller: CallerId) -> Result<CallEvents, NewCallError> {
        self.inner.offer(&self.line, call, caller)
    }

    fn is_closed(&self) -> bool {
        !self.line.is_open()
    }

    fn cancellation(&self) -> &CancellationToken {
        self.line.token()
    }

    fn index(&self) -> LineIndex {
        self.line.index
    }
}

impl<P: ServiceProvider> Inner<P> {
    /// `TSPI_lineOpen`. `publish` writes `*lphdLine` (before the author's `open` runs, so an
    /// inbound call offered at once already has a line TAPI knows). The line's turn is held
    /// while the author opens it: a request of the line waits for the author's `Line`.
    pub(crate) fn open(
        &'static self,
        device: u32,
        ht_line: usize,
        version: u32,
        event_proc: Option<EventProc>,
        publish: &dyn Fn(usize) -> Result<(), LineErr>,
    ) -> Result<(), LineErr> {
        let (info, completion) = self.up()?;
        let index = self.line_index(&info, device)?;
        if version < P::LOWEST_VERSION.0 || version > P::HIGHEST_VERSION.0 {
            return Err(LineErr::LINEERR_INCOMPATIBLEAPIVERSION);
        }
        let event_proc = event_proc.ok_or(LineErr::LINEERR_INVALPARAM)?;
        let caps = self.provider.line_caps(index);
        let shared = Arc::new(LineShared {
            gate: winprov_core::sync::Arc::new(Gate::new()),
            index,
            ht_line,
            event_proc,
            completion,
            pending: Arc::new(PendingSet::new()),
            calls: Mutex::new(Vec::new()),
            calls_gone: Condvar::new(),
            caps,
        });
        let raw = {
            let mut life = lock(&self.life);
            if !matches!(life.phase, Phase::Up { .. }) {
                return Err(LineErr::LINEERR_NODRIVER);
            }
            if life.open.contains_key(&index.0) {
                return Err(LineErr::LINEERR_ALLOCATED);
            }
            let handle = self
                .lines
                .insert(Arc::clone(&shared), None)
                .map_err(|_| LineErr::LINEERR_NOMEM)?;
            life.open.insert(index.0, handle.raw());
            handle.raw()
        };
        let undo = |this: &Self| {
            if let Ok(removed) = this.lines.remove(raw) {
                drop(removed);
            }
            let mut life = lock(&this.life);
            if life.open.get(&index.0) == Some(&raw) {
                life.open.remove(&index.0);
            }
            drop(life);
            shared.gate.close();
        };
        let Ok(mut lease) = self.lines.lease(raw) else {
            // Closed before it was published (only a host that forges handles does that).
            return Err(LineErr::LINEERR_INVALLINEHANDLE);
        };
        let _ = lease.wait_turn();
        if let Err(error) = publish(raw) {
            drop(lease);
            undo(self);
            return Err(error);
        }
        let events = LineEvents::new(Arc::new(LineEventsLink {
            inner: self,
            line: Arc::clone(&shared),
        }));
        let opened = winprov_core::boundary("ServiceProvider::open", Err(FAILED), || {
            self.provider.open(index, events)
        });
        match opened {
            Ok(line) if shared.is_open() => {
                *lease.wait_turn().1 = Some(line);
                Ok(())
            }
            Ok(line) => {
                // Closed while opening (only a misbehaving host does that): the close found
                // no author's line to close.
                drop(lease);
                winprov_core::boundary("Line::close", (), || line.close());
                Err(LineErr::LINEERR_INVALLINEHANDLE)
            }
            Err(error) => {
                drop(lease);
                undo(self);
                Err(error)
            }
        }
    }

    /// `TSPI_lineClose` (also used by the final shutdown): R-TSP-13. Closes every call of the
    /// line (or waits for a `TSPI_lineCloseCall` of one on another thread), completes the
    /// call-less requests, waits for the line's turn and closes the author's line.
    pub(crate) fn close_line(&'static self, raw: usize) -> Result<(), LineErr> {
        let mut entry = self
            .lines
            .remove(raw)
            .map_err(|_| LineErr::LINEERR_INVALLINEHANDLE)?;
        let line = Arc::clone(&entry);
        line.gate.close();
        let calls = lock(&line.calls).clone();
        for call in calls {
            if let Ok(removed) = self.calls.remove(call) {
                self.finish_call(call, removed);
            }
        }
        // A `TSPI_lineCloseCall` on another thread took a call first: the line is not closed
        // before that call is (no event of it after this returns, and its `Call::close` before
        // the line's).
        line.wait_for_calls();
        line.pending.terminate();
        let _ = self.dispatch.barrier();
        {
            let mut life = lock(&self.life);
            if life.open.get(&line.index.0) == Some(&raw) {
                life.open.remove(&line.index.0);
            }
        }
        let author = entry.wait_turn().1.take();
        drop(entry);
        if let Some(author) = author {
            winprov_core::boundary("Line::close", (), || author.close());
        }
        Ok(())
    }

    /// `TSPI_lineGetNumAddressIDs`.
    pub(crate) fn num_address_ids(&self, raw: usize) -> Result<u32, LineErr> {
        match self.lines.lease_shared(raw) {
            Ok(_) => Ok(1),
            Err(_) => Err(LineErr::LINEERR_INVALLINEHANDLE),
        }
    }

    /// `TSPI_lineSetDefaultMediaDetection`.
    pub(crate) fn set_default_media_detection(
        &self,
        raw: usize,
        _media: u32,
    ) -> Result<(), LineErr> {
        self.num_address_ids(raw).map(|_| ())
    }

    /// `TSPI_lineDevSpecific` without a call (a call-less request, R-TSP-13).
    pub(crate) fn dev_specific(
        &self,
        id: RequestId,
        line_raw: usize,
        call_raw: usize,
        params: &mut [u8],
    ) -> i32 {
        if call_raw != 0 {
            return match self.calls.lease_shared(call_raw) {
                Ok(_) => LineErr::LINEERR_OPERATIONUNAVAIL.raw(),
                Err(_) => LineErr::LINEERR_INVALCALLHANDLE.raw(),
            };
        }
        let lease = self.lines.lease(line_raw);
        self.serve(
            "Line::dev_specific",
            lease,
            LineErr::LINEERR_INVALLINEHANDLE,
            |line, author, reply| {
                let frame =
                    self.frame(id, line, &line.pending, line.token(), Effect::Nothing, None);
                frame.resolve(reply, |request| author.dev_specific(request, params));
                Ok(())
            },
        )
    }

    /// Offers an inbound call for [`LineEvents::new_call`]: `LINE_NEWCALL`, then
    /// `LINE_CALLSTATE(OFFERING)`; a NULL `HTAPICALL` discards the call (R-TSP-14).
    fn offer(
        &self,
        line: &Arc<LineShared>,
        call: CallOf<P>,
        caller: CallerId,
    ) -> Result<CallEvents, NewCallError> {
        if !line.is_open() {
            return Err(NewCallError::LineClosed);
        }
        if lock(&line.calls).len() >= line.caps.max_calls as usize {
            return Err(NewCallError::TooManyCalls);
        }
        let shared: Arc<CallShared> = self.new_call(
            line,
            0,
            tapi::LINECALLSTATE_OFFERING,
            tapi::LINECALLORIGIN_INBOUND,
            caller,
        );
        let raw = match self.register_call(line, &shared, call) {
            Ok(raw) => raw,
            Err(call) => {
                if let Some(call) = call {
                    winprov_core::boundary("Call::close", (), || {
                        crate::provider::Call::close(call)
                    });
                }
                return Err(NewCallError::LineClosed);
            }
        };
        let reply = winprov_core::sync::Arc::new(NewCallReply::new());
        let sent = self.dispatch.send([Item::NewCall {
            proc: line.event_proc,
            ht_line: line.ht_line,
            hd_call: raw,
            gate: winprov_core::sync::Arc::clone(&line.gate),
            reply: winprov_core::sync::Arc::clone(&reply),
        }]);
        let discard = |this: &Self| {
            if let Ok(entry) = this.calls.remove(raw) {
                this.finish_call(raw, entry);
            }
        };
        match (sent, reply.get()) {
            (Sent::Delivered, Some(0)) => {
                // R-TSP-14: TAPI could not take the call; it hears nothing more of it.
                tracing::info!("TAPI stored a NULL HTAPICALL for LINE_NEWCALL: call discarded");
                discard(self);
                Err(NewCallError::Refused)
            }
            (Sent::Delivered, Some(ht_call)) => {
                shared
                    .ht_call
                    .store(ht_call, winprov_core::sync::Ordering::SeqCst);
                let ticket = {
                    let status = lock(&shared.status);
                    if !shared.is_open() {
                        return Err(NewCallError::LineClosed);
                    }
                    self.dispatch.enqueue([shared.state_item(
                        tapi::LINECALLSTATE_OFFERING,
                        0,
                        status.media,
                    )])
                };
                if let Some(ticket) = ticket {
                    let _ = self.dispatch.wait(ticket);
                }
                Ok(CallEvents::new(shared))
            }
            _ => {
                discard(self);
                Err(NewCallError::LineClosed)
            }
        }
    }
}
