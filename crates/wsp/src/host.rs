//! The values the host and the runtime exchange: socket handles, the host's socket options
//! (`how`, `LINGER`), an overlapped request's identity and completion mechanism, and the
//! messages the runtime sends the host through its [`HostSink`](winprov_core::HostSink): an
//! overlapped completion or a network event ([`Notice`]).
//!
//! Each is what the ABI layer decodes from (or turns into) ws2_32's structures: `SOCKET`,
//! `SD_*`, `LINGER`, `WSAOVERLAPPED` + completion routine + `WSATHREADID`, `FD_*` with its
//! error. The runtime never sees a host pointer.

use std::sync::Arc;
use std::time::Duration;
use winprov_bindings::ws2spi::{SD_BOTH, SD_RECEIVE, SD_SEND};
use winprov_core::{HostMessage, HostSink, WsaError};

/// A socket as the host names it: the value of a core `LeaseTable` handle, never zero, never
/// dereferenced. A closed socket's value is refused (`WSAENOTSOCK`) until the end of the
/// process, even after its slot is reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SocketHandle(usize);

impl SocketHandle {
    /// Wraps a value received from the host.
    pub const fn from_raw(raw: usize) -> Self {
        Self(raw)
    }

    /// The value the host holds.
    pub const fn raw(self) -> usize {
        self.0
    }
}

/// `WSPShutdown`'s `how`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// `SD_RECEIVE` (0): later receives are refused.
    Receive,
    /// `SD_SEND` (1): later sends are refused; a graceful close (FIN) starts.
    Send,
    /// `SD_BOTH` (2).
    Both,
}

impl How {
    /// `how` as the host passes it; `None` for a value outside `SD_RECEIVE`, `SD_SEND`, `SD_BOTH`.
    pub fn from_raw(how: i32) -> Option<Self> {
        match how {
            h if h == SD_RECEIVE.0 => Some(How::Receive),
            h if h == SD_SEND.0 => Some(How::Send),
            h if h == SD_BOTH.0 => Some(How::Both),
            _ => None,
        }
    }

    /// The `SD_*` value.
    pub fn raw(self) -> i32 {
        match self {
            How::Receive => SD_RECEIVE.0,
            How::Send => SD_SEND.0,
            How::Both => SD_BOTH.0,
        }
    }

    /// Whether receives are shut.
    pub fn receive(self) -> bool {
        matches!(self, How::Receive | How::Both)
    }

    /// Whether sends are shut.
    pub fn send(self) -> bool {
        matches!(self, How::Send | How::Both)
    }
}

/// A socket's linger option (`SO_LINGER` / `SO_DONTLINGER`, which is `~SO_LINGER`): what
/// `WSPCloseSocket` does with a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Linger {
    /// `SO_DONTLINGER` (the default): close returns at once, the graceful close goes on in the
    /// background and queued data is still sent (R-WSP-12).
    #[default]
    DontLinger,
    /// `SO_LINGER {1, timeout}`: a zero timeout is an abortive close (reset, R-WSP-11);
    /// otherwise a blocking socket's close waits up to the timeout for its data to leave, and a
    /// non-blocking socket's close that cannot finish at once fails with `WSAEWOULDBLOCK`
    /// (R-WSP-13).
    Linger(Duration),
}

impl Linger {
    /// The `LINGER {l_onoff, l_linger}` structure (seconds).
    pub fn from_raw(onoff: u16, seconds: u16) -> Self {
        match onoff {
            0 => Linger::DontLinger,
            _ => Linger::Linger(Duration::from_secs(seconds.into())),
        }
    }

    /// Whether a close is abortive: `SO_LINGER` with a zero timeout.
    pub fn is_abortive(self) -> bool {
        self == Linger::Linger(Duration::ZERO)
    }
}

/// A copy of the initiating thread's `WSATHREADID`, taken before the call returns (R-WSP-17):
/// where a completion routine is queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ThreadToken {
    /// `ThreadHandle`.
    pub handle: usize,
    /// `Reserved`.
    pub reserved: usize,
}

/// How the host wants an overlapped operation's completion: the one mechanism its completion
/// goes through, also when the operation is aborted (R-WSP-14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// No completion routine: `WPUCompleteOverlappedRequest`, which sets the overlapped
    /// structure's event or posts to the completion port the handle is bound to.
    Signal,
    /// A completion routine, queued to the initiating thread with `WPUQueueApc`.
    Routine {
        /// The routine's address (`LPWSAOVERLAPPED_COMPLETION_ROUTINE`), opaque to the runtime.
        routine: usize,
        /// The thread it runs on.
        thread: ThreadToken,
    },
}

/// An overlapped request: the host's `WSAOVERLAPPED` (its address names the operation) and its
/// completion mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Overlapped {
    /// The operation's identity: the address of the host's `WSAOVERLAPPED`.
    pub id: usize,
    /// Where its completion goes.
    pub mechanism: Mechanism,
}

/// A set of network events (`FD_*` bits, winsock2.h), as a socket selects them and as the
/// runtime reports one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NetworkEvents(u32);

impl NetworkEvents {
    /// No event.
    pub const NONE: Self = Self(0);
    /// `FD_READ` (0x01): data to read.
    pub const READ: Self = Self(0x01);
    /// `FD_WRITE` (0x02): room to send.
    pub const WRITE: Self = Self(0x02);
    /// `FD_OOB` (0x04): out-of-band data (never reported here).
    pub const OOB: Self = Self(0x04);
    /// `FD_ACCEPT` (0x08): a connection to accept.
    pub const ACCEPT: Self = Self(0x08);
    /// `FD_CONNECT` (0x10): a connection completed.
    pub const CONNECT: Self = Self(0x10);
    /// `FD_CLOSE` (0x20): the peer closed the connection (error 0: gracefully,
    /// `WSAECONNRESET`: reset, `WSAECONNABORTED`: aborted).
    pub const CLOSE: Self = Self(0x20);
    /// Every event above.
    pub const ALL: Self = Self(0x3f);

    /// The `FD_*` bits.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Bits from the host; unknown bits are kept (and never reported).
    pub const fn from_raw(raw: u32) -> Self {
        Self(raw)
    }

    /// Whether every event of `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// `FD_READ` … for a single event, `None` otherwise.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::READ => "FD_READ",
            Self::WRITE => "FD_WRITE",
            Self::OOB => "FD_OOB",
            Self::ACCEPT => "FD_ACCEPT",
            Self::CONNECT => "FD_CONNECT",
            Self::CLOSE => "FD_CLOSE",
            _ => return None,
        })
    }
}

impl std::fmt::Debug for NetworkEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "NetworkEvents({:#x})", self.0),
        }
    }
}

/// What the runtime tells the host. Sent through the runtime's sink, one message per
/// completion or event, in the order they happen on their socket; the ABI layer routes each to
/// ws2_32's mechanism, a simulator records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// An overlapped operation completed: exactly once per operation that returned
    /// `WSA_IO_PENDING` or completed at once (R-WSP-16), through its own mechanism (R-WSP-14).
    Overlapped {
        /// The socket it was issued on.
        socket: SocketHandle,
        /// [`Overlapped::id`].
        op: usize,
        /// [`Overlapped::mechanism`].
        mechanism: Mechanism,
        /// `cbTransferred`.
        bytes: usize,
        /// `dwError`: `None` for success; `WSA_OPERATION_ABORTED` when a close ended it.
        error: Option<WsaError>,
        /// What a receive read (`bytes` long), to be copied into the operation's buffers before
        /// the completion is signalled; empty for a send.
        data: Vec<u8>,
    },
    /// A network event the socket selected.
    Network {
        /// The socket.
        socket: SocketHandle,
        /// One event.
        event: NetworkEvents,
        /// Its error code (`None` for 0).
        error: Option<WsaError>,
    },
}

impl Notice {
    /// The socket the message is about.
    pub fn socket(&self) -> SocketHandle {
        match self {
            Notice::Overlapped { socket, .. } | Notice::Network { socket, .. } => *socket,
        }
    }
}

impl HostMessage for Notice {
    /// The host's mechanisms (an event, an APC, a completion port, a window message) only queue
    /// what they are given: nothing comes back.
    type Reply = ();
}

/// Where a runtime's notices go: the ABI layer's routing to ws2_32, or a simulator's recorder.
/// Its `deliver` must not call back into the runtime for the same socket before returning
/// (ws2_32's mechanisms queue; they never run the host's code inline).
pub type NoticeSink = Arc<dyn HostSink<Notice>>;

/// What an immediate send or receive did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transferred {
    /// Bytes sent or received.
    pub bytes: usize,
    /// What a receive read (`bytes` long; empty for a send).
    pub data: Vec<u8>,
    /// A receive on a message-oriented socket read only the start of a message too long for
    /// the buffer, the rest is discarded: the host reports `WSAEMSGSIZE` after copying `data`.
    pub truncated: bool,
}

/// How a send or receive call ended when it did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// Done now. For an overlapped call, its completion has already been delivered: the host
    /// returns 0 (R-WSP-16).
    Complete(Transferred),
    /// An overlapped call goes on: the host returns `SOCKET_ERROR` with `WSA_IO_PENDING`, and
    /// exactly one completion follows (or came already, on another thread).
    Pending,
}
