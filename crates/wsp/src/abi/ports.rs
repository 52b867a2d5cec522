//! [`Ports`]: the I/O completion port a non-IFS layer learns its own requests' completions
//! from.
//!
//! A non-IFS layer cannot hand the caller's `WSAOVERLAPPED` to the provider below: the caller
//! bound the layer's handle, not the lower one, to its completion port, and
//! `WPUCompleteOverlappedRequest` must name the layer's handle (R-WSP-18). So the layer issues
//! a request of its own below (a `WSAOVERLAPPED` without event or routine), on a lower socket
//! it bound to its own port, and one thread of the layer waits on that port: for an IFS
//! provider below the system posts the packet, for a non-IFS one ws2_32's
//! `WPUCompleteOverlappedRequest` does. Then the layer completes the caller's request on its
//! own handle, through the caller's mechanism (`abi::complete`).
//!
//! `SystemPorts` (Windows) are the kernel's (`CreateIoCompletionPort`, `GetQueuedCompletionStatus`,
//! `PostQueuedCompletionStatus`); a host simulator plays them (`testing::winsock`).

use super::decode::Socket;
use winprov_core::WsaError;

/// A packet taken from a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortPacket {
    /// The key the socket was bound with (or the one posted).
    pub key: usize,
    /// The request's `WSAOVERLAPPED` address; 0 for a packet [posted](Ports::post).
    pub overlapped: usize,
    /// Bytes transferred.
    pub bytes: u32,
}

/// Completion ports, as a layer uses them. See the [module documentation](self).
pub trait Ports: Send + Sync + 'static {
    /// A new port.
    fn create(&self) -> Result<usize, WsaError>;

    /// Binds `socket` (a lower provider's) to `port`: its requests' packets carry `key`.
    fn associate(&self, port: usize, socket: Socket, key: usize) -> Result<(), WsaError>;

    /// The next packet of `port`, waiting for one; `None` once the port is closed.
    fn wait(&self, port: usize) -> Option<PortPacket>;

    /// Posts a packet without request (its `overlapped` is 0), to wake a waiter.
    fn post(&self, port: usize, key: usize) -> Result<(), WsaError>;

    /// Closes `port`.
    fn close(&self, port: usize);
}

#[cfg(windows)]
pub use system::SystemPorts;

#[cfg(windows)]
mod system {
    use super::{PortPacket, Ports};
    use crate::abi::decode::Socket;
    use winprov_bindings::ws2spi::{
        CloseHandle, CreateIoCompletionPort, GetQueuedCompletionStatus, HANDLE, OVERLAPPED,
        PostQueuedCompletionStatus,
    };
    use winprov_core::WsaError;

    /// `INFINITE`.
    const INFINITE: u32 = u32::MAX;
    /// `INVALID_HANDLE_VALUE`: no file, for a new port.
    const NO_FILE: HANDLE = HANDLE(std::ptr::without_provenance_mut(usize::MAX));

    /// The kernel's completion ports.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct SystemPorts;

    fn handle(port: usize) -> HANDLE {
        HANDLE(std::ptr::with_exposed_provenance_mut(port))
    }

    impl Ports for SystemPorts {
        fn create(&self) -> Result<usize, WsaError> {
            // SAFETY: a new port (no file handle, no existing port); plain values.
            unsafe { CreateIoCompletionPort(NO_FILE, None, 0, 1) }
                .map(|port| port.0.expose_provenance())
                .map_err(|_| WsaError::WSAENOBUFS)
        }

        fn associate(&self, port: usize, socket: Socket, key: usize) -> Result<(), WsaError> {
            let file = HANDLE(std::ptr::with_exposed_provenance_mut(socket.raw()));
            // SAFETY: the lower provider's socket handle (a file handle, IFS or ws2_32's) and
            // a port this layer made and has not closed.
            unsafe { CreateIoCompletionPort(file, Some(handle(port)), key, 0) }
                .map(|_| ())
                .map_err(|_| WsaError::WSAEINVAL)
        }

        fn wait(&self, port: usize) -> Option<PortPacket> {
            let (mut bytes, mut key) = (0u32, 0usize);
            let mut overlapped: *mut OVERLAPPED = std::ptr::null_mut();
            // SAFETY: a port this layer made; live locals for the results. A failed request's
            // packet also returns its OVERLAPPED (with FALSE): its result is read below.
            let result = unsafe {
                GetQueuedCompletionStatus(
                    handle(port),
                    &mut bytes,
                    &mut key,
                    &mut overlapped,
                    INFINITE,
                )
            };
            if result.is_err() && overlapped.is_null() {
                // The port was closed (or the wait failed): no packet will come any more.
                return None;
            }
            Some(PortPacket {
                key,
                overlapped: overlapped.expose_provenance(),
                bytes,
            })
        }

        fn post(&self, port: usize, key: usize) -> Result<(), WsaError> {
            // SAFETY: a port this layer made; no OVERLAPPED.
            unsafe { PostQueuedCompletionStatus(handle(port), 0, key, None) }
                .map_err(|_| WsaError::WSAENOBUFS)
        }

        fn close(&self, port: usize) {
            // SAFETY: a port this layer made, closed once.
            if unsafe { CloseHandle(handle(port)) }.is_err() {
                tracing::warn!("closing the layer's completion port failed");
            }
        }
    }
}
