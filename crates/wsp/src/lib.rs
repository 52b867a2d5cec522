//! Winsock service providers (WSP) in safe Rust: a base (transport) provider's author writes
//! the transport, the framework owns each socket's protocol state and the documented rules of
//! shutdown, disconnect data, linger, close and overlapped completion.
//!
//! # What exists
//!
//! - The author's API ([`Transport`], [`Socket`]): a transport offers [`Protocol`]s (byte
//!   stream or message-oriented, with or without disconnect data) and opens sockets that bind,
//!   listen, connect, accept, take bytes to send, hand over bytes received, send a FIN (with
//!   disconnect data), reset, and tell the framework through a [`Notifier`] when trying again
//!   may succeed. Each send or receive attempt is a move-only guard ([`SendCall`],
//!   [`RecvCall`]) consumed by `complete(self, …)`, which returns the core
//!   [`Completed`] proof the method must return; it is borrowed for the call with the
//!   framework's buffer. [`Socket::close`] consumes the socket.
//! - The runtime ([`Runtime`], portable, no `unsafe`): one method per `WSP*` call on decoded
//!   values. Sockets live in a core `LeaseTable` keyed by the handle the host sees; each
//!   socket's calls and notifications take turns; the state machine enforces on every path:
//!   - `WSPShutdown`: `how` checked (`WSAEINVAL`), `WSAENOTCONN` when not connected (R-WSP-5);
//!     never blocking, nor `WSPSendDisconnect` / `WSPRecvDisconnect` (R-WSP-6); later I/O in a
//!     shut direction `WSAESHUTDOWN` (R-WSP-7); `SD_SEND` sends a FIN after the data, the
//!     peer reads 0 and gets `FD_CLOSE(0)` (R-WSP-8); `SD_RECEIVE` on a byte stream with data
//!     queued or arriving later resets (R-WSP-9);
//!   - the end of a connection reads as 0 bytes on a byte stream, `WSAEDISCON` on a
//!     message-oriented socket, `WSAECONNRESET` after a reset (R-WSP-10);
//!   - disconnect data: `WSAENOPROTOOPT` for a protocol that cannot carry it, `WSAEFAULT` for
//!     a short inbound buffer (R-WSP-20);
//!   - `WSPCloseSocket` by linger option: `SO_LINGER {1,0}` resets (R-WSP-11),
//!     `SO_DONTLINGER` returns at once and the data still leaves (R-WSP-12), a non-blocking
//!     close lingering with a timeout that cannot finish fails with `WSAEWOULDBLOCK` and
//!     changes nothing, a blocking one waits up to the timeout (R-WSP-13); every pending
//!     overlapped operation completes with `WSA_OPERATION_ABORTED` through its own
//!     mechanism, no network event follows, the handle is `WSAENOTSOCK` (R-WSP-14);
//!   - the final `WSPCleanup` cancels overlapped operations without any completion and returns
//!     when no socket state is left (R-WSP-15);
//!   - an overlapped send or receive completes at once (its completion already delivered) or
//!     is pending and completes exactly once; an error means no completion ever (R-WSP-16).
//!
//!   Completions and network events leave through the runtime's sink as [`Notice`]s.
//! - With the feature `testing`: `memory`, an in-memory loopback transport written with the
//!   author's API (byte-stream and message protocols, FIN, reset, disconnect data, send and
//!   receive queues with a configurable window), and `testing`, a simulator that plays
//!   ws2_32 against a runtime, records every notice and checks the rules on every step;
//!   `testing::winsock` plays ws2_32 through a provider DLL's exported `WSPStartup`, upcall
//!   table and proc table, and checks what the provider does with the host's mechanisms.
//!
//! # An author's transport
//!
//! The smallest transport: its sockets connect anywhere, take every byte and deliver none. The
//! framework does the rest — here, refusing a send after `shutdown(SD_SEND)`:
//!
//! ```
//! use winprov_wsp::testing::Host;
//! use winprov_wsp::{
//!     Address, Completed, Notifier, Protocol, RecvCall, Received, SendCall, Sent, Socket,
//!     Transport, WsaError,
//! };
//!
//! struct Discard;
//! struct DiscardSocket;
//!
//! impl Transport for Discard {
//!     type Socket = DiscardSocket;
//!
//!     fn protocols(&self) -> Vec<Protocol> {
//!         vec![Protocol::stream("discard")]
//!     }
//!
//!     fn open(&self, _: &Protocol, _: Notifier) -> Result<DiscardSocket, WsaError> {
//!         Ok(DiscardSocket)
//!     }
//! }
//!
//! impl Socket for DiscardSocket {
//!     fn connect(&mut self, _: &Address) -> Result<(), WsaError> {
//!         Ok(())
//!     }
//!
//!     fn send<'call>(&mut self, call: SendCall<'call>) -> Completed<'call> {
//!         let taken = call.data().len();
//!         call.complete(Sent::Accepted(taken))
//!     }
//!
//!     fn recv<'call>(&mut self, call: RecvCall<'call>) -> Completed<'call> {
//!         call.complete(Received::WouldBlock) // nothing ever arrives
//!     }
//!
//!     fn unread(&self) -> usize {
//!         0
//!     }
//!
//!     fn unsent(&self) -> usize {
//!         0
//!     }
//!
//!     fn send_fin(&mut self, _: Option<&[u8]>) -> Result<(), WsaError> {
//!         Ok(())
//!     }
//!
//!     fn reset(&mut self) {}
//! }
//!
//! let host = Host::new(Discard);
//! let socket = host.socket(0).unwrap();
//! host.connect(socket, &Address::new(*b"anywhere")).unwrap();
//! assert_eq!(host.send(socket, b"gone").unwrap().bytes, 4);
//! host.shutdown(socket, 1).unwrap(); // SD_SEND
//! assert_eq!(host.send(socket, b"more"), Err(WsaError::WSAESHUTDOWN));
//! host.close(socket).unwrap();
//! host.finish();
//! ```
//!
//! Over the in-memory transport, two connected sockets:
//!
//! ```
//! use winprov_wsp::memory::{self, Memory};
//! use winprov_wsp::testing::Host;
//!
//! let host = Host::new(Memory::new());
//! let (client, server) = host.pair(memory::STREAM);
//! host.send(client, b"hello").unwrap();
//! host.shutdown(client, 1).unwrap(); // SD_SEND: the server reads the data, then 0 bytes
//! assert_eq!(host.recv(server, 64).unwrap().data, b"hello");
//! assert_eq!(host.recv(server, 64).unwrap().bytes, 0);
//! host.close(server).unwrap();
//! host.close(client).unwrap();
//! host.finish();
//! ```
//!
//! # The DLL: one line
//!
//! [`export_provider!`] generates the DLL's one export, `WSPStartup`, for a transport:
//!
//! ```text
//! winprov_wsp::export_provider!(transport: MyTransport, MyTransport::new);
//! ```
//!
//! Behind it, [`abi::Base`] serves the runtime through the `WSPPROC_TABLE`: version
//! negotiation (R-WSP-1), the per-process startup count (R-WSP-2) and the latest upcall table
//! (R-WSP-3) in [`abi::Process`]; 30 slots, never null, each inside the panic boundary; host
//! structures (`WSABUF` arrays, `WSAOVERLAPPED`, `WSATHREADID`, `LINGER`,
//! `WSAPROTOCOL_INFOW`) decoded and copied before a call returns (R-WSP-17). It is a non-IFS
//! provider: its handles are ws2_32's (`WPUCreateSocketHandle`, the runtime's socket as the
//! context), a catalog entry declaring `XP1_IFS_HANDLES` is refused (R-WSP-19), and each
//! [`Notice`] goes to ws2_32's mechanism — `WPUCompleteOverlappedRequest` for an event or a
//! completion port, `WPUQueueApc` for a completion routine, `WPUSetEvent` for
//! `WSPEventSelect`, `WPUPostMessage` for `WSPAsyncSelect`. Any other [`abi::Dispatch`] can be
//! exported the same way (`export_provider!(MyDispatch, MyDispatch::new)`).
//!
//! With the feature `testing`, `testing::winsock` plays ws2_32 through that export: it starts
//! the DLL with an upcall table of its own, calls its proc table's slots, runs its APCs in
//! simulated threads' alertable waits, and checks R-WSP-14 to R-WSP-19 on what the provider
//! does with the host's mechanisms.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[allow(unsafe_code)]
pub mod abi;
mod host;
pub mod install;
pub mod layer;
#[cfg(all(test, loom))]
mod loom_models;
#[cfg(feature = "testing")]
pub mod memory;
mod provider;
pub mod runtime;
#[cfg(feature = "testing")]
pub mod testing;
mod values;

pub use host::{
    How, Linger, Mechanism, NetworkEvents, Notice, NoticeSink, Overlapped, SocketHandle,
    ThreadToken, Transfer, Transferred,
};
pub use layer::Layer;
pub use provider::{
    Address, Notifier, Protocol, Received, RecvCall, SendCall, Sent, Socket, SocketKind,
    Termination, Transport,
};
pub use runtime::Runtime;
/// A GUID (provider and catalog entry ids), the type the bindings use.
pub use winprov_bindings::windows_core::GUID;
pub use winprov_core::{Completed, WsaError};

/// Refuses `panic = "abort"` in the crate it expands in (see
/// [`winprov_core::refuse_panic_abort!`]): at this crate's root and in [`export_provider!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __refuse_panic_abort {
    () => {
        $crate::__private::refuse_panic_abort!(
            "winprov-wsp",
            "every process that uses Winsock: ws2_32 loads a provider into each of them"
        );
    };
}
__refuse_panic_abort!();

/// What the code generated by [`export_provider!`] names. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use winprov_bindings::ws2spi;
    pub use winprov_core::refuse_panic_abort;
}
