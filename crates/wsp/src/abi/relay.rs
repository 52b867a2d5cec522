//! The relay of a non-IFS layer's overlapped requests (sends, receives, and the extension
//! functions' `ConnectEx`, `AcceptEx`, `DisconnectEx`): the caller's request is not passed
//! down; a request of the layer's own is ([`Substitute`]), on the lower socket bound to the
//! layer's completion port ([`Ports`]), and its completion is relayed to the caller's request
//! on the layer's handle, through the caller's mechanism ([`Completer`]).
//!
//! Each substitute is completed to the caller exactly once, by whichever of two parties comes
//! second (one state word, [`Substitute::state`]): the call that issued it, once it knows what
//! the provider below answered, and the pump thread, once the port gave it the packet.
//!
//! - answered at once (0): the call completes the caller's request before it returns (an
//!   overlapped call that returned 0 is already complete, R-WSP-16); the packet, whenever it
//!   comes, only frees the substitute;
//! - pending: the party that comes second reads the result below (`WSPGetOverlappedResult` of
//!   the lower socket), runs the author's [`Layer::completed`], and completes the caller's
//!   request;
//! - failed: nothing is completed (R-WSP-16), and no packet will come: the call frees it.
//!
//! A socket's substitutes are counted ([`Pending`]): a close waits until the ones the provider
//! below aborted are relayed (with `WSA_OPERATION_ABORTED`) before it releases the handle and
//! returns (R-WSP-14). The final cleanup relays nothing (R-WSP-15): the pump stops, and the
//! substitutes whose packet never came are freed. That relies on the provider below keeping
//! R-WSP-15 itself: its final cleanup, which runs first, returns once nothing of its own is in
//! flight any more — a provider below that let a cancelled request write its `WSAOVERLAPPED`
//! after that would write into freed memory.

use super::complete::{Completer, mark_pending};
use super::decode::{Overlapped, Socket};
use super::lower::failed;
use super::ports::Ports;
use super::upcalls::Host;
use crate::layer::{Completion, Layer};
use std::cell::UnsafeCell;
use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use winprov_bindings::windows_core::BOOL;
use winprov_bindings::ws2spi::{OVERLAPPED, SOCKET, WSPPROC_TABLE};
use winprov_core::sync::{AtomicUsize, Ordering};
use winprov_core::sync::{Condvar, Mutex, MutexGuard, lock};
use winprov_core::{WsaError, boundary};

/// A socket's substitutes not relayed yet, and whether its close began: the relay completes
/// a caller's request and the close begins under this one lock, so a request is either
/// relayed before the close or aborted by it.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    state: Mutex<Count>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Count {
    relaying: usize,
    closing: bool,
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, Count> {
        lock(&self.state)
    }

    /// The socket's close begins (`true`) or was refused (`false`).
    pub(crate) fn closing(&self, closing: bool) {
        self.lock().closing = closing;
    }

    fn add(&self) {
        self.lock().relaying += 1;
    }

    /// One fewer, without relaying (a request that failed).
    fn forget(&self) {
        self.lock().relaying -= 1;
        self.changed.notify_all();
    }

    /// Waits until none is left.
    pub(crate) fn drain(&self) {
        let mut count = self.lock();
        while count.relaying > 0 {
            count = self.changed.wait(count).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Waits until `done()` says so, waking at each relay.
    pub(crate) fn wait_for(&self, mut done: impl FnMut() -> bool) {
        let mut count = self.lock();
        while !done() {
            count = self.changed.wait(count).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Which of the two parties of a substitute completes the caller's request: the call, once
/// the provider below answered, or the pump, once the packet came. See the
/// [module documentation](self).
#[derive(Debug, Default)]
pub(crate) struct Handoff(AtomicUsize);

const ANSWERED: usize = 1;
/// The call settled the request itself (answered at once, or failed): the pump only frees.
const BY_CALL: usize = 2;
const PACKET: usize = 4;

impl Handoff {
    /// The call's side: the provider below answered at once (the call completes the caller's
    /// request itself) or pending. Returns whether the call must finish the request (pending,
    /// and the packet came first).
    pub(crate) fn answered(&self, at_once: bool) -> bool {
        let mark = if at_once {
            ANSWERED | BY_CALL
        } else {
            ANSWERED
        };
        let before = self.0.fetch_or(mark, Ordering::AcqRel);
        !at_once && before & PACKET != 0
    }

    /// The call's side, for a call that failed: nothing is completed, and a packet (which a
    /// provider below should not post) finishes nothing either.
    pub(crate) fn failed(&self) {
        self.0.fetch_or(ANSWERED | BY_CALL, Ordering::AcqRel);
    }

    /// The pump's side: the packet came. Returns whether the pump must finish the request
    /// (answered pending before).
    pub(crate) fn packet(&self) -> bool {
        let before = self.0.fetch_or(PACKET, Ordering::AcqRel);
        before & ANSWERED != 0 && before & BY_CALL == 0
    }
}

/// What a relayed request is, for the author's [`Completion`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A send (`WSPSend`, `WSPSendTo`, `ConnectEx` with send data): [`Completion::Sent`].
    Send,
    /// A receive: [`Completion::Received`].
    Receive,
    /// `ConnectEx` without send data: [`Completion::Connected`].
    Connect,
    /// `DisconnectEx`: [`Completion::Disconnected`].
    Disconnect,
    /// `AcceptEx`: [`Completion::Accepted`], with the accept socket's state.
    Accept,
}

impl Kind {
    /// Whether the author is told however the request ended (no hook saw it at the call), not
    /// only once it completes after a pending answer.
    fn told_at_once(self) -> bool {
        matches!(self, Self::Connect | Self::Disconnect | Self::Accept)
    }

    /// The author's view of an outcome.
    pub(crate) fn completion(self, outcome: Result<(u32, u32), WsaError>) -> Completion {
        match self {
            Self::Send => Completion::Sent {
                outcome: outcome.map(|(bytes, _)| bytes),
            },
            Self::Receive => Completion::Received { outcome },
            Self::Connect => Completion::Connected {
                outcome: outcome.map(|_| ()),
            },
            Self::Disconnect => Completion::Disconnected {
                outcome: outcome.map(|_| ()),
            },
            Self::Accept => Completion::Accepted {
                outcome: outcome.map(|(bytes, _)| bytes),
            },
        }
    }
}

/// The layer's request below, for one caller's overlapped request. Its `WSAOVERLAPPED` is its
/// first field: the packet's `lpOverlapped` is the substitute.
#[repr(C)]
pub(crate) struct Substitute<S> {
    overlapped: UnsafeCell<OVERLAPPED>,
    state: Handoff,
    kind: Kind,
    /// The caller's request.
    request: Overlapped,
    /// The layer's handle the caller made it on.
    handle: Socket,
    /// The lower socket and its provider's table.
    below: SOCKET,
    table: WSPPROC_TABLE,
    /// The author's socket the completion is told for (the accept socket's, for `AcceptEx`),
    /// let go once the request is relayed (not when its packet comes: the author's state
    /// must not outlive the request), and the count of the socket the request was made on.
    socket: Mutex<Option<Arc<S>>>,
    pending: Arc<Pending>,
}

// SAFETY: the `WSAOVERLAPPED` is written by the provider below only while its request is
// pending and read by the layer only once the request is complete (the state word orders the
// two parties); every other field is a value or a thread-safe shared part.
unsafe impl<S: Send + Sync> Send for Substitute<S> {}
// SAFETY: as above.
unsafe impl<S: Send + Sync> Sync for Substitute<S> {}

impl<S> Substitute<S> {
    /// The `WSAOVERLAPPED` to pass down.
    pub(crate) fn overlapped(&self) -> *mut OVERLAPPED {
        self.overlapped.get()
    }
}

/// The pump: a port and the thread that waits on it.
struct Pump {
    port: usize,
    thread: Option<JoinHandle<()>>,
}

/// What the layer's calls and its pump thread share. See the [module documentation](self).
pub(crate) struct Relay<L: Layer> {
    pub(crate) layer: L,
    pub(crate) host: OnceLock<Host<'static>>,
    pub(crate) completer: Completer,
    ports: Option<Box<dyn Ports>>,
    pump: Mutex<Option<Pump>>,
    /// Substitutes handed down whose packet was not taken (their addresses).
    outstanding: Mutex<HashSet<usize>>,
    /// Set by the final cleanup: nothing more is relayed.
    stopping: AtomicBool,
}

impl<L: Layer> Relay<L> {
    pub(crate) fn new(layer: L, ports: Option<Box<dyn Ports>>) -> Self {
        Self {
            layer,
            host: OnceLock::new(),
            completer: Completer::default(),
            ports,
            pump: Mutex::new(None),
            outstanding: Mutex::new(HashSet::new()),
            stopping: AtomicBool::new(false),
        }
    }

    pub(crate) fn set_ports(&mut self, ports: Box<dyn Ports>) {
        self.ports = Some(ports);
    }

    /// Substitutes whose packet was not taken yet.
    pub(crate) fn outstanding(&self) -> usize {
        lock(&self.outstanding).len()
    }

    /// The port, the pump started on first use; `WSAEOPNOTSUPP` without ports.
    pub(crate) fn port(self: &Arc<Self>) -> Result<usize, WsaError> {
        let ports = self.ports.as_deref().ok_or(WsaError::WSAEOPNOTSUPP)?;
        let mut pump = lock(&self.pump);
        if let Some(pump) = pump.as_ref() {
            return Ok(pump.port);
        }
        let port = ports.create()?;
        self.stopping.store(false, Ordering::Release);
        let relay = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("winprov-wsp layer relay".into())
            .spawn(move || relay.run(port))
            .map_err(|_| {
                ports.close(port);
                WsaError::WSAENOBUFS
            })?;
        *pump = Some(Pump {
            port,
            thread: Some(thread),
        });
        Ok(port)
    }

    /// Binds a lower socket to the port.
    pub(crate) fn associate(self: &Arc<Self>, below: SOCKET, key: usize) -> Result<(), WsaError> {
        let port = self.port()?;
        let ports = self.ports.as_deref().ok_or(WsaError::WSAEOPNOTSUPP)?;
        ports.associate(port, Socket::from_socket(below), key)
    }

    /// A substitute for the caller's `request` on `handle`, counted and marked pending, its
    /// pump's reference handed out (the address the packet will carry).
    pub(crate) fn issue(
        &self,
        kind: Kind,
        request: Overlapped,
        handle: Socket,
        (below, table): (SOCKET, WSPPROC_TABLE),
        socket: Arc<L::Socket>,
        pending: Arc<Pending>,
    ) -> Arc<Substitute<L::Socket>> {
        // SAFETY: the caller's `WSAOVERLAPPED`, which the overlapped contract leaves to the
        // provider until its completion.
        unsafe { mark_pending(request.address()) };
        pending.add();
        let substitute = Arc::new(Substitute {
            overlapped: UnsafeCell::new(OVERLAPPED::default()),
            state: Handoff::default(),
            kind,
            request,
            handle,
            below,
            table,
            socket: Mutex::new(Some(socket)),
            pending,
        });
        let raw = Arc::into_raw(Arc::clone(&substitute));
        lock(&self.outstanding).insert(raw.expose_provenance());
        substitute
    }

    /// The provider below answered the substitute's call: `Ok(Some((bytes, flags)))` at once,
    /// `Ok(None)` pending, or failed. Returns the caller's answer.
    pub(crate) fn answered(
        &self,
        substitute: &Arc<Substitute<L::Socket>>,
        answer: Result<Option<(u32, u32)>, WsaError>,
    ) -> Result<Option<(u32, u32)>, WsaError> {
        match answer {
            Ok(Some((bytes, flags))) => {
                substitute.state.answered(true);
                self.relay(substitute, Ok((bytes, flags)), false);
            }
            Ok(None) => {
                if substitute.state.answered(false) {
                    self.finish(substitute);
                }
            }
            Err(_) => {
                // No packet will come: the pump's reference is the call's to free.
                substitute.state.failed();
                self.reclaim(Arc::as_ptr(substitute).expose_provenance());
                substitute.pending.forget();
            }
        }
        answer
    }

    /// Takes the pump's reference of the substitute at `address`, if it is outstanding.
    fn reclaim(&self, address: usize) -> Option<Arc<Substitute<L::Socket>>> {
        if !lock(&self.outstanding).remove(&address) {
            return None;
        }
        // SAFETY: an address `issue` made with `Arc::into_raw` and put in `outstanding`,
        // removed from it once, here: the reference it stands for is taken back once.
        Some(unsafe { Arc::from_raw(std::ptr::with_exposed_provenance(address)) })
    }

    /// The pump: takes packets until the port closes or a packet without request comes.
    fn run(&self, port: usize) {
        let Some(ports) = self.ports.as_deref() else {
            return;
        };
        while let Some(packet) = ports.wait(port) {
            if packet.overlapped == 0 {
                break;
            }
            let Some(substitute) = self.reclaim(packet.overlapped) else {
                tracing::warn!(
                    overlapped = packet.overlapped,
                    "a packet for no request of the layer"
                );
                continue;
            };
            if substitute.state.packet() {
                self.finish(&substitute);
            }
        }
    }

    /// A pending substitute is complete below: its result read, the author told, the caller's
    /// request completed, the socket's count decreased.
    fn finish(&self, substitute: &Substitute<L::Socket>) {
        let outcome = result_below(substitute);
        self.relay(substitute, outcome, true);
    }

    /// Completes the caller's request with `outcome` (after the author's `completed` when
    /// `tell`), unless the final cleanup began; then the socket's count goes down.
    fn relay(
        &self,
        substitute: &Substitute<L::Socket>,
        outcome: Result<(u32, u32), WsaError>,
        tell: bool,
    ) {
        // Relayed once (the state word): the author's state is let go after this.
        let socket = lock(&substitute.socket).take();
        if let Some(socket) = &socket
            && (tell || substitute.kind.told_at_once())
            && !self.stopping.load(Ordering::Acquire)
        {
            let completion = substitute.kind.completion(outcome);
            boundary("Layer::completed", (), || {
                self.layer.completed(socket, completion)
            });
        }
        // Before the caller learns the request is done (and before a close waiting for this
        // relay returns): the author's state goes with the request, not with its packet.
        drop(socket);
        let pending = &substitute.pending;
        let mut count = pending.lock();
        if !self.stopping.load(Ordering::Acquire) {
            // A request still pending for the caller when its close began is aborted
            // (R-WSP-14), whatever happened below (which the author was told).
            let (code, bytes, flags) = match outcome {
                _ if count.closing => (WsaError::WSA_OPERATION_ABORTED.raw() as u32, 0, 0),
                Ok((bytes, flags)) => (0, bytes, flags),
                Err(error) => (error.raw() as u32, 0, 0),
            };
            let upcalls = self
                .host
                .get()
                .ok_or(WsaError::WSANOTINITIALISED)
                .and_then(Host::upcalls);
            // SAFETY: the caller's `WSAOVERLAPPED`, left to the layer until this completion,
            // which the state word makes the only one.
            unsafe {
                self.completer.deliver(
                    upcalls,
                    substitute.handle,
                    &substitute.request,
                    code,
                    bytes,
                    flags,
                )
            };
        }
        count.relaying -= 1;
        drop(count);
        pending.changed.notify_all();
    }

    /// The final cleanup: nothing more is relayed; the pump stops; every substitute still
    /// outstanding is freed. Runs after the providers below were cleaned up.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        let pump = lock(&self.pump).take();
        if let (Some(mut pump), Some(ports)) = (pump, self.ports.as_deref()) {
            if ports.post(pump.port, 0).is_ok()
                && let Some(thread) = pump.thread.take()
                && thread.join().is_err()
            {
                tracing::error!("the layer's relay thread panicked");
            }
            ports.close(pump.port);
        }
        let left: Vec<usize> = lock(&self.outstanding).iter().copied().collect();
        for address in left {
            drop(self.reclaim(address));
        }
    }

    /// Marks the relay stopping (the final cleanup began): nothing is completed any more.
    pub(crate) fn stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }
}

/// The result of a complete substitute, from the provider below (`WSPGetOverlappedResult` of
/// the lower socket); a lower socket already closed reads as aborted.
fn result_below<S>(substitute: &Substitute<S>) -> Result<(u32, u32), WsaError> {
    let Some(get) = substitute.table.lpWSPGetOverlappedResult else {
        return Err(WsaError::WSAEINVALIDPROCTABLE);
    };
    let (mut bytes, mut flags, mut errno) = (0u32, 0u32, 0i32);
    // SAFETY: the lower provider's started table (its sockets' records keep it started); its
    // own socket; the substitute's `WSAOVERLAPPED`, complete (its packet came); live locals.
    let ok = unsafe {
        get(
            substitute.below,
            substitute.overlapped(),
            &mut bytes,
            BOOL::from(false),
            &mut flags,
            &mut errno,
        )
    };
    if ok.as_bool() {
        return Ok((bytes, flags));
    }
    match failed(errno) {
        WsaError::WSAENOTSOCK => Err(WsaError::WSA_OPERATION_ABORTED),
        error => Err(error),
    }
}
