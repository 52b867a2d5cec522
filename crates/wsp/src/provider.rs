//! What a base (transport) provider's author implements: a [`Transport`] that opens sockets of
//! its [`Protocol`]s, and a [`Socket`] that moves bytes — connect or accept, send, receive, send
//! a FIN (with optional disconnect data), reset.
//!
//! The author supplies the transport, never the protocol state: which direction is shut, what
//! the end of a stream reads as on this kind of socket, when a close is graceful, abortive or
//! refused, which overlapped operations are pending and how each completes exactly once, which
//! network events the host hears — the framework owns all of that (the runtime) and calls the
//! socket only for what the transport does.
//!
//! A socket's calls are non-blocking: `send` and `recv` answer at once, with a
//! [`SendCall`] / [`RecvCall`] guard consumed by `complete(self, …)`, which returns the
//! [`Completed`] proof the method must return. "Not now" is an answer too
//! ([`Sent::WouldBlock`], [`Received::WouldBlock`]): the socket tells the framework when to try
//! again through the [`Notifier`] it was opened with, and the framework keeps the host's
//! overlapped or blocking operation pending until then. A guard is borrowed for its call
//! (`'call`), with the framework's buffer: it cannot be kept to answer later, and nothing can
//! write into the buffer after the call returned.
//!
//! [`Socket::close`] consumes the socket: once the framework has closed it, nothing can call it
//! again. A transport that still has data to deliver (a graceful close goes on in the
//! background, R-WSP-12) keeps what it needs itself.

use std::marker::PhantomData;
use std::sync::Weak;
use winprov_bindings::ws2spi::{
    XP1_DISCONNECT_DATA, XP1_GRACEFUL_CLOSE, XP1_GUARANTEED_DELIVERY, XP1_GUARANTEED_ORDER,
    XP1_MESSAGE_ORIENTED,
};
use winprov_core::call::Brand;
use winprov_core::{Completed, Issuer, WsaError};

/// Whether a protocol carries a stream of bytes or messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketKind {
    /// A byte stream (`SOCK_STREAM`): a graceful end reads as 0 bytes.
    Stream,
    /// Message-oriented (`XP1_MESSAGE_ORIENTED`, connection-oriented): message boundaries are
    /// kept, a zero-length message is data, a graceful end reads as `WSAEDISCON`.
    Message,
}

/// One protocol a transport offers (one catalog entry).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Protocol {
    /// `szProtocol`.
    pub name: String,
    /// Stream or message-oriented.
    pub kind: SocketKind,
    /// Whether the protocol carries disconnect data (`XP1_DISCONNECT_DATA`): without it, the
    /// framework refuses disconnect data with `WSAENOPROTOOPT` (R-WSP-20).
    pub disconnect_data: bool,
}

impl Protocol {
    /// A byte-stream protocol without disconnect data (TCP's kind).
    pub fn stream(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: SocketKind::Stream,
            disconnect_data: false,
        }
    }

    /// A connection-oriented message protocol without disconnect data.
    pub fn message(name: impl Into<String>) -> Self {
        Self {
            kind: SocketKind::Message,
            ..Self::stream(name)
        }
    }

    /// This protocol, carrying disconnect data.
    pub fn with_disconnect_data(mut self) -> Self {
        self.disconnect_data = true;
        self
    }

    /// `dwServiceFlags1` for its `WSAPROTOCOL_INFOW`: reliable, ordered, graceful close, and
    /// `XP1_MESSAGE_ORIENTED` / `XP1_DISCONNECT_DATA` as declared.
    pub fn service_flags(&self) -> u32 {
        let mut flags = XP1_GUARANTEED_DELIVERY | XP1_GUARANTEED_ORDER | XP1_GRACEFUL_CLOSE;
        if self.kind == SocketKind::Message {
            flags |= XP1_MESSAGE_ORIENTED;
        }
        if self.disconnect_data {
            flags |= XP1_DISCONNECT_DATA;
        }
        flags
    }
}

/// A transport address, as the host gives it (a `sockaddr`'s bytes); its meaning is the
/// transport's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address(Vec<u8>);

impl Address {
    /// An address of these bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// How a connection ended, seen from one side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Termination {
    /// The peer sent a FIN (shutdown(SD_SEND), a disconnect, a graceful close) after all its
    /// data.
    Graceful,
    /// The connection was reset (an abortive close, or a receive shutdown that found data).
    Reset,
    /// The connection was aborted (a timeout or a failure of the transport).
    Aborted,
}

impl Termination {
    /// The error a receive or `FD_CLOSE` reports for it: none for a graceful end (the receive
    /// reads 0 bytes, or `WSAEDISCON` on a message-oriented socket), `WSAECONNRESET`,
    /// `WSAECONNABORTED`.
    pub fn error(self) -> Option<WsaError> {
        match self {
            Termination::Graceful => None,
            Termination::Reset => Some(WsaError::WSAECONNRESET),
            Termination::Aborted => Some(WsaError::WSAECONNABORTED),
        }
    }
}

/// A transport: the protocols it offers, and a socket of one of them.
///
/// Called from the host's threads, concurrently.
pub trait Transport: Send + Sync + 'static {
    /// The transport's socket.
    type Socket: Socket;

    /// The protocols this transport offers, in catalog order; the host opens sockets by index.
    fn protocols(&self) -> Vec<Protocol>;

    /// A new, unconnected socket of `protocol` (`WSPSocket`). It tells the framework through
    /// `notifier` when it becomes readable or writable and when its peer closes.
    fn open(&self, protocol: &Protocol, notifier: Notifier) -> Result<Self::Socket, WsaError>;
}

/// One socket of a [`Transport`]. The framework calls it with the socket's turn held (one call
/// at a time, from any thread), and never while a call of the host's waits on it: every method
/// answers at once.
pub trait Socket: Send + Sized + 'static {
    /// Binds the socket to `address` (`WSPBind`). Default: `WSAEOPNOTSUPP`.
    fn bind(&mut self, address: &Address) -> Result<(), WsaError> {
        let _ = address;
        Err(WsaError::WSAEOPNOTSUPP)
    }

    /// Listens on the bound address (`WSPListen`). Default: `WSAEOPNOTSUPP`.
    fn listen(&mut self, backlog: usize) -> Result<(), WsaError> {
        let _ = backlog;
        Err(WsaError::WSAEOPNOTSUPP)
    }

    /// Connects to `address` (`WSPConnect`); done when it returns `Ok`. Default:
    /// `WSAEOPNOTSUPP`.
    fn connect(&mut self, address: &Address) -> Result<(), WsaError> {
        let _ = address;
        Err(WsaError::WSAEOPNOTSUPP)
    }

    /// A connection waiting on this listening socket, as a connected socket that notifies
    /// through `notifier`; `Ok(None)` when none is waiting (call
    /// [`Notifier::readable`] on the listener's notifier when one arrives). Default:
    /// `WSAEOPNOTSUPP`.
    fn accept(&mut self, notifier: Notifier) -> Result<Option<Self>, WsaError> {
        let _ = notifier;
        Err(WsaError::WSAEOPNOTSUPP)
    }

    /// Takes what it can of [`SendCall::data`] (a message-oriented socket: all of it or
    /// nothing), or answers [`Sent::WouldBlock`] and calls [`Notifier::writable`] when there is
    /// room again.
    fn send<'call>(&mut self, call: SendCall<'call>) -> Completed<'call>;

    /// Reads into [`RecvCall::buffer`] what has arrived (a message-oriented socket: one
    /// message), or answers [`Received::WouldBlock`] and calls [`Notifier::readable`] when data
    /// arrives, or [`Received::End`] once the connection ended and everything was read.
    fn recv<'call>(&mut self, call: RecvCall<'call>) -> Completed<'call>;

    /// Bytes received and not read yet.
    fn unread(&self) -> usize;

    /// Bytes taken by [`send`](Self::send) that have not left yet: a lingering close waits for
    /// them (R-WSP-13). Call [`Notifier::writable`] when this falls to 0.
    fn unsent(&self) -> usize;

    /// Sends a FIN after the data already taken, with `disconnect_data` if given (the framework
    /// passes it only for a protocol that declares [`Protocol::disconnect_data`]). The peer
    /// learns of it when everything before it has arrived ([`Notifier::closed`] with
    /// [`Termination::Graceful`]).
    fn send_fin(&mut self, disconnect_data: Option<&[u8]>) -> Result<(), WsaError>;

    /// The disconnect data that came with the peer's FIN, once it has. Default: none.
    fn disconnect_data(&self) -> Option<Vec<u8>> {
        None
    }

    /// Resets the connection: data not delivered is dropped both ways, the peer sees
    /// [`Termination::Reset`].
    fn reset(&mut self);

    /// The framework is done with the socket (`WSPCloseSocket`, or the final `WSPCleanup`),
    /// after it sent the FIN or the reset the close called for. The transport may go on
    /// delivering data it took (a graceful close in the background). Default: drop it.
    fn close(self) {}
}

/// What the socket of a transport reports, tried again by the framework: the kinds a
/// [`Notifier`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Readiness {
    /// Something to read (or to accept).
    Readable,
    /// Room to send, or the last unsent byte left.
    Writable,
    /// The peer ended the connection.
    Closed(Termination),
}

/// The framework's side of a notifier: records the readiness and tries the socket's pending
/// work again, never waiting (it may be called from inside another socket's call).
pub(crate) trait Wake: Send + Sync {
    fn wake(&self, readiness: Readiness);
}

/// Where a socket state's life can end, made visible to loom. A notifier reaches the state
/// through `std`'s `Weak` (loom's `Arc` has none), which upgrades until the last strong
/// reference is dropped; loom cannot see that upgrade race that drop, and would never run a
/// notification in the window before it. So, under `--cfg loom`, a notifier touches the state's
/// lifeline (a loom atomic) just before it upgrades, and every holder of a strong reference just
/// before it drops it: loom then explores both orders. In a normal build it is empty and
/// `touch` does nothing.
#[derive(Clone, Default)]
pub(crate) struct Lifeline {
    #[cfg(loom)]
    touches: std::sync::Arc<winprov_core::sync::AtomicUsize>,
}

impl Lifeline {
    #[inline(always)]
    pub(crate) fn touch(&self) {
        #[cfg(loom)]
        self.touches
            .fetch_add(1, winprov_core::sync::Ordering::SeqCst);
    }
}

/// How a socket tells the framework that trying again may succeed. Cheap to clone; call it from
/// any thread, but **not while holding a lock the socket's own methods take** (the framework
/// may call back into the socket before the notifier returns). Notifying a socket the framework
/// closed does nothing.
#[derive(Clone)]
pub struct Notifier {
    target: Option<(Weak<dyn Wake>, Lifeline)>,
}

impl Notifier {
    pub(crate) fn new(target: Weak<dyn Wake>, lifeline: Lifeline) -> Self {
        Self {
            target: Some((target, lifeline)),
        }
    }

    /// A notifier that reaches nobody (for a transport's own tests).
    pub fn detached() -> Self {
        Self { target: None }
    }

    fn wake(&self, readiness: Readiness) {
        let Some((target, lifeline)) = &self.target else {
            return;
        };
        lifeline.touch();
        let Some(target) = target.upgrade() else {
            return;
        };
        target.wake(readiness);
        // This may be the last strong reference.
        lifeline.touch();
        drop(target);
    }

    /// Data arrived (or, on a listening socket, a connection).
    pub fn readable(&self) {
        self.wake(Readiness::Readable);
    }

    /// There is room to send again, or nothing is left unsent.
    pub fn writable(&self) {
        self.wake(Readiness::Writable);
    }

    /// The peer ended the connection: a graceful FIN once all its data has arrived, a reset,
    /// or an abort.
    pub fn closed(&self, how: Termination) {
        self.wake(Readiness::Closed(how));
    }
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("attached", &self.target.is_some())
            .finish()
    }
}

/// How a send attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The transport took this many bytes from the start of the data (a message-oriented
    /// socket: the whole message).
    Accepted(usize),
    /// No room now; the socket calls [`Notifier::writable`] when there is.
    WouldBlock,
    /// The send failed (`WSAECONNRESET` for a reset connection …).
    Failed(WsaError),
}

/// How a receive attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// This many bytes were written at the start of the buffer (a message-oriented socket: one
    /// whole message, possibly empty).
    Data(usize),
    /// A message longer than the buffer: the buffer was filled with its start, the rest
    /// discarded.
    Truncated,
    /// Nothing has arrived; the socket calls [`Notifier::readable`] when something does.
    WouldBlock,
    /// The connection ended and everything before the end was read. The framework turns it
    /// into what the host reads (R-WSP-10).
    End(Termination),
    /// The receive failed.
    Failed(WsaError),
}

/// One send attempt: the data to take, and the obligation to answer once.
#[must_use = "answer the send with `complete`"]
pub struct SendCall<'call> {
    data: &'call [u8],
    answer: &'call mut Option<Sent>,
    issuer: Issuer<'call>,
}

impl<'call> SendCall<'call> {
    pub(crate) fn new(
        data: &'call [u8],
        answer: &'call mut Option<Sent>,
        issuer: Issuer<'call>,
    ) -> Self {
        Self {
            data,
            answer,
            issuer,
        }
    }

    /// The bytes to send (a message-oriented socket: one message).
    pub fn data(&self) -> &'call [u8] {
        self.data
    }

    /// Answers the attempt; the proof goes back to the framework.
    pub fn complete(self, sent: Sent) -> Completed<'call> {
        *self.answer = Some(sent);
        self.issuer.completed(winprov_core::Delivery::Delivered)
    }
}

impl std::fmt::Debug for SendCall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendCall")
            .field("len", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// One receive attempt: the framework's buffer, lent for the call, and the obligation to answer
/// once.
#[must_use = "answer the receive with `complete`"]
pub struct RecvCall<'call> {
    buffer: &'call mut [u8],
    answer: &'call mut Option<Received>,
    issuer: Issuer<'call>,
    _brand: Brand<'call>,
}

impl<'call> RecvCall<'call> {
    pub(crate) fn new(
        buffer: &'call mut [u8],
        answer: &'call mut Option<Received>,
        issuer: Issuer<'call>,
    ) -> Self {
        Self {
            buffer,
            answer,
            issuer,
            _brand: PhantomData,
        }
    }

    /// The buffer to fill, as long as the host's.
    pub fn buffer(&mut self) -> &mut [u8] {
        self.buffer
    }

    /// Its length.
    pub fn capacity(&self) -> usize {
        self.buffer.len()
    }

    /// Answers the attempt; the proof goes back to the framework.
    pub fn complete(self, received: Received) -> Completed<'call> {
        *self.answer = Some(received);
        self.issuer.completed(winprov_core::Delivery::Delivered)
    }
}

impl std::fmt::Debug for RecvCall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvCall")
            .field("capacity", &self.buffer.len())
            .finish_non_exhaustive()
    }
}
