//! [`Dispatch`]: what the 30 slots of the `WSPPROC_TABLE` call, once the host's arguments are
//! decoded. One method per slot (but `WSPCleanup`, which the ABI layer counts itself, R-WSP-2)
//! and two lifecycle hooks; each method's default answers the error the documentation gives
//! for what the provider cannot do, so a provider that implements a part of the interface
//! still fills every slot.
//!
//! The runtime implements this trait, method by method, in the ABI layer (the runtime itself
//! never names `abi`: its `impl Dispatch for Runtime<…>` lives beside the exports and calls
//! the runtime's own entry points). Arguments are the decoded values of [`decode`](super::decode);
//! results are plain values the exports write back into the host's out-parameters. Every
//! method runs inside the export's panic boundary (a panic is `WSASYSCALLFAILURE`) after
//! `lpErrno` and the arguments were checked, and only while the process is started.
//!
//! Defaults, per slot: a socket [`knows_socket`](Dispatch::knows_socket) does not know is
//! `WSAENOTSOCK`; otherwise `WSAEOPNOTSUPP` where the slot's page lists it for an unsupported
//! operation (`WSPAccept`, `WSPListen`, `WSPIoctl`), `WSAENOPROTOOPT` for options and disconnect
//! data, `WSAEINVAL` for the address conversions, `WSPGetSockName` (not bound),
//! `WSPGetQOSByName` and `WSPCancelBlockingCall` (no blocking call), `WSAENOTCONN` for
//! `WSPGetPeerName`, `WSAESOCKTNOSUPPORT` for `WSPSocket`, `WSA_INVALID_PARAMETER` for
//! `WSPGetOverlappedResult` (not an operation of this provider), and `WSAENETDOWN` ("the
//! network subsystem has failed", listed by every other slot) for the rest.

use super::decode::{
    How, OverlappedRecv, ProtocolInfo, RecvBuffers, SendData, SockOpt, Socket, Version,
};
use super::startup::Export;
use super::upcalls::Host;
pub use crate::values::Transfer;
use std::time::Duration;
use winprov_bindings::ws2spi::{LPCONDITIONPROC, QOS, WSAPROTOCOL_INFOW, WSPPROC_TABLE};
use winprov_core::WsaError;

/// The answer of a socket slot's default: `WSAENOTSOCK` for a socket the provider does not
/// know, else `code`.
pub fn refuse<D: Dispatch + ?Sized>(dispatch: &D, socket: Socket, code: WsaError) -> WsaError {
    if dispatch.knows_socket(socket) {
        code
    } else {
        WsaError::WSAENOTSOCK
    }
}

/// The buffers of a receive.
#[derive(Debug)]
pub enum RecvIo<'call> {
    /// A call without `lpOverlapped`: the buffers are the caller's for this call only.
    Blocking(RecvBuffers<'call>),
    /// An overlapped call: the buffers stay the caller's until the request completes.
    Overlapped(OverlappedRecv),
}

/// The connection `WSPAccept` made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The new socket's handle.
    pub socket: Socket,
    /// The peer's address (written to `addr`/`addrlen` when given, cut to their length).
    pub address: Vec<u8>,
}

/// `WSANETWORKEVENTS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NetworkEvents {
    /// `lNetworkEvents` (`FD_*` bits).
    pub events: i32,
    /// `iErrorCode`, indexed by `FD_*_BIT`.
    pub errors: [i32; 10],
}

/// The sockets `WSPSelect` asks about, and its timeout (`None`: no end).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SelectSets {
    /// `readfds`, when given.
    pub read: Option<Vec<Socket>>,
    /// `writefds`, when given.
    pub write: Option<Vec<Socket>>,
    /// `exceptfds`, when given.
    pub except: Option<Vec<Socket>>,
    /// `timeout`.
    pub timeout: Option<Duration>,
}

/// The sockets found ready (only those asked about are written back).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Ready {
    /// Readable.
    pub read: Vec<Socket>,
    /// Writable.
    pub write: Vec<Socket>,
    /// With an exception.
    pub except: Vec<Socket>,
}

/// An overlapped operation's result, for `WSPGetOverlappedResult`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverlappedResult {
    /// Bytes transferred.
    pub bytes: u32,
    /// Flags.
    pub flags: u32,
}

/// What the slots of the proc table call. See the [module documentation](self).
#[allow(unused_variables)]
pub trait Dispatch: Send + Sync + 'static {
    /// The lowest Winsock version served: a `WSPStartup` requesting less gets
    /// `WSAVERNOTSUPPORTED` (R-WSP-1).
    const LOWEST_VERSION: Version = Version::V2_2;
    /// The highest version served (`wHighVersion`).
    const HIGHEST_VERSION: Version = Version::V2_2;
    /// `szDescription` (cut to 255 UTF-16 units).
    const DESCRIPTION: &'static str = "winprov Winsock provider";

    /// Runs when the process's startup count goes from 0 to 1; an error fails that
    /// `WSPStartup` (its code returned) and the count stays 0. `host` reads the most recent
    /// upcall table whenever it is used (R-WSP-3): a dispatch may keep it, to reach the host
    /// from a thread of its own.
    fn first_startup(&self, host: &Host<'static>, protocol: &ProtocolInfo) -> Result<(), WsaError> {
        Ok(())
    }

    /// Runs on every `WSPStartup` (after [`first_startup`](Self::first_startup) for the first),
    /// with the catalog entry it names and the version negotiated, under the lifecycle lock;
    /// an error fails that `WSPStartup` and leaves the count as it was (a failed first startup
    /// runs [`final_cleanup`](Self::final_cleanup) before it returns). A layered provider
    /// starts the chain's lower provider here.
    fn each_startup(
        &self,
        host: &Host<'static>,
        protocol: &ProtocolInfo,
        version: Version,
    ) -> Result<(), WsaError> {
        Ok(())
    }

    /// Lets the dispatch serve slots itself, on the host's raw arguments, in the proc table
    /// `WSPStartup` hands out for the DLL's [`Export`] `E` (a layered provider passes sends
    /// and receives down without decoding them, `abi::Layered`). Runs each time the table is
    /// made; a slot it sets must honour its `LPWSP*` prototype and the export's rules (the
    /// panic boundary, `lpErrno`).
    fn own_slots<E: Export<Dispatch = Self>>(table: &mut WSPPROC_TABLE)
    where
        Self: Sized,
    {
    }

    /// Runs when the last `WSPCleanup` brings the count back to 0, under the lifecycle lock (a
    /// new `WSPStartup` waits for it), with the upcall table still set: everything the provider
    /// holds is released here (R-WSP-15 for the runtime: overlapped I/O cancelled without
    /// notifications, before this returns).
    fn final_cleanup(&self, host: &Host<'_>) {}

    /// Whether `socket` is one of this provider's open sockets; the defaults answer
    /// `WSAENOTSOCK` for the others.
    fn knows_socket(&self, socket: Socket) -> bool {
        false
    }

    /// `WSPAccept`.
    fn accept(
        &self,
        host: &Host<'_>,
        socket: Socket,
        condition: LPCONDITIONPROC,
        callback_data: usize,
    ) -> Result<Accepted, WsaError> {
        Err(refuse(self, socket, WsaError::WSAEOPNOTSUPP))
    }

    /// `WSPAddressToString`: the text of `address` (written with its NUL; a short buffer gets
    /// `WSAEFAULT` and the length needed).
    fn address_to_string(
        &self,
        host: &Host<'_>,
        address: &[u8],
        protocol: Option<&ProtocolInfo>,
    ) -> Result<String, WsaError> {
        Err(WsaError::WSAEINVAL)
    }

    /// `WSPAsyncSelect`.
    fn async_select(
        &self,
        host: &Host<'_>,
        socket: Socket,
        window: usize,
        message: u32,
        events: i32,
    ) -> Result<(), WsaError> {
        Err(refuse(self, socket, WsaError::WSAENETDOWN))
    }

    /// `WSPBind`.
    fn bind(&self, host: &Host<'_>, socket: Socket, name: &[u8]) -> Result<(), WsaError> {
        Err(refuse(self, socket, WsaError::WSAENETDOWN))
    }

    /// `WSPCancelBlockingCall`.
    fn cancel_blocking_call(&self, host: &Host<'_>) -> Result<(), WsaError> {
        Err(WsaError::WSAEINVAL)
    }

    /// `WSPCloseSocket`.
    fn close_socket(&self, host: &Host<'_>, socket: Socket) -> Result<(), WsaError> {
        Err(refuse(self, socket, WsaError::WSAENETDOWN))
    }

    /// `WSPConnect`: the callee data received, if any (written into `lpCalleeData` when given;
    /// more than it holds is `WSAEFAULT`).
    #[allow(clippy::too_many_arguments)]
    fn connect(
        &self,
        host: &Host<'_>,
        socket: Socket,
        name: &[u8],
        caller_data: Option<&[u8]>,
        callee_capacity: Option<u32>,
        sqos: Option<QOS>,
        gqos: Option<QOS>,
    ) -> Result<Vec<u8>, WsaError> {
        Err(refuse(self, socket, WsaError::WSAENETDOWN))
    }

    /// `WSPDuplicateSocket`: the structure for the target process.
    fn duplicate_socket(
        &self,
        host: &Host<'_>,
        socket: Socket,
        process_id: u32,
    ) -> Result<WSAPROTOCOL_INFOW, WsaError> {
        Err(refuse(self, socket, WsaError::WSAENETDOWN))
    }

    /// `WSPEnumNetworkEvents`.
    fn enum_network_events(
        &self,
        host: &Host<'_>,
        socket: Socket,
        event: isize,
    ) -> Result<NetworkEvents, WsaError> {
        Err(refuse(self, socket, WsaError::WSAENETDOWN))
    }

    /// `WSPEventSelect`.
    fn event_select(
        &self,
        host: &Host<'_>,
        socket: Socket,
        event: isize,
        events: i32,
    ) -> Result<(), WsaError> {
        Err(refuse(self, socket, WsaError::WSAENETDOWN))
    }

    /// `WSPGetOverlappedResult` for the operation of the `WSAOVERLAPPED` at `overlapped`.
    fn get_overlapped_result(
        &self,
        host: &Host<'_>,
        socket: Socket,
        overlapped: usize,
        wait: bool,
    ) -> Result<OverlappedResult, WsaError> {
        Err(refuse(self, socket, WsaError::WSA_INVALID_PARAMETER))
    }

    /// `WSPGetPeerName`.
    fn get_peer_name(&self, host: &Host<'_>, socket: Socket) -> Result<Vec<u8>, WsaError> {
        Err(refuse(self, socket, WsaError::WSAENOTCONN))
    }

    /// `WSPGetSockName`.
    fn get_sock_name(&self, host: &Host<'_>, socket: Socket) -> Result<Vec<u8>, WsaError> {
        Err(refuse(self, socket, WsaError::WSAEINVAL))
    }

    /// `WSPGetSockOpt`: the option's bytes ([`Linger::to_bytes`](super::decode::Linger::to_bytes)
    /// for `SO_LINGER`); more than `optlen` is `WSAEFAULT`.
    fn get_sock_opt(
        &self,
        host: &Host<'_>,
        socket: Socket,
        level: i32,
        name: i32,
    ) -> Result<Vec<u8>, WsaError> {
        Err(refuse(self, socket, WsaError::WSAENOPROTOOPT))
    }

    /// `WSPGetQOSByName`.
    fn get_qos_by_name(
        &self,
        host: &Host<'_>,
        socket: Socket,
        name: Option<&[u8]>,
    ) -> Result<QOS, WsaError> {
        Err(refuse(self, socket, WsaError::WSAEINVAL))
    }

    /// `WSPIoctl`: the output bytes (more than `cbOutBuffer` is `WSAEFAULT`).
    #[allow(clippy::too_many_arguments)]
    fn ioctl(
        &self,
        host: &Host<'_>,
        socket: Socket,
        code: u32,
        input: &[u8],
        output_capacity: u32,
        overlapped: Option<super::decode::Overlapped>,
    ) -> Result<Vec<u8>, WsaError> {
        Err(refuse(self, socket, WsaError::WSAEOPNOTSUPP))
    }

    /// `WSPJoinLeaf`.
    #[allow(clippy::too_many_arguments)]
    fn join_leaf(
        &self,
        host: &Host<'_>,
        socket: Socket,
        name: &[u8],
        caller_data: Option<&[u8]>,
        sqos: Option<QOS>,
        flags: u32,
    ) -> Result<Socket, WsaError> {
        Err(refuse(self, socket, WsaError::WSAENETDOWN))
    }

    /// `WSPListen`.
    fn listen(&self, host: &Host<'_>, socket: Socket, backlog: i32) -> Result<(), WsaError> {
        Err(refuse(self, socket, WsaError::WSAEOPNOTSUPP))
    }

    /// `WSPRecv`.
    fn recv(
        &self,
        host: &Host<'_>,
        socket: Socket,
        io: RecvIo<'_>,
        flags: u32,
    ) -> Result<Transfer, WsaError> {
        Err(refuse(self, socket, WsaError::WSAENETDOWN))
    }

    /// `WSPRecvDisconnect`: the inbound disconnect data (`capacity` is the caller's buffer,
    /// `None` for none; data longer than it is `WSAEFAULT`, so check before consuming it).
    fn recv_disconnect(
        &self,
        host: &Host<'_>,
        socket: Socket,
        capacity: Option<u32>,
    ) -> Result<Vec<u8>, WsaError> {
        Err(refuse(self, socket, WsaError::WSAENOPROTOOPT))
    }

    /// `WSPRecvFrom`: the transfer and, for one done at once, the sender's address (written to
    /// `lpFrom` when given, cut to `lpFromlen`).
    fn recv_from(
        &self,
        host: &Host<'_>,
        socket: Socket,
        io: RecvIo<'_>,
        flags: u32,
    ) -> Result<(Transfer, Vec<u8>), WsaError> {
        Err(refuse(self, socket, WsaError::WSAENETDOWN))
    }

    /// `WSPSelect`: `WSAENOTSOCK` by default when a set holds a socket the provider does not
    /// know.
    fn select(&self, host: &Host<'_>, sets: SelectSets) -> Result<Ready, WsaError> {
        let unknown = [&sets.read, &sets.write, &sets.except]
            .into_iter()
            .flatten()
            .flatten()
            .any(|s| !self.knows_socket(*s));
        Err(if unknown {
            WsaError::WSAENOTSOCK
        } else {
            WsaError::WSAENETDOWN
        })
    }

    /// `WSPSend`. The bytes are the caller's for this call only: keep a copy.
    fn send(
        &self,
        host: &Host<'_>,
        socket: Socket,
        data: SendData<'_>,
        flags: u32,
        overlapped: Option<super::decode::Overlapped>,
    ) -> Result<Transfer, WsaError> {
        Err(refuse(self, socket, WsaError::WSAENETDOWN))
    }

    /// `WSPSendDisconnect` (R-WSP-20: `WSAENOPROTOOPT` for data the protocol cannot carry).
    fn send_disconnect(
        &self,
        host: &Host<'_>,
        socket: Socket,
        data: Option<&[u8]>,
    ) -> Result<(), WsaError> {
        Err(refuse(self, socket, WsaError::WSAENOPROTOOPT))
    }

    /// `WSPSendTo`.
    #[allow(clippy::too_many_arguments)]
    fn send_to(
        &self,
        host: &Host<'_>,
        socket: Socket,
        data: SendData<'_>,
        flags: u32,
        to: &[u8],
        overlapped: Option<super::decode::Overlapped>,
    ) -> Result<Transfer, WsaError> {
        Err(refuse(self, socket, WsaError::WSAENETDOWN))
    }

    /// `WSPSetSockOpt`.
    fn set_sock_opt(
        &self,
        host: &Host<'_>,
        socket: Socket,
        option: SockOpt<'_>,
    ) -> Result<(), WsaError> {
        Err(refuse(self, socket, WsaError::WSAENOPROTOOPT))
    }

    /// `WSPShutdown` (`how` already decoded: a bad one never gets here, R-WSP-5).
    fn shutdown(&self, host: &Host<'_>, socket: Socket, how: How) -> Result<(), WsaError> {
        Err(refuse(self, socket, WsaError::WSAENETDOWN))
    }

    /// `WSPSocket`.
    #[allow(clippy::too_many_arguments)]
    fn socket(
        &self,
        host: &Host<'_>,
        address_family: i32,
        socket_type: i32,
        protocol: i32,
        protocol_info: Option<&ProtocolInfo>,
        group: u32,
        flags: u32,
    ) -> Result<Socket, WsaError> {
        Err(WsaError::WSAESOCKTNOSUPPORT)
    }

    /// `WSPStringToAddress`: the `sockaddr` bytes (a short buffer gets `WSAEFAULT` and the
    /// length needed).
    fn string_to_address(
        &self,
        host: &Host<'_>,
        address: &str,
        address_family: i32,
        protocol: Option<&ProtocolInfo>,
    ) -> Result<Vec<u8>, WsaError> {
        Err(WsaError::WSAEINVAL)
    }
}
