//! The request path: every request export (`TSPI_lineMakeCall`, `TSPI_lineDrop`,
//! `TSPI_lineAnswer`, `TSPI_lineDevSpecific`) goes through [`Inner::serve`], which leases the
//! line or call, waits for its turn, runs the author's method on a [`Frame`] and turns the
//! method's resolution into the export's return value (R-TSP-3, R-TSP-4).
//!
//! A request the author completes at once is delivered on the spot; one it accepts is
//! registered in the [`PendingSet`] of its call (or line), which a close drains.

use super::objects::{CallShared, Effect, LineShared, PendingSet, RequestId};
use super::{FAILED, Inner};
use crate::dispatch::{CompletionProc, Dispatcher, Item, Ticket};
use crate::provider::{Pending, ReplySlot, Request, RequestPort, ServiceProvider, error_value};
use std::sync::Arc;
use std::sync::atomic::Ordering as StdOrdering;
use winprov_core::sync::{AtomicUsize, Ordering};
use winprov_core::{
    CancellationToken, Completed, Delivery, HandleError, Lease, LineErr, call, completion,
};

/// Queues a request's completion (and what its success implies) and waits for its delivery.
fn deliver(
    dispatch: &Dispatcher,
    proc: CompletionProc,
    id: u32,
    result: Result<(), LineErr>,
    effect: Effect,
    call: Option<&CallShared>,
) {
    let raw = match result {
        Ok(()) => 0,
        Err(error) => error_value(error),
    };
    let completion = Item::Completion {
        proc,
        request: id,
        result: raw,
    };
    let ticket: Option<Ticket> = match (effect, call) {
        (Effect::Idle, Some(call)) if raw == 0 => call.enqueue_with_idle(completion),
        (Effect::Created, Some(call)) => call.enqueue_creation(completion),
        _ => dispatch.enqueue([completion]),
    };
    if let Some(ticket) = ticket {
        let _ = dispatch.wait(ticket);
    }
}

/// One request while the author's method runs: everything needed to complete or accept it,
/// borrowed from the leased line or call.
pub(super) struct Frame<'a> {
    pub(super) id: u32,
    pub(super) proc: CompletionProc,
    pub(super) dispatch: &'a Arc<Dispatcher>,
    pub(super) set: &'a Arc<PendingSet>,
    pub(super) token: &'a CancellationToken,
    pub(super) effect: Effect,
    pub(super) call: Option<&'a Arc<CallShared>>,
    pub(super) live: &'static AtomicUsize,
}

impl Frame<'_> {
    /// Registers the request as pending in `set` and returns the author's guard.
    pub(super) fn accept_in(
        &self,
        set: &Arc<PendingSet>,
        token: &CancellationToken,
        effect: Effect,
        call: Option<&Arc<CallShared>>,
    ) -> Pending {
        let (id, proc, live) = (self.id, self.proc, self.live);
        let dispatch = Arc::clone(self.dispatch);
        let call = call.map(Arc::clone);
        let owner = Arc::clone(set);
        let key = set.key();
        live.fetch_add(1, Ordering::SeqCst);
        let on_delivery = move |result: Result<(), LineErr>| {
            deliver(&dispatch, proc, id, result, effect, call.as_deref());
            // Only now: a close that drains the set meanwhile finds this request's handle and
            // waits (in `abort`) until the delivery above has happened.
            owner.remove(key);
            live.fetch_sub(1, Ordering::SeqCst);
        };
        let (guard, handle) = completion(on_delivery, Err(FAILED));
        if !set.insert(key, handle.clone()) {
            // The call or line closed while the author was accepting: finish it now, as its
            // close would have.
            let _ = handle.abort(Err(FAILED));
        }
        Pending {
            guard,
            id,
            cancel: token.clone(),
        }
    }

    /// A guard for a request the export fails synchronously: it delivers nothing.
    pub(super) fn detached(&self, token: &CancellationToken) -> Pending {
        let (guard, handle) = completion(|_: Result<(), LineErr>| {}, Err(FAILED));
        let _ = handle.abort(Err(FAILED));
        Pending {
            guard,
            id: self.id,
            cancel: token.clone(),
        }
    }
}

impl Frame<'_> {
    /// Runs the author's `method` on this request, in a call scope: the [`Request`] it gets
    /// holds the issuer of the proof the method returns; `reply` records the resolution.
    pub(super) fn resolve(
        &self,
        reply: &ReplySlot,
        method: impl for<'call> FnOnce(Request<'call>) -> Completed<'call>,
    ) {
        call::scope(|scope| {
            let _ = method(Request::new(scope.issuer(), self, reply)).delivery();
        });
    }
}

impl RequestPort for Frame<'_> {
    fn id(&self) -> u32 {
        self.id
    }

    fn accept(&self) -> Pending {
        self.accept_in(self.set, self.token, self.effect, self.call)
    }

    fn complete_now(&self, result: Result<(), LineErr>) -> Delivery {
        // The author still holds the turn, so a close of the call or line cannot return
        // before this delivery (it waits for the turn). One that has begun already completes
        // the request as it would have a pending one.
        let result = if self.set.is_closed() {
            Err(FAILED)
        } else {
            result
        };
        deliver(
            self.dispatch,
            self.proc,
            self.id,
            result,
            self.effect,
            self.call.map(|call| &**call),
        );
        Delivery::Delivered
    }
}

impl<P: ServiceProvider> Inner<P> {
    /// A request of `line` (or of one of its calls), pending in `set` if accepted.
    pub(super) fn frame<'a>(
        &'a self,
        id: RequestId,
        line: &LineShared,
        set: &'a Arc<PendingSet>,
        token: &'a CancellationToken,
        effect: Effect,
        call: Option<&'a Arc<CallShared>>,
    ) -> Frame<'a> {
        Frame {
            id: id.0,
            proc: line.completion,
            dispatch: &self.dispatch,
            set,
            token,
            effect,
            call,
            live: self.pending_live,
        }
    }

    /// The one request path. Waits for the turn of the leased line or call (`invalid` if the
    /// handle is unknown or the object closed), runs `run` — the checks, then the author's
    /// method with a [`Request`](crate::provider::Request) made from a [`Frame`] — inside a panic
    /// boundary, and returns the export's value: `dwRequestID` or a negative `LINEERR_*`,
    /// never 0 (R-TSP-3). `run` returns `Err` for a request refused before the author sees
    /// it.
    pub(super) fn serve<S, A>(
        &self,
        export: &'static str,
        lease: Result<Lease<'_, S, Option<A>>, HandleError>,
        invalid: LineErr,
        run: impl FnOnce(&S, &mut A, &ReplySlot) -> Result<(), LineErr>,
    ) -> i32 {
        let Ok(mut lease) = lease else {
            return invalid.raw();
        };
        let (shared, author) = lease.wait_turn();
        let Some(author) = author.as_mut() else {
            // Being closed: the close took the author.
            return invalid.raw();
        };
        let reply = ReplySlot::new(0);
        #[cfg(feature = "testing")]
        self.entered.enter();
        winprov_core::boundary(export, (), || {
            if let Err(error) = run(shared, author, &reply) {
                reply.store(error.raw(), StdOrdering::SeqCst);
            }
        });
        match reply.load(StdOrdering::SeqCst) {
            0 => {
                tracing::error!(
                    export,
                    "the request was neither rejected nor accepted (panic)"
                );
                FAILED.raw()
            }
            value => value,
        }
    }
}

#[cfg(all(test, loom))]
impl CallShared {
    /// An accepted `TSPI_lineDrop` request of this call, as the request path makes it (for
    /// loom models).
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
}
