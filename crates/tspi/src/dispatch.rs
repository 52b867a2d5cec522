//! Callbacks into TAPI, one at a time (R-TSP-5), in the order they were sent.
//!
//! Every `ASYNC_COMPLETION` and `LINEEVENT` call goes through one [`Dispatcher`] per provider.
//! A sender queues its items and, if no thread is delivering, delivers the queue itself up to
//! its last item; otherwise it waits until the delivering thread has passed its items (then it
//! may become the deliverer for what is left). So:
//!
//! - callbacks never overlap, and no lock is held while TAPI's callback runs (the queue lock is
//!   released around each delivery); author code never runs inside the dispatcher;
//! - when [`Dispatcher::send`] returns, its items *have been delivered* (or dropped by a closed
//!   gate): "complete every pending request before `TSPI_lineCloseCall` returns" is a plain
//!   sequence of sends;
//! - a send from inside a callback (TAPI does not do that, a host simulator might) is queued and
//!   delivered by the running dispatch loop right after the current callback returns;
//! - events carry the [`Gate`] of their line or call, checked at delivery time: once a gate is
//!   closed and a [`Dispatcher::barrier`] returned, no event behind it reaches TAPI (R-TSP-9,
//!   R-TSP-13), even one queued before the gate closed.

use std::collections::VecDeque;
use winprov_bindings::tapi::{HTAPICALL, HTAPILINE};
use winprov_core::sync::{
    Arc, AtomicUsize, Condvar, Mutex, Ordering, ThreadId, current_thread, lock,
};
use winprov_core::{CancellationSource, CancellationToken, HostMessage, HostSink};

/// TAPI's `ASYNC_COMPLETION` (tspi.h), never null here.
pub(crate) type CompletionProc = unsafe extern "system" fn(request_id: u32, result: i32);
/// TAPI's `LINEEVENT` (tspi.h), never null here.
pub(crate) type EventProc = unsafe extern "system" fn(
    ht_line: HTAPILINE,
    ht_call: HTAPICALL,
    msg: u32,
    param1: usize,
    param2: usize,
    param3: usize,
);

/// Whether events of one line or call may still reach TAPI: the one closed state of a line or
/// call. Closing it also trips the cancellation token its author sees.
pub(crate) struct Gate {
    source: CancellationSource,
    token: CancellationToken,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("open", &self.is_open())
            .finish()
    }
}

impl Gate {
    pub(crate) fn new() -> Self {
        let source = CancellationSource::new();
        Self {
            token: source.token(),
            source,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        !self.token.is_cancelled()
    }

    /// Closes the gate and trips its token (running the callbacks registered on it, on this
    /// thread: call it with no lock held); `true` if this call closed it.
    pub(crate) fn close(&self) -> bool {
        self.source.cancel()
    }

    /// The token that trips when the gate closes.
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// `LINE_NEWCALL`'s answer: the `HTAPICALL` TAPI stored, once delivered.
#[derive(Debug)]
pub(crate) struct NewCallReply {
    /// `usize::MAX` until delivered (a real handle value is a pointer, never that).
    value: AtomicUsize,
}

impl NewCallReply {
    pub(crate) fn new() -> Self {
        Self {
            value: AtomicUsize::new(usize::MAX),
        }
    }

    /// `None`: not delivered (the line's gate was closed); `Some(0)`: TAPI stored NULL.
    pub(crate) fn get(&self) -> Option<usize> {
        match self.value.load(Ordering::SeqCst) {
            usize::MAX => None,
            value => Some(value),
        }
    }
}

/// One callback into TAPI.
pub(crate) enum Item {
    Completion {
        proc: CompletionProc,
        request: u32,
        result: i32,
    },
    Event {
        proc: EventProc,
        ht_line: usize,
        ht_call: usize,
        msg: u32,
        params: [usize; 3],
        gate: Arc<Gate>,
    },
    /// `LINE_NEWCALL`: dwParam1 = the new `HDRVCALL`, dwParam2 = where TAPI writes its handle.
    NewCall {
        proc: EventProc,
        ht_line: usize,
        hd_call: usize,
        gate: Arc<Gate>,
        reply: Arc<NewCallReply>,
    },
    /// Delivers nothing: sending it waits for everything queued before.
    Barrier,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Completion {
                request, result, ..
            } => write!(f, "ASYNC_COMPLETION({request}, {result:#x})"),
            Self::Event {
                ht_line,
                ht_call,
                msg,
                params,
                ..
            } => write!(
                f,
                "LINEEVENT({ht_line:#x}, {ht_call:#x}, {msg}, {:#x}, {:#x}, {:#x})",
                params[0], params[1], params[2]
            ),
            Self::NewCall {
                ht_line, hd_call, ..
            } => write!(f, "LINE_NEWCALL({ht_line:#x}, {hd_call:#x})"),
            Self::Barrier => f.write_str("barrier"),
        }
    }
}

/// One callback into TAPI, as the runtime's [`HostSink`] receives it: TAPI's function pointers
/// are called by the sink `abi` gives (the simulator's are the simulator's own), a recorder's
/// in the loom models. Invariant the `abi` sink relies on: every `proc` here is a pointer TAPI
/// passed (`TSPI_providerInit`'s completion proc, `TSPI_lineOpen`'s event proc), taken from the
/// runtime's records of those calls, and a callback is sent only while that pointer is valid
/// (before the final `TSPI_providerShutdown` / the line's `TSPI_lineClose` returned).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Callback {
    /// `ASYNC_COMPLETION(dwRequestID, lResult)`.
    Completion {
        proc: CompletionProc,
        request: u32,
        result: i32,
    },
    /// `LINEEVENT(htLine, htCall, dwMsg, dwParam1, dwParam2, dwParam3)`.
    Event {
        proc: EventProc,
        ht_line: usize,
        ht_call: usize,
        msg: u32,
        params: [usize; 3],
    },
    /// `LINE_NEWCALL(htLine, dwParam1 = hdCall, dwParam2 = where TAPI writes its handle)`.
    NewCall {
        proc: EventProc,
        ht_line: usize,
        hd_call: usize,
    },
}

impl HostMessage for Callback {
    /// The `HTAPICALL` TAPI wrote for a `LINE_NEWCALL` (0 for NULL); 0 for the others.
    type Reply = usize;
}

/// Where a runtime's callbacks go.
pub(crate) type Sink = Box<dyn HostSink<Callback>>;

/// A queued item's place in the delivery order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

/// What a [`Dispatcher::send`] achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Every item was delivered (or dropped at its closed gate) before `send` returned.
    Delivered,
    /// Sent from inside a callback: the running dispatch loop delivers the items right after
    /// the current callback returns.
    Queued,
}

struct Queue {
    items: VecDeque<(u64, Item)>,
    next_ticket: u64,
    /// Every ticket below this one was delivered.
    delivered: u64,
    /// The thread running the dispatch loop.
    dispatcher: Option<ThreadId>,
    /// The loop runs at least up to this ticket (raised by sends from inside a callback).
    drain_to: u64,
    waiters: usize,
}

/// See the module documentation.
pub(crate) struct Dispatcher {
    queue: Mutex<Queue>,
    turn: Condvar,
    sink: Sink,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

/// Gives up the dispatcher role if a delivery unwinds, so other senders are not stranded.
struct Role<'d> {
    dispatcher: &'d Dispatcher,
    armed: bool,
}

impl Drop for Role<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut queue = lock(&self.dispatcher.queue);
            queue.dispatcher = None;
            queue.delivered = queue.items.front().map_or(queue.next_ticket, |(t, _)| *t);
            drop(queue);
            self.dispatcher.turn.notify_all();
        }
    }
}

impl Dispatcher {
    pub(crate) fn new(sink: Sink) -> Self {
        Self {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                next_ticket: 0,
                delivered: 0,
                dispatcher: None,
                drain_to: 0,
                waiters: 0,
            }),
            turn: Condvar::new(),
            sink,
        }
    }

    /// Queues `items` (kept together, in order) and returns once they were delivered.
    pub(crate) fn send(&self, items: impl IntoIterator<Item = Item>) -> Sent {
        match self.enqueue(items) {
            Some(ticket) => self.wait(ticket),
            None => Sent::Delivered,
        }
    }

    /// Queues `items` without delivering them; [`wait`](Self::wait) with the returned ticket
    /// delivers. Lets a caller fix the order of its items under its own lock and deliver after
    /// releasing it.
    pub(crate) fn enqueue(&self, items: impl IntoIterator<Item = Item>) -> Option<Ticket> {
        let mut queue = lock(&self.queue);
        let mut last = None;
        for item in items {
            let ticket = queue.next_ticket;
            queue.next_ticket += 1;
            queue.items.push_back((ticket, item));
            last = Some(Ticket(ticket));
        }
        last
    }

    /// Returns once the item with `ticket` (and everything before it) was delivered.
    pub(crate) fn wait(&self, ticket: Ticket) -> Sent {
        let last = ticket.0;
        let me = current_thread().id();
        let mut queue = lock(&self.queue);
        if queue.dispatcher == Some(me) {
            queue.drain_to = queue.drain_to.max(last + 1);
            return Sent::Queued;
        }
        loop {
            if queue.delivered > last {
                return Sent::Delivered;
            }
            if queue.dispatcher.is_none() {
                queue.dispatcher = Some(me);
                queue.drain_to = queue.drain_to.max(last + 1);
                let mut role = Role {
                    dispatcher: self,
                    armed: true,
                };
                while queue.delivered < queue.drain_to {
                    let (ticket, item) = queue
                        .items
                        .pop_front()
                        .expect("every undelivered ticket is queued");
                    drop(queue);
                    self.deliver(item);
                    queue = lock(&self.queue);
                    queue.delivered = ticket + 1;
                }
                queue.dispatcher = None;
                role.armed = false;
                let wake = queue.waiters > 0;
                drop(queue);
                if wake {
                    self.turn.notify_all();
                }
                return Sent::Delivered;
            }
            queue.waiters += 1;
            queue = self
                .turn
                .wait(queue)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            queue.waiters -= 1;
        }
    }

    /// Returns once everything queued before this call was delivered.
    pub(crate) fn barrier(&self) -> Sent {
        self.send([Item::Barrier])
    }

    fn deliver(&self, item: Item) {
        match item {
            Item::Completion {
                proc,
                request,
                result,
            } => {
                self.sink.deliver(Callback::Completion {
                    proc,
                    request,
                    result,
                });
            }
            Item::Event {
                proc,
                ht_line,
                ht_call,
                msg,
                params,
                gate,
            } => {
                if gate.is_open() {
                    self.sink.deliver(Callback::Event {
                        proc,
                        ht_line,
                        ht_call,
                        msg,
                        params,
                    });
                } else {
                    tracing::debug!(
                        msg,
                        ht_call,
                        "event for a closed line or call not sent (the host closed it first)"
                    );
                }
            }
            Item::NewCall {
                proc,
                ht_line,
                hd_call,
                gate,
                reply,
            } => {
                if gate.is_open() {
                    let value = self.sink.deliver(Callback::NewCall {
                        proc,
                        ht_line,
                        hd_call,
                    });
                    reply.value.store(value, Ordering::SeqCst);
                }
            }
            Item::Barrier => {}
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool as StdAtomicBool;
    use std::sync::{Mutex as StdMutex, mpsc};

    extern "system" fn no_completion(_: u32, _: i32) {}
    extern "system" fn no_event(_: HTAPILINE, _: HTAPICALL, _: u32, _: usize, _: usize, _: usize) {}

    /// Records deliveries and fails on overlap; can call a hook from inside a delivery.
    #[derive(Default)]
    struct Recorder {
        seen: StdMutex<Vec<u32>>,
        inside: StdAtomicBool,
        overlaps: AtomicUsize,
        hook: StdMutex<Option<Box<dyn FnMut() + Send>>>,
    }

    impl HostSink<Callback> for Arc<Recorder> {
        fn deliver(&self, callback: Callback) -> usize {
            match callback {
                Callback::Completion { request, .. } => {
                    if self.inside.swap(true, Ordering::SeqCst) {
                        self.overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::yield_now();
                    self.seen.lock().unwrap().push(request);
                    let hook = self.hook.lock().unwrap().take();
                    self.inside.store(false, Ordering::SeqCst);
                    if let Some(mut hook) = hook {
                        hook();
                    }
                    0
                }
                Callback::Event { msg, .. } => {
                    self.seen.lock().unwrap().push(1000 + msg);
                    0
                }
                Callback::NewCall { hd_call, .. } => hd_call + 1,
            }
        }
    }

    fn completion(request: u32) -> Item {
        Item::Completion {
            proc: no_completion,
            request,
            result: 0,
        }
    }

    #[test]
    fn concurrent_sends_never_overlap_and_each_returns_after_its_delivery() {
        let recorder = Arc::new(Recorder::default());
        let dispatcher = Arc::new(Dispatcher::new(Box::new(Arc::clone(&recorder))));
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|scope| {
            for thread in 0..4u32 {
                let dispatcher = &dispatcher;
                let recorder = &recorder;
                let tx = tx.clone();
                scope.spawn(move || {
                    for i in 0..500 {
                        let id = thread * 1000 + i;
                        assert_eq!(dispatcher.send([completion(id)]), Sent::Delivered);
                        assert!(recorder.seen.lock().unwrap().contains(&id));
                        tx.send(id).unwrap();
                    }
                });
            }
        });
        drop(tx);
        assert_eq!(rx.iter().count(), 2000);
        assert_eq!(recorder.overlaps.load(Ordering::SeqCst), 0);
        assert_eq!(recorder.seen.lock().unwrap().len(), 2000);
    }

    #[test]
    fn a_send_from_inside_a_callback_is_delivered_right_after_it() {
        let recorder = Arc::new(Recorder::default());
        let dispatcher = Arc::new(Dispatcher::new(Box::new(Arc::clone(&recorder))));
        let inner = Arc::clone(&dispatcher);
        *recorder.hook.lock().unwrap() = Some(Box::new(move || {
            assert_eq!(inner.send([completion(2)]), Sent::Queued);
        }));
        assert_eq!(dispatcher.send([completion(1)]), Sent::Delivered);
        assert_eq!(*recorder.seen.lock().unwrap(), [1, 2]);
    }

    #[test]
    fn a_closed_gate_drops_events_queued_before_it_closed() {
        let recorder = Arc::new(Recorder::default());
        let dispatcher = Dispatcher::new(Box::new(Arc::clone(&recorder)));
        let gate = Arc::new(Gate::new());
        let event = |msg| Item::Event {
            proc: no_event,
            ht_line: 1,
            ht_call: 2,
            msg,
            params: [0; 3],
            gate: Arc::clone(&gate),
        };
        dispatcher.send([event(2)]);
        assert!(gate.close());
        assert!(!gate.close());
        dispatcher.send([event(3), completion(7)]);
        assert_eq!(*recorder.seen.lock().unwrap(), [1002, 7]);
        let reply = Arc::new(NewCallReply::new());
        dispatcher.send([Item::NewCall {
            proc: no_event,
            ht_line: 1,
            hd_call: 41,
            gate: Arc::clone(&gate),
            reply: Arc::clone(&reply),
        }]);
        assert_eq!(reply.get(), None);
        let open = Arc::new(Gate::new());
        dispatcher.send([Item::NewCall {
            proc: no_event,
            ht_line: 1,
            hd_call: 41,
            gate: open,
            reply: Arc::clone(&reply),
        }]);
        assert_eq!(reply.get(), Some(42));
    }
}
