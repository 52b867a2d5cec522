//! Calls: what the framework and the author's event sender share about one call
//! ([`CallShared`]), and the call requests — `TSPI_lineMakeCall`, `TSPI_lineDrop`,
//! `TSPI_lineAnswer` — and `TSPI_lineCloseCall` (R-TSP-6 … R-TSP-12).

use super::objects::{CallEntry, CallShared, Effect, LineShared, RequestId};
use super::requests::Frame;
use super::{CallOf, Inner};
use crate::dial::DialString;
use crate::provider::{
    Call, CallFactory, CallLink, CallerId, Created, Line, MakeCall, Request, ServiceProvider,
};
use std::sync::Arc;
use winprov_bindings::tapi;
use winprov_core::sync::lock;
use winprov_core::{Lease, LineErr, call};

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
                // Not `Frame::resolve`: the factory borrows the frame for the call's scope.
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
                frame.resolve(reply, |request| author.drop_call(request, user_user_info));
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
                frame.resolve(reply, |request| author.answer(request, user_user_info));
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
