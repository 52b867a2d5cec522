//! Layered service providers (LSPs): the author's side.
//!
//! A layer sits between ws2_32 and the provider below it in a protocol chain (another layer
//! or the base provider). Its author implements [`Layer`]: the state it keeps per socket
//! ([`Layer::open`]) and the calls it inspects — connect, accept, send, receive, shutdown,
//! disconnect data, socket options, close. Each such call is a move-only guard ([`Call`]) the
//! hook consumes: [`Call::pass`] hands the call to the provider below, unchanged, and returns
//! its outcome in the [`Passed`] proof the hook must return; [`Call::refuse`] answers an error
//! without passing anything down. Every hook defaults to passing down, and every slot of the
//! `WSPPROC_TABLE` the trait does not name passes down unchanged: an empty `impl` is a
//! transparent layer.
//!
//! The framework ([`abi::Layered`](crate::abi::Layered)) owns the rest: finding, loading,
//! starting and cleaning up the provider below from the protocol chain (R-WSP-4: what goes
//! down is the structure the documentation names, never the author's choice), the handles and
//! the table from a handle to its socket, and the choice between IFS and non-IFS handles,
//! which the author makes with a type ([`Layer::Handles`]: [`Ifs`] or [`NonIfs`]), not a flag.
//!
//! Everything a layer's code names is here: the trait, the guards, and the values its hooks
//! see ([`Transfer`], [`How`], [`SockOpt`], [`Linger`], [`ProtocolInfo`], [`GUID`],
//! [`WsaError`]).
//!
//! A layer is loaded into every Winsock process of the machine: hooks run on the caller's
//! thread, inside the call, and must neither block nor take long. A hook that panics fails its
//! call with `WSASYSCALLFAILURE` (the call is not passed down when the panic comes first), but
//! for a non-IFS layer's overlapped request that went down before the panic: the application's
//! request completes, so the call answers what the provider below answered (R-WSP-16).

use std::fmt;
use std::marker::PhantomData;

// What a layer's hooks name, in one place.
pub use crate::values::{How, Linger, ProtocolInfo, SockOpt, Start, Transfer};
pub use winprov_bindings::windows_core::GUID;
pub use winprov_core::WsaError;

mod sealed {
    pub trait Sealed {}
}

/// Which handles a layer gives ws2_32: [`Ifs`] or [`NonIfs`]. Sealed.
pub trait Handles: sealed::Sealed + Send + Sync + 'static {
    /// Whether the layer hands out the lower provider's handles.
    const IFS: bool;
}

/// An IFS layer: the handle an application gets is the lower provider's own (an installable
/// file system handle, usable with `ReadFile` / `WriteFile`); the layer keeps its state in a
/// table keyed by that handle. Overlapped requests go down as they are, and the lower provider
/// completes them to the application: the layer sees their immediate outcome only
/// ([`Layer::completed`] is never called). Its chains keep `XP1_IFS_HANDLES` only when the
/// provider below has it.
#[derive(Debug)]
pub enum Ifs {}

/// A non-IFS layer: the handles an application gets are ws2_32's (`WPUCreateSocketHandle`),
/// their context the layer's own socket; its chains must not declare `XP1_IFS_HANDLES`
/// (R-WSP-19), and the framework refuses to start for an entry that does. The framework relays
/// overlapped requests through requests of its own below, so the layer sees every completion
/// ([`Layer::completed`]) before the application does. The extension functions an application
/// asks for with `SIO_GET_EXTENSION_FUNCTION_POINTER` are the framework's: `ConnectEx` goes
/// through [`Layer::connect`] and, with send data, [`Layer::send`]; `AcceptEx` and
/// `DisconnectEx` are told by [`Layer::completed`]; other extension functions
/// (`TransmitFile`, `WSARecvMsg`, …) are refused.
#[derive(Debug)]
pub enum NonIfs {}

impl sealed::Sealed for Ifs {}
impl sealed::Sealed for NonIfs {}
impl Handles for Ifs {
    const IFS: bool = true;
}
impl Handles for NonIfs {
    const IFS: bool = false;
}

/// How a socket came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin<'a> {
    /// `WSPSocket`.
    Created,
    /// `WSPAccept` on a listening socket of the layer; the peer's address as the provider
    /// below reported it.
    Accepted {
        /// The peer's address (a `SOCKADDR`'s bytes).
        peer: &'a [u8],
    },
    /// `WSPJoinLeaf`.
    Joined,
}

/// A socket the layer now serves: what [`Layer::open`] is told.
#[derive(Debug)]
pub struct Opened<'a> {
    pub(crate) origin: Origin<'a>,
    pub(crate) protocol: &'a ProtocolInfo,
}

impl<'a> Opened<'a> {
    /// How it came to be.
    pub fn origin(&self) -> Origin<'a> {
        self.origin
    }

    /// The chain entry it was made for (the layer's own place in the catalog).
    pub fn protocol(&self) -> &'a ProtocolInfo {
        self.protocol
    }
}

/// A call the layer was given, borrowed for the hook: [`pass`](Self::pass) it down or
/// [`refuse`](Self::refuse) it, once; either returns the [`Passed`] proof the hook returns.
/// `A` is what the call says ([`args`](Self::args)), `T` what it answers.
pub struct Call<'c, A, T> {
    args: A,
    down: &'c mut dyn FnMut(&A) -> Result<T, WsaError>,
    _brand: PhantomData<fn(&'c ()) -> &'c ()>,
}

impl<'c, A, T> Call<'c, A, T> {
    pub(crate) fn new(args: A, down: &'c mut dyn FnMut(&A) -> Result<T, WsaError>) -> Self {
        Self {
            args,
            down,
            _brand: PhantomData,
        }
    }

    /// What the call says.
    pub fn args(&self) -> &A {
        &self.args
    }

    /// Hands the call to the provider below, unchanged; its outcome comes back.
    pub fn pass(self) -> Passed<'c, T> {
        Passed {
            outcome: (self.down)(&self.args),
            _brand: PhantomData,
        }
    }

    /// Answers `error` without passing anything down.
    pub fn refuse(self, error: WsaError) -> Passed<'c, T> {
        Passed {
            outcome: Err(error),
            _brand: PhantomData,
        }
    }
}

impl<A: fmt::Debug, T> fmt::Debug for Call<'_, A, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

/// The outcome of a [`Call`], made only by passing or refusing that call: what the hook
/// returns, and what the caller gets.
#[must_use = "a hook returns the proof of its call"]
pub struct Passed<'c, T> {
    outcome: Result<T, WsaError>,
    _brand: PhantomData<fn(&'c ()) -> &'c ()>,
}

impl<T> Passed<'_, T> {
    /// The outcome: the provider below's answer, or the refusal.
    pub fn outcome(&self) -> Result<&T, WsaError> {
        self.outcome.as_ref().map_err(|e| *e)
    }

    pub(crate) fn into_outcome(self) -> Result<T, WsaError> {
        self.outcome
    }
}

impl<T: fmt::Debug> fmt::Debug for Passed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Passed").field(&self.outcome).finish()
    }
}

/// `WSPConnect`: the address (a `SOCKADDR`'s bytes) and the connect data, if any.
#[derive(Clone, Copy, Debug)]
pub struct Connecting<'c> {
    /// The peer's address.
    pub address: &'c [u8],
    /// `lpCallerData`.
    pub caller_data: Option<&'c [u8]>,
}

/// `WSPAccept` on a listening socket: the new socket's state comes from [`Layer::open`] once
/// it is passed and accepted.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Accepting {}

/// A send's buffers as the ABI layer lends them for the call, without copying them.
pub(crate) trait LentBuffers<'c>: fmt::Debug {
    /// Number of buffers.
    fn count(&self) -> usize;
    /// Buffer `index` (below `count`).
    fn buffer(&self, index: usize) -> &'c [u8];
    /// The bytes in all.
    fn total(&self) -> u64;
}

/// The buffers of a send, as the framework has them.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SendBuffers<'c> {
    /// Decoded (and copied where the call outlives them).
    Slices(&'c [&'c [u8]]),
    /// The caller's array as it is (a call passed down within the call).
    View(&'c dyn LentBuffers<'c>),
}

/// A send (`WSPSend`, `WSPSendTo`).
#[derive(Clone, Copy, Debug)]
pub struct Sending<'c> {
    pub(crate) buffers: SendBuffers<'c>,
    pub(crate) flags: u32,
    pub(crate) to: Option<&'c [u8]>,
    pub(crate) overlapped: bool,
}

impl<'c> Sending<'c> {
    /// The caller's buffers, in order.
    pub fn buffers(&self) -> impl Iterator<Item = &'c [u8]> + use<'c> {
        let (slices, view) = match self.buffers {
            SendBuffers::Slices(slices) => (Some(slices.iter().copied()), None),
            SendBuffers::View(view) => (None, Some((0..view.count()).map(|i| view.buffer(i)))),
        };
        slices
            .into_iter()
            .flatten()
            .chain(view.into_iter().flatten())
    }

    /// The bytes offered in all.
    pub fn len(&self) -> u64 {
        match self.buffers {
            SendBuffers::Slices(slices) => slices.iter().map(|b| b.len() as u64).sum(),
            SendBuffers::View(view) => view.total(),
        }
    }

    /// Whether no byte is offered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `dwFlags` (`MSG_OOB`, …).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// `WSPSendTo`'s address.
    pub fn to(&self) -> Option<&'c [u8]> {
        self.to
    }

    /// Whether the call is overlapped (then [`Transfer::Pending`] may come back).
    pub fn is_overlapped(&self) -> bool {
        self.overlapped
    }
}

/// A receive (`WSPRecv`, `WSPRecvFrom`).
#[derive(Clone, Copy, Debug)]
pub struct Receiving {
    pub(crate) capacity: u64,
    pub(crate) flags: u32,
    pub(crate) overlapped: bool,
    pub(crate) from: bool,
}

impl Receiving {
    /// Room in the caller's buffers.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// `*lpFlags` as given (`MSG_PEEK`, `MSG_OOB`, …).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether the call is overlapped.
    pub fn is_overlapped(&self) -> bool {
        self.overlapped
    }

    /// Whether it is `WSPRecvFrom`.
    pub fn is_from(&self) -> bool {
        self.from
    }
}

/// `WSPShutdown`.
#[derive(Clone, Copy, Debug)]
pub struct ShuttingDown {
    /// The direction.
    pub how: How,
}

/// `WSPSendDisconnect`: the outbound disconnect data, if any.
#[derive(Clone, Copy, Debug)]
pub struct Disconnecting<'c> {
    /// `lpOutboundDisconnectData`.
    pub data: Option<&'c [u8]>,
}

/// `WSPSetSockOpt`.
#[derive(Clone, Copy, Debug)]
pub struct SettingOption<'c> {
    pub(crate) option: &'c SockOpt<'c>,
}

impl<'c> SettingOption<'c> {
    /// The option, decoded where the crate knows it (`SO_LINGER`, `SO_DONTLINGER`, …).
    pub fn option(&self) -> &'c SockOpt<'c> {
        self.option
    }
}

/// `WSPCloseSocket`: once it is passed and succeeds, the socket's state is dropped.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Closing {}

/// A request the layer relayed finished (non-IFS layers only: an IFS layer's overlapped
/// requests complete straight to the application).
///
/// A send or receive (its hook saw the call) is told only when the provider below answered it
/// pending. The extension functions' requests (`ConnectEx` without send data, `DisconnectEx`,
/// `AcceptEx`) are told however they ended, unless their call failed: no hook of their own
/// sees their call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Completion {
    /// A send; also a `ConnectEx` with send data (its connect went through [`Layer::connect`],
    /// its data through [`Layer::send`]; an error may be the connect's).
    Sent {
        /// Bytes sent, or the request's error.
        outcome: Result<u32, WsaError>,
    },
    /// A receive.
    Received {
        /// Bytes received and the flags, or the request's error.
        outcome: Result<(u32, u32), WsaError>,
    },
    /// A `ConnectEx` without send data (its call went through [`Layer::connect`]).
    Connected {
        /// Whether the connection was made.
        outcome: Result<(), WsaError>,
    },
    /// A `DisconnectEx`.
    Disconnected {
        /// Whether the connection was closed.
        outcome: Result<(), WsaError>,
    },
    /// An `AcceptEx`, told with the state of the accept socket (the socket the application
    /// made for the connection, whose [`Layer::open`] saw [`Origin::Created`]).
    Accepted {
        /// Bytes of the connection's first data received with it, or the request's error.
        outcome: Result<u32, WsaError>,
    },
}

/// A layered service provider. See the [module documentation](self).
#[allow(unused_variables)]
pub trait Layer: Send + Sync + 'static {
    /// [`Ifs`] or [`NonIfs`].
    type Handles: Handles;
    /// What the layer keeps per socket.
    type Socket: Send + Sync + 'static;

    /// The provider GUID of the layer's hidden catalog entry: the one GUID it is installed
    /// and found by.
    const PROVIDER_ID: GUID;
    /// When each chain's lower provider is started.
    const START: Start = Start::Lazy;
    /// `szDescription` of the layer's `WSPStartup`.
    const DESCRIPTION: &'static str = "winprov layered provider";

    /// The state of a socket the layer now serves (the provider below made it).
    fn open(&self, socket: &Opened<'_>) -> Self::Socket;

    /// `WSPConnect`; also a non-IFS layer's `ConnectEx` (without caller data; its send data
    /// then goes through [`send`](Self::send)).
    fn connect<'c>(
        &self,
        socket: &Self::Socket,
        call: Call<'c, Connecting<'c>, ()>,
    ) -> Passed<'c, ()> {
        call.pass()
    }

    /// `WSPAccept` on `listener`; the answer is the peer's address.
    fn accept<'c>(
        &self,
        listener: &Self::Socket,
        call: Call<'c, Accepting, Vec<u8>>,
    ) -> Passed<'c, Vec<u8>> {
        call.pass()
    }

    /// `WSPSend` / `WSPSendTo`.
    fn send<'c>(
        &self,
        socket: &Self::Socket,
        call: Call<'c, Sending<'c>, Transfer>,
    ) -> Passed<'c, Transfer> {
        call.pass()
    }

    /// `WSPRecv` / `WSPRecvFrom`.
    fn recv<'c>(
        &self,
        socket: &Self::Socket,
        call: Call<'c, Receiving, Transfer>,
    ) -> Passed<'c, Transfer> {
        call.pass()
    }

    /// A relayed request finished ([`Completion`]), before the application is told.
    fn completed(&self, socket: &Self::Socket, completion: Completion) {}

    /// `WSPShutdown`.
    fn shutdown<'c>(
        &self,
        socket: &Self::Socket,
        call: Call<'c, ShuttingDown, ()>,
    ) -> Passed<'c, ()> {
        call.pass()
    }

    /// `WSPSendDisconnect`.
    fn send_disconnect<'c>(
        &self,
        socket: &Self::Socket,
        call: Call<'c, Disconnecting<'c>, ()>,
    ) -> Passed<'c, ()> {
        call.pass()
    }

    /// `WSPSetSockOpt`.
    fn set_sock_opt<'c>(
        &self,
        socket: &Self::Socket,
        call: Call<'c, SettingOption<'c>, ()>,
    ) -> Passed<'c, ()> {
        call.pass()
    }

    /// `WSPCloseSocket`.
    fn close<'c>(&self, socket: &Self::Socket, call: Call<'c, Closing, ()>) -> Passed<'c, ()> {
        call.pass()
    }

    /// The process's last `WSPCleanup`: runs once every socket's state was dropped (the
    /// sockets the application left open included) and the providers below were cleaned up.
    /// The layer itself lives on: a later `WSPStartup` starts a new session with it.
    fn cleanup(&self) {}
}

/// Calls made by a test, to run a hook of the author's on its own (feature `testing`): each
/// guard or value a hook is given, made from values, with the call below played by a closure.
///
/// ```
/// use winprov_wsp::layer::testing::{call, sending};
/// use winprov_wsp::layer::{Call, Passed, Sending, Transfer};
///
/// /// A hook that refuses empty sends and passes the rest down.
/// fn send<'c>(call: Call<'c, Sending<'c>, Transfer>) -> Passed<'c, Transfer> {
///     if call.args().is_empty() {
///         return call.refuse(winprov_wsp::WsaError::WSAEINVAL);
///     }
///     call.pass()
/// }
///
/// let buffers: &[&[u8]] = &[b"abc"];
/// let mut below = |args: &Sending<'_>| Ok(Transfer::Done { bytes: args.len() as u32, flags: 0 });
/// let passed = send(call(sending(buffers, 0), &mut below));
/// assert_eq!(passed.outcome(), Ok(&Transfer::Done { bytes: 3, flags: 0 }));
///
/// let mut never = |_: &Sending<'_>| -> Result<Transfer, _> { unreachable!("refused") };
/// let passed = send(call(sending(&[], 0), &mut never));
/// assert_eq!(passed.outcome(), Err(winprov_wsp::WsaError::WSAEINVAL));
/// ```
#[cfg(feature = "testing")]
pub mod testing {
    use super::{
        Accepting, Call, Closing, Opened, Origin, ProtocolInfo, Receiving, SendBuffers, Sending,
        SettingOption, SockOpt, WsaError,
    };

    /// The guard of a call whose arguments are `args`, passed down to `below`.
    pub fn call<'c, A, T>(
        args: A,
        below: &'c mut dyn FnMut(&A) -> Result<T, WsaError>,
    ) -> Call<'c, A, T> {
        Call::new(args, below)
    }

    /// What `Layer::open` is told.
    pub fn opened<'a>(origin: Origin<'a>, protocol: &'a ProtocolInfo) -> Opened<'a> {
        Opened { origin, protocol }
    }

    /// A non-overlapped `WSPSend` of `buffers` with `flags`.
    pub fn sending<'c>(buffers: &'c [&'c [u8]], flags: u32) -> Sending<'c> {
        Sending {
            buffers: SendBuffers::Slices(buffers),
            flags,
            to: None,
            overlapped: false,
        }
    }

    /// A `WSPRecv` (`from`: `WSPRecvFrom`) into `capacity` bytes with `flags`, overlapped or not.
    pub fn receiving(capacity: u64, flags: u32, overlapped: bool, from: bool) -> Receiving {
        Receiving {
            capacity,
            flags,
            overlapped,
            from,
        }
    }

    /// A `WSPSetSockOpt` of `option`.
    pub fn setting<'c>(option: &'c SockOpt<'c>) -> SettingOption<'c> {
        SettingOption { option }
    }

    /// A `WSPAccept`.
    pub fn accepting() -> Accepting {
        Accepting {}
    }

    /// A `WSPCloseSocket`.
    pub fn closing() -> Closing {
        Closing {}
    }
}
